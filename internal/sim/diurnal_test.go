package sim

import (
	"encoding/csv"
	"math"
	"os"
	"strconv"
	"testing"
)

// TestDiurnalTableMatchesCSV recomputes pm25ByHour from the copy of the
// Hà Nội series in testdata (see testdata/SOURCES.md).
func TestDiurnalTableMatchesCSV(t *testing.T) {
	f, err := os.Open("testdata/Hanoi_PM2.5_2019_YTD.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	hourCol, hok := col["Hour"]
	concCol, cok := col["Raw Conc."]
	if !hok || !cok {
		t.Fatalf("header %v lacks Hour or Raw Conc.", rows[0])
	}
	var sum, n [24]float64
	for i, r := range rows[1:] {
		h, err := strconv.Atoi(r[hourCol])
		if err != nil || h < 0 || h > 23 {
			t.Fatalf("row %d: hour %q", i+2, r[hourCol])
		}
		v, err := strconv.ParseFloat(r[concCol], 64)
		if err != nil {
			t.Fatalf("row %d: Raw Conc. %q: %v", i+2, r[concCol], err)
		}
		if v == -999 {
			continue
		}
		sum[h] += v
		n[h]++
	}
	for h := range 24 {
		if n[h] == 0 {
			t.Fatalf("hour %d has no values", h)
		}
		want := sum[h] / n[h]
		if got := pm25ByHour[h]; math.Abs(got-want) > 0.005 {
			t.Errorf("pm25ByHour[%d] = %v; want %.2f", h, got, want)
		}
	}
}

func TestPM25Diurnal(t *testing.T) {
	tests := []struct {
		name string
		h    float64
		want float64
	}{
		{"on the hour", 3, pm25ByHour[3]},
		{"half past", 14.5, (pm25ByHour[14] + pm25ByHour[15]) / 2},
		{"wraps at midnight", 23.5, (pm25ByHour[23] + pm25ByHour[0]) / 2},
		{"next day", 27, pm25ByHour[3]},
		{"negative", -1, pm25ByHour[23]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pm25Diurnal(tt.h); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("pm25Diurnal(%v) = %v; want %v", tt.h, got, tt.want)
			}
		})
	}
}

func TestTrafficDemandRushHours(t *testing.T) {
	night := trafficDemand(3)
	for _, h := range []float64{7.5, 8, 8.5, 17, 17.5, 18, 18.5} {
		if got := trafficDemand(h); got < 0.95 || got <= 5*night {
			t.Errorf("trafficDemand(%v) = %v; want ≥ 0.95 and far above night's %v", h, got, night)
		}
	}
	for _, h := range []float64{0, 2, 3, 4, 23.5} {
		if got := trafficDemand(h); got > 0.2 {
			t.Errorf("trafficDemand(%v) = %v; want ≤ 0.2 at night", h, got)
		}
	}
}
