package aqi

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

var miss = Sample{}

func m(c float64) Sample { return Measured(c) }

func TestNowCast(t *testing.T) {
	tests := []struct {
		name    string
		hourly  []Sample // newest first
		want    float64
		wantErr error
	}{
		{"constant", []Sample{m(40), m(40), m(40), m(40)}, 40, nil},
		// w* = 10/100 is below 1/2, so w = 1/2: (100 + 10/2) / (1 + 1/2) = 70.
		{"w floored at 1/2", []Sample{m(100), m(10)}, 70, nil},
		// w* = 30/40 = 3/4: (40 + 3/4·30) / (1 + 3/4) = 62.5 / 1.75.
		{"w = w* above 1/2", []Sample{m(40), m(30)}, 62.5 / 1.75, nil},
		// c2 missing keeps its place: (10 + (1/2)²·20) / (1 + (1/2)²) = 15 / 1.25 = 12.
		{"missing hour has weight 0", []Sample{m(10), miss, m(20)}, 12, nil},
		{"c1 missing, c2 and c3 present", []Sample{miss, m(20), m(20)}, 20, nil},
		{"only c1 of the latest 3", []Sample{m(20), miss, miss, m(20), m(20)}, 0, ErrTooFewRecentHours},
		{"only c3 of the latest 3", []Sample{miss, miss, m(20), m(20), m(20)}, 0, ErrTooFewRecentHours},
		{"one sample", []Sample{m(20)}, 0, ErrTooFewRecentHours},
		{"nothing", nil, 0, ErrNoData},
		{"all 12 missing", make([]Sample, 12), 0, ErrNoData},
		// Hour 13 is outside the NowCast; were it counted, w* = 10/1000 and the value would move.
		{"13th hour ignored", append(repeat(m(10), 12), m(1000)), 10, nil},
		{"all zero", []Sample{m(0), m(0), m(0)}, 0, nil},
		// A zero minimum makes w* = 0, so w = 1/2: (0 + 8/2) / 1.5.
		{"zero minimum", []Sample{m(0), m(8)}, 4 / 1.5, nil},
		{"negative", []Sample{m(10), m(-1)}, 0, ErrInvalidConcentration},
		{"NaN", []Sample{m(math.NaN()), m(1)}, 0, ErrInvalidConcentration},
		{"negative beyond 12 ignored", append(repeat(m(10), 12), m(-1)), 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NowCast(tt.hourly)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("NowCast error: got %v; want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("NowCast = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestNowCastErrorSaysWhy(t *testing.T) {
	_, err := NowCast([]Sample{m(20), miss, miss, m(20)})
	if got, want := err.Error(), "NowCast needs at least 2 of the latest 3 hourly values (have 1)"; got != want {
		t.Errorf("error: got %q; want %q", got, want)
	}
}

func repeat(s Sample, n int) []Sample {
	out := make([]Sample, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// FuzzNowCast feeds arbitrary hourly values: the first two bytes say which of the 12 hours are
// present, then 8 bytes per hour give its value (any float64 bits: NaN, infinities, negatives).
func FuzzNowCast(f *testing.F) {
	seed := func(mask uint16, vals ...float64) []byte {
		b := binary.LittleEndian.AppendUint16(nil, mask)
		for _, v := range vals {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
		return b
	}
	f.Add(seed(0xfff, 20.6, 19.6, 22.4, 20.3, 16.5, 19.0, 16.5, 19.5, 23.5, 20.5, 24.7, 26.9))
	f.Add(seed(0b101, 10, 0, 20))
	f.Add(seed(0b1, 10))
	f.Add(seed(0b11, 0, 0))
	f.Add(seed(0b11, 1e308, 1e308))
	f.Add(seed(0b11, math.MaxFloat64, 5e-324))
	f.Add(seed(0b11, -1, 3))
	f.Add(seed(0b11, 800, 900))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		mask := binary.LittleEndian.Uint16(data)
		data = data[2:]
		var hourly []Sample
		lo, hi := math.Inf(1), math.Inf(-1)
		valid, recent := 0, 0
		for i := 0; len(data) >= 8 && i < NowCastHours; i++ {
			c := math.Float64frombits(binary.LittleEndian.Uint64(data))
			data = data[8:]
			s := Sample{Conc: c, Valid: mask&(1<<i) != 0}
			hourly = append(hourly, s)
			if s.Valid {
				if !validConc(c) {
					valid = -1000
				}
				valid++
				if i < 3 {
					recent++
				}
				lo, hi = min(lo, c), max(hi, c)
			}
		}
		nc, err := NowCast(hourly)
		switch {
		case valid < 0:
			if !errors.Is(err, ErrInvalidConcentration) {
				t.Fatalf("NowCast(%v) error: got %v; want ErrInvalidConcentration", hourly, err)
			}
			return
		case valid == 0:
			if !errors.Is(err, ErrNoData) {
				t.Fatalf("NowCast(%v) error: got %v; want ErrNoData", hourly, err)
			}
			return
		case recent < 2:
			if !errors.Is(err, ErrTooFewRecentHours) {
				t.Fatalf("NowCast(%v) error: got %v; want ErrTooFewRecentHours", hourly, err)
			}
			return
		case err != nil:
			t.Fatalf("NowCast(%v): %v", hourly, err)
		}
		if !(nc >= lo && nc <= hi) {
			t.Fatalf("NowCast(%v) = %v; want within [%v, %v]", hourly, nc, lo, hi)
		}
		for _, p := range []Pollutant{PM25, PM10} {
			idx, err := SubIndex(p, MeanNowCast, nc)
			if err != nil {
				t.Fatalf("SubIndex(%s, %v): %v", p, nc, err)
			}
			tb, _ := tableFor(p, MeanNowCast)
			// In [0, 500] up to the last breakpoint, above 500 ("500+") beyond it, never NaN or infinite.
			top := tb.bp[tb.n-1]
			if !(idx >= 0) || math.IsInf(idx, 0) || (nc <= top && idx > 500) || (nc > top && idx < 500) {
				t.Fatalf("SubIndex(%s, NowCast %v) = %v; want in [0, 500] up to %v µg/m³ and 500+ beyond", p, nc, idx, top)
			}
		}
	})
}

func BenchmarkNowCast(b *testing.B) {
	hourly := newestFirst([]float64{26.9, 24.7, 20.5, 23.5, 19.5, 16.5, 19.0, 16.5, 20.3, 22.4, 19.6, 20.6})
	hourly[4] = Sample{}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NowCast(hourly); err != nil {
			b.Fatal(err)
		}
	}
}
