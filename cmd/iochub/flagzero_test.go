package main

import (
	"flag"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// zeroSaid matches a usage that says what 0 means for its flag.
var zeroSaid = regexp.MustCompile(`\b0s? (means|for|forever|picks|retries|until|follows|turns)\b`)

// numeric reports whether f takes a number or a duration.
func numeric(f *flag.Flag) bool {
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case int, int64, uint, uint64, float64, time.Duration:
			return true
		}
		return false
	}
	if _, err := strconv.ParseFloat(f.DefValue, 64); err == nil {
		return true
	}
	_, err := time.ParseDuration(f.DefValue)
	return err == nil
}

// TestFlagZeroNeverSilent checks every number and duration flag of serve,
// dev and edge: given 0, it is refused (by the flag or by the command's
// validation), or its usage says what 0 means. A setting whose 0 silently
// became its default gave an operator who asked for none (no timeout, no
// queue) the default instead.
func TestFlagZeroNeverSilent(t *testing.T) {
	commands := []struct {
		name  string
		flags func() (*flag.FlagSet, func() error)
	}{
		{"serve", func() (*flag.FlagSet, func() error) {
			c := defaults()
			return serveFlags(&c), c.validate
		}},
		{"dev", func() (*flag.FlagSet, func() error) {
			c := defaults()
			return devFlags(&c), c.validate
		}},
		{"edge", func() (*flag.FlagSet, func() error) {
			c := edgeDefaults()
			fs := flag.NewFlagSet("iochub edge", flag.ContinueOnError)
			c.registerFlags(fs)
			// What edge requires, so that only the flag under test can fail.
			c.Unit, c.Catalog, c.DataDir = "00070", "catalog.json", "data"
			return fs, c.validate
		}},
	}
	for _, cmd := range commands {
		all, validate := cmd.flags()
		if err := validate(); err != nil {
			t.Fatalf("iochub %s: the defaults do not validate, so no flag would be checked: %v", cmd.name, err)
		}
		checked := 0
		all.VisitAll(func(f *flag.Flag) {
			if !numeric(f) {
				return
			}
			checked++
			fs, validate := cmd.flags()
			if err := fs.Set(f.Name, "0"); err != nil {
				return
			}
			if err := validate(); err != nil {
				return
			}
			if !zeroSaid.MatchString(f.Usage) {
				t.Errorf("iochub %s --%s=0 is taken, and its usage does not say what 0 means: %q", cmd.name, f.Name, f.Usage)
			}
		})
		if checked < 5 {
			t.Errorf("iochub %s: %d number or duration flags found; the test no longer sees them", cmd.name, checked)
		}
	}
}
