#!/bin/sh
# asyncapi-check.sh validates docs/asyncapi.yaml with the AsyncAPI parser
# (@asyncapi/parser from npm). tools/asyncapi/package-lock.json pins it; the
# packages are installed with `npm ci` into tools/asyncapi/node_modules (never
# committed) when missing or installed from another lock file. Idempotent.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/tools/asyncapi"

if ! command -v npm >/dev/null 2>&1; then
	echo "asyncapi-check.sh: npm not found; install Node.js (Debian: apt-get install nodejs npm)" >&2
	exit 1
fi
stamp="$dir/node_modules/.iochub-lock.sha256"
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [ ! -d "$dir/node_modules/@asyncapi/parser" ] || [ "$want" != "$have" ]; then
	echo "asyncapi-check.sh: npm ci (node_modules missing or stale)" >&2
	(cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts)
	echo "$want" >"$stamp"
fi
node "$dir/check.mjs" "${1:-$root/docs/asyncapi.yaml}"
