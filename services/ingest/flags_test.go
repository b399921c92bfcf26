package ingest

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestConfigRegisterFlags(t *testing.T) {
	parse := func(args ...string) (Config, error) {
		var c Config
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.RegisterFlags(fs)
		return c, fs.Parse(args)
	}
	c, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("the flag defaults do not validate: %v", err)
	}
	d := Config{}.withDefaults()
	if c.MaxBodyBytes != d.MaxBodyBytes || c.MaxItems != d.MaxItems || c.RefreshEvery != d.RefreshEvery || c.AlertScope != AlertScopeProvince {
		t.Errorf("flag defaults %+v; want the service's defaults %+v", c, d)
	}
	// MaxSources follows MaxConcurrent and BodyTimeout is the command's --body-timeout: not flags here.
	if l, d := c.Limits, (Limits{}).withDefaults(); l.SourceConcurrency != d.SourceConcurrency || l.SourceRate != d.SourceRate ||
		l.SourceBurst != d.SourceBurst || l.MaxConcurrent != d.MaxConcurrent {
		t.Errorf("limit flag defaults %+v; want %+v", l, d)
	}

	c, err = parse("--source-concurrency", "0", "--source-rate", "0", "--max-concurrent", "0", "--source-burst", "7", "--max-items", "5", "--max-future", "-1s")
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.SourceConcurrency >= 0 || c.Limits.SourceRate >= 0 || c.Limits.MaxConcurrent >= 0 {
		t.Errorf("0 (no limit) on the command line gave %+v; want negative (off)", c.Limits)
	}
	if c.Limits.SourceBurst != 7 || c.MaxItems != 5 || c.MaxFuture != -time.Second {
		t.Errorf("flags not taken: %+v", c)
	}
	for _, args := range [][]string{{"--source-rate", "-1"}, {"--source-rate", "NaN"}, {"--source-concurrency", "-3"}, {"--max-concurrent", "x"}} {
		if _, err := parse(args...); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: got %v; want an error naming %s", args, err, args[0])
		}
	}
}

func TestLimitsMaxSourcesFollowsMaxConcurrent(t *testing.T) {
	l := Limits{MaxConcurrent: 20000}
	if err := l.Validate(); err != nil {
		t.Errorf("MaxConcurrent 20000 with the default MaxSources: %v", err)
	}
	if got := l.withDefaults().MaxSources; got != 40000 {
		t.Errorf("MaxSources default = %d; want 40000 (twice MaxConcurrent)", got)
	}
}
