package flagx_test

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/flagx"
)

func TestPositive(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var d time.Duration
	var n int
	var b int64
	var r float64
	flagx.Positive(fs, &d, "wait", 5*time.Second, "")
	flagx.Positive(fs, &n, "queue", 16, "")
	flagx.Positive(fs, &b, "bytes", 1<<20, "")
	flagx.Positive(fs, &r, "rate", 2.5, "")
	if d != 5*time.Second || n != 16 || b != 1<<20 || r != 2.5 {
		t.Fatalf("defaults not set: %v %d %d %g", d, n, b, r)
	}
	if err := fs.Parse([]string{"--wait=2m", "--queue=3", "--bytes=7", "--rate=0.5"}); err != nil {
		t.Fatal(err)
	}
	if d != 2*time.Minute || n != 3 || b != 7 || r != 0.5 {
		t.Fatalf("got %v %d %d %g", d, n, b, r)
	}
	for _, bad := range []struct{ name, value, want string }{
		{"wait", "0", "must be above 0"},
		{"wait", "0s", "must be above 0"},
		{"wait", "-1s", "must be above 0"},
		{"wait", "5", "not a duration"},
		{"queue", "0", "must be above 0"},
		{"queue", "-4", "must be above 0"},
		{"queue", "1.5", "not a whole number"},
		{"bytes", "0", "must be above 0"},
		{"rate", "0", "must be above 0"},
		{"rate", "x", "not a number"},
	} {
		err := fs.Set(bad.name, bad.value)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("--%s=%s: got %v; want an error with %q", bad.name, bad.value, err, bad.want)
		}
	}
	if d != 2*time.Minute || n != 3 || b != 7 || r != 0.5 {
		t.Fatalf("a refused value changed the setting: %v %d %d %g", d, n, b, r)
	}
	// Through Parse, the flag package names the flag.
	if err := fs.Parse([]string{"--queue=0"}); err == nil || !strings.Contains(err.Error(), "-queue") {
		t.Errorf("Parse --queue=0: %v; want an error naming the flag", err)
	}
}

func TestNonZero(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var d time.Duration
	flagx.NonZero(fs, &d, "sweep", time.Minute, "never", "")
	if err := fs.Set("sweep", "-1s"); err != nil || d != -time.Second {
		t.Fatalf("negative: %v, %v", err, d)
	}
	if err := fs.Set("sweep", "30s"); err != nil || d != 30*time.Second {
		t.Fatalf("positive: %v, %v", err, d)
	}
	err := fs.Set("sweep", "0")
	if err == nil || !strings.Contains(err.Error(), "negative one for never") {
		t.Fatalf("0: %v; want the refusal to say what a negative value does", err)
	}
	if d != 30*time.Second {
		t.Fatalf("a refused value changed the setting: %v", d)
	}
}

// TestDefaults checks what -help prints as each flag's default.
func TestDefaults(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var d time.Duration
	var n int
	flagx.Positive(fs, &d, "wait", 90*time.Second, "how long (IOCHUB_WAIT)")
	flagx.Positive(fs, &n, "queue", 16, "how many")
	var out strings.Builder
	fs.SetOutput(&out)
	fs.PrintDefaults()
	for _, want := range []string{
		"-wait duration\n", "how long; a duration above 0 (IOCHUB_WAIT) (default 1m30s)",
		"-queue int\n", "how many; an int above 0 (default 16)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("PrintDefaults lacks %q:\n%s", want, out.String())
		}
	}
}
