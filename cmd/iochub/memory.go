package main

import (
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// hubGCPercent is the garbage collector's target (GOGC) of a long-running
// hub process when GOGC is not set: between collections the heap may grow
// to 4× what is live, not 2× (Go's default, 100). A hub allocates per event
// (decoded items, states, frames) far more than it keeps, so it collected
// often: in the aggregator's drain the collector took 13 % of the process's
// CPU. With 300 the drain used 13–30 % less CPU per event and moved 7–10 %
// more events/s, the end-to-end load 2–8 % more (docs/benchmarks.md), for a
// larger heap between collections (about 4× the live heap instead of 2×;
// the drain's live heap is ~120 MB). GOGC in the environment takes precedence.
const hubGCPercent = 300

// memLimitRatio is the share of the memory the process may use (its cgroup's
// limit, or else the machine's) set as GOMEMLIMIT: a soft limit near which
// the collector runs as often as it must whatever GOGC says, so that the
// larger GOGC never pushes a small machine or a container past its memory.
// Half, since the hub shares its machine with PostgreSQL and NATS in
// `iochub dev` and often in production. GOMEMLIMIT (or AUTOMEMLIMIT, read by
// the automemlimit library) in the environment takes precedence.
const memLimitRatio = 0.5

// tuneMemory sets the collector of a long-running command (serve, dev,
// edge) as hubGCPercent and memLimitRatio say, unless the environment
// does, and logs what it set.
func tuneMemory(log *slog.Logger) {
	gogc := os.Getenv("GOGC")
	if gogc == "" {
		debug.SetGCPercent(hubGCPercent)
		gogc = strconv.Itoa(hubGCPercent) + " (iochub's default)"
	}
	limit, err := memlimit.Set(memlimit.WithRatio(memLimitRatio),
		memlimit.WithProvider(memlimit.ApplyFallback(memlimit.FromCgroup, memlimit.FromSystem)))
	if err != nil {
		log.Warn("memory: GOMEMLIMIT not set from the memory available", "err", err, "gogc", gogc)
		return
	}
	log.Info("memory: garbage collector", "gogc", gogc, "gomemlimit_mb", limit>>20)
}
