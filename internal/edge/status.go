package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The edge's record of the items it lost (docs/edge.md, "The link-loss
// budget"), kept for the hub: UnsentWatch writes it in the KV bucket
// StatusBucket of the edge's own JetStream, and the hub reads it across the
// leaf connection through the edge's domain (ReadUnsent; iochub edge-list),
// as its sourcing reads the edge's FEEDS. It lives in the same store as the
// edge's FEEDS, so it lasts as long as the sequences it names.

// StatusBucket is the KV bucket, in the edge's JetStream domain, of what the
// edge keeps for the hub to read: its record of lost items, key UnsentKey.
const StatusBucket = "edge_status"

// UnsentKey is the key of the UnsentRecord in StatusBucket.
const UnsentKey = "unsent"

// ErrNoUnsentRecord is returned by ReadUnsent for an edge that keeps no
// record of its lost items (an iochub edge older than the record).
var ErrNoUnsentRecord = errors.New("the edge keeps no record of lost items")

// UnsentRecord is an edge's record of the items it accepted that left its
// FEEDS before the hub copied them.
type UnsentRecord struct {
	// Total is how many items the edge counted lost since its store was
	// created, across its restarts (its metric counts those of one run).
	Total uint64 `json:"total"`
	// Last is the latest run of items counted lost, merged with the runs
	// just before it (a run that left over several looks); nil when none.
	Last *LostRun `json:"last,omitempty"`
	// Counted are the latest runs counted (at most maxLostSpans, latest
	// last): a restarted edge does not count them again when the hub
	// resumes from before them.
	Counted []Span `json:"counted,omitempty"`
	// UpdatedAt is when the edge last wrote the record.
	UpdatedAt time.Time `json:"updated_at"`
}

// LostRun is a run of sequences of the edge's FEEDS counted lost.
type LostRun struct {
	FromSeq uint64 `json:"from_seq"`
	ToSeq   uint64 `json:"to_seq"`
	// StoredAfter and StoredBefore bound when the edge stored them; zero when not known.
	StoredAfter  time.Time `json:"stored_after,omitzero"`
	StoredBefore time.Time `json:"stored_before,omitzero"`
	// Found is how the edge found them lost, as its log says it: "expired"
	// or "hub resumed before them".
	Found string `json:"found"`
	// DetectedAt is when the edge counted them.
	DetectedAt time.Time `json:"detected_at"`
}

// lostRun describes l, counted at now.
func lostRun(l loss, now time.Time) *LostRun {
	found := "expired"
	if l.AtResume {
		found = "hub resumed before them"
	}
	return &LostRun{FromSeq: l.From, ToSeq: l.To, StoredAfter: l.StoredAfter, StoredBefore: l.StoredBefore, Found: found, DetectedAt: now}
}

// setLast makes run the last run of r, merged with the last one when it
// continues it: one run that left over several looks is named whole.
func (r *UnsentRecord) setLast(run *LostRun) {
	if p := r.Last; p != nil && p.ToSeq+1 == run.FromSeq {
		run.FromSeq, run.StoredAfter = p.FromSeq, p.StoredAfter
	}
	r.Last = run
}

// statusBucket creates or opens the edge's StatusBucket on js (the edge's
// own JetStream): one value per key, on disk beside FEEDS.
func statusBucket(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      StatusBucket,
		Description: "What this edge node keeps for the hub to read: its record of lost items (docs/edge.md)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    1,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the edge's bucket %s: %w", StatusBucket, err)
	}
	return kv, nil
}

// readUnsentRecord reads the record in kv; ErrNoUnsentRecord when there is none.
func readUnsentRecord(ctx context.Context, kv jetstream.KeyValue) (UnsentRecord, error) {
	e, err := kv.Get(ctx, UnsentKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return UnsentRecord{}, ErrNoUnsentRecord
	}
	if err != nil {
		return UnsentRecord{}, fmt.Errorf("reading %s/%s: %w", StatusBucket, UnsentKey, err)
	}
	r, err := decodeUnsentRecord(e.Value())
	if err != nil {
		return UnsentRecord{}, fmt.Errorf("reading %s/%s: %w", StatusBucket, UnsentKey, err)
	}
	return r, nil
}

// maxRecordBytes bounds a record the hub reads: an edge writes a few
// hundred bytes (at most maxLostSpans runs), and what an edge serves is
// untrusted.
const maxRecordBytes = 64 << 10

// ErrBadUnsentRecord is returned for a record that is not one: over
// maxRecordBytes, not JSON of an UnsentRecord, or with more runs than an
// edge keeps.
var ErrBadUnsentRecord = errors.New("malformed record of lost items")

// decodeUnsentRecord reads a record as an edge serves it.
func decodeUnsentRecord(b []byte) (UnsentRecord, error) {
	if len(b) > maxRecordBytes {
		return UnsentRecord{}, fmt.Errorf("%w: %d bytes, over %d", ErrBadUnsentRecord, len(b), maxRecordBytes)
	}
	var r UnsentRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return UnsentRecord{}, fmt.Errorf("%w: %w", ErrBadUnsentRecord, err)
	}
	if len(r.Counted) > maxLostSpans {
		return UnsentRecord{}, fmt.Errorf("%w: %d counted runs, over %d", ErrBadUnsentRecord, len(r.Counted), maxLostSpans)
	}
	return r, nil
}

// writeUnsentRecord stores r in kv.
func writeUnsentRecord(ctx context.Context, kv jetstream.KeyValue, r UnsentRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding the record of lost items: %w", err)
	}
	if _, err := kv.Put(ctx, UnsentKey, b); err != nil {
		return fmt.Errorf("writing %s/%s: %w", StatusBucket, UnsentKey, err)
	}
	return nil
}

// ReadUnsent reads the record of lost items of an edge through js, a
// JetStream of the edge's domain (jetstream.NewWithDomain) whose connection
// takes its replies under natsx.EdgeReplyInbox: the edge's leaf user may
// send the hub no other replies. It fails with ErrNoUnsentRecord for an
// edge that keeps none.
func ReadUnsent(ctx context.Context, js jetstream.JetStream) (UnsentRecord, error) {
	kv, err := js.KeyValue(ctx, StatusBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return UnsentRecord{}, ErrNoUnsentRecord
	}
	if err != nil {
		return UnsentRecord{}, fmt.Errorf("opening the edge's bucket %s: %w", StatusBucket, err)
	}
	return readUnsentRecord(ctx, kv)
}
