package testkit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	n := 0
	if err := poll(time.Minute, func() (bool, string) { n++; return n == 3, "" }); err != nil {
		t.Fatalf("poll = %v; want nil", err)
	}
	if n != 3 {
		t.Errorf("cond called %d times; want 3", n)
	}
	start := time.Now()
	err := poll(50*time.Millisecond, func() (bool, string) { return false, "3 rows" })
	if !errors.Is(err, errTimeout) || !strings.Contains(err.Error(), "last seen: 3 rows") {
		t.Errorf("poll = %v; want a timeout naming the last state", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("poll gave up after %v; want about 50ms", d)
	}
	if err := poll(0, Holds(func() bool { return false })); err == nil || !strings.Contains(err.Error(), "nothing observed") {
		t.Errorf("poll = %v; want a timeout saying nothing was observed", err)
	}
}

func TestStart(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		run     func(ctx context.Context) error
		wantErr error
	}{
		{"returns nil", func(ctx context.Context) error { <-ctx.Done(); return nil }, nil},
		{"returns the context error", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, nil},
		{"returns a wrapped context error", func(ctx context.Context) error { <-ctx.Done(); return fmt.Errorf("consuming: %w", ctx.Err()) }, nil},
		{"fails", func(context.Context) error { return boom }, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := &fakeTB{TB: t}
			r := Start(ft, "svc", tt.run)
			err := r.Stop()
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("Stop = %v; want %v", err, tt.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "svc: Run: ") {
				t.Errorf("Stop = %q; want it to name the service", err)
			}
			if err := r.Stop(); !errors.Is(err, tt.wantErr) {
				t.Errorf("second Stop = %v; want %v", err, tt.wantErr)
			}
			select {
			case <-r.Done():
			default:
				t.Errorf("Done is open after Stop")
			}
			ft.cleanup()
			if got, want := len(ft.errs), map[bool]int{true: 0, false: 1}[tt.wantErr == nil]; got != want {
				t.Errorf("the cleanup reported %q; want %d error(s)", ft.errs, want)
			}
		})
	}
}

// fakeTB records what Start reports at cleanup instead of failing the test.
type fakeTB struct {
	testing.TB
	cleanups []func()
	errs     []string
}

func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}
func (f *fakeTB) cleanup() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestGolden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.golden.json")
	Golden(t, path, []byte("{}\n"), true)
	ft := &fakeTB{TB: t}
	Golden(ft, path, []byte("{}\n"), false)
	if len(ft.errs) != 0 {
		t.Errorf("the same bytes: %q; want no error", ft.errs)
	}
	Golden(ft, path, []byte("{ }\n"), false)
	if len(ft.errs) != 1 || !strings.Contains(ft.errs[0], "x.golden.json differs") {
		t.Errorf("other bytes: %q; want one error naming the file", ft.errs)
	}
}

func TestLockedBufferLimit(t *testing.T) {
	b := LockedBuffer{Limit: 4}
	for _, w := range []string{"abc", "def", "g"} {
		if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
			t.Fatalf("Write(%q) = %d, %v; want %d, nil", w, n, err, len(w))
		}
	}
	if got := b.String(); got != "abcd" {
		t.Errorf("kept %q; want the first 4 bytes, abcd", got)
	}
	var all LockedBuffer
	_, _ = all.Write([]byte("abc"))
	_, _ = all.Write([]byte("def"))
	if got := all.String(); got != "abcdef" {
		t.Errorf("without a limit kept %q; want abcdef", got)
	}
}
