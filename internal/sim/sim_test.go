package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/units"
	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/xy"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

// t0 is 08:00 in Hà Nội, a morning rush hour.
var t0 = time.Date(2026, 11, 20, 1, 0, 0, 0, time.UTC)

func newTestSim(t *testing.T, cfg Config) *Sim {
	t.Helper()
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://127.0.0.1:1"
	}
	if cfg.Token == "" {
		cfg.Token = "test-token"
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func marshalRounds(t *testing.T, s *Sim, times ...time.Time) []byte {
	t.Helper()
	var rounds []Round
	for _, tm := range times {
		rounds = append(rounds, s.Round(tm))
	}
	b, err := json.MarshalIndent(rounds, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestGolden(t *testing.T) {
	s := newTestSim(t, Config{Seed: 7, Stations: 4, Segments: 5, AlertEvery: 2 * time.Minute})
	got := marshalRounds(t, s, t0, t0.Add(5*time.Minute))
	const path = "testdata/round.golden.json"
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("rounds differ from %s (run with -update if the change is intended):\n%s", path, firstDiff(got, want))
	}
}

func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return "line " + itoa(i+1) + ": got " + al[i] + "; want " + bl[i]
		}
	}
	return "lengths differ: got " + itoa(len(al)) + " lines; want " + itoa(len(bl))
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestDeterministicForSeed(t *testing.T) {
	times := []time.Time{t0, t0.Add(time.Minute), t0.Add(3 * time.Minute)}
	cfg := Config{Seed: 42, Stations: 10, Segments: 10, AlertEvery: time.Minute}
	a := marshalRounds(t, newTestSim(t, cfg), times...)
	b := marshalRounds(t, newTestSim(t, cfg), times...)
	if !bytes.Equal(a, b) {
		t.Errorf("same seed and clock gave different rounds: %s", firstDiff(a, b))
	}
	cfg.Seed = 43
	c := marshalRounds(t, newTestSim(t, cfg), times...)
	if bytes.Equal(a, c) {
		t.Error("seeds 42 and 43 gave the same rounds")
	}
}

// insideRings checks a point against a unit's rings with go-geom's own ring
// test, independent of internal/units and of this package's placement.
func insideRings(mp *geom.MultiPolygon, p [2]float64) bool {
	for i := range mp.NumPolygons() {
		poly := mp.Polygon(i)
		if !xy.IsPointInRing(poly.Layout(), geom.Coord{p[0], p[1]}, poly.LinearRing(0).FlatCoords()) {
			continue
		}
		inHole := false
		for j := 1; j < poly.NumLinearRings(); j++ {
			if xy.IsPointInRing(poly.Layout(), geom.Coord{p[0], p[1]}, poly.LinearRing(j).FlatCoords()) {
				inHole = true
			}
		}
		if !inHole {
			return true
		}
	}
	return false
}

func TestPlacementInsideWards(t *testing.T) {
	s := newTestSim(t, Config{Seed: 1}) // defaults: 30 stations, 60 segments, Hà Nội's wards
	ix := units.NewIndex(s.cfg.Units)
	if got := len(s.cfg.Units); got != 126 {
		t.Fatalf("default units: got %d; want Hà Nội's 126 wards", got)
	}
	stationID := regexp.MustCompile(`^urn:ngsi-ld:Device:HN-AQ-\d{3}$`)
	segmentID := regexp.MustCompile(`^urn:ngsi-ld:RoadSegment:HN-(\d{5})-\d+$`)
	check := func(what, ward string, p [2]float64) {
		t.Helper()
		u, ok := ix.Get(ward)
		if !ok {
			t.Errorf("%s: ward %s unknown", what, ward)
			return
		}
		if !insideRings(u.Boundary, p) {
			t.Errorf("%s: point %v is outside ward %s", what, p, ward)
		}
		if got, ok := ix.Locate(p[0], p[1]); !ok || got.Code != ward {
			t.Errorf("%s: point %v located in %q; want %s", what, p, got.Code, ward)
		}
	}
	sts := s.Stations()
	if len(sts) != DefaultStations {
		t.Fatalf("got %d stations; want %d", len(sts), DefaultStations)
	}
	seen := map[string]bool{}
	for _, st := range sts {
		if !stationID.MatchString(st.ID) || seen[st.ID] {
			t.Errorf("station id %q malformed or repeated", st.ID)
		}
		seen[st.ID] = true
		check(st.ID, st.Ward, st.Point)
	}
	segs := s.Segments()
	if len(segs) != DefaultSegments {
		t.Fatalf("got %d segments; want %d", len(segs), DefaultSegments)
	}
	for _, sg := range segs {
		m := segmentID.FindStringSubmatch(sg.ID)
		if m == nil || m[1] != sg.Ward || seen[sg.ID] {
			t.Errorf("segment id %q malformed, repeated or not naming ward %s", sg.ID, sg.Ward)
		}
		seen[sg.ID] = true
		if n := len(sg.Line); n < 3 || n > 5 {
			t.Errorf("%s: %d vertices; want 3–5", sg.ID, n)
		}
		length := 0.0
		for i, p := range sg.Line {
			check(sg.ID, sg.Ward, p)
			if i > 0 {
				length += haversine(sg.Line[i-1], p)
			}
		}
		if length < 195 || length > 805 {
			t.Errorf("%s: length %.0f m; want 200–800 m", sg.ID, length)
		}
	}
}

func haversine(a, b [2]float64) float64 {
	const r = 6_371_000.0
	rad := math.Pi / 180
	dLat, dLon := (b[1]-a[1])*rad, (b[0]-a[0])*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(a[1]*rad)*math.Cos(b[1]*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * r * math.Asin(math.Sqrt(h))
}

func TestRushHourSlowerThanNight(t *testing.T) {
	s := newTestSim(t, Config{Seed: 3, Stations: -1, Segments: 60})
	night := s.Round(time.Date(2026, 11, 20, 3, 0, 0, 0, ict))
	rush := s.Round(time.Date(2026, 11, 20, 17, 45, 0, 0, ict))
	meanSpeed := func(r Round) float64 {
		sum := 0.0
		for _, o := range r.Traffic {
			sum += o.AverageVehicleSpeed
		}
		return sum / float64(len(r.Traffic))
	}
	if n, r := meanSpeed(night), meanSpeed(rush); r >= n*0.7 {
		t.Errorf("mean speed at 17:45 = %.1f km/h; want well below night's %.1f km/h", r, n)
	}
	congested, crawling := 0, 0
	for i, o := range rush.Traffic {
		n := night.Traffic[i]
		if o.AverageVehicleSpeed >= n.AverageVehicleSpeed {
			t.Errorf("%s: rush %.1f km/h not slower than night %.1f km/h", o.RefRoadSegment, o.AverageVehicleSpeed, n.AverageVehicleSpeed)
		}
		if o.Occupancy <= n.Occupancy {
			t.Errorf("%s: rush occupancy %v not above night %v", o.RefRoadSegment, o.Occupancy, n.Occupancy)
		}
		if o.Congested != (o.AverageVehicleSpeed < 20) {
			t.Errorf("%s: congested=%v at %.1f km/h; want congested below 20 km/h", o.RefRoadSegment, o.Congested, o.AverageVehicleSpeed)
		}
		if o.Congested {
			congested++
		}
		if o.AverageVehicleSpeed <= 15 {
			crawling++
		}
	}
	if congested == 0 || crawling == 0 {
		t.Errorf("at 17:45 %d segments congested, %d at ≤ 15 km/h; want some of each", congested, crawling)
	}
	for _, o := range night.Traffic {
		if o.Congested || o.AverageVehicleSpeed < 33 || o.AverageVehicleSpeed > 52 {
			t.Errorf("%s at 03:00: %.1f km/h congested=%v; want free flow 35–50 km/h", o.RefRoadSegment, o.AverageVehicleSpeed, o.Congested)
		}
		if o.Intensity <= 0 || o.Occupancy <= 0 || o.Occupancy >= 1 {
			t.Errorf("%s at 03:00: intensity %d occupancy %v", o.RefRoadSegment, o.Intensity, o.Occupancy)
		}
	}
}

func TestAirValuesPlausible(t *testing.T) {
	s := newTestSim(t, Config{Seed: 5, Stations: 30, Segments: -1})
	var o3Night, o3Afternoon, pmNight, pmAfternoon float64
	for day := range 5 {
		base := time.Date(2026, 11, 20+day, 0, 0, 0, 0, ict)
		for h := range 24 {
			r := s.Round(base.Add(time.Duration(h) * time.Hour))
			for _, o := range r.Air {
				if ratio := o.PM10 / o.PM25; ratio < 1.25 || ratio > 1.85 {
					t.Errorf("%s: pm10/pm25 = %.2f; want 1.3–1.8", o.ID, ratio)
				}
				for name, v := range map[string]float64{"pm25": o.PM25, "no2": o.NO2, "o3": o.O3, "co": o.CO, "so2": o.SO2} {
					if v <= 0 || math.IsNaN(v) {
						t.Fatalf("%s: %s = %v", o.ID, name, v)
					}
				}
				if o.RelativeHumidity <= 0 || o.RelativeHumidity > 1 || o.Temperature < 5 || o.Temperature > 40 {
					t.Errorf("%s: temperature %v relativeHumidity %v", o.ID, o.Temperature, o.RelativeHumidity)
				}
				switch h {
				case 2, 3, 4:
					o3Night += o.O3
					pmNight += o.PM25
				case 14, 15, 16:
					o3Afternoon += o.O3
					pmAfternoon += o.PM25
				}
			}
		}
	}
	if o3Afternoon <= 2*o3Night {
		t.Errorf("O3 afternoon sum %.0f; want more than twice night's %.0f", o3Afternoon, o3Night)
	}
	if pmAfternoon >= pmNight {
		t.Errorf("PM2.5 afternoon sum %.0f; want below night's %.0f (the Hà Nội shape)", pmAfternoon, pmNight)
	}
}

func TestAlerts(t *testing.T) {
	s := newTestSim(t, Config{Seed: 9, Stations: 10, Segments: 10, AlertEvery: 2 * time.Minute})
	ix := units.NewIndex(s.cfg.Units)
	categories := map[string]bool{}
	alerts := 0
	for i := range 60 {
		now := t0.Add(time.Duration(i) * time.Minute)
		r := s.Round(now)
		if want := i%2 == 0; (len(r.Alerts) == 1) != want {
			t.Fatalf("round at +%d min: %d alerts; want one every 2 minutes", i, len(r.Alerts))
		}
		for _, a := range r.Alerts {
			alerts++
			categories[a.Category] = true
			issued, err1 := time.Parse(time.RFC3339Nano, a.DateIssued)
			valid, err2 := time.Parse(time.RFC3339Nano, a.ValidTo)
			if err1 != nil || err2 != nil || valid.Sub(issued) != 30*time.Minute || !issued.Equal(now) {
				t.Errorf("%s: dateIssued %s validTo %s; want now and +30 min", a.ID, a.DateIssued, a.ValidTo)
			}
			if a.Description == "" || a.Name == "" || a.Severity == "" {
				t.Errorf("%s: empty description, name or severity", a.ID)
			}
			var pts [][2]float64
			switch a.Location.Type {
			case "Point":
				pts = [][2]float64{a.Location.Coordinates.([2]float64)}
			case "Polygon":
				ring := a.Location.Coordinates.([][][2]float64)[0]
				if ring[0] != ring[len(ring)-1] || len(ring) < 4 {
					t.Errorf("%s: ring not closed: %v", a.ID, ring)
				}
				flat := make([]float64, 0, 2*len(ring))
				for _, p := range ring {
					flat = append(flat, p[0], p[1])
				}
				if !xy.IsRingCounterClockwise(geom.XY, flat) {
					t.Errorf("%s: outer ring is clockwise; RFC 7946 wants counter-clockwise", a.ID)
				}
				pts = ring
			default:
				t.Errorf("%s: location type %q", a.ID, a.Location.Type)
			}
			for _, p := range pts {
				if _, ok := ix.Locate(p[0], p[1]); !ok {
					t.Errorf("%s: %v is in no ward", a.ID, p)
				}
			}
		}
	}
	for _, c := range []string{"traffic", "environment", "weather"} {
		if !categories[c] {
			t.Errorf("no %s alert among %d", c, alerts)
		}
	}
}

func TestAlertEveryDefaultAndNever(t *testing.T) {
	tests := []struct {
		name  string
		every time.Duration
		want  int // alerts over 10 rounds a minute apart
	}{
		{"zero is every 2 minutes", 0, 5},
		{"negative is never", -1, 0},
		{"every 5 minutes", 5 * time.Minute, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSim(t, Config{Seed: 4, Stations: 2, Segments: 2, AlertEvery: tt.every})
			got := 0
			for i := range 10 {
				got += len(s.Round(t0.Add(time.Duration(i) * time.Minute)).Alerts)
			}
			if got != tt.want {
				t.Errorf("%d alerts; want %d", got, tt.want)
			}
		})
	}
}

func TestObservationIDsUniquePerRound(t *testing.T) {
	s := newTestSim(t, Config{Seed: 2, Stations: 3, Segments: 3})
	a := s.Round(t0)
	b := s.Round(t0) // same clock reading: the round moves 1 ms on
	if a.Air[0].ID == b.Air[0].ID || a.Traffic[0].ID == b.Traffic[0].ID {
		t.Errorf("two rounds share ids: %s %s", a.Air[0].ID, a.Traffic[0].ID)
	}
	if a.Air[0].RefDevice != b.Air[0].RefDevice || a.Traffic[0].RefRoadSegment != b.Traffic[0].RefRoadSegment {
		t.Error("entity refs changed between rounds")
	}
	if want := "urn:ngsi-ld:AirQualityObserved:HN-AQ-001:1795136400000"; a.Air[0].ID != want {
		t.Errorf("air id = %q; want %q", a.Air[0].ID, want)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"minimal", Config{BaseURL: "http://127.0.0.1:8080", Token: "t"}, true},
		{"no url", Config{Token: "t"}, false},
		{"not http", Config{BaseURL: "ftp://x", Token: "t"}, false},
		{"no host", Config{BaseURL: "http://", Token: "t"}, false},
		{"no token", Config{BaseURL: "http://127.0.0.1:8080"}, false},
		{"negative interval", Config{BaseURL: "http://h", Token: "t", Interval: -1}, false},
		{"no alerts", Config{BaseURL: "http://h", Token: "t", AlertEvery: -1}, true},
		{"negative rounds", Config{BaseURL: "http://h", Token: "t", Rounds: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v; want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Errorf("error %v is not ErrConfig", err)
			}
		})
	}
}

func TestNewNoUnits(t *testing.T) {
	_, err := New(Config{BaseURL: "http://h", Token: "t", Units: []units.Unit{}})
	if !errors.Is(err, ErrNoUnits) {
		t.Errorf("New with no units: got %v; want ErrNoUnits", err)
	}
}
