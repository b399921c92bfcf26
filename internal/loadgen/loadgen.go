// Package loadgen is an end-to-end load generator for an iochub hub that
// does not share the hub's code path: it writes FIWARE AirQualityObserved
// items by hand, POSTs them with net/http, and reads the hub's live view
// with a plain gorilla/websocket client, matching each frame's observation
// id to the time its POST started. It imports nothing of iochub, so a
// regression in the hub's encoders or decoders cannot hide in it.
//
// A run offers Rate events per second (0: as fast as the hub answers) for
// Duration from Stations stations in batches of Batch items, each station's
// observations in order (one worker owns a station), and reports how many
// were accepted, how many of them reached the live view, the POST → frame
// latency of those, and how many stations were still behind once the run
// and its drain ended.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// Config is one run.
type Config struct {
	// URL is the hub's base URL: POST {URL}/v1/feeds/air and the live view
	// at ws(s)://…/v1/live?province={Province}.
	URL      string
	Token    string
	Province string
	// Stations, Batch, Rate (events/s; 0 means no limit), Duration and
	// Workers (concurrent POSTs) shape the load; zero values take 2000, 200,
	// 0, 10s and 4 (a source's default --source-concurrency).
	Stations int
	Batch    int
	Rate     float64
	Duration time.Duration
	Workers  int
	// BBox (west, south, east, north) is where the stations stand; it must
	// lie inside the province's units. Zero means central Hà Nội.
	BBox [4]float64
	// Drain is the longest wait after the last POST for every station's
	// newest accepted observation to reach the live view. 0 means 30s.
	Drain time.Duration
	// RunID makes item and station ids unique per run; empty means the
	// start time.
	RunID string
	// KeepAccepted lists the ids of the accepted items in Result.AcceptedIDs
	// (a test that checks each was stored).
	KeepAccepted bool
	// LiveFrameLimit is the largest live frame read, in bytes; a larger one
	// ends the live view (websocket.ErrReadLimit). 0 means 64 MiB (a
	// snapshot of ~50,000 entities).
	LiveFrameLimit int64
}

func (c Config) withDefaults() Config {
	if c.Stations <= 0 {
		c.Stations = 2000
	}
	if c.Batch <= 0 {
		c.Batch = 200
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.LiveFrameLimit <= 0 {
		c.LiveFrameLimit = 64 << 20
	}
	if c.BBox == [4]float64{} {
		c.BBox = [4]float64{105.80, 21.00, 105.86, 21.05}
	}
	if c.Drain <= 0 {
		c.Drain = 30 * time.Second
	}
	if c.RunID == "" {
		c.RunID = strconv.FormatInt(time.Now().UnixMilli()%1e9, 36)
	}
	return c
}

// Result is what a run measured.
type Result struct {
	Offered, Accepted, Rejected, Duplicates int
	Posts, FailedPosts                      int
	// Send is the time from the first POST to the last answer; Total adds the
	// drain until nothing was behind (or the drain gave up).
	Send, Total time.Duration
	// Seen is how many accepted observations a live frame showed (the
	// others were conflated: a newer state of the station came first).
	Seen int
	// Behind counts the stations whose newest accepted observation never
	// reached the live view.
	Behind int
	// Latency percentiles of the seen observations, from the start of their
	// POST to the frame's arrival.
	P50, P99, Max time.Duration
	// FirstError is the first rejection reason or POST failure, if any.
	FirstError string
	// AcceptedIDs are the accepted items' ids when Config.KeepAccepted.
	AcceptedIDs []string
}

// OfferedRate and StoredRate are events per second over the send phase and
// over the whole run (accepted, until nothing was behind).
func (r Result) OfferedRate() float64 { return perSecond(r.Offered, r.Send) }
func (r Result) StoredRate() float64  { return perSecond(r.Accepted, r.Total) }

// SeenShare is Seen over Accepted.
func (r Result) SeenShare() float64 {
	if r.Accepted == 0 {
		return 0
	}
	return float64(r.Seen) / float64(r.Accepted)
}

func (r Result) String() string {
	return fmt.Sprintf("offered %d (%.0f/s), accepted %d, rejected %d, duplicates %d, posts %d (%d failed); "+
		"seen on the live view %d (%.1f %%), behind at the end %d stations; POST → frame p50 %s p99 %s max %s; "+
		"send %s, until caught up %s (%.0f events/s)",
		r.Offered, r.OfferedRate(), r.Accepted, r.Rejected, r.Duplicates, r.Posts, r.FailedPosts,
		r.Seen, 100*r.SeenShare(), r.Behind, r.P50.Round(100*time.Microsecond), r.P99.Round(100*time.Microsecond),
		r.Max.Round(time.Millisecond), r.Send.Round(time.Millisecond), r.Total.Round(time.Millisecond), r.StoredRate())
}

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Run offers the load to the hub at cfg.URL and measures it.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	g := NewGenerator(cfg.RunID, cfg.Stations, cfg.BBox)
	tr := NewTracker(g)
	live, err := dialLive(ctx, cfg, tr)
	if err != nil {
		return Result{}, err
	}
	defer live.Close()

	res := Result{}
	var mu sync.Mutex // res counters and FirstError
	fail := func(msg string) {
		mu.Lock()
		if res.FirstError == "" {
			res.FirstError = msg
		}
		mu.Unlock()
	}
	var lim *rate.Limiter
	if cfg.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(cfg.Rate/float64(cfg.Batch)), cfg.Workers)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Workers * 2}}
	sendCtx, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < cfg.Workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var mine []int
			for s := w; s < cfg.Stations; s += cfg.Workers {
				mine = append(mine, s)
			}
			if len(mine) == 0 {
				return
			}
			var body []byte
			refs := make([]Ref, 0, cfg.Batch)
			next := 0
			for sendCtx.Err() == nil {
				if lim != nil && lim.Wait(sendCtx) != nil {
					return
				}
				body = append(body[:0], '[')
				refs = refs[:0]
				for i := 0; i < cfg.Batch; i++ {
					s := mine[next%len(mine)]
					next++
					if i > 0 {
						body = append(body, ',')
					}
					var ref Ref
					body, ref = g.Append(body, s)
					refs = append(refs, ref)
				}
				body = append(body, ']')
				t0 := time.Now()
				tr.Sent(refs, t0)
				ans, err := postBatch(ctx, client, cfg, body)
				mu.Lock()
				res.Posts++
				res.Offered += len(refs)
				mu.Unlock()
				if err != nil {
					mu.Lock()
					res.FailedPosts++
					mu.Unlock()
					fail(err.Error())
					continue
				}
				acc, rej, dup, reason := tr.Answered(refs, ans)
				mu.Lock()
				res.Accepted += acc
				res.Rejected += rej
				res.Duplicates += dup
				mu.Unlock()
				if reason != "" {
					fail(reason)
				}
			}
		}(w)
	}
	wg.Wait()
	res.Send = time.Since(start)
	drainEnd := time.Now().Add(cfg.Drain)
	for tr.Behind() > 0 && time.Now().Before(drainEnd) && ctx.Err() == nil && live.Err() == nil {
		tr.WaitChange(50 * time.Millisecond)
	}
	res.Total = time.Since(start)
	res.Behind = tr.Behind()
	res.Seen, res.P50, res.P99, res.Max = tr.Latencies()
	if cfg.KeepAccepted {
		res.AcceptedIDs = tr.AcceptedIDs()
	}
	if err := live.Err(); err != nil && res.Behind > 0 {
		return res, fmt.Errorf("the live view failed: %w", err)
	}
	return res, nil
}

// feedAnswer is the ingest's per-item answer, as far as it is read here.
type feedAnswer struct {
	Results []struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
	} `json:"results"`
}

func postBatch(ctx context.Context, client *http.Client, cfg Config, body []byte) (feedAnswer, error) {
	var ans feedAnswer
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(cfg.URL, "/")+"/v1/feeds/air", bytes.NewReader(body))
	if err != nil {
		return ans, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+cfg.Token)
	resp, err := client.Do(req)
	if err != nil {
		return ans, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return ans, err
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return ans, fmt.Errorf("POST /v1/feeds/air: %s: %.300s", resp.Status, b)
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		return ans, fmt.Errorf("POST /v1/feeds/air: decoding the answer: %w", err)
	}
	return ans, nil
}

// liveConn reads the live view and feeds the tracker.
type liveConn struct {
	c    *websocket.Conn
	err  atomic.Pointer[error]
	done chan struct{}
}

func dialLive(ctx context.Context, cfg Config, tr *Tracker) (*liveConn, error) {
	u := "ws" + strings.TrimPrefix(strings.TrimRight(cfg.URL, "/"), "http") + "/v1/live?province=" + cfg.Province
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 64 << 10}
	c, resp, err := d.DialContext(ctx, u, http.Header{"Authorization": {"Bearer " + cfg.Token}})
	if err != nil {
		if resp != nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			return nil, fmt.Errorf("dialing %s: %w: %s %s", u, err, resp.Status, b)
		}
		return nil, fmt.Errorf("dialing %s: %w", u, err)
	}
	if resp != nil {
		_ = resp.Body.Close()
	}
	c.SetReadLimit(cfg.LiveFrameLimit)
	l := &liveConn{c: c, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				l.err.Store(&err)
				tr.wake()
				return
			}
			tr.Frame(msg, time.Now())
		}
	}()
	return l, nil
}

// Err is the reason the live view stopped, nil while it reads.
func (l *liveConn) Err() error {
	if p := l.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (l *liveConn) Close() {
	_ = l.c.Close()
	<-l.done
}

// Generator writes the items of a run: station s stands at a fixed point of
// the box, and its observation k is dated k milliseconds after the run's
// base time (ten minutes before its start, so never in the future).
type Generator struct {
	run    string
	base   time.Time
	points [][2]float64
	seq    []atomic.Int64
}

// NewGenerator places n stations on a grid over box.
func NewGenerator(run string, n int, box [4]float64) *Generator {
	g := &Generator{run: run, base: time.Now().Add(-10 * time.Minute).Truncate(time.Second), seq: make([]atomic.Int64, n)}
	side := 1
	for side*side < n {
		side++
	}
	for i := 0; i < n; i++ {
		x, y := i%side, i/side
		g.points = append(g.points, [2]float64{
			box[0] + (box[2]-box[0])*(float64(x)+0.5)/float64(side),
			box[1] + (box[3]-box[1])*(float64(y)+0.5)/float64(side),
		})
	}
	return g
}

// Ref names one observation: station index and sequence number.
type Ref struct{ Station, Seq int }

// Station is the entity id of station s.
func (g *Generator) Station(s int) string { return "lg-" + g.run + "-s" + strconv.Itoa(s) }

// Stations is how many stations the generator has.
func (g *Generator) Stations() int { return len(g.points) }

// Append writes station s's next observation as a JSON object to b.
func (g *Generator) Append(b []byte, s int) ([]byte, Ref) {
	k := int(g.seq[s].Add(1))
	at := g.base.Add(time.Duration(k) * time.Millisecond)
	b = append(b, `{"id":"lg-`...)
	b = append(b, g.run...)
	b = append(b, "-s"...)
	b = strconv.AppendInt(b, int64(s), 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(k), 10)
	b = append(b, `","type":"AirQualityObserved","refPointOfInterest":"`...)
	b = append(b, g.Station(s)...)
	b = append(b, `","dateObserved":"`...)
	b = at.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","location":{"type":"Point","coordinates":[`...)
	b = strconv.AppendFloat(b, g.points[s][0], 'f', 6, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, g.points[s][1], 'f', 6, 64)
	b = append(b, `]},"pm25":`...)
	b = strconv.AppendFloat(b, float64(10+(k*7+s)%150), 'f', 1, 64)
	b = append(b, `,"pm10":`...)
	b = strconv.AppendFloat(b, float64(20+(k*11+s)%200), 'f', 1, 64)
	b = append(b, `,"temperature":27.5,"relativeHumidity":0.71,"source":"loadgen"}`...)
	return b, Ref{s, k}
}

// ItemID is the id of observation r's item.
func (g *Generator) ItemID(r Ref) string {
	return "lg-" + g.run + "-s" + strconv.Itoa(r.Station) + "-" + strconv.Itoa(r.Seq)
}

// ParseID reads the Ref out of an observation id of this generator's run:
// the item's id, or the hub's "<item id>@<time>".
func (g *Generator) ParseID(id string) (Ref, bool) {
	id, _, _ = strings.Cut(id, "@")
	rest, ok := strings.CutPrefix(id, "lg-"+g.run+"-s")
	if !ok {
		return Ref{}, false
	}
	ss, ks, ok := strings.Cut(rest, "-")
	if !ok {
		return Ref{}, false
	}
	s, err1 := strconv.Atoi(ss)
	k, err2 := strconv.Atoi(ks)
	if err1 != nil || err2 != nil || s < 0 || s >= len(g.points) || k < 1 {
		return Ref{}, false
	}
	return Ref{s, k}, true
}

// Tracker matches observations sent, accepted and seen.
type Tracker struct {
	g      *Generator
	mu     sync.Mutex
	sent   [][]int64 // per station, by seq-1: the POST's start, unix ns
	acc    []int     // per station: newest accepted seq
	seen   []int     // per station: newest seq a frame showed
	lat    []time.Duration
	change chan struct{}
	// accepted are every accepted observation, for AcceptedIDs.
	accepted []Ref
}

// AcceptedIDs are the item ids of every accepted observation.
func (t *Tracker) AcceptedIDs() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, len(t.accepted))
	for i, r := range t.accepted {
		out[i] = t.g.ItemID(r)
	}
	return out
}

// NewTracker tracks g's observations.
func NewTracker(g *Generator) *Tracker {
	n := g.Stations()
	return &Tracker{g: g, sent: make([][]int64, n), acc: make([]int, n), seen: make([]int, n), change: make(chan struct{}, 1)}
}

// Sent records that refs left at t.
func (t *Tracker) Sent(refs []Ref, at time.Time) {
	ns := at.UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range refs {
		s := t.sent[r.Station]
		for len(s) < r.Seq {
			s = append(s, 0)
		}
		s[r.Seq-1] = ns
		t.sent[r.Station] = s
	}
}

// Accepted records that refs were accepted (a transport that has no
// per-item answer, such as a raw publish, calls this directly).
func (t *Tracker) Accepted(refs []Ref) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.accepted = append(t.accepted, refs...)
	for _, r := range refs {
		if r.Seq > t.acc[r.Station] {
			t.acc[r.Station] = r.Seq
		}
	}
}

// Answered applies the ingest's per-item answer to refs.
func (t *Tracker) Answered(refs []Ref, ans feedAnswer) (acc, rej, dup int, reason string) {
	if len(ans.Results) != len(refs) {
		return 0, len(refs), 0, fmt.Sprintf("the answer has %d results for %d items", len(ans.Results), len(refs))
	}
	ok := make([]Ref, 0, len(refs))
	for i, r := range ans.Results {
		switch r.Status {
		case "accepted":
			acc++
			ok = append(ok, refs[i])
		case "duplicate":
			dup++
		default:
			rej++
			if reason == "" {
				reason = r.Status + ": " + r.Reason
			}
		}
	}
	t.Accepted(ok)
	return acc, rej, dup, reason
}

// liveFrame is a frame of /v1/live as far as it is read here: one entity
// ("state" frames) or several ("entities", if the gateway coalesces),
// decoded in one pass (every other member is skipped).
type liveFrame struct {
	Entity   *liveEntity  `json:"entity"`
	Entities []liveEntity `json:"entities"`
}

type liveEntity struct {
	Properties struct {
		Observation *struct {
			ID string `json:"id"`
		} `json:"observation"`
	} `json:"properties"`
}

// Frame records a live frame that arrived at t. The observations' ids are
// found by their compact key, as the gateway writes it, without decoding
// the frame: the client shares the machine with the hub it measures. A
// frame whose ids cannot be read so (spaced, or escaped) is decoded.
func (t *Tracker) Frame(msg []byte, at time.Time) {
	var ids [8]string
	found, ok := observationIDs(msg, ids[:0])
	if !ok {
		t.frameDecoded(msg, at)
		return
	}
	for _, id := range found {
		t.Seen(id, at)
	}
}

// observationKey starts an observation's id in a compact frame.
var observationKey = []byte(`"observation":{"id":"`)

// observationIDs appends the ids of msg's observations to dst; false when
// msg names an observation in another form (whitespace, an escaped id, a
// member before the id), which only decoding reads right.
func observationIDs(msg []byte, dst []string) ([]string, bool) {
	named := bytes.Count(msg, []byte(`"observation"`))
	for rest := msg; ; {
		i := bytes.Index(rest, observationKey)
		if i < 0 {
			break
		}
		rest = rest[i+len(observationKey):]
		j := bytes.IndexByte(rest, '"')
		if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
			return dst, false
		}
		dst = append(dst, string(rest[:j]))
		rest = rest[j+1:]
	}
	return dst, len(dst) == named
}

// frameDecoded is Frame by decoding msg.
func (t *Tracker) frameDecoded(msg []byte, at time.Time) {
	var f liveFrame
	if json.Unmarshal(msg, &f) != nil {
		return
	}
	if f.Entity != nil {
		f.Entities = append(f.Entities, *f.Entity)
	}
	for _, e := range f.Entities {
		if e.Properties.Observation != nil {
			t.Seen(e.Properties.Observation.ID, at)
		}
	}
}

// Seen records that the observation with this id was shown at at.
func (t *Tracker) Seen(id string, at time.Time) {
	r, ok := t.g.ParseID(id)
	if !ok {
		return
	}
	t.mu.Lock()
	if r.Seq > t.seen[r.Station] {
		t.seen[r.Station] = r.Seq
		if s := t.sent[r.Station]; r.Seq <= len(s) && s[r.Seq-1] != 0 {
			t.lat = append(t.lat, at.Sub(time.Unix(0, s[r.Seq-1])))
		}
	}
	t.mu.Unlock()
	t.wake()
}

func (t *Tracker) wake() {
	select {
	case t.change <- struct{}{}:
	default:
	}
}

// WaitChange waits for a frame (or d).
func (t *Tracker) WaitChange(d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-t.change:
	case <-tm.C:
	}
}

// Behind counts the stations whose newest accepted observation has not
// been seen.
func (t *Tracker) Behind() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for s := range t.acc {
		if t.seen[s] < t.acc[s] {
			n++
		}
	}
	return n
}

// Latencies returns how many observations were seen and their latency
// percentiles.
func (t *Tracker) Latencies() (n int, p50, p99, maxLat time.Duration) {
	t.mu.Lock()
	lat := slices.Clone(t.lat)
	t.mu.Unlock()
	if len(lat) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(lat)
	q := func(f float64) time.Duration { return lat[int(f*float64(len(lat)-1))] }
	return len(lat), q(0.50), q(0.99), lat[len(lat)-1]
}
