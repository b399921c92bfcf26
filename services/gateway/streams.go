package gateway

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iochub/iochub/internal/kind"
	"github.com/iochub/iochub/internal/subjects"
)

// Event streams (GET /v1/streams): one JetStream ordered consumer per client
// on FEEDS, STATE or ROLLUPS, filtered by a NATS subject filter, each message
// sent as a CloudEvents 1.0 JSON event carrying its stream sequence, over
// WebSocket or Server-Sent Events. streams.go holds the parameters,
// stream_event.go the decoding and encoding of events, handler_streams.go the
// handler, the pump and the two transports.

// streamShape is one stream a subject filter may fall under.
type streamShape struct {
	stream string // FEEDS, STATE, ROLLUPS
	word   string // the second subject token: feed, state, rollup
	tokens int    // tokens of a full subject
	// provTok, unitTok and kindTok are the token indexes of the province,
	// the unit (-1: none in the subject) and the kind or layer.
	provTok, unitTok, kindTok int
}

var streamShapes = []streamShape{
	{stream: subjects.StreamFeeds, word: "feed", tokens: 5, provTok: 2, unitTok: 3, kindTok: 4},     // ioc.feed.<province>.<unit>.<kind>
	{stream: subjects.StreamState, word: "state", tokens: 5, provTok: 2, unitTok: -1, kindTok: 3},   // ioc.state.<province>.<layer>.<entity>
	{stream: subjects.StreamRollups, word: "rollup", tokens: 6, provTok: 2, unitTok: 3, kindTok: 4}, // ioc.rollup.<province>.<unit>.<layer>.<window>
}

// maxSubjectLen bounds the subject parameter.
const maxSubjectLen = 256

// sinceKind says where a stream starts.
type sinceKind int

const (
	sinceNew  sinceKind = iota // only what is published after the subscription
	sinceSeq                   // after a stream sequence (exclusive)
	sinceTime                  // from a time (inclusive)
)

// streamParams are the validated query parameters of /v1/streams.
type streamParams struct {
	Subject string
	Shape   streamShape
	// Province is the subject's province token, "" when it is a wildcard.
	Province string
	Since    sinceKind
	// AfterSeq is the last sequence the client has (Since == sinceSeq): delivery starts at AfterSeq+1.
	AfterSeq uint64
	// From is the first time wanted (Since == sinceTime).
	From time.Time
	// Kinds limits events to these kinds (layers); nil means every kind.
	Kinds []string
	// Unit is the unit parameter ("" none); its descendants are resolved after authentication.
	Unit string
	// BBox limits events to those whose geometry's box meets it; events without a geometry are left out.
	BBox *bbox
	// Severity is the minimum CAP severity rank (severityRank); 0 means no severity filter.
	Severity int
}

// capSeverities are the CAP 1.2 severities from least to most severe; the
// rank of one is its index plus one.
var capSeverities = []string{"Unknown", "Minor", "Moderate", "Severe", "Extreme"}

// severityRank is the rank of a CAP severity (case-insensitive), 0 when unknown.
func severityRank(s string) int {
	for i, v := range capSeverities {
		if strings.EqualFold(v, s) {
			return i + 1
		}
	}
	return 0
}

// one returns the single value of parameter name, or an error naming it.
func one(q url.Values, name string) (string, bool, error) {
	vs, ok := q[name]
	if !ok {
		return "", false, nil
	}
	if len(vs) != 1 {
		return "", true, fmt.Errorf("parameter %s: given %d times; give it once: %w", name, len(vs), ErrBadParam)
	}
	if len(vs[0]) > maxParamLen {
		return "", true, fmt.Errorf("parameter %s: longer than %d bytes: %w", name, maxParamLen, ErrBadParam)
	}
	return vs[0], true, nil
}

// parseStreamQuery validates ?subject=..[&since=..][&kind=..][&unit=..][&bbox=..][&severity=..].
// lastEventID is the SSE Last-Event-ID header; when set it overrides since.
func parseStreamQuery(q url.Values, lastEventID string) (streamParams, error) {
	var p streamParams
	subj, ok, err := one(q, "subject")
	if err != nil {
		return p, err
	}
	if !ok || subj == "" {
		return p, fmt.Errorf("parameter subject: missing; give a NATS subject filter under ioc.feed, ioc.state or ioc.rollup, e.g. subject=ioc.feed.01.>: %w", ErrBadParam)
	}
	if err := parseStreamSubject(&p, subj); err != nil {
		return p, err
	}
	if err := parseSince(&p, q, lastEventID); err != nil {
		return p, err
	}
	if v, ok, err := one(q, "kind"); err != nil {
		return p, err
	} else if ok {
		known := kind.Default.All()
		for _, k := range strings.Split(v, ",") {
			if !kind.Default.Known(k) {
				return p, fmt.Errorf("parameter kind: unknown kind %q; known kinds are %s: %w", k, strings.Join(known, ","), ErrBadParam)
			}
			if !slices.Contains(p.Kinds, k) {
				p.Kinds = append(p.Kinds, k)
			}
		}
	}
	if v, ok, err := one(q, "unit"); err != nil {
		return p, err
	} else if ok {
		if v == "" || strings.ContainsAny(v, " .*>") {
			return p, fmt.Errorf("parameter unit: %q is not a unit code such as 00004: %w", v, ErrBadParam)
		}
		p.Unit = v
	}
	if v, ok, err := one(q, "bbox"); err != nil {
		return p, err
	} else if ok {
		b, err := parseBBox(v)
		if err != nil {
			return p, err
		}
		p.BBox = &b
	}
	if v, ok, err := one(q, "severity"); err != nil {
		return p, err
	} else if ok {
		if p.Severity = severityRank(v); p.Severity == 0 {
			return p, fmt.Errorf("parameter severity: %q is not a CAP severity; give one of %s: %w", v, strings.Join(capSeverities, ","), ErrBadParam)
		}
	}
	return p, nil
}

// parseStreamSubject checks a NATS subject filter and finds its stream: it
// must name feed, state or rollup literally (one stream per request), and
// its tokens must fit that stream's subjects.
func parseStreamSubject(p *streamParams, subj string) error {
	bad := func(why string) error {
		shown := subj
		if len(shown) > 64 {
			shown = shown[:64] + "…"
		}
		return fmt.Errorf("parameter subject: %q %s; give a filter such as ioc.feed.01.>, ioc.state.01.alert.* or ioc.rollup.01.*.air.1h: %w", shown, why, ErrBadParam)
	}
	if len(subj) > maxSubjectLen {
		return bad(fmt.Sprintf("is longer than %d bytes", maxSubjectLen))
	}
	if why := badText(subj); why != "" {
		return bad(why)
	}
	// NATS refuses a filter holding white space (form feed included) when
	// the consumer is created: refused there, it would be a 503 to retry.
	if i := strings.IndexFunc(subj, func(r rune) bool { return r <= ' ' || r == 0x7f }); i >= 0 {
		return bad(fmt.Sprintf("has white space or a control character (byte %d)", i))
	}
	toks := strings.Split(subj, ".")
	for i, t := range toks {
		switch {
		case t == "":
			return bad("has an empty token")
		case t == ">" && i != len(toks)-1:
			return bad("has > before its last token")
		case t != "*" && t != ">" && strings.ContainsAny(t, "*>"):
			return bad("has a wildcard inside a token")
		}
	}
	if len(toks) < 2 || toks[0] != "ioc" {
		return bad("is not under ioc.feed, ioc.state or ioc.rollup")
	}
	if toks[1] == "*" || toks[1] == ">" {
		return bad("spans several streams; ask for one of ioc.feed, ioc.state, ioc.rollup per request")
	}
	i := slices.IndexFunc(streamShapes, func(s streamShape) bool { return s.word == toks[1] })
	if i < 0 {
		return bad("is not under ioc.feed (FEEDS), ioc.state (STATE) or ioc.rollup (ROLLUPS)")
	}
	sh := streamShapes[i]
	last := toks[len(toks)-1]
	switch {
	case last == ">" && len(toks) > sh.tokens:
		return bad(fmt.Sprintf("has more tokens than the %d of a %s subject", sh.tokens, sh.stream))
	case last != ">" && len(toks) != sh.tokens:
		return bad(fmt.Sprintf("has %d tokens; a %s subject has %d (end with > for the rest)", len(toks), sh.stream, sh.tokens))
	}
	p.Subject, p.Shape = subj, sh
	if len(toks) > sh.provTok && toks[sh.provTok] != "*" && toks[sh.provTok] != ">" {
		p.Province = subjects.Untoken(toks[sh.provTok])
	}
	return nil
}

// parseSince reads since= (new, seq:N, or an RFC 3339 time) or, for SSE,
// the Last-Event-ID header (a stream sequence), which wins.
func parseSince(p *streamParams, q url.Values, lastEventID string) error {
	if lastEventID != "" {
		n, err := strconv.ParseUint(strings.TrimSpace(lastEventID), 10, 63)
		if err != nil {
			return fmt.Errorf("header Last-Event-ID: %q is not a stream sequence (the id: of an event this API sent): %w", truncate(lastEventID, 32), ErrBadParam)
		}
		p.Since, p.AfterSeq = sinceSeq, n
		return nil
	}
	v, ok, err := one(q, "since")
	if err != nil {
		return err
	}
	switch {
	case !ok || v == "new":
		p.Since = sinceNew
	case strings.HasPrefix(v, "seq:"):
		n, err := strconv.ParseUint(v[len("seq:"):], 10, 63) // delivery starts at n+1: within uint64, and past any stream's sequence
		if err != nil {
			return fmt.Errorf("parameter since: %q: seq: takes the last stream sequence you have, e.g. since=seq:12345 (seq:0 for the start): %w", v, ErrBadParam)
		}
		p.Since, p.AfterSeq = sinceSeq, n
	default:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil && strings.Contains(v, " ") {
			// An unescaped + in a query (…+07:00) arrives as a space.
			t, err = time.Parse(time.RFC3339Nano, strings.ReplaceAll(v, " ", "+"))
		}
		if err != nil {
			return fmt.Errorf("parameter since: %q is not new, seq:N or an RFC 3339 time such as 2026-11-21T08:00:00+07:00: %w", v, ErrBadParam)
		}
		p.Since, p.From = sinceTime, t
	}
	return nil
}
