package main

import (
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// aggregatorGCPercent is the garbage collector's target (GOGC) of a process
// that runs the aggregator, when GOGC is not set: between collections the
// heap may grow to 4× what is live, not 2× (Go's default, 100). The
// aggregator allocates per event (decoded items, AQI, rows, states) far more
// than it keeps, and its live heap (~120 MB in the drain) is past any cache:
// with 300 its drain used 13–30 % less CPU per event and moved 6–11 % more
// events/s (docs/benchmarks.md, "The collector at GOGC=300"), for a peak RSS
// of 836 MB instead of 494. The ingest alone went the other way (its HTTP
// batches 7 % slower at 300: a small live heap that fits the caches at 100),
// so a process without the aggregator keeps Go's default.
const aggregatorGCPercent = 300

// memLimitRatio is the share of the memory the process may use (its cgroup's
// limit, or else the machine's) set as GOMEMLIMIT: a soft limit near which
// the collector runs as often as it must whatever GOGC says, so that the
// larger GOGC never pushes a small machine or a container past its memory.
// Half, since the hub shares its machine with PostgreSQL and NATS in
// `iochub dev` and often in production. GOMEMLIMIT (or AUTOMEMLIMIT, read by
// the automemlimit library) in the environment takes precedence.
const memLimitRatio = 0.5

// tuneMemory sets the collector of a long-running command (serve, dev,
// edge): GOGC at aggregatorGCPercent when the process runs the aggregator
// and the environment does not set GOGC, and GOMEMLIMIT as memLimitRatio
// says unless the environment sets it; it logs what it set.
func tuneMemory(log *slog.Logger, withAggregator bool) {
	gogc := os.Getenv("GOGC")
	switch {
	case gogc != "":
	case withAggregator:
		debug.SetGCPercent(aggregatorGCPercent)
		gogc = strconv.Itoa(aggregatorGCPercent) + " (iochub's default with the aggregator)"
	default:
		gogc = "100 (Go's default)"
	}
	limit, err := memlimit.Set(memlimit.WithRatio(memLimitRatio),
		memlimit.WithProvider(memlimit.ApplyFallback(memlimit.FromCgroup, memlimit.FromSystem)))
	if err != nil {
		log.Warn("memory: GOMEMLIMIT not set from the memory available", "err", err, "gogc", gogc)
		return
	}
	log.Info("memory: garbage collector", "gogc", gogc, "gomemlimit_mb", limit>>20)
}
