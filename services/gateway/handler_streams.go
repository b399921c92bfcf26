package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/routes"
)

// registerStreams adds GET /v1/streams; the mux answers 405 to any other
// method (the streams only read).
func (g *Gateway) registerStreams(mux routes.Mux) {
	mux.HandleFunc("GET /v1/streams", g.serveStreams)
}

// streamFilter decides which events of the consumer a client gets.
type streamFilter struct {
	shape    streamShape
	kinds    []string
	keyKinds []string // the kinds the key reads; nil: every kind
	unit     unitSet  // the unit parameter and its descendants; nil: any
	scope    unitSet  // the principal's units in the province; nil: the whole province
	box      *bbox
	severity int
}

// keep reports whether ev passes every filter.
func (f *streamFilter) keep(ev *streamEvent) bool {
	if f.kinds != nil && !containsStr(f.kinds, ev.kind) || f.keyKinds != nil && !containsStr(f.keyKinds, ev.kind) {
		return false
	}
	if f.unit != nil || f.scope != nil {
		us := ev.units(f.shape)
		if f.unit != nil && !f.unit.meets(us) || f.scope != nil && !f.scope.meets(us) {
			return false
		}
	}
	if f.severity > 0 && ev.severity() < f.severity {
		return false
	}
	if f.box != nil {
		b, ok := ev.box()
		if !ok || !f.box.intersects(b) {
			return false
		}
	}
	return true
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// wantsEventStream reports whether the request accepts text/event-stream.
func wantsEventStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/event-stream") {
				return true
			}
		}
	}
	return false
}

// serveStreams is GET /v1/streams?subject=..[&since=..][&kind=..][&unit=..][&bbox=..][&severity=..]
// over WebSocket, or as Server-Sent Events for Accept: text/event-stream.
// Everything is checked before the upgrade or the first byte (4xx problem).
func (g *Gateway) serveStreams(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet { // HEAD, which the GET pattern also matches: a stream has no head
		w.Header().Set("Allow", "GET")
		writeProblem(w, r, http.StatusMethodNotAllowed, "event streams are opened with GET")
		return
	}
	if !g.originAllowed(r) {
		writeProblem(w, r, http.StatusForbidden, fmt.Sprintf("Origin %q may not open event streams of this hub (see --allowed-origins)", truncate(r.Header.Get("Origin"), 100)))
		return
	}
	who, ok := g.authenticate(w, r)
	if !ok {
		return
	}
	ws := websocket.IsWebSocketUpgrade(r)
	if !ws && !wantsEventStream(r) {
		writeProblem(w, r, http.StatusNotAcceptable, "event streams are sent over WebSocket, or as Server-Sent Events to a request with Accept: text/event-stream")
		return
	}
	lastID := ""
	if !ws {
		lastID = r.Header.Get("Last-Event-ID")
	}
	p, err := parseStreamQuery(r.URL.Query(), lastID)
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, err.Error())
		return
	}
	f, ok := g.streamScope(w, r, who, p)
	if !ok {
		return
	}
	if !g.allowOpen(w, r, who, "streams") {
		return
	}
	switch g.acquireStream(who.ID) {
	case streamIdentityFull:
		writeProblem(w, r, http.StatusTooManyRequests, fmt.Sprintf("identity %s has %d event streams open, the most allowed; close one first", who.ID, g.cfg.MaxStreamsPerIdentity))
		return
	case streamGatewayFull:
		w.Header().Set("Retry-After", "5")
		writeProblem(w, r, http.StatusServiceUnavailable, fmt.Sprintf("the gateway serves at most %d event streams; retry later or on another instance", g.cfg.MaxStreams))
		return
	}
	started := false
	defer func() {
		if !started {
			g.releaseStream(who.ID)
		}
	}()
	c, err := g.newStreamClient(r.Context(), who, p, f)
	var past *errPastEnd
	if errors.As(err, &past) {
		writeProblem(w, r, http.StatusConflict, past.Error())
		return
	}
	if err != nil {
		g.log.Error("opening event stream", "subject", p.Subject, "err", err)
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, http.StatusServiceUnavailable, "stream "+p.Shape.stream+" is unavailable; retry")
		return
	}
	if !g.trackWriter() {
		c.stop()
		writeProblem(w, r, http.StatusServiceUnavailable, "the gateway is shutting down; retry on another instance")
		return
	}
	started = true
	g.m.streamClients.Inc()
	if ws {
		g.serveStreamWS(w, r, c)
		return
	}
	g.serveStreamSSE(w, r, c)
}

// streamScope checks that who may read what p asks for and builds the filter
// (auth.Principal.MayReadFilter): a subject of one province needs read access
// there (a principal scoped to units of it gets their events only); a subject
// whose province is a wildcard needs a key of every province (403 otherwise:
// name one of yours); a key of some kinds gets only those, and a kind it
// does not read, in the subject or kind=, is 403. The unit parameter must be
// a unit who may read.
func (g *Gateway) streamScope(w http.ResponseWriter, r *http.Request, who auth.Principal, p streamParams) (streamFilter, bool) {
	f := streamFilter{shape: p.Shape, kinds: p.Kinds, box: p.BBox, severity: p.Severity}
	tree, ok := g.hierarchy(w, r)
	if !ok {
		return f, false
	}
	// The filter's province (a wildcard only for a key of every province) and
	// kind; a key of some kinds then gets only those, event by event.
	if err := who.MayReadFilter(tree, p.Subject); err != nil {
		forbid(w, r, who, "read "+p.Subject+": "+err.Error())
		return f, false
	}
	for _, k := range p.Kinds {
		if !readsKind(w, r, who, k) {
			return f, false
		}
	}
	if len(who.Kinds) > 0 {
		f.keyKinds = who.Kinds
	}
	if p.Province != "" {
		f.scope = scopeUnits(tree, who, p.Province)
	}
	if p.Unit != "" {
		if g.tree != nil && !tree.exists(p.Unit) {
			writeProblem(w, r, http.StatusBadRequest, "parameter unit: no current unit has the code "+truncate(p.Unit, 32))
			return f, false
		}
		if !who.CanReadUnit(tree, p.Unit) && !who.CanRead(auth.AllScopes) {
			forbid(w, r, who, "read the events of unit "+p.Unit)
			return f, false
		}
		f.unit = tree.closure([]string{p.Unit})
	}
	return f, true
}

// Outcomes of acquireStream.
const (
	streamAcquired = iota
	streamIdentityFull
	streamGatewayFull
)

// acquireStream counts an event stream of principal id: streamIdentityFull
// when id has Config.MaxStreamsPerIdentity open already, streamGatewayFull
// when the gateway has Config.MaxStreams (each stream holds a consumer on
// NATS, so their number is bounded as a whole, not only per identity).
func (g *Gateway) acquireStream(id string) int {
	// The identity's bound first: its refused attempts never touch the
	// gateway's count, which other identities read.
	if !g.acquire("streams\x00"+id, g.cfg.MaxStreamsPerIdentity) {
		return streamIdentityFull
	}
	if n := g.streams.Add(1); g.cfg.MaxStreams > 0 && n > int64(g.cfg.MaxStreams) {
		g.streams.Add(-1)
		g.release("streams\x00" + id)
		return streamGatewayFull
	}
	return streamAcquired
}

func (g *Gateway) releaseStream(id string) {
	g.release("streams\x00" + id)
	g.streams.Add(-1)
}

// trackWriter counts one more connection Close waits for; false after Close.
func (g *Gateway) trackWriter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.writers.Add(1)
	return true
}

// streamOut is one encoded event waiting for the writer.
type streamOut struct {
	seq   uint64
	frame []byte // a WebSocket text frame or an SSE event, by transport
}

// Why a pump stopped.
var (
	errStreamSlow = errors.New("client too slow: send queue stayed full")
	errStreamGone = errors.New("client gone")
)

// streamClient is one event stream: a pump goroutine reading the ordered
// consumer into a bounded queue, and a writer (the only one that writes).
type streamClient struct {
	g      *Gateway
	who    auth.Principal
	p      streamParams
	f      streamFilter
	cons   jetstream.Consumer
	it     jetstream.MessagesContext
	start  uint64 // the sequence the client has before the first event
	replay uint64 // events up to this sequence are a replay, paced by Config.ReplayRate
	// share is the replay budget of who's streams (Config.ReplayRatePerIdentity);
	// nil when not replaying or without one.
	share *rate.Limiter

	q        chan streamOut
	pumpDone chan struct{}
	pumpErr  error // set before pumpDone closes
	stopOnce sync.Once
}

// errPastEnd refuses a resume position beyond the stream's last message: no
// position of this stream (one recreated since, its sequences begun again,
// or another hub's). Resumed there, the client would get events numbered
// below its position and miss the new stream's first ones.
type errPastEnd struct {
	stream    string
	pos, last uint64
}

func (e *errPastEnd) Error() string {
	return fmt.Sprintf("since=seq:%d (or Last-Event-ID) is past the last message of %s, %d: not a position of this stream (recreated since?); start again with since=seq:0, a time or new",
		e.pos, e.stream, e.last)
}

// newStreamClient creates the ordered consumer and its message iterator.
func (g *Gateway) newStreamClient(ctx context.Context, who auth.Principal, p streamParams, f streamFilter) (*streamClient, error) {
	st, err := g.deps.JS.Stream(ctx, p.Shape.stream)
	if err != nil {
		return nil, fmt.Errorf("looking up stream %s: %w", p.Shape.stream, err)
	}
	last := st.CachedInfo().State.LastSeq
	// The consumer is deleted when the client ends; the threshold only
	// bounds one a crashed gateway leaves behind.
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{p.Subject}, InactiveThreshold: time.Minute}
	c := &streamClient{g: g, who: who, p: p, f: f}
	switch p.Since {
	case sinceNew:
		// Start right after the last message now stored, so the position a
		// client resumes from is known before the first event.
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, last+1
		c.start = last
	case sinceSeq:
		if p.AfterSeq > last {
			return nil, &errPastEnd{p.Shape.stream, p.AfterSeq, last}
		}
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, p.AfterSeq+1
		c.start, c.replay = p.AfterSeq, last
	case sinceTime:
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &p.From
		c.replay = last
	}
	cons, err := g.deps.JS.OrderedConsumer(ctx, p.Shape.stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating an ordered consumer on %s for %s: %w", p.Shape.stream, p.Subject, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(g.cfg.StreamFetch))
	if err != nil {
		return nil, fmt.Errorf("consuming %s for %s: %w", p.Shape.stream, p.Subject, err)
	}
	if p.Since == sinceTime {
		// The consumer knows where the time put it: delivered = first - 1.
		if info := cons.CachedInfo(); info != nil {
			c.start = info.Delivered.Stream
		}
	}
	c.cons, c.it = cons, it
	c.q = make(chan streamOut, g.cfg.StreamQueue)
	c.pumpDone = make(chan struct{})
	if c.replay > c.start {
		c.share = g.acquireReplay(who.ID) // given back by stop
	}
	return c, nil
}

// replayShare is an identity's replay budget, shared by its replaying streams.
type replayShare struct {
	lim     *rate.Limiter
	streams int
}

// acquireReplay returns the replay budget of identity id for one more of its
// streams (Config.ReplayRatePerIdentity), nil without one; releaseReplay
// gives it back. It lives while the identity has a replaying stream.
func (g *Gateway) acquireReplay(id string) *rate.Limiter {
	r := g.cfg.ReplayRatePerIdentity
	if r < 0 {
		return nil
	}
	g.perIDMu.Lock()
	defer g.perIDMu.Unlock()
	s := g.replays[id]
	if s == nil {
		s = &replayShare{lim: rate.NewLimiter(rate.Limit(r), replayBurst(r))}
		g.replays[id] = s
	}
	s.streams++
	return s.lim
}

func (g *Gateway) releaseReplay(id string) {
	g.perIDMu.Lock()
	defer g.perIDMu.Unlock()
	if s := g.replays[id]; s != nil {
		if s.streams--; s.streams <= 0 {
			delete(g.replays, id)
		}
	}
}

// replayBurst is the bucket of a replay budget of r events a second: a tenth
// of a second, and at least the slices of 32 the pump takes.
func replayBurst(r float64) int { return max(64, int(r/10)) }

// stop ends the consumer's iterator and deletes the consumer (the library
// leaves a stopped ordered consumer to its inactivity threshold); safe to
// call more than once.
func (c *streamClient) stop() {
	c.stopOnce.Do(func() {
		c.it.Stop()
		if c.share != nil {
			c.g.releaseReplay(c.who.ID)
		}
		info := c.cons.CachedInfo()
		if info == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := c.g.deps.JS.DeleteConsumer(ctx, c.p.Shape.stream, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			c.g.log.Debug("deleting a stream client's consumer; it expires by itself", "stream", c.p.Shape.stream, "consumer", info.Name, "err", err)
		}
	})
}

// pump reads the consumer, filters, takes each event's frame for transport t
// (decoded and encoded once per stream position in g.events, shared by every
// client there), and queues it. A queue that stays full for Config.StreamStall ends
// the pump with errStreamSlow: the writer then tells the client where to resume.
func (c *streamClient) pump(ctx context.Context, t transport) {
	defer close(c.pumpDone)
	stall := time.NewTimer(time.Hour)
	stall.Stop()
	paced := 0
	for {
		msg, err := c.it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				c.pumpErr = errStreamGone
			} else {
				c.pumpErr = fmt.Errorf("reading %s for %s: %w", c.p.Shape.stream, c.p.Subject, err)
			}
			return
		}
		meta, err := msg.Metadata()
		if err != nil {
			c.pumpErr = fmt.Errorf("reading metadata on %s: %w", c.p.Shape.stream, err)
			return
		}
		seq := meta.Sequence.Stream
		if seq <= c.replay && (c.g.replay != nil || c.share != nil) {
			// Replays share one budget per gateway, and one per identity
			// within it (its own first: an identity over its share holds
			// no place in the gateway's), taken in slices of 32 so the
			// limiters are not asked per event; live events never wait.
			if paced == 0 {
				if c.share != nil {
					if err := c.share.WaitN(ctx, 32); err != nil {
						c.pumpErr = errStreamGone
						return
					}
				}
				if c.g.replay != nil {
					if err := c.g.replay.WaitN(ctx, 32); err != nil {
						c.pumpErr = errStreamGone
						return
					}
				}
				paced = 32
			}
			paced--
		}
		ent := c.g.events.get(c.f.shape, streamMsg{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data(),
			Stream: c.p.Shape.stream, Seq: seq, Stamp: meta.Timestamp})
		if !c.f.keep(&ent.ev) {
			continue
		}
		out := streamOut{seq: seq, frame: ent.frame(t, c.g.log)}
		select {
		case c.q <- out:
			continue
		default:
		}
		stall.Reset(c.g.cfg.StreamStall)
		select {
		case c.q <- out:
			stall.Stop()
		case <-stall.C:
			c.g.m.streamClosed.WithLabelValues(closeReason(CloseStreamTooSlow)).Inc()
			c.pumpErr = errStreamSlow
			return
		case <-ctx.Done():
			stall.Stop()
			c.pumpErr = errStreamGone
			return
		}
	}
}

// streamSink is a transport's side of the writer.
type streamSink interface {
	// write sends frames (complete, in order) with one deadline.
	write(frames [][]byte) error
	// keepalive pings the client.
	keepalive() error
	// end tells the client why the stream ends (code, a close code, and
	// last, the sequence to resume after) as the transport can.
	end(code int, text string, last uint64)
}

// run is the writer: queued frames in order, keepalives, and the end. ctx
// ends when the client goes; g.ctx when the gateway shuts down.
func (c *streamClient) run(ctx context.Context, cancel context.CancelFunc, sink streamSink) {
	reason := "write_error"
	defer func() {
		cancel()
		c.stop()
		<-c.pumpDone
		c.g.releaseStream(c.who.ID)
		c.g.m.streamClients.Dec()
		if reason != "" {
			c.g.m.streamClosed.WithLabelValues(reason).Inc()
		}
		c.g.writers.Done()
	}()
	last := c.start
	ping := time.NewTicker(c.g.cfg.PingInterval)
	defer ping.Stop()
	batch := make([][]byte, 0, writeBatch)
	sent := func(n int, seq uint64) {
		last = seq
		c.g.m.streamEvents.Add(float64(n))
	}
	// end counts the reason before telling the client (the pump counted a
	// slow client already: its socket may stay full for up to WriteTimeout).
	end := func(code int, text string) {
		if code != CloseStreamTooSlow {
			c.g.m.streamClosed.WithLabelValues(closeReason(code)).Inc()
		}
		reason = ""
		sink.end(code, text, last)
	}
	for {
		select {
		case <-c.pumpDone:
			// What was queued before the pump stopped is still sent unless
			// the client is too slow (its queue is dropped) or gone.
			switch {
			case errors.Is(c.pumpErr, errStreamSlow):
				end(CloseStreamTooSlow, "too slow; resume with since=seq:"+strconv.FormatUint(last, 10))
				return
			case errors.Is(c.pumpErr, errStreamGone):
				if c.g.ctx.Err() != nil {
					end(CloseGoingAway, "gateway shutting down; resume with since=seq:"+strconv.FormatUint(last, 10))
				} else {
					reason = "client_closed"
					sink.end(CloseNormal, "", last)
				}
				return
			}
			for len(c.q) > 0 {
				o := <-c.q
				if err := sink.write([][]byte{o.frame}); err != nil {
					return
				}
				sent(1, o.seq)
			}
			c.g.log.Error("event stream failed", "subject", c.p.Subject, "err", c.pumpErr)
			end(CloseStreamFailure, "stream failed; resume with since=seq:"+strconv.FormatUint(last, 10))
			return
		case <-ctx.Done():
			if c.g.ctx.Err() != nil {
				end(CloseGoingAway, "gateway shutting down; resume with since=seq:"+strconv.FormatUint(last, 10))
			} else {
				reason = "client_closed"
				sink.end(CloseNormal, "", last)
			}
			return
		case <-ping.C:
			if !c.g.deps.Auth.Live(c.who) {
				end(CloseRevoked, "identity revoked; sign in again")
				return
			}
			if err := sink.keepalive(); err != nil {
				return
			}
		case o := <-c.q:
			batch = append(batch[:0], o.frame)
			seq := o.seq
		more:
			for len(batch) < writeBatch {
				select {
				case o := <-c.q:
					batch = append(batch, o.frame)
					seq = o.seq
				default:
					break more
				}
			}
			n := len(batch)
			if err := sink.write(batch); err != nil {
				return
			}
			sent(n, seq)
			clear(batch)
		}
	}
}

// serveStreamWS upgrades and runs the stream over WebSocket: each event one
// text frame; the end is a close frame (closecodes.go).
func (g *Gateway) serveStreamWS(w http.ResponseWriter, r *http.Request, c *streamClient) {
	hw := &hijackWriter{ResponseWriter: w}
	conn, err := g.upgrader.Upgrade(hw, r, nil)
	if err != nil {
		c.stop()
		close(c.pumpDone)
		g.releaseStream(c.who.ID)
		g.m.streamClients.Dec()
		g.writers.Done()
		return // the upgrader has answered
	}
	ctx, cancel := context.WithCancel(g.ctx)
	s := &wsStreamSink{g: g, conn: conn, wc: hw.conn, readDone: make(chan struct{})}
	go s.readLoop(cancel)
	go c.pump(ctx, transportWS)
	go c.run(ctx, cancel, s)
}

// wsStreamSink writes an event stream to a WebSocket.
type wsStreamSink struct {
	g        *Gateway
	conn     *websocket.Conn
	wc       *wsConn
	readDone chan struct{}
	readCode atomic.Int64 // how the reader ended (classifyReadError); 0 while it runs
}

// readLoop answers pings (gorilla's handler, through wsConn's lock), keeps
// the read deadline fresh on pongs and ends the stream when the client closes,
// goes silent for PongWait, or sends a data frame over readLimit.
func (s *wsStreamSink) readLoop(cancel context.CancelFunc) {
	defer close(s.readDone)
	defer cancel()
	wait := s.g.cfg.PongWait
	s.conn.SetReadLimit(readLimit)
	_ = s.conn.SetReadDeadline(time.Now().Add(wait))
	s.conn.SetPongHandler(func(string) error { return s.conn.SetReadDeadline(time.Now().Add(wait)) })
	s.conn.SetCloseHandler(func(int, string) error { return nil }) // the writer answers
	for {
		if _, _, err := s.conn.NextReader(); err != nil {
			code, _ := classifyReadError(err)
			s.readCode.Store(int64(code))
			return
		}
		_ = s.conn.SetReadDeadline(time.Now().Add(wait))
	}
}

func (s *wsStreamSink) write(frames [][]byte) error {
	return s.wc.writeFrames(frames, time.Now().Add(s.g.cfg.WriteTimeout))
}

func (s *wsStreamSink) keepalive() error {
	return s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.g.cfg.WriteTimeout))
}

func (s *wsStreamSink) end(code int, text string, _ uint64) {
	defer func() { _ = s.conn.Close() }()
	if code == CloseNormal {
		// The reader ended the stream: answer a close, report a silent
		// client, and say nothing on a broken connection or after gorilla's 1009.
		switch int(s.readCode.Load()) {
		case CloseNormal:
		case ClosePingTimeout:
			code, text = ClosePingTimeout, "ping timeout"
		default:
			return
		}
	}
	err := s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(s.g.cfg.WriteTimeout))
	if err == nil && code != CloseNormal {
		t := time.NewTimer(closeGrace)
		defer t.Stop()
		select {
		case <-s.readDone:
		case <-t.C:
		}
	}
}

// serveStreamSSE runs the stream as Server-Sent Events: an opening block
// "id: <the sequence it starts after>" without data, then each event
// "id: <seq>" and "data: <CloudEvent JSON>"; the end of a stream the client
// should resume is an event overflow, shutdown or error saying where.
func (g *Gateway) serveStreamSSE(w http.ResponseWriter, r *http.Request, c *streamClient) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &sseSink{g: g, w: w, rc: rc}
	// The opening block is a comment and the position the stream starts
	// after, with no data: an EventSource takes the id as its lastEventId
	// without firing an event, so that it resumes from there (Last-Event-ID)
	// even if the stream ends before its first event.
	if err := s.write([][]byte{[]byte(": iochub event stream " + c.p.Subject + "\nid: " + strconv.FormatUint(c.start, 10) + "\n\n")}); err != nil {
		c.stop()
		close(c.pumpDone)
		g.releaseStream(c.who.ID)
		g.m.streamClients.Dec()
		g.writers.Done()
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stopOnShutdown := context.AfterFunc(g.ctx, cancel)
	defer stopOnShutdown()
	go c.pump(ctx, transportSSE)
	c.run(ctx, cancel, s)
}

// sseFrame is one SSE event: its id is the stream sequence, its data one line of JSON.
func sseFrame(seq uint64, ev []byte) []byte {
	b := make([]byte, 0, len(ev)+32)
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, "\ndata: "...)
	b = append(b, ev...)
	return append(b, "\n\n"...)
}

// sseSink writes an event stream as Server-Sent Events.
type sseSink struct {
	g  *Gateway
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (s *sseSink) write(frames [][]byte) error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.g.cfg.WriteTimeout))
	for _, f := range frames {
		if _, err := s.w.Write(f); err != nil { //nolint:gosec // G705: text/event-stream of JSON this gateway encoded, never rendered as HTML
			return fmt.Errorf("writing events: %w", err)
		}
	}
	if err := s.rc.Flush(); err != nil {
		return fmt.Errorf("flushing events: %w", err)
	}
	return nil
}

func (s *sseSink) keepalive() error { return s.write([][]byte{[]byte(": keepalive\n\n")}) }

// sseEndEvents names the final SSE event of each close code.
var sseEndEvents = map[int]string{
	CloseStreamTooSlow: "overflow",
	CloseGoingAway:     "shutdown",
	CloseStreamFailure: "error",
	CloseRevoked:       "revoked",
}

func (s *sseSink) end(code int, text string, last uint64) {
	name, ok := sseEndEvents[code]
	if !ok {
		return
	}
	body, _ := json.Marshal(struct {
		Code         int    `json:"code"`
		Reason       string `json:"reason"`
		LastSequence uint64 `json:"lastSequence"`
		Resume       string `json:"resume"`
	}{code, text, last, "since=seq:" + strconv.FormatUint(last, 10)})
	_ = s.write([][]byte{[]byte("event: " + name + "\ndata: " + string(body) + "\n\n")})
}
