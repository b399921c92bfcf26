package ingest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/iochub/iochub/internal/cap"
)

// TestSplitCAPLimits: unreadable XML is named by its element path, nesting
// past cap.MaxDepth stops the split, and a huge identifier is clipped.
func TestSplitCAPLimits(t *testing.T) {
	alert := func(id, event string) string {
		return `<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>` + id + `</identifier><info><category>Met</category><event>` + event + `</event></info></alert>`
	}
	for _, tc := range []struct{ name, body, want string }{
		{"NUL in a batch", "<b>" + alert("a", "x") + alert("b", "x\x00") + "</b>", "alert[1]/info[0]/event: unreadable XML"},
		{"invalid UTF-8 in one alert", alert("a", "\xff"), "line 1: alert/info[0]/event: unreadable XML"},
		{"deep", "<b>" + strings.Repeat("<x>", cap.MaxDepth+5) + strings.Repeat("</x>", cap.MaxDepth+5) + "</b>",
			fmt.Sprintf("elements are nested more than %d deep", cap.MaxDepth)},
	} {
		_, err := splitCAP([]byte(tc.body), 10)
		var be *bodyError
		if !errors.As(err, &be) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v; want a body error containing %q", tc.name, err, tc.want)
		}
	}
	long := strings.Repeat("é", 1000)
	sp, err := splitCAP([]byte(alert(long, "x")), 10)
	if err != nil {
		t.Fatal(err)
	}
	if id := sp.chunks[0].id; id != strings.Repeat("é", 32)+"…(2000 bytes)" {
		t.Errorf("got id %q; want its first 64 bytes and its size", id)
	}
}

// TestCAPReasonClipped: the reason of a rejected alert stays short even when
// its problems are many and their paths long.
func TestCAPReasonClipped(t *testing.T) {
	var b strings.Builder
	b.WriteString(`<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">`)
	name := strings.Repeat("n", cap.MaxNameBytes-8)
	for i := range 200 {
		// Distinct unknown elements, each reported at its own long path.
		fmt.Fprintf(&b, "<%s%03d/>", name, i)
	}
	b.WriteString(`</alert>`)
	it := capRaw([]byte(b.String()), "alert", "", "x", 0)
	if it.err == "" || len(it.err) > maxReason+64 || !strings.Contains(it.err, "bytes in all)") {
		t.Errorf("got a reason of %d bytes; want it clipped to about %d", len(it.err), maxReason)
	}
}
