// Package feedcheck holds the checks that a feed item's fields must pass to be
// stored, shared by the ingest (which refuses an item before answering
// "accepted") and the aggregator (which decodes the item from FEEDS and
// writes it to PostGIS). Keeping them in one place is what makes "accepted
// means stored" hold: whatever the aggregator would refuse, the ingest
// refuses first, with the same words.
package feedcheck

import (
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// Bounds of text fields, in bytes.
const (
	// MaxIDBytes bounds every identifier: item ids, entity ids (refDevice,
	// refRoadSegment, refPointOfInterest), alert identifiers, source ids and
	// measure names. They become NATS headers, message ids and primary keys.
	MaxIDBytes = 256
	// MaxNameBytes bounds a station's or segment's name, carried in every state.
	MaxNameBytes = 256
	// MaxTextBytes bounds a free text (a description, a headline).
	MaxTextBytes = 4096
)

// MinTime is the earliest instant an item may carry (observed, reported,
// sent): an older one is a clock or parsing fault (1900-01-01, the Unix
// epoch, year 1), and the store keeps monthly partitions only from there on.
var MinTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// MaxTime is the latest instant any time field may carry (an alert's expiry
// included); PostgreSQL and protobuf timestamps both hold it.
var MaxTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// MaxEventTime is the latest instant an event may be dated (observed,
// reported, sent): the end of every roll-up window holding it must be
// written too, and a day in Asia/Ho_Chi_Minh ends at 17:00 UTC, so an event
// of 9999-12-31 after 17:00 UTC would fall in a day ending in year 10000,
// which JSON's times cannot write.
var MaxEventTime = time.Date(9999, 12, 30, 23, 59, 59, 0, time.UTC)

// EventTime checks an event's time against MaxEventTime (Time checks the
// rest); field names it in the error and may be empty.
func EventTime(field string, t time.Time) error {
	if t.After(MaxEventTime) {
		if field != "" {
			field += " "
		}
		return fmt.Errorf("%s%s is out of range; an event may be dated up to %s", field, t.UTC().Format(time.RFC3339),
			MaxEventTime.Format(time.RFC3339))
	}
	return nil
}

// Time checks that t lies within [MinTime, MaxTime]; field names it in the
// error and may be empty.
func Time(field string, t time.Time) error {
	if t.Before(MinTime) || t.After(MaxTime) {
		if field != "" {
			field += " "
		}
		return fmt.Errorf("%s%s is out of range; want a time from %s to %s", field, t.UTC().Format(time.RFC3339),
			MinTime.Format("2006-01-02"), MaxTime.Format("2006-01-02"))
	}
	return nil
}

// ID checks an identifier: not empty, at most MaxIDBytes, valid UTF-8,
// without white space at either end and free of control characters (NUL
// included), which PostgreSQL text, NATS headers and log lines cannot carry
// faithfully.
func ID(field, s string) error { return id(field, s, MaxIDBytes) }

// MaxKeyBytes bounds a text that is part of a primary key or unique index of
// the store (a btree entry over about 2.7 kB fails its whole batch) or a
// header of a NATS message: an id with a suffix (an event id is
// <id>@<time>, a message id <source>/<event id>) still fits.
const MaxKeyBytes = 1024

// HeaderValue is ID for a value made of ids (an event id, a message id),
// which may be up to MaxKeyBytes long.
func HeaderValue(field, s string) error { return id(field, s, MaxKeyBytes) }

func id(field, s string, max int) error {
	if s == "" {
		return fmt.Errorf("%s is empty", field)
	}
	if len(s) > max {
		return fmt.Errorf("%s is %d bytes long; at most %d", field, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", field)
	}
	// NATS trims header values: a padded id would not be the same id there.
	if r, _ := utf8.DecodeRuneInString(s); unicode.IsSpace(r) {
		return fmt.Errorf("%s starts with white space", field)
	}
	if r, _ := utf8.DecodeLastRuneInString(s); unicode.IsSpace(r) {
		return fmt.Errorf("%s ends with white space", field)
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%s has control character U+%04X at byte %d", field, r, i)
		}
	}
	return nil
}

// Text checks a free text that may be empty: at most max bytes, valid UTF-8,
// no NUL (PostgreSQL text cannot hold it). Line breaks and tabs are allowed.
func Text(field, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s is %d bytes long; at most %d", field, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", field)
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return fmt.Errorf("%s has a NUL character at byte %d", field, i)
		}
	}
	return nil
}

// clipBytes is how much of a rejected value a message quotes.
const clipBytes = 64

// Clip shortens s for quoting in a message: at most 64 bytes (on a rune
// boundary) followed by "…(N bytes)", so that a huge rejected value is never
// echoed back in full.
func Clip(s string) string {
	if len(s) <= clipBytes {
		return s
	}
	cut := clipBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}
