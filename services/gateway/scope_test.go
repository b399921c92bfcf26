package gateway

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/deadletter"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
)

// testTree is Hà Nội (01) with wards 00070 and 00004, and TP.HCM (79) with ward 26734.
func testTree() *unitTree {
	return &unitTree{nodes: auth.Tree{
		"01": {Level: "province"}, "79": {Level: "province"},
		"00070": {Parent: "01", Level: "commune"}, "00004": {Parent: "01", Level: "commune"},
		"26734": {Parent: "79", Level: "commune"},
	}}
}

func TestUnitTree(t *testing.T) {
	tr := testTree()
	for _, tc := range []struct {
		code, ancestor string
		want           bool
	}{
		{"00070", "01", true}, {"00070", "00070", true}, {"00070", "79", false}, {"01", "00070", false},
		{"99999", "01", false}, {"99999", "99999", true},
	} {
		if got := tr.Within(tc.code, tc.ancestor); got != tc.want {
			t.Errorf("Within(%s, %s) = %v; want %v", tc.code, tc.ancestor, got, tc.want)
		}
	}
	if p, ok := tr.province("26734"); !ok || p != "79" {
		t.Errorf("province(26734) = %q, %v; want 79", p, ok)
	}
	if _, ok := tr.province("99999"); ok {
		t.Error("province of an unknown unit found")
	}
	if got := tr.closure([]string{"01"}).codes(); !slices.Equal(got, []string{"00004", "00070", "01"}) {
		t.Errorf("closure(01) = %v; want 01 and its wards", got)
	}
	cyclic := &unitTree{nodes: auth.Tree{"a": {Parent: "b"}, "b": {Parent: "a"}}}
	if cyclic.Within("a", "c") {
		t.Error("a cycle in the tree reached an outside unit")
	}
	var none *unitTree
	if !none.Within("01", "01") || none.Within("00070", "01") || none.exists("01") {
		t.Error("the nil tree knows units")
	}
}

func TestScopeUnitsAndLiveFilter(t *testing.T) {
	tr := testTree()
	ward := auth.Principal{ID: "w", Role: auth.RoleViewer, Scopes: []string{"00070"}}
	prov := auth.Principal{ID: "p", Role: auth.RoleViewer, Scopes: []string{"01"}}
	if got := scopeUnits(tr, prov, "01"); got != nil {
		t.Errorf("a viewer of 01 is limited to %v in 01; want the whole province", got)
	}
	units := scopeUnits(tr, ward, "01")
	if got := units.codes(); !slices.Equal(got, []string{"00070"}) {
		t.Errorf("a ward viewer is limited to %v; want [00070]", got)
	}
	p := liveParams{Province: "01", Units: units}
	for _, tc := range []struct {
		units []string
		want  bool
	}{
		{[]string{"00070"}, true},
		{[]string{"00004"}, false},
		{[]string{"01"}, false}, // placed in the province only: not known to be in the ward
		{[]string{"00004", "00070"}, true},
		{nil, false},
	} {
		if got := p.sees(entity{layer: "air", units: tc.units}); got != tc.want {
			t.Errorf("ward viewer sees an entity of units %v = %v; want %v", tc.units, got, tc.want)
		}
	}
	if !(liveParams{Province: "01"}).sees(entity{layer: "air"}) {
		t.Error("a client without units does not see an entity without a unit")
	}
	if p.filterKey() == (liveParams{Province: "01"}).filterKey() {
		t.Error("snapshots of a ward and of the whole province share a cache key")
	}
}

// TestHubRemovesWhatLeavesTheUnits: an entity that moves out of a
// unit-scoped client's units gets a remove frame; one that never was in them
// sends it nothing.
func TestHubRemovesWhatLeavesTheUnits(t *testing.T) {
	g, h := bareHub(t)
	c := newClient(g, h, nil, nil, liveParams{Province: "01", Units: testTree().closure([]string{"00070"})})
	c.finished = true // no writer: the test takes what it would write
	h.mu.Lock()
	h.joinLocked(c)
	h.mu.Unlock()
	in := airState(t, "st-1", 0, 10)
	in.Unit = "00070"
	out := airState(t, "st-2", 0, 10)
	out.Unit = "00004"
	fin, err := encodeFeature(in, subjects.State("01", "air", "st-1"))
	if err != nil {
		t.Fatal(err)
	}
	fout, err := encodeFeature(out, subjects.State("01", "air", "st-2"))
	if err != nil {
		t.Fatal(err)
	}
	h.publish(fin)
	h.publish(fout)
	got := tickFrames(t, h, c)
	if len(got) != 1 || !containsText(got[0], `"type":"state"`) || !containsText(got[0], "st-1") {
		t.Fatalf("frames after publishing both wards' stations: %q; want the state of st-1 only", got)
	}
	moved := airState(t, "st-1", 1, 11)
	moved.Unit = "00004"
	fm, err := encodeFeature(moved, subjects.State("01", "air", "st-1"))
	if err != nil {
		t.Fatal(err)
	}
	h.publish(fm)
	got = tickFrames(t, h, c)
	if len(got) != 1 || !containsText(got[0], `"type":"remove"`) || !containsText(got[0], "st-1") {
		t.Fatalf("frames after st-1 left the ward: %q; want its remove", got)
	}
	if snap := h.snapshotLocked(c.params); containsText(snap, "st-1") || containsText(snap, "st-2") {
		t.Errorf("the ward's snapshot holds another ward's stations: %q", snap)
	}
}

func containsText(b []byte, s string) bool { return strings.Contains(string(b), s) }

func TestUnitScopedChecks(t *testing.T) {
	tr := testTree()
	ward := auth.Principal{ID: "w", Role: auth.RoleOperator, Scopes: []string{"00070"}}
	prov := auth.Principal{ID: "p", Role: auth.RoleOperator, Scopes: []string{"01"}}
	waterOp := auth.Principal{ID: "o", Role: auth.RoleOperator, Scopes: []string{"01"}, Kinds: []string{"water"}}
	viewerOf01 := auth.Principal{ID: "v", Role: auth.RoleViewer, Scopes: []string{"01"}}
	// Alerts: placed in the ward, or touching it.
	for _, tc := range []struct {
		p              auth.Principal
		province, unit string
		units          []string
		want           bool
	}{
		{ward, "01", "00070", nil, true},
		{ward, "01", "01", []string{"01", "00004", "00070"}, true},
		{ward, "01", "01", []string{"01", "00004"}, false},
		{ward, "79", "79", []string{"79", "26734"}, false},
		{prov, "79", "79", []string{"79", "01"}, true}, // placed in 79, touching 01
		{prov, "79", "79", []string{"79"}, false},
	} {
		if got := tc.p.CanReadAlert(tr, tc.province, tc.unit, tc.units); got != tc.want {
			t.Errorf("%v reads an alert of %s/%s touching %v = %v; want %v", tc.p.Scopes, tc.province, tc.unit, tc.units, got, tc.want)
		}
	}
	// Acknowledging an alert: an operator of its province, its unit, or a
	// unit it touches within its province; not of another province it reaches.
	op79 := auth.Principal{ID: "o79", Role: auth.RoleOperator, Scopes: []string{"79"}}
	wardOp79 := auth.Principal{ID: "w79", Role: auth.RoleOperator, Scopes: []string{"26734"}}
	for _, tc := range []struct {
		p     auth.Principal
		units []string
		want  bool
	}{
		{ward, []string{"01", "00070"}, true},
		{prov, []string{"01"}, true},
		{op79, []string{"01", "00070", "79"}, false},
		{wardOp79, []string{"01", "00070", "79", "26734"}, false},
		{viewerOf01, []string{"01", "00070"}, false},
		{waterOp, []string{"01", "00070"}, false}, // reads no alerts
	} {
		if got := tc.p.CanActAlert(tr, "01", "00070", tc.units); got != tc.want {
			t.Errorf("%v (%s) acknowledges an alert of 01/00070 touching %v = %v; want %v", tc.p.Scopes, tc.p.Role, tc.units, got, tc.want)
		}
	}
	// Dead letters: by the unit of the original feed subject.
	for _, tc := range []struct {
		p       auth.Principal
		subject string
		want    bool
	}{
		{ward, subjects.Feed("01", "00070", "air"), true},
		{ward, subjects.Feed("01", "00004", "air"), false},
		{ward, subjects.Feed("01", "01", "air"), false},
		{ward, "not a feed subject", false},
		{prov, subjects.Feed("01", "00004", "air"), true},
		{waterOp, subjects.Feed("01", "00004", "water"), true},
		{waterOp, subjects.Feed("01", "00004", "air"), false}, // not its kind
		{waterOp, "not a feed subject", false},
	} {
		prov, _, kind, _ := subjects.ParseFeed(tc.subject)
		if prov == "" {
			prov = "01"
		}
		l := deadletter.Letter{Province: prov, Kind: kind, Subject: tc.subject} // as the DEADLETTER subject gives them
		if got := canActOn(tc.p, tr, l); got != tc.want {
			t.Errorf("%v acts on the dead letter of %s = %v; want %v", tc.p.Scopes, tc.subject, got, tc.want)
		}
	}
	for _, tc := range []struct {
		scopes []string
		want   string
		ok     bool
	}{
		{[]string{"00070"}, "01", true},
		{[]string{"00004", "00070"}, "01", true},
		{[]string{"00070", "26734"}, "", false},
		{[]string{"01", "79"}, "", false},
		{[]string{"*"}, "", false},
	} {
		got, ok := onlyProvince(tr, auth.Principal{Scopes: tc.scopes})
		if got != tc.want || ok != tc.ok {
			t.Errorf("onlyProvince(%v) = %q, %v; want %q, %v", tc.scopes, got, ok, tc.want, tc.ok)
		}
	}
	if got := actionProvince(tr, []string{"00070"}); got != "01" {
		t.Errorf("the province of an identity action of ward 00070 = %q; want 01", got)
	}
}

// TestSnapshotBuiltOutsideTheLock: a snapshot not cached is built without
// the hub's lock (a change and a tick go through meanwhile: a client
// opening views with ever new filters no longer stalls the province), and
// the client still gets the snapshot first, as of its join, then the change.
func TestSnapshotBuiltOutsideTheLock(t *testing.T) {
	g, h := bareHub(t)
	feature := func(pm25 float64, version int) feature {
		f, err := encodeFeature(airState(t, "st-1", version, pm25), subjects.State("01", "air", "st-1"))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	h.publish(feature(11, 0))
	h.mu.Lock()
	h.flushLocked()
	h.mu.Unlock()
	c := newClient(g, h, nil, nil, liveParams{Province: "01"})
	c.finished = true // no writer: the test takes what it would write
	ticked := false
	h.beforeBuild = func() {
		h.publish(feature(22, 1))
		if !h.mu.TryLock() {
			t.Error("the hub is locked while the snapshot is built")
			return
		}
		defer h.mu.Unlock()
		h.flushLocked()
		if bufs, n, _ := h.takeLocked(c, nil); n != 0 || len(bufs) != 0 {
			t.Errorf("the client took %d frames before its snapshot was built", n)
		}
		ticked = true
	}
	if err := h.add(c); err != nil {
		t.Fatal(err)
	}
	got := tickFrames(t, h, c)
	if !ticked || len(got) != 2 || !containsText(got[0], `"type":"snapshot"`) || !containsText(got[0], `"pm25":11`) ||
		!containsText(got[1], `"type":"state"`) || !containsText(got[1], `"pm25":22`) {
		t.Fatalf("frames %q (ticked %v); want the snapshot of pm25 11, then the state of pm25 22", got, ticked)
	}
}

// TestSnapshotBuiltOnceForClientsJoiningMeanwhile: clients of one filter
// that join while its snapshot is built (a wall reconnecting en masse) wait
// for that build and share its frame; none builds its own.
func TestSnapshotBuiltOnceForClientsJoiningMeanwhile(t *testing.T) {
	g, h := bareHub(t)
	f, err := encodeFeature(airState(t, "st-1", 0, 11), subjects.State("01", "air", "st-1"))
	if err != nil {
		t.Fatal(err)
	}
	h.publish(f)
	h.mu.Lock()
	h.flushLocked()
	h.mu.Unlock()
	newC := func() *client {
		c := newClient(g, h, nil, nil, liveParams{Province: "01"})
		c.finished = true // no writer: the test takes what it would write
		return c
	}
	first, second := newC(), newC()
	builds := 0
	added := make(chan error, 1)
	h.beforeBuild = func() {
		if builds++; builds > 1 {
			return
		}
		go func() { added <- h.add(second) }()
		testkit.Eventually(t, 10*time.Second, "the second client joined", func() (bool, string) {
			h.mu.Lock()
			defer h.mu.Unlock()
			_, in := h.clients[second]
			return in, ""
		})
	}
	if err := h.add(first); err != nil {
		t.Fatal(err)
	}
	if err := <-added; err != nil {
		t.Fatal(err)
	}
	a, b := tickFrames(t, h, first), tickFrames(t, h, second)
	if builds != 1 || len(a) != 1 || len(b) != 1 || !containsText(a[0], "st-1") || &a[0][0] != &b[0][0] {
		t.Fatalf("%d builds; frames %q and %q: want one build whose snapshot both clients share", builds, a, b)
	}
}

// snapshotLocked is the snapshot frame for p, built under the lock, as add
// builds it in two steps.
func (h *hub) snapshotLocked(p liveParams) []byte {
	frame, b, es := h.snapshotStartLocked(p)
	if b == nil {
		return frame
	}
	frame, cut := h.buildSnapshot(p, es)
	b.frame = frame
	h.snapshotDoneLocked(p, b, cut)
	close(b.done)
	return b.frame
}
