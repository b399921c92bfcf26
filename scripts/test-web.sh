#!/usr/bin/env bash
# Starts `iochub dev` (embedded NATS, private PostGIS, simulator) on a free port
# in a fresh data dir, then drives the wall screen in Debian's Chromium with
# playwright-core (web/test), first against that server, then against the mock.
# Stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
# The app's logic first, without a browser: JSDoc types checked by TypeScript
# (a devDependency, no build output) and the unit tests of web/test/unit.
web/scripts/vendor.sh
echo "wall screen: tsc --noEmit --checkJs"
(cd web && node_modules/.bin/tsc -p .)
echo "wall screen: unit tests"
node --test web/test/unit/
work=$(mktemp -d /tmp/iochub-web.XXXXXX)
chmod 755 "$work"
out="$work/stdout.log"
err="$work/stderr.log"
bin/iochub dev --data-dir "$work/data" --http 127.0.0.1:0 --sim-interval 1s --dev-token web-test >"$out" 2>"$err" &
pid=$!
cleanup() {
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
url=""
for _ in $(seq 1 300); do
  url=$(grep -oE 'wall screen +http://[^ ]+' "$out" 2>/dev/null | awk '{print $3}' || true)
  [ -n "$url" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "iochub dev exited early:" >&2; cat "$err" >&2; exit 1
  fi
  sleep 0.2
done
if [ -z "$url" ]; then echo "iochub dev did not start in 60 s:" >&2; tail -50 "$err" >&2; exit 1; fi
echo "wall screen test against $url"
if ! IOCHUB_URL="$url" IOCHUB_TOKEN=web-test node --test web/test/wall.test.mjs; then
  echo "--- iochub dev log (tail) ---" >&2; tail -40 "$err" >&2; exit 1
fi
# The mock run below writes the same screenshots: keep the real server's
# 1920×1080 wall (the one docs/wall.png is taken from).
cp web/test-results/wall.png web/test-results/wall-real.png
# A gateway restart: a kiosk screen signed in with the dev token must say it
# lost the link, then resume by itself (same address, same data dir, so its
# session cookie, signed with the data dir's key, stays valid).
echo "wall screen through a restart of iochub dev"
ready="$work/restart-ready"
IOCHUB_TOKEN=web-test node web/scripts/restart-check.mjs "$url" "$ready" &
check=$!
for _ in $(seq 1 600); do
  [ -f "$ready" ] && break
  kill -0 "$check" 2>/dev/null || break
  sleep 0.2
done
if [ ! -f "$ready" ]; then
  echo "restart check did not get online" >&2; wait "$check" || true; exit 1
fi
addr=$(printf '%s' "$url" | sed -E 's#^http://([^/]+)/.*#\1#')
kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
kill -KILL "$pid" 2>/dev/null || true
bin/iochub dev --data-dir "$work/data" --http "$addr" --sim-interval 1s --dev-token web-test >"$out" 2>"$err" &
pid=$!
if ! wait "$check"; then
  echo "--- iochub dev log after the restart (tail) ---" >&2; tail -40 "$err" >&2; exit 1
fi
# What a real server cannot be made to do on demand (drop the socket, send a
# burst, lose vendor/), and the reports panel, run against web/test/mock-server.mjs;
# its own self-test first checks its frames against the gateway's golden files.
echo "wall screen tests against the mock server"
env -u IOCHUB_URL node --test web/test/mock-server.mjs web/test/wall.test.mjs web/test/reports.test.mjs
