#!/usr/bin/env bash
# Runs the benchmarks recorded in docs/benchmarks.md; each prints its figure
# beside a baseline measured in the same run (sub-benchmarks named raw*,
# baseline* or *Echo*). BENCHTIME sets -benchtime (default 2s).
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=${BENCHTIME:-2s}
echo "# $(go version) on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%Y-%m-%d)"
go test -run '^$' -bench . -benchtime "$benchtime" -benchmem \
  ./services/ingest/ ./services/aggregator/postgis/ ./services/gateway/ ./services/aggregator/rules/ \
  ./internal/units/ ./internal/aqi/ ./internal/cap/
# The end-to-end latency runs at a fixed rate (50/s), so it is sized by count.
go test -run '^$' -bench 'Latency' -benchtime "${LATENCY_N:-300}x" ./cmd/iochub/
