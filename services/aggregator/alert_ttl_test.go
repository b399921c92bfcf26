package aggregator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/alertrule"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// storedExpiry is what the alert table holds of an alert's expiry and
// active period.
type storedExpiry struct {
	state                   string
	expires                 *time.Time
	expiresDefault          bool
	activeFrom, activeUntil *time.Time
	body                    []byte
	info                    string
}

func readExpiry(t *testing.T, pool *pgxpool.Pool, id string) storedExpiry {
	t.Helper()
	var s storedExpiry
	if err := pool.QueryRow(context.Background(), `SELECT state, expires, expires_default, active_from, active_until, body, info::text
		FROM alert WHERE id = $1`, id).Scan(&s.state, &s.expires, &s.expiresDefault, &s.activeFrom, &s.activeUntil, &s.body, &s.info); err != nil {
		t.Fatalf("reading alert %s: %v", id, err)
	}
	return s
}

// endedAt is the number of alerts ended in the 1-minute roll-up of unit 01
// holding at.
func endedAt(t *testing.T, pool *pgxpool.Pool, at time.Time) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), `SELECT coalesce(sum(ended0_n + ended1_n + ended2_n + ended3_n + ended4_n), 0)
		FROM rollup WHERE layer = 'alert' AND unit_code = '01' AND win = '1m' AND window_start = $1`, at.UTC().Truncate(time.Minute)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// noExpiry is capEvent's alert without an expiry in its info.
func noExpiry(t *testing.T, id string, sent time.Time) *iocv1.Alert {
	a := capEvent(t, id, "Alert", sent)
	a.Info[0].Expires = nil
	return a
}

func sameTime(a *time.Time, b time.Time) bool { return a != nil && a.Equal(b) }

// An alert that names no expiry expires at its sent plus the default
// lifetime, through the expiry sweep as one whose message said so: STATE
// expired, its active period (and the roll-ups) ended at that time, the
// message as stored still without expires. An alert with its own expiry
// keeps it. A redelivery changes nothing.
func TestAlertDefaultTTL(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	insertUnit(t, pool, "01", "province", "", 105, 20)
	const ttl = time.Hour
	start(t, ne, pool, Config{Durable: "agg-ttl", ExpiryInterval: 100 * time.Millisecond, ReportSweepInterval: -1, StaleSweepInterval: -1, AlertDefaultTTL: ttl})
	// Stored active (its default expiry a few seconds ahead), then expired by the sweep.
	sent := time.Now().UTC().Truncate(time.Second).Add(-ttl + 4*time.Second)
	id := func(identifier string) string { return sourceID + "/" + identifier }
	publish(t, ne.JS, feedMsg(t, subjects.KindAlert, noExpiry(t, "n1", sent), ""),
		feedMsg(t, subjects.KindAlert, capEvent(t, "x1", "Alert", sent), ""))

	waitState(t, ne.JS, subjects.KindAlert, id("n1"), func(es *iocv1.EntityState) bool { return es.GetAlertState() == "expired" })
	want := sent.Add(ttl)
	testkit.Eventually(t, time.Minute, "n1 recorded as expired", func() (bool, string) {
		s := readExpiry(t, pool, id("n1"))
		return s.state == "expired", s.state
	})
	n1 := readExpiry(t, pool, id("n1"))
	if !sameTime(n1.expires, want) || !n1.expiresDefault {
		t.Errorf("n1 expires = %v, default %v; want %v, true", n1.expires, n1.expiresDefault, want)
	}
	// It was active (stored before its expiry) and ended at its expiry.
	if !sameTime(n1.activeFrom, sent) || !sameTime(n1.activeUntil, want) {
		t.Errorf("n1 active %v to %v; want %v to %v", n1.activeFrom, n1.activeUntil, sent, want)
	}
	if got := endedAt(t, pool, want); got != 1 {
		t.Errorf("alerts ended in the minute of %v = %d; want 1", want, got)
	}
	m := &iocv1.Alert{}
	if err := proto.Unmarshal(n1.body, m); err != nil {
		t.Fatal(err)
	}
	if m.GetInfo()[0].GetExpires() != nil || strings.Contains(n1.info, `"expires"`) {
		t.Errorf("stored message of n1 has an expires (body %v, info %s); want the message as it came", m.GetInfo()[0].GetExpires(), n1.info)
	}

	x1 := readExpiry(t, pool, id("x1"))
	if x1.state != "active" || !sameTime(x1.expires, sent.Add(6*time.Hour)) || x1.expiresDefault {
		t.Errorf("x1 = %s, expires %v, default %v; want active, %v (its own), false", x1.state, x1.expires, x1.expiresDefault, sent.Add(6*time.Hour))
	}

	// Redelivered under another message id: stored again, still expired, its
	// period and the roll-ups as they were.
	publish(t, ne.JS, feedMsg(t, subjects.KindAlert, noExpiry(t, "n1", sent), "again-n1"))
	waitIdle(t, ne.JS, "agg-ttl")
	again := readExpiry(t, pool, id("n1"))
	if again.state != "expired" || !sameTime(again.expires, want) || !again.expiresDefault || !sameTime(again.activeUntil, want) {
		t.Errorf("n1 after a redelivery = %s, expires %v (default %v), active until %v; want expired, %v (true), %v",
			again.state, again.expires, again.expiresDefault, again.activeUntil, want, want)
	}
	if got := endedAt(t, pool, want); got != 1 {
		t.Errorf("alerts ended in the minute of %v after a redelivery = %d; want 1", want, got)
	}
}

// With no default lifetime an alert that names no expiry stays active; an
// aggregator started later with one gives it sent + the lifetime, and the
// sweep expires it. Setting the lifetime to 0 again takes the default
// expiry off the alerts still active.
func TestAlertDefaultTTLOffThenOn(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	insertUnit(t, pool, "01", "province", "", 105, 20)
	const ttl = time.Hour
	now := time.Now().UTC().Truncate(time.Second)
	sent := now.Add(-ttl - time.Minute) // a lifetime of ttl has passed
	id := func(identifier string) string { return sourceID + "/" + identifier }
	off := start(t, ne, pool, Config{Durable: "agg-ttl-off", ExpiryInterval: 100 * time.Millisecond, ReportSweepInterval: -1, StaleSweepInterval: -1})
	// e2 expires by its own expires: once it is expired, the sweep has run
	// past the time n2 would have expired.
	e2 := capEvent(t, "e2", "Alert", now)
	e2.Info[0].Expires = timestamppb.New(now.Add(2 * time.Second))
	publish(t, ne.JS, feedMsg(t, subjects.KindAlert, noExpiry(t, "n2", sent), ""), feedMsg(t, subjects.KindAlert, e2, ""))
	waitState(t, ne.JS, subjects.KindAlert, id("e2"), func(es *iocv1.EntityState) bool { return es.GetAlertState() == "expired" })
	n2 := readExpiry(t, pool, id("n2"))
	if n2.state != "active" || n2.expires != nil || n2.expiresDefault {
		t.Fatalf("n2 with no default lifetime = %s, expires %v, default %v; want active, none, false", n2.state, n2.expires, n2.expiresDefault)
	}
	off.stop(t)

	start(t, ne, pool, Config{Durable: "agg-ttl-off", ExpiryInterval: 100 * time.Millisecond, ReportSweepInterval: -1, StaleSweepInterval: -1, AlertDefaultTTL: ttl})
	waitState(t, ne.JS, subjects.KindAlert, id("n2"), func(es *iocv1.EntityState) bool { return es.GetAlertState() == "expired" })
	want := sent.Add(ttl)
	testkit.Eventually(t, time.Minute, "n2 recorded as expired", func() (bool, string) {
		s := readExpiry(t, pool, id("n2"))
		return s.state == "expired", s.state
	})
	n2 = readExpiry(t, pool, id("n2"))
	if !sameTime(n2.expires, want) || !n2.expiresDefault || !sameTime(n2.activeUntil, want) {
		t.Errorf("n2 = expires %v (default %v), active until %v; want %v (true), %v", n2.expires, n2.expiresDefault, n2.activeUntil, want, want)
	}
	if got := endedAt(t, pool, want); got != 1 {
		t.Errorf("alerts ended in the minute of %v = %d; want 1", want, got)
	}

	// n3 is stored with its default expiry ahead; a lifetime of 0 takes it
	// off (it is active until a Cancel or Update again), once.
	publish(t, ne.JS, feedMsg(t, subjects.KindAlert, noExpiry(t, "n3", now), ""))
	testkit.Eventually(t, time.Minute, "n3 stored", func() (bool, string) {
		var n int
		_ = pool.QueryRow(context.Background(), `SELECT count(*) FROM alert WHERE id = $1 AND expires_default`, id("n3")).Scan(&n)
		return n == 1, "not yet"
	})
	store := postgis.NewStore(pool)
	for i, want := range []int64{1, 0} {
		n, err := store.ApplyAlertDefaultTTL(context.Background(), "", 0, nil)
		if err != nil || n != want {
			t.Errorf("ApplyAlertDefaultTTL(0) call %d = %d, %v; want %d", i+1, n, err, want)
		}
	}
	n3 := readExpiry(t, pool, id("n3"))
	if n3.state != "active" || n3.expires != nil || n3.expiresDefault {
		t.Errorf("n3 after a lifetime of 0 = %s, expires %v, default %v; want active, none, false", n3.state, n3.expires, n3.expiresDefault)
	}
}

func TestDefaultExpiry(t *testing.T) {
	sent := t0
	own := t0.Add(time.Hour)
	for _, c := range []struct {
		name string
		row  postgis.AlertRow
		ttl  time.Duration
		ok   bool
	}{
		{"feed alert", postgis.AlertRow{SourceID: "kttv", MsgType: "Alert", Sent: sent}, 24 * time.Hour, true},
		{"feed update", postgis.AlertRow{SourceID: "kttv", MsgType: "Update", Sent: sent}, 24 * time.Hour, true},
		{"own expires", postgis.AlertRow{SourceID: "kttv", MsgType: "Alert", Sent: sent, Expires: &own}, 24 * time.Hour, false},
		{"cancel", postgis.AlertRow{SourceID: "kttv", MsgType: "Cancel", Sent: sent}, 24 * time.Hour, false},
		{"rules", postgis.AlertRow{SourceID: alertrule.SourceID, MsgType: "Alert", Sent: sent}, 24 * time.Hour, false},
		{"hub", postgis.AlertRow{SourceID: HubSource, MsgType: "Alert", Sent: sent}, 24 * time.Hour, false},
		{"off", postgis.AlertRow{SourceID: "kttv", MsgType: "Alert", Sent: sent}, 0, false},
		{"negative", postgis.AlertRow{SourceID: "kttv", MsgType: "Alert", Sent: sent}, -time.Hour, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			at, ok := defaultExpiry(c.row, c.ttl)
			if ok != c.ok || (ok && !at.Equal(sent.Add(c.ttl))) {
				t.Errorf("defaultExpiry = %v, %v; want %v, %v", at, ok, sent.Add(c.ttl), c.ok)
			}
		})
	}
}
