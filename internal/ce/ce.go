// Package ce carries CloudEvents 1.0 attributes in binary mode as NATS headers.
// NATS headers are case-sensitive, so keys are set on the map directly and never
// re-cased by http.Header's canonicalisation.
package ce

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// Header keys, spelt exactly as on the wire.
const (
	HeaderSpecVersion = "ce-specversion"
	HeaderID          = "ce-id"
	HeaderSource      = "ce-source"
	HeaderType        = "ce-type"
	HeaderTime        = "ce-time"
	HeaderSubject     = "ce-subject"
	HeaderContentType = "Content-Type"
)

// HeaderFeedSource is iochub's own header, next to the CloudEvents ones: the
// id of the feed source that sent an item (a row of the source table), set by
// the ingest on FEEDS and by the aggregator and the rules engine on what they
// publish there as a source of their own. Every package reads and writes it
// through this constant.
const HeaderFeedSource = "Iochub-Source"

// MsgID is the plain message id of an event the hub publishes on FEEDS as
// a source of its own (the rules engine, the report and stale sweeps), each
// of one kind, "<source id>/<event id>": its Nats-Msg-Id is this keyed with
// the hub's key (MsgIDKey.ID), and JetStream drops a second message with
// the same id within the FEEDS duplicate window.
func MsgID(sourceID, eventID string) string { return sourceID + "/" + eventID }

// FeedMsgID is the plain message id of an item the ingest publishes on
// FEEDS, "<source id>/<kind>/<event id>"; its Nats-Msg-Id is this keyed
// with the hub's key (MsgIDKey.FeedID). The store keys an event by its kind (each
// kind has its table) and its source and event id, so the message id has
// all three: one station's air and weather observations under one id and
// time are two events, neither a duplicate of the other. Neither a source
// id nor a kind holds a '/', so two different triples never make one id.
func FeedMsgID(sourceID, kind, eventID string) string {
	return sourceID + "/" + kind + "/" + eventID
}

// SpecVersion is the CloudEvents version iochub speaks.
const SpecVersion = "1.0"

// ContentTypeProtobuf is the body type of every iochub event on NATS.
const ContentTypeProtobuf = "application/protobuf"

// ErrMissingAttribute is returned when a required CloudEvents header is absent.
var ErrMissingAttribute = errors.New("missing CloudEvents attribute")

// Event holds the CloudEvents attributes of one message.
type Event struct {
	ID      string    // ce-id: the event id, unique per source
	Source  string    // ce-source: urn:ioc:<province>:<unit>
	Type    string    // ce-type, e.g. vn.ioc.air.observed.v1
	Subject string    // ce-subject: the entity id
	Time    time.Time // ce-time: when the thing happened
}

// SourceURN is the ce-source of events from a unit.
func SourceURN(province, unit string) string { return "urn:ioc:" + province + ":" + unit }

// ObservedType is the ce-type of an observation of kind, e.g. vn.ioc.air.observed.v1.
func ObservedType(kind string) string { return "vn.ioc." + kind + ".observed.v1" }

// AlertType is the ce-type of an alert as issued by its source.
const AlertType = "vn.ioc.alert.issued.v1"

// StateType is the ce-type of an entity's latest state on a layer.
func StateType(layer string) string { return "vn.ioc." + layer + ".state.v1" }

// RollupType is the ce-type of a roll-up of a layer (a JSON body, docs/rollups.md).
func RollupType(layer string) string { return "vn.ioc." + layer + ".rollup.v1" }

// ContentTypeJSON is the Content-Type of a JSON body.
const ContentTypeJSON = "application/json"

// Header returns the attributes as NATS headers, with Content-Type application/protobuf.
func (e Event) Header() nats.Header {
	h := make(nats.Header, 8)
	e.SetOn(h)
	return h
}

// SetOn writes the attributes into h. The values share one backing array
// (one allocation instead of one per header, on the ingest's path for every
// item); each is sliced with a capacity of 1, so an Add to one header
// reallocates it instead of overwriting the next.
func (e Event) SetOn(h nats.Header) {
	e.SetOnIn(h, make([]string, 0, HeaderValues))
}

// HeaderValues is the most values SetOn writes.
const HeaderValues = 7

// SetOnIn is SetOn with the values in v's backing array (len 0, room for
// HeaderValues), which the caller keeps for as long as h is used.
func (e Event) SetOnIn(h nats.Header, v []string) {
	set := func(k, val string) {
		v = append(v, val)
		h[k] = v[len(v)-1 : len(v) : len(v)]
	}
	set(HeaderSpecVersion, SpecVersion)
	set(HeaderID, e.ID)
	set(HeaderSource, e.Source)
	set(HeaderType, e.Type)
	if e.Subject != "" {
		set(HeaderSubject, e.Subject)
	}
	if !e.Time.IsZero() {
		set(HeaderTime, e.Time.UTC().Format(time.RFC3339Nano))
	}
	set(HeaderContentType, ContentTypeProtobuf)
}

// FromHeader reads the attributes back; id, source and type are required.
func FromHeader(h nats.Header) (Event, error) {
	get := func(k string) string {
		if v := h[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	e := Event{ID: get(HeaderID), Source: get(HeaderSource), Type: get(HeaderType), Subject: get(HeaderSubject)}
	for _, a := range [...][2]string{{HeaderID, e.ID}, {HeaderSource, e.Source}, {HeaderType, e.Type}} { // the first missing, always
		if a[1] == "" {
			return e, fmt.Errorf("reading %s: %w", a[0], ErrMissingAttribute)
		}
	}
	if t := get(HeaderTime); t != "" {
		tm, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return e, fmt.Errorf("reading %s %q: %w", HeaderTime, t, err)
		}
		e.Time = tm
	}
	return e, nil
}
