package sim

import (
	"testing"
	"time"
)

// TestWaterAndWeatherStations: over one cycle of the rivers the first
// hydrological station passes alarm II and falls back below alarm I, and every
// value stays in the range the ingest accepts.
func TestWaterAndWeatherStations(t *testing.T) {
	s := newTestSim(t, Config{Seed: 6, Stations: -1, Segments: -1, AlertEvery: -1, Water: 3, Weather: 2})
	if got := len(s.WaterStations()); got != 3 {
		t.Fatalf("got %d water stations; want 3", got)
	}
	if got := len(s.WeatherStations()); got != 2 {
		t.Fatalf("got %d weather stations; want 2", got)
	}
	start := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	var highest, lowest = 0.0, 100.0
	for i := range 6 * 12 { // 6 hours every 5 minutes
		r := s.Round(start.Add(time.Duration(i) * 5 * time.Minute))
		if len(r.Water) != 3 || len(r.Weather) != 2 || len(r.Air) != 0 {
			t.Fatalf("round %d: got %d water, %d weather, %d air items; want 3, 2, 0", i, len(r.Water), len(r.Weather), len(r.Air))
		}
		w := r.Water[0]
		highest, lowest = max(highest, w.WaterLevel), min(lowest, w.WaterLevel)
		for _, w := range r.Water {
			if w.AlarmLevels != hanoiAlarmLevels || w.PH < 0 || w.PH > 14 || w.Turbidity < 0 || w.O2 < 0 || w.Type != "WaterQualityObserved" {
				t.Fatalf("round %d: water item %+v out of range", i, w)
			}
		}
		for _, x := range r.Weather {
			if x.RelativeHumidity < 0 || x.RelativeHumidity > 1 || x.Precipitation < 0 || x.WindSpeed < 0 ||
				x.WindDirection < 0 || x.WindDirection >= 360.5 || x.Type != "WeatherObserved" {
				t.Fatalf("round %d: weather item %+v out of range", i, x)
			}
		}
	}
	if highest < hanoiAlarmLevels[1] || lowest >= hanoiAlarmLevels[0] {
		t.Errorf("first station ranged %.2f..%.2f m over a cycle; want above alarm II (%.1f) and below alarm I (%.1f)",
			lowest, highest, hanoiAlarmLevels[1], hanoiAlarmLevels[0])
	}
}
