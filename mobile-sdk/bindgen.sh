#!/usr/bin/env bash
# Builds the SDK library and generates its bindings with uniffi-bindgen (built from this
# crate, so versions always match).
#
#   mobile-sdk/bindgen.sh                      # Swift and Kotlin into mobile-sdk/bindings/
#   mobile-sdk/bindgen.sh --release            # the same from an optimised build
#   mobile-sdk/bindgen.sh python OUT_DIR       # any of swift, kotlin, python; then a directory
#
# For Kotlin it also copies the hand-written layer (mobile-sdk/kotlin/: Flows over the
# listeners) beside the generated file, so an app gets both from one command.
#
# It prints the library it built: link it into the app (see mobile-sdk/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug
cargo_profile=()
languages=()
out_dir=mobile-sdk/bindings
for arg in "$@"; do
  case "$arg" in
    --release) profile=release; cargo_profile=(--release) ;;
    swift|kotlin|python) languages+=("$arg") ;;
    -*) echo "bindgen.sh: unknown option $arg" >&2; exit 2 ;;
    *) out_dir="$arg" ;;
  esac
done
if [ ${#languages[@]} -eq 0 ]; then
  languages=(swift kotlin)
fi

cargo build -p switchboard-sdk --lib "${cargo_profile[@]}"
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
case "$(uname -s)" in
  Darwin) library="$target_dir/$profile/libswitchboard_sdk.dylib" ;;
  *) library="$target_dir/$profile/libswitchboard_sdk.so" ;;
esac

language_args=()
for language in "${languages[@]}"; do
  language_args+=(--language "$language")
done
mkdir -p "$out_dir"
cargo run -q -p switchboard-sdk --features bindgen --bin uniffi-bindgen -- \
  generate --library "$library" "${language_args[@]}" --out-dir "$out_dir" --no-format
# The hand-written layers (Flows in Kotlin, AsyncStreams in Swift) go beside what UniFFI wrote.
if [[ " ${languages[*]} " == *" kotlin "* ]]; then
  cp -R mobile-sdk/kotlin/. "$out_dir/"
fi
if [[ " ${languages[*]} " == *" swift "* ]]; then
  cp mobile-sdk/swift/*.swift "$out_dir/"
fi
# Python loads the library from beside its module.
if [[ " ${languages[*]} " == *" python "* ]]; then
  cp "$library" "$out_dir/"
fi
echo "library:  $library"
echo "bindings: $out_dir (${languages[*]})"
