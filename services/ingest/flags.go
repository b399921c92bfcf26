package ingest

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/iochub/iochub/internal/flagx"
)

// RegisterFlags registers the ingest's settings on fs (each also read from
// its IOCHUB_* variable by the command), with the defaults of withDefaults as
// flag defaults so that --help shows the values in force.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := Config{}.withDefaults()
	flagx.Positive(fs, &c.MaxBodyBytes, "max-body-bytes", d.MaxBodyBytes, "largest ingest request body in bytes (IOCHUB_MAX_BODY_BYTES)")
	flagx.Positive(fs, &c.MaxItems, "max-items", d.MaxItems, "most items in one ingest request (IOCHUB_MAX_ITEMS)")
	flagx.Positive(fs, &c.PublishTimeout, "publish-timeout", d.PublishTimeout, "longest wait for JetStream to store one request's items (IOCHUB_PUBLISH_TIMEOUT)")
	flagx.NonZero(fs, &c.MaxFuture, "max-future", d.MaxFuture, "no check", "how far ahead of the hub's clock an observation may be dated; negative turns the check off (IOCHUB_MAX_FUTURE)")
	fs.DurationVar(&c.MaxAge, "max-age", c.MaxAge, "how far behind the hub's clock an observation may be dated; 0 means no limit but 2000-01-01 (IOCHUB_MAX_AGE)")
	flagx.Positive(fs, &c.RefreshEvery, "catalog-refresh", d.RefreshEvery, "how often the ingest re-reads units and sources from PostGIS (IOCHUB_CATALOG_REFRESH)")
	flagx.Positive(fs, &c.MaxPending, "max-pending", d.MaxPending, "most JetStream publishes in flight for the whole ingest (IOCHUB_MAX_PENDING)")
	if c.AlertScope == "" {
		c.AlertScope = AlertScopeProvince
	}
	fs.StringVar(&c.AlertScope, "alert-scope", c.AlertScope, "where a source bound to a unit may send alert areas: province (of its unit) or unit (IOCHUB_ALERT_SCOPE)")
	c.Limits.RegisterFlags(fs)
}

// RegisterFlags registers the request limits on fs. On the command line 0
// means no limit (stored as a negative value, which Limits reads as off).
// The body deadline (--body-timeout) is the HTTP server's, which the command
// copies into BodyTimeout.
func (l *Limits) RegisterFlags(fs *flag.FlagSet) {
	d := Limits{}.withDefaults()
	l.SourceConcurrency, l.SourceRate, l.MaxConcurrent = d.SourceConcurrency, d.SourceRate, d.MaxConcurrent
	l.SourceBurst = d.SourceBurst
	fs.Var(offInt{&l.SourceConcurrency, "source-concurrency"}, "source-concurrency", "most ingest requests of one source in flight; 0 means no limit (IOCHUB_SOURCE_CONCURRENCY)")
	fs.Var(offFloat{&l.SourceRate, "source-rate"}, "source-rate", "ingest requests per second one source may sustain; 0 means no limit (IOCHUB_SOURCE_RATE)")
	flagx.Positive(fs, &l.SourceBurst, "source-burst", l.SourceBurst, "requests one source may send at once above --source-rate, at least 1 (IOCHUB_SOURCE_BURST)")
	fs.Var(offInt{&l.MaxConcurrent, "max-concurrent"}, "max-concurrent", "most ingest requests in flight in all; 0 means no limit (IOCHUB_MAX_CONCURRENT)")
}

// offInt is an int flag named name where 0 (no limit) is stored as -1.
type offInt struct {
	p    *int
	name string
}

func (v offInt) String() string {
	if v.p == nil || *v.p < 0 {
		return "0"
	}
	return strconv.Itoa(*v.p)
}

func (v offInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("--%s %q: want 0 (no limit) or a positive whole number", v.name, s)
	}
	if n == 0 {
		n = -1
	}
	*v.p = n
	return nil
}

// offFloat is a float64 flag named name where 0 (no limit) is stored as -1.
type offFloat struct {
	p    *float64
	name string
}

func (v offFloat) String() string {
	if v.p == nil || *v.p < 0 {
		return "0"
	}
	return strconv.FormatFloat(*v.p, 'g', -1, 64)
}

func (v offFloat) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("--%s %q: want 0 (no limit) or a positive number", v.name, s)
	}
	if f == 0 {
		f = -1
	}
	*v.p = f
	return nil
}

// OffDuration maps a command-line duration where 0 means no bound onto the
// ingest's convention (0 the default, negative off).
func OffDuration(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
