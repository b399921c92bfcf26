package feedcheck_test

import (
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/feedcheck"
)

func TestID(t *testing.T) {
	tests := []struct{ in, wantErr string }{
		{"station-1", ""},
		{"trạm-Hà-Nội-😀", ""},
		{strings.Repeat("x", 256), ""},
		{"", "is empty"},
		{strings.Repeat("x", 257), "257 bytes long; at most 256"},
		{"a\x00b", "control character U+0000 at byte 1"},
		{"a\tb", "control character U+0009"},
		{"a\u0085b", "control character U+0085"},
		{"a\xff", "not valid UTF-8"},
		{" a", "starts with white space"},
		{"a\u00a0", "ends with white space"},
	}
	for _, tt := range tests {
		err := feedcheck.ID("id", tt.in)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ID(%q) = %v; want nil", tt.in, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ID(%q) = %v; want an error with %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestText(t *testing.T) {
	if err := feedcheck.Text("name", "Trạm\nmới\t1", 256); err != nil {
		t.Errorf("Text: %v; want nil", err)
	}
	for in, want := range map[string]string{"a\x00": "NUL character at byte 1", "a\xc3": "not valid UTF-8", strings.Repeat("ệ", 100): "300 bytes long; at most 256"} {
		if err := feedcheck.Text("name", in, 256); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Text(%q) = %v; want an error with %q", in, err, want)
		}
	}
}

func TestTime(t *testing.T) {
	for _, tt := range []struct {
		t  time.Time
		ok bool
	}{
		{feedcheck.MinTime, true},
		{feedcheck.MinTime.Add(-time.Second), false},
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Time{}, false},
		{time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC), true},
		{feedcheck.MaxTime, true},
		{feedcheck.MaxTime.Add(time.Second), false},
	} {
		err := feedcheck.Time("dateObserved", tt.t)
		if (err == nil) != tt.ok {
			t.Errorf("Time(%s) = %v; want ok %v", tt.t, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "dateObserved "+tt.t.UTC().Format(time.RFC3339)+" is out of range") {
			t.Errorf("Time(%s) = %q; want it to name the field and say out of range", tt.t, err)
		}
	}
}

func TestClip(t *testing.T) {
	if got := feedcheck.Clip("short"); got != "short" {
		t.Errorf("Clip(short) = %q", got)
	}
	long := strings.Repeat("ệ", 1000) // 3 bytes each: 64 is not a rune boundary
	got := feedcheck.Clip(long)
	if want := strings.Repeat("ệ", 21) + "…(3000 bytes)"; got != want {
		t.Errorf("Clip = %q; want %q", got, want)
	}
}
