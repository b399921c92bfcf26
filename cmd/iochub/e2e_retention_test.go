package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/services/aggregator"
)

// TestObservationRetention: a hub started with --observation-retention drops
// the monthly partitions of raw observations whose month ended longer ago,
// with their rows, and keeps the current month's and the current states.
func TestObservationRetention(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	old := time.Now().UTC().AddDate(-2, 0, 0)
	oldPart := fmt.Sprintf("air_observation_p%04d%02d", old.Year(), int(old.Month()))
	from := time.Date(old.Year(), old.Month(), 1, 0, 0, 0, 0, time.UTC)
	if _, err := db.Pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s PARTITION OF air_observation FOR VALUES FROM ('%s') TO ('%s')`,
		oldPart, from.Format(time.RFC3339), from.AddDate(0, 1, 0).Format(time.RFC3339))); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO air_observation (source_id, event_id, observed_at, received_at, station_id, province, unit_code, location, pm25)
		VALUES ('s', 'old-1', $1, $1, 'st-old', '01', '00070', ST_Point(105.85, 21.03, 4326), 10)`, old); err != nil {
		t.Fatal(err)
	}
	h := startHubTB(t, "all", n, db, func(c *config) { c.Aggregator.Aggregator.ObservationRetention = 365 * 24 * time.Hour })
	now := time.Now().UTC().Add(-time.Minute)
	if code, res, raw := post(t, h.url+"/v1/feeds/air", devToken, []any{airItem(t, "ret-now", "st-now", 105.8342, 21.0278, now)}); code != 202 || res.Accepted != 1 {
		t.Fatalf("POST = %d %s", code, raw)
	}
	testkit.Eventually(t, 30*time.Second, "the two-year-old partition dropped, today's observation stored", func() (bool, string) {
		var oldLeft, newRows int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE relname = $1`, oldPart).Scan(&oldLeft); err != nil {
			return false, err.Error()
		}
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM air_observation WHERE station_id = 'st-now'`).Scan(&newRows); err != nil {
			return false, err.Error()
		}
		return oldLeft == 0 && newRows == 1, fmt.Sprintf("old partition present: %d, today's rows: %d", oldLeft, newRows)
	})
}

// TestMemberRetention: a hub started with --aggregator-member-retention at
// its default closes the roll-ups' member days that ended
// longer ago: their rows are deleted and the horizon moved, while today's
// observation adds its member row.
func TestMemberRetention(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	old := time.Now().UTC().Add(-aggregator.DefaultMemberRetention - 72*time.Hour)
	if _, err := db.Pool.Exec(ctx, `INSERT INTO rollup_member_day (layer, entity, day, unit_code, grades, units)
		VALUES ('air', 'st-old', $1, '', decode(repeat('01', 2048), 'hex'), '{00070,01,VN}')`, old.Truncate(24*time.Hour).Add(-7*time.Hour)); err != nil {
		t.Fatal(err)
	}
	h := startHubTB(t, "all", n, db, func(c *config) { c.Aggregator.Aggregator.MemberRetention = aggregator.DefaultMemberRetention })
	now := time.Now().UTC().Add(-time.Minute)
	if code, res, raw := post(t, h.url+"/v1/feeds/air", devToken, []any{airItem(t, "mret-now", "st-now", 105.8342, 21.0278, now)}); code != 202 || res.Accepted != 1 {
		t.Fatalf("POST = %d %s", code, raw)
	}
	testkit.Eventually(t, 30*time.Second, "the old member row deleted, today's written, the horizon moved", func() (bool, string) {
		var oldLeft, newRows int
		var horizon *time.Time
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE entity = 'st-old'), count(*) FILTER (WHERE entity = 'st-now')
			FROM rollup_member_day`).Scan(&oldLeft, &newRows); err != nil {
			return false, err.Error()
		}
		if err := db.Pool.QueryRow(ctx, `SELECT day FROM rollup_member_horizon`).Scan(&horizon); err != nil {
			return false, err.Error()
		}
		ok := oldLeft == 0 && newRows > 0 && horizon != nil && horizon.After(old) && horizon.Before(now.Add(-aggregator.DefaultMemberRetention))
		return ok, fmt.Sprintf("old rows: %d, today's rows: %d, horizon: %v", oldLeft, newRows, horizon)
	})
}
