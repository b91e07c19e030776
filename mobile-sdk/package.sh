#!/usr/bin/env bash
# Packages the SDK for apps, into build/ at the repository's root:
#
#   mobile-sdk/package.sh android [--release]   # build/switchboard-sdk.aar
#   mobile-sdk/package.sh ios [--release]       # build/SwitchboardSDKFFI.xcframework, build/swift/
#   mobile-sdk/package.sh all [--release]       # both
#
# Android: the Kotlin (generated bindings and mobile-sdk/kotlin's Flows) compiled into
# classes.jar, libswitchboard_sdk.so for arm64-v8a, armeabi-v7a and x86_64 (cargo-ndk), in one
# AAR. iOS: the static library for devices and the simulator with its C header and modulemap in
# one XCFramework, and beside it the Swift sources (generated, and mobile-sdk/swift/ if present).
#
# Prerequisites are checked in order. Everything that does not need a missing one is still done
# (the sources are generated, the Kotlin compiled when kotlinc is there); then one line says
# what is missing and how to get it, and the exit status is 3. Exit 2: wrong arguments. Any
# other failure: its own non-zero status.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly TOOLCHAIN_MISSING=3
readonly ANDROID_ABIS=(arm64-v8a armeabi-v7a x86_64)
readonly ANDROID_TARGETS=(aarch64-linux-android armv7-linux-androideabi x86_64-linux-android)
# The oldest Android the AAR supports (also the NDK API level the library is linked for).
readonly ANDROID_MIN_SDK=24
readonly IOS_TARGETS=(aarch64-apple-ios aarch64-apple-ios-sim)

usage() {
  echo "usage: mobile-sdk/package.sh android|ios|all [--release]" >&2
  exit 2
}

platform=""
release=()
profile=debug
for arg in "$@"; do
  case "$arg" in
    android | ios | all) [ -z "$platform" ] || usage; platform="$arg" ;;
    --release) release=(--release); profile=release ;;
    *) usage ;;
  esac
done
[ -n "$platform" ] || usage

# Each platform runs in a process of its own, so that `all` still builds iOS when Android lacks
# a tool (and the other way round) and reports the worst outcome.
if [ "$platform" = all ]; then
  status=0
  for one in android ios; do
    code=0
    bash "$0" "$one" "${release[@]}" || code=$?
    if [ "$code" -ne 0 ] && { [ "$status" -eq 0 ] || [ "$status" -eq "$TOOLCHAIN_MISSING" ]; }; then
      status=$code
    fi
  done
  exit "$status"
fi

# Stops with the one line an app developer needs.
missing() {
  echo "package.sh $platform: missing $1" >&2
  exit "$TOOLCHAIN_MISSING"
}

command -v cargo >/dev/null 2>&1 || missing "cargo: install Rust with rustup (https://rustup.rs)"
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

rust_targets_missing() {
  local installed
  installed="$(rustup target list --installed 2>/dev/null || true)"
  local absent=()
  for target in "$@"; do
    grep -qx "$target" <<<"$installed" || absent+=("$target")
  done
  echo "${absent[*]}"
}

# kotlinc 2.x: $KOTLINC, the compiler mobile-sdk/tests/kotlin's lockfile pins, or one on PATH
# (an old one, such as Debian's 1.3, cannot compile uniffi's output).
find_kotlinc() {
  if [ -n "${KOTLINC:-}" ]; then
    echo "$KOTLINC"
  elif [ -x mobile-sdk/tests/kotlin/node_modules/kotlin-compiler/bin/kotlinc ]; then
    echo "$PWD/mobile-sdk/tests/kotlin/node_modules/kotlin-compiler/bin/kotlinc"
  elif command -v kotlinc >/dev/null 2>&1 &&
    kotlinc -version 2>&1 | grep -Eq 'kotlinc-jvm ([2-9]|[1-9][0-9])\.'; then
    command -v kotlinc
  fi
}

package_android() {
  local out=build/android
  rm -rf "$out" build/switchboard-sdk.aar
  mkdir -p "$out/aar"

  echo "== Kotlin sources: generated bindings and the Flows layer"
  bash mobile-sdk/bindgen.sh "${release[@]}" kotlin "$out/kotlin"

  local kotlinc
  kotlinc="$(find_kotlinc)"
  [ -n "$kotlinc" ] || missing "kotlinc 2.x: run \`npm ci\` in mobile-sdk/tests/kotlin, or set KOTLINC"
  local kotlin_lib
  kotlin_lib="$(cd "$(dirname "$(realpath "$kotlinc")")/../lib" && pwd)"
  local coroutines="${COROUTINES_JAR:-$kotlin_lib/kotlinx-coroutines-core-jvm.jar}"
  [ -f "$coroutines" ] ||
    missing "kotlinx-coroutines-core-jvm.jar: set COROUTINES_JAR (the kotlin-compiler npm package has it)"
  local jna="${JNA_JAR:-/usr/share/java/jna.jar}"
  [ -f "$jna" ] || missing "JNA ($jna): apt-get install libjna-java, or set JNA_JAR to jna.jar"

  echo "== classes.jar (kotlinc $("$kotlinc" -version 2>&1 | grep -o 'kotlinc-jvm [^ ]*'))"
  # Java 8 bytecode: what every Android toolchain still reads. JNA, kotlinx-coroutines and the
  # Kotlin standard library are the app's dependencies, not packed in.
  local sources=()
  mapfile -t sources < <(find "$out/kotlin" -name '*.kt' | sort)
  "$kotlinc" -jvm-target 1.8 -nowarn -cp "$jna:$coroutines" -d "$out/aar/classes.jar" "${sources[@]}"

  command -v cargo-ndk >/dev/null 2>&1 || missing "cargo-ndk: cargo install cargo-ndk"
  local ndk="${ANDROID_NDK_HOME:-${ANDROID_NDK_ROOT:-}}"
  if [ -z "$ndk" ] && [ -d "${ANDROID_HOME:-/nonexistent}/ndk" ]; then
    ndk="$(find "$ANDROID_HOME/ndk" -mindepth 1 -maxdepth 1 -type d | sort -V | tail -n 1)"
  fi
  [ -n "$ndk" ] && [ -d "$ndk" ] ||
    missing "the Android NDK: install it (Android Studio's SDK Manager, or sdkmanager 'ndk;27.2.12479018') and set ANDROID_NDK_HOME"
  local absent
  absent="$(rust_targets_missing "${ANDROID_TARGETS[@]}")"
  [ -z "$absent" ] || missing "Rust's Android targets: rustup target add $absent"
  local android_jar="${ANDROID_JAR:-}"
  if [ -z "$android_jar" ] && [ -d "${ANDROID_HOME:-/nonexistent}/platforms" ]; then
    android_jar="$(find "$ANDROID_HOME/platforms" -mindepth 2 -maxdepth 2 -name android.jar | sort -V | tail -n 1)"
  fi
  [ -n "$android_jar" ] && [ -f "$android_jar" ] ||
    missing "an Android SDK platform (android.jar): sdkmanager 'platforms;android-35' with ANDROID_HOME set, or set ANDROID_JAR"

  echo "== AndroidTls (mobile-sdk/kotlin-android) into classes.jar"
  # The one class that needs Android's API: it hands the certificate checks the app's Context.
  rm -rf "$out/android-classes"
  "$kotlinc" -jvm-target 1.8 -nowarn -cp "$android_jar:$out/aar/classes.jar" \
    -d "$out/android-classes" mobile-sdk/kotlin-android/dev/switchboard/sdk/*.kt
  python3 - "$out/aar/classes.jar" "$out/android-classes" <<'PY'
import os, sys, zipfile
jar, classes = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(jar, "a") as out:
    for root, _, files in os.walk(classes):
        for name in files:
            if name.endswith(".class"):
                path = os.path.join(root, name)
                out.write(path, os.path.relpath(path, classes))
PY

  echo "== libswitchboard_sdk.so for ${ANDROID_ABIS[*]}"
  local abi_args=()
  for abi in "${ANDROID_ABIS[@]}"; do abi_args+=(-t "$abi"); done
  ANDROID_NDK_HOME="$ndk" cargo ndk "${abi_args[@]}" -P "$ANDROID_MIN_SDK" -o "$out/aar/jni" \
    build -p switchboard-sdk --lib "${release[@]}"

  cat >"$out/aar/AndroidManifest.xml" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="dev.switchboard.sdk">
    <uses-sdk android:minSdkVersion="$ANDROID_MIN_SDK" />
    <uses-permission android:name="android.permission.INTERNET" />
</manifest>
EOF
  : >"$out/aar/R.txt"
  # R8 must keep what JNA reaches by reflection: the bindings' structures and callbacks.
  cat >"$out/aar/proguard.txt" <<'EOF'
-keep class dev.switchboard.sdk.** { *; }
-keep class com.sun.jna.** { *; }
-dontwarn java.awt.**
# The certificate checks call rustls-platform-verifier's Kotlin half through JNI.
-keep, includedescriptorclasses class org.rustls.platformverifier.** { *; }
EOF
  (cd "$out/aar" && python3 -m zipfile -c ../../switchboard-sdk.aar \
    AndroidManifest.xml R.txt proguard.txt classes.jar jni)
  echo "aar: build/switchboard-sdk.aar"
}

package_ios() {
  local out=build/ios
  rm -rf "$out" build/swift build/SwitchboardSDKFFI.xcframework
  mkdir -p "$out/headers" build/swift

  echo "== Swift sources, C header and modulemap"
  bash mobile-sdk/bindgen.sh "${release[@]}" swift "$out/generated"
  cp "$out/generated/SwitchboardSDK.swift" build/swift/
  if compgen -G 'mobile-sdk/swift/*.swift' >/dev/null; then
    cp mobile-sdk/swift/*.swift build/swift/
  fi
  cp "$out/generated/SwitchboardSDKFFI.h" "$out/headers/"
  cp "$out/generated/SwitchboardSDKFFI.modulemap" "$out/headers/module.modulemap"

  # The iOS libraries link against Apple's SDKs (ring's C and assembly among them): Xcode only.
  command -v xcodebuild >/dev/null 2>&1 ||
    missing "xcodebuild: build the XCFramework on a Mac with Xcode installed (xcode-select -s /Applications/Xcode.app)"
  local absent
  absent="$(rust_targets_missing "${IOS_TARGETS[@]}")"
  [ -z "$absent" ] || missing "Rust's iOS targets: rustup target add $absent"

  local library_args=()
  for target in "${IOS_TARGETS[@]}"; do
    echo "== libswitchboard_sdk.a for $target"
    cargo build -p switchboard-sdk --lib --target "$target" "${release[@]}"
    library_args+=(-library "$target_dir/$target/$profile/libswitchboard_sdk.a" -headers "$out/headers")
  done
  xcodebuild -create-xcframework "${library_args[@]}" -output build/SwitchboardSDKFFI.xcframework
  echo "xcframework: build/SwitchboardSDKFFI.xcframework"
  echo "swift:       build/swift ($(cd build/swift && echo *.swift))"
}

"package_$platform"
