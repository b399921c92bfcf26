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
	svc, err := ingest.New(t.Context(), ingest.Config{RefreshEvery: time.Hour}, ingest.Deps{JS: ne.js, Pool: pool})
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

	// A source added while the units stay as they were (the refresh keeps
	// its map and reads the sources), then a new commune inside Hoàn Kiếm
	// (the refresh sees admin_unit changed and reads the map again).
	h := sha256.Sum256([]byte("tok-new"))
	if _, err := pool.Exec(ctx, `INSERT INTO source (id, unit_code, token_sha256) VALUES ('new', '01', $1)`, h[:]); err != nil {
		t.Fatal(err)
	}
	if err := svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if r := postTo(t, hs.URL, "air", "tok-new", "", arr(t, air("p4", hoanKiem))); r.code != 202 || r.resp.Results[0].Unit != "00070" {
		t.Fatalf("a source added since: got HTTP %d %s; want p4 accepted in 00070", r.code, r.raw)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from)
		VALUES ('T1', 'commune', '01', 'Thử', ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint($1, $2), 4326), 0.001)), '2025-07-01')`,
		hoanKiem[0], hoanKiem[1]); err != nil {
		t.Fatal(err)
	}
	if err := svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if r := postTo(t, hs.URL, "air", "tok-new", "", arr(t, air("p5", hoanKiem))); r.code != 202 || r.resp.Results[0].Unit != "T1" {
		t.Fatalf("a commune imported since: got HTTP %d %s; want p5 accepted in T1", r.code, r.raw)
	}
}

// TestUnitVersionsSignature: the signature of admin_unit stays while
// nothing changes and changes when a version is added or closed.
func TestUnitVersionsSignature(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	sig := func() schema.UnitsSignature {
		t.Helper()
		s, err := schema.UnitVersionsSignature(ctx, db.Pool)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := sig()
	if again := sig(); again != first || first.Versions == 0 {
		t.Fatalf("signature %+v then %+v; want equal, of the seeded units", first, again)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE admin_unit SET valid_to = '2026-01-01' WHERE code = '00070' AND valid_to IS NULL`); err != nil {
		t.Fatal(err)
	}
	closed := sig()
	if closed == first {
		t.Fatal("closing a version left the signature as it was")
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from)
		SELECT code, level, parent_code, name_vi, boundary, '2026-01-01' FROM admin_unit WHERE code = '00070'`); err != nil {
		t.Fatal(err)
	}
	added := sig()
	if added == closed {
		t.Fatal("adding a version left the signature as it was")
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE admin_unit SET parent_code = CASE WHEN parent_code IS NULL THEN 'VN' END WHERE code = '01'`); err != nil {
		t.Fatal(err)
	}
	if sig() == added {
		t.Fatal("a parent changed in place left the signature as it was")
	}
}
