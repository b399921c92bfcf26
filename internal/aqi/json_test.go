package aqi

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

func TestJSONOf(t *testing.T) {
	if JSONOf(nil) != nil {
		t.Error("JSONOf(nil) is not nil")
	}
	h, d := int32(152), int32(98)
	x := &iocv1.AirQualityIndex{Hourly: &h, Dominant: "pm25", Band: 4, BandVi: "Xấu", BandEn: "Poor", Color: "#FF0000",
		Hour: timestamppb.New(time.Date(2026, 3, 1, 8, 0, 0, 0, time.FixedZone("ICT", 7*3600))), Daily: &d,
		SubIndices: map[string]float64{"pm25": 152.4, "": 3, "o3": math.NaN(), "pm10": math.Inf(1)}}
	b, err := json.Marshal(JSONOf(x))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"hourly":152,"dominant":"pm25","band":4,"bandVi":"Xấu","bandEn":"Poor","color":"#FF0000","hour":"2026-03-01T01:00:00Z","daily":98,"subIndices":{"pm25":152.4}}`
	if string(b) != want {
		t.Errorf("got %s\nwant %s", b, want)
	}
	b, err = json.Marshal(JSONOf(&iocv1.AirQualityIndex{Reason: "no PM2.5 for 3 hours", Hour: &timestamppb.Timestamp{Seconds: math.MaxInt64}}))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"reason":"no PM2.5 for 3 hours"}`; string(b) != want {
		t.Errorf("got %s; want %s", b, want)
	}
}

// FuzzAppendJSON holds AppendJSON to encoding/json's bytes (HTML left
// unescaped) for every member present or absent.
func FuzzAppendJSON(f *testing.F) {
	f.Add("pm25", int32(3), "Tốt <&>", "Good", "#00e400", "2026-07-01T08:00:00Z", "", "o3", 12.5, uint8(0xff))
	f.Add("", int32(0), "\u2028\x00\xff", "", "", "", "no data: \"x\"", "", 1e-9, uint8(0))
	f.Fuzz(func(t *testing.T, dominant string, n int32, vi, en, color, hour, reason, sub string, x float64, present uint8) {
		j := JSON{Dominant: dominant, Band: n % 7, BandVI: vi, BandEN: en, Color: color, Hour: hour, Reason: reason}
		if present&1 != 0 {
			j.Hourly = &n
		}
		if present&2 != 0 {
			j.Daily = &n
		}
		if present&4 != 0 && !math.IsNaN(x) && !math.IsInf(x, 0) {
			j.SubIndices = map[string]float64{sub: x, "pm10": 40}
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(&j); err != nil {
			t.Fatal(err)
		}
		if got := j.AppendJSON(nil); !bytes.Equal(got, bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Fatalf("AppendJSON %s; encoding/json %s", got, want.Bytes())
		}
	})
}
