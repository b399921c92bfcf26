package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/iocctl"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// runCtl runs iocctl in-process and returns its stdout, stderr and error.
func runCtl(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := iocctl.Run(ctx, args, iocctl.Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }, Home: t.TempDir()})
	return out.String(), errOut.String(), err
}

// TestIocctlKeysAndPublish runs iocctl keys and publish against a whole hub
// (real NATS and PostGIS) and checks what a key of some kinds may read: the
// kinds it names, in its provinces, and never a write to the ingest.
func TestIocctlKeysAndPublish(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	src01, err := postgis.AddSource(context.Background(), db.Pool, postgis.Source{ID: "src01", UnitCode: "01"})
	if err != nil {
		t.Fatal(err)
	}
	h := startHubTB(t, "all", n, db, func(c *config) { c.Auth.IdentityRefresh = 200 * time.Millisecond })

	// keys create, with kinds.
	out, errOut, err := runCtl(t, "keys", "create", "--url", h.url, "--key", devToken, "--name", "air bot", "--scope", "01", "--kinds", "air")
	if err != nil {
		t.Fatalf("keys create: %v\n%s", err, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "viewer of 01, air") || !strings.HasPrefix(lines[1], "iocid_") {
		t.Fatalf("keys create printed %q", out)
	}
	id, key := strings.Fields(lines[0])[1], lines[1]
	if _, _, err := runCtl(t, "keys", "create", "--url", h.url, "--key", devToken, "--name", "x", "--scope", "01", "--kinds", "sewage"); err == nil ||
		!strings.Contains(err.Error(), "400") {
		t.Errorf("keys create with an unknown kind: %v; want 400", err)
	}
	if _, _, err := runCtl(t, "keys", "list", "--url", h.url, "--key", key); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("keys list with a viewer's key: %v; want 403", err)
	}
	out, _, err = runCtl(t, "keys", "list", "--url", h.url, "--key", devToken)
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "air bot") || !strings.Contains(out, " air ") {
		t.Errorf("keys list: %v\n%s", err, out)
	}

	// What the key reads.
	kc := cred{name: "air key", token: key}
	for _, c := range []struct {
		what string
		got  int
		want int
	}{
		{"live air of 01", dialStatus(t, h.url, "province=01&layers=air", kc, ""), 101},
		{"live of 01 (its kinds)", dialStatus(t, h.url, "province=01", kc, ""), 101},
		{"live water of 01", dialStatus(t, h.url, "province=01&layers=air,water", kc, ""), 403},
		{"live air of 79", dialStatus(t, h.url, "province=79&layers=air", kc, ""), 403},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d; want %d", c.what, c.got, c.want)
		}
	}
	if code, _, body := call(t, kc, "GET", h.url+"/v1/alerts?province=01", "", nil); code != http.StatusForbidden || !strings.Contains(body, "kinds air") {
		t.Errorf("alerts with an air key: %d %s; want 403 naming the kinds", code, body)
	}
	for _, coll := range []string{"alerts", "stations", "segments"} {
		if code, _, body := call(t, kc, "GET", h.url+"/ogc/collections/"+coll+"/items", "", nil); code != http.StatusForbidden || !strings.Contains(body, "kinds air") {
			t.Errorf("OGC %s with an air key: %d %s; want 403", coll, code, body)
		}
	}
	if code, _, body := call(t, cred{name: "dev", token: devToken}, "GET", h.url+"/ogc/collections/alerts/items", "", nil); code != http.StatusOK {
		t.Errorf("OGC alerts with the dev token: %d %s; want 200", code, body)
	}
	if code, _, body := call(t, kc, "POST", h.url+"/v1/feeds/air", `[{"id":"x"}]`, nil); code != http.StatusForbidden || !strings.Contains(body, "source") {
		t.Errorf("ingest with an identity key: %d %s; want 403 pointing at source tokens", code, body)
	}

	// publish: NDJSON air items, one bad; CAP XML.
	dir := t.TempDir()
	var nd bytes.Buffer
	now := time.Now().UTC().Truncate(time.Second)
	for i := 0; i < 3; i++ {
		item := airItem(t, fmt.Sprintf("p%d", i), "st-p", 105.8342, 21.0278, now)
		if i == 1 {
			item["location"] = map[string]any{"type": "Point", "coordinates": []float64{200, 21}}
		}
		b, _ := json.Marshal(item)
		nd.Write(append(b, '\n'))
	}
	file := filepath.Join(dir, "air.ndjson")
	if err := os.WriteFile(file, nd.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err = runCtl(t, "publish", "air", file, "--url", h.url, "--token", src01, "--chunk", "2")
	if err == nil || !strings.Contains(out, "3 items: 2 accepted, 0 duplicate, 1 rejected") || !strings.Contains(out, "item 1 (p1): rejected: ") {
		t.Errorf("publish NDJSON: %v\n%s\n%s", err, out, errOut)
	}
	out, _, err = runCtl(t, "publish", "air", file, "--url", h.url, "--token", src01)
	if !strings.Contains(out, "3 items: 0 accepted, 2 duplicate, 1 rejected") {
		t.Errorf("publish NDJSON again: %v\n%s", err, out)
	}
	capFile := filepath.Join(dir, "alert.xml")
	doc := scAlert(t, "cap1", "Alert", "", now, now.Add(time.Hour), "<polygon>21.00,105.80 21.00,105.90 21.10,105.90 21.10,105.80 21.00,105.80</polygon>")
	if err := os.WriteFile(capFile, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, err := runCtl(t, "publish", "alert", capFile, "--url", h.url, "--token", src01); err != nil || !strings.Contains(out, "1 accepted") {
		t.Errorf("publish CAP: %v\n%s\n%s", err, out, errOut)
	}
	if _, _, err := runCtl(t, "publish", "air", file, "--url", h.url, "--token", key); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("publish with an identity key: %v; want 403", err)
	}
	waitRows(t, db, `SELECT count(*) FROM air_observation`, 2)

	// tail on NATS renders what the ingest and the aggregator really published.
	out, errOut, err = runCtl(t, "tail", "ioc.feed.01.>", "--nats-url", n.URL, "--since", "seq:0", "--kind", "air", "--limit", "2")
	if err != nil || strings.Count(out, `"type":"vn.ioc.air.observed.v1"`) != 2 || !strings.Contains(out, `"id":"p0`) || !strings.Contains(out, `"iocstream":"FEEDS"`) {
		t.Errorf("tail FEEDS: %v %s\n%s", err, errOut, out)
	}
	out, errOut, err = runCtl(t, "tail", "ioc.state.01.air.>", "--nats-url", n.URL, "--since", "seq:0", "--limit", "1", "--output", "table")
	if err != nil || !strings.Contains(out, "vn.ioc.air.state.v1") || !strings.Contains(out, "st-p") {
		t.Errorf("tail STATE: %v %s\n%s", err, errOut, out)
	}

	// keys revoke: the key stops working.
	if out, _, err := runCtl(t, "keys", "revoke", id, "--url", h.url, "--key", devToken); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("keys revoke: %v %s", err, out)
	}
	testkit.Eventually(t, 10*time.Second, "the revoked key refused", func() (bool, string) {
		got := dialStatus(t, h.url, "province=01&layers=air", kc, "")
		return got == http.StatusUnauthorized, fmt.Sprint(got)
	})
}
