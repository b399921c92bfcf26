package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/deadletter"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// operatorDo calls an operator endpoint with the dev token (the operator token in tests).
func operatorDo(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+devToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func apiDeadletters(t *testing.T, base string) []deadletter.Letter {
	t.Helper()
	code, body := operatorDo(t, "GET", base+"/v1/deadletters")
	var l struct {
		Items []deadletter.Letter `json:"items"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &l) != nil {
		t.Fatalf("GET /v1/deadletters = %d %s", code, body)
	}
	return l.Items
}

// Accepted means stored or dead-lettered: an accepted item the database
// refuses and an item on FEEDS that does not decode land in DEADLETTER with
// their reasons, the items behind them are stored, the operator API lists
// them, and after the cause is fixed a redrive stores the item once.
func TestEndToEndDeadletters(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	token, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "hn-hoankiem", Name: "Hoàn Kiếm IOC", UnitCode: "00070"})
	if err != nil {
		t.Fatal(err)
	}
	const blocked = "urn:ngsi-ld:PointOfInterest:HN-Blocked"
	// Stands for whatever the database refuses after the ingest accepted it.
	if _, err := db.Pool.Exec(ctx, fmt.Sprintf(`
CREATE FUNCTION refuse_blocked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.id = '%s' THEN RAISE EXCEPTION 'station is blocked'; END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER refuse_blocked BEFORE INSERT OR UPDATE ON sensor FOR EACH ROW EXECUTE FUNCTION refuse_blocked();`, blocked)); err != nil {
		t.Fatal(err)
	}
	h := startHub(t, "all", n, db)

	// Not decodable: straight onto FEEDS, as a leaf node could.
	garbage := ce.Event{ID: "garbage-1", Source: ce.SourceURN("01", "00070"), Type: ce.ObservedType("air")}.Header()
	garbage[nats.MsgIdHdr] = []string{"garbage-1"}
	if _, err := n.JS.PublishMsg(ctx, &nats.Msg{Subject: subjects.Feed("01", "00070", "air"), Header: garbage, Data: []byte{0xff, 0xfe}}); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	items := []any{
		airItem(t, "urn:ngsi-ld:AirQualityObserved:BLK-1", blocked, 105.8522, 21.0288, at),
		airItem(t, "urn:ngsi-ld:AirQualityObserved:OK-1", "urn:ngsi-ld:PointOfInterest:HN-OK", 105.8523, 21.0289, at),
	}
	if code, res, raw := post(t, h.url+"/v1/feeds/air", token, items); code != http.StatusAccepted || res.Accepted != 2 {
		t.Fatalf("POST = %d %s; want 202 with 2 accepted", code, raw)
	}
	count := func(station string) int {
		var c int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM air_observation WHERE station_id = $1`, station).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	testkit.Eventually(t, time.Minute, "the good item stored", func() (bool, string) {
		c := count("urn:ngsi-ld:PointOfInterest:HN-OK")
		return c == 1, fmt.Sprint(c)
	})
	var letters []deadletter.Letter
	testkit.Eventually(t, time.Minute, "two dead letters", func() (bool, string) {
		letters = apiDeadletters(t, h.url)
		return len(letters) == 2, fmt.Sprint(letters)
	})
	var storeSeq, decodeSeq uint64
	for _, l := range letters {
		switch l.Stage {
		case deadletter.StageStore:
			storeSeq = l.Sequence
			if !strings.Contains(l.Reason, "station is blocked") || l.Source != "hn-hoankiem" || l.Province != "01" {
				t.Errorf("store dead letter = %+v", l)
			}
		case deadletter.StageDecode:
			decodeSeq = l.Sequence
			if l.EventID != "garbage-1" || l.Reason == "" {
				t.Errorf("decode dead letter = %+v", l)
			}
		}
	}
	if storeSeq == 0 || decodeSeq == 0 {
		t.Fatalf("dead letters = %+v; want one of each stage", letters)
	}

	// The fix, then the redrive.
	if _, err := db.Pool.Exec(ctx, `DROP TRIGGER refuse_blocked ON sensor`); err != nil {
		t.Fatal(err)
	}
	if code, body := operatorDo(t, "POST", fmt.Sprintf("%s/v1/deadletters/%d/redrive", h.url, storeSeq)); code != http.StatusAccepted {
		t.Fatalf("redrive = %d %s", code, body)
	}
	testkit.Eventually(t, time.Minute, "the redriven item stored", func() (bool, string) {
		c := count(blocked)
		return c == 1, fmt.Sprint(c)
	})
	if code, body := operatorDo(t, "DELETE", fmt.Sprintf("%s/v1/deadletters/%d", h.url, decodeSeq)); code != http.StatusAccepted {
		t.Fatalf("discard = %d %s", code, body)
	}
	testkit.Eventually(t, time.Minute, "no dead letters", func() (bool, string) {
		l := apiDeadletters(t, h.url)
		return len(l) == 0, fmt.Sprint(l)
	})
	// The discard leaves the stream inside the action's transaction, before
	// its audit row commits: wait for the row.
	testkit.Eventually(t, 30*time.Second, "two audit rows of applied dead-letter actions", func() (bool, string) {
		var audit int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action LIKE 'deadletter.%' AND detail->>'result' = 'applied'`).Scan(&audit); err != nil {
			return false, err.Error()
		}
		return audit == 2, fmt.Sprint(audit)
	})
	if c := count(blocked); c != 1 {
		t.Errorf("rows of the redriven item = %d; want 1", c)
	}
}

// TestEndToEndSecondSenderDeadLettered: a source that sends one CAP
// identifier from two senders has the first alert stored; the second is
// accepted (it is another message: CAP makes an identifier unique per sender
// only), not answered "duplicate" as if stored, and the aggregator
// dead-letters it with the reason, visible to operators, the first alert
// untouched.
func TestEndToEndSecondSenderDeadLettered(t *testing.T) {
	db, token, h := hoanKiemHub(t)
	ctx := context.Background()
	sent := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	alert := func(sender string) []byte {
		b, err := json.Marshal(map[string]any{
			"identifier": "HK-2026-SENDERS", "sender": sender, "sent": sent.Format(time.RFC3339),
			"status": "Actual", "msgType": "Alert", "scope": "Public",
			"info": []any{map[string]any{"language": "vi-VN", "category": []string{"Met"}, "event": "Ngập lụt",
				"urgency": "Immediate", "severity": "Severe", "certainty": "Observed", "headline": "Ngập sâu phố Hàng Bài",
				"expires": sent.Add(2 * time.Hour).Format(time.RFC3339)}},
			"area": []any{map[string]any{"areaDesc": "Phố Hàng Bài", "geometry": map[string]any{"type": "Polygon",
				"coordinates": [][][2]float64{{{105.850, 21.027}, {105.854, 21.027}, {105.854, 21.030}, {105.850, 21.030}, {105.850, 21.027}}}}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	senderOf := func() (string, error) {
		var s string
		err := db.Pool.QueryRow(ctx, `SELECT sender FROM alert WHERE source_id = 'hn-hoankiem' AND identifier = 'HK-2026-SENDERS'`).Scan(&s)
		return s, err
	}
	if code, res, raw := postBody(t, h.url+"/v1/feeds/alert", token, "application/json", alert("ioc@hoankiem.hanoi.gov.vn")); code != http.StatusAccepted || res.Accepted != 1 {
		t.Fatalf("first sender's POST = %d %s; want 202 with 1 accepted", code, raw)
	}
	testkit.Eventually(t, time.Minute, "the first sender's alert stored", func() (bool, string) {
		s, err := senderOf()
		return err == nil, fmt.Sprint(s, err)
	})
	if code, res, raw := postBody(t, h.url+"/v1/feeds/alert", token, "application/json", alert("warning@nchmf.gov.vn")); code != http.StatusAccepted || res.Accepted != 1 {
		t.Fatalf("second sender's POST = %d %s; want 202 with 1 accepted (another message, not a duplicate)", code, raw)
	}
	var letters []deadletter.Letter
	testkit.Eventually(t, time.Minute, "the second sender's alert dead-lettered", func() (bool, string) {
		letters = apiDeadletters(t, h.url)
		return len(letters) == 1, fmt.Sprint(letters)
	})
	if l := letters[0]; l.Stage != deadletter.StageStore || l.EventID != "HK-2026-SENDERS" ||
		!strings.Contains(l.Reason, "warning@nchmf.gov.vn") || l.Source != "hn-hoankiem" {
		t.Errorf("dead letter = %+v; want the store's, naming the second sender", l)
	}
	if s, err := senderOf(); err != nil || s != "ioc@hoankiem.hanoi.gov.vn" {
		t.Errorf("stored alert's sender = %q (%v); want the first sender's", s, err)
	}
}
