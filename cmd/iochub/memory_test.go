package main

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"testing"

	"github.com/pbnjay/memory"
)

// gcPercent is the collector's GOGC now (SetGCPercent has no read-only
// form; a negative value would turn the collector off).
func gcPercent() int {
	pct := debug.SetGCPercent(100)
	debug.SetGCPercent(pct)
	return pct
}

// restoreGC puts the collector's settings back as they were when the test ends.
func restoreGC(t *testing.T) {
	pct, limit := gcPercent(), debug.SetMemoryLimit(-1) // a negative limit only reads it
	t.Cleanup(func() { debug.SetGCPercent(pct); debug.SetMemoryLimit(limit) })
}

func TestTuneMemoryDefaults(t *testing.T) {
	restoreGC(t)
	for _, v := range []string{"GOGC", "GOMEMLIMIT", "AUTOMEMLIMIT"} {
		t.Setenv(v, "") // restored when the test ends
		_ = os.Unsetenv(v)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	debug.SetGCPercent(100)
	tuneMemory(slog.New(slog.DiscardHandler), false)
	if got := gcPercent(); got != 100 {
		t.Errorf("GC percent without the aggregator %d; want Go's 100", got)
	}
	tuneMemory(slog.New(slog.DiscardHandler), true)
	if got := gcPercent(); got != aggregatorGCPercent {
		t.Errorf("GC percent with the aggregator %d; want %d", got, aggregatorGCPercent)
	}
	// Half of the cgroup's limit or, without one, of the machine's memory.
	limit, total := debug.SetMemoryLimit(-1), memory.TotalMemory()
	if limit <= 0 || limit == math.MaxInt64 || uint64(limit) > total/2 {
		t.Errorf("GOMEMLIMIT %d; want at most half of the machine's %d bytes", limit, total)
	}
}

func TestTuneMemoryEnvironmentFirst(t *testing.T) {
	restoreGC(t)
	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "1GiB")
	// The runtime read both when the process started.
	debug.SetGCPercent(150)
	debug.SetMemoryLimit(1 << 30)
	tuneMemory(slog.New(slog.DiscardHandler), true)
	if got := gcPercent(); got != 150 {
		t.Errorf("GC percent %d; want GOGC's 150", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Errorf("GOMEMLIMIT %d; want the environment's %d", got, 1<<30)
	}
}
