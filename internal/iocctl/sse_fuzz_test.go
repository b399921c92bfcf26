package iocctl

import (
	"io"
	"strings"
	"testing"
)

// FuzzReadSSE feeds arbitrary bytes to the SSE reader of tail: it must end
// with an error or the events it printed, never panic, and never go back.
func FuzzReadSSE(f *testing.F) {
	f.Add("id: 3\ndata: {\"iocseq\":3}\n\n")
	f.Add("event: overflow\ndata: {\"code\":4004}\n\n")
	f.Add(": keepalive\n\nid: x\ndata: a\ndata: b\n\n")
	f.Add("event: revoked\ndata: {}\n\n")
	f.Fuzz(func(t *testing.T, body string) {
		p := newPrinter(io.Discard, "ndjson")
		last, err := readSSE(strings.NewReader(body), 1, p)
		if err == nil {
			t.Fatal("readSSE ended without an error; a body always ends with one")
		}
		if last < 1 {
			t.Fatalf("last sequence went back to %d", last)
		}
	})
}
