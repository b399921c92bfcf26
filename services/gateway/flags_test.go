package gateway

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestConfigRegisterFlags(t *testing.T) {
	parse := func(args ...string) (Config, OperatorConfig, error) {
		var c Config
		var o OperatorConfig
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.RegisterFlags(fs)
		o.RegisterFlags(fs)
		return c, o, fs.Parse(args)
	}
	c, o, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("the flag defaults do not validate: %v", err)
	}
	if c.AllowedOrigins != nil {
		t.Errorf("default AllowedOrigins = %q; want none (same origin only)", c.AllowedOrigins)
	}
	if d := (Config{}).withDefaults(); c.SendQueue != d.SendQueue || c.MaxClientsPerIdentity != d.MaxClientsPerIdentity || c.WriteTimeout != d.WriteTimeout {
		t.Errorf("flag defaults %+v; want the gateway's defaults %+v", c, d)
	}
	if c.MaxClients != DefaultMaxLive {
		t.Errorf("default --max-live = %d; want %d (a cap, not none)", c.MaxClients, DefaultMaxLive)
	}
	if c, _, err := parse("--max-live", "0"); err != nil || c.MaxClients != 0 {
		t.Errorf("--max-live 0 = %d, %v; want 0 (no cap)", c.MaxClients, err)
	}
	if o.PublishTimeout != defaultActionPublishTimeout {
		t.Errorf("operator publish timeout default = %s; want %s", o.PublishTimeout, defaultActionPublishTimeout)
	}

	c, _, err = parse("--allowed-origins", " https://a.example, ,https://b.example ", "--max-live-per-identity", "3", "--max-live", "100", "--live-provinces", "01,79")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://a.example", "https://b.example"}; !slices.Equal(c.AllowedOrigins, want) {
		t.Errorf("AllowedOrigins = %q; want %q", c.AllowedOrigins, want)
	}
	if c.MaxClientsPerIdentity != 3 || c.MaxClients != 100 || !slices.Equal(c.Provinces, []string{"01", "79"}) {
		t.Errorf("flags not taken: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("valid flags do not validate: %v", err)
	}
	for _, v := range []string{"-1", "0"} {
		if _, _, err := parse("--live-send-queue", v); err == nil {
			t.Errorf("--live-send-queue %s is taken", v)
		}
	}
	if err := (Config{SendQueue: -1}).Validate(); err == nil {
		t.Error("SendQueue -1 validates")
	}
}
