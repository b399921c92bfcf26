package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iochub/iochub/internal/testenv"
)

// TestGatewayReplicasResume runs two gateways on one NATS and one database
// (hub A with every role, B a gateway only): an event stream read on A and
// cut resumes on B from its last sequence without gap or repeat, and a live
// view opened on B shows the newest state of every station, as on A.
func TestGatewayReplicasResume(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	a := startHubTB(t, "all", n, db)
	b := startHubTB(t, "gateway", n, db)
	at := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
	postN := func(from, count int) {
		t.Helper()
		var items []any
		for i := from; i < from+count; i++ {
			items = append(items, airItem(t, fmt.Sprintf("rep-%d", i), fmt.Sprintf("rep-st-%d", i%5), 105.8342, 21.0278, at.Add(time.Duration(i)*time.Second)))
		}
		if code, res, raw := post(t, a.url+"/v1/feeds/air", devToken, items); code != http.StatusAccepted || res.Accepted != count {
			t.Fatalf("POST = %d %s", code, raw)
		}
	}
	type event struct {
		Seq  uint64         `json:"iocseq"`
		Data map[string]any `json:"data"`
	}
	read := func(base, since string, count int) []event {
		t.Helper()
		u := "ws" + strings.TrimPrefix(base, "http") + "/v1/streams?subject=ioc.feed.01.>&since=" + since
		c, resp, err := websocket.DefaultDialer.Dial(u, devHeader())
		if err != nil {
			t.Fatalf("dialing %s: %v %v", u, err, resp)
		}
		defer c.Close()
		var out []event
		for len(out) < count {
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, msg, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("reading event %d of %d on %s: %v", len(out)+1, count, base, err)
			}
			var e event
			if err := json.Unmarshal(msg, &e); err != nil {
				t.Fatalf("event %s: %v", msg, err)
			}
			out = append(out, e)
		}
		return out
	}

	postN(0, 10)
	first := read(a.url, "seq:0", 10)
	postN(10, 10)
	last := first[len(first)-1].Seq
	rest := read(b.url, "seq:"+strconv.FormatUint(last, 10), 10)
	for i, e := range append(first, rest...) {
		if want := uint64(i + 1); e.Seq != want {
			t.Errorf("event %d: iocseq %d; want %d (no gap, no repeat across gateways)", i, e.Seq, want)
		}
		if id, _ := e.Data["id"].(string); !strings.HasPrefix(id, fmt.Sprintf("rep-%d@", i)) {
			t.Errorf("event %d: data id %v; want rep-%d", i, e.Data["id"], i)
		}
	}

	// The live view on B ends on the newest observation of each station.
	newest := map[string]string{}
	for i := 15; i < 20; i++ {
		newest[fmt.Sprintf("rep-st-%d", i%5)] = fmt.Sprintf("rep-%d", i)
	}
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(b.url, "http")+"/v1/live?province=01", devHeader())
	if err != nil {
		t.Fatalf("dialing B's live view: %v %v", err, resp)
	}
	defer c.Close()
	shown := map[string]string{}
	deadline := time.Now().Add(30 * time.Second)
	for !sameShown(shown, newest) {
		if time.Now().After(deadline) {
			t.Fatalf("B's live view shows %v; want %v", shown, newest)
		}
		_ = c.SetReadDeadline(deadline)
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("reading B's live view (shows %v; want %v): %v", shown, newest, err)
		}
		var f struct {
			Entity   json.RawMessage   `json:"entity"`
			Entities []json.RawMessage `json:"entities"`
		}
		if json.Unmarshal(msg, &f) != nil {
			continue
		}
		if f.Entity != nil {
			f.Entities = append(f.Entities, f.Entity)
		}
		for _, raw := range f.Entities {
			var e struct {
				Properties struct {
					EntityID    string `json:"entityId"`
					Observation struct {
						ID string `json:"id"`
					} `json:"observation"`
				} `json:"properties"`
			}
			if json.Unmarshal(raw, &e) == nil && e.Properties.EntityID != "" {
				id, _, _ := strings.Cut(e.Properties.Observation.ID, "@")
				shown[e.Properties.EntityID] = id
			}
		}
	}
}

func sameShown(shown, want map[string]string) bool {
	for k, v := range want {
		if shown[k] != v {
			return false
		}
	}
	return true
}
