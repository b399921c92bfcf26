package ingest_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/units"
	"github.com/iochub/iochub/services/ingest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestPostGISCatalog loads the units imported by schema.ImportUnits and the
// sources from a real PostGIS, and authenticates by the stored token hash.
func TestPostGISCatalog(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	pool := db.Pool
	ctx := context.Background()
	us := testUnits(t)
	// A closed (historical) unit must not be loaded.
	if _, err := pool.Exec(ctx, `INSERT INTO admin_unit (code, level, name_vi, boundary, valid_from, valid_to)
		SELECT 'OLD', 'province', 'Hà Tây', boundary, '2000-01-01', '2008-08-01' FROM admin_unit WHERE code = '01'`); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		id, unit, token string
		disabled        bool
	}{{"hk", "00070", tokWard, false}, {"old", "00070", "tok-disabled", true}} {
		h := sha256.Sum256([]byte(s.token))
		var dis any
		if s.disabled {
			dis = time.Now()
		}
		if _, err := pool.Exec(ctx, `INSERT INTO source (id, unit_code, token_sha256, disabled_at) VALUES ($1, $2, $3, $4)`,
			s.id, s.unit, h[:], dis); err != nil {
			t.Fatal(err)
		}
	}

	loaded, err := schema.LoadUnits(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != len(us) {
		t.Fatalf("Load: got %d units; want %d (the closed one left out)", len(loaded), len(us))
	}
	ix := units.NewIndex(loaded)
	if u, ok := ix.Locate(hoanKiem[0], hoanKiem[1]); !ok || u.Code != "00070" || u.NameVI != "Hoàn Kiếm" || u.ParentCode != "01" {
		t.Errorf("Locate(Hoàn Kiếm) on loaded units: got %+v, %v; want 00070 Hoàn Kiếm of 01", u, ok)
	}

	ne := startNATS(t)
	svc, err := ingest.New(ingest.Config{RefreshEvery: time.Hour}, ingest.Deps{JS: ne.js, Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	if r := postTo(t, hs.URL, "air", tokWard, "", arr(t, air("p1", hoanKiem))); r.code != 503 {
		t.Errorf("before the first refresh: got HTTP %d; want 503: %s", r.code, r.raw)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	if err := svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	r := postTo(t, hs.URL, "air", tokWard, "", arr(t, air("p1", hoanKiem), air("p2", cauGiay)))
	if r.code != 202 || r.resp.Accepted != 1 || r.resp.Results[0].Unit != "00070" || r.resp.Results[1].Status != "rejected" {
		t.Errorf("got HTTP %d %s; want p1 accepted in 00070 and p2 rejected", r.code, r.raw)
	}
	if r := postTo(t, hs.URL, "air", "tok-disabled", "", arr(t, air("p3", hoanKiem))); r.code != 401 {
		t.Errorf("disabled source: got HTTP %d; want 401", r.code)
	}
}
