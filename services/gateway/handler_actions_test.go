package gateway

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twpayne/go-geom"
	"google.golang.org/protobuf/types/known/timestamppb"

	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

func TestEncodeReportFeature(t *testing.T) {
	at := time.Date(2025, 7, 1, 11, 30, 0, 0, time.UTC)
	st := &iocv1.EntityState{Layer: "report", EntityId: "dev/r-1", Province: "01", Unit: "00070", UpdatedAt: timestamppb.New(at),
		Latest: &iocv1.EntityState_Report{Report: &iocv1.Report{Id: "r-1", EntityId: "dev/r-1", ObservedAt: timestamppb.New(at),
			Location: mustWKB(t, geom.NewPointFlat(geom.XY, []float64{105.8342, 21.0278})), Category: "flooding",
			Text: strings.Repeat("ngập ", 30), Status: "assigned", Assignee: "đội 3", SlaDeadline: timestamppb.New(at.Add(4 * time.Hour)),
			ContactSealed: []byte("SECRET-SEALED")}}}
	f, err := encodeFeature(st, "")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(f.json, []byte("SECRET")) || bytes.Contains(f.json, []byte("contact")) {
		t.Errorf("feature carries the contact: %s", f.json)
	}
	var got struct {
		ID       string `json:"id"`
		Geometry struct {
			Type        string    `json:"type"`
			Coordinates []float64 `json:"coordinates"`
		} `json:"geometry"`
		Properties struct {
			Name        string            `json:"name"`
			Observation map[string]string `json:"observation"`
			Report      map[string]any    `json:"report"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(f.json, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != "report/dev/r-1" || got.Geometry.Type != "Point" || got.Geometry.Coordinates[0] != 105.8342 {
		t.Errorf("id %s geometry %+v", got.ID, got.Geometry)
	}
	r := got.Properties.Report
	if r["category"] != "flooding" || r["status"] != "assigned" || r["assignee"] != "đội 3" || r["slaDeadline"] != "2025-07-01T15:30:00Z" || r["overdue"] != false {
		t.Errorf("report = %v", r)
	}
	if media, ok := r["media"].([]any); !ok || len(media) != 0 {
		t.Errorf("media = %v; want []", r["media"])
	}
	if n := len([]rune(got.Properties.Name)); n != 80 || !strings.HasSuffix(got.Properties.Name, "…") {
		t.Errorf("name has %d characters (%q); want 80 ending with …", n, got.Properties.Name)
	}
	if got.Properties.Observation["id"] != "r-1" || got.Properties.Observation["time"] != "2025-07-01T11:30:00Z" {
		t.Errorf("observation = %v", got.Properties.Observation)
	}
}

func TestReportStatusRequest(t *testing.T) {
	for _, tc := range []struct {
		name, ct, body, want string
	}{
		{"ok", "application/json", `{"status":"in_progress","note":"n"}`, ""},
		{"assigned", "", `{"status":"assigned","assignee":"a"}`, ""},
		{"xml", "application/xml", `<x/>`, `Content-Type "application/xml": send application/json`},
		{"not json", "application/json", `status=assigned`, "body: want {"},
		{"two objects", "application/json", `{"status":"resolved"}{}`, "one JSON object and nothing after it"},
		{"unknown member", "application/json", `{"status":"resolved","by":"x"}`, `unknown field "by"`},
		{"no status", "application/json", `{"note":"x"}`, "status: missing"},
		{"bad status", "application/json", `{"status":"closed"}`, `status: "closed" is not one of`},
		{"no assignee", "application/json", `{"status":"assigned","assignee":"  "}`, "assignee: missing"},
		{"long note", "application/json", `{"status":"resolved","note":"` + strings.Repeat("x", maxNote+1) + `"}`, "note: longer than 2000"},
		{"NUL in the note", "application/json", `{"status":"resolved","note":"x\u0000"}`, "note: holds a NUL byte (byte 1)"},
		{"NUL in the assignee", "application/json", `{"status":"assigned","assignee":"a\u0000b"}`, "assignee: holds a NUL byte (byte 1)"},
		{"too big", "application/json", `{"status":"resolved","note":"` + strings.Repeat("x", maxActionBody) + `"}`, "request body too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v1/reports/x/status", strings.NewReader(tc.body))
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			_, msg := readReportStatus(httptest.NewRecorder(), r)
			if tc.want == "" && msg != "" || tc.want != "" && !strings.Contains(msg, tc.want) {
				t.Errorf("got %q; want %q", msg, tc.want)
			}
		})
	}
}

// keyID is the action id the gateway gives a request of identity id with
// Idempotency-Key key (TestActionID checks what it must be).
func keyID(t *testing.T, id, method, path, key string) string {
	t.Helper()
	got, msg := actionIDFrom(id+"\x00"+method+" "+path, key)
	if msg != "" {
		t.Fatal(msg)
	}
	return got
}

func TestActionID(t *testing.T) {
	id1, msg1 := actionIDFrom("a\x00POST /v1/x", "")
	id2, _ := actionIDFrom("a\x00POST /v1/x", "")
	if msg1 != "" || len(id1) != 32 || id1 == id2 {
		t.Errorf("fresh ids %q %q (%s); want two different 32-hex ids", id1, id2, msg1)
	}
	// A key is one action per identity, method and path: a retry is the
	// same action; the same key elsewhere is another, never dropped as a
	// duplicate of it.
	const scope = "op-hanoi\x00POST /v1/reports/s%2Fr1/status"
	k, _ := actionIDFrom(scope, "1")
	for _, tc := range []struct {
		scope, key string
		same       bool
	}{
		{scope, "1", true},
		{scope, " 1 ", true},
		{"op-hcmc\x00POST /v1/reports/s%2Fr1/status", "1", false},
		{"op-hanoi\x00POST /v1/reports/s%2Fr2/status", "1", false},
		{"op-hanoi\x00DELETE /v1/reports/s%2Fr1/status", "1", false},
		{scope, "2", false},
	} {
		got, msg := actionIDFrom(tc.scope, tc.key)
		if msg != "" || len(got) != 32 || (got == k) != tc.same {
			t.Errorf("actionIDFrom(%q, %q) = %q (%s); same as the first: %v, want %v", tc.scope, tc.key, got, msg, got == k, tc.same)
		}
	}
	for _, tc := range []struct{ key, msg string }{
		{strings.Repeat("k", maxIdempotency+1), "longer than 128"},
		{"a b", "visible ASCII"},
		{"ý", "visible ASCII"},
	} {
		if got, msg := actionIDFrom(scope, tc.key); got != "" || !strings.Contains(msg, tc.msg) {
			t.Errorf("actionIDFrom(%q) = %q, %q; want the message %q", tc.key, got, msg, tc.msg)
		}
	}
}
