package main

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/deadletter"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

func TestCLIDeadletters(t *testing.T) {
	n := testenv.NATS(t)
	ctx := context.Background()
	var seqs []string
	for i, kind := range []string{subjects.KindAir, subjects.KindWater, subjects.KindWeather} {
		h := ce.Event{ID: "ev-" + strconv.Itoa(i), Source: ce.SourceURN("01", "u"), Type: ce.ObservedType(kind)}.Header()
		h[nats.MsgIdHdr] = []string{"src/ev-" + strconv.Itoa(i)}
		m := deadletter.Build(h, []byte("body"), deadletter.Info{Subject: subjects.Feed("01", "u", kind), FeedsSeq: uint64(i + 1),
			Stage: deadletter.StageStore, Reason: "refused " + kind, Time: time.Now(), Delivered: 1})
		ack, err := n.JS.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, strconv.FormatUint(ack.Sequence, 10))
	}
	url := "--nats-url=" + n.URL

	out, _, err := runCLI(t, "deadletters", "list", url)
	if err != nil || !strings.Contains(out, "refused air") || !strings.Contains(out, "ev-2") || strings.Count(out, "\n") != 4 {
		t.Fatalf("list = %v\n%s", err, out)
	}
	out, _, err = runCLI(t, "deadletters", "list", url, "--kind=water", "--json")
	var page struct {
		Items []deadletter.Letter `json:"items"`
	}
	if err != nil || json.Unmarshal([]byte(out), &page) != nil || len(page.Items) != 1 || page.Items[0].EventID != "ev-1" {
		t.Fatalf("list --kind=water --json = %v\n%s", err, out)
	}
	out, _, err = runCLI(t, "deadletters", "show", url, seqs[0])
	if err != nil || !strings.Contains(out, `"payloadBase64": "Ym9keQ=="`) || !strings.Contains(out, deadletter.HeaderReason) {
		t.Fatalf("show = %v\n%s", err, out)
	}

	// --direct acts at once.
	if out, _, err = runCLI(t, "deadletters", "redrive", "--direct", url, seqs[0]); err != nil || !strings.Contains(out, "ioc.feed.01.u.air") {
		t.Fatalf("redrive --direct = %v\n%s", err, out)
	}
	feeds, err := n.JS.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := natsx.FeedMsgIDKey(ctx, n.JS)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := feeds.GetLastMsgForSubject(ctx, "ioc.feed.01.u.air"); err != nil || m.Header.Get(nats.MsgIdHdr) != keys.ID("src/ev-0#redrive-"+seqs[0]) {
		t.Errorf("redriven item on FEEDS: %v, %v; want the message id of src/ev-0#redrive-%s keyed", m, err, seqs[0])
	}
	if _, _, err = runCLI(t, "deadletters", "discard", "--direct", url, seqs[1]); err != nil {
		t.Fatalf("discard --direct: %v", err)
	}
	if _, _, err := runCLI(t, "deadletters", "show", url, seqs[1]); !errors.Is(err, deadletter.ErrNotFound) {
		t.Errorf("show of a discarded one: err = %v; want ErrNotFound", err)
	}

	// Without --direct, an audited action for the aggregator.
	if out, _, err = runCLI(t, "deadletters", "discard", url, "--actor=ops", seqs[2]); err != nil || !strings.Contains(out, "queued") {
		t.Fatalf("discard = %v\n%s", err, out)
	}
	actions, err := n.JS.Stream(ctx, subjects.StreamActions)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := actions.GetLastMsgForSubject(ctx, subjects.Action("01", deadletter.TargetKind, seqs[2]))
	if err != nil {
		t.Fatalf("no action queued: %v", err)
	}
	var a iocv1.Action
	if err := proto.Unmarshal(raw.Data, &a); err != nil || a.GetType() != deadletter.ActionDiscard || a.GetActor() != "ops" || a.GetProvince() != "01" {
		t.Errorf("action = %v, %v", &a, err)
	}

	if _, _, err := runCLI(t, "deadletters", "show", url, "x"); err == nil {
		t.Error("show x: no error")
	}
	if _, _, err := runCLI(t, "deadletters", "nope"); !errors.Is(err, errUsage) {
		t.Errorf("unknown subcommand: err = %v; want errUsage", err)
	}
}
