package ingest_test

import (
	"context"
	"encoding/json"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/ingest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

// TestFeedHeadersGolden pins the headers of the FEEDS message the ingest
// publishes for one item of each kind: the CloudEvents attributes, the
// source header and the Nats-Msg-Id that JetStream deduplicates on, written
// keyed(<plain id>) (ce.MsgIDKey). -update rewrites the file after a
// deliberate change of the contract (docs/events.md).
func TestFeedHeadersGolden(t *testing.T) {
	e := newEnv(t, ingest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := e.js.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	report := map[string]any{"id": "r-1", "type": "FieldReport", "category": "flooding", "dateReported": "2025-07-01T18:30:00+07:00",
		"location": point(hoanKiem[0], hoanKiem[1]), "description": "Ngập sâu 40 cm trước số 12 phố Huế"}
	items := map[string][]byte{
		subjects.KindAir:     arr(t, moveTo(fixture(t, "AirQualityObserved.example.json"), hoanKiem)),
		subjects.KindTraffic: arr(t, moveTo(fixture(t, "TrafficFlowObserved.example.json"), [2]float64{105.8200, 21.0250})),
		subjects.KindWater:   arr(t, water("w-1", hoanKiem)),
		subjects.KindWeather: arr(t, weather("x-1", hoanKiem)),
		subjects.KindAlert:   mustJSON(t, capAlert("HK-2025-0001", hoanKiem)),
		subjects.KindReport:  arr(t, report),
	}
	got := map[string]nats.Header{}
	for _, kind := range subjects.Kinds {
		body, ok := items[kind]
		if !ok {
			t.Fatalf("kind %s has no item in this test: add one", kind)
		}
		token := tokWard // the ward's source; the road segment crosses wards, so the province's source sends it
		if kind == subjects.KindTraffic {
			token = tokProvince
		}
		r := e.post(t, kind, token, "application/json", body)
		if r.code != 202 || r.resp.Accepted != 1 {
			t.Fatalf("%s: got HTTP %d, %d accepted; want 202 with 1: %s", kind, r.code, r.resp.Accepted, r.raw)
		}
		msg, err := stream.GetLastMsgForSubject(ctx, r.resp.Results[0].Subject)
		if err != nil {
			t.Fatalf("%s: reading %s from FEEDS: %v", kind, r.resp.Results[0].Subject, err)
		}
		got[kind] = msg.Header
		// The id is keyed with the key of this NATS server, random: the
		// file has the plain id it was made of.
		plain := ce.FeedMsgID(msg.Header.Get(ce.HeaderFeedSource), kind, msg.Header.Get(ce.HeaderID))
		if kind == subjects.KindAlert {
			a := &iocv1.Alert{}
			if err := proto.Unmarshal(msg.Data, a); err != nil {
				t.Fatal(err)
			}
			plain += "," + a.GetSender()
		}
		if id := msg.Header.Get(jetstream.MsgIDHeader); id == e.msgID(t, plain) {
			msg.Header.Set(jetstream.MsgIDHeader, "keyed("+plain+")")
		}
	}
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Golden(t, filepath.Join("testdata", "feed_headers.golden.json"), append(b, '\n'), *update)
}
