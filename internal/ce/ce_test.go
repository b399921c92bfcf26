package ce

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestHeaderRoundTrip(t *testing.T) {
	in := Event{ID: "st1@2026-11-21T08:00:00Z", Source: SourceURN("01", "00070"), Type: ObservedType("air"), Subject: "st1", Time: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)}
	h := in.Header()
	if _, ok := h["ce-id"]; !ok {
		t.Fatalf("header keys were re-cased: %v", h)
	}
	out, err := FromHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("got %+v; want %+v", out, in)
	}
	delete(h, HeaderSource)
	if _, err := FromHeader(h); err == nil {
		t.Fatal("missing ce-source was accepted")
	}
}

// TestSetOnValuesIndependent: the header values share a backing array, so
// adding to one header must not change another.
func TestSetOnValuesIndependent(t *testing.T) {
	h := nats.Header{}
	Event{ID: "i", Source: "s", Type: "t", Subject: "sub", Time: time.Unix(0, 0)}.SetOn(h)
	h.Add(HeaderID, "second")
	if got := h.Values(HeaderSource); len(got) != 1 || got[0] != "s" {
		t.Errorf("source after an Add to id: %v; want [s]", got)
	}
	if got := h.Values(HeaderID); len(got) != 2 || got[0] != "i" || got[1] != "second" {
		t.Errorf("id after Add: %v", got)
	}
	if n := testing.AllocsPerRun(100, func() { Event{ID: "i", Source: "s", Type: "t", Subject: "sub"}.SetOn(nats.Header{}) }); n > 4 {
		t.Errorf("SetOn allocates %v times; want the values in one array", n)
	}
}

// TestFromHeaderNamesFirstMissing: with several required attributes
// missing, the error names the first of id, source, type, on every call.
func TestFromHeaderNamesFirstMissing(t *testing.T) {
	for range 50 {
		_, err := FromHeader(map[string][]string{HeaderSource: {"src"}})
		if !errors.Is(err, ErrMissingAttribute) || !strings.Contains(err.Error(), HeaderID) {
			t.Fatalf("error %v; want ErrMissingAttribute naming %s", err, HeaderID)
		}
	}
}
