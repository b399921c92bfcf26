package aggregator

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// serialStore is a *postgis.Store the committer does not know as one: it
// writes every batch with WriteBatch, after the batch before.
type serialStore struct{ *postgis.Store }

// TestOverlapAsInOrder: an aggregator that starts a batch beside the one
// before (overlap.go) stores the same rows, with the same VN_AQI, and
// leaves the same station states as one that writes its batches one after
// the other, from the same stream: batches of stations the batch before
// has (whose VN_AQI waits for its commit) and of others, over enough hours
// that each row's NowCast depends on the rows before it.
func TestOverlapAsInOrder(t *testing.T) {
	ne := testNATS(t)
	overlapPool, serialPool := testDB(t), testDB(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	const batch, blocks = 6, 40
	var msgs []*nats.Msg
	hour := map[int]int{}
	for b := range blocks {
		group := rng.IntN(2) * 3 // stations 0-2 or 3-5: the same as the block before, or not
		for i := range batch {
			st := group + i%3
			if b < blocks/2 {
				// The first half cycles through 18 stations: any two
				// batches in a row (at most 12 rows in a row, however the
				// reader cuts them) have none in common, so they are
				// started beside each other. The second half has batches
				// of the stations of the batch before.
				st = 6 + (b*batch+i)%18
			}
			at := t0.Add(time.Duration(hour[st])*time.Hour + 5*time.Minute) // each row of a station an hour after its last
			hour[st]++
			msgs = append(msgs, feedMsg(t, subjects.KindAir, airEvent(t, st, at, float64(10+rng.IntN(150))), ""))
		}
	}
	publish(t, ne.JS, msgs...)
	// The overlapping aggregator's committer waits, at its first batch, for
	// the stages before it to fill (the consumer's deliveries not acked:
	// four batches' worth), so that it finds the next batch waiting, as
	// under a backlog, however slow the reader runs here (-race).
	cfg := Config{Durable: "agg-overlap", BatchSize: batch}
	cfg.beforeWrite = waitFilled(t, ne, cfg.Durable, 4*batch)
	overlapping := startOn(t, ne, postgis.NewStore(overlapPool), cfg)
	startOn(t, ne, serialStore{postgis.NewStore(serialPool)}, Config{Durable: "agg-serial", BatchSize: batch})
	waitRows(t, overlapPool, "air_observation", len(msgs))
	waitRows(t, serialPool, "air_observation", len(msgs))

	for _, q := range []string{
		`SELECT concat_ws('|', event_id, observed_at, station_id, pm25, aqi, aqi_band, aqi_dominant) FROM air_observation ORDER BY event_id`,
		`SELECT concat_ws('|', id, last_event_id, last_observed_at, last_values::text) FROM sensor WHERE kind = 'air' ORDER BY id`,
	} {
		got, want := testenv.Lines(t, overlapPool, q), testenv.Lines(t, serialPool, q)
		if !slices.Equal(got, want) {
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] {
					t.Errorf("overlapped: %s\nserial:     %s", got[i], want[i])
				}
			}
			t.Fatalf("%s: %d lines differ (of %d and %d)", q, countDiff(got, want), len(got), len(want))
		}
	}
	if n := testenv.Lines(t, overlapPool, `SELECT count(*)::text FROM air_observation WHERE aqi IS NOT NULL`); n[0] == "0" {
		t.Fatal("no row has a VN_AQI; the test compares nothing")
	}
	if n := testutil.ToFloat64(overlapping.svc.m.overlapped); n == 0 {
		t.Fatal("no batch was started beside the batch before; the test compares nothing")
	}
}

// waitFilled returns a beforeWrite hook that waits, at the committer's
// first batch, until durable has n deliveries not acked: the stages before
// the committer are full, so that it finds the next batch waiting, as under
// a backlog, however slow the reader runs (-race).
func waitFilled(t *testing.T, ne *testenv.NATSEnv, durable string, n int) func(postgis.Batch) {
	var once sync.Once
	return func(postgis.Batch) {
		// In the committer's goroutine: t.Errorf, not t.Fatal.
		once.Do(func() {
			deadline := time.Now().Add(30 * time.Second)
			for {
				c, err := ne.JS.Consumer(context.Background(), subjects.StreamFeeds, durable)
				if err == nil {
					info, err := c.Info(context.Background())
					if err == nil && info.NumAckPending >= n {
						return
					}
				}
				if time.Now().After(deadline) {
					t.Errorf("the pipeline did not fill to %d deliveries not acked within 30 s", n)
					return
				}
				time.Sleep(5 * time.Millisecond) // polling the consumer's state, as waitAcked does
			}
		})
	}
}

// countDiff counts the lines of a and b that differ, position by position.
func countDiff(a, b []string) int {
	n := max(len(a), len(b)) - min(len(a), len(b))
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

// TestOverlapNoTransactionWhileStalled: when the committer must wait to hand
// a committed batch on (the publisher held, as by a slow STATE), it first
// gives up the batch started beside it, so no transaction stays open (and
// idle) for as long as it waits: an open one would hold up a partition's
// creation or drop, and with it every writer of the table.
func TestOverlapNoTransactionWhileStalled(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	const batch = 5
	var msgs []*nats.Msg
	for i := range 20 * batch {
		// Fifteen stations in turn: no two batches in a row have one in
		// common, however the reader cuts them, so every batch may be
		// started beside the one before.
		msgs = append(msgs, feedMsg(t, subjects.KindAir, airEvent(t, i%(3*batch), t0.Add(time.Duration(i)*time.Minute), 30), ""))
	}
	publish(t, ne.JS, msgs...)
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	cfg := Config{Durable: "agg-stalled", BatchSize: batch}
	cfg.beforeWrite = waitFilled(t, ne, cfg.Durable, 4*batch)
	cfg.afterCommit = func() {
		once.Do(func() { close(held) })
		<-release
	}
	r := startOn(t, ne, postgis.NewStore(pool), cfg)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
		r.stop(t)
	})
	<-held
	// The publisher holds the first batch; the committer commits one more
	// (the hand-off holds one) and then waits. Until then its rows grow.
	last, still := -1, 0
	testkit.Eventually(t, 30*time.Second, "the committer stalled with no transaction open", func() (bool, string) {
		n := rows(t, pool, "air_observation")
		var open int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&open); err != nil {
			return false, err.Error()
		}
		// Stalled: the rows stopped growing (over five polls; the reader
		// may cut the batches smaller than batch) with no transaction open.
		if n == last && n > 0 && open == 0 {
			still++
		} else {
			still = 0
		}
		last = n
		return still >= 5, fmt.Sprintf("%d rows, %d transactions idle", n, open)
	})
	if n := testutil.ToFloat64(r.svc.m.overlapped); n == 0 {
		t.Fatal("no batch was started beside the batch before; the test shows nothing")
	}
	close(release)
	waitRows(t, pool, "air_observation", len(msgs))
}

// TestOverlapRatedAgainAfterASweep: a batch started beside the one before
// was rated with the stations' book as it was; when that batch's commit
// sweeps the book (it forgets a station unseen for aqiKeep), the started
// batch is given up and rated again, so its VN_AQI is what it would be
// after the sweep. Station 40 has six hours of high PM2.5 and is then made
// to look unseen for longer than aqiKeep, with a sweep due at the next
// commit, just as the committer takes the batch with its next row: that
// batch was rated ahead with the six hours, and is started beside the
// batch before, whose commit forgets them. Its row must then have the
// VN_AQI of station 41, which has no history and the same rows.
func TestOverlapRatedAgainAfterASweep(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	const batch, swept, twin = 6, 40, 41
	// Hours of today, which a book loads when it starts (aqiKeep).
	base := time.Now().UTC().Truncate(time.Hour).Add(-10 * time.Hour)
	var history []*nats.Msg
	for h := range 6 {
		history = append(history, feedMsg(t, subjects.KindAir, airEvent(t, swept, base.Add(time.Duration(h)*time.Hour), 300), ""))
	}
	publish(t, ne.JS, history...)
	cfg := Config{Durable: "agg-overlap", BatchSize: batch}
	first := startOn(t, ne, postgis.NewStore(pool), cfg)
	waitRows(t, pool, "air_observation", len(history))
	waitIdle(t, ne.JS, cfg.Durable)
	first.stop(t)

	var msgs []*nats.Msg
	at := base.Add(6 * time.Hour)
	sweptRow := feedMsg(t, subjects.KindAir, airEvent(t, swept, at, 20), "")
	for i := range 4 * batch {
		switch i {
		case 2*batch + 1:
			msgs = append(msgs, sweptRow, feedMsg(t, subjects.KindAir, airEvent(t, twin, at, 20), ""))
		case 3*batch + 1:
			msgs = append(msgs, feedMsg(t, subjects.KindAir, airEvent(t, swept, at.Add(time.Hour), 20), ""),
				feedMsg(t, subjects.KindAir, airEvent(t, twin, at.Add(time.Hour), 20), ""))
		default:
			msgs = append(msgs, feedMsg(t, subjects.KindAir, airEvent(t, i, at.Add(time.Duration(i)*time.Minute), 50), ""))
		}
	}
	publish(t, ne.JS, msgs...)
	// The aggregator starts again on the stream's batches. Its committer,
	// at the first, waits for them all to be delivered (it then finds the
	// next waiting, as under a backlog); as it takes the batch of station
	// 40's row, its book is made to forget the station.
	started, epoch := make(chan *running, 1), make(chan uint64, 1)
	fill := waitFilled(t, ne, cfg.Durable, len(msgs))
	sweptID := string(sweptRow.Header.Get(ce.HeaderSubject))
	var writes int // in the committer's goroutine
	cfg.beforeWrite = func(b postgis.Batch) {
		if writes++; writes == 1 {
			fill(b)
		}
		if !slices.ContainsFunc(b.Air, func(r postgis.AirRow) bool { return r.StationID == sweptID }) || len(epoch) > 0 {
			return
		}
		book := (<-started).svc.aqi
		book.mu.Lock()
		defer book.mu.Unlock()
		for k, st := range book.stations {
			if k.ID == sweptID {
				st.seen = time.Now().Add(-2 * aqiKeep)
			}
		}
		book.lastSweep = time.Time{}
		epoch <- book.epoch
	}
	r := startOn(t, ne, postgis.NewStore(pool), cfg)
	started <- r
	waitRows(t, pool, "air_observation", len(history)+len(msgs))

	select {
	case e := <-epoch:
		r.svc.aqi.mu.Lock()
		moved := r.svc.aqi.epoch != e
		r.svc.aqi.mu.Unlock()
		if !moved {
			t.Fatal("no sweep forgot a station; the test shows nothing")
		}
	default:
		t.Fatal("the committer took no batch of station 40")
	}
	if n := testutil.ToFloat64(r.svc.m.overlapped); n == 0 {
		t.Fatal("no batch was started beside the batch before; the test shows nothing")
	}
	const aqis = `SELECT concat_ws('|', observed_at, aqi, aqi_band, aqi_dominant)
		FROM air_observation WHERE station_id = $1 AND observed_at >= $2 ORDER BY observed_at`
	got := testenv.Lines(t, pool, aqis, sweptID, at)
	want := testenv.Lines(t, pool, aqis, strings.Replace(sweptID, fmt.Sprint(swept), fmt.Sprint(twin), 1), at)
	if len(got) != 2 || !slices.Equal(got, want) {
		t.Fatalf("station %d after the sweep: %q; want its twin's %q", swept, got, want)
	}
}
