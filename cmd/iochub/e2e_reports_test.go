package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iochub/iochub/internal/seal"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
)

const reportPhone = "0912 345 678"

var reportKey = bytes.Repeat([]byte{0x5a}, seal.KeySize)

// startReportHub runs every role with a seal key and a quick report sweep.
func startReportHub(t *testing.T, n *testenv.NATSEnv, db *testenv.DBEnv) *hub {
	t.Helper()
	return startHubTB(t, "all", n, db, func(cfg *config) {
		cfg.SealKey = hex.EncodeToString(reportKey)
		cfg.Aggregator.Aggregator.ReportSweepInterval = 200 * time.Millisecond
	})
}

func reportItem(id, category string, at time.Time) map[string]any {
	return map[string]any{
		"id": id, "type": "FieldReport", "category": category, "dateReported": at.UTC().Format(time.RFC3339),
		"location":    map[string]any{"type": "Point", "coordinates": []float64{105.8342, 21.0278}},
		"description": "Ngập sâu trước số 12 phố Huế", "media": []string{"https://img.example.vn/a.jpg"},
		"contact": map[string]any{"name": "Nguyễn Văn A", "phone": reportPhone, "email": "a@example.vn"},
	}
}

// waitFeature reads live frames until a feature satisfies ok, and returns its raw JSON.
func waitFeature(t *testing.T, ws *websocket.Conn, what string, ok func(f map[string]any) bool) []byte {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s on the live view: %v", what, err)
		}
		var fr liveFrame
		if err := json.Unmarshal(msg, &fr); err != nil {
			t.Fatalf("live frame is not JSON: %v", err)
		}
		for _, raw := range append(fr.Entities, fr.Entity) {
			if len(raw) == 0 {
				continue
			}
			var f map[string]any
			if err := json.Unmarshal(raw, &f); err != nil {
				t.Fatal(err)
			}
			if ok(f) {
				return raw
			}
		}
	}
}

func props(f map[string]any) map[string]any { m, _ := f["properties"].(map[string]any); return m }

func reportProps(f map[string]any) map[string]any {
	m, _ := props(f)["report"].(map[string]any)
	return m
}

func isReport(id, status string) func(map[string]any) bool {
	return func(f map[string]any) bool {
		p := props(f)
		return p["layer"] == "report" && p["entityId"] == id && reportProps(f)["status"] == status
	}
}

// postStatus calls POST /v1/reports/{id}/status and returns the status code and body.
func postStatus(t *testing.T, base, token, id, key string, body any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", base+"/v1/reports/"+url.PathEscape(id)+"/status", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	req.Header.Set("Iochub-Actor", "op-lan")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// streamHolds reports whether any message of stream holds needle in its data or headers.
func streamHolds(t *testing.T, n *testenv.NATSEnv, stream string, needles ...string) (int, string) {
	t.Helper()
	ctx := context.Background()
	s, err := n.JS.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted (STATE keeps one per subject)
		}
		count++
		all := append([]byte(nil), m.Data...)
		for k, vs := range m.Header {
			all = append(all, k...)
			for _, v := range vs {
				all = append(all, v...)
			}
		}
		for _, nd := range needles {
			if bytes.Contains(all, []byte(nd)) {
				return count, nd
			}
		}
	}
	return count, ""
}

func TestEndToEndReports(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	h := startReportHub(t, n, db)
	ws := dialLive(t, h.url, "01")

	reported := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	code, res, raw := post(t, h.url+"/v1/feeds/report", devToken, []any{reportItem("r-1", "flooding", reported)})
	if code != http.StatusAccepted || res.Accepted != 1 {
		t.Fatalf("POST report = %d %s; want 202 with 1 accepted", code, raw)
	}

	// On the live view: without contact, with its deadline (flooding: 4 h).
	fj := waitFeature(t, ws, "report dev/r-1", isReport("dev/r-1", "received"))
	var f map[string]any
	_ = json.Unmarshal(fj, &f)
	rp := reportProps(f)
	if got, want := rp["slaDeadline"], reported.Add(4*time.Hour).Format(time.RFC3339); got != want {
		t.Errorf("slaDeadline = %v; want %v", got, want)
	}
	if rp["overdue"] != false || rp["category"] != "flooding" || props(f)["unit"] == "" {
		t.Errorf("report properties = %v", props(f))
	}
	for _, secret := range []string{"912 345 678", "a@example.vn", "Nguyễn Văn A", "contact"} {
		if bytes.Contains(fj, []byte(secret)) {
			t.Errorf("live feature holds %q: %s", secret, fj)
		}
	}

	// In the database, sealed, and it opens with the key and the report id.
	var sealed []byte
	if err := db.Pool.QueryRow(ctx, `SELECT contact_enc FROM report WHERE id = 'dev/r-1'`).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	s, _ := seal.New(reportKey)
	pt, err := s.Open(sealed, []byte("dev/r-1"))
	if err != nil {
		t.Fatalf("opening the stored contact: %v", err)
	}
	if !strings.Contains(string(pt), reportPhone) {
		t.Errorf("stored contact = %s; want the phone %s", pt, reportPhone)
	}

	// Errors of the operator endpoint.
	for _, tc := range []struct {
		name, token, id string
		body            any
		want            int
		detail          string
	}{
		{"no token", "", "dev/r-1", map[string]string{"status": "assigned", "assignee": "x"}, 401, "sign in"},
		{"wrong token", "nope", "dev/r-1", map[string]string{"status": "assigned", "assignee": "x"}, 401, "not valid"},
		{"unknown report", devToken, "dev/none", map[string]string{"status": "assigned", "assignee": "x"}, 404, `report "dev/none" does not exist`},
		{"bad status", devToken, "dev/r-1", map[string]string{"status": "done"}, 400, `status: "done" is not one of`},
		{"unknown field", devToken, "dev/r-1", map[string]string{"status": "assigned", "who": "x"}, 400, `unknown field "who"`},
		{"assign without assignee", devToken, "dev/r-1", map[string]string{"status": "assigned"}, 400, "assignee: missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := postStatus(t, h.url, tc.token, tc.id, "", tc.body)
			var pr struct {
				Detail string `json:"detail"`
			}
			if err := json.Unmarshal([]byte(body), &pr); err != nil {
				t.Fatalf("answer is not a problem document: %s", body)
			}
			if code != tc.want || !strings.Contains(pr.Detail, tc.detail) {
				t.Errorf("got %d %s; want %d with %q", code, body, tc.want, tc.detail)
			}
		})
	}

	// The workflow, with an idempotent retry of the first step.
	steps := []map[string]string{
		{"status": "assigned", "assignee": "Đội CSGT số 3", "note": "giao xử lý"},
		{"status": "in_progress"},
		{"status": "resolved", "note": "đã hút nước"},
	}
	for i, st := range steps {
		key := "step-" + st["status"]
		code, body := postStatus(t, h.url, devToken, "dev/r-1", key, st)
		if code != http.StatusAccepted || !strings.Contains(body, `"actionId":"`) {
			t.Fatalf("step %d: got %d %s; want 202 with the action id", i, code, body)
		}
		if i == 0 {
			if code, again := postStatus(t, h.url, devToken, "dev/r-1", key, st); code != http.StatusAccepted || again != body {
				t.Fatalf("retry: got %d %s; want 202 %s, the same action", code, again, body)
			}
		}
		fj := waitFeature(t, ws, "report dev/r-1 "+st["status"], isReport("dev/r-1", st["status"]))
		if i == 0 && !bytes.Contains(fj, []byte(`"assignee":"Đội CSGT số 3"`)) {
			t.Errorf("assigned feature lacks the assignee: %s", fj)
		}
	}
	// An invalid transition is refused and recorded, not applied.
	if code, _ := postStatus(t, h.url, devToken, "dev/r-1", "late-assign", map[string]string{"status": "assigned", "assignee": "x"}); code != http.StatusAccepted {
		t.Fatalf("late assign: got %d; want 202 (the aggregator decides)", code)
	}
	waitRows(t, db, `SELECT count(*) FROM audit_log WHERE action = 'report.status' AND detail->>'result' = 'refused'`, 1)
	var reason, status string
	if err := db.Pool.QueryRow(ctx, `SELECT e.reason, r.status FROM report_event e JOIN report r ON r.id = e.report_id
		WHERE e.report_id = 'dev/r-1' AND e.kind = 'refused'`).Scan(&reason, &status); err != nil {
		t.Fatal(err)
	}
	if status != "resolved" || !strings.Contains(reason, "the report is resolved, which is final") {
		t.Errorf("refusal: status %s, reason %q; want resolved and the reason", status, reason)
	}
	var applied int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'report.status' AND target = 'report:dev/r-1'
		AND detail->>'result' = 'applied' AND actor = 'dev as op-lan'`).Scan(&applied)
	if applied != 3 {
		t.Errorf("applied audit rows = %d; want 3 (the retried step once)", applied)
	}
	var history []string
	rows, _ := db.Pool.Query(ctx, `SELECT kind || ':' || to_status FROM report_event WHERE report_id = 'dev/r-1' ORDER BY id`)
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		history = append(history, s)
	}
	rows.Close()
	if got, want := strings.Join(history, " "), "received:received status:assigned status:in_progress status:resolved refused:assigned"; got != want {
		t.Errorf("history = %s; want %s", got, want)
	}

	// GET /v1/reports/{id}: the report and its history, never the contact.
	req, _ := http.NewRequest("GET", h.url+"/v1/reports/"+url.PathEscape("dev/r-1"), nil)
	req.Header.Set("Authorization", "Bearer "+devToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	view, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var rv struct {
		Status  string `json:"status"`
		History []struct {
			Kind   string `json:"kind"`
			Reason string `json:"reason"`
		} `json:"history"`
	}
	if err := json.Unmarshal(view, &rv); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET report = %d %s", resp.StatusCode, view)
	}
	if rv.Status != "resolved" || len(rv.History) != 5 || rv.History[4].Kind != "refused" || rv.History[4].Reason == "" {
		t.Errorf("GET report = %s; want resolved with 5 history entries, the last refused", view)
	}
	for _, secret := range []string{"912 345 678", "a@example.vn", "contact"} {
		if bytes.Contains(view, []byte(secret)) {
			t.Errorf("GET report holds %q", secret)
		}
	}

	// A report past its SLA raises an alert; resolving it cancels the alert.
	if _, err := db.Pool.Exec(ctx, `UPDATE report_category SET sla = interval '1 second' WHERE code = 'traffic'`); err != nil {
		t.Fatal(err)
	}
	code, _, raw = post(t, h.url+"/v1/feeds/report", devToken, []any{reportItem("r-2", "traffic", reported)})
	if code != http.StatusAccepted {
		t.Fatalf("POST report r-2 = %d %s", code, raw)
	}
	alertID := "iochub/report-overdue:dev/r-2"
	isAlert := func(state string) func(map[string]any) bool {
		return func(f map[string]any) bool {
			p := props(f)
			a, _ := p["alert"].(map[string]any)
			return p["layer"] == "alert" && p["entityId"] == alertID && a["state"] == state
		}
	}
	waitFeature(t, ws, "overdue report", func(f map[string]any) bool {
		return isReport("dev/r-2", "received")(f) && reportProps(f)["overdue"] == true
	})
	waitFeature(t, ws, "overdue alert", isAlert("active"))
	// The keys of r-1's steps again: on another report they are other
	// actions, not retries of r-1's to drop.
	for _, st := range steps {
		if code, body := postStatus(t, h.url, devToken, "dev/r-2", "step-"+st["status"], st); code != http.StatusAccepted {
			t.Fatalf("r-2 %s: got %d %s", st["status"], code, body)
		}
	}
	waitFeature(t, ws, "cancelled overdue alert", isAlert("cancelled"))
	waitRows(t, db, `SELECT count(*) FROM audit_log WHERE action = 'report.overdue' AND target = 'report:dev/r-2'`, 1)
	var cancelState string
	if err := db.Pool.QueryRow(ctx, `SELECT state FROM alert WHERE id = $1`, alertID+":cancel").Scan(&cancelState); err != nil || cancelState != "cancelled" {
		t.Errorf("the Cancel notice is %q (%v); want cancelled, not an active alert", cancelState, err)
	}

	// Nowhere on NATS in clear.
	for _, stream := range []string{subjects.StreamFeeds, subjects.StreamState, subjects.StreamActions} {
		count, found := streamHolds(t, n, stream, "912 345 678", "0912345678", "a@example.vn", "Nguyễn Văn A")
		if found != "" {
			t.Errorf("stream %s holds %q in clear", stream, found)
		}
		if count == 0 {
			t.Errorf("stream %s has no message; the scan proves nothing", stream)
		}
	}
}

// waitRows waits until query counts want rows.
func waitRows(t *testing.T, db *testenv.DBEnv, query string, want int) {
	t.Helper()
	testkit.Eventually(t, 15*time.Second, fmt.Sprintf("%s = %d", query, want), func() (bool, string) {
		var got int
		if err := db.Pool.QueryRow(context.Background(), query).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got == want, fmt.Sprintf("%d", got)
	})
}
