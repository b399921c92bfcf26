package ingest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/ingest"
)

// TestRequestsKeepTheirOwnBytes: requests reuse each other's memory (body,
// events, messages, headers), so every event on FEEDS must still be its
// own item's, whole, with exactly its own headers, when requests of
// different sizes (some with rejected items) run side by side and one
// after the other.
func TestRequestsKeepTheirOwnBytes(t *testing.T) {
	e := newEnv(t, ingest.Config{Limits: ingest.Limits{SourceRate: -1}})
	const workers, batches = 4, 8
	want := map[string]float64{} // ce-id's item id → its pm25
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for b := range batches {
				n := 1 + (w*7+b*13)%60 // sizes up and down
				var items []map[string]any
				var ids []string
				for i := range n {
					id := fmt.Sprintf("w%d-b%d-i%d", w, b, i)
					it := air(id, [][2]float64{hoanKiem, cauGiay}[i%2])
					it["pm25"] = pm25Of(w, b, i)
					if i%5 == 4 {
						it["location"] = point(200, 95) // rejected: never on FEEDS
					} else {
						ids = append(ids, id)
					}
					items = append(items, it)
				}
				body, err := json.Marshal(items)
				if err != nil {
					t.Error(err)
					return
				}
				req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/feeds/air", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tokProvince)
				req.Header.Set("Content-Type", "application/json")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				var r ingest.Response
				err = json.NewDecoder(res.Body).Decode(&r)
				res.Body.Close()
				if err != nil || r.Accepted != len(ids) || r.Rejected != n-len(ids) {
					t.Errorf("batch w%d-b%d: HTTP %d, %+v (%v); want %d accepted, %d rejected", w, b, res.StatusCode, r, err, len(ids), n-len(ids))
					return
				}
				mu.Lock()
				for _, id := range ids {
					var i int
					fmt.Sscanf(id[strings.LastIndex(id, "-i")+2:], "%d", &i)
					want[id] = pm25Of(w, b, i)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	cons, err := e.js.OrderedConsumer(t.Context(), subjects.StreamFeeds, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(len(want)+1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"Content-Type", "Iochub-Source", "Nats-Msg-Id", "ce-id", "ce-source", "ce-specversion", "ce-subject", "ce-time", "ce-type"}
	seen := 0
	for m := range batch.Messages() {
		seen++
		h := m.Headers()
		keys := make([]string, 0, len(h))
		for k := range h {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, wantKeys) {
			t.Errorf("message %s: headers %v; want %v", m.Subject(), keys, wantKeys)
		}
		var obs iocv1.AirQualityObserved
		if err := proto.Unmarshal(m.Data(), &obs); err != nil {
			t.Errorf("message %s (%s): %v", m.Subject(), h.Get("ce-id"), err)
			continue
		}
		id, _, _ := strings.Cut(obs.GetId(), "@") // the event id is the item's id @ its time
		pm, ok := want[id]
		switch {
		case !ok:
			t.Errorf("event %q of an item not accepted, or seen twice", obs.GetId())
		case obs.GetPm25() != pm || obs.GetEntityId() != "station-"+id:
			t.Errorf("event %q: pm25 %v, entity %q; want %v, station-%s", obs.GetId(), obs.GetPm25(), obs.GetEntityId(), pm, id)
		case h.Get("ce-id") != obs.GetId() || h.Get("ce-subject") != obs.GetEntityId():
			t.Errorf("event %q under ce-id %q, ce-subject %q", obs.GetId(), h.Get("ce-id"), h.Get("ce-subject"))
		}
		delete(want, id)
	}
	if len(want) != 0 {
		t.Errorf("%d accepted items not on FEEDS (of %d events read)", len(want), seen)
	}
}

// pm25Of is a value of its own for item i of batch b of worker w, in range.
func pm25Of(w, b, i int) float64 { return float64(w*100+b*10) + float64(i)/100 }

// withholding is FEEDS as the ingest sees it, except that the messages of
// items whose id starts with "held" are kept and never sent: no answer
// ever comes for them, as for a message JetStream still holds (to resend
// it after "no responders", say).
type withholding struct {
	jetstream.JetStream
	mu   sync.Mutex
	held map[*nats.Msg]heldMsg
}

// heldMsg is a held message as it was when published.
type heldMsg struct {
	subject string
	data    []byte
	header  nats.Header
}

func (w *withholding) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if !strings.HasPrefix(m.Header.Get("ce-id"), "held") {
		return w.JetStream.PublishMsgAsync(m, opts...)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	h := nats.Header{}
	for k, v := range m.Header {
		h[k] = slices.Clone(v)
	}
	w.held[m] = heldMsg{subject: m.Subject, data: slices.Clone(m.Data), header: h}
	return nil, nil
}

// TestUnansweredRequestKeepsItsMemory: a request that stopped waiting with
// a message JetStream holds does not give its memory to the requests after
// it, which would rewrite that message under JetStream's feet.
func TestUnansweredRequestKeepsItsMemory(t *testing.T) {
	ne := startNATS(t)
	svc, err := ingest.New(t.Context(), ingest.Config{DevToken: tokDev, PublishTimeout: 300 * time.Millisecond, Limits: ingest.Limits{SourceRate: -1}},
		ingest.Deps{JS: ne.js, Units: testUnits(t), Sources: testSources()})
	if err != nil {
		t.Fatal(err)
	}
	js := &withholding{held: map[*nats.Msg]heldMsg{}}
	ingest.WrapPublisher(svc, func(own jetstream.JetStream) jetstream.JetStream { js.JetStream = own; return js })
	mux := http.NewServeMux()
	svc.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	batch := func(prefix string, pm float64) []byte {
		var items []map[string]any
		for i := range 20 {
			it := air(fmt.Sprintf("%s-%d", prefix, i), [][2]float64{hoanKiem, cauGiay}[i%2])
			it["pm25"] = pm
			items = append(items, it)
		}
		return arr(t, items...)
	}
	r := postTo(t, srv.URL, "air", tokProvince, "application/json", batch("held", 11))
	if r.code != http.StatusServiceUnavailable {
		t.Fatalf("the withheld request: HTTP %d %s; want 503 (no ack within the publish timeout)", r.code, r.raw)
	}
	for i := range 8 {
		if r := postTo(t, srv.URL, "air", tokProvince, "application/json", batch(fmt.Sprintf("next%d", i), float64(100+i))); r.resp.Accepted != 20 {
			t.Fatalf("request %d after it: HTTP %d %s; want 20 accepted", i, r.code, r.raw)
		}
	}
	js.mu.Lock()
	defer js.mu.Unlock()
	if len(js.held) != 20 {
		t.Fatalf("%d messages held; want 20", len(js.held))
	}
	for m, was := range js.held {
		if m.Subject != was.subject || !bytes.Equal(m.Data, was.data) || !maps.EqualFunc(m.Header, was.header, slices.Equal) {
			t.Errorf("a held message changed after its request ended: subject %q → %q, ce-id %q → %q, data equal %v",
				was.subject, m.Subject, was.header.Get("ce-id"), m.Header.Get("ce-id"), bytes.Equal(m.Data, was.data))
		}
	}
}
