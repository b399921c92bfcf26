package schema_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/testenv"
)

// TestMigrateAlertAreaForm: migration 00008 converts the areas that earlier
// versions stored (nested collections from ST_MakeValid, repeated and
// overlapping polygons, bare points) to the one form the CHECK keeps, and
// undoes cleanly.
func TestMigrateAlertAreaForm(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	p := provider(t, db)
	if _, err := p.DownTo(ctx, 7); err != nil {
		t.Fatalf("migrating down to 7: %v", err)
	}
	rows := map[string]struct{ before, want string }{
		"nested": {"GEOMETRYCOLLECTION(GEOMETRYCOLLECTION(MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((1 1,2 1,2 2,1 1)))),POLYGON((5 5,6 5,6 6,5 5)))",
			"MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((1 1,2 1,2 2,1 1)),((5 5,6 5,6 6,5 5)))"},
		"repeated":    {"GEOMETRYCOLLECTION(POLYGON((0 0,1 0,1 1,0 0)),POLYGON((0 0,1 0,1 1,0 0)),POLYGON((0 0,1 0,1 1,0 0)))", "MULTIPOLYGON(((0 0,1 0,1 1,0 0)))"},
		"overlapping": {"GEOMETRYCOLLECTION(POLYGON((0 0,2 0,2 2,0 2,0 0)),POLYGON((1 1,3 1,3 3,1 3,1 1)))", "MULTIPOLYGON(((0 0,0 2,1 2,1 3,3 3,3 1,2 1,2 0,0 0)))"},
		"point":       {"POINT(1 2)", "MULTIPOINT((1 2))"},
		"mixed":       {"GEOMETRYCOLLECTION(POINT(9 9),POLYGON((0 0,1 0,1 1,0 0)),POINT(0.9 0.1))", "GEOMETRYCOLLECTION(MULTIPOLYGON(((0 0,1 0,1 1,0 0))),MULTIPOINT((9 9)))"},
	}
	for id, r := range rows {
		if _, err := db.Pool.Exec(ctx, `INSERT INTO alert (id, source_id, event_id, identifier, sender, sent, status, msg_type,
			area, state, province, unit_code, received_at)
			VALUES ($1, 'src', $1, $1, 'kttv', now(), 'Actual', 'Alert', ST_GeomFromText($2, 4326), 'active', '01', '01', now())`,
			id, r.before); err != nil {
			t.Fatalf("inserting %s: %v", id, err)
		}
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrating up: %v", err)
	}
	for id, r := range rows {
		var equal bool
		var got string
		if err := db.Pool.QueryRow(ctx, `SELECT ST_AsText(area), ST_Equals(area, ST_GeomFromText($2, 4326)) AND GeometryType(area) = GeometryType(ST_GeomFromText($2))
			FROM alert WHERE id = $1`, id, r.want).Scan(&got, &equal); err != nil {
			t.Fatalf("reading %s: %v", id, err)
		}
		if !equal {
			t.Errorf("%s: area %s after the migration; want %s", id, got, r.want)
		}
	}
	_, err := db.Pool.Exec(ctx, `INSERT INTO alert (id, source_id, event_id, identifier, sender, sent, status, msg_type,
		area, state, province, unit_code, received_at)
		VALUES ('x', 'src', 'x', 'x', 'kttv', now(), 'Actual', 'Alert', ST_GeomFromText('GEOMETRYCOLLECTION(GEOMETRYCOLLECTION(POINT(1 1)))', 4326), 'active', '01', '01', now())`)
	if err == nil {
		t.Error("inserting a nested GeometryCollection after the migration: got nil error; want the CHECK to refuse it")
	}
}

// TestMigrateRollupMemberDay: migration 00025 moves each member of
// rollup_member (a window's station with its worst grade) into its slot of
// the entity's day row (day 0, hours 1–24, quarters 25–120, minutes
// 121–1560, byte = grade + 1) with the upgrades counted, and back unchanged.
func TestMigrateRollupMemberDay(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	p := provider(t, db)
	if _, err := p.DownTo(ctx, 24); err != nil {
		t.Fatalf("migrating down to 24: %v", err)
	}
	const members = `('VN', 'air', '1d', '2025-07-31 17:00+00', 'st1', 4, 2), ('VN', 'air', '1h', '2025-08-01 03:00+00', 'st1', 4, NULL),
		('VN', 'air', '15m', '2025-08-01 03:15+00', 'st1', 2, NULL), ('VN', 'air', '1m', '2025-08-01 03:17+00', 'st1', 0, NULL),
		('VN', 'air', '1m', '2025-08-01 16:59+00', 'st1', 6, NULL), ('01', 'water', '1h', '2025-08-01 18:00+00', 'w', 3, NULL)`
	if _, err := db.Pool.Exec(ctx, `INSERT INTO rollup_member (unit_code, layer, win, window_start, entity, grade, prev) VALUES `+members); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrating up: %v", err)
	}
	got := testenv.Lines(t, db.Pool, `SELECT d.unit_code || '/' || d.layer || '/' || d.entity || '/' || to_char(d.day AT TIME ZONE 'UTC', 'MM-DD HH24')
			|| ' up=' || d.upgrades || ' ' || string_agg(s || ':' || get_byte(d.grades, s), ',' ORDER BY s)
		FROM rollup_member_day d, generate_series(0, 1560) s
		WHERE get_byte(d.grades, s) > 0 GROUP BY d.unit_code, d.layer, d.entity, d.day, d.upgrades ORDER BY 1`)
	want := []string{"01/water/w/08-01 17 up=0 2:4", "VN/air/st1/07-31 17 up=1 0:5,11:5,66:3,738:1,1560:7"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("rollup_member_day after 00025:\n%v\nwant\n%v", got, want)
	}
	if _, err := p.DownTo(ctx, 24); err != nil {
		t.Fatalf("migrating down to 24 again: %v", err)
	}
	var diff int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM (
		(SELECT unit_code, layer, win, window_start, entity, grade FROM rollup_member
		 EXCEPT SELECT u, l, w, s::timestamptz, e, g FROM (VALUES `+members+`) v (u, l, w, s, e, g, p))
		UNION ALL
		(SELECT u, l, w, s::timestamptz, e, g FROM (VALUES `+members+`) v (u, l, w, s, e, g, p)
		 EXCEPT SELECT unit_code, layer, win, window_start, entity, grade FROM rollup_member)) x`).Scan(&diff); err != nil {
		t.Fatal(err)
	}
	if diff != 0 {
		t.Errorf("%d members differ after 00025 down", diff)
	}
}

// TestMigrateRollupMemberDayShared: going down from 00035 gives each unit of
// a shared member row a row of its own with the shared grades, drops the
// shared rows (the retired ones too) and keeps the units' rows.
func TestMigrateRollupMemberDayShared(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	p := provider(t, db)
	// st1: shared by W1, 01 and VN; st2: split (a retired shared row, then
	// rows of W1 and VN with their own grades).
	if _, err := db.Pool.Exec(ctx, `INSERT INTO rollup_member_day (layer, entity, day, unit_code, grades, upgrades, version, units)
		SELECT 'air', e, '2025-07-31 17:00+00', u, overlay(decode(repeat('00', 2048), 'hex') PLACING decode(g, 'hex') FROM 1), up, 5, us
		FROM (VALUES ('st1', '', '0302', 1, '{W1,01,VN}'::text[]), ('st2', '', '01', 0, '{}'),
			('st2', 'W1', '0401', 2, NULL), ('st2', 'VN', '0501', 3, NULL)) v (e, u, g, up, us)`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 34); err != nil {
		t.Fatalf("migrating down to 34: %v", err)
	}
	got := testenv.Lines(t, db.Pool, `SELECT entity || '/' || unit_code || ' ' || encode(substring(grades FROM 1 FOR 2), 'hex') || ' up=' || upgrades
		FROM rollup_member_day ORDER BY entity, unit_code`)
	want := []string{"st1/01 0302 up=1", "st1/VN 0302 up=1", "st1/W1 0302 up=1", "st2/VN 0501 up=3", "st2/W1 0401 up=2"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("rollup_member_day after 00035 down:\n%v\nwant\n%v", got, want)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrating up again: %v", err)
	}
}

// TestMigrateRollupGaugeTotal: migration 00037 sums, per unit and layer,
// the changes of the alert and report 1d roll-ups into
// rollup_gauge_total (the other windows and layers count nothing); going
// down drops it and its trigger, and going up again counts what was written
// meanwhile.
func TestMigrateRollupGaugeTotal(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	p := provider(t, db)
	if _, err := p.DownTo(ctx, 36); err != nil {
		t.Fatalf("migrating down to 36: %v", err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO rollup (unit_code, layer, win, window_start, province,
		activated0_n, activated3_n, ended3_n, activated4_n, open_n, closed_n)
		VALUES ('01', 'alert', '1d', '2025-07-30 17:00+00', '01', 1, 2, 0, 1, 0, 0),
			('01', 'alert', '1d', '2025-07-31 17:00+00', '01', 0, 1, 2, 0, 0, 0),
			('01', 'alert', '1h', '2025-07-31 18:00+00', '01', 0, 1, 2, 0, 0, 0),
			('01', 'report', '1d', '2025-07-31 17:00+00', '01', 0, 0, 0, 0, 5, 2),
			('01', 'report', '15m', '2025-07-31 17:15+00', '01', 0, 0, 0, 0, 5, 2),
			('VN', 'report', '1d', '2025-07-30 17:00+00', 'VN', 0, 0, 0, 0, 1, 1),
			('01', 'air', '1d', '2025-07-31 17:00+00', '01', 0, 0, 0, 0, 0, 0)`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrating up: %v", err)
	}
	got := testenv.Lines(t, db.Pool, `SELECT unit_code || '/' || layer || ' ' || concat_ws(',', active0_n, active1_n, active2_n, active3_n, active4_n, open_n)
		FROM rollup_gauge_total ORDER BY 1`)
	want := []string{"01/alert 1,0,0,1,1,0", "01/report 0,0,0,0,0,3", "VN/report 0,0,0,0,0,0"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("rollup_gauge_total after 00037:\n%v\nwant\n%v", got, want)
	}
	if _, err := p.DownTo(ctx, 36); err != nil {
		t.Fatalf("migrating down to 36 again: %v", err)
	}
	var table, function bool
	if err := db.Pool.QueryRow(ctx, `SELECT to_regclass('rollup_gauge_total') IS NOT NULL, to_regproc('iochub_rollup_gauge_total') IS NOT NULL`).Scan(&table, &function); err != nil {
		t.Fatal(err)
	}
	if table || function {
		t.Errorf("after 00037 down: table rollup_gauge_total there %v, its trigger's function there %v; want neither", table, function)
	}
	// The release before 00037 writes 1d alert roll-ups without the totals.
	if _, err := db.Pool.Exec(ctx, `UPDATE rollup SET activated4_n = activated4_n + 1 WHERE unit_code = '01' AND layer = 'alert' AND win = '1d'
		AND window_start = '2025-07-31 17:00+00'`); err != nil {
		t.Fatalf("writing roll-ups at 36: %v", err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrating up again: %v", err)
	}
	if got := testenv.Lines(t, db.Pool, `SELECT concat_ws(',', active0_n, active1_n, active2_n, active3_n, active4_n, open_n)
		FROM rollup_gauge_total WHERE unit_code = '01' AND layer = 'alert'`); strings.Join(got, "|") != "1,0,0,1,2,0" {
		t.Errorf("01/alert's totals after 00037 again: %v; want 1,0,0,1,2,0", got)
	}
}

// provider is a goose provider of the embedded migrations on db.
func provider(t *testing.T, db *testenv.DBEnv) *goose.Provider {
	t.Helper()
	sqlDB := stdlib.OpenDBFromPool(db.Pool)
	t.Cleanup(func() { _ = sqlDB.Close() })
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, schema.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMigrateDisabledSourceFreshness: migration 00040 ends the staleness of
// the sources disabled before it (their deadline taken off, the stale alert
// of a pair stale already marked for its Cancel), as disabling does since;
// the pairs of enabled sources stay as they were.
func TestMigrateDisabledSourceFreshness(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	p := provider(t, db)
	if _, err := p.DownTo(ctx, 39); err != nil {
		t.Fatalf("migrating down to 39: %v", err)
	}
	for _, q := range []string{
		`INSERT INTO source (id, unit_code, token_sha256, disabled_at) VALUES ('off', '00070', '\x01', now()), ('on', '00070', '\x02', NULL)`,
		`INSERT INTO source_stats (source_id, unit_code, province, last_event_at, last_seen_at, first_seen_at, events, stale_at, stale_since)
		 VALUES ('off', '00070', '01', now(), now(), now(), 1, now() - interval '1 hour', now() - interval '1 hour'),
		        ('off', '00166', '01', now(), now(), now(), 1, now() + interval '1 hour', NULL),
		        ('on', '00070', '01', now(), now(), now(), 1, now() - interval '1 hour', now() - interval '1 hour')`,
	} {
		if _, err := db.Pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrating up: %v", err)
	}
	got := testenv.Lines(t, db.Pool, `SELECT source_id || '/' || unit_code || ' ' || concat_ws(',', stale_at IS NULL, stale_since IS NULL, clear_pending)
		FROM source_stats ORDER BY 1`)
	want := []string{"off/00070 t,t,t", "off/00166 t,t,f", "on/00070 f,f,f"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("source_stats after 00040:\n%v\nwant\n%v", got, want)
	}
	if _, err := p.DownTo(ctx, 39); err != nil {
		t.Fatalf("migrating down to 39 again: %v", err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrating up again: %v", err)
	}
}
