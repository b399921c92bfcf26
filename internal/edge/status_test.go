package edge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/edge"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/testkit"
)

// readAtHub reads the edge's record of lost items as iochub edge-list does:
// from the hub, through the edge's domain, on a connection whose replies
// come under inbox.
func (l *linked) readAtHub(t *testing.T, inbox string) (edge.UnsentRecord, error) {
	t.Helper()
	nc, err := natsx.Connect(l.hubURL, "edge-list", nats.UserInfo(natsx.HubUser, linkedHubPassword), nats.CustomInboxPrefix(inbox))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.NewWithDomain(nc, l.node.Domain)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return edge.ReadUnsent(ctx, js)
}

// sourced reports whether the edge's server has a sourcing consumer of
// the hub on its FEEDS (what the watch reads).
func (l *linked) sourced(t *testing.T) bool {
	t.Helper()
	acc, err := l.node.Server.JszAccount(&server.JSzOptions{Account: l.node.Server.GlobalAccount().GetName(),
		Streams: true, Consumer: true, DirectConsumer: true, Config: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range acc.Streams {
		for _, c := range st.DirectConsumer {
			if c != nil && c.Config != nil && c.Config.Sourcing {
				return true
			}
		}
	}
	return false
}

// wantRecordAtHub waits until the hub reads the edge's record with total
// items lost, the last run from to to.
func (l *linked) wantRecordAtHub(t *testing.T, total, from, to uint64) {
	t.Helper()
	testkit.Eventually(t, time.Minute, fmt.Sprintf("the hub reading %d items lost", total), func() (bool, string) {
		r, err := l.readAtHub(t, natsx.EdgeReplyInbox(l.node.Domain))
		if err != nil {
			return false, err.Error()
		}
		ok := r.Total == total && (total == 0) == (r.Last == nil)
		if r.Last != nil {
			ok = ok && r.Last.FromSeq == from && r.Last.ToSeq == to && r.Last.Found == "expired" && !r.Last.DetectedAt.IsZero()
		}
		return ok, fmt.Sprintf("%+v, last %+v", r, r.Last)
	})
}

// TestUnsentRecordReadAtTheHub: the edge keeps its count of lost items in
// its bucket edge_status (0 from its start), and the hub reads it across
// the leaf link of the edge's own user, through the edge's domain, on a
// connection whose replies come under natsx.EdgeReplyInbox; replies to a
// plain inbox do not cross (the edge's user may not send them).
func TestUnsentRecordReadAtTheHub(t *testing.T) {
	l := startLinked(t, testRetain)
	l.wantRecordAtHub(t, 0, 0, 0)
	if _, err := l.readAtHub(t, nats.InboxPrefix[:len(nats.InboxPrefix)-1]); err == nil {
		t.Fatal("the hub read the edge's record on a plain inbox; the edge's user may send it replies under $JSC.R only")
	}

	l.publish(t, 5)
	l.waitHub(t, 5)
	l.waitEdgeEmpty(t)
	l.cut(t)
	l.check(t)
	if _, err := l.readAtHub(t, natsx.EdgeReplyInbox(l.node.Domain)); err == nil {
		t.Fatal("the hub read the record of an edge cut off")
	}
	l.lose(t, 7) // sequences 6 to 12

	l.proxy.Restore()
	testkit.Eventually(t, 20*time.Second, "the edge's link", testkit.Holds(l.node.LinkUp))
	l.wantRecordAtHub(t, 7, 6, 12)
}

// TestUnsentRecordContinuesAfterARestart: a restarted edge continues the
// total of its record, and does not count again what it counted before its
// restart when the hub resumes from before those items; its metric counts
// what this run found.
func TestUnsentRecordContinuesAfterARestart(t *testing.T) {
	l := startLinked(t, testRetain)
	l.publish(t, 5)
	l.waitHub(t, 5)
	l.waitEdgeEmpty(t)
	l.cut(t)
	l.check(t)
	l.lose(t, 7) // sequences 6 to 12, lost

	l.node.Close()
	l.startEdge(t)
	if r := l.watch.Record(); r.Total != 7 || r.Last == nil || r.Last.FromSeq != 6 || r.Last.ToSeq != 12 {
		t.Fatalf("record after the restart: %+v, last %+v; want 7 lost, 6 to 12", r, r.Last)
	}
	l.proxy.Restore()
	// The hub resumes from 6, after a backoff of up to 2 minutes (the
	// restarted edge dropped its consumer); the watch sees where it stands.
	testkit.Eventually(t, 3*time.Minute, "the hub's sourcing to resume", testkit.Holds(func() bool { return l.sourced(t) }))
	l.check(t)
	l.publish(t, 1) // sequence 13
	l.waitHub(t, 6)
	l.check(t)
	l.wantExpired(t, 0)
	if r := l.watch.Record(); r.Total != 7 {
		t.Fatalf("record once the hub resumed: %+v, last %+v; want 7 lost (counted once)\nlog:\n%s", r, r.Last, l.log)
	}

	l.cut(t)
	l.check(t)
	l.lose(t, 2) // sequences 14 and 15, lost
	l.proxy.Restore()
	testkit.Eventually(t, 20*time.Second, "the edge's link", testkit.Holds(l.node.LinkUp))
	l.wantRecordAtHub(t, 9, 14, 15)
}

// TestUnsentRecordMissingThenWrittenAgain: the hub tells an edge without
// the record (an older iochub edge; here its bucket deleted) from one that
// does not answer; a check that fails to write the record writes it at the
// next check.
func TestUnsentRecordMissingThenWrittenAgain(t *testing.T) {
	l := startLinked(t, testRetain)
	ctx := context.Background()
	if err := l.node.JS.DeleteKeyValue(ctx, edge.StatusBucket); err != nil {
		t.Fatal(err)
	}
	if _, err := l.readAtHub(t, natsx.EdgeReplyInbox(l.node.Domain)); !errors.Is(err, edge.ErrNoUnsentRecord) {
		t.Fatalf("reading an edge without the bucket: %v; want ErrNoUnsentRecord", err)
	}

	l.publish(t, 1)
	l.waitHub(t, 1)
	l.waitEdgeEmpty(t)
	l.cut(t)
	l.check(t)
	l.publish(t, 3) // sequences 2 to 4, lost
	var failed error
	testkit.Eventually(t, time.Minute, "the lost items to expire, a check failing to write the record", func() (bool, string) {
		if err := l.watch.Check(ctx); err != nil {
			failed = err
		}
		st := streamState(t, l.node.JS)
		return st.Msgs == 0 && failed != nil, fmt.Sprintf("edge FEEDS %+v; failed check: %v", st, failed)
	})
	if err := l.watch.Check(ctx); err == nil {
		t.Fatal("a check wrote the record of lost items in a bucket that is gone")
	}
	if _, err := l.node.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: edge.StatusBucket, History: 1}); err != nil {
		t.Fatal(err)
	}
	l.check(t)
	l.wantExpired(t, 3)
	l.proxy.Restore()
	testkit.Eventually(t, 20*time.Second, "the edge's link", testkit.Holds(l.node.LinkUp))
	l.wantRecordAtHub(t, 3, 2, 4)
}

// TestUnsentRecordUnreadableStartsAnew: a record the edge cannot read back
// (a damaged store) does not keep the edge from starting: the watch logs
// it and starts a new record. It used to fail the edge's start for good.
func TestUnsentRecordUnreadableStartsAnew(t *testing.T) {
	l := startLinked(t, testRetain)
	ctx := context.Background()
	kv, err := l.node.JS.KeyValue(ctx, edge.StatusBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, edge.UnsentKey, []byte("not a record")); err != nil {
		t.Fatal(err)
	}
	l.node.Close()
	l.startEdge(t) // fails the test if the watch does not start
	if r := l.watch.Record(); r.Total != 0 || r.Last != nil {
		t.Errorf("record after an unreadable one: %+v; want a new one", r)
	}
	if log := l.log.String(); !strings.Contains(log, "unreadable") {
		t.Errorf("nothing logged of the unreadable record:\n%s", log)
	}
}

// TestReadUnsentOfHubDown: when the hub's own NATS cannot be reached, the
// read says so at once, even with the options of a service connection that
// retries its first dial (natsx.Connect's): before, it waited out the
// timeout and every edge was shown as not answering.
func TestReadUnsentOfHubDown(t *testing.T) {
	opts := nats.GetDefaultOptions()
	opts.Url = "nats://127.0.0.1:1" // nothing listens there
	opts.RetryOnFailedConnect, opts.MaxReconnect = true, -1
	got := edge.ReadUnsentOf(context.Background(), opts, "test", []natsx.EdgeSourceState{{Domain: "edge-00070"}}, 5*time.Second, 1)
	if len(got) != 1 || got[0].Err == nil || errors.Is(got[0].Err, context.DeadlineExceeded) || !strings.Contains(got[0].Err.Error(), "connecting") {
		t.Fatalf("read with the hub's NATS down: %+v; want a connecting error, not a timeout", got)
	}
}
