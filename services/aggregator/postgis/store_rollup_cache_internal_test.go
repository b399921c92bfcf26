package postgis

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestMemberCacheSharedRowsUnchanged: the rows a batch takes from the
// store's memory share its bytes; a batch that counts a new member changes
// a copy of its own, so the memory holds the committed row until the batch
// is installed (and still holds it when the batch fails and is forgotten
// by another path, or when two batches take the same row).
func TestMemberCacheSharedRowsUnchanged(t *testing.T) {
	day := time.Date(2025, 8, 1, 17, 0, 0, 0, time.UTC)
	ed := entityDay{"air", "st1", day.Unix()}
	k := memberKey{ed.layer, ed.entity, ed.day, "W1"}
	var c memberCache
	whole := make([]byte, headSlots+minutesPerDay)
	c.install(&memberRows{grades: map[memberKey]*memberRow{k: {head: whole[:headSlots], minutes: whole[headSlots:], version: 3, whole: whole}}})

	take := func() *memberRows {
		m := &memberRows{grades: map[memberKey]*memberRow{}, ranges: map[entityDay]minuteRange{ed: {0, minutesPerDay - 1}}, optimistic: true}
		if missed := c.take([]entityDay{ed}, m.grades); len(missed) != 0 {
			t.Fatalf("the cache lacks %v", missed)
		}
		return m
	}
	m1, m2 := take(), take()
	// A member of the day, of its first hour and of one minute, at band 2.
	at := day.Add(90 * time.Second)
	members := map[memberKey]*dayMembers{k: {}}
	acc := map[rollupKey]*Rollup{}
	for _, w := range windows {
		start := w.start(at)
		members[k].add(w.slot(start, day), 3)
		acc[rollupKey{"W1", "air", w.name, start.Unix()}] = &Rollup{}
	}
	var pb pgx.Batch
	if err := countMembers(context.Background(), nil, &pb, acc, members, []memberKey{k}, m1); err != nil {
		t.Fatal(err)
	}
	queued := slices.DeleteFunc(queuedSQL(&pb), func(q string) bool { return q == sqlGenericPlans || q == sqlAutoPlans })
	if len(queued) != 1 || queued[0] != sqlUpdateMemberDays || m1.written != 1 {
		t.Fatalf("%d statements queued, %d rows written; want the row's update", len(queued), m1.written)
	}
	for key, r := range acc {
		if r.Members != 1 || r.GradeN[2] != 1 {
			t.Fatalf("%v: %d members, %d at grade 2; want 1 and 1", key, r.Members, r.GradeN[2])
		}
	}
	if got := c.rows[ed]["W1"]; got.version != 3 || string(got.grades) != string(make([]byte, headSlots+minutesPerDay)) {
		t.Fatalf("the cache's row changed before the batch was installed: version %d, %d non-zero bytes", got.version, nonZero(got.grades))
	}
	if r := m2.grades[k]; nonZero(r.whole) != 0 || nonZero(r.head) != 0 || nonZero(r.minutes) != 0 {
		t.Fatal("a second batch's row changed with the first's")
	}
	if r := m1.grades[k]; nonZero(r.whole) != 4 || r.borrowed {
		t.Fatalf("the batch's own row has %d grades set (borrowed %v); want 4", nonZero(r.whole), r.borrowed)
	}
	m1.updated = m1.written
	c.install(m1)
	if got := c.rows[ed]["W1"]; got.version != 4 || nonZero(got.grades) != 4 {
		t.Fatalf("installed: version %d, %d grades set; want 4 and 4", got.version, nonZero(got.grades))
	}
}

func nonZero(b []byte) int {
	n := 0
	for _, x := range b {
		if x != 0 {
			n++
		}
	}
	return n
}

// BenchmarkMemberCache takes the rows of a batch's 500 entity days from a
// cache holding 2,000 (shared rows, as the drain's stations), then installs
// them as written, as a direct batch does on each side of its transaction.
// The baseline is a plain map look-up of the same keys.
func BenchmarkMemberCache(b *testing.B) {
	day := time.Date(2025, 8, 1, 17, 0, 0, 0, time.UTC).Unix()
	var c memberCache
	all := make([]entityDay, 2000)
	seed := &memberRows{grades: map[memberKey]*memberRow{}}
	for i := range all {
		all[i] = entityDay{"air", fmt.Sprintf("station-%04d", i), day}
		whole := make([]byte, headSlots+minutesPerDay)
		seed.grades[memberKey{"air", all[i].entity, day, ""}] = &memberRow{head: whole[:headSlots], minutes: whole[headSlots:],
			whole: whole, units: []string{"W1", "P1", "VN"}}
	}
	c.install(seed)
	batch := func(i int) *memberRows {
		keys := slices.Clone(all[(i%4)*500 : (i%4+1)*500])
		m := &memberRows{grades: make(map[memberKey]*memberRow, len(keys)), ranges: map[entityDay]minuteRange{}, optimistic: true}
		if missed := c.take(keys, m.grades); len(missed) != 0 {
			b.Fatalf("%d missed", len(missed))
		}
		return m
	}
	b.Run("take", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			batch(i)
			i++
		}
	})
	b.Run("install", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			b.StopTimer()
			m := batch(i)
			i++
			for _, r := range m.grades {
				r.written = true // a new member in every row, as when each station opens a minute
			}
			m.written = len(m.grades)
			m.updated = m.written
			b.StartTimer()
			c.install(m)
		}
	})
	b.Run("map_baseline", func(b *testing.B) {
		b.ReportAllocs()
		plain := map[entityDay]*cachedMember{}
		for _, ed := range all {
			plain[ed] = &cachedMember{}
		}
		i := 0
		for b.Loop() {
			keys := all[(i%4)*500 : (i%4+1)*500]
			i++
			out := map[entityDay]*cachedMember{}
			for _, ed := range keys {
				out[ed] = plain[ed]
			}
		}
	})
}
