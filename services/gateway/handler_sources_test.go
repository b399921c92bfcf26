package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/gateway/pgread"
)

// Keys of the sources tests' identities.
const (
	srcOperator01   = "iocid_src-operator-01"
	srcViewer01     = "iocid_src-viewer-01"
	srcOperator79   = "iocid_src-operator-79"
	srcOperatorWard = "iocid_src-operator-00070"
	srcOperatorAir  = "iocid_src-operator-01-air"
)

// GET /v1/sources lists per source and unit the counts, the interval, the
// rejections with their top reasons and staleness, to operators of the
// province only (a ward's operator sees its ward's rows).
func TestSources(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	for _, q := range []string{
		`INSERT INTO source (id, unit_code, token_sha256, interval_s) VALUES ('hk', '00070', '\x01', 60), ('cg', '00166', '\x02', NULL), ('hcm', '79', '\x03', NULL)`,
		`INSERT INTO source_stats (source_id, unit_code, province, last_event_at, last_seen_at, first_seen_at, events, duplicates, interval_s, stale_at, stale_since)
		 VALUES ('hk', '00070', '01', $1, $1, $1::timestamptz - interval '10 minutes', 100, 3, 60, $1::timestamptz + interval '3 minutes', $1::timestamptz + interval '3 minutes'),
		        ('cg', '00166', '01', $1, $1, $1::timestamptz - interval '30 seconds', 10, 0, 30, $1::timestamptz + interval '90 seconds', NULL),
		        ('hcm', '79', '79', $1, $1, $1, 5, 0, NULL, NULL, NULL),
		        ('hk', '00166', '01', $1, $1, $1, 50, 0, NULL, NULL, NULL)`,
		// hk's recent counts: 30 events in this window of 15 minutes, none
		// before; cg's two windows ago (nothing recent).
		`UPDATE source_stats SET rate_start = date_bin(interval '15 minutes', now(), timestamptz 'epoch') - CASE source_id WHEN 'cg' THEN interval '30 minutes' ELSE interval '0' END,
		 rate_cur = 30 WHERE source_id IN ('hk', 'cg') AND unit_code IN ('00070', '00166') AND $1::timestamptz IS NOT NULL`,
		`INSERT INTO source_rejection (source_id, reason, count, last_at) VALUES
		 ('hk', 'invalid:pm25', 20, $1), ('hk', 'outside-unit', 50, $1), ('hk', 'unreadable', 1, $1), ('hk', 'invalid:no2', 7, $1),
		 ('hk', 'invalid:o3', 6, $1), ('hk', 'too-large', 2, $1), ('hcm', 'unreadable', 4, $1)`,
	} {
		args := []any{t0}
		if q[:len("INSERT INTO source ")] == "INSERT INTO source " {
			args = nil
		}
		if _, err := db.Pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	a := testAuth(t, &fakeLoader{list: []auth.Identity{
		{ID: "id_00000000000000e1", Name: "operator of 01", Role: auth.RoleOperator, Scopes: []string{"01"}, TokenSHA256: auth.HashToken(srcOperator01)},
		{ID: "id_00000000000000e2", Name: "viewer of 01", Role: auth.RoleViewer, Scopes: []string{"01"}, TokenSHA256: auth.HashToken(srcViewer01)},
		{ID: "id_00000000000000e3", Name: "operator of 79", Role: auth.RoleOperator, Scopes: []string{"79"}, TokenSHA256: auth.HashToken(srcOperator79)},
		{ID: "id_00000000000000e4", Name: "operator of Hoàn Kiếm", Role: auth.RoleOperator, Scopes: []string{"00070"}, TokenSHA256: auth.HashToken(srcOperatorWard)},
		{ID: "id_00000000000000e5", Name: "air operator of 01", Role: auth.RoleOperator, Scopes: []string{"01"}, Kinds: []string{"air"}, TokenSHA256: auth.HashToken(srcOperatorAir)},
	}})
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{}, Deps{JS: testenv.NATS(t).JS, Pool: db.Pool, Metrics: prometheus.NewRegistry(), Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveGateway(t, g)

	get := func(token, query string) (int, sourcesList, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/sources"+query, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var l sourcesList
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(b, &l); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
		}
		return resp.StatusCode, l, string(b)
	}

	code, l, body := get(srcOperator01, "?province=01")
	if code != http.StatusOK || len(l.Items) != 3 {
		t.Fatalf("operator of 01: %d %s; want 200 with 3 rows", code, body)
	}
	cg, hk := l.Items[0], l.Items[1]
	if hk.Source != "hk" || hk.Unit != "00070" || !hk.Stale || hk.StaleSince == nil || hk.Events != 100 || hk.Duplicates != 3 ||
		hk.IntervalSeconds == nil || *hk.IntervalSeconds != 60 || !hk.IntervalConfigured || hk.EventsPerMinuteOverall != 10 || hk.Rejected != 86 {
		t.Errorf("hk = %+v", hk)
	}
	// The source's rejections (all its units) over them and its events in all
	// its units (100 in 00070, 50 in 00166).
	if want := float64(86) / 236; hk.RejectedShare != want || l.Items[2].RejectedShare != want {
		t.Errorf("hk rejected share = %v; want %v", hk.RejectedShare, want)
	}
	// 30 events in the current window and none before: 2 a minute (a little
	// less when the window turned between the update and the read).
	if hk.EventsPerMinute < 1.99 || hk.EventsPerMinute > 2 {
		t.Errorf("hk events per minute = %v; want 2", hk.EventsPerMinute)
	}
	wantTop := []string{"outside-unit 50", "invalid:pm25 20", "invalid:no2 7", "invalid:o3 6", "too-large 2"}
	if len(hk.TopReasons) != len(wantTop) {
		t.Fatalf("hk top reasons = %v; want %v", hk.TopReasons, wantTop)
	}
	for i, r := range hk.TopReasons {
		if got := r.Reason + " " + itoa(r.Count); got != wantTop[i] {
			t.Errorf("top reason %d = %s; want %s", i, got, wantTop[i])
		}
	}
	if cg.Source != "cg" || cg.Stale || cg.IntervalConfigured || cg.IntervalSeconds == nil || *cg.IntervalSeconds != 30 ||
		cg.EventsPerMinuteOverall != 10 || cg.EventsPerMinute != 0 || cg.Rejected != 0 || cg.RejectedShare != 0 || len(cg.TopReasons) != 0 || cg.StaleAt == nil {
		t.Errorf("cg = %+v", cg)
	}

	if code, l, body := get(srcOperatorWard, "?province=01"); code != http.StatusOK || len(l.Items) != 1 || l.Items[0].Source != "hk" {
		t.Errorf("operator of 00070: %d %s; want only hk", code, body)
	}
	// A page of the province is cut after the caller's units are chosen: a
	// full page of other units' rows sorted first does not hide the ward's.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO source_stats (source_id, unit_code, province, last_event_at, last_seen_at, first_seen_at, events)
		SELECT 'a' || lpad(i::text, 5, '0'), '00166', '01', $1, $1, $1, 1 FROM generate_series(1, $2::int) i`, t0, pgread.MaxSources); err != nil {
		t.Fatal(err)
	}
	if code, l, body := get(srcOperatorWard, "?province=01"); code != http.StatusOK || len(l.Items) != 1 || l.Items[0].Source != "hk" {
		t.Errorf("operator of 00070 behind a full page of 00166: %d %.300s; want hk", code, body)
	}
	if code, l, _ := get(srcOperator01, "?province=01"); code != http.StatusOK || len(l.Items) != pgread.MaxSources {
		t.Errorf("operator of 01: %d, %d rows; want a full page of %d", code, len(l.Items), pgread.MaxSources)
	}
	if code, l, body := get(srcOperator79, "?province=79"); code != http.StatusOK || len(l.Items) != 1 || l.Items[0].Source != "hcm" ||
		l.Items[0].IntervalSeconds != nil || l.Items[0].Rejected != 4 {
		t.Errorf("operator of 79: %d %s; want hcm alone, no interval yet, 4 rejected", code, body)
	}
	for _, c := range []struct {
		token, query string
		want         int
	}{
		{srcOperator79, "?province=01", http.StatusForbidden},
		{srcOperator01, "?province=79", http.StatusForbidden},
		{srcViewer01, "?province=01", http.StatusForbidden},
		// A source's figures span every kind it sends (its rejections'
		// reasons name other kinds' fields): not for a key of some kinds.
		{srcOperatorAir, "?province=01", http.StatusForbidden},
		{"", "?province=01", http.StatusUnauthorized},
		{srcOperator01, "", http.StatusBadRequest},
		{srcOperator01, "?province=1", http.StatusBadRequest},
	} {
		if code, _, body := get(c.token, c.query); code != c.want {
			t.Errorf("GET /v1/sources%s as %q = %d %s; want %d", c.query, c.token, code, body, c.want)
		}
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
