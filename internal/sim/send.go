package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Summary is what the ingest said about the items of one batch.
type Summary struct {
	Accepted, Duplicate, Rejected int
	FirstRejectedID               string // id of the first rejected item, if the answer names it
	FirstReason                   string // why the first rejected item was rejected
	// Retry lists the indexes (in the batch sent) of items that were valid but
	// not published ("retryable": true); they are not counted as rejected.
	Retry []int
}

// itemResult is one entry of the ingest's per-item answer. The decoder is
// lenient: the status may be spelt "status" or "result", the id "id" or
// "itemId", the reason "reason", "detail" or "error".
type itemResult struct {
	Index  *int   `json:"index"`
	ID     string `json:"id"`
	ItemID string `json:"itemId"`
	Status string `json:"status"`
	Result string `json:"result"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
	Error  string `json:"error"`
	// Retryable marks an item the ingest could not publish yet (NATS down).
	Retryable bool `json:"retryable"`
}

// answer is the body of a 2xx answer or of an RFC 9457 problem document.
type answer struct {
	Results []itemResult `json:"results"`
	Items   []itemResult `json:"items"`
	Errors  []itemResult `json:"errors"`
	Title   string       `json:"title"`
	Detail  string       `json:"detail"`
}

// ParseAnswer reads the ingest's answer to a batch: a JSON object with a list
// of per-item results under "results" (or "items"; a problem document's
// rejected items under "errors"). An item's status is accepted, duplicate or
// rejected; an item listed under "errors" without a status counts as rejected;
// an item marked "retryable" with its index goes to Summary.Retry.
// A body that is empty or not JSON is an error saying so.
func ParseAnswer(body []byte) (Summary, error) {
	var sum Summary
	if len(bytes.TrimSpace(body)) == 0 {
		return sum, errors.New("empty answer body")
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		return sum, fmt.Errorf("decoding ingest answer: %w", err)
	}
	add := func(r itemResult, dflt string) {
		if r.Retryable && r.Index != nil {
			sum.Retry = append(sum.Retry, *r.Index)
			return
		}
		status := strings.ToLower(r.Status)
		if status == "" {
			status = strings.ToLower(r.Result)
		}
		if status == "" {
			status = dflt
		}
		switch status {
		case "accepted", "ok", "created":
			sum.Accepted++
		case "duplicate":
			sum.Duplicate++
		default:
			sum.Rejected++
			if sum.Rejected == 1 {
				sum.FirstRejectedID = firstNonEmpty(r.ID, r.ItemID)
				if sum.FirstRejectedID == "" && r.Index != nil {
					sum.FirstRejectedID = "#" + strconv.Itoa(*r.Index)
				}
				sum.FirstReason = firstNonEmpty(r.Reason, r.Detail, r.Error, status)
			}
		}
	}
	for _, r := range a.Results {
		add(r, "")
	}
	for _, r := range a.Items {
		add(r, "")
	}
	for _, r := range a.Errors {
		add(r, "rejected")
	}
	return sum, nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// retryable marks an attempt that failed in a way another attempt may fix.
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// send POSTs one batch of items of kind as a JSON array, retrying with
// exponential backoff and jitter on network errors, 5xx and 429, and again
// for the items a 202 marks retryable. Items have stable ids, so a retry of
// an item the ingest already took is answered duplicate, never stored twice.
func (s *Sim) send(ctx context.Context, kind string, items []json.RawMessage) error {
	if len(items) == 0 {
		return nil
	}
	url := s.feedsURL + kind
	delay := s.cfg.RetryBase
	pending := items
	total := Summary{}
	for attempt := 1; ; attempt++ {
		sum, err := s.post(ctx, kind, url, joinArray(pending))
		if err == nil {
			total.Accepted += sum.Accepted
			total.Duplicate += sum.Duplicate
			total.Rejected += sum.Rejected
			if total.FirstReason == "" {
				total.FirstRejectedID, total.FirstReason = sum.FirstRejectedID, sum.FirstReason
			}
			var again []json.RawMessage
			for _, i := range sum.Retry {
				if i >= 0 && i < len(pending) {
					again = append(again, pending[i])
				}
			}
			if len(again) == 0 {
				s.delivered(kind, len(items), total, attempt)
				return nil
			}
			pending = again
			err = retryable{fmt.Errorf("posting to %s: %d items not published yet", url, len(again))}
		}
		var rt retryable
		if !errors.As(err, &rt) || attempt >= s.cfg.MaxAttempts || ctx.Err() != nil {
			s.stats.failed.Add(1)
			s.metrics.batches.WithLabelValues(kind, "failed").Inc()
			s.log.Error("batch not delivered", "kind", kind, "items", len(pending), "attempts", attempt, "err", err)
			if errors.As(err, &rt) {
				return fmt.Errorf("%w: %s batch of %d items after %d attempts: %w", ErrBatchFailed, kind, len(pending), attempt, err)
			}
			return fmt.Errorf("sending %s batch: %w", kind, err)
		}
		s.stats.retries.Add(1)
		s.metrics.retries.WithLabelValues(kind).Inc()
		wait := delay/2 + time.Duration(s.retryRNG.Int64N(int64(delay)+1))
		s.log.Warn("batch retry", "kind", kind, "attempt", attempt, "wait", wait, "err", err)
		select {
		case <-ctx.Done():
			s.stats.failed.Add(1)
			s.metrics.batches.WithLabelValues(kind, "failed").Inc()
			return fmt.Errorf("sending %s batch: %w", kind, ctx.Err())
		case <-time.After(wait):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// delivered counts and logs a batch the ingest answered for every item.
func (s *Sim) delivered(kind string, n int, sum Summary, attempts int) {
	s.stats.batches.Add(1)
	s.stats.items.Add(int64(n))
	s.stats.accepted.Add(int64(sum.Accepted))
	s.stats.duplicate.Add(int64(sum.Duplicate))
	s.stats.rejected.Add(int64(sum.Rejected))
	s.metrics.batches.WithLabelValues(kind, "delivered").Inc()
	s.metrics.items.WithLabelValues(kind, "accepted").Add(float64(sum.Accepted))
	s.metrics.items.WithLabelValues(kind, "duplicate").Add(float64(sum.Duplicate))
	s.metrics.items.WithLabelValues(kind, "rejected").Add(float64(sum.Rejected))
	// Every few seconds per kind: debug, or the demo's console scrolls away.
	s.log.Debug("batch sent", "kind", kind, "items", n, "accepted", sum.Accepted,
		"duplicate", sum.Duplicate, "rejected", sum.Rejected, "attempts", attempts)
	if sum.Rejected > 0 {
		s.log.Warn("items rejected", "kind", kind, "rejected", sum.Rejected,
			"first_id", sum.FirstRejectedID, "first_reason", sum.FirstReason)
	}
}

// joinArray writes items as one JSON array.
func joinArray(items []json.RawMessage) []byte {
	n := 2
	for _, it := range items {
		n += len(it) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, ']')
}

// encodeItems marshals each item once, so retries resend the same bytes.
func encodeItems[T any](items []T) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, len(items))
	for i := range items {
		b, err := json.Marshal(&items[i])
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// post makes one attempt. A 2xx answer yields its summary (an unreadable
// 2xx body is logged and counted as accepted by nobody); 4xx other than 429
// is ErrRejected with the problem's title and detail.
func (s *Sim) post(ctx context.Context, kind, url string, body []byte) (Summary, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Summary{}, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("Authorization", "Bearer "+s.cfg.Token)
	req.Header.Set("User-Agent", "iocsim/1")
	resp, err := s.client.Do(req)
	if err != nil {
		return Summary{}, retryable{err} // *url.Error already names the method and URL
	}
	defer resp.Body.Close()
	answerBody, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return Summary{}, retryable{fmt.Errorf("reading answer of %s: %w", url, err)}
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		sum, err := ParseAnswer(answerBody)
		if err != nil {
			s.log.Warn("unreadable ingest answer", "url", url, "status", resp.StatusCode, "err", err)
		}
		return sum, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return Summary{}, retryable{fmt.Errorf("posting to %s: status %d: %s", url, resp.StatusCode, snippet(answerBody))}
	default:
		sum, perr := ParseAnswer(answerBody)
		if perr == nil && sum.Rejected > 0 {
			s.stats.rejected.Add(int64(sum.Rejected))
			s.metrics.items.WithLabelValues(kind, "rejected").Add(float64(sum.Rejected))
			s.log.Warn("items rejected", "kind", kind, "status", resp.StatusCode, "rejected", sum.Rejected,
				"first_id", sum.FirstRejectedID, "first_reason", sum.FirstReason)
		}
		return Summary{}, fmt.Errorf("%w: posting to %s: status %d: %s", ErrRejected, url, resp.StatusCode, snippet(answerBody))
	}
}

// snippet is the start of a body for an error message.
func snippet(b []byte) string {
	const max = 300
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
