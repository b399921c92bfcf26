package ingest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/cap"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/ingest"
)

// Points in Hà Nội (province 01) outside Hoàn Kiếm, and in Hồ Chí Minh City (79).
var (
	hcmc = [2]float64{106.7009, 10.7769}
)

// squareAt is a closed CAP polygon (lat,lon) of side d degrees at a lon,lat point.
func squareAt(p [2]float64, d float64) string {
	lon, lat := p[0], p[1]
	return fmt.Sprintf("%v,%v %v,%v %v,%v %v,%v %v,%v", lat, lon, lat, lon+d, lat+d, lon+d, lat+d, lon, lat, lon)
}

// capXMLAlert is a CAP alert with one info holding areas.
func capXMLAlert(id string, areas ...string) []byte {
	return []byte(`<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>` + id + `</identifier><sender>ioc@hanoi.gov.vn</sender>
<sent>2025-07-01T08:00:00+07:00</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
<info><category>Met</category><event>Ngập</event><urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>` +
		strings.Join(areas, "") + `</info></alert>`)
}

func polyArea(p [2]float64, d float64) string {
	return "<area><areaDesc>a</areaDesc><polygon>" + squareAt(p, d) + "</polygon></area>"
}

// TestCAPNestedBody: 100 000 nested elements in an alert are a 400 naming
// the depth limit (they once took ~15 GB).
func TestCAPNestedBody(t *testing.T) {
	e := newCAPEnv(t, ingest.Config{})
	const n = 100_000
	doc := capXMLAlert("N-1", polyArea(hoanKiem, 0.001))
	at := bytes.Index(doc, []byte("<info>"))
	body := append(append(append([]byte{}, doc[:at]...), strings.Repeat("<x>", n)+strings.Repeat("</x>", n)...), doc[at:]...)
	r := e.post(t, "alert", tokWard, capXML, body)
	want := fmt.Sprintf("nested more than %d deep", cap.MaxDepth)
	if r.code != http.StatusBadRequest || !strings.Contains(r.problem.Detail, want) {
		t.Errorf("got %d %.500s; want 400 containing %q", r.code, r.raw, want)
	}
}

// TestCAPManyAreas: 10 000 identical areas were accepted and stalled the
// aggregator. Now more than cap.MaxAreas is refused naming the element and
// the limit; under the limit, repeats are kept in the CAP document but the
// geometry for the spatial join draws the shape once.
func TestCAPManyAreas(t *testing.T) {
	e := newCAPEnv(t, ingest.Config{})
	area := polyArea(hoanKiem, 0.001)
	r := e.post(t, "alert", tokWard, capXML, capXMLAlert("MANY-1", strings.Repeat(area, 10_000)))
	wantPath := fmt.Sprintf("alert/info[0]/area[%d]", cap.MaxAreas)
	if r.code != http.StatusAccepted || r.resp.Rejected != 1 || r.resp.Results[0].Path != wantPath ||
		!strings.Contains(r.resp.Results[0].Reason, fmt.Sprintf("more than %d <area> in <info>; the hub takes at most %d", cap.MaxAreas, cap.MaxAreas)) {
		t.Fatalf("got %d %.1000s; want the item rejected at %s naming the limit", r.code, r.raw, wantPath)
	}
	// Within the limit: accepted, every area kept, one shape drawn.
	r = e.post(t, "alert", tokWard, capXML, capXMLAlert("MANY-2", strings.Repeat(area, cap.MaxAreas)))
	if r.code != http.StatusAccepted || r.resp.Accepted != 1 {
		t.Fatalf("got %d %.1000s; want 202 accepted", r.code, r.raw)
	}
	m := lastFeed(t, e, r.resp.Results[0].Subject)
	a := &iocv1.Alert{}
	if err := proto.Unmarshal(m.Data, a); err != nil {
		t.Fatal(err)
	}
	areas, drawn := 0, 0
	for _, ar := range a.GetInfo()[0].GetArea() {
		areas++
		if len(ar.GetPolygon()) != 1 {
			t.Errorf("area has %d CAP polygons; want its one kept", len(ar.GetPolygon()))
		}
		if len(ar.GetGeometry().GetWkb()) > 0 {
			drawn++
		}
	}
	if areas != cap.MaxAreas || drawn != 1 {
		t.Errorf("event has %d areas, %d with a geometry; want %d areas, 1 geometry", areas, drawn, cap.MaxAreas)
	}
	// Distinct overlapping polygons are all kept.
	r = e.post(t, "alert", tokWard, capXML, capXMLAlert("OVERLAP-1", polyArea(hoanKiem, 0.002), polyArea([2]float64{hoanKiem[0] + 0.001, hoanKiem[1]}, 0.002)))
	if r.code != http.StatusAccepted || r.resp.Accepted != 1 {
		t.Fatalf("overlapping areas: got %d %.1000s; want 202 accepted", r.code, r.raw)
	}
}

// TestCAPLongIdentifier: a 1 MB identifier went into a NATS header and came
// back as a retryable 503. It is a permanent, clipped rejection.
func TestCAPLongIdentifier(t *testing.T) {
	e := newCAPEnv(t, ingest.Config{})
	long := strings.Repeat("i", 1<<20)
	r := e.post(t, "alert", tokWard, capXML, capXMLAlert(long, polyArea(hoanKiem, 0.001)))
	if r.code != http.StatusAccepted || r.resp.Rejected != 1 || r.resp.Results[0].Retryable {
		t.Fatalf("got %d %.1000s; want the item rejected, not retryable", r.code, r.raw)
	}
	res := r.resp.Results[0]
	if res.Path != "alert/identifier" || !strings.Contains(res.Reason, "alert/identifier") {
		t.Errorf("got path %q reason %.300q; want alert/identifier named", res.Path, res.Reason)
	}
	if len(r.raw) > 2048 || !strings.HasSuffix(res.ID, fmt.Sprintf("…(%d bytes)", len(long))) {
		t.Errorf("answer of %d bytes, id %.200q; want the identifier clipped", len(r.raw), res.ID)
	}
	id := strings.Repeat("s", cap.MaxIDBytes+1)
	r = e.post(t, "alert", tokWard, capXML, bytes.Replace(capXMLAlert("ID-2", polyArea(hoanKiem, 0.001)), []byte("ioc@hanoi.gov.vn"), []byte(id), 1))
	if r.code != http.StatusAccepted || r.resp.Rejected != 1 || r.resp.Results[0].Path != "alert/sender" ||
		!strings.Contains(r.resp.Results[0].Reason, fmt.Sprintf("%q…(%d bytes) is %d bytes; the hub takes at most %d", id[:64], len(id), len(id), cap.MaxIDBytes)) {
		t.Errorf("long sender: got %d %.1000s; want a rejection naming alert/sender", r.code, r.raw)
	}
}

// TestCAPInvalidText: NUL and invalid UTF-8 in CAP text make the body
// unreadable XML (a 400), named with the element's path.
func TestCAPInvalidText(t *testing.T) {
	e := newCAPEnv(t, ingest.Config{})
	doc := capXMLAlert("TXT-1", polyArea(hoanKiem, 0.001))
	for _, tc := range []struct{ name, old, new, path, reason string }{
		{"NUL", "<event>Ngập</event>", "<event>Ng\x00p</event>", "alert/info[0]/event", "illegal character code U+0000"},
		{"invalid UTF-8", "<areaDesc>a</areaDesc>", "<areaDesc>\xc3(</areaDesc>", "alert/info[0]/area[0]/areaDesc", "invalid UTF-8"},
	} {
		r := e.post(t, "alert", tokWard, capXML, bytes.Replace(doc, []byte(tc.old), []byte(tc.new), 1))
		if r.code != http.StatusBadRequest || !strings.Contains(r.problem.Detail, tc.path+": unreadable XML") || !strings.Contains(r.problem.Detail, tc.reason) {
			t.Errorf("%s: got %d %s; want 400 naming %s with %q", tc.name, r.code, r.raw, tc.path, tc.reason)
		}
	}
}

// TestAlertAreaScope: a source bound to a ward may alert only within the
// ward's province (or, with AlertScopeUnit, the ward); the dev token anywhere.
func TestAlertAreaScope(t *testing.T) {
	inHK := polyArea(hoanKiem, 0.001)
	inCG := polyArea(cauGiay, 0.001)
	inHCM := polyArea(hcmc, 0.001)
	circleHCM := fmt.Sprintf("<area><areaDesc>c</areaDesc><circle>%v,%v 1</circle></area>", hcmc[1], hcmc[0])
	geocode := func(code string) string {
		return "<area><areaDesc>g</areaDesc><geocode><valueName>" + ingest.GeocodeUnit + "</valueName><value>" + code + "</value></geocode></area>"
	}
	foreign := "<area><areaDesc>g</areaDesc><geocode><valueName>SAME</valueName><value>006001</value></geocode></area>"
	type want struct {
		code   int
		reason string // for a rejection
	}
	accepted := want{code: 202}
	tests := []struct {
		name  string
		scope string
		token string
		doc   []byte
		want  want
	}{
		{"ward and elsewhere in its province", "", tokWard, capXMLAlert("S-1", inHK, inCG), accepted},
		{"ward and another province", "", tokWard, capXMLAlert("S-2", inHK, inHCM),
			want{403, "alert/info[0]/area[1]: vertex [106.7009, 10.7769] is outside province 01"}},
		{"ward and a circle in another province", "", tokWard, capXMLAlert("S-3", inHK, circleHCM),
			want{403, "alert/info[0]/area[1]: vertex "}},
		{"geocode of a ward in the province", "", tokWard, capXMLAlert("S-4", inHK, geocode("00166")), accepted},
		{"geocode of another province", "", tokWard, capXMLAlert("S-5", inHK, geocode("79")),
			want{403, "alert/info[0]/area[1]: geocode iochub:unit 79"}},
		{"geocode naming no unit", "", tokWard, capXMLAlert("S-6", inHK, geocode("zz")),
			want{202, `alert/info[0]/area[1]: geocode iochub:unit "zz" is not a known unit`}},
		{"foreign geocode only", "", tokWard, capXMLAlert("S-7", foreign), accepted},
		{"unit scope: elsewhere in the province", ingest.AlertScopeUnit, tokWard, capXMLAlert("S-8", inHK, inCG),
			want{403, "alert/info[0]/area[1]: vertex [105.7833, 21.0285] is outside unit 00070"}},
		{"unit scope: within the ward", ingest.AlertScopeUnit, tokWard, capXMLAlert("S-9", inHK, inHK), accepted},
		{"dev token is exempt", "", tokDev, capXMLAlert("S-10", inHK, inHCM), accepted},
	}
	envs := map[string]*env{"": newCAPEnv(t, ingest.Config{}), ingest.AlertScopeUnit: newCAPEnv(t, ingest.Config{AlertScope: ingest.AlertScopeUnit})}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := envs[tc.scope]
			r := e.post(t, "alert", tc.token, capXML, tc.doc)
			if r.code != tc.want.code {
				t.Fatalf("got %d %s; want %d", r.code, r.raw, tc.want.code)
			}
			switch {
			case tc.want.reason == "":
				if r.resp.Accepted != 1 {
					t.Errorf("got %s; want accepted", r.raw)
				}
			case r.code == 403:
				if len(r.problem.Errors) != 1 || !strings.Contains(r.problem.Errors[0].Reason, tc.want.reason) {
					t.Errorf("got %s; want a reason containing %q", r.raw, tc.want.reason)
				}
			default:
				if r.resp.Rejected != 1 || !strings.Contains(r.resp.Results[0].Reason, tc.want.reason) {
					t.Errorf("got %s; want rejected with %q", r.raw, tc.want.reason)
				}
			}
		})
	}
	if err := (ingest.Config{AlertScope: "country"}).Validate(); err == nil {
		t.Error("AlertScope country passed Validate")
	}
}

// jsonAlert is a CAP-shaped JSON alert with the given areas in its info.
func jsonAlert(id string, areas []any, extra map[string]any) []byte {
	info := map[string]any{"category": []string{"Met"}, "event": "Flood", "area": areas}
	a := map[string]any{"identifier": id, "sent": "2025-07-01T08:00:00+07:00", "status": "Actual", "msgType": "Alert", "info": []any{info}}
	for k, v := range extra {
		if strings.HasPrefix(k, "info.") {
			info[strings.TrimPrefix(k, "info.")] = v
		} else {
			a[k] = v
		}
	}
	b, err := json.Marshal([]any{a})
	if err != nil {
		panic(err)
	}
	return b
}

func jsonPolyArea(p [2]float64, d float64) any {
	lon, lat := p[0], p[1]
	return map[string]any{"areaDesc": "a", "geometry": map[string]any{"type": "Polygon",
		"coordinates": [][][]float64{{{lon, lat}, {lon + d, lat}, {lon + d, lat + d}, {lon, lat + d}, {lon, lat}}}}}
}

// TestCAPJSONBounds: the JSON form of an alert gets the CAP XML bounds.
func TestCAPJSONBounds(t *testing.T) {
	e := newCAPEnv(t, ingest.Config{})
	hk := jsonPolyArea(hoanKiem, 0.001)
	many := make([]any, cap.MaxAreas+1)
	for i := range many {
		many[i] = hk
	}
	tests := []struct {
		name          string
		body          []byte
		pointer, want string
	}{
		{"long identifier", jsonAlert(strings.Repeat("i", 1<<20), []any{hk}, nil), "/0/identifier", fmt.Sprintf("…(%d bytes) is %d bytes; the hub takes at most %d", 1<<20, 1<<20, cap.MaxIDBytes)},
		{"identifier with a newline", jsonAlert("a\r\nb", []any{hk}, nil), "/0/identifier", "must not contain spaces"},
		{"long sender", jsonAlert("J-1", []any{hk}, map[string]any{"sender": strings.Repeat("s", 300)}), "/0/sender", "the hub takes at most 256"},
		{"too many areas", jsonAlert("J-2", many, nil), "/0/info/0/area", fmt.Sprintf("%d areas; the hub takes at most %d", cap.MaxAreas+1, cap.MaxAreas)},
		{"NUL in description", jsonAlert("J-3", []any{hk}, map[string]any{"info.description": "a\x00b"}), "/0/info/0/description", "NUL"},
		{"long description", jsonAlert("J-4", []any{hk}, map[string]any{"info.description": strings.Repeat("d", cap.MaxTextBytes+1)}), "/0/info/0/description", "the hub takes at most 65536"},
		{"invalid UTF-8", bytes.Replace(jsonAlert("J-5", []any{hk}, map[string]any{"note": "NOTE"}), []byte("NOTE"), []byte("N\xffTE"), 1), "/0/note", "not valid UTF-8"},
		{"many references", jsonAlert("J-6", []any{hk}, map[string]any{"references": strings.Repeat("s,i,2025-07-01T08:00:00+07:00 ", cap.MaxReferences+1)}), "/0/references", fmt.Sprintf("the hub takes at most %d", cap.MaxReferences)},
		{"another province", jsonAlert("J-7", []any{hk, jsonPolyArea(hcmc, 0.001)}, nil), "/0/info/0/area/1", "is outside province 01"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(t, "alert", tokWard, "application/json", tc.body)
			var res ingest.Result
			switch {
			case r.code == http.StatusAccepted && len(r.resp.Results) == 1:
				res = r.resp.Results[0]
			case r.code == http.StatusForbidden && len(r.problem.Errors) == 1:
				res = ingest.Result{Status: ingest.StatusRejected, Pointer: r.problem.Errors[0].Pointer, Reason: r.problem.Errors[0].Reason}
			default:
				t.Fatalf("got %d %.1000s; want one rejected item", r.code, r.raw)
			}
			if res.Status != ingest.StatusRejected || res.Pointer != tc.pointer || !strings.Contains(res.Reason, tc.want) || len(res.Reason) > 1024 {
				t.Errorf("got %+.600v; want rejected at %s with %q", res, tc.pointer, tc.want)
			}
			if len(tc.body) > 1<<20 && len(r.raw) > 2048 {
				t.Errorf("answer of %d bytes for a %d-byte body; want the rejected value clipped", len(r.raw), len(tc.body))
			}
		})
	}
	// Repeated geometries: every area kept, one drawn.
	body := jsonAlert("J-8", []any{hk, hk, hk}, nil)
	r := e.post(t, "alert", tokWard, "application/json", body)
	if r.code != http.StatusAccepted || r.resp.Accepted != 1 {
		t.Fatalf("got %d %s; want accepted", r.code, r.raw)
	}
	m := lastFeed(t, e, subjects.Feed("01", "00070", subjects.KindAlert))
	a := &iocv1.Alert{}
	if err := proto.Unmarshal(m.Data, a); err != nil {
		t.Fatal(err)
	}
	drawn := 0
	for _, ar := range a.GetInfo()[0].GetArea() {
		if len(ar.GetGeometry().GetWkb()) > 0 {
			drawn++
		}
	}
	if len(a.GetInfo()[0].GetArea()) != 3 || drawn != 1 {
		t.Errorf("event has %d areas, %d drawn; want 3 areas, 1 drawn", len(a.GetInfo()[0].GetArea()), drawn)
	}
}

// TestCAPCircleOverAntimeridian: a circle reaching over the antimeridian
// (here a huge one around Hà Nội, which still resolves to province 01)
// becomes a polygon with longitudes beyond 180 (cap.CircleGeometry does not
// wrap), which the aggregator cannot store (geomcheck.Storable): the ingest
// refuses it instead of accepting an alert that would end in the dead letters.
func TestCAPCircleOverAntimeridian(t *testing.T) {
	e := newCAPEnv(t, ingest.Config{})
	circle := "<area><areaDesc>c</areaDesc><circle>21.03,105.85 12000</circle></area>"
	r := e.post(t, "alert", tokDev, capXML, capXMLAlert("AM-1", circle))
	if r.resp.Accepted != 0 || r.resp.Rejected != 1 || !strings.Contains(r.resp.Results[0].Reason, "alert/info[0]/area[0]: the area cannot be stored: coordinate (212.") ||
		!strings.HasSuffix(r.resp.Results[0].Reason, "is outside [-180, 180]") {
		t.Fatalf("got %d %s; want the alert rejected for a longitude beyond 180", r.code, r.raw)
	}
}
