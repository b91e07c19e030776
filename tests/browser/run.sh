#!/usr/bin/env bash
# The chat widget's browser suite: starts the server binary (default target/debug/switchboard,
# which `cargo test` builds) on a free port with SQLite in a temporary directory, then runs the
# scenarios in Debian's chromium through playwright-core with Node's test runner, and the GraphQL
# clients that run in Node itself (subscriptions-transport-ws, Apollo Client's WebSocketLink) over
# the legacy graphql-ws subprotocol. Screenshots go to tests/browser/output/. First it type-checks
# the widget's JavaScript (its `// @ts-check` annotations, with tsc --noEmit). Anything missing
# (binary, chromium, node_modules) fails the run.
#
#   bash tests/browser/run.sh [path/to/switchboard]
#   SWITCHBOARD_BROWSER_TESTS=greeting bash tests/browser/run.sh   # only matching scenarios
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
binary="${1:-$root/target/debug/switchboard}"
chromium="${CHROMIUM:-/usr/bin/chromium}"

fail() { echo "browser tests: $*" >&2; exit 1; }
[ -x "$binary" ] || fail "no server binary at $binary (cargo build or cargo test builds it)"
[ -x "$chromium" ] || fail "no chromium at $chromium (apt-get install chromium)"
[ -d "$here/node_modules/playwright-core" ] || fail "run npm ci in tests/browser first"

echo "browser tests: type-checking widget/*.js, app/*.js and graphiql/graphiql.js"
"$here/node_modules/.bin/tsc" -p "$here/tsconfig.json"

data="$(mktemp -d)"
log="$data/server.log"
password="browser-owner-password"
server=""
sink=""
cleanup() {
  for pid in $server $sink; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$data"
}
trap cleanup EXIT

# The Messenger scenario runs a fake Graph API on this port; the server calls it there.
messenger_port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
# An SMTP server that keeps what it receives in $data/mail: offline messages and replies go
# out by email.
mail="$data/mail"
node "$here/smtp-sink.mjs" "$mail" >"$data/smtp-port" &
sink=$!
smtp_port=""
for _ in $(seq 1 100); do
  # The sink's shell may not have created the file yet.
  smtp_port="$(head -n 1 "$data/smtp-port" 2>/dev/null || true)"
  [ -n "$smtp_port" ] && break
  sleep 0.1
done
[ -n "$smtp_port" ] || fail "the SMTP sink did not start"

# Every customer of the suite comes from 127.0.0.1: lift the per-address budgets. Webhook
# receivers listen on 127.0.0.1 too: allow private webhook targets. Legacy graphql-ws clients
# get their keep-alives often enough that a test sees several in a few seconds.
SWITCHBOARD_LISTEN=127.0.0.1:0 \
SWITCHBOARD_MESSENGER_GRAPH_URL="http://127.0.0.1:$messenger_port" \
SWITCHBOARD_DATA_DIR="$data" \
SWITCHBOARD_BOOTSTRAP_OWNER_PASSWORD="$password" \
SWITCHBOARD_DEMO=true \
SWITCHBOARD_VISITOR_SESSIONS_PER_MINUTE=10000 \
SWITCHBOARD_CHAT_STARTS_PER_ADDRESS_PER_MINUTE=10000 \
SWITCHBOARD_CUSTOMER_ACTIONS_PER_MINUTE=10000 \
SWITCHBOARD_CUSTOMER_TYPING_PER_MINUTE=10000 \
SWITCHBOARD_ALLOW_PRIVATE_WEBHOOK_TARGETS=true \
SWITCHBOARD_WS_KEEP_ALIVE_INTERVAL=500ms \
SWITCHBOARD_SMTP_HOST=127.0.0.1 \
SWITCHBOARD_SMTP_PORT="$smtp_port" \
SWITCHBOARD_SMTP_TLS=none \
SWITCHBOARD_SMTP_FROM="Support <support@example.com>" \
RUST_LOG="${RUST_LOG:-warn}" \
  "$binary" >"$log" 2>&1 &
server=$!

url=""
for _ in $(seq 1 300); do
  url="$(sed -n 's#^Switchboard is listening on \(http://[^/]*\)/graphql$#\1#p' "$log")"
  [ -n "$url" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; fail "the server exited"; }
  sleep 0.1
done
[ -n "$url" ] || { cat "$log" >&2; fail "the server did not start within 30 s"; }
echo "browser tests: server at $url"

status=0
SWITCHBOARD_URL="$url" SWITCHBOARD_OWNER_PASSWORD="$password" CHROMIUM="$chromium" \
SWITCHBOARD_MESSENGER_FAKE_PORT="$messenger_port" \
SWITCHBOARD_URL="$url" SWITCHBOARD_OWNER_PASSWORD="$password" CHROMIUM="$chromium" SWITCHBOARD_MAIL_DIR="$mail" \
  node --test --test-concurrency=1 --test-reporter=spec ${SWITCHBOARD_BROWSER_TESTS:+--test-name-pattern="$SWITCHBOARD_BROWSER_TESTS"} "$here"/*.test.mjs || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- server log" >&2
  tail -n 50 "$log" >&2
fi
exit "$status"
