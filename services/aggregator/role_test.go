package aggregator

import (
	"errors"
	"flag"
	"io"
	"testing"
	"time"

	"github.com/iochub/iochub/services/aggregator/postgis"
)

func TestRoleConfigRegisterFlags(t *testing.T) {
	var c RoleConfig
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--aggregator-batch-size", "50", "--aggregator-max-deliver", "9", "--statement-timeout", "2s", "--rules-poll-interval", "1s",
		"--observation-retention", "8760h", "--aggregator-member-retention", "720h", "--edge-status-interval", "2m", "--edge-status-timeout", "3s"}); err != nil {
		t.Fatal(err)
	}
	if c.Aggregator.BatchSize != 50 || c.Aggregator.MaxDeliver != 9 || c.Store.StatementTimeout != 2*time.Second || c.Rules.PollInterval != time.Second ||
		c.Aggregator.ObservationRetention != 8760*time.Hour || c.Aggregator.MemberRetention != 720*time.Hour ||
		c.Edges.Interval != 2*time.Minute || c.Edges.Timeout != 3*time.Second {
		t.Errorf("flags not taken: %+v", c)
	}
	var d RoleConfig
	fd := flag.NewFlagSet("t", flag.ContinueOnError)
	d.RegisterFlags(fd)
	if err := fd.Parse(nil); err != nil || d.Aggregator.MemberRetention != DefaultMemberRetention {
		t.Errorf("MemberRetention default = %s (%v); want %s", d.Aggregator.MemberRetention, err, DefaultMemberRetention)
	}
	if d.Store.Lateness != postgis.DefaultLateness {
		t.Errorf("rollup-lateness default = %s; want %s", d.Store.Lateness, postgis.DefaultLateness)
	}
	// --rollup-lateness takes a duration above 0; 0 is refused, not read as the default 2 h.
	if err := fd.Parse([]string{"--rollup-lateness", "30m"}); err != nil || d.Store.Lateness != 30*time.Minute {
		t.Errorf("--rollup-lateness 30m = %s (%v); want 30m", d.Store.Lateness, err)
	}
	// So does --statement-timeout: 0 would otherwise mean the default, not PostgreSQL's "no bound".
	if d.Store.StatementTimeout != postgis.DefaultStatementTimeout {
		t.Errorf("statement-timeout default = %s; want %s", d.Store.StatementTimeout, postgis.DefaultStatementTimeout)
	}
	for _, name := range []string{"--rollup-lateness", "--statement-timeout"} {
		for _, bad := range []string{"0", "0s", "-1m", "soon"} {
			fb := flag.NewFlagSet("t", flag.ContinueOnError)
			fb.SetOutput(io.Discard)
			var b RoleConfig
			b.RegisterFlags(fb)
			if err := fb.Parse([]string{name, bad}); err == nil {
				t.Errorf("%s %s parses (%+v); want an error", name, bad, b.Store)
			}
		}
	}
	if c.Aggregator.AckWait != (Config{}).withDefaults().AckWait {
		t.Errorf("AckWait default = %s; want the aggregator's", c.Aggregator.AckWait)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("valid flags do not validate: %v", err)
	}
	for _, bad := range []RoleConfig{
		{Aggregator: Config{MaxDeliver: -1}},
		{Store: c.Store, Rules: c.Rules, Aggregator: Config{BatchSize: -5}},
		{Store: c.Store, Rules: c.Rules, Aggregator: Config{ObservationRetention: time.Hour}},
		{Store: c.Store, Rules: c.Rules, Aggregator: Config{MemberRetention: 47 * time.Hour}},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v validates (%v); want ErrConfig", bad, err)
		}
	}
	c.Store.StatementTimeout = -time.Second
	if err := c.Validate(); err == nil {
		t.Error("a negative statement timeout validates")
	}
	if _, err := NewRole(RoleConfig{}, RoleDeps{}); !errors.Is(err, ErrConfig) {
		t.Errorf("NewRole without a pool: %v; want ErrConfig", err)
	}
}
