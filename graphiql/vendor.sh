#!/usr/bin/env bash
# Refreshes vendor/ from the versions pinned in package-lock.json: installs them exactly (npm ci),
# copies each browser build and its license, and gzips the builds (gzip -9n: no name or time in
# the header, so the same input gives the same bytes). The server embeds the .gz files and
# serves them as they are; vendor/MANIFEST records what each one is. It also writes the
# introspection query the bundled GraphiQL sends, for the test that it passes our limits.
#
#   bash graphiql/vendor.sh           # after changing a version in package.json: npm install first
#   bash graphiql/vendor.sh --check   # fails if vendor/ differs from what the lockfile gives
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
npm ci --ignore-scripts --no-audit --no-fund >/dev/null

out="$here/vendor"
if [ "${1:-}" = "--check" ]; then
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
fi
rm -rf "${out:?}"/*
mkdir -p "$out"

# package file -> name served; the license of each package beside its files.
files=(
  "react/umd/react.production.min.js react.production.min.js"
  "react-dom/umd/react-dom.production.min.js react-dom.production.min.js"
  "graphiql/graphiql.min.js graphiql.min.js"
  "graphiql/graphiql.min.css graphiql.min.css"
  "graphql-ws/umd/graphql-ws.min.js graphql-ws.min.js"
)
licenses=(
  "react/LICENSE LICENSE.react"
  "react-dom/LICENSE LICENSE.react-dom"
  "graphiql/LICENSE LICENSE.graphiql"
  "graphql-ws/LICENSE.md LICENSE.graphql-ws"
)

version() { node -p "require('./node_modules/$1/package.json').version"; }

{
  echo "# What vendor/ holds: file, package@version, raw bytes, sha256 of the raw file."
  echo "# Written by vendor.sh from package-lock.json; do not edit."
  for entry in "${files[@]}"; do
    read -r source name <<<"$entry"
    package="${source%%/*}"
    gzip -9nc "node_modules/$source" >"$out/$name.gz"
    raw=$(wc -c <"node_modules/$source")
    sum=$(sha256sum "node_modules/$source" | cut -d' ' -f1)
    echo "$name.gz $package@$(version "$package") $raw $sum"
  done
} >"$out/MANIFEST"
for entry in "${licenses[@]}"; do
  read -r source name <<<"$entry"
  cp "node_modules/$source" "$out/$name"
done

# GraphiQL sends graphql-js's getIntrospectionQuery() with no options; take it from the bundle
# itself, so the fixture is what this GraphiQL sends whatever graphql version it was built with.
fixture="$here/../tests/it/fixtures/graphiql-introspection.graphql"
[ "${1:-}" = "--check" ] && fixture="$out/graphiql-introspection.graphql"
node - "$fixture" <<'JS'
const fs = require('node:fs');
const bundle = fs.readFileSync('node_modules/graphiql/graphiql.min.js', 'utf8');
const start = bundle.indexOf('function getIntrospectionQuery(options)');
const end = bundle.indexOf('/***/ })', start);
if (start < 0 || end < 0) throw new Error('getIntrospectionQuery is not in the GraphiQL bundle');
const getIntrospectionQuery = new Function(`${bundle.slice(start, end)}; return getIntrospectionQuery;`)();
fs.writeFileSync(process.argv[2], getIntrospectionQuery());
JS

if [ "${1:-}" = "--check" ]; then
  cmp -s "$fixture" "$here/../tests/it/fixtures/graphiql-introspection.graphql" || {
    echo "tests/it/fixtures/graphiql-introspection.graphql is stale: run bash graphiql/vendor.sh" >&2
    exit 1
  }
  rm "$fixture"
  diff -r "$here/vendor" "$out" >/dev/null || {
    echo "graphiql/vendor is not what package-lock.json gives: run bash graphiql/vendor.sh" >&2
    exit 1
  }
  echo "graphiql/vendor matches package-lock.json"
fi
