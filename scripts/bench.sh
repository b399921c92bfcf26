#!/usr/bin/env bash
# Runs the benchmarks recorded in docs/benchmarks.md; each prints its figure
# beside a baseline measured in the same run (sub-benchmarks named raw*,
# baseline* or *Echo*, or metrics named hub/bare, …/raw). BENCHTIME sets
# -benchtime (default 2s). BENCH_QUICK=1 shortens every part (200ms
# benchtime, 100 latency samples, 5 s of end-to-end load, 3 s of fan-out
# load, the partitions' leases at their shortest) to stay under 3 minutes;
# each step prints its time.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${BENCH_QUICK:-}" ]; then
  : "${BENCHTIME:=200ms}" "${LATENCY_N:=100}" "${E2E_DURATION:=5s}" "${DRAIN_EVENTS:=3000}"
fi
benchtime=${BENCHTIME:-2s}
export E2E_DURATION E2E_RATE DRAIN_EVENTS
echo "# $(go version) on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%Y-%m-%d)"
# step runs a command and prints how long it took (BENCH_QUICK's budget).
step() {
  local t0=$SECONDS
  "$@"
  echo "# step took $((SECONDS - t0)) s: ${*:1:6}"
}
# run builds a package's test binary once (the steps below run three of
# them more than once: one link, not one per step) and runs it in the
# package's folder with the given flags.
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
run() {
  local pkg=$1
  shift
  local exe="$bin/${pkg//\//_}.test"
  [ -x "$exe" ] || go test -c -o "$exe" "./$pkg/"
  (cd "$pkg" && "$exe" -test.run '^$' -test.timeout 30m "$@")
}
# Centrifugo, which the live fan-out is compared with (issue 12), built from
# the version tools/centrifugo/go.mod pins (its first build on a machine
# takes about 1.5 min, then go's build cache has it); not in BENCH_QUICK nor
# in make test's smoke run, whose fan-out steps then leave it out.
if [ -z "${BENCH_SMOKE:-}" ] && [ -z "${BENCH_QUICK:-}" ]; then
  step go build -modfile=tools/centrifugo/go.mod -o "$bin/centrifugo" github.com/centrifugal/centrifugo/v6
  export CENTRIFUGO_BIN=$bin/centrifugo
fi
# -p 1: one package's benchmarks at a time (go test runs packages' binaries
# side by side otherwise, on the same two cores).
step go test -p 1 -run '^$' -bench . -benchtime "$benchtime" -benchmem \
  ./services/ingest/ ./services/aggregator/postgis/ ./services/gateway/ ./services/aggregator/rules/ \
  ./internal/units/ ./internal/aqi/ ./internal/cap/
# The aggregator service draining FEEDS, roll-ups on/off, beside a raw
# consumer + COPY (DRAIN_EVENTS per phase, 20000); two iterations, so that
# on and off each go first once (DRAIN_ITERATIONS).
step run services/aggregator -test.bench 'AggregatorDrain' -test.benchtime "${DRAIN_ITERATIONS:-2}x"
# Roll-up latency, one observation at a time: publish on FEEDS → its 1m
# roll-up on ROLLUPS, and commit → ROLLUPS, beside a bare NATS round trip.
step run services/aggregator -test.bench 'RollupLatency' -test.benchtime "${LATENCY_N:-300}x"
# Partitioned aggregators (--partitioned): 1, 2, then 4 instances sharing 8
# provinces, beside one bare consumer + COPY of every province (DRAIN_EVENTS
# per phase).
step run services/aggregator -test.bench 'AggregatorScaling' -test.benchtime 1x
# The end-to-end latency runs at a fixed rate (50/s), so it is sized by count.
step run cmd/iochub -test.bench 'Latency' -test.benchtime "${LATENCY_N:-300}x"
# The end-to-end load (internal/loadgen against the whole hub, beside a bare
# NATS → COPY → NATS pipeline of the same items): E2E_RATE events/s (20000)
# for E2E_DURATION (60s), then as fast as each goes; one run each.
step run cmd/iochub -test.bench 'EndToEndLoad' -test.benchtime 1x
# The hub on 1 NATS server vs a 3-node cluster with R3 streams (5000 events/s
# unless E2E_RATE is set), each beside raw async publishes of the same
# replication.
step run cmd/iochub -test.bench 'ClusterNodes' -test.benchtime 1x
# Live fan-out at issue 12's size: 10,000 clients of one province (the step
# above runs 1,000), the hub with batch frames beside the bare gorilla
# broadcast and Centrifugo, 10 s of load. Neither in BENCH_QUICK (16 s more took it to
# 192 s) nor in make test's smoke run (BENCH_SMOKE): the 1,000 above
# checks that it runs.
if [ -z "${BENCH_SMOKE:-}" ] && [ -z "${BENCH_QUICK:-}" ]; then
  export FANOUT_LOAD_CLIENTS=10000
  step run services/gateway -test.bench 'FanoutLoad/^(hub_batch|gorilla|centrifugo)$' -test.benchtime 1x
  unset FANOUT_LOAD_CLIENTS
fi
echo "# make bench took $SECONDS s"
