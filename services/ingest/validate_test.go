package ingest_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/units"
	"github.com/iochub/iochub/services/ingest"
)

// TestRefusedBeforeAccepted covers items that used to be answered accepted
// and then refused by the aggregator or the store (or stored absurd): each
// must now be rejected by the ingest, naming the field.
func TestRefusedBeforeAccepted(t *testing.T) {
	e := newEnv(t, ingest.Config{})
	huge := strings.Repeat("x", 1<<20)
	tests := []struct {
		name    string
		item    map[string]any
		pointer string
		reason  string // substring of the reason
	}{
		{"NUL in id", air("a\x00b", hoanKiem), "/0/id", "control character U+0000"},
		{"tab in id", air("a\tb", hoanKiem), "/0/id", "control character U+0009"},
		{"1900", with(air("t1900", hoanKiem), "dateObserved", "1900-01-01T00:00:00Z"), "/0/dateObserved", "out of range"},
		{"1970", with(air("t1970", hoanKiem), "dateObserved", "1970-01-01T00:00:00Z"), "/0/dateObserved", "out of range"},
		{"year 1 is out of range, not missing", with(air("t1", hoanKiem), "dateObserved", "0001-01-01T00:00:00Z"), "/0/dateObserved", "out of range"},
		{"interval from 1999", with(air("t1999", hoanKiem), "dateObserved", "1999-12-31T00:00:00Z/2025-07-01T00:00:00Z"), "/0/dateObserved", "out of range"},
		{"null coordinates", with(air("n1", hoanKiem), "location", map[string]any{"type": "Point", "coordinates": []any{nil, nil}}), "/0/location/coordinates", "null"},
		{"pm25 1e308", with(air("v1", hoanKiem), "pm25", 1e308), "/0/pm25", "plausible range [0, 2000]"},
		{"negative-free but absurd pm10", with(air("v2", hoanKiem), "PM10", 5000.0), "/0/PM10", "plausible"},
		{"temperature -100", with(air("v3", hoanKiem), "temperature", -100.0), "/0/temperature", "plausible range [-60, 70]"},
		{"huge other value", with(air("v4", hoanKiem), "airQualityIndex", 1e300), "/0/airQualityIndex", "beyond"},
		{"NUL in a member name", with(air("v5", hoanKiem), "x\x00y", 1.0), "/0/x\x00y", "member name has control character"},
		{"1 MB refDevice", with(air("r1", hoanKiem), "refDevice", huge), "/0/refDevice", "refDevice is 1048576 bytes long; at most 256"},
		{"1 MB name", with(air("r2", hoanKiem), "name", huge), "/0/name", "name is 1048576 bytes long; at most 256"},
		{"1 MB id", air(huge, hoanKiem), "/0/id", "id is 1048576 bytes long; at most 256"},
		{"1 MB type", with(air("r3", hoanKiem), "type", huge), "/0/type", "(1048576 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, "air", tokWard, "", arr(t, tt.item))
			if r.code != 202 || len(r.resp.Results) != 1 {
				t.Fatalf("got HTTP %d; want 202 with one result: %.300s", r.code, r.raw)
			}
			got := r.resp.Results[0]
			if got.Status != ingest.StatusRejected || got.Retryable || got.Pointer != tt.pointer || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("got %s %s %q (retryable %v); want rejected at %s with %q", got.Status, got.Pointer, got.Reason, got.Retryable, tt.pointer, tt.reason)
			}
			if len(r.raw) > 2048 {
				t.Errorf("the answer is %d bytes; a rejected value must not be echoed in full", len(r.raw))
			}
		})
	}
}

// TestInvalidUTF8IsRejected: two ids that differ only in invalid bytes used
// to decode to the same U+FFFD id, and the second was answered duplicate.
func TestInvalidUTF8IsRejected(t *testing.T) {
	e := newEnv(t, ingest.Config{})
	item := func(id string) string {
		return `{"id":"` + id + `","type":"AirQualityObserved","dateObserved":"2025-07-01T08:00:00Z",` +
			`"location":{"type":"Point","coordinates":[105.8524,21.0287]},"pm25":1}`
	}
	for _, tt := range []struct{ name, a, b, reason string }{
		{"raw bytes", "s-\xff", "s-\xfe", "not valid UTF-8"},
		{"lone surrogates", `s-\ud800`, `s-\udc01`, "unpaired UTF-16 surrogate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, "air", tokWard, "application/json", []byte("["+item(tt.a)+","+item(tt.b)+"]"))
			if r.code != 202 || len(r.resp.Results) != 2 {
				t.Fatalf("got HTTP %d: %s", r.code, r.raw)
			}
			for i, got := range r.resp.Results {
				if got.Status != ingest.StatusRejected || got.Pointer != fmt.Sprintf("/%d/id", i) || !strings.Contains(got.Reason, tt.reason) {
					t.Errorf("item %d: got %s %s %q; want rejected at /%d/id with %q", i, got.Status, got.Pointer, got.Reason, i, tt.reason)
				}
			}
		})
	}
	// A valid pair written as escapes is one character, accepted.
	r := e.post(t, "air", tokWard, "application/json", []byte("["+item(`s-\ud83d\ude00`)+"]"))
	if r.code != 202 || r.resp.Accepted != 1 || r.resp.Results[0].ID != "s-😀" {
		t.Errorf("surrogate pair: got HTTP %d %s; want accepted id s-😀", r.code, r.raw)
	}
}

// TestTruncatedBodyOffset: a body cut short is reported where it ends, not at byte 1.
func TestTruncatedBodyOffset(t *testing.T) {
	e := newEnv(t, ingest.Config{})
	for _, body := range []string{
		`[{"id":"a","type":"AirQualityObserved","dateObserved":"2025-07-01T08:00:00Z","location":{"type":"Point","coor`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[105.85,`,
	} {
		r := e.post(t, "air", tokWard, "application/json", []byte(body))
		want := fmt.Sprintf("at byte %d:", len(body))
		if r.code != 400 || !strings.Contains(r.problem.Detail, want) {
			t.Errorf("got HTTP %d %q; want 400 saying %q", r.code, r.problem.Detail, want)
		}
	}
}

// TestTooManyOtherMembers: an item whose event would exceed NATS's payload
// limit used to be answered 503 nats-unavailable (retryable); it is a 4xx
// reason on the item now.
func TestTooManyOtherMembers(t *testing.T) {
	e := newEnv(t, ingest.Config{})
	it := air("o1", hoanKiem)
	for i := range 70000 {
		it[fmt.Sprintf("m%06d", i)] = float64(i)
	}
	r := e.post(t, "air", tokWard, "", arr(t, it))
	if r.code != 202 || len(r.resp.Results) != 1 {
		t.Fatalf("got HTTP %d; want 202: %.300s", r.code, r.raw)
	}
	if got := r.resp.Results[0]; got.Status != ingest.StatusRejected || got.Retryable || !strings.Contains(got.Reason, "numeric members") {
		t.Errorf("got %s %q (retryable %v); want rejected for too many members", got.Status, got.Reason, got.Retryable)
	}
}

// TestProvinceSourceAtItsEdge: points inside Hà Nội's wards that the
// province polygon leaves out are Hà Nội's: a source bound to province 01
// places them in their ward, as the dev token does.
func TestProvinceSourceAtItsEdge(t *testing.T) {
	e := newEnv(t, ingest.Config{})
	ix := units.NewIndex(testUnits(t))
	var pts [][2]float64
	for lon := 105.25; lon <= 106.05 && len(pts) < 20; lon += 0.005 {
		for lat := 20.55; lat <= 21.40 && len(pts) < 20; lat += 0.005 {
			if u, ok := ix.Locate(lon, lat); ok && u.ParentCode == "01" && !ix.Contains("01", lon, lat) {
				pts = append(pts, [2]float64{lon, lat})
			}
		}
	}
	if len(pts) == 0 {
		t.Fatal("no ward point outside the province polygon; the test would prove nothing")
	}
	var items []map[string]any
	for i, p := range pts {
		items = append(items, air(fmt.Sprintf("edge-%d", i), p))
	}
	for _, tok := range []string{tokProvince, tokDev} {
		r := e.post(t, "air", tok, "", arr(t, items...))
		if r.code != 202 || len(r.resp.Results) != len(pts) {
			t.Fatalf("token %s: got HTTP %d: %.500s", tok, r.code, r.raw)
		}
		for i, got := range r.resp.Results {
			want, _ := ix.Locate(pts[i][0], pts[i][1])
			if got.Status == ingest.StatusRejected || got.Unit != want.Code {
				t.Errorf("token %s, point %v: got %s in %q (%s); want placed in ward %s", tok, pts[i], got.Status, got.Unit, got.Reason, want.Code)
			}
		}
	}
}

// TestParseGeometryTopology covers the ring checks of ParseGeometry.
func TestParseGeometryTopology(t *testing.T) {
	sq := func(x, y, d float64) [][]float64 {
		return [][]float64{{x, y}, {x + d, y}, {x + d, y + d}, {x, y + d}, {x, y}}
	}
	poly := func(rings ...[][]float64) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"type": "Polygon", "coordinates": rings})
		return b
	}
	big := make([][]float64, 0, ingest.MaxVertices+2)
	for i := range ingest.MaxVertices + 1 {
		big = append(big, []float64{105 + float64(i)*1e-6, 21})
	}
	bigLine, _ := json.Marshal(map[string]any{"type": "LineString", "coordinates": big})
	tests := []struct {
		name    string
		raw     json.RawMessage
		wantErr string // "" means valid
	}{
		{"hole inside", poly(sq(105, 21, 1), sq(105.2, 21.2, 0.2)), ""},
		{"hole touching the shell at a corner", poly(sq(105, 21, 1), [][]float64{{105, 21}, {105.2, 21.1}, {105.1, 21.2}, {105, 21}}), ""},
		{"hole outside", poly(sq(105, 21, 1), sq(107, 23, 0.2)), "location.coordinates[1]: hole 1 lies outside the outer ring"},
		{"hole outside but within the bbox", poly([][]float64{{105, 21}, {106, 21}, {105, 22}, {105, 21}}, sq(105.8, 21.8, 0.1)), "hole 1 lies outside"},
		{"hole crossing the shell", poly(sq(105, 21, 1), sq(105.9, 21.2, 0.2)), "location.coordinates[1]: hole 1 crosses the outer ring"},
		{"holes crossing", poly(sq(105, 21, 1), sq(105.2, 21.2, 0.2), sq(105.3, 21.3, 0.2)), "hole 2 crosses hole 1"},
		{"hole in a hole", poly(sq(105, 21, 1), sq(105.2, 21.2, 0.5), sq(105.3, 21.3, 0.1)), "hole 2 lies inside hole 1"},
		{"unclosed", poly([][]float64{{105, 21}, {106, 21}, {106, 22}, {105, 22}}), "not closed"},
		{"too few points", poly([][]float64{{105, 21}, {106, 21}, {105, 21}}), "at least 4 points"},
		{"bow tie", poly([][]float64{{105, 21}, {106, 22}, {106, 21}, {105, 22}, {105, 21}}), "intersects itself"},
		{"null position", json.RawMessage(`{"type":"Point","coordinates":[null,null]}`), "location.coordinates: coordinates hold null"},
		{"too many positions", bigLine, "at most 10000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ingest.ParseGeometry(tt.raw, "location", "Point", "LineString", "Polygon")
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got %v; want valid", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v; want an error with %q", err, tt.wantErr)
			}
		})
	}
}

// TestAlertTextsStorable: whichever parser reads an alert, a text the store
// cannot hold (NUL) or a time out of range is refused before it is
// accepted; the aggregator used to terminate them.
func TestAlertTextsStorable(t *testing.T) {
	e := newEnv(t, ingest.Config{})
	nulHeadline := capAlert("al-nul", hoanKiem)
	nulHeadline["info"].([]any)[0].(map[string]any)["headline"] = "a\x00b"
	old := capAlert("al-old", hoanKiem)
	old["sent"] = "1990-01-01T00:00:00Z"
	r := e.post(t, "alert", tokWard, "", arr(t, nulHeadline, old, capAlert("al-ok", hoanKiem)))
	if r.code != 202 || len(r.resp.Results) != 3 {
		t.Fatalf("got HTTP %d: %.500s", r.code, r.raw)
	}
	for i, want := range []string{"NUL", "out of range", ""} {
		got := r.resp.Results[i]
		if want == "" {
			if got.Status != ingest.StatusAccepted {
				t.Errorf("item %d: got %s %q; want accepted", i, got.Status, got.Reason)
			}
			continue
		}
		if got.Status != ingest.StatusRejected || !strings.Contains(got.Reason, want) {
			t.Errorf("item %d: got %s %q; want rejected with %q", i, got.Status, got.Reason, want)
		}
	}
}

// TestProvinceAlertAtItsEdge: an alert area inside a ward of Hà Nội but
// wholly outside the province polygon meets province 01.
func TestProvinceAlertAtItsEdge(t *testing.T) {
	e := newEnv(t, ingest.Config{})
	ix := units.NewIndex(testUnits(t))
	const d = 0.0002
	var p [2]float64
	found := false
	for lon := 105.25; lon <= 106.05 && !found; lon += 0.005 {
		for lat := 20.55; lat <= 21.40 && !found; lat += 0.005 {
			u, ok := ix.Locate(lon, lat)
			if ok && u.ParentCode == "01" && !ix.IntersectsArea("01", [][][]float64{{squareRing(lon, lat, d)}}) &&
				ix.Contains(u.Code, lon-d, lat-d) && ix.Contains(u.Code, lon+d, lat+d) {
				p, found = [2]float64{lon, lat}, true
			}
		}
	}
	if !found {
		t.Fatal("no alert-sized area of a ward lies wholly outside the province polygon; the test would prove nothing")
	}
	ring := squareRing(p[0], p[1], d)
	var coords [][]float64
	for k := 0; k+1 < len(ring); k += 2 {
		coords = append(coords, []float64{ring[k], ring[k+1]})
	}
	a := capAlert("edge-alert", p)
	a["area"] = []any{map[string]any{"areaDesc": "edge", "geometry": map[string]any{"type": "Polygon", "coordinates": [][][]float64{coords}}}}
	r := e.post(t, "alert", tokProvince, "", arr(t, a))
	if r.code != 202 || r.resp.Accepted != 1 {
		t.Errorf("got HTTP %d %.500s; want the alert accepted for province 01", r.code, r.raw)
	}
}

// squareRing is the closed ring, flat lon,lat, of the square of half-side d around (x, y).
func squareRing(x, y, d float64) []float64 {
	return []float64{x - d, y - d, x + d, y - d, x + d, y + d, x - d, y + d, x - d, y - d}
}

// TestMaxAge: with Config.MaxAge set, an observation older than it is
// refused; without it only the fixed floor applies.
func TestMaxAge(t *testing.T) {
	old := air("old", hoanKiem) // dated 2025-07-01
	for _, tt := range []struct {
		maxAge time.Duration
		want   string
	}{{0, ingest.StatusAccepted}, {24 * time.Hour, ingest.StatusRejected}} {
		e := newEnv(t, ingest.Config{MaxAge: tt.maxAge})
		r := e.post(t, "air", tokWard, "", arr(t, old))
		if r.code != 202 || r.resp.Results[0].Status != tt.want {
			t.Errorf("MaxAge %s: got HTTP %d %.300s; want %s", tt.maxAge, r.code, r.raw, tt.want)
		}
		if tt.want == ingest.StatusRejected && !strings.Contains(r.resp.Results[0].Reason, "old; this hub takes observations up to 24h0m0s old") {
			t.Errorf("MaxAge %s: reason %q", tt.maxAge, r.resp.Results[0].Reason)
		}
	}
	if _, err := ingest.New(t.Context(), ingest.Config{MaxAge: -time.Second}, ingest.Deps{}); err == nil {
		t.Error("New with a negative MaxAge: no error")
	}
}

// TestRefArrayUTF8: a reference given as an array is read like a string:
// invalid UTF-8 in its first element is refused, not replaced.
func TestRefArrayUTF8(t *testing.T) {
	e := newEnv(t, ingest.Config{})
	body := []byte(`[{"id":"ra","type":"AirQualityObserved","dateObserved":"2025-07-01T08:00:00Z","location":{"type":"Point","coordinates":[105.8524,21.0287]},"refDevice":["dev-` + "\xff" + `"]}]`)
	r := e.post(t, "air", tokWard, "application/json", body)
	if r.code != 202 || r.resp.Results[0].Status != ingest.StatusRejected || r.resp.Results[0].Pointer != "/0/refDevice/0" {
		t.Errorf("got HTTP %d %s; want rejected at /0/refDevice/0", r.code, r.raw)
	}
	ok := with(air("rb", hoanKiem), "refDevice", []string{"dev-1", "dev-2"})
	if r := e.post(t, "air", tokWard, "", arr(t, ok)); r.code != 202 || r.resp.Accepted != 1 {
		t.Errorf("array of refs: got HTTP %d %s; want accepted", r.code, r.raw)
	}
}
