package ingest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/capconv"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// TestCAPJSONOffsets checks that a CAP-shaped JSON alert keeps the UTC offset
// of each date-time in the proto's *_offset_seconds fields, as CAP XML alerts
// do, and that its CAP form writes the times as they were sent.
func TestCAPJSONOffsets(t *testing.T) {
	tests := []struct {
		name                           string
		sent, effective, onset, expire string
		want                           [4]int32 // sent, effective, onset, expires
		wantCAP                        [4]string
	}{
		{"Hà Nội time", "2025-07-01T08:00:00+07:00", "2025-07-01T08:05:00+07:00", "2025-07-01T09:00+07:00", "2025-07-01T20:00:00.5+07:00",
			[4]int32{25200, 25200, 25200, 25200},
			[4]string{"2025-07-01T08:00:00+07:00", "2025-07-01T08:05:00+07:00", "2025-07-01T09:00:00+07:00", "2025-07-01T20:00:00+07:00"}},
		{"mixed offsets", "2025-07-01T01:00:00Z", "2025-06-30T21:30:00-03:30", "2025-07-01T06:45:00+05:45", "2025-07-01T10:00:00+00:00",
			[4]int32{0, -12600, 20700, 0},
			[4]string{"2025-07-01T01:00:00+00:00", "2025-06-30T21:30:00-03:30", "2025-07-01T06:45:00+05:45", "2025-07-01T10:00:00+00:00"}},
		{"no offset is UTC", "2025-07-01T08:00:00", "", "", "",
			[4]int32{0, 0, 0, 0},
			[4]string{"2025-07-01T08:00:00+00:00", "", "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := map[string]any{"category": []string{"Met"}, "event": "Flood",
				"area": []any{map[string]any{"areaDesc": "Hoàn Kiếm", "geometry": map[string]any{"type": "Point", "coordinates": []float64{105.85, 21.03}}}}}
			for k, v := range map[string]string{"effective": tt.effective, "onset": tt.onset, "expires": tt.expire} {
				if v != "" {
					info[k] = v
				}
			}
			raw, err := json.Marshal(map[string]any{"identifier": "HN-1", "sender": "ioc@hanoi.gov.vn", "sent": tt.sent,
				"status": "Actual", "msgType": "Alert", "info": []any{info}})
			if err != nil {
				t.Fatal(err)
			}
			var fm map[string]json.RawMessage
			if err := json.Unmarshal(raw, &fm); err != nil {
				t.Fatal(err)
			}
			p, ierr := parseAlert(fieldsOf(fm), parseEnv{now: time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)})
			if ierr != nil {
				t.Fatalf("parseAlert: %s: %s", ierr.pointer, ierr.reason)
			}
			m := p.msg.(*iocv1.Alert)
			in := m.GetInfo()[0]
			got := [4]int32{m.GetSentOffsetSeconds(), in.GetEffectiveOffsetSeconds(), in.GetOnsetOffsetSeconds(), in.GetExpiresOffsetSeconds()}
			if got != tt.want {
				t.Errorf("offsets (sent, effective, onset, expires): got %v; want %v", got, tt.want)
			}
			a, err := capconv.FromProto(m)
			if err != nil {
				t.Fatal(err)
			}
			format := func(t time.Time) string {
				if t.IsZero() {
					return ""
				}
				return t.Format("2006-01-02T15:04:05-07:00") // CAP 1.2 date-time
			}
			gotCAP := [4]string{format(a.Sent), format(a.Infos[0].Effective), format(a.Infos[0].Onset), format(a.Infos[0].Expires)}
			if gotCAP != tt.wantCAP {
				t.Errorf("CAP times: got %v; want %v", gotCAP, tt.wantCAP)
			}
		})
	}
}
