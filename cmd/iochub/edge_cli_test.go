package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iochub/iochub/internal/edge"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// TestCLIEdge runs the edge commands as an admin would: edge-export writes
// the catalogue of a ward, edge --check-config takes it, and edge-add,
// edge-list and edge-remove change the hub's FEEDS sources.
func TestCLIEdge(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	n := testenv.NATS(t)
	ctx := context.Background()
	if _, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "hk", UnitCode: wardIn}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "edge.json")
	if _, errOut, err := runCLI(t, "edge-export", "--database-url", db.URL, "--unit", wardIn, "--out", file); err != nil {
		t.Fatalf("edge-export: %v\n%s", err, errOut)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := edge.ReadCatalog(f)
	f.Close()
	if err != nil || cat.Unit != wardIn || len(cat.Sources) != 1 {
		t.Fatalf("the exported catalogue: unit %s, %d sources, %v; want %s, 1", cat.Unit, len(cat.Sources), err, wardIn)
	}
	out, errOut, err := runCLI(t, "edge", "--unit", wardIn, "--catalog", file, "--hub", "nats-leaf://hub:secret@hub.example:7422", "--check-config")
	if err != nil {
		t.Fatalf("edge --check-config: %v\n%s", err, errOut)
	}
	if strings.Contains(out, "secret") {
		t.Fatalf("--check-config printed the hub password: %s", out)
	}
	for _, bad := range [][]string{
		{"edge", "--unit", "0.1", "--catalog", file},
		{"edge", "--unit", wardIn},
		{"edge", "--unit", wardIn, "--catalog", file, "--hub", "http://hub:7422"},
		{"edge", "--unit", wardIn, "--catalog", file, "--retain", "0s"},
		{"edge", "--unit", wardIn, "--catalog", file, "--retain", "30m", "--check-config"}, // under the 1 h duplicate window
	} {
		if _, _, err := runCLI(t, bad...); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}

	out, errOut, err = runCLI(t, "edge-nats-user", "--unit", wardIn)
	if err != nil || !strings.Contains(out, `"edge-`+wardIn+`"`) || !strings.Contains(out, "$NATS_EDGE_"+wardIn+"_PASSWORD") {
		t.Fatalf("edge-nats-user: %v\n%s%s", err, out, errOut)
	}
	if _, _, err := runCLI(t, "edge-add", "--nats-url", n.URL, "--unit", wardIn); err == nil || !strings.Contains(err.Error(), "--database-url") {
		t.Fatalf("edge-add without a database: %v; want it asked for", err)
	}
	if _, _, err := runCLI(t, "edge-add", "--nats-url", n.URL, "--database-url", db.URL, "--unit", "99999"); !errors.Is(err, edge.ErrUnknownUnit) {
		t.Fatalf("edge-add of a unit the hub does not know: %v; want ErrUnknownUnit", err)
	}
	filter := subjects.FeedUnit("01", wardIn)
	out, errOut, err = runCLI(t, "edge-add", "--nats-url", n.URL, "--database-url", db.URL, "--unit", wardIn)
	if err != nil || !strings.Contains(out, filter) {
		t.Fatalf("edge-add: %v; want the filter %s in\n%s%s", err, filter, out, errOut)
	}
	st, err := n.JS.Stream(ctx, "FEEDS")
	if err != nil {
		t.Fatal(err)
	}
	if srcs := st.CachedInfo().Config.Sources; len(srcs) != 1 || srcs[0].FilterSubject != filter {
		t.Fatalf("FEEDS sources after edge-add: %+v; want one through %s", srcs, filter)
	}
	out, _, err = runCLI(t, "edge-list", "--nats-url", n.URL)
	if err != nil || !strings.Contains(out, "edge-"+wardIn) || !strings.Contains(out, filter) {
		t.Fatalf("edge-list: %v\n%s", err, out)
	}
	if _, errOut, err := runCLI(t, "edge-remove", "--nats-url", n.URL, "--unit", wardIn); err != nil {
		t.Fatalf("edge-remove: %v\n%s", err, errOut)
	}
	if st, err = n.JS.Stream(ctx, "FEEDS"); err != nil {
		t.Fatal(err)
	}
	if srcs := st.CachedInfo().Config.Sources; len(srcs) != 0 {
		t.Fatalf("FEEDS sources after edge-remove: %+v", srcs)
	}
	if _, _, err := runCLI(t, "edge-add", "--nats-url", n.URL); !errors.Is(err, errUsage) {
		t.Fatalf("edge-add without --unit: %v; want usage", err)
	}
}

// TestCLIEdgeHubCA: iochub edge --hub-ca (IOCHUB_HUB_CA) takes a PEM file of
// the hub's CA and refuses, before it starts, a file it cannot read or
// without a certificate, naming the flag.
func TestCLIEdgeHubCA(t *testing.T) {
	files := testkit.WriteTLSFiles(t)
	base := []string{"edge", "--unit", wardIn, "--catalog", "edge.json", "--hub", "nats-leaf://edge:secret@hub.example:7422", "--check-config"}
	out, errOut, err := runCLI(t, append(base, "--hub-ca", files.CA)...)
	if err != nil || !strings.Contains(out, "HubCA:"+files.CA) {
		t.Fatalf("edge --hub-ca CA --check-config: %v; want the CA in\n%s%s", err, out, errOut)
	}
	t.Setenv("IOCHUB_HUB_CA", files.CA)
	if out, _, err := runCLI(t, base...); err != nil || !strings.Contains(out, "HubCA:"+files.CA) {
		t.Fatalf("edge with IOCHUB_HUB_CA: %v; want the CA in\n%s", err, out)
	}
	for _, c := range []struct{ file, want string }{
		{files.Key, "no PEM certificate"},
		{filepath.Join(t.TempDir(), "missing.pem"), "no such file"},
	} {
		if _, _, err := runCLI(t, append(base, "--hub-ca", c.file)...); err == nil || !strings.Contains(err.Error(), "--hub-ca") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("edge --hub-ca %s: %v; want an error naming --hub-ca: %s", c.file, err, c.want)
		}
	}
}
