#!/bin/sh
# api-check.sh validates docs/openapi.yaml (OpenAPI 3.1) with Redocly CLI
# (tools/openapi: package.json and package-lock.json pin the version; this
# script installs it with `npm ci` when node_modules is missing or was
# installed from another lock file, so it is idempotent). Errors fail; the
# rules are tools/openapi/redocly.yaml. The routes themselves are checked
# against the document by `go test ./cmd/iochub -run TestOpenAPIRoutes`.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
tools=$root/tools/openapi
cd "$tools"

if ! command -v npm >/dev/null 2>&1; then
	echo "api-check.sh: npm not found; install Node.js (Debian: apt-get install nodejs npm)" >&2
	exit 1
fi

stamp=node_modules/.iochub-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [ ! -x node_modules/.bin/redocly ] || [ "$want" != "$have" ]; then
	echo "api-check.sh: npm ci (node_modules missing or stale)" >&2
	npm ci --no-audit --no-fund
	echo "$want" >"$stamp"
fi

REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
	node_modules/.bin/redocly lint --config redocly.yaml --format=stylish "$root/docs/openapi.yaml"
