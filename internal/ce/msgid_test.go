package ce_test

import (
	"bytes"
	"encoding/base64"
	"sync"
	"testing"

	"github.com/iochub/iochub/internal/ce"
)

func testKey(t testing.TB, b byte) *ce.MsgIDKey {
	t.Helper()
	k, err := ce.NewMsgIDKey(bytes.Repeat([]byte{b}, ce.MsgIDKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestMsgIDKey(t *testing.T) {
	k := testKey(t, 1)
	id := k.FeedID("src", "air", "a@2025-07-01T00:00:00Z")
	if len(id) != ce.KeyedMsgIDLen {
		t.Fatalf("id %q is %d bytes; want %d", id, len(id), ce.KeyedMsgIDLen)
	}
	if got := k.ID(ce.FeedMsgID("src", "air", "a@2025-07-01T00:00:00Z")); got != id {
		t.Errorf("ID(FeedMsgID(…)) = %q; FeedID = %q: want one id", got, id)
	}
	if got := testKey(t, 1).FeedID("src", "air", "a@2025-07-01T00:00:00Z"); got != id {
		t.Errorf("another MsgIDKey of the same secret made %q; want %q", got, id)
	}
	for _, other := range []string{
		testKey(t, 2).FeedID("src", "air", "a@2025-07-01T00:00:00Z"), // another hub
		k.FeedID("src", "weather", "a@2025-07-01T00:00:00Z"),
		k.FeedID("src2", "air", "a@2025-07-01T00:00:00Z"),
		k.ID("src/air/a@2025-07-01T00:00:00Z,sender"),
		ce.FeedMsgID("src", "air", "a@2025-07-01T00:00:00Z"),
	} {
		if other == id {
			t.Errorf("%q made of other input; want an id other than %q", other, id)
		}
	}
	if _, err := base64.RawURLEncoding.DecodeString(id); err != nil {
		t.Errorf("id %q is not base64url: %v", id, err)
	}
	if _, err := ce.NewMsgIDKey(make([]byte, 16)); err == nil {
		t.Error("NewMsgIDKey took a 16-byte key; want an error")
	}
}

// TestMsgIDKeyConcurrent runs ids on many goroutines (go test -race): the
// pooled states are never shared.
func TestMsgIDKeyConcurrent(t *testing.T) {
	k := testKey(t, 3)
	want := k.FeedID("s", "air", "e")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if got := k.FeedID("s", "air", "e"); got != want {
					t.Errorf("got %q; want %q", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestMsgIDKeyAllocs(t *testing.T) {
	k := testKey(t, 4)
	k.FeedID("warm", "up", "pool")
	if n := testing.AllocsPerRun(100, func() { k.FeedID("source-0001", "air", "station-42@2025-07-01T00:00:00Z") }); n > 1 {
		t.Errorf("FeedID allocates %v times; want 1 (its string)", n)
	}
}

// BenchmarkFeedMsgID compares the plain id (the baseline) with the keyed one.
func BenchmarkFeedMsgID(b *testing.B) {
	const src, kind, ev = "source-0001", "air", "station-42@2025-07-01T00:00:00Z"
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = ce.FeedMsgID(src, kind, ev)
		}
	})
	b.Run("keyed", func(b *testing.B) {
		k := testKey(b, 5)
		b.ReportAllocs()
		for b.Loop() {
			_ = k.FeedID(src, kind, ev)
		}
	})
	b.Run("keyed-parallel", func(b *testing.B) {
		k := testKey(b, 5)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = k.FeedID(src, kind, ev)
			}
		})
	})
}

// TestFeedIDEmptyParts: FeedID is the id of the joined triple whatever its
// parts, never that of the source alone (an empty kind once made it so).
func TestFeedIDEmptyParts(t *testing.T) {
	k := testKey(t, 1)
	if got, alone := k.FeedID("s", "", "e"), k.ID("s"); got == alone {
		t.Errorf("FeedID(s, \"\", e) = ID(s) = %s", got)
	}
	if got, want := k.FeedID("s", "", "e"), k.ID(ce.FeedMsgID("s", "", "e")); got != want {
		t.Errorf("FeedID(s, \"\", e) = %s; want the id of %q, %s", got, ce.FeedMsgID("s", "", "e"), want)
	}
}
