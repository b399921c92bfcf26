package ingest_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iochub/iochub/internal/units"
	"github.com/iochub/iochub/services/aggregator/postgis"
	"github.com/iochub/iochub/services/ingest"
)

// postGIS creates a fresh, migrated database on the machine's PostgreSQL
// (IOCHUB_TEST_POSTGRES_URL, else postgres@127.0.0.1:5432) and drops it at
// cleanup. Without PostgreSQL the test is skipped, and fails under CI.
func postGIS(t *testing.T) *pgxpool.Pool {
	t.Helper()
	admin := os.Getenv("IOCHUB_TEST_POSTGRES_URL")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL with PostGIS is required under CI: %v", err)
		}
		t.Skipf("no PostgreSQL at %s: %v", admin, err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "ingest_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	url := replaceDB(admin, name)
	if err := postgis.Migrate(ctx, url); err != nil {
		t.Fatalf("migrating: %v", err)
	}
	pool, err := postgis.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func replaceDB(url, db string) string {
	// postgres://user@host:port/DB?params
	start := len("postgres://")
	for i := start; i < len(url); i++ {
		if url[i] == '/' {
			end := i + 1
			for end < len(url) && url[end] != '?' {
				end++
			}
			return url[:i+1] + db + url[end:]
		}
	}
	return url + "/" + db
}

// TestPostGISCatalog loads units and sources from a real PostGIS and
// authenticates by the stored token hash.
func TestPostGISCatalog(t *testing.T) {
	pool := postGIS(t)
	ctx := context.Background()
	us := testUnits(t)
	for _, u := range us {
		b := u.Boundary
		b.SetSRID(4326)
		var parent any
		if u.ParentCode != "" {
			parent = u.ParentCode
		}
		if _, err := pool.Exec(ctx, `INSERT INTO admin_unit (code, level, parent_code, name_vi, name_en, boundary, valid_from)
			VALUES ($1, $2, $3, $4, $5, $6, '2025-07-01')`, u.Code, u.Level, parent, u.NameVI, u.NameEN, b); err != nil {
			t.Fatalf("inserting unit %s: %v", u.Code, err)
		}
	}
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

	loaded, err := units.Load(ctx, pool)
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
