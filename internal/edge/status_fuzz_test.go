package edge

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzUnsentRecord: a record of lost items as an edge serves it to the hub
// (untrusted: whoever holds the edge's machine writes it) never panics;
// what is refused is ErrBadUnsentRecord; what is taken has at most
// maxLostSpans runs and encodes and decodes back to the same counts.
func FuzzUnsentRecord(f *testing.F) {
	at := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	good, err := json.Marshal(UnsentRecord{Total: 9, Last: &LostRun{FromSeq: 14, ToSeq: 15, Found: "expired", DetectedAt: at},
		Counted: []Span{{6, 12}, {14, 15}}, UpdatedAt: at})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"total":0,"updated_at":"2026-12-07T08:00:00Z"}`))
	f.Add([]byte(`{"total":-1}`))
	f.Add([]byte(`{"counted":[` + strings.Repeat(`{"from":1,"to":2},`, 40) + `{"from":1,"to":2}]}`))
	f.Add([]byte(`[[[[[[[[[[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeUnsentRecord(b)
		if err != nil {
			if !errors.Is(err, ErrBadUnsentRecord) {
				t.Fatalf("refused with %v; want ErrBadUnsentRecord", err)
			}
			return
		}
		if len(b) > maxRecordBytes || len(r.Counted) > maxLostSpans {
			t.Fatalf("took a record of %d bytes with %d runs", len(b), len(r.Counted))
		}
		again, err := json.Marshal(r)
		if err != nil {
			return // a time out of JSON's range: the hub shows it as it came
		}
		back, err := decodeUnsentRecord(again)
		if err != nil || back.Total != r.Total || len(back.Counted) != len(r.Counted) || (back.Last == nil) != (r.Last == nil) {
			t.Fatalf("re-encoded %s: %+v, %v; want %+v", again, back, err, r)
		}
	})
}

// TestUnsentRecordBounded: a record over maxRecordBytes, or with more runs
// than an edge keeps, is refused naming why.
func TestUnsentRecordBounded(t *testing.T) {
	big := []byte(`{"total":1,"found":"` + strings.Repeat("x", maxRecordBytes) + `"}`)
	if _, err := decodeUnsentRecord(big); !errors.Is(err, ErrBadUnsentRecord) || !strings.Contains(err.Error(), "bytes, over") {
		t.Errorf("a record of %d bytes: %v; want refused as over %d", len(big), err, maxRecordBytes)
	}
	many := []byte(`{"counted":[` + strings.Repeat(`{"from":1,"to":2},`, maxLostSpans) + `{"from":1,"to":2}]}`)
	if _, err := decodeUnsentRecord(many); !errors.Is(err, ErrBadUnsentRecord) || !strings.Contains(err.Error(), "counted runs") {
		t.Errorf("a record of %d runs: %v; want refused", maxLostSpans+1, err)
	}
}
