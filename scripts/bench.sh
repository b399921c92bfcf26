#!/usr/bin/env bash
# Runs the benchmarks recorded in docs/benchmarks.md; each prints its figure
# beside a baseline measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=${BENCHTIME:-3s}
echo "# $(go version) on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
go test -run '^$' -bench . -benchtime "$benchtime" -benchmem \
  ./services/ingest/ ./services/aggregator/postgis/ ./services/gateway/ ./cmd/iochub/ ./internal/units/
