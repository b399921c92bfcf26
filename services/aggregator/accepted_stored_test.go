package aggregator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/seed"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/units"
	"github.com/iochub/iochub/services/aggregator/postgis"
	"github.com/iochub/iochub/services/ingest"
)

// badUTF8 is replaced, in the marshalled body, by a byte that is not UTF-8
// (json.Marshal would have made it U+FFFD).
const badUTF8 = "@@BAD@@"

// hostile draws one of the odd values a source may send for a kind of member.
type hostile struct{ r *rand.Rand }

// pick returns the first (valid) value most of the time, else any of them,
// so that an item has a hostile member or two rather than all of them.
func (h hostile) pick(vs ...any) any {
	if h.r.Float64() < 0.88 {
		return vs[0]
	}
	return vs[h.r.IntN(len(vs))]
}

func (h hostile) id(prefix string, n int) any {
	base := fmt.Sprintf("%s-%d", prefix, n)
	return h.pick(base, base, base, "trạm-Hà-Nội-"+base, base+"-😀", base+"\x00", base+"\t", base+"\u2028", base+"\u007f",
		base+"\u0085", base+badUTF8, base+strings.Repeat("x", 256-len(base)), base+strings.Repeat("x", 257-len(base)),
		base+strings.Repeat("ệ", 90), " "+base, base+`\`, base+"/"+base, base+"@2025-07-01T00:00:00Z", base+"\ufffd", 7.0, nil)
}

func (h hostile) text() any {
	return h.pick(nil, "", "Trạm Hoàn Kiếm", strings.Repeat("a", 256), strings.Repeat("a", 257), "a\x00b", "a"+badUTF8,
		"line\nbreak", "tab\there", "\u202eright-to-left", strings.Repeat("ệ", 85), strings.Repeat("ệ", 86), 3.0, []any{"x"})
}

func (h hostile) time(now time.Time) any {
	return h.pick(
		"2025-07-01T08:00:00+07:00", now.Format(time.RFC3339), now.Add(-time.Hour).Format(time.RFC3339Nano),
		now.Add(4*time.Minute).Format(time.RFC3339), now.Add(20*time.Minute).Format(time.RFC3339),
		"1900-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "1970-01-01T00:00:01Z", "0001-01-01T00:00:00Z",
		"1999-12-31T23:59:59Z", "2000-01-01T00:00:00Z", "2000-01-01T06:00:00+07:00", "2000-01-01T00:00:00-12:00",
		"9999-12-31T23:59:59Z", "9999-12-30T23:59:59Z", "9999-12-30T17:30:00Z", "2025-02-29T00:00:00Z", "2024-02-29T12:00:00", "2025-07-01T00:00:00Z/2025-07-01T01:00:00Z",
		"1969-12-31T23:59:59Z/2025-07-01T00:00:00Z", "2025-07-01", "", nil, 1751356800.0)
}

func (h hostile) number() any {
	return h.pick(0.0, 1.0, 35.5, -1.0, math.Copysign(0, -1), 1e-300, 1999.9, 2000.0, 2000.1, 1e308, -1e308, 1e12, 1e13, 70.0, 71.0,
		-60.0, -61.0, 0.5, 14.0, "35", nil, true)
}

func (h hostile) point() any {
	hk := []any{105.8524, 21.0287}
	return h.pick(
		map[string]any{"type": "Point", "coordinates": hk},
		map[string]any{"type": "Point", "coordinates": hk},
		map[string]any{"type": "Point", "coordinates": []any{105.7833, 21.0285, 12.0}},
		map[string]any{"type": "Point", "coordinates": []any{21.0287, 105.8524}},
		map[string]any{"type": "Point", "coordinates": []any{nil, nil}},
		map[string]any{"type": "Point", "coordinates": []any{0.0, 0.0}},
		map[string]any{"type": "Point", "coordinates": []any{106.7009, 10.7769}},
		map[string]any{"type": "Point", "coordinates": []any{181.0, 21.0}},
		map[string]any{"type": "Point", "coordinates": []any{105.8524}},
		map[string]any{"type": "Point", "coordinates": "105.8524,21.0287"},
		map[string]any{"type": "Polygon", "coordinates": []any{}},
		map[string]any{"type": "Point"},
		nil,
	)
}

func (h hostile) line() any {
	return h.pick(
		map[string]any{"type": "LineString", "coordinates": [][]float64{{105.8519, 21.0287}, {105.8524, 21.0287}, {105.8529, 21.0289}}},
		map[string]any{"type": "LineString", "coordinates": [][]float64{{105.8519, 21.0287}, {105.8524, 21.0287}, {105.8529, 21.0289}}},
		map[string]any{"type": "LineString", "coordinates": [][]float64{{105.8519, 21.0287}}},
		map[string]any{"type": "LineString", "coordinates": [][]float64{{105.8519, 21.0287}, {105.8519, 21.0287}}},
		map[string]any{"type": "LineString", "coordinates": [][]float64{{105.85, 21.02}, {106.70, 10.77}}},
		map[string]any{"type": "LineString", "coordinates": []any{[]any{105.85, nil}, []any{105.86, 21.03}}},
		map[string]any{"type": "Point", "coordinates": []float64{105.8524, 21.0287}},
	)
}

func (h hostile) polygon() any {
	sq := func(x, y, d float64) [][]float64 {
		return [][]float64{{x, y}, {x + d, y}, {x + d, y + d}, {x, y + d}, {x, y}}
	}
	return h.pick(
		map[string]any{"type": "Polygon", "coordinates": [][][]float64{sq(105.85, 21.02, 0.004)}},
		map[string]any{"type": "Polygon", "coordinates": [][][]float64{sq(105.85, 21.02, 0.004), sq(105.851, 21.021, 0.001)}},
		map[string]any{"type": "Polygon", "coordinates": [][][]float64{sq(105.85, 21.02, 0.004), sq(106.5, 21.5, 0.001)}},
		map[string]any{"type": "Polygon", "coordinates": [][][]float64{sq(105.85, 21.02, 0.004), sq(105.853, 21.021, 0.004)}},
		map[string]any{"type": "Polygon", "coordinates": [][][]float64{{{105.85, 21.02}, {105.86, 21.03}, {105.86, 21.02}, {105.85, 21.03}, {105.85, 21.02}}}},
		map[string]any{"type": "MultiPolygon", "coordinates": [][][][]float64{{sq(105.85, 21.02, 0.004)}, {sq(105.78, 21.02, 0.004)}}},
		map[string]any{"type": "Polygon", "coordinates": [][][]float64{{{105.85, 21.02}, {105.86, 21.02}, {105.85, 21.02}}}},
	)
}

// set puts v at k unless v is nil (a member left out).
func set(m map[string]any, k string, v any) {
	if v != nil {
		m[k] = v
	}
}

// hostileItem draws an item of kind with hostile members.
func hostileItem(h hostile, kind string, n int, now time.Time) map[string]any {
	m := map[string]any{}
	switch kind {
	case subjects.KindAlert:
		set(m, "identifier", h.id("al", n))
		set(m, "sender", h.text())
		set(m, "sent", h.time(now))
		m["status"], m["msgType"], m["scope"] = "Actual", h.pick("Alert", "Update", "Cancel"), "Public"
		info := map[string]any{"category": []string{"Met"}, "event": "Ngập", "urgency": "Immediate", "severity": "Severe", "certainty": "Observed"}
		set(info, "headline", h.text())
		set(info, "description", h.text())
		set(info, "expires", h.time(now))
		m["info"] = []any{info}
		area := map[string]any{"areaDesc": "Phố Hàng Bài"}
		set(area, "geometry", h.polygon())
		m["area"] = []any{area}
		return m
	case subjects.KindReport:
		set(m, "id", h.id("rp", n))
		m["type"] = "FieldReport"
		m["category"] = h.pick("flooding", "traffic", "other", "Flooding", "")
		set(m, "dateReported", h.time(now))
		set(m, "location", h.point())
		set(m, "description", h.text())
		if h.r.IntN(3) == 0 {
			m["media"] = h.pick([]any{"https://example.vn/a.jpg"}, []any{"javascript:alert(1)"}, []any{"https://u:p@x.vn/"})
		}
		return m
	}
	set(m, "id", h.id(kind, n))
	set(m, "dateObserved", h.time(now))
	set(m, "name", h.text())
	set(m, "refDevice", h.id("dev", n))
	switch kind {
	case subjects.KindTraffic:
		m["type"] = "TrafficFlowObserved"
		set(m, "location", h.line())
		set(m, "refRoadSegment", h.id("seg", n))
		for _, k := range []string{"intensity", "occupancy", "averageVehicleSpeed", "averageHeadwayTime"} {
			set(m, k, h.number())
		}
		set(m, "laneDirection", h.pick(nil, "forward", "sideways"))
	case subjects.KindAir:
		m["type"] = "AirQualityObserved"
		set(m, "location", h.point())
		for _, k := range []string{"pm25", "PM10", "no2", "co", "temperature", "relativeHumidity"} {
			set(m, k, h.number())
		}
	case subjects.KindWater:
		m["type"] = "WaterQualityObserved"
		set(m, "location", h.point())
		for _, k := range []string{"waterLevel", "flow", "ph", "temperature"} {
			set(m, k, h.number())
		}
		set(m, "alarmLevels", h.pick(nil, []any{9.5, 10.5, 11.5}, []any{1e308, nil, nil}, []any{3.0, 2.0}))
	case subjects.KindWeather:
		m["type"] = "WeatherObserved"
		set(m, "location", h.point())
		for _, k := range []string{"temperature", "relativeHumidity", "precipitation", "windSpeed", "atmosphericPressure"} {
			set(m, k, h.number())
		}
	}
	// An unknown numeric member with an odd name.
	set(m, h.pick("airQualityIndex", "chỉ-số", "a b", "x\x00y", "k"+badUTF8, strings.Repeat("k", 300)).(string), h.number())
	return m
}

// startIngest serves the ingest over the 34 provinces and Hà Nội's wards,
// publishing to ne, with the dev token "dev" and source "hn" (token
// "tok-hn") bound to province 01.
func startIngest(t testing.TB, ne *testenv.NATSEnv) *httptest.Server {
	t.Helper()
	ps, err := units.FromGeoJSON(bytes.NewReader(seed.Provinces2025()), units.LevelProvince, "")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := units.FromGeoJSON(bytes.NewReader(seed.HanoiWards2025()), units.LevelCommune, "01")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := ingest.New(t.Context(), ingest.Config{DevToken: "dev"}, ingest.Deps{JS: ne.JS, Units: append(ps, ws...),
		Sources: []ingest.Source{ingest.SourceWithToken("hn", "01", "tok-hn")}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs
}

// FuzzAcceptedDecodes posts arbitrary bodies to the ingest (kind chosen by
// the first byte): every item answered accepted must be published once and
// decode in the aggregator. TestAcceptedMeansStored also stores them.
func FuzzAcceptedDecodes(f *testing.F) {
	item := `{"id":"a","type":"AirQualityObserved","dateObserved":"2025-07-01T08:00:00Z","location":{"type":"Point","coordinates":[105.8524,21.0287]},"pm25":12,"name":"Trạm","refDevice":"d"}`
	for _, s := range []string{
		"\x00" + item, "\x00[" + item + "," + strings.Replace(item, `"a"`, `"a\u0000"`, 1) + "]",
		"\x00" + strings.Replace(item, "2025", "1970", 1), "\x00" + strings.Replace(item, "21.0287", "null", 1),
		"\x01" + `{"id":"t","dateObserved":"2025-07-01T08:00:00Z","location":{"type":"LineString","coordinates":[[105.8519,21.0287],[105.8524,21.0287]]},"intensity":3}`,
		"\x02" + `{"id":"w","dateObserved":"2025-07-01T08:00:00Z","location":{"type":"Point","coordinates":[105.8524,21.0287]},"waterLevel":9,"alarmLevels":[9.5,10,11]}`,
		"\x03" + `{"id":"x","dateObserved":"2025-07-01T08:00:00Z","location":{"type":"Point","coordinates":[105.8524,21.0287]},"temperature":30,"x y":1}`,
		"\x04" + `{"id":"r","type":"FieldReport","category":"flooding","location":{"type":"Point","coordinates":[105.8524,21.0287]},"description":"ngập"}`,
		"\x05" + `{"identifier":"al","sender":"s","sent":"2025-07-01T08:00:00Z","status":"Actual","msgType":"Alert","info":[{"category":["Met"],"event":"e","headline":"h"}],"area":[{"areaDesc":"a","geometry":{"type":"Polygon","coordinates":[[[105.85,21.02],[105.854,21.02],[105.854,21.024],[105.85,21.024],[105.85,21.02]],[[106.5,21.5],[106.6,21.5],[106.6,21.6],[106.5,21.5]]]}}]}`,
	} {
		f.Add([]byte(s))
	}
	ne := testenv.NATS(f)
	hs := startIngest(f, ne)
	kinds := []string{subjects.KindAir, subjects.KindTraffic, subjects.KindWater, subjects.KindWeather, subjects.KindReport, subjects.KindAlert}
	cons, err := ne.JS.OrderedConsumer(context.Background(), subjects.StreamFeeds, jetstream.OrderedConsumerConfig{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 2 {
			return
		}
		kind := kinds[int(in[0])%len(kinds)]
		resp := post(t, hs.URL+"/v1/feeds/"+kind, "dev", in[1:], "application/json")
		want := 0
		for _, r := range resp.Results {
			if r.Retryable {
				t.Fatalf("item answered retryable on a healthy hub: %+v", r)
			}
			if r.Status == ingest.StatusAccepted {
				want++
			}
		}
		for got := 0; got < want; {
			mb, err := cons.Fetch(want-got, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for m := range mb.Messages() {
				n++
				if _, err := decode(m.Subject(), m.Headers(), m.Data(), time.Now()); err != nil {
					t.Fatalf("accepted %s item refused by the aggregator: %v\nbody: %.500q", kind, err, in[1:])
				}
			}
			if n == 0 {
				t.Fatalf("%d accepted items; only %d on FEEDS", want, got)
			}
			got += n
		}
	})
}

// TestAcceptedMeansStored feeds hostile items through the ingest's real
// HTTP path into a real JetStream, and for every item answered accepted runs
// the aggregator's decoder on the published message and stores it in a real
// PostGIS: each one must decode and be stored, as the charter promises.
func TestAcceptedMeansStored(t *testing.T) {
	ne := testenv.NATS(t)
	pool := testDB(t)
	store := postgis.NewStore(pool)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	hs := startIngest(t, ne)

	r := rand.New(rand.NewPCG(20261204, 6))
	h := hostile{r}
	now := time.Now()
	kinds := []string{subjects.KindAir, subjects.KindTraffic, subjects.KindWater, subjects.KindWeather, subjects.KindReport, subjects.KindAlert}
	type acceptedItem struct {
		kind, eventID, subject string
		item                   []byte
	}
	var accepted []acceptedItem
	seen := map[string]int{} // status -> count
	const perKind, batch = 240, 40
	for _, kind := range kinds {
		for start := 0; start < perKind; start += batch {
			items := make([]map[string]any, batch)
			for i := range items {
				items[i] = hostileItem(h, kind, start+i, now)
			}
			var lines [][]byte
			for _, it := range items {
				b, err := json.Marshal(it)
				if err != nil {
					t.Fatal(err)
				}
				lines = append(lines, bytes.ReplaceAll(b, []byte(badUTF8), []byte{0xff}))
			}
			body := bytes.Join(lines, []byte("\n"))
			token := []string{"dev", "tok-hn"}[r.IntN(2)]
			resp := post(t, hs.URL+"/v1/feeds/"+kind, token, body, "application/x-ndjson")
			for i, res := range resp.Results {
				seen[res.Status]++
				if res.Retryable {
					t.Fatalf("%s item %d answered retryable (%s) on a healthy hub: %s", kind, i, res.Reason, lines[i])
				}
				if res.Status == ingest.StatusAccepted {
					accepted = append(accepted, acceptedItem{kind: kind, eventID: res.EventID, subject: res.Subject, item: lines[i]})
				}
			}
		}
	}
	t.Logf("results: %v", seen)
	if seen[ingest.StatusAccepted] < 50 || seen[ingest.StatusRejected] < 50 {
		t.Fatalf("results %v: the generator must produce both many accepted and many rejected items", seen)
	}

	// Read back every published message.
	cons, err := ne.JS.OrderedConsumer(ctx, subjects.StreamFeeds, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]jetstream.Msg{}
	for len(byID) < len(accepted) {
		mb, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range mb.Messages() {
			got++
			byID[m.Headers().Get(ce.HeaderID)+"|"+m.Subject()] = m
		}
		if err := mb.Error(); err != nil {
			t.Fatal(err)
		}
		if got == 0 {
			break
		}
	}
	if len(byID) != len(accepted) {
		t.Fatalf("FEEDS holds %d messages; %d items were accepted", len(byID), len(accepted))
	}

	for _, a := range accepted {
		m, ok := byID[a.eventID+"|"+a.subject]
		if !ok {
			t.Errorf("accepted %s %s not found on FEEDS", a.kind, a.eventID)
			continue
		}
		d, err := decode(m.Subject(), m.Headers(), m.Data(), time.Now())
		if err != nil {
			t.Errorf("accepted %s item refused by the aggregator: %v\nitem: %.400s", a.kind, err, a.item)
			continue
		}
		var p pending
		p.add(d, m)
		if _, err := store.WriteBatch(ctx, p.batch); err != nil {
			t.Errorf("accepted %s item refused by the store: %v\nitem: %.400s", a.kind, err, a.item)
			continue
		}
		if n := storedRows(ctx, t, pool, d); n != 1 {
			t.Errorf("accepted %s item %s: %d rows stored; want 1\nitem: %.400s", a.kind, a.eventID, n, a.item)
		}
	}
}

// storedRows counts the rows holding the decoded message's event.
func storedRows(ctx context.Context, t *testing.T, pool *pgxpool.Pool, d decoded) int {
	t.Helper()
	var table, source, event string
	switch d.kind {
	case subjects.KindAir:
		table, source, event = "air_observation", d.row.(postgis.AirRow).SourceID, d.row.(postgis.AirRow).EventID
	case subjects.KindTraffic:
		table, source, event = "traffic_observation", d.row.(postgis.TrafficRow).SourceID, d.row.(postgis.TrafficRow).EventID
	case subjects.KindWater:
		table, source, event = "water_observation", d.row.(postgis.WaterRow).SourceID, d.row.(postgis.WaterRow).EventID
	case subjects.KindWeather:
		table, source, event = "weather_observation", d.row.(postgis.WeatherRow).SourceID, d.row.(postgis.WeatherRow).EventID
	case subjects.KindReport:
		table, source, event = "report", d.row.(postgis.ReportRow).SourceID, d.row.(postgis.ReportRow).EventID
	case subjects.KindAlert:
		table, source, event = "alert", d.row.(postgis.AlertRow).SourceID, d.row.(postgis.AlertRow).EventID
	default:
		t.Fatalf("kind %q", d.kind)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE source_id = $1 AND event_id = $2", source, event).Scan(&n); err != nil {
		t.Fatalf("counting %s rows: %v", table, err)
	}
	return n
}

func post(t testing.TB, url, token string, body []byte, contentType string) ingest.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out ingest.Response
	switch {
	case res.StatusCode == http.StatusServiceUnavailable || res.StatusCode >= 500:
		t.Fatalf("POST %s: HTTP %d on a healthy hub: %.500s", url, res.StatusCode, b)
	case res.StatusCode >= 400:
		return out // the whole body refused (malformed, every item outside the source's unit): nothing accepted
	case res.StatusCode != http.StatusAccepted:
		t.Fatalf("POST %s: HTTP %d: %.500s", url, res.StatusCode, b)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return out
}
