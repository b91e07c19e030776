#!/usr/bin/env bash
# Runs the SDK's Python tests: builds the server, generates the Python bindings into a
# temporary directory, and runs pytest against both. Works from any directory; extra
# arguments go to pytest (e.g. -k parse_push, -x, -vv).
set -euo pipefail
cd "$(dirname "$0")/../../.."

cargo build --bin switchboard
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
server_bin="$target_dir/debug/switchboard"

bindings="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-sdk-python.XXXXXX")"
trap 'rm -rf "$bindings"' EXIT
bash mobile-sdk/bindgen.sh python "$bindings"

if ! python3 -c 'import pytest' 2>/dev/null; then
  python3 -m pip install --quiet pytest
fi

# No .pytest_cache or __pycache__ left in the tree.
PYTHONDONTWRITEBYTECODE=1 SWITCHBOARD_SDK_BINDINGS="$bindings" SWITCHBOARD_SERVER_BIN="$server_bin" \
  python3 -m pytest -q -p no:cacheprovider mobile-sdk/tests/python "$@"
