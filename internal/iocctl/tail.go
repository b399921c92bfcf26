package iocctl

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/cejson"
	"github.com/iochub/iochub/internal/subjects"
)

const tailSynopsis = `tail SUBJECT [--since new|seq:N|TIME|DURATION] [--unit CODE] [--bbox minLon,minLat,maxLon,maxLat] [--kind K[,K]]
                   [--severity S] [--output ndjson|table] [--limit N]
                   [--url URL --key KEY [--transport sse|ws] | --nats-url URL | --context NAME]

Prints the events of SUBJECT (ioc.feed.01.>, ioc.state.79.air.>, ioc.rollup.01.>…), one CloudEvents JSON
object a line (ndjson) or a table. Through the gateway (--url, --key) it follows /v1/streams and, when the
connection drops or the hub ends it (a slow client, a restart), resumes after the last event it printed
(before the first, where the hub said the stream stood when it ended it): no gap, no duplicate. On NATS (--nats-url or --context) it reads the stream with an ordered consumer;
--bbox and --severity are then refused (the gateway applies them) and --unit matches the subject's unit token only.`

// tailOpts are the flags of tail.
type tailOpts struct {
	subject   string
	since     string
	unit      string
	bbox      string
	kind      string
	severity  string
	output    string
	transport string
	limit     int
	hub       hubFlags
	nats      natsFlags
}

func runTail(ctx context.Context, args []string, env Env) error {
	var o tailOpts
	fs := newFlags(env, "tail", tailSynopsis)
	fs.StringVar(&o.since, "since", "new", "where to start: new (from now), seq:N (after stream sequence N; seq:0 is the start), an RFC 3339 time, or a duration before now (15m)")
	fs.StringVar(&o.unit, "unit", "", "only events in this unit (with the gateway, also its descendants)")
	fs.StringVar(&o.bbox, "bbox", "", "only events whose geometry meets minLon,minLat,maxLon,maxLat (gateway only)")
	fs.StringVar(&o.kind, "kind", "", "only events of these kinds, comma-separated (air,water…)")
	fs.StringVar(&o.severity, "severity", "", "only alerts of at least this severity: Minor, Moderate, Severe, Extreme (gateway only)")
	fs.StringVar(&o.output, "output", "ndjson", "ndjson (one CloudEvents JSON a line) or table")
	fs.StringVar(&o.transport, "transport", "sse", "with --url: sse (Server-Sent Events) or ws (WebSocket)")
	fs.IntVar(&o.limit, "limit", 0, "stop after this many events; 0 follows until interrupted")
	o.hub.register(fs, env, "API key (iocid_…) of an identity that reads the subject")
	o.nats.register(fs, env)
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		fs.Usage()
		return ErrUsage
	}
	o.subject = rest[0]
	if o.output != "ndjson" && o.output != "table" {
		return fmt.Errorf("--output %q: want ndjson or table", o.output)
	}
	if o.limit < 0 {
		return fmt.Errorf("--limit %d: want 0 or more", o.limit)
	}
	p := newPrinter(env.Stdout, o.output)
	if o.nats.set() {
		return tailNATS(ctx, o, env, p)
	}
	switch o.transport {
	case "sse":
		return tailSSE(ctx, o, env, p)
	case "ws":
		return tailWS(ctx, o, env, p)
	}
	return fmt.Errorf("--transport %q: want sse or ws", o.transport)
}

// errLimit ends a tail once --limit events were printed.
var errLimit = errors.New("limit reached")

// printer writes events as NDJSON or a table.
type printer struct {
	w      io.Writer
	table  bool
	header bool
	n      int
	limit  int
}

func newPrinter(w io.Writer, output string) *printer {
	return &printer{w: w, table: output == "table"}
}

// tableRow is what the table shows of an event.
type tableRow struct {
	IocSeq     uint64 `json:"iocseq"`
	Time       string `json:"time"`
	Type       string `json:"type"`
	Subject    string `json:"subject"`
	IocSubject string `json:"iocsubject"`
}

// print writes one event (its CloudEvents JSON); errLimit once the limit is reached.
func (p *printer) print(raw []byte) error {
	if p.table {
		var r tableRow
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("an event is not CloudEvents JSON: %w", err)
		}
		if !p.header {
			fmt.Fprintf(p.w, "%-10s %-25s %-32s %-40s %s\n", "SEQ", "TIME", "TYPE", "NATS SUBJECT", "SUBJECT")
			p.header = true
		}
		fmt.Fprintf(p.w, "%-10d %-25s %-32s %-40s %s\n", r.IocSeq, r.Time, r.Type, r.IocSubject, r.Subject)
	} else {
		if _, err := p.w.Write(append(compact(raw), '\n')); err != nil {
			return err
		}
	}
	p.n++
	if p.limit > 0 && p.n >= p.limit {
		return errLimit
	}
	return nil
}

// compact removes insignificant spaces so an event is one line.
func compact(raw []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// streamOf is the stream holding subject (a filter of one of the hub's streams).
func streamOf(subject string) (string, error) {
	if s := subjects.StreamOf(subject); s != "" {
		return s, nil
	}
	return "", fmt.Errorf("subject %q: want one of the hub's streams: ioc.feed.…, ioc.state.…, ioc.rollup.…, ioc.action.…, ioc.deadletter.…", subject)
}

// subjectFilter applies --kind and --unit to a subject on NATS.
type subjectFilter struct {
	kinds []string
	unit  string
}

func (f subjectFilter) keep(subject string) bool {
	t := strings.Split(subject, ".")
	if len(t) < 4 {
		return false
	}
	var kind, unit string
	switch t[1] {
	case "feed":
		if len(t) == 5 {
			unit, kind = subjects.Untoken(t[3]), t[4]
		}
	case "rollup":
		if len(t) == 6 {
			unit, kind = subjects.Untoken(t[3]), t[4]
		}
	case "state":
		kind = t[3]
	case "deadletter":
		kind = subjects.Untoken(t[3])
	}
	if len(f.kinds) > 0 && !contains(f.kinds, kind) {
		return false
	}
	return f.unit == "" || unit == f.unit
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// deliverFrom sets cfg's start from --since.
func deliverFrom(cfg *jetstream.OrderedConsumerConfig, since string, now time.Time) error {
	switch {
	case since == "" || since == "new":
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	case strings.HasPrefix(since, "seq:"):
		n, err := strconv.ParseUint(since[len("seq:"):], 10, 64)
		if err != nil {
			return fmt.Errorf("--since %q: seq: takes the last stream sequence you have (seq:0 for the start)", since)
		}
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, n+1
	default:
		t, err := parseTime(since, now)
		if err != nil {
			return fmt.Errorf("--since %w", err)
		}
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}
	return nil
}

func tailNATS(ctx context.Context, o tailOpts, env Env, p *printer) error {
	if o.bbox != "" || o.severity != "" {
		return errors.New("--bbox and --severity are applied by the gateway's /v1/streams: use --url and --key, or filter on NATS by subject")
	}
	stream, err := streamOf(o.subject)
	if err != nil {
		return err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{o.subject}}
	if err := deliverFrom(&cfg, o.since, time.Now()); err != nil {
		return err
	}
	nc, err := o.nats.connect(env, "iocctl tail")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("opening JetStream: %w", err)
	}
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return fmt.Errorf("following %s on stream %s: %w", o.subject, stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("following %s on stream %s: %w", o.subject, stream, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	p.limit = o.limit
	f := subjectFilter{kinds: splitList(o.kind), unit: o.unit}
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("reading %s: %w", stream, err)
		}
		if !f.keep(msg.Subject()) {
			continue
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("reading %s: %w", stream, err)
		}
		ev, err := cejson.FromMsg(msg.Subject(), msg.Headers(), msg.Data(), md.Sequence.Stream)
		if err != nil {
			fmt.Fprintf(env.Stderr, "iocctl: skipping message %d: %v\n", md.Sequence.Stream, err)
			continue
		}
		ev.IocStream = stream
		raw, _ := json.Marshal(ev)
		if err := p.print(raw); err != nil {
			if errors.Is(err, errLimit) {
				return nil
			}
			return err
		}
	}
}

// streamsQuery is the query of /v1/streams for o, resuming after seq when it is set.
func streamsQuery(o tailOpts, after uint64, resumed bool) (url.Values, error) {
	q := url.Values{"subject": {o.subject}}
	since := o.since
	if resumed {
		since = "seq:" + strconv.FormatUint(after, 10)
	} else if since != "" && since != "new" && !strings.HasPrefix(since, "seq:") {
		t, err := parseTime(since, time.Now())
		if err != nil {
			return nil, fmt.Errorf("--since %w", err)
		}
		since = t.Format(time.RFC3339Nano)
	}
	if since != "" {
		q.Set("since", since)
	}
	for k, v := range map[string]string{"unit": o.unit, "bbox": o.bbox, "kind": o.kind, "severity": o.severity} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q, nil
}

// reconnectWait is how long tail waits before resuming a dropped stream.
var reconnectWait = time.Second

// maxFailures bounds the reconnections in a row that deliver nothing.
const maxFailures = 5

// errFatal marks an end of stream that resuming cannot fix (a refusal, a revoked key).
type errFatal struct{ err error }

func (e errFatal) Error() string { return e.err.Error() }
func (e errFatal) Unwrap() error { return e.err }

// errRetry is a refusal to retry later: 429 (the identity opens streams too
// fast, or holds too many) or a 5xx; wait is the answer's Retry-After.
type errRetry struct {
	err  error
	wait time.Duration
}

func (e errRetry) Error() string { return e.err.Error() }
func (e errRetry) Unwrap() error { return e.err }

// refused is the error of a hub's answer other than the stream: to retry
// (429, 5xx: errRetry, after its Retry-After if it says one) or not (any
// other 4xx: errFatal).
func refused(resp *http.Response) error {
	err := readProblem(resp)
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
		return errFatal{err}
	}
	var wait time.Duration
	if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && secs > 0 {
		wait = time.Duration(min(secs, 3600)) * time.Second
	}
	return errRetry{err, wait}
}

// follow runs one connection after another until the limit, ctx's end or
// a fatal error. conn returns the sequence to resume after, whether it knows
// one (it printed an event, the hub said where the stream stood when it
// ended it, or it was resuming already), and why it ended.
func follow(ctx context.Context, env Env, conn func(after uint64, resumed bool) (uint64, bool, error)) error {
	var (
		last     uint64
		resumed  bool
		failures int
	)
	for {
		got, known, err := conn(last, resumed)
		if errors.Is(err, errLimit) || ctx.Err() != nil {
			return nil
		}
		var fatal errFatal
		if errors.As(err, &fatal) {
			return fatal.err
		}
		if got > last || (!resumed && known) {
			failures = 0
		} else {
			failures++
		}
		if known {
			// Even before its first event (--since new, a quiet subject) a
			// stream the hub ended resumes where it stood, not from what is
			// new by the time tail reconnects.
			last, resumed = max(last, got), true
		}
		if failures >= maxFailures {
			return fmt.Errorf("the stream ended %d times in a row without an event: %w", failures, err)
		}
		wait := reconnectWait
		if r := (errRetry{}); errors.As(err, &r) && r.wait > wait {
			wait = r.wait
		}
		fmt.Fprintf(env.Stderr, "iocctl: stream interrupted (%v); resuming after sequence %d in %s\n", err, last, wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

func tailSSE(ctx context.Context, o tailOpts, env Env, p *printer) error {
	p.limit = o.limit
	return follow(ctx, env, func(after uint64, resumed bool) (uint64, bool, error) {
		q, err := streamsQuery(o, after, false)
		if err != nil {
			return after, resumed, errFatal{err}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.hub.endpoint("/v1/streams")+"?"+q.Encode(), nil)
		if err != nil {
			return after, resumed, errFatal{err}
		}
		req.Header.Set("Accept", "text/event-stream")
		if o.hub.key != "" {
			req.Header.Set("Authorization", "Bearer "+o.hub.key)
		}
		if resumed {
			req.Header.Set("Last-Event-ID", strconv.FormatUint(after, 10))
		}
		resp, err := env.HTTP.Do(req)
		if err != nil {
			return after, resumed, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return after, resumed, refused(resp)
		}
		return readSSE(resp.Body, after, resumed, p)
	})
}

// maxEventBytes bounds one event read from the hub, SSE's data lines or a
// WebSocket message: far above the hub's own (an event is a NATS message,
// 8 MiB at most), low enough that a peer cannot fill the memory.
const maxEventBytes = 16 << 20

// readSSE prints the events of an SSE body and returns the sequence to
// resume after (the last printed, or where the hub's final event says the
// stream stood), whether it knows one (known is its value on entry, true
// once an event is printed or a final event says), and why the body ended.
func readSSE(body io.Reader, last uint64, known bool, p *printer) (uint64, bool, error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var (
		id, event string
		data      []string
		size      int // of data
	)
	for sc.Scan() {
		line := sc.Text()
		if line != "" {
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				id = value
			case "event":
				event = value
			case "data":
				if size += len(value) + 24; size > maxEventBytes { // the line and its string's header in data
					return last, known, fmt.Errorf("an event of the stream is over %d bytes without its end (a blank line): not an event of the hub", maxEventBytes)
				}
				data = append(data, value)
			}
			continue
		}
		size = 0
		// A blank line dispatches the event.
		ev, seqText, body := event, id, strings.Join(data, "\n")
		id, event, data = "", "", nil
		switch {
		case body == "":
			// The hub's opening block: the position the stream starts after.
			if n, err := strconv.ParseUint(seqText, 10, 64); err == nil && ev == "" {
				last, known = max(last, n), true
			}
			continue
		case ev == "" || ev == "message":
			if err := p.print([]byte(body)); err != nil {
				return last, known, err
			}
			if n, err := strconv.ParseUint(seqText, 10, 64); err == nil {
				last, known = max(last, n), true
			}
		case ev == "revoked":
			return last, known, errFatal{fmt.Errorf("the hub ended the stream: the key was revoked: %s", body)}
		default:
			// overflow, shutdown, error: {"lastSequence":N,...}, where to resume.
			var end struct {
				LastSequence *uint64 `json:"lastSequence"`
			}
			if json.Unmarshal([]byte(body), &end) == nil && end.LastSequence != nil {
				last, known = max(last, *end.LastSequence), true
			}
			return last, known, fmt.Errorf("the hub ended the stream (%s): %s", ev, body)
		}
	}
	if err := sc.Err(); err != nil {
		return last, known, err
	}
	return last, known, io.ErrUnexpectedEOF
}

// resumeSeq reads the sequence a close reason of the hub names
// ("…; resume with since=seq:N"), false when it names none.
func resumeSeq(reason string) (uint64, bool) {
	i := strings.LastIndex(reason, "since=seq:")
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(reason[i+len("since=seq:"):], 10, 64)
	return n, err == nil
}

func tailWS(ctx context.Context, o tailOpts, env Env, p *printer) error {
	p.limit = o.limit
	return follow(ctx, env, func(after uint64, resumed bool) (uint64, bool, error) {
		q, err := streamsQuery(o, after, resumed)
		if err != nil {
			return after, resumed, errFatal{err}
		}
		u := "ws" + strings.TrimPrefix(o.hub.endpoint("/v1/streams"), "http") + "?" + q.Encode()
		h := http.Header{}
		if o.hub.key != "" {
			h.Set("Authorization", "Bearer "+o.hub.key)
		}
		ws, resp, err := websocket.DefaultDialer.DialContext(ctx, u, h)
		if err != nil {
			if resp != nil {
				defer resp.Body.Close()
				return after, resumed, refused(resp)
			}
			return after, resumed, err
		}
		defer func() { _ = ws.Close() }()
		ws.SetReadLimit(maxEventBytes)
		stop := context.AfterFunc(ctx, func() { _ = ws.Close() })
		defer stop()
		last, known := after, resumed
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					if ce.Code == closeRevoked {
						return last, known, errFatal{fmt.Errorf("the hub ended the stream: the key was revoked: %s", ce.Text)}
					}
					if n, ok := resumeSeq(ce.Text); ok { // 4004, 1001, 4000: where the stream stood
						last, known = max(last, n), true
					}
				}
				return last, known, err
			}
			var r struct {
				IocSeq uint64 `json:"iocseq"`
			}
			_ = json.Unmarshal(msg, &r)
			if err := p.print(msg); err != nil {
				return last, known, err
			}
			if r.IocSeq > 0 {
				last, known = r.IocSeq, true
			}
		}
	})
}

// closeRevoked is the gateway's close code for a revoked key (services/gateway/closecodes.go).
const closeRevoked = 4003
