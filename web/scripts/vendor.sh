#!/bin/sh
# vendor.sh copies the MapLibre GL JS and uPlot dist files into app/vendor/ so
# that `go build` embeds them. The files are not committed: package-lock.json pins
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
if [ ! -f node_modules/maplibre-gl/dist/maplibre-gl.js ] || [ ! -f node_modules/uplot/dist/uPlot.iife.min.js ] || [ "$want" != "$have" ]; then
	echo "vendor.sh: npm ci (node_modules missing or stale)" >&2
	npm ci --no-audit --no-fund
	echo "$want" >"$stamp"
fi

mkdir -p app/vendor
# copy SRC DST: copy when it differs.
copy() {
	if ! cmp -s "$1" "$2"; then
		cp "$1" "$2"
		echo "vendor.sh: copied $2" >&2
	fi
}
# MapLibre's CSP build: its worker is a file of its own, not a blob: URL, so the page's
# Content-Security-Policy needs no blob: worker (app/maplibre-start.js names the file).
for f in maplibre-gl-csp.js maplibre-gl-csp-worker.js maplibre-gl.css LICENSE.txt; do
	copy "node_modules/maplibre-gl/dist/$f" "app/vendor/$f"
done
# The standard build, which earlier versions of this script copied, is not loaded.
rm -f app/vendor/maplibre-gl.js
# uPlot (history charts in the detail panel).
copy node_modules/uplot/dist/uPlot.iife.min.js app/vendor/uPlot.iife.min.js
copy node_modules/uplot/dist/uPlot.min.css app/vendor/uPlot.min.css
copy node_modules/uplot/LICENSE app/vendor/uPlot.LICENSE
