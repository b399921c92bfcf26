package testenv_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestNATS(t *testing.T) {
	env := testenv.NATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subj := subjects.Feed("01", "00070", subjects.KindAir)
	if _, err := env.JS.Publish(ctx, subj, []byte("hello"), jetstream.WithMsgID("a")); err != nil {
		t.Fatal(err)
	}
	ack, err := env.JS.Publish(ctx, subj, []byte("hello"), jetstream.WithMsgID("a"))
	if err != nil {
		t.Fatal(err)
	}
	if !ack.Duplicate {
		t.Errorf("got duplicate=%v for a repeated Nats-Msg-Id; want true (FEEDS dedups)", ack.Duplicate)
	}
	for _, name := range []string{subjects.StreamFeeds, subjects.StreamState} {
		s, err := env.JS.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if name == subjects.StreamFeeds {
			if got := s.CachedInfo().State.Msgs; got != 1 {
				t.Errorf("got %d messages in FEEDS; want 1", got)
			}
		}
	}
}

func TestPostGISIsolatedAndDropped(t *testing.T) {
	var first string
	t.Run("first", func(t *testing.T) {
		db := testenv.PostGIS(t)
		first = db.Name
		ctx := context.Background()
		if _, err := db.Pool.Exec(ctx, `INSERT INTO audit_log (actor, action) VALUES ('test', 'x')`); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("second", func(t *testing.T) {
		db := testenv.PostGIS(t)
		ctx := context.Background()
		if db.Name == first {
			t.Fatalf("got the same database %s twice", db.Name)
		}
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("got %d audit rows in a fresh database; want 0", n)
		}
		var exists bool
		if err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, first).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Errorf("database %s still exists after its test; want dropped", first)
		}
		var area float64
		if err := db.Pool.QueryRow(ctx, `SELECT ST_Area('POLYGON((0 0,2 0,2 3,0 3,0 0))'::geometry)`).Scan(&area); err != nil {
			t.Fatal(err)
		}
		if area != 6 {
			t.Errorf("got area %v; want 6", area)
		}
	})
}

func countUnits(t *testing.T, db *testenv.DBEnv) (provinces, hanoiCommunes int) {
	t.Helper()
	err := db.Pool.QueryRow(context.Background(), `
		SELECT count(*) FILTER (WHERE level = 'province'),
		       count(*) FILTER (WHERE level = 'commune' AND parent_code = '01')
		FROM admin_unit WHERE valid_to IS NULL`).Scan(&provinces, &hanoiCommunes)
	if err != nil {
		t.Fatal(err)
	}
	return provinces, hanoiCommunes
}

func TestUnits(t *testing.T) {
	t.Run("PostGISWithUnits", func(t *testing.T) {
		t.Parallel()
		db := testenv.PostGISWithUnits(t)
		if p, c := countUnits(t, db); p != 34 || c != 126 {
			t.Errorf("got %d provinces and %d communes of 01; want 34 and 126", p, c)
		}
	})
	t.Run("PostGISWithUnits again", func(t *testing.T) {
		t.Parallel()
		db := testenv.PostGISWithUnits(t)
		if _, err := db.Pool.Exec(context.Background(), `DELETE FROM admin_unit WHERE level = 'commune'`); err != nil {
			t.Fatal(err)
		}
		if p, c := countUnits(t, db); p != 34 || c != 0 {
			t.Errorf("got %d provinces and %d communes of 01; want 34 and 0", p, c)
		}
	})
	t.Run("WithUnits", func(t *testing.T) {
		t.Parallel()
		db := testenv.PostGIS(t)
		if p, c := countUnits(t, db); p != 0 || c != 0 {
			t.Fatalf("got %d provinces and %d communes before import; want none", p, c)
		}
		testenv.WithUnits(t, db)
		if p, c := countUnits(t, db); p != 34 || c != 126 {
			t.Errorf("got %d provinces and %d communes of 01; want 34 and 126", p, c)
		}
	})
}
