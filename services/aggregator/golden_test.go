package aggregator

import (
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

// oneOfEachKind is one feed message of each built-in kind, of the entities
// TestStateHeadersGolden names.
func oneOfEachKind(t *testing.T) []*nats.Msg {
	report := reportEvent(t)
	rh := nats.Header(reportHeader())
	rh[nats.MsgIdHdr] = []string{sourceID + "/" + report.GetId()}
	body, err := proto.Marshal(report)
	if err != nil {
		t.Fatal(err)
	}
	return []*nats.Msg{
		feedMsg(t, subjects.KindAir, airEvent(t, 1, t0, 42), ""),
		feedMsg(t, subjects.KindTraffic, trafficEvent(t, 1, t0, 12), ""),
		stationMsg(t, subjects.KindWater, waterEvent(t, "hydro-1", t0, 10.8)),
		stationMsg(t, subjects.KindWeather, weatherEvent(t, "wx-1", t0, 31.5)),
		feedMsg(t, subjects.KindAlert, capEvent(t, "a1", "Alert", t0), ""),
		{Subject: subjects.Feed(province, unit, subjects.KindReport), Header: rh, Data: body},
	}
}

// The aggregator's rows_total and duplicates_total count every built-in
// kind: an event of each stored, then the same events resent under new
// message ids (which FEEDS lets through and the store finds there). (The
// hub may add alerts of its own meanwhile: alerts are counted at least once.)
func TestRowsCountedByKind(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	insertUnit(t, pool, province, "province", "", 105, 20)
	r := start(t, ne, pool, Config{Durable: "agg-counted"})
	msgs := oneOfEachKind(t)
	publish(t, ne.JS, msgs...)
	builtIn := []string{subjects.KindAir, subjects.KindTraffic, subjects.KindWater, subjects.KindWeather, subjects.KindAlert, subjects.KindReport}
	every := func(c *prometheus.CounterVec, ok func(k string, v float64) bool) func() (bool, string) {
		return func() (bool, string) {
			all, each := true, ""
			for _, k := range builtIn {
				v := counterValue(t, c.WithLabelValues(k))
				all = all && ok(k, v)
				each += fmt.Sprintf(" %s=%v", k, v)
			}
			return all, each
		}
	}
	testkit.Eventually(t, time.Minute, "a row of each kind counted", every(r.svc.m.rows, func(_ string, v float64) bool { return v >= 1 }))
	waitIdle(t, ne.JS, "agg-counted")
	for _, m := range msgs {
		m.Header[nats.MsgIdHdr] = []string{"again-" + m.Subject}
	}
	publish(t, ne.JS, msgs...)
	testkit.Eventually(t, time.Minute, "a duplicate of each kind counted", every(r.svc.m.duplicates, func(_ string, v float64) bool { return v == 1 }))
	waitIdle(t, ne.JS, "agg-counted")
	if ok, each := every(r.svc.m.rows, func(k string, v float64) bool { return v == 1 || k == subjects.KindAlert })(); !ok {
		t.Errorf("rows_total after the resend:%s; want 1 of each", each)
	}
}

// TestStateHeadersGolden pins the headers of the STATE message the
// aggregator publishes for one event of each kind: the CloudEvents attributes
// it derives from the feed event (id, source, type, subject, time). A change
// of the pipeline must leave them byte for byte as they are; -update rewrites
// the file after a deliberate change of the contract (docs/events.md).
func TestStateHeadersGolden(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	insertUnit(t, pool, province, "province", "", 105, 20)
	start(t, ne, pool, Config{Durable: "agg-golden"})
	publish(t, ne.JS, oneOfEachKind(t)...)
	entities := map[string]string{
		subjects.KindAir:     "urn:ngsi-ld:Device:st-1",
		subjects.KindTraffic: "segment-1",
		subjects.KindWater:   "hydro-1",
		subjects.KindWeather: "wx-1",
		subjects.KindAlert:   sourceID + "/a1",
		subjects.KindReport:  sourceID + "/r-1",
	}
	got := map[string]nats.Header{}
	for _, kind := range subjects.Kinds {
		entity, ok := entities[kind]
		if !ok {
			t.Fatalf("kind %s has no event in this test: add one", kind)
		}
		testkit.Eventually(t, time.Minute, "the state of "+entity, func() (bool, string) {
			_, h, err := lastState(t, ne.JS, kind, entity)
			if err != nil {
				return false, err.Error()
			}
			got[kind] = h
			return true, ""
		})
	}
	for kind, h := range got {
		if typ := h.Get(ce.HeaderType); typ != ce.StateType(kind) {
			t.Errorf("%s: ce-type %q; want %q", kind, typ, ce.StateType(kind))
		}
	}
	// A report's state is a change at the hub, stamped with the time it was
	// stored: checked here, and written to the file as <stored>.
	if h := got[subjects.KindReport]; h != nil {
		at := h.Get(ce.HeaderTime)
		if _, err := time.Parse(time.RFC3339Nano, at); err != nil || h.Get(ce.HeaderID) != h.Get(ce.HeaderSubject)+"@"+at {
			t.Errorf("report: ce-time %q, ce-id %q; want the time stored and subject@time", at, h.Get(ce.HeaderID))
		}
		h[ce.HeaderTime] = []string{"<stored>"}
		h[ce.HeaderID] = []string{h.Get(ce.HeaderSubject) + "@<stored>"}
	}
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Golden(t, filepath.Join("testdata", "state_headers.golden.json"), append(b, '\n'), *update)
}
