package gateway

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/gateway/pgread"
)

// Keys of the history tests' identities.
const (
	histViewer79   = "iocid_hist-viewer-79"
	histViewerWard = "iocid_hist-viewer-00070"
	histWaterApp   = "iocid_hist-water-01" // a key of the kind water only
)

// historyAnswer is the JSON of GET /v1/history, decoded generically.
type historyAnswer struct {
	Layer         string              `json:"layer"`
	From          time.Time           `json:"from"`
	To            time.Time           `json:"to"`
	BucketSeconds int64               `json:"bucketSeconds"`
	Source        string              `json:"source"`
	Values        map[string][]string `json:"values"`
	Items         []map[string]any    `json:"items"`
}

// histEnv is a gateway on a database with 3 days of minutely air
// observations of station st-hk (Hoàn Kiếm, 00070, province 01), their
// roll-ups of every window for 00070 and 01 made from them by plain SQL, and
// a station st-hcm in 79, and a custom group G-HK with 00070's roll-ups.
type histEnv struct {
	db     *testenv.DBEnv
	read   *pgxpool.Pool
	srv    *httptest.Server
	t0, t1 time.Time // the observations' range
}

func newHistEnv(t *testing.T, timeout time.Duration) *histEnv {
	t.Helper()
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	e := &histEnv{db: db, t0: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)}
	e.t1 = e.t0.Add(72 * time.Hour)
	if _, err := db.Pool.Exec(ctx, `
CREATE TABLE air_observation_test PARTITION OF air_observation DEFAULT;
INSERT INTO sensor (kind, id, province, unit_code, source_id, last_event_id, last_observed_at)
VALUES ('air', 'st-hk', '01', '00070', 'hk', 'x', now()), ('air', 'st-hcm', '79', '79', 'hcm', 'x', now())`); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	var ts []time.Time
	var aqi []*int32
	var pm25 []*float64
	for at := e.t0; at.Before(e.t1); at = at.Add(time.Minute) {
		ts = append(ts, at)
		a, p := int32(rng.IntN(300)), math.Round(rng.Float64()*2000)/10
		aqi, pm25 = append(aqi, &a), append(pm25, &p)
		if rng.IntN(10) == 0 { // some rows without a value
			aqi[len(aqi)-1], pm25[len(pm25)-1] = nil, nil
		}
	}
	if _, err := db.Pool.Exec(ctx, `
INSERT INTO air_observation (source_id, event_id, observed_at, received_at, station_id, province, unit_code, pm25, aqi)
SELECT 'hk', 'e' || i, t, t, 'st-hk', '01', '00070', p, a
FROM unnest($1::timestamptz[], $2::float8[], $3::int[]) WITH ORDINALITY AS u(t, p, a, i)`, ts, pm25, aqi); err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct{ win, stride string }{{"1m", "1 minute"}, {"15m", "15 minutes"}, {"1h", "1 hour"}, {"1d", "1 day"}} {
		for _, unit := range []string{"00070", "01"} {
			if _, err := db.Pool.Exec(ctx, `
INSERT INTO rollup (unit_code, layer, win, window_start, province, n, aqi_n, aqi_sum, aqi_max)
SELECT $1, 'air', $2, date_bin($3::interval, observed_at, '2000-01-01 00:00+07'), '01',
       count(*), count(aqi), coalesce(sum(aqi), 0), max(aqi)
FROM air_observation GROUP BY 4`, unit, w.win, w.stride); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A custom group holding 00070, with 00070's roll-ups.
	if _, err := db.Pool.Exec(ctx, `
INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from)
SELECT 'G-HK', 'custom', NULL, 'Nhóm', boundary, valid_from FROM admin_unit WHERE code = '00070' AND valid_to IS NULL`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `
INSERT INTO rollup (unit_code, layer, win, window_start, province, n, aqi_n, aqi_sum, aqi_max)
SELECT 'G-HK', layer, win, window_start, 'G-HK', n, aqi_n, aqi_sum, aqi_max FROM rollup WHERE unit_code = '00070'`); err != nil {
		t.Fatal(err)
	}
	a := testAuth(t, &fakeLoader{list: []auth.Identity{
		{ID: "id_00000000000000f1", Name: "viewer of 79", Role: auth.RoleViewer, Scopes: []string{"79"}, TokenSHA256: auth.HashToken(histViewer79)},
		{ID: "id_00000000000000f2", Name: "viewer of Hoàn Kiếm", Role: auth.RoleViewer, Scopes: []string{"00070"}, TokenSHA256: auth.HashToken(histViewerWard)},
		{ID: "id_00000000000000f3", Name: "water app", Role: auth.RoleViewer, Scopes: []string{"01"}, Kinds: []string{"water"}, TokenSHA256: auth.HashToken(histWaterApp)},
	}})
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	read, err := schema.OpenRead(ctx, db.URL, schema.ReadOptions{MaxConns: 4, StatementTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(read.Close)
	e.read = read
	g, err := New(Config{}, Deps{JS: testenv.NATS(t).JS, Pool: db.Pool, ReadPool: read, Metrics: prometheus.NewRegistry(), Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = serveGateway(t, g, withTestToken)
	return e
}

func (e *histEnv) get(t *testing.T, token, accept, query string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/history?"+query, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func (e *histEnv) history(t *testing.T, query string) historyAnswer {
	t.Helper()
	code, _, b := e.get(t, "", "", query)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/history?%s = %d %s", query, code, b)
	}
	var h historyAnswer
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return h
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// fig is the figure stat of value in item; NaN for null.
func fig(item map[string]any, value, stat string) float64 {
	m, _ := item[value].(map[string]any)
	f, ok := m[stat].(float64)
	if !ok {
		return math.NaN()
	}
	return f
}

func sameFloat(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}

// checkAgainstSQL compares every point of h with plain SQL over the raw rows
// of its bucket (clipped to [from, to)): count, and min, mean, max of each
// of the given columns that h carries; and that the points cover every row.
func (e *histEnv) checkAgainstSQL(t *testing.T, h historyAnswer, from, to time.Time, cols map[string]string) {
	t.Helper()
	ctx := context.Background()
	var total int64
	if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM air_observation WHERE observed_at >= $1 AND observed_at < $2`, h.From, to).Scan(&total); err != nil {
		t.Fatal(err)
	}
	var sum int64
	bucket := time.Duration(h.BucketSeconds) * time.Second
	for _, it := range h.Items {
		start, err := time.Parse(time.RFC3339, it["t"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if (start.Sub(h.From))%bucket != 0 {
			t.Errorf("point %s is not on a bucket boundary from %s by %s", start, h.From, bucket)
		}
		end := start.Add(bucket)
		count := int64(it["count"].(float64))
		sum += count
		for value, col := range cols {
			var n int64
			var mn, avg, mx *float64
			if err := e.db.Pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*), min(%[1]s)::float8, avg(%[1]s)::float8, max(%[1]s)::float8
FROM air_observation WHERE observed_at >= greatest($1::timestamptz, $3::timestamptz) AND observed_at < least($2::timestamptz, $4::timestamptz)`, col), start, end, h.From, to).Scan(&n, &mn, &avg, &mx); err != nil {
				t.Fatal(err)
			}
			if n != count {
				t.Errorf("%s: count %d; plain SQL %d", it["t"], count, n)
			}
			for stat, want := range map[string]*float64{"min": mn, "mean": avg, "max": mx} {
				if !contains(h.Values[value], stat) {
					continue
				}
				w := math.NaN()
				if want != nil {
					w = *want
				}
				if got := fig(it, value, stat); !sameFloat(got, w) {
					t.Errorf("%s %s %s = %v; plain SQL %v", it["t"], value, stat, got, w)
				}
			}
		}
	}
	if sum != total {
		t.Errorf("points count %d observations; the range holds %d", sum, total)
	}
	_ = from
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestHistory: at most N points from raw rows (entity; unit over a short
// range) and roll-ups (unit over a long range), each equal to plain SQL over
// the raw rows; CSV; scope; bad parameters.
func TestHistory(t *testing.T) {
	e := newHistEnv(t, 0)
	for _, tc := range []struct {
		name, query, source string
		points              int
		from, to            time.Time
	}{
		{"entity, short range", "entity=st-hk&layer=air", "raw", 10, e.t0.Add(90 * time.Minute), e.t0.Add(3*time.Hour + 17*time.Second)},
		{"entity, whole range", "entity=st-hk&layer=air", "raw", 7, e.t0.Add(-time.Hour), e.t1},
		{"unit, short range: raw rows of the unit and its children", "unit=01&layer=air", "raw", 100, e.t0.Add(30 * time.Minute), e.t0.Add(time.Hour)},
		{"unit, long range: hourly roll-ups", "unit=00070&layer=air", "rollup:1h", 5, e.t0, e.t1},
		{"unit, long range from mid-hour: hourly roll-ups from the hour", "unit=00070&layer=air", "rollup:1h", 40, e.t0.Add(20 * time.Minute), e.t1},
		{"unit, quarter hours", "unit=01&layer=air", "rollup:15m", 100, e.t0, e.t0.Add(48 * time.Hour)},
		{"unit, days", "unit=01&layer=air", "rollup:1d", 2, e.t0.Add(-24 * time.Hour), e.t1.Add(24 * time.Hour)},
		{"unit, offset +07:00 unescaped", "unit=01&layer=air&from=2026-11-20T07:00:00+07:00&to=2026-11-20T08:00:00+07:00", "raw", 100, e.t0, e.t0.Add(time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := fmt.Sprintf("%s&from=%s&to=%s&points=%d", tc.query, rfc(tc.from), rfc(tc.to), tc.points)
			if strings.Contains(tc.query, "from=") {
				q = fmt.Sprintf("%s&points=%d", tc.query, tc.points)
			}
			h := e.history(t, q)
			if h.Source != tc.source {
				t.Errorf("source = %q; want %q", h.Source, tc.source)
			}
			if len(h.Items) == 0 || len(h.Items) > tc.points {
				t.Errorf("%d points; want 1 to %d", len(h.Items), tc.points)
			}
			if tc.source == "raw" && !h.From.Equal(tc.from) {
				t.Errorf("from = %s; want %s", h.From, tc.from)
			}
			if h.From.After(tc.from) {
				t.Errorf("from = %s after the asked %s", h.From, tc.from)
			}
			cols := map[string]string{"aqi": "aqi", "pm25": "pm25"}
			if tc.source != "raw" {
				cols = map[string]string{"aqi": "aqi"}
				if strings.Join(h.Values["aqi"], ",") != "mean,max" || len(h.Values) != 1 {
					t.Errorf("values = %v; want aqi mean,max", h.Values)
				}
			}
			e.checkAgainstSQL(t, h, tc.from, tc.to, cols)
		})
	}

	t.Run("custom group: roll-ups whatever the range", func(t *testing.T) {
		from, to := e.t0.Add(30*time.Minute), e.t0.Add(time.Hour)
		h := e.history(t, fmt.Sprintf("unit=G-HK&layer=air&from=%s&to=%s&points=100", rfc(from), rfc(to)))
		if h.Source != "rollup:1m" || len(h.Items) != 30 {
			t.Fatalf("group history = %s, %d points; want rollup:1m, 30 points", h.Source, len(h.Items))
		}
		e.checkAgainstSQL(t, h, from, to, map[string]string{"aqi": "aqi"})
	})

	t.Run("CSV", func(t *testing.T) {
		q := fmt.Sprintf("unit=00070&layer=air&from=%s&to=%s&points=6", rfc(e.t0), rfc(e.t1))
		code, hdr, b := e.get(t, "", "text/csv", q)
		if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") || hdr.Get("Iochub-History-Source") != "rollup:1h" {
			t.Fatalf("CSV: %d %v %s", code, hdr, b)
		}
		recs, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		h := e.history(t, q)
		if strings.Join(recs[0], ",") != "t,count,aqi_mean,aqi_max" || len(recs) != 1+len(h.Items) {
			t.Fatalf("CSV = %q; want the header t,count,aqi_mean,aqi_max and %d rows", recs, len(h.Items))
		}
		for i, it := range h.Items {
			if recs[i+1][0] != it["t"] || recs[i+1][1] != fmt.Sprint(it["count"]) || recs[i+1][3] != fmt.Sprint(fig(it, "aqi", "max")) {
				t.Errorf("CSV row %d = %v; JSON %v", i, recs[i+1], it)
			}
		}
	})

	t.Run("scope", func(t *testing.T) {
		rng := fmt.Sprintf("&layer=air&from=%s&to=%s", rfc(e.t0), rfc(e.t0.Add(time.Hour)))
		for _, c := range []struct {
			token, query string
			want         int
		}{
			{histViewer79, "entity=st-hk", http.StatusNotFound}, // out of scope looks absent
			{histViewer79, "entity=st-hcm", http.StatusOK},
			{histViewer79, "unit=00070", http.StatusForbidden},
			{histViewer79, "unit=01", http.StatusForbidden},
			{histViewerWard, "unit=01", http.StatusForbidden},
			{histViewerWard, "unit=00070", http.StatusOK},
			{histViewerWard, "entity=st-hk", http.StatusOK},
			{histViewerWard, "entity=st-hcm", http.StatusNotFound},
			{histWaterApp, "unit=00070", http.StatusForbidden}, // air, not its kind
			{histWaterApp, "entity=st-hk", http.StatusForbidden},
			{"", "unit=01", http.StatusOK}, // the tests' admin of *
		} {
			if code, _, b := e.get(t, c.token, "", c.query+rng); code != c.want {
				t.Errorf("%s as %s = %d %s; want %d", c.query, c.token, code, b, c.want)
			}
		}
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/history?unit=01"+rng, nil)
		req.Header.Set("Authorization", "Bearer nope")
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("unknown key: %v %v; want 401", resp, err)
		}
	})

	// A station id with rows in two provinces (it moved, or another
	// province's source sent the same id): a reader gets the rows of its
	// scope only, however the station's current row places it.
	t.Run("entity rows of other places", func(t *testing.T) {
		from, to := e.t1.Add(time.Hour), e.t1.Add(2*time.Hour) // after every other subtest's range
		if _, err := e.db.Pool.Exec(context.Background(), `
INSERT INTO sensor (kind, id, province, unit_code, source_id, last_event_id, last_observed_at)
VALUES ('air', 'st-moved', '79', '79', 'hcm', 'x', now())`); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Pool.Exec(context.Background(), `
INSERT INTO air_observation (source_id, event_id, observed_at, received_at, station_id, province, unit_code, pm25)
SELECT 'hcm', 'moved-79-' || i, $1::timestamptz + i * interval '1 minute', now(), 'st-moved', '79', '79', 10 FROM generate_series(1, 5) i
UNION ALL
SELECT 'hk', 'moved-01-' || i, $1::timestamptz + i * interval '1 minute', now(), 'st-moved', '01', '00070', 900 FROM generate_series(1, 3) i`, from); err != nil {
			t.Fatal(err)
		}
		q := fmt.Sprintf("entity=st-moved&layer=air&from=%s&to=%s&points=1", rfc(from), rfc(to))
		for _, c := range []struct {
			token string
			want  int
		}{{histViewer79, 5}, {"", 8}} {
			code, _, b := e.get(t, c.token, "", q)
			if code != http.StatusOK {
				t.Fatalf("as %q: %d %s", c.token, code, b)
			}
			var h historyAnswer
			if err := json.Unmarshal(b, &h); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, it := range h.Items {
				n += int(it["count"].(float64))
			}
			if n != c.want {
				t.Errorf("as %q: %d observations of st-moved; want %d (%s)", c.token, n, c.want, b)
			}
		}
	})

	t.Run("bad parameters", func(t *testing.T) {
		day := fmt.Sprintf("&from=%s&to=%s", rfc(e.t0), rfc(e.t0.Add(24*time.Hour)))
		for _, c := range []struct {
			query string
			want  int
			names string
		}{
			{"unit=01&layer=noise" + day, 400, "parameter layer"},
			{"unit=01" + day, 400, "parameter layer"},
			{"layer=air" + day, 400, "parameter entity or unit"},
			{"unit=01&entity=st-hk&layer=air" + day, 400, "parameter entity and unit"},
			{"unit=01&layer=air&from=yesterday", 400, "parameter from"},
			{"unit=01&layer=air&to=2026-13-01T00:00:00Z", 400, "parameter to"},
			{fmt.Sprintf("unit=01&layer=air&from=%s&to=%s", rfc(e.t1), rfc(e.t0)), 400, "parameter from"},
			{"unit=01&layer=air&points=0" + day, 400, "parameter points"},
			{"unit=01&layer=air&points=10001" + day, 400, "parameter points"},
			{"unit=01&layer=air&points=x" + day, 400, "parameter points"},
			{"unit=01&layer=air&points=5&points=6" + day, 400, "parameter points"},
			{"entity=st-hk&layer=air&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", 400, "parameter from"},
			{"unit=01&layer=air&from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", 400, "parameter from"},
			{"unit=99999&layer=air" + day, 404, "parameter unit"},
			{"entity=nope&layer=air" + day, 404, "parameter entity"},
			{"entity=st-hk&layer=water" + day, 404, "parameter entity"}, // an air station is no water station
		} {
			code, hdr, b := e.get(t, "", "", c.query)
			var p problem
			_ = json.Unmarshal(b, &p)
			if code != c.want || hdr.Get("Content-Type") != "application/problem+json" || !strings.Contains(p.Detail, c.names) || p.Status != c.want {
				t.Errorf("%s = %d %s %s; want a %d problem naming %q", c.query, code, hdr.Get("Content-Type"), b, c.want, c.names)
			}
		}
	})
}

// TestReadPool: a write through the gateway's read pool fails (read-only),
// and a read that outlasts the statement timeout is cancelled and answered
// 503 "Query timed out", not a bare 500.
func TestReadPool(t *testing.T) {
	e := newHistEnv(t, 200*time.Millisecond)
	ctx := context.Background()
	_, err := e.read.Exec(ctx, `INSERT INTO sensor (kind, id, province, unit_code, source_id, last_event_id, last_observed_at)
VALUES ('air', 'w', '01', '00070', 'hk', 'x', now())`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "25006" { // read_only_sql_transaction
		t.Errorf("insert through the read pool: %v; want SQLSTATE 25006 (read-only transaction)", err)
	}
	// Hold a lock the history query needs, so it waits past the timeout.
	tx, err := e.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `LOCK TABLE air_observation IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	code, hdr, b := e.get(t, "", "", fmt.Sprintf("entity=st-hk&layer=air&from=%s&to=%s", rfc(e.t0), rfc(e.t1)))
	var p problem
	_ = json.Unmarshal(b, &p)
	if code != http.StatusServiceUnavailable || hdr.Get("Content-Type") != "application/problem+json" || p.Title != "Query timed out" ||
		p.Type != ProblemQueryTimeout || !strings.Contains(p.Detail, "--read-statement-timeout") {
		t.Errorf("history while the table is locked = %d %s; want 503 Query timed out", code, b)
	}
}

// TestHistoryLayers runs every layer's three statements on one observation
// (and one roll-up row) each: the columns match the values' statistics and
// hold the expected figures.
func TestHistoryLayers(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 20, 1, 0, 0, 0, time.UTC)
	if _, err := db.Pool.Exec(ctx, `
CREATE TABLE air_observation_t PARTITION OF air_observation DEFAULT;
CREATE TABLE water_observation_t PARTITION OF water_observation DEFAULT;
CREATE TABLE weather_observation_t PARTITION OF weather_observation DEFAULT;
CREATE TABLE traffic_observation_t PARTITION OF traffic_observation DEFAULT`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO air_observation (source_id, event_id, observed_at, received_at, station_id, province, unit_code, pm25, pm10, no2, o3, co, so2, aqi)
		 VALUES ('s', 'e', $1, $1, 'e1', '01', '00070', 1, 2, 3, 4, 5, 6, 7)`,
		`INSERT INTO water_observation (source_id, event_id, observed_at, received_at, station_id, province, unit_code, water_level)
		 VALUES ('s', 'e', $1, $1, 'e1', '01', '00070', 2.5)`,
		`INSERT INTO weather_observation (source_id, event_id, observed_at, received_at, station_id, province, unit_code, temperature, precipitation, wind_speed)
		 VALUES ('s', 'e', $1, $1, 'e1', '01', '00070', 30, 4, 9)`,
		`INSERT INTO traffic_observation (source_id, event_id, observed_at, received_at, segment_id, province, unit_code, intensity, average_vehicle_speed)
		 VALUES ('s', 'e', $1, $1, 'e1', '01', '00070', 10, 40), ('s', 'f', $1, $1, 'e1', '01', '00070', 30, 20)`,
		`INSERT INTO rollup (unit_code, layer, win, window_start, province, n, aqi_n, aqi_sum, aqi_max, level_max, temp_n, temp_sum, precip_sum, wind_max, speed_w, speed_wsum, vehicles)
		 SELECT '00070', l, '1h', $1, '01', 2, 2, 14, 7, 2.5, 2, 60, 4, 9, 40, 1000, 40 FROM unnest(ARRAY['air', 'water', 'weather', 'traffic']) AS l`,
	} {
		if _, err := db.Pool.Exec(ctx, q, at); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	want := map[string][3]string{ // layer: raw entity, raw units, roll-up; "value.stat=figure" of the first point
		"air":     {"aqi.max=7 pm25.mean=1 so2.min=6", "aqi.max=7 pm25.mean=1 so2.min=6", "aqi.mean=7 aqi.max=7"},
		"water":   {"level.min=2.5 level.max=2.5", "level.mean=2.5", "level.max=2.5"},
		"weather": {"temperature.mean=30 precipitation.sum=4 wind.max=9", "precipitation.sum=4", "temperature.mean=30 precipitation.sum=4 wind.max=9"},
		"traffic": {"speed.mean=25 speed.min=20 intensity.sum=40 intensity.mean=20", "speed.max=40", "speed.mean=25 intensity.mean=20 intensity.sum=40"},
	}
	store := pgread.New(db.Pool)
	for name, l := range pgread.HistoryLayers {
		for i, q := range []pgread.HistoryQuery{
			{Layer: l, Entity: "e1", Scope: pgread.Scope{All: true}},
			{Layer: l, Units: []string{"00070"}},
			{Layer: l, Unit: "00070", Window: "1h"},
		} {
			q.From, q.To, q.Bucket = at.Add(-time.Hour), at.Add(time.Hour), time.Hour
			points, values, err := store.History(ctx, q)
			if err != nil || len(points) != 1 {
				t.Errorf("%s query %d: %v, %d points; want 1", name, i, err, len(points))
				continue
			}
			got := map[string]float64{}
			k := 0
			for _, v := range values {
				for _, s := range v.Stats {
					if f := points[0].Figures[k]; f != nil {
						got[v.Name+"."+string(s)] = *f
					}
					k++
				}
			}
			for _, kv := range strings.Fields(want[name][i]) {
				key, val, _ := strings.Cut(kv, "=")
				if fmt.Sprint(got[key]) != val {
					t.Errorf("%s query %d: %s = %v; want %s (all: %v)", name, i, key, got[key], val, got)
				}
			}
			wantN := int64(1) // one raw row; two of traffic; the roll-up row's n is 2
			if name == "traffic" || q.Window != "" {
				wantN = 2
			}
			if points[0].Count != wantN {
				t.Errorf("%s query %d: count %d; want %d", name, i, points[0].Count, wantN)
			}
		}
	}
}
