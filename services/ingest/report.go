package ingest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/feedcheck"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// ReportCategories are the categories a citizen report may have. They match
// the rows of report_category seeded by migration 00005, which hold each
// category's SLA.
var ReportCategories = []string{"traffic", "environment", "urban-order", "infrastructure", "flooding", "other"}

// Bounds of a citizen report.
const (
	// MaxReportText is the most characters of a report's description.
	MaxReportText = 4000
	// MaxReportMedia is the most media links of a report.
	MaxReportMedia = 10
	// MaxMediaURL is the longest media link, in bytes.
	MaxMediaURL = 2048
	// MaxContactField is the longest name, phone or email of a reporter, in characters.
	MaxContactField = 200
)

// ReportStatusReceived is the status of a report as it arrives.
const ReportStatusReceived = "received"

// ReportContact is the reporter's contact as sealed into Report.contact_sealed:
// the JSON of this struct, sealed with the hub key and ReportID as additional data.
type ReportContact struct {
	Name  string `json:"name,omitempty"`
	Phone string `json:"phone,omitempty"`
	Email string `json:"email,omitempty"`
}

// ReportID is the id of a report in the hub (the report table, STATE and
// /v1/reports/{id}): <source id>/<item id>, as alerts are keyed.
func ReportID(sourceID, itemID string) string { return sourceID + "/" + itemID }

// parseReport reads a citizen field report in iochub's JSON (docs/reports.md);
// FIWARE has no model for it. The contact is sealed in finish, once the
// source (part of the additional data) is known.
func parseReport(f fields, env parseEnv) (*parsed, *itemError) {
	id, ierr := itemHead(f, "FieldReport")
	if ierr != nil {
		return nil, ierr
	}
	cat, ierr := requiredStr(f, "category")
	if ierr != nil {
		return nil, ierr
	}
	if !slices.Contains(ReportCategories, cat) {
		return nil, &itemError{pointer: "category", reason: fmt.Sprintf("category %q is not known; want %s", feedcheck.Clip(cat), orList(ReportCategories))}
	}
	at := env.now
	if t, ok, ierr := f.timeField("dateReported"); ierr != nil {
		return nil, ierr
	} else if ok {
		if ierr := notTooFarAhead("dateReported", t, env); ierr != nil {
			return nil, ierr
		}
		at = t
	}
	g, ierr := location(f, "Point")
	if ierr != nil {
		return nil, ierr
	}
	text, _, ierr := f.str("description")
	if ierr != nil {
		return nil, ierr
	}
	text = strings.TrimSpace(text)
	if n := utf8.RuneCountInString(text); n > MaxReportText {
		return nil, &itemError{pointer: "description", reason: fmt.Sprintf("description is %d characters long; at most %d", n, MaxReportText)}
	}
	if ierr := plainText("description", text); ierr != nil {
		return nil, ierr
	}
	media, ierr := reportMedia(f)
	if ierr != nil {
		return nil, ierr
	}
	if text == "" && len(media) == 0 {
		return nil, &itemError{pointer: "description", reason: "a report needs a description or at least one media link"}
	}
	contact, ierr := reportContact(f)
	if ierr != nil {
		return nil, ierr
	}
	if contact != nil && env.seal == nil {
		return nil, &itemError{pointer: "contact", reason: "this hub has no seal key, so it cannot keep a reporter's contact private; send the report without contact or ask the hub's operators to set SealKey"}
	}
	m := &iocv1.Report{Id: id, EntityId: id, ObservedAt: timestamppb.New(at), Category: cat, Text: text,
		Media: media, Status: ReportStatusReceived}
	p, ierr := obsHead{id: id, eventID: id, entity: id, at: at, geom: g}.parsed(shapePoint, m, &m.Location, &m.Origin)
	if ierr != nil || contact == nil {
		return p, ierr
	}
	seal, setOrigin := env.seal, p.finish
	p.finish = func(o *iocv1.Origin) {
		setOrigin(o)
		pt, _ := json.Marshal(contact) // a struct of strings always marshals
		m.ContactSealed = seal.Seal(pt, []byte(ReportID(o.GetSourceId(), id)))
	}
	return p, nil
}

// plainText rejects control characters other than new lines and tabs.
func plainText(ptr, s string) *itemError {
	for i, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' && r != '\r' || r == 0x7f {
			return &itemError{pointer: ptr, reason: fmt.Sprintf("control character U+%04X at byte %d", r, i)}
		}
	}
	return nil
}

// reportMedia reads the media links: absolute http or https URLs with a host.
func reportMedia(f fields) ([]string, *itemError) {
	raw, ok := f.value("media")
	if !ok {
		return nil, nil
	}
	if jsonKind(raw) != "array" {
		return nil, &itemError{pointer: "media", reason: "want an array of http or https URLs, got a JSON " + jsonKind(raw)}
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, &itemError{pointer: "media", reason: "want an array of URLs: " + err.Error()}
	}
	if len(items) > MaxReportMedia {
		return nil, &itemError{pointer: "media", reason: fmt.Sprintf("%d media links; at most %d", len(items), MaxReportMedia)}
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		ptr := "media/" + strconv.Itoa(i)
		var s string
		if jsonKind(it) != "string" || json.Unmarshal(it, &s) != nil {
			return nil, &itemError{pointer: ptr, reason: "want a URL string, got a JSON " + jsonKind(it)}
		}
		if len(s) > MaxMediaURL {
			return nil, &itemError{pointer: ptr, reason: fmt.Sprintf("link is %d bytes long; at most %d", len(s), MaxMediaURL)}
		}
		u, err := url.Parse(s)
		switch {
		case err != nil:
			return nil, &itemError{pointer: ptr, reason: fmt.Sprintf("%q is not a URL", s)}
		case u.Scheme != "http" && u.Scheme != "https":
			return nil, &itemError{pointer: ptr, reason: fmt.Sprintf("%q is not an http or https URL", s)}
		case u.Host == "":
			return nil, &itemError{pointer: ptr, reason: fmt.Sprintf("%q has no host", s)}
		case u.User != nil:
			return nil, &itemError{pointer: ptr, reason: "a media link must not carry a user name or password"}
		}
		out = append(out, u.String())
	}
	return out, nil
}

// reportContact reads the reporter's contact; nil when absent or empty.
func reportContact(f fields) (*ReportContact, *itemError) {
	raw, ok := f.value("contact")
	if !ok {
		return nil, nil
	}
	if jsonKind(raw) != "object" {
		return nil, &itemError{pointer: "contact", reason: "want an object with name, phone and email, got a JSON " + jsonKind(raw)}
	}
	var cm map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cm); err != nil {
		return nil, &itemError{pointer: "contact", reason: "want an object with name, phone and email: " + err.Error()}
	}
	cf := fieldsOf(cm)
	var c ReportContact
	for _, k := range slices.Sorted(maps.Keys(cm)) { // the same member named every time
		if k != "name" && k != "phone" && k != "email" {
			return nil, &itemError{pointer: "contact/" + pathSegment(k), reason: "unknown member; a contact has name, phone and email"}
		}
	}
	for _, m := range []struct {
		name string
		dst  *string
	}{{"name", &c.Name}, {"phone", &c.Phone}, {"email", &c.Email}} {
		s, _, ierr := cf.str(m.name)
		if ierr != nil {
			ierr.pointer = "contact/" + ierr.pointer
			return nil, ierr
		}
		s = strings.TrimSpace(s)
		if n := utf8.RuneCountInString(s); n > MaxContactField {
			return nil, &itemError{pointer: "contact/" + m.name, reason: fmt.Sprintf("%d characters long; at most %d", n, MaxContactField)}
		}
		if ierr := plainText("contact/"+m.name, s); ierr != nil {
			return nil, ierr
		}
		*m.dst = s
	}
	if c.Phone != "" && !validPhone(c.Phone) {
		return nil, &itemError{pointer: "contact/phone", reason: "want a phone number of 3 to 20 digits, with +, spaces, dots, dashes or parentheses"}
	}
	if c.Email != "" {
		if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email {
			return nil, &itemError{pointer: "contact/email", reason: "want a plain e-mail address such as name@example.vn"}
		}
	}
	if c == (ReportContact{}) {
		return nil, nil
	}
	return &c, nil
}

func validPhone(s string) bool {
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0, r == ' ', r == '.', r == '-', r == '(', r == ')':
		default:
			return false
		}
	}
	return digits >= 3 && digits <= 20
}
