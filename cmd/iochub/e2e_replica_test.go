package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/internal/pgcluster"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
)

// TestReadsFromStreamingReplica runs the hub with its reads on a real
// streaming replica (pg_basebackup of the primary, hot standby): what the
// aggregator writes on the primary reaches GET /v1/history through the
// replica; while the replica's replay is paused, a write the primary has
// already committed stays invisible to the API (so the reads do go to the
// replica), and it appears once replay resumes.
func TestReadsFromStreamingReplica(t *testing.T) {
	ctx := context.Background()
	start := func(what string, f func(dir string) (*pgcluster.Cluster, error)) *pgcluster.Cluster {
		t.Helper()
		dir, err := os.MkdirTemp("", "iochub-replica-") // os.TempDir is world-traversable; the postgres user must enter it
		if err != nil {
			t.Fatal(err)
		}
		c, err := f(dir)
		if err != nil {
			_ = os.RemoveAll(dir)
			if (errors.Is(err, pgcluster.ErrNoPostgres) || errors.Is(err, pgcluster.ErrNoPostGIS)) && os.Getenv("CI") == "" {
				t.Skipf("no PostgreSQL with PostGIS: %v", err)
			}
			t.Fatalf("starting the %s: %v", what, err)
		}
		t.Cleanup(func() {
			if err := c.Stop(context.Background()); err != nil {
				t.Errorf("stopping the %s: %v", what, err)
			}
		})
		return c
	}
	primary := start("primary", func(dir string) (*pgcluster.Cluster, error) {
		return pgcluster.Start(ctx, pgcluster.Config{Dir: dir, Fast: true, Ephemeral: true})
	})
	if err := primary.CreateDatabase(ctx, "iochub"); err != nil {
		t.Fatal(err)
	}
	if err := schema.Migrate(ctx, primary.URL("iochub")); err != nil {
		t.Fatal(err)
	}
	pool, err := schema.Open(ctx, primary.URL("iochub"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	db := &testenv.DBEnv{URL: primary.URL("iochub"), Name: "iochub", Pool: pool}
	testenv.WithUnits(t, db)

	replica := start("replica", func(dir string) (*pgcluster.Cluster, error) {
		return primary.StartReplica(ctx, pgcluster.Config{Dir: dir, Fast: true, Ephemeral: true})
	})
	read, err := openReadPool(ctx, defaults(), replica.URL("iochub"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(read.Close)
	admin, err := pgx.Connect(ctx, replica.URL("postgres")) // pauses and resumes the replica's replay
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close(context.Background()) })

	base := startHubWith(t, testenv.NATS(t), db, func(d *roleDeps) { d.readPool = read })
	const station = "urn:ngsi-ld:Device:HK-REPLICA-1"
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	postHour := func(from, n int) {
		t.Helper()
		var items []any
		for i := from; i < from+n; i++ {
			items = append(items, stationItem(station, t0.Add(time.Duration(i)*10*time.Minute), 10+float64(i), 20))
		}
		if code, res, raw := post(t, base+"/v1/feeds/air", devToken, items); code != http.StatusAccepted || res.Accepted != n {
			t.Fatalf("POST = %d %s", code, raw)
		}
	}
	url := base + "/v1/history?layer=air&points=1&entity=" + station + "&from=" + t0.Format(time.RFC3339) + "&to=" + t0.Add(2*time.Hour).Format(time.RFC3339)
	count := func() (float64, string) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+devToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return -1, err.Error()
		}
		defer resp.Body.Close()
		var h struct {
			Items []map[string]any `json:"items"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != http.StatusOK {
			return -1, fmt.Sprintf("%d %v", resp.StatusCode, err)
		}
		if len(h.Items) == 0 {
			return 0, "no items"
		}
		c, _ := h.Items[0]["count"].(float64)
		return c, fmt.Sprintf("%+v", h.Items)
	}
	onPrimary := func() int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM air_observation WHERE station_id = $1`, station).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	postHour(0, 3)
	testkit.Eventually(t, time.Minute, "3 observations read through the replica", func() (bool, string) {
		c, s := count()
		return c == 3, s
	})

	if _, err := admin.Exec(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "the replica's replay paused", func() (bool, string) {
		var state string
		if err := admin.QueryRow(ctx, "SELECT pg_get_wal_replay_pause_state()").Scan(&state); err != nil {
			return false, err.Error()
		}
		return state == "paused", state
	})
	postHour(3, 3)
	testkit.Eventually(t, time.Minute, "the primary stores the 3 more", func() (bool, string) {
		n := onPrimary()
		return n == 6, fmt.Sprintf("%d on the primary", n)
	})
	if c, s := count(); c != 3 {
		t.Fatalf("with the replica's replay paused the API read %v observations (%s); want 3: reads must come from the replica", c, s)
	}
	if _, err := admin.Exec(ctx, "SELECT pg_wal_replay_resume()"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, time.Minute, "6 observations read through the replica once replay resumed", func() (bool, string) {
		c, s := count()
		return c == 6, s
	})
}
