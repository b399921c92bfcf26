package postgis_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

func TestHashToken(t *testing.T) {
	tests := []struct{ token, want string }{
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			if got := hex.EncodeToString(postgis.HashToken(tt.token)); got != tt.want {
				t.Errorf("got %s; want %s", got, tt.want)
			}
		})
	}
}

type auditRow struct {
	actor, action, target, detail string
}

func auditRows(t *testing.T, db *testenv.DBEnv) []auditRow {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT actor, action, target, detail::text FROM audit_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []auditRow
	for rows.Next() {
		var r auditRow
		if err := rows.Scan(&r.actor, &r.action, &r.target, &r.detail); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAddSource(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	token, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "hn-ba-dinh", Name: "IOC Ba Đình", UnitCode: "00004"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(token, postgis.TokenPrefix))
	if !strings.HasPrefix(token, "ioc_") || err != nil || len(raw) != 32 {
		t.Errorf("got token %q (decoding: %v, %d bytes); want ioc_ and 32 bytes of base64url", token, err, len(raw))
	}
	var stored []byte
	var unit, name string
	if err := db.Pool.QueryRow(ctx, `SELECT token_sha256, unit_code, name FROM source WHERE id = 'hn-ba-dinh'`).Scan(&stored, &unit, &name); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(token))
	if !bytes.Equal(stored, sum[:]) || !bytes.Equal(stored, postgis.HashToken(token)) {
		t.Errorf("got stored hash %x; want sha256 of the token %x", stored, sum)
	}
	if unit != "00004" || name != "IOC Ba Đình" {
		t.Errorf("got unit %q name %q; want 00004, IOC Ba Đình", unit, name)
	}
	if strings.Contains(hex.EncodeToString(stored), token) {
		t.Error("the token itself is stored")
	}
	got := auditRows(t, db)
	if len(got) != 1 || got[0].actor != "cli" || got[0].action != "source.add" || got[0].target != "hn-ba-dinh" ||
		!strings.Contains(got[0].detail, `"unit": "00004"`) {
		t.Errorf("got audit %+v; want one cli source.add row for hn-ba-dinh naming unit 00004", got)
	}

	other, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "hn-province", UnitCode: "01"})
	if err != nil {
		t.Fatal(err)
	}
	if other == token {
		t.Error("two sources got the same token")
	}
}

func TestAddSourceErrors(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	if _, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "taken", UnitCode: "01"}); err != nil {
		t.Fatal(err)
	}
	// 00007 gets a closed version only: it existed, but not now.
	if _, err := db.Pool.Exec(ctx, `UPDATE admin_unit SET valid_to = valid_from + interval '1 day' WHERE code = '00007'`); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		src  postgis.Source
		want error
		msg  string
	}{
		{"unknown unit", postgis.Source{ID: "a", UnitCode: "99999"}, postgis.ErrUnitNotFound, `unit "99999" has no current version`},
		{"closed unit", postgis.Source{ID: "a", UnitCode: "00007"}, postgis.ErrUnitNotFound, `unit "00007" has no current version`},
		{"taken id", postgis.Source{ID: "taken", UnitCode: "01"}, postgis.ErrSourceExists, "id taken is taken"},
		{"empty id", postgis.Source{UnitCode: "01"}, postgis.ErrInvalidSource, "1 to 64 characters"},
		{"slash in id", postgis.Source{ID: "a/b", UnitCode: "01"}, postgis.ErrInvalidSource, `has '/' at byte 1`},
		{"space in id", postgis.Source{ID: "a b", UnitCode: "01"}, postgis.ErrInvalidSource, `has ' ' at byte 1`},
		{"long id", postgis.Source{ID: strings.Repeat("x", 65), UnitCode: "01"}, postgis.ErrInvalidSource, "1 to 64 characters"},
		{"reserved id", postgis.Source{ID: "Rules", UnitCode: "01"}, postgis.ErrInvalidSource, "reserved for the hub itself"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, err := postgis.AddSource(ctx, db.Pool, tt.src)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) || token != "" {
				t.Fatalf("got %q, %v; want no token and %v saying %q", token, err, tt.want, tt.msg)
			}
		})
	}
	var sources, audits int
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM source), (SELECT count(*) FROM audit_log)`).Scan(&sources, &audits); err != nil {
		t.Fatal(err)
	}
	if sources != 1 || audits != 1 {
		t.Errorf("got %d sources and %d audit rows after the failures; want 1 and 1", sources, audits)
	}
}

func TestDisableSource(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	if _, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "s1", UnitCode: "01"}); err != nil {
		t.Fatal(err)
	}
	if err := postgis.DisableSource(ctx, db.Pool, "s1"); err != nil {
		t.Fatal(err)
	}
	var at *time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT disabled_at FROM source WHERE id = 's1'`).Scan(&at); err != nil {
		t.Fatal(err)
	}
	if at == nil {
		t.Fatal("got disabled_at NULL; want set")
	}
	if err := postgis.DisableSource(ctx, db.Pool, "s1"); err != nil {
		t.Errorf("disabling twice: got %v; want nil", err)
	}
	var again time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT disabled_at FROM source WHERE id = 's1'`).Scan(&again); err != nil {
		t.Fatal(err)
	}
	if !again.Equal(*at) {
		t.Errorf("disabling twice moved disabled_at from %v to %v", *at, again)
	}
	if err := postgis.DisableSource(ctx, db.Pool, "nobody"); !errors.Is(err, postgis.ErrSourceNotFound) {
		t.Errorf("unknown source: got %v; want ErrSourceNotFound", err)
	}
	got := auditRows(t, db)
	if len(got) != 2 || got[1] != (auditRow{"cli", "source.disable", "s1", "{}"}) {
		t.Errorf("got audit %+v; want source.add then one source.disable of s1", got)
	}
}

// TestSourceRecentRate: a pair's events are counted per window of
// schema.SourceRateWindow on the hub's clock: the current window's and the
// one before, shifted as the clock enters the next window, dropped after a
// silent one, and not moved back by a clock behind.
func TestSourceRecentRate(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	s := postgis.NewStore(pool)
	ctx := context.Background()
	w := schema.SourceRateWindow
	start := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	record := func(events int, at time.Time) {
		t.Helper()
		if err := s.RecordSourceActivity(ctx, []postgis.SourceActivity{{SourceID: "r", UnitCode: "00070", Province: "01",
			LastEvent: at, Events: events}}, at); err != nil {
			t.Fatal(err)
		}
	}
	check := func(step string, wantStart time.Time, wantCur, wantPrev int64) {
		t.Helper()
		var got time.Time
		var cur, prev int64
		if err := pool.QueryRow(ctx, `SELECT rate_start, rate_cur, rate_prev FROM source_stats WHERE source_id = 'r'`).Scan(&got, &cur, &prev); err != nil {
			t.Fatal(err)
		}
		if !got.Equal(wantStart) || cur != wantCur || prev != wantPrev {
			t.Fatalf("%s: window %v, %d events, %d before; want %v, %d, %d", step, got, cur, prev, wantStart, wantCur, wantPrev)
		}
	}
	record(5, start.Add(time.Minute))
	check("first", start, 5, 0)
	record(7, start.Add(w-time.Second))
	check("same window", start, 12, 0)
	record(3, start.Add(w))
	check("next window", start.Add(w), 3, 12)
	record(1, start.Add(w-time.Minute)) // another aggregator's clock, behind
	check("a clock behind", start.Add(w), 4, 12)
	record(2, start.Add(3*w+time.Minute))
	check("after a silent window", start.Add(3*w), 2, 0)
	if got := schema.SourceRate(&[]time.Time{start.Add(3 * w)}[0], 2, 0, start.Add(3*w+time.Minute)); got != float64(2)/15 {
		t.Fatalf("rate %v; want 2 events in 15 minutes", got)
	}
}

// TestRecordSourceActivityMergesPairs: a pair given twice in one call is
// recorded once, its counts summed and its newest event kept (one upsert
// cannot change a row twice); the gaps between arrivals keep the last
// MaxGaps and learn their median as the interval.
func TestRecordSourceActivityMergesPairs(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	s := postgis.NewStore(pool)
	ctx := context.Background()
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	if err := s.RecordSourceActivity(ctx, []postgis.SourceActivity{
		{SourceID: "m", UnitCode: "00070", Province: "01", LastEvent: at.Add(-time.Minute), Events: 3},
		{SourceID: "m", UnitCode: "00004", Province: "01", LastEvent: at, Events: 1},
		{SourceID: "m", UnitCode: "00070", Province: "01", LastEvent: at.Add(-2 * time.Minute), Events: 4, Duplicates: 1},
	}, at); err != nil {
		t.Fatal(err)
	}
	var events, dups int
	var last time.Time
	if err := pool.QueryRow(ctx, `SELECT events, duplicates, last_event_at FROM source_stats WHERE source_id = 'm' AND unit_code = '00070'`).Scan(&events, &dups, &last); err != nil {
		t.Fatal(err)
	}
	if events != 7 || dups != 1 || !last.Equal(at.Add(-time.Minute)) {
		t.Fatalf("merged pair: %d events, %d duplicates, last %v; want 7, 1, %v", events, dups, last, at.Add(-time.Minute))
	}
	// 20 more arrivals, the gaps 10 s, 20 s, 10 s, …, 20 s: the last 15
	// kept (8 of 20 s, 7 of 10 s), their median 20 s the interval.
	for i := range 20 {
		at = at.Add(time.Duration(10+10*(i%2)) * time.Second)
		if err := s.RecordSourceActivity(ctx, []postgis.SourceActivity{{SourceID: "m", UnitCode: "00070", Province: "01", LastEvent: at, Events: 1}}, at); err != nil {
			t.Fatal(err)
		}
	}
	var gaps []float64
	var iv float64
	var staleAt time.Time
	if err := pool.QueryRow(ctx, `SELECT gaps, interval_s, stale_at FROM source_stats WHERE source_id = 'm' AND unit_code = '00070'`).Scan(&gaps, &iv, &staleAt); err != nil {
		t.Fatal(err)
	}
	if len(gaps) != postgis.MaxGaps || gaps[0] != 20 || gaps[len(gaps)-1] != 20 || iv != 20 ||
		!staleAt.Equal(at.Add(time.Minute)) {
		t.Fatalf("after 20 arrivals: %d gaps %v, interval %v, stale at %v; want the last %d, interval 20 (their median), stale at %v",
			len(gaps), gaps, iv, staleAt, postgis.MaxGaps, at.Add(time.Minute))
	}
}

// A pair's interval is the median of its positive gaps between arrivals
// (the mean of the middle two of an even count), none before a second
// arrival; an arrival at the same instant adds no gap.
func TestRecordSourceActivityLearnsMedian(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	s := postgis.NewStore(pool)
	ctx := context.Background()
	start := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for i, c := range []struct {
		gaps []float64 // seconds between arrivals
		want float64   // 0: none learnt
	}{{nil, 0}, {[]float64{0}, 0}, {[]float64{5}, 5}, {[]float64{5, 7}, 6}, {[]float64{60, 1, 0, 60, 3600, 61}, 60}} {
		src := fmt.Sprintf("median-%d", i)
		at := start
		for j := -1; j < len(c.gaps); j++ {
			if j >= 0 {
				at = at.Add(time.Duration(c.gaps[j] * float64(time.Second)))
			}
			if err := s.RecordSourceActivity(ctx, []postgis.SourceActivity{{SourceID: src, UnitCode: "00070", Province: "01", LastEvent: at, Events: 1}}, at); err != nil {
				t.Fatal(err)
			}
		}
		var iv *float64
		if err := pool.QueryRow(ctx, `SELECT interval_s FROM source_stats WHERE source_id = $1`, src).Scan(&iv); err != nil {
			t.Fatal(err)
		}
		if got := func() float64 {
			if iv == nil {
				return 0
			}
			return *iv
		}(); got != c.want {
			t.Errorf("gaps %v: interval %v; want %v", c.gaps, got, c.want)
		}
	}
}

// TestDisableSourceEndsStaleness: a disabled source sends nothing more, so
// its pairs must not turn stale (an alert no data would ever cancel), and a
// pair stale already has its alert cancelled by the next sweep.
func TestDisableSourceEndsStaleness(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	if _, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "s1", UnitCode: "01"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	old := now.Add(-time.Hour)
	// u1 is stale with its alert raised; u2 is due; u3 of a source still enabled is due.
	if _, err := db.Pool.Exec(ctx, `
INSERT INTO source_stats (source_id, unit_code, province, last_event_at, last_seen_at, first_seen_at, interval_s, stale_at, stale_since, alert_sent)
VALUES ('s1', 'u1', '01', $1, $1, $1, 60, $2, $2, $2), ('s1', 'u2', '01', $1, $1, $1, 60, $2, NULL, NULL),
       ('s2', 'u3', '01', $1, $1, $1, 60, $2, NULL, NULL)`, old, old.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := postgis.DisableSource(ctx, db.Pool, "s1"); err != nil {
		t.Fatal(err)
	}
	store := postgis.NewStore(db.Pool)
	due, err := store.DueStaleSources(ctx, "", now, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].SourceID != "s2" {
		t.Errorf("due after disabling s1: %+v; want s2/u3 only", due)
	}
	back, err := store.ReturnedSources(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 1 || back[0].UnitCode != "u1" || !back[0].AlertSent.Equal(old.Add(3*time.Minute)) {
		t.Errorf("to cancel after disabling s1: %+v; want s1/u1 with the sent time of its alert", back)
	}
	// Items of s1 stored after it was disabled (they were on FEEDS) do not make it due again.
	if err := store.RecordSourceActivity(ctx, []postgis.SourceActivity{{SourceID: "s1", UnitCode: "u2", Province: "01",
		LastEvent: old, Events: 1}}, old); err != nil {
		t.Fatal(err)
	}
	if due, err := store.DueStaleSources(ctx, "", now, 100); err != nil || len(due) != 1 {
		t.Errorf("due after a late item of s1: %+v, %v; want s2/u3 only", due, err)
	}
}
