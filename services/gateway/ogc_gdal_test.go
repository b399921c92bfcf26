package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/testenv"
)

// TestOGCWithGDAL opens the API with GDAL's OGC API – Features driver
// (ogrinfo OAPIF:…, Debian gdal-bin, scripts/install-deps.sh) as a viewer of
// province 01: it lists the collections, reads stations with a spatial
// filter, and pages through every station in pages of 2, the count matching
// the database's. Without ogrinfo it fails under CI and skips elsewhere.
func TestOGCWithGDAL(t *testing.T) {
	ogrinfo, err := exec.LookPath("ogrinfo")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ogrinfo is missing: run scripts/install-deps.sh (gdal-bin)")
		}
		t.Skip("ogrinfo is missing: run scripts/install-deps.sh (gdal-bin)")
	}
	db := testenv.PostGIS(t)
	ctx := context.Background()
	seedOGC(t, ctx, db)
	// More stations of 01 than one page holds many times over.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO sensor (kind, id, name, province, unit_code, source_id, location, last_event_id, last_observed_at, last_values)
		SELECT 'weather', 'g-' || i, 'G ' || i, '01', '01', 'src', ST_SetSRID(ST_MakePoint(105.4 + i * 0.01, 20.9), 4326), 'g', now(), '{"temperature": 21}'
		FROM generate_series(1, 25) i`); err != nil {
		t.Fatal(err)
	}
	tok, sum := auth.NewToken()
	l := &fakeLoader{list: []auth.Identity{{ID: "id_00000000000000c1", Name: "qgis", Role: auth.RoleViewer, Scopes: []string{"01"}, TokenSHA256: sum}}}
	a := testAuth(t, l)
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{}, Deps{JS: testenv.NATS(t).JS, Pool: db.Pool, Metrics: prometheus.NewRegistry(), Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	g.Register(mux)
	var itemRequests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/items") {
			itemRequests.Add(1)
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { g.Close(); srv.Close() })

	headers := filepath.Join(t.TempDir(), "headers.txt")
	if err := os.WriteFile(headers, []byte("Authorization: Bearer "+tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, ogrinfo, append([]string{"-ro", "--config", "GDAL_HTTP_HEADER_FILE", headers,
			"--config", "CPL_CURL_VERBOSE", "NO", "OAPIF:" + srv.URL + "/ogc"}, args...)...)
		cmd.Env = append(os.Environ(), "GDAL_HTTP_HEADERS=Authorization: Bearer "+tok, "GDAL_HTTP_TIMEOUT=60")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ogrinfo %v: %v\n%s", args, err, out)
		}
		return string(out)
	}

	out := run("-so", "-q")
	for _, c := range []string{"units", "stations", "segments", "alerts", "reports", "rollups"} {
		if !regexp.MustCompile(`(?m)^\d+: ` + c + `\b`).MatchString(out) {
			t.Errorf("ogrinfo lists no collection %s:\n%s", c, out)
		}
	}

	// The box around Hoàn Kiếm holds the air stations hn-1…hn-12 only.
	out = run("-q", "stations", "-spat", "105.83", "21.0", "105.86", "21.03")
	if n := strings.Count(out, "OGRFeature(stations)"); n != 12 {
		t.Errorf("ogrinfo -spat read %d stations; want 12\n%s", n, out)
	}
	if strings.Contains(out, "hcm-1") {
		t.Error("ogrinfo read a station of province 79")
	}

	var want int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM sensor WHERE province = '01' AND kind IN ('air', 'water', 'weather')`).Scan(&want); err != nil {
		t.Fatal(err)
	}
	before := itemRequests.Load()
	out = run("-q", "-oo", "PAGE_SIZE=2", "stations")
	if n := strings.Count(out, "OGRFeature(stations)"); n != want {
		t.Errorf("ogrinfo paged through %d stations; the database has %d of 01\n%s", n, want, out)
	}
	if pages := itemRequests.Load() - before; pages < int64(want/2) {
		t.Errorf("ogrinfo made %d items requests for %d stations in pages of 2; want paging", pages, want)
	}
}
