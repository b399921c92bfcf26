package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestExample runs the example against an in-process NATS with FEEDS
// holding one air observation, published as the ingest publishes it.
func TestExample(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Run("any user", func(t *testing.T) {
		n := testenv.NATS(t)
		example(ctx, t, n.JS, n.URL)
	})
	// As the read-only user of iochub dev: its permissions are enough.
	t.Run("reader", func(t *testing.T) {
		s, err := natsx.StartEmbedded(natsx.EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, HubPassword: "h", ReaderPassword: "r"})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Shutdown()
		nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(natsx.HubUser, "h"))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		if err := natsx.EnsureStreams(ctx, js, natsx.StreamOptions{Memory: true}); err != nil {
			t.Fatal(err)
		}
		example(ctx, t, js, strings.Replace(s.ClientURL(), "nats://", "nats://reader:r@", 1))
	})
}

func example(ctx context.Context, t *testing.T, js jetstream.JetStream, url string) {
	at := time.Date(2026, 11, 21, 1, 0, 0, 0, time.UTC)
	body, err := proto.Marshal(&iocv1.AirQualityObserved{Id: "ev-1", EntityId: "st-hoankiem", ObservedAt: timestamppb.New(at), Pm25: proto.Float64(42.5)})
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: subjects.Feed("01", "00070", subjects.KindAir), Data: body,
		Header: ce.Event{ID: "ev-1", Source: ce.SourceURN("01", "00070"), Type: ce.ObservedType("air"), Subject: "st-hoankiem", Time: at}.Header()}
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(ctx, url, "ioc.feed.01.*.air", true, 1, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"1 ioc.feed.01.00070.air vn.ioc.air.observed.v1 id=ev-1 source=urn:ioc:01:00070", `"entityId":"st-hoankiem"`, `"pm25":42.5`} {
		if !strings.Contains(got, want) {
			t.Errorf("output %q lacks %q", got, want)
		}
	}
}
