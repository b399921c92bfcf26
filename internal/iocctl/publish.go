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
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
)

const publishSynopsis = `publish KIND FILE [--url URL] [--token TOKEN] [--chunk N] [--chunk-bytes N] [--format auto|json|ndjson|geojson|cap] [--all] [--timeout 1m]

Sends FILE to POST /v1/feeds/KIND of the hub's ingest, in chunks of at most --chunk items and --chunk-bytes
bytes, with a progress bar on stderr, then prints one line per item that was not accepted (--all: every
item) and the totals. FILE is a JSON array or object, NDJSON (one item a line), a GeoJSON FeatureCollection,
or CAP 1.2 XML (alerts; sent whole). "-" reads stdin. The token is a source's token (ioc_…): identity keys
(iocid_…) read, they do not write feeds. Exits with an error when an item was rejected or not sent.`

// publishOpts are the flags of publish.
type publishOpts struct {
	hub        hubFlags
	chunk      int
	chunkBytes int
	format     string
	all        bool
	timeout    time.Duration
}

// chunk is one request's body and the items it holds.
type chunk struct {
	body        []byte
	contentType string
	first, n    int // index of its first item in the file, and how many
}

// itemResult is the ingest's answer for one item (services/ingest.Result).
type itemResult struct {
	Index     int    `json:"index"`
	Line      int    `json:"line"`
	Path      string `json:"path"`
	ID        string `json:"id"`
	Status    string `json:"status"`
	Reason    string `json:"reason"`
	Pointer   string `json:"pointer"`
	Unit      string `json:"unit"`
	Retryable bool   `json:"retryable"`
}

type feedAnswer struct {
	Accepted   int          `json:"accepted"`
	Duplicates int          `json:"duplicates"`
	Rejected   int          `json:"rejected"`
	Results    []itemResult `json:"results"`
}

func runPublish(ctx context.Context, args []string, env Env) error {
	var o publishOpts
	fs := newFlags(env, "publish", publishSynopsis)
	o.hub.register(fs, env, "")
	secretVar(fs, &o.hub.key, "token", env.Getenv("IOCCTL_TOKEN"), nil, "the source's bearer `token` (IOCCTL_TOKEN)")
	fs.IntVar(&o.chunk, "chunk", 500, "most items per request")
	fs.IntVar(&o.chunkBytes, "chunk-bytes", 4<<20, "most bytes per request (the ingest takes 8 MiB by default)")
	fs.StringVar(&o.format, "format", "auto", "auto (by extension, then content), json, ndjson, geojson or cap")
	fs.BoolVar(&o.all, "all", false, "print every item's result, accepted ones too")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "longest wait for the hub's answer to one request")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 2 {
		fs.Usage()
		return ErrUsage
	}
	kind, file := rest[0], rest[1]
	if o.chunk < 1 || o.chunkBytes < 1024 {
		return errors.New("--chunk must be at least 1 and --chunk-bytes at least 1024")
	}
	if o.timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	var data []byte
	if file == "-" {
		data, err = io.ReadAll(env.Stdin)
	} else {
		data, err = os.ReadFile(file) //nolint:gosec // G304: sending the file the user names is the command's purpose
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", file, err)
	}
	format := o.format
	if format == "auto" {
		format = sniffFormat(file, data)
	}
	chunks, err := split(format, data, o.chunk, o.chunkBytes)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	total := 0
	for _, c := range chunks {
		total += c.n
	}
	bar := progressbar.NewOptions(total,
		progressbar.OptionSetWriter(env.Stderr),
		progressbar.OptionSetDescription("publishing "+kind),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("items"),
		progressbar.OptionShowIts(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(env.Stderr) }),
	)
	var (
		sum     feedAnswer
		notSent int // answered rejected with retryable: counted in sum.Rejected too
		sent    int // items of the chunks the ingest answered
		lines   []string
	)
	// report prints what the ingest answered of the chunks sent so far, and
	// the totals: after a chunk the hub refused too, so that what the chunks
	// before it said is not lost.
	report := func() {
		for _, l := range lines {
			fmt.Fprintln(env.Stdout, l)
		}
		fmt.Fprintf(env.Stdout, "%d items: %d accepted, %d duplicate, %d rejected", total, sum.Accepted, sum.Duplicates, sum.Rejected-notSent)
		if notSent > 0 {
			fmt.Fprintf(env.Stdout, ", %d not published (retryable: send them again)", notSent)
		}
		if sent < total {
			fmt.Fprintf(env.Stdout, ", %d not sent", total-sent)
		}
		fmt.Fprintln(env.Stdout)
	}
	for _, c := range chunks {
		ans, err := postChunk(ctx, env, o.hub, kind, c, o.timeout)
		if err != nil {
			_ = bar.Exit()
			fmt.Fprintln(env.Stderr)
			report()
			return fmt.Errorf("items %d to %d: %w", c.first, c.first+c.n-1, err)
		}
		sent += c.n
		sum.Accepted += ans.Accepted
		sum.Duplicates += ans.Duplicates
		sum.Rejected += ans.Rejected
		for _, r := range ans.Results {
			if r.Retryable {
				notSent++
			}
			if r.Status == "accepted" && !o.all && !r.Retryable {
				continue
			}
			lines = append(lines, describe(c, r))
		}
		_ = bar.Add(c.n)
	}
	_ = bar.Finish()
	report()
	if sum.Rejected > 0 || notSent > 0 {
		return fmt.Errorf("%d rejected, %d not published", sum.Rejected-notSent, notSent)
	}
	return nil
}

// describe is the summary line of one item's result.
func describe(c chunk, r itemResult) string {
	var where string
	switch {
	case r.Path != "":
		where = r.Path
	default:
		where = "item " + strconv.Itoa(c.first+r.Index)
	}
	s := where
	if r.ID != "" {
		s += " (" + r.ID + ")"
	}
	s += ": " + r.Status
	if r.Retryable {
		s += " (not published; retryable)"
	}
	if r.Reason != "" {
		s += ": " + r.Reason
	}
	if r.Pointer != "" {
		s += " [" + r.Pointer + "]"
	}
	return s
}

// sniffFormat guesses the format of a file by its extension, then its content.
func sniffFormat(name string, data []byte) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".ndjson", ".jsonl":
		return "ndjson"
	case ".geojson":
		return "geojson"
	case ".xml", ".cap":
		return "cap"
	case ".json":
		return "json"
	}
	t := bytes.TrimSpace(data)
	if bytes.HasPrefix(t, []byte("<")) {
		return "cap"
	}
	if first, rest, ok := bytes.Cut(t, []byte("\n")); ok && json.Valid(first) && len(bytes.TrimSpace(rest)) > 0 {
		return "ndjson"
	}
	return "json"
}

// split cuts data into the chunks of format.
func split(format string, data []byte, maxItems, maxBytes int) ([]chunk, error) {
	switch format {
	case "cap":
		return []chunk{{body: data, contentType: "application/cap+xml", n: 1}}, nil
	case "ndjson":
		var items [][]byte
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 64<<10), maxBytes)
		for sc.Scan() {
			if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
				items = append(items, bytes.Clone(l))
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("reading NDJSON: %w", err)
		}
		return pack(items, maxItems, maxBytes, "application/x-ndjson", func(b [][]byte) []byte {
			return append(bytes.Join(b, []byte("\n")), '\n')
		})
	case "json", "geojson":
		var top json.RawMessage
		if err := json.Unmarshal(data, &top); err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		var items []json.RawMessage
		geo := false
		t := bytes.TrimSpace(top)
		switch {
		case bytes.HasPrefix(t, []byte("[")):
			if err := json.Unmarshal(t, &items); err != nil {
				return nil, err
			}
		case bytes.HasPrefix(t, []byte("{")):
			var fc struct {
				Type     string            `json:"type"`
				Features []json.RawMessage `json:"features"`
			}
			if json.Unmarshal(t, &fc) == nil && fc.Type == "FeatureCollection" {
				items, geo = fc.Features, true
			} else {
				items = []json.RawMessage{t}
			}
		default:
			return nil, errors.New("want a JSON array, an object or a GeoJSON FeatureCollection")
		}
		raw := make([][]byte, len(items))
		for i, it := range items {
			raw[i] = it
		}
		return pack(raw, maxItems, maxBytes, "application/json", func(b [][]byte) []byte {
			body := append([]byte("["), bytes.Join(b, []byte(","))...)
			body = append(body, ']')
			if geo {
				return append(append([]byte(`{"type":"FeatureCollection","features":`), body...), '}')
			}
			return body
		})
	}
	return nil, fmt.Errorf("--format %q: want json, ndjson, geojson or cap", format)
}

// pack groups items into chunks of at most maxItems and about maxBytes.
func pack(items [][]byte, maxItems, maxBytes int, contentType string, join func([][]byte) []byte) ([]chunk, error) {
	if len(items) == 0 {
		return nil, errors.New("no item")
	}
	var out []chunk
	start, size := 0, 0
	flush := func(end int) {
		out = append(out, chunk{body: join(items[start:end]), contentType: contentType, first: start, n: end - start})
		start, size = end, 0
	}
	for i, it := range items {
		if len(it)+64 > maxBytes {
			return nil, fmt.Errorf("item %d has %d bytes, more than --chunk-bytes %d", i, len(it), maxBytes)
		}
		if i > start && (i-start >= maxItems || size+len(it)+64 > maxBytes) {
			flush(i)
		}
		size += len(it) + 1
	}
	flush(len(items))
	return out, nil
}

// maxAttempts bounds the tries of one chunk refused for load (429, 503).
const maxAttempts = 5

// postChunk sends one chunk, retrying while the hub asks to wait; each try
// waits at most timeout for the whole answer.
func postChunk(ctx context.Context, env Env, hub hubFlags, kind string, c chunk, timeout time.Duration) (feedAnswer, error) {
	for attempt := 1; ; attempt++ {
		ans, ref, err := postOnce(ctx, env, hub, kind, c, timeout)
		if err != nil || ref == nil {
			return ans, err
		}
		if (ref.status != http.StatusTooManyRequests && ref.status != http.StatusServiceUnavailable) || attempt >= maxAttempts {
			return feedAnswer{}, ref.problem
		}
		wait := time.Duration(attempt) * time.Second
		if s, err := strconv.Atoi(ref.retryAfter); err == nil && s > 0 && s < 60 {
			wait = time.Duration(s) * time.Second
		}
		select {
		case <-ctx.Done():
			return feedAnswer{}, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// refusal is the hub's refusal of a request: its status, Retry-After and
// the problem it read.
type refusal struct {
	status     int
	retryAfter string
	problem    error
}

// postOnce makes one try of postChunk: the hub's answer, or its refusal, or
// an error.
func postOnce(ctx context.Context, env Env, hub hubFlags, kind string, c chunk, timeout time.Duration) (feedAnswer, *refusal, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hub.endpoint("/v1/feeds/"+kind), bytes.NewReader(c.body))
	if err != nil {
		return feedAnswer{}, nil, err
	}
	req.Header.Set("Content-Type", c.contentType)
	if hub.key != "" {
		req.Header.Set("Authorization", "Bearer "+hub.key)
	}
	late := func(err error) error {
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("no answer from the hub within --timeout %s: the chunk's items may be stored or not; publish them again (a stored item is answered duplicate): %w", timeout, err)
		}
		return err
	}
	resp, err := env.HTTP.Do(req)
	if err != nil {
		return feedAnswer{}, nil, late(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK {
		var ans feedAnswer
		if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
			return feedAnswer{}, nil, late(fmt.Errorf("reading the ingest's answer: %w", err))
		}
		return ans, nil, nil
	}
	return feedAnswer{}, &refusal{resp.StatusCode, resp.Header.Get("Retry-After"), readProblem(resp)}, nil
}
