package aggregator

import (
	"fmt"
	"math"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twpayne/go-geom"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/feedcheck"
	"github.com/iochub/iochub/internal/geomcheck"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"

	"github.com/iochub/iochub/internal/wkbx"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// HeaderSource is the NATS header naming the feed source that sent an item.
const HeaderSource = ce.HeaderFeedSource

// decoded is one feed message made ready for the store: the event as it came
// (to be republished as state) and the row that stores it.
type decoded struct {
	kind     string
	ops      *kindOps // the aggregator's side of the kind
	province string
	unit     string
	source   string // the Iochub-Source header: who sent the event
	event    ce.Event

	msg proto.Message // the event as it came, e.g. *iocv1.AirQualityObserved
	// edited says a hook changed msg after it was decoded (the water
	// stations' alarm levels it left out): the feed's bytes no longer say it.
	edited bool
	row    any // the row the kind's store takes, e.g. postgis.AirRow
	// annot holds the fields of the entity's state that the kind's hooks
	// computed (the VN_AQI of an air station after the commit); nil when none.
	annot *iocv1.EntityState
	// rated is the VN_AQI rate gave an air row that is its station's only
	// row in the batch and was added to its hours; nil otherwise.
	rated *iocv1.AirQualityIndex
}

// decode turns a feed message into a row. Every failure wraps ErrBadMessage
// and says what was wrong.
func decode(subject string, h nats.Header, data []byte, now time.Time) (decoded, error) {
	var d decoded
	province, unit, kind, err := subjects.ParseFeed(subject)
	if err != nil {
		return d, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	if province == "" || unit == "" {
		return d, fmt.Errorf("%w: subject %q has an empty province or unit", ErrBadMessage, subject)
	}
	d.kind, d.province, d.unit = kind, province, unit
	if d.event, err = ce.FromHeader(h); err != nil {
		return d, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	source := ""
	if v := h[HeaderSource]; len(v) > 0 {
		source = v[0]
	}
	ops, ok := lookupKind(kind)
	if !ok {
		return d, fmt.Errorf("%w: kind %q on %s", ErrUnsupportedKind, kind, subject)
	}
	d.ops, d.source = ops, source
	err = ops.decode(&d, data, source, now)
	if err != nil {
		return d, fmt.Errorf("%w: %s on %s: %w", ErrBadMessage, kind, subject, err)
	}
	return d, nil
}

// observation is what every observation message (air, traffic, water,
// weather, report) has: the generated getters decodeObservation reads.
type observation interface {
	proto.Message
	GetOrigin() *iocv1.Origin
	GetObservedAt() *timestamppb.Timestamp
	GetLocation() *iocv1.Geometry
}

// observed is what decodeObservation reads from every observation.
type observed struct {
	source   string
	received time.Time
	observed time.Time
	location geom.T // nil when the message has none
}

// decodeObservation unmarshals data into m and checks, in this order, its
// origin, its observed_at, its text fields (checkTexts, called once m is
// filled) and its location, which it decodes.
func decodeObservation(data []byte, m observation, source string, now time.Time, checkTexts func() error) (observed, error) {
	var c observed
	if err := proto.Unmarshal(data, m); err != nil {
		return c, fmt.Errorf("unmarshalling %s: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	var err error
	if c.source, c.received, err = origin(m.GetOrigin(), source, now); err != nil {
		return c, err
	}
	if c.observed, err = requiredEvent("observed_at", m.GetObservedAt()); err != nil {
		return c, err
	}
	if err := checkTexts(); err != nil {
		return c, err
	}
	if g := m.GetLocation(); g != nil && len(g.GetWkb()) > 0 {
		if c.location, err = decodeWKB(g.GetWkb()); err != nil {
			return c, fmt.Errorf("location: %w", err)
		}
	}
	return c, nil
}

// station is an observation of a station or road segment.
type station interface {
	GetId() string
	GetEntityId() string
	GetName() string
}

// checkStation checks the text fields of a station's observation: id and
// entity_id are required; name and more must hold no NUL byte.
func checkStation(m station, more ...string) error {
	return checkText([][2]string{{"id", m.GetId()}, {"entity_id", m.GetEntityId()}}, append([]string{m.GetName()}, more...)...)
}

// decodeStation is decodeObservation for the observation of a station (air,
// water, weather): its text fields are checkStation's, its location an
// optional Point.
func decodeStation(data []byte, m interface {
	observation
	station
}, source string, now time.Time) (observed, *geom.Point, error) {
	c, err := decodeObservation(data, m, source, now, func() error { return checkStation(m) })
	if err != nil {
		return c, nil, err
	}
	loc, err := pointLocation(c.location)
	return c, loc, err
}

// pointLocation is the optional Point of a station's observation.
func pointLocation(t geom.T) (*geom.Point, error) {
	if t == nil {
		return nil, nil
	}
	p, ok := t.(*geom.Point)
	if !ok {
		return nil, fmt.Errorf("location is a %T; want a Point", t)
	}
	return p, nil
}

// origin returns the source id (the header wins over the body) and the time
// the hub received the item (now when the body does not say).
func origin(o *iocv1.Origin, header string, now time.Time) (string, time.Time, error) {
	src := header
	if src == "" {
		src = o.GetSourceId()
	}
	if src == "" {
		return "", time.Time{}, fmt.Errorf("no source: neither the %s header nor origin.source_id is set", HeaderSource)
	}
	if err := storableText("source id", src); err != nil {
		return "", time.Time{}, err
	}
	received := now
	if ts := o.GetReceivedAt(); ts != nil {
		t, err := required("origin.received_at", ts)
		if err != nil {
			return "", time.Time{}, err
		}
		received = t
	}
	return src, received, nil
}

// requiredEvent is required for an event's own time (observed, sent),
// which the roll-ups' windows bound further (feedcheck.EventTime).
func requiredEvent(field string, ts *timestamppb.Timestamp) (time.Time, error) {
	t, err := required(field, ts)
	if err == nil {
		err = feedcheck.EventTime(field, t)
	}
	return t, err
}

// required reads a timestamp that must be present and valid.
func required(field string, ts *timestamppb.Timestamp) (time.Time, error) {
	if ts == nil {
		return time.Time{}, fmt.Errorf("%s is missing", field)
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", field, err)
	}
	t := ts.AsTime()
	// The ingest refuses the same range (feedcheck.Time) before accepting.
	if err := feedcheck.Time(field, t); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// checkText rejects empty required fields, and invalid UTF-8 and NUL bytes
// in any field, which PostgreSQL text cannot hold (a row that cannot be
// stored would fail its whole batch). An id too long to index is left to the
// store, whose refusal terminates the message alone; the ingest bounds ids
// far below that (feedcheck.MaxIDBytes).
func checkText(requiredFields [][2]string, optional ...string) error {
	for _, f := range requiredFields { // in order: the error names the first
		name, v := f[0], f[1]
		if v == "" {
			return fmt.Errorf("%s is empty", name)
		}
		if err := storableText(name, v); err != nil {
			return err
		}
	}
	for _, v := range optional {
		if err := storableText("a text field", v); err != nil {
			return err
		}
	}
	return nil
}

// storableText is feedcheck.Text without a length bound; the ingest applies
// it with bounds, and to every text of the event.
func storableText(field, s string) error { return feedcheck.Text(field, s, math.MaxInt) }

func decodeWKB(b []byte) (geom.T, error) {
	t, err := wkbx.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("decoding WKB: %w", err)
	}
	if err := geomcheck.Storable(t); err != nil {
		return nil, err
	}
	// The geometry is this decoder's own: its SRID is set in place (the
	// store's WithSRID then has nothing to copy, and the goroutines that
	// encode a batch's rows share it unchanged).
	return geom.SetSRID(t, postgis.SRID)
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
