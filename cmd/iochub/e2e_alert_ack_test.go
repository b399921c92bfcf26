package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/testenv"
)

// TestEndToEndAlertAck acknowledges an alert through the gateway on a whole
// hub (real NATS, real PostGIS): once, with one audit row, shown on the live
// view; a second acknowledgement answers the first; out of scope, a viewer
// and an unknown alert are refused.
func TestEndToEndAlertAck(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	_, viewer01Tok := mustIdentity(t, db, "viewer of Hà Nội", auth.RoleViewer, "01")
	op01, op01Tok := mustIdentity(t, db, "operator of Hà Nội", auth.RoleOperator, "01")
	_, op79Tok := mustIdentity(t, db, "operator of TP.HCM", auth.RoleOperator, "79")
	h := startHubTB(t, "all", n, db)
	ws := dialLive(t, h.url, "01")

	now := time.Now().UTC().Truncate(time.Second)
	doc := scAlert(t, "ack-1", "Alert", "", now, now.Add(2*time.Hour),
		"<polygon>21.00,105.80 21.00,105.90 21.10,105.90 21.10,105.80 21.00,105.80</polygon>")
	if code, res, raw := postCAP(t, h.url, devToken, doc); code != http.StatusAccepted || res.Accepted != 1 {
		t.Fatalf("POST alert = %d %s", code, raw)
	}
	waitRows(t, db, `SELECT count(*) FROM alert`, 1)
	var entity string
	if err := db.Pool.QueryRow(ctx, `SELECT id FROM alert`).Scan(&entity); err != nil {
		t.Fatal(err)
	}
	id := base64.RawURLEncoding.EncodeToString([]byte(entity))
	ackURL := h.url + "/v1/alerts/" + id + "/ack"
	actor := map[string]string{"Iochub-Actor": "Nguyễn Văn A"}

	for _, tc := range []struct {
		name string
		c    cred
		u    string
		want int
		det  string
	}{
		{"no token", cred{name: "none"}, ackURL, 401, ""},
		{"viewer of 01", cred{name: "viewer01", token: viewer01Tok}, ackURL, 403, "acknowledge alerts of province 01"},
		{"operator of 79 (out of scope looks absent)", cred{name: "op79", token: op79Tok}, ackURL, 404, "no alert has the id"},
		{"unknown alert", cred{name: "op01", token: op01Tok}, h.url + "/v1/alerts/" + base64.RawURLEncoding.EncodeToString([]byte("dev/none")) + "/ack", 404, "no alert has the id"},
		{"not an id", cred{name: "op01", token: op01Tok}, h.url + "/v1/alerts/%21%21/ack", 404, "no alert has the id"},
	} {
		code, _, body := call(t, tc.c, "POST", tc.u, "", actor)
		if code != tc.want || !strings.Contains(body, tc.det) {
			t.Errorf("%s: POST ack = %d %s; want %d naming %q", tc.name, code, body, tc.want, tc.det)
		}
	}

	ackAt := time.Now()
	code, _, body := call(t, cred{name: "op01", token: op01Tok}, "POST", ackURL, "", actor)
	if code != http.StatusAccepted || !strings.Contains(body, `"type":"alert.ack"`) {
		t.Fatalf("POST ack = %d %s; want 202 with the alert.ack action", code, body)
	}

	// On the live view, with who and when.
	fj := waitFeature(t, ws, "the acknowledged alert", func(f map[string]any) bool {
		a, _ := props(f)["alert"].(map[string]any)
		return props(f)["layer"] == "alert" && a["acked"] == true
	})
	t.Logf("the acknowledgement reached the live view %s after its POST", time.Since(ackAt).Round(time.Millisecond))
	var f map[string]any
	_ = json.Unmarshal(fj, &f)
	a, _ := props(f)["alert"].(map[string]any)
	wantBy := op01.ID + " as Nguyễn Văn A"
	if a["ackedBy"] != wantBy || a["ackedAt"] == nil || a["id"] != id {
		t.Errorf("live alert = %v; want acked by %q with a time", a, wantBy)
	}

	// A second acknowledgement, by anyone, answers the first one.
	code, _, body = call(t, cred{name: "dev", token: devToken}, "POST", ackURL, "", nil)
	var again struct {
		Acked   bool   `json:"acked"`
		AckedBy string `json:"ackedBy"`
		AckedAt string `json:"ackedAt"`
	}
	_ = json.Unmarshal([]byte(body), &again)
	if code != http.StatusOK || !again.Acked || again.AckedBy != wantBy || again.AckedAt != a["ackedAt"] {
		t.Errorf("second POST ack = %d %s; want 200 with the first acknowledgement (%s at %v)", code, body, wantBy, a["ackedAt"])
	}
	var audits int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'alert.ack' AND target = $1`, "alert:"+entity).Scan(&audits); err != nil {
		t.Fatal(err)
	}
	if audits != 1 {
		t.Errorf("audit rows of the acknowledgement = %d; want 1", audits)
	}
	var by string
	if err := db.Pool.QueryRow(ctx, `SELECT acked_by FROM alert WHERE id = $1`, entity).Scan(&by); err != nil || by != wantBy {
		t.Errorf("alert.acked_by = %q (%v); want %q", by, err, wantBy)
	}

	// The REST reads say so too: the alert and the list of province 01.
	code, _, body = call(t, cred{name: "viewer01", token: viewer01Tok}, "GET", h.url+"/v1/alerts/"+id, "", nil)
	var one struct {
		Acked   bool   `json:"acked"`
		AckedBy string `json:"ackedBy"`
	}
	_ = json.Unmarshal([]byte(body), &one)
	if code != http.StatusOK || !one.Acked || one.AckedBy != wantBy {
		t.Errorf("GET alert = %d %s; want acked by %q", code, body, wantBy)
	}
	code, _, body = call(t, cred{name: "viewer01", token: viewer01Tok}, "GET", h.url+"/v1/alerts?province=01", "", nil)
	if code != http.StatusOK || !strings.Contains(body, `"acked":true`) || !strings.Contains(body, `"ackedBy":"`+wantBy+`"`) {
		t.Errorf("GET alerts = %d %s; want the alert acked by %q", code, body, wantBy)
	}
}
