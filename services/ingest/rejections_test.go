package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/ingest"
)

// The rejected items of a source are counted by reason and published as a
// source.rejections action on ACTIONS, for the aggregator to store.
func TestRejectionSummary(t *testing.T) {
	e := newEnv(t, ingest.Config{RejectionSummaryEvery: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	if r := e.post(t, "air", tokWard, "", arr(t, air("ok", hoanKiem), with(air("bad", hoanKiem), "pm25", "x"),
		with(air("bad2", hoanKiem), "pm25", -1.0), air("far", cauGiay))); r.code != 202 {
		t.Fatalf("HTTP %d: %s", r.code, r.raw)
	}
	if r := e.post(t, "air", tokWard, "application/json", []byte(`[42]`)); r.code != 202 {
		t.Fatalf("HTTP %d: %s", r.code, r.raw)
	}
	want := map[string]map[string]int64{"hk": {"invalid:pm25": 2, "outside-unit": 1, "unreadable": 1}}
	got := map[string]map[string]int64{}
	testkit.Eventually(t, 30*time.Second, "rejection summaries on ACTIONS", func() (bool, string) {
		got = map[string]map[string]int64{}
		for _, a := range actions(t, e) {
			if a.GetType() != ingest.ActionSourceRejections || a.GetProvince() != "01" || a.GetActor() != "ingest" {
				t.Fatalf("action = %v", a)
			}
			var p ingest.RejectionSummary
			if err := json.Unmarshal(a.GetPayload(), &p); err != nil {
				t.Fatal(err)
			}
			for src, rs := range p.Sources {
				if got[src] == nil {
					got[src] = map[string]int64{}
				}
				for k, n := range rs {
					got[src][k] += n
				}
			}
		}
		return reflect.DeepEqual(got, want), fmt.Sprint(got)
	})
}

func actions(t *testing.T, e *env) []*iocv1.Action {
	t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, subjects.StreamActions)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*iocv1.Action
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		a := &iocv1.Action{}
		if err := proto.Unmarshal(m.Data, a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}
