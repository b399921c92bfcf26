package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
)

// TestCLINational runs the national commands as an admin would:
// national-nats-user prints the province's user, national-add,
// national-list and national-remove change the national hub's ROLLUPS and
// STATE sources, and serve takes --level national.
func TestCLINational(t *testing.T) {
	n := testenv.NATS(t) // with the streams
	ctx := context.Background()
	out, errOut, err := runCLI(t, "national-nats-user", "--province", "01")
	if err != nil || !strings.Contains(out, `"province-01"`) || !strings.Contains(out, "$NATS_PROVINCE_01_PASSWORD") {
		t.Fatalf("national-nats-user: %v\n%s%s", err, out, errOut)
	}
	if _, errOut, err := runCLI(t, "national-add", "--nats-url", n.URL, "--province", "01"); err != nil {
		t.Fatalf("national-add: %v\n%s", err, errOut)
	}
	if _, errOut, err := runCLI(t, "national-add", "--nats-url", n.URL, "--province", "79", "--domain", "hcm-hub"); err != nil {
		t.Fatalf("national-add with a domain: %v\n%s", err, errOut)
	}
	if _, _, err := runCLI(t, "national-add", "--nats-url", n.URL, "--province", "79"); !errors.Is(err, natsx.ErrProvinceSource) {
		t.Fatalf("national-add of 79 under another domain: %v; want ErrProvinceSource", err)
	}
	out, _, err = runCLI(t, "national-list", "--nats-url", n.URL)
	if err != nil || !strings.Contains(out, "province-01") || !strings.Contains(out, "hcm-hub") || strings.Count(out, "ROLLUPS") != 2 {
		t.Fatalf("national-list: %v\n%s", err, out)
	}
	if _, errOut, err := runCLI(t, "national-remove", "--nats-url", n.URL, "--province", "01"); err != nil {
		t.Fatalf("national-remove: %v\n%s", err, errOut)
	}
	for _, name := range []string{subjects.StreamRollups, subjects.StreamState} {
		st, err := n.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if srcs := st.CachedInfo().Config.Sources; len(srcs) != 1 || srcs[0].External.APIPrefix != "$JS.hcm-hub.API" {
			t.Fatalf("%s sources after national-remove: %+v; want 79's only", name, srcs)
		}
	}
	if _, _, err := runCLI(t, "national-add", "--nats-url", n.URL); !errors.Is(err, errUsage) {
		t.Fatalf("national-add without --province: %v; want usage", err)
	}
	if _, _, err := runCLI(t, "national-add", "--nats-url", n.URL, "--province", "01", "--domain", "a.b"); !errors.Is(err, natsx.ErrEdgeUnit) {
		t.Fatalf("national-add with a dotted domain: %v; want ErrEdgeUnit", err)
	}
	out, _, err = runCLI(t, "serve", "--target", "gateway", "--level", "national", "--province-stale-after", "5m", "--check-config")
	if err != nil || !strings.Contains(out, "Level:national") || !strings.Contains(out, "ProvinceStaleAfter:5m0s") {
		t.Fatalf("serve --level national --check-config: %v\n%s", err, out)
	}
	if _, _, err := runCLI(t, "serve", "--target", "gateway", "--level", "regional", "--check-config"); err == nil {
		t.Fatal("serve --level regional accepted")
	}
}
