package ce

import (
	"testing"
	"time"
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
