#!/bin/sh
# vendor.sh copies the MapLibre GL JS dist files into app/vendor/ so that
# `go build` embeds them. The files are not committed: package-lock.json pins
# the version and this script installs it with `npm ci` when node_modules is
# missing or was installed from another lock file. Idempotent; safe to run
# before every build.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

if ! command -v npm >/dev/null 2>&1; then
	echo "vendor.sh: npm not found; install Node.js (Debian: apt-get install nodejs npm)" >&2
	exit 1
fi

stamp=node_modules/.iochub-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [ ! -f node_modules/maplibre-gl/dist/maplibre-gl.js ] || [ "$want" != "$have" ]; then
	echo "vendor.sh: npm ci (node_modules missing or stale)" >&2
	npm ci --no-audit --no-fund
	echo "$want" >"$stamp"
fi

mkdir -p app/vendor
for f in maplibre-gl.js maplibre-gl.css LICENSE.txt; do
	src=node_modules/maplibre-gl/dist/$f
	dst=app/vendor/$f
	if ! cmp -s "$src" "$dst"; then
		cp "$src" "$dst"
		echo "vendor.sh: copied $f" >&2
	fi
done
