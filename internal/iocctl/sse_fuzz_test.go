package iocctl

import (
	"errors"
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
		last, known, err := readSSE(strings.NewReader(body), 1, true, p)
		if err == nil {
			t.Fatal("readSSE ended without an error; a body always ends with one")
		}
		if last < 1 || !known {
			t.Fatalf("last sequence went back to %d (known %v)", last, known)
		}
	})
}

// endless writes "data: " lines of 1 KiB without the blank line that ends
// an event, up to n bytes.
type endless struct{ left int }

func (e *endless) Read(b []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	line := "data: " + strings.Repeat("x", 1017) + "\n"
	n := 0
	for n+len(line) <= len(b) && e.left > 0 {
		n += copy(b[n:], line)
		e.left -= len(line)
	}
	if n == 0 {
		n = copy(b, line[:len(b)])
		e.left -= n
	}
	return n, nil
}

// TestReadSSEBoundsAnEvent: data lines that never end their event stop the
// read once they pass maxEventBytes, saying so, instead of piling up (a
// peer's 64 MiB took 137 MiB of heap).
func TestReadSSEBoundsAnEvent(t *testing.T) {
	_, _, err := readSSE(&endless{left: 4 * maxEventBytes}, 0, false, newPrinter(io.Discard, "ndjson"))
	if err == nil || !strings.Contains(err.Error(), "without its end") {
		t.Fatalf("got %v; want the event's bound named", err)
	}
}

// TestReadSSEOpeningPosition: the hub's opening block (a comment and an id,
// no data) gives the position the stream starts after, so that tail resumes
// from it when the stream ends before its first event; no event is printed.
func TestReadSSEOpeningPosition(t *testing.T) {
	var out strings.Builder
	last, known, err := readSSE(strings.NewReader(": iochub event stream ioc.feed.01.>\nid: 41\n\n"), 0, false, newPrinter(&out, "ndjson"))
	if last != 41 || !known || !errors.Is(err, io.ErrUnexpectedEOF) || out.Len() != 0 {
		t.Fatalf("got %d, %v, %v, printed %q; want 41, known, the body's end and nothing printed", last, known, err, out.String())
	}
	// A named event without data sets nothing.
	last, known, _ = readSSE(strings.NewReader("event: x\nid: 9\n\n"), 0, false, newPrinter(&out, "ndjson"))
	if last != 0 || known {
		t.Fatalf("a named block without data gave %d, %v; want nothing known", last, known)
	}
}
