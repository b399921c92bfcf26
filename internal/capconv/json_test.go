package capconv

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

func TestInfoSummaryJSON(t *testing.T) {
	in := &iocv1.AlertInfo{Language: "vi-VN", Event: "Ngập", Urgency: "Immediate", Severity: "Severe", Certainty: "Observed",
		Headline: "Ngập <sâu>", Instruction: "left out", Onset: timestamppb.New(time.Unix(0, 0)),
		Expires: timestamppb.New(time.Date(2026, 7, 1, 9, 0, 0, 5e8, time.FixedZone("ICT", 7*3600)))}
	b, err := json.Marshal(InfoSummaryJSON(in))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"language":"vi-VN","category":[],"event":"Ngập","urgency":"Immediate","severity":"Severe","certainty":"Observed","headline":"Ngập \u003csâu\u003e","description":"","expires":"2026-07-01T02:00:00.5Z"}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	in.Expires = &timestamppb.Timestamp{Seconds: math.MaxInt64}
	if got := InfoSummaryJSON(in).Expires; got != nil {
		t.Errorf("invalid expiry gives %v; want none", got)
	}
}
