package gateway

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

func staleAlertState(state, identifier string) *iocv1.EntityState {
	at := time.Date(2026, 7, 1, 8, 3, 0, 0, time.UTC)
	return &iocv1.EntityState{Layer: subjects.KindAlert, EntityId: "iochub/" + identifier, Province: "01", Unit: "00070",
		AlertState: state, UpdatedAt: timestamppb.New(at),
		Latest: &iocv1.EntityState_Alert{Alert: &iocv1.Alert{Id: identifier, Identifier: identifier, Sender: "iochub",
			Sent: timestamppb.New(at), Status: "Actual", MsgType: "Alert", Scope: "Restricted"}}}
}

// While a stale-source alert is active, the live Features of the entities
// that source publishes in that unit carry "stale": true (golden
// state_traffic_stale); other entities, and the same one once the alert is
// cancelled, are byte for byte the fresh golden.
func TestLiveStaleMark(t *testing.T) {
	g, err := New(Config{}, Deps{JS: testenv.NATS(t).JS, Metrics: prometheus.NewRegistry(), Auth: testAuth(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	h := newHub(g, "01")
	seg := goldenStates(t)[1] // traffic hn-seg-01 in 00070
	seg.GetTraffic().Origin = &iocv1.Origin{SourceId: "hk", Province: "01", Unit: "00070"}
	other := proto.Clone(seg).(*iocv1.EntityState)
	other.EntityId = "hn-seg-02"
	other.GetTraffic().Origin.SourceId = "hk2"
	publish := func(st *iocv1.EntityState) {
		h.handleState(st, subjects.State(st.GetProvince(), st.GetLayer(), st.GetEntityId()))
	}
	frameOf := func(key string) []byte {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.flushLocked() // what the next tick sends
		return stateFrame(h.entities[key].json)
	}
	freshGolden, err := os.ReadFile(filepath.Join("testdata", "live", "state_traffic.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	isFresh := func(frame []byte) bool {
		var b bytes.Buffer
		_ = json.Compact(&b, freshGolden)
		return bytes.Equal(b.Bytes(), frame)
	}

	publish(seg)
	publish(other)
	if !isFresh(frameOf("traffic/hn-seg-01")) {
		t.Fatalf("fresh entity's frame is not the golden: %s", frameOf("traffic/hn-seg-01"))
	}
	ident := "source-stale:hk/00070:1782893000"
	publish(staleAlertState("active", ident))
	checkGolden(t, "state_traffic_stale", frameOf("traffic/hn-seg-01"))
	if bytes.Contains(frameOf("traffic/hn-seg-02"), []byte(`"stale"`)) {
		t.Errorf("another source's entity is marked stale: %s", frameOf("traffic/hn-seg-02"))
	}
	publish(seg) // a new state while stale stays marked
	if !bytes.Contains(frameOf("traffic/hn-seg-01"), []byte(`"stale":true`)) {
		t.Errorf("entity's new state lost the mark: %s", frameOf("traffic/hn-seg-01"))
	}
	publish(staleAlertState("active", ident+":cancel")) // the Cancel itself marks nothing more
	publish(staleAlertState("cancelled", ident))
	if !isFresh(frameOf("traffic/hn-seg-01")) {
		t.Errorf("entity still marked after the alert's cancel: %s", frameOf("traffic/hn-seg-01"))
	}
	if len(h.staleAlerts) != 0 || len(h.staleCount) != 0 {
		t.Errorf("stale bookkeeping left: %v %v", h.staleAlerts, h.staleCount)
	}
}

func TestStaleAlertPair(t *testing.T) {
	for _, c := range []struct {
		st     *iocv1.EntityState
		pair   string
		active bool
	}{
		{staleAlertState("active", "source-stale:hk/00070:17"), "hk/00070", true},
		{staleAlertState("cancelled", "source-stale:hk/00070:17"), "hk/00070", false},
		{staleAlertState("active", "source-stale:hk/00070:17:cancel"), "", false},
		{staleAlertState("active", "source-stale:hk:17"), "", false},
		{staleAlertState("active", "report-overdue:s/x"), "", false},
	} {
		p, a := staleAlertPair(c.st)
		if p != c.pair || a != c.active {
			t.Errorf("%s %s: got %q %v; want %q %v", c.st.GetAlert().GetIdentifier(), c.st.GetAlertState(), p, a, c.pair, c.active)
		}
	}
	forged := staleAlertState("active", "source-stale:hk/00070:17")
	forged.GetAlert().Sender = "kttv"
	if p, _ := staleAlertPair(forged); p != "" {
		t.Errorf("an alert of another sender marks %q stale", p)
	}
	forged = staleAlertState("active", "source-stale:hk/00070:17")
	forged.EntityId = "evil/source-stale:hk/00070:17" // sent by a source as sender iochub
	if p, _ := staleAlertPair(forged); p != "" {
		t.Errorf("an alert of source evil marks %q stale", p)
	}
}
