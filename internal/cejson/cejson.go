// Package cejson renders a message of the hub's streams as a CloudEvents 1.0
// event in the JSON format (application/cloudevents+json): the attributes
// from the ce-* headers, the stream sequence in the extension iocseq, and
// data as JSON decoded from the protobuf body (or the JSON body as it is).
// It also names the protobuf message of each subject: Message is the one
// place that maps the subjects of internal/subjects to their payloads.
package cejson

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// ContentType is the media type of one event in the JSON format.
const ContentType = "application/cloudevents+json"

// ExtSeq is the name of the extension attribute carrying the stream sequence.
const ExtSeq = "iocseq"

// ErrUnknownSubject is returned for a subject outside the hub's streams.
var ErrUnknownSubject = errors.New("subject of no stream of the hub")

// Message returns a new, empty protobuf message of the body of subject (nil
// for a JSON body: roll-ups), by the subject's stream and kind: feeds carry
// the kind's observation (TrafficObserved, AirQualityObserved, WaterObserved,
// WeatherObserved, Alert, Report; Observation for a registered kind), state
// EntityState, actions Action, dead letters the original feed item.
func Message(subject string) (proto.Message, error) {
	switch {
	case strings.HasPrefix(subject, subjects.FeedPrefix):
		_, _, kind, err := subjects.ParseFeed(subject)
		if err != nil {
			return nil, err
		}
		return feedMessage(kind), nil
	case strings.HasPrefix(subject, subjects.StatePrefix):
		return &iocv1.EntityState{}, nil
	case strings.HasPrefix(subject, subjects.RollupPrefix):
		return nil, nil
	case strings.HasPrefix(subject, subjects.ActionPrefix):
		return &iocv1.Action{}, nil
	case strings.HasPrefix(subject, subjects.DeadletterPrefix):
		_, kind, err := subjects.ParseDeadletter(subject)
		if err != nil {
			return nil, err
		}
		return feedMessage(kind), nil
	}
	return nil, fmt.Errorf("%q: %w", subject, ErrUnknownSubject)
}

// feedMessage is the message of a feed item of kind.
func feedMessage(kind string) proto.Message {
	switch kind {
	case subjects.KindTraffic:
		return &iocv1.TrafficObserved{}
	case subjects.KindAir:
		return &iocv1.AirQualityObserved{}
	case subjects.KindWater:
		return &iocv1.WaterObserved{}
	case subjects.KindWeather:
		return &iocv1.WeatherObserved{}
	case subjects.KindAlert:
		return &iocv1.Alert{}
	case subjects.KindReport:
		return &iocv1.Report{}
	}
	return &iocv1.Observation{}
}

// Event is one event in the CloudEvents JSON format.
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            *time.Time      `json:"time,omitempty"`
	DataContentType string          `json:"datacontenttype"`
	IocStream       string          `json:"iocstream,omitempty"`
	IocSeq          uint64          `json:"iocseq"`
	IocSubject      string          `json:"iocsubject"`
	Data            json.RawMessage `json:"data"`
}

var marshal = protojson.MarshalOptions{UseProtoNames: false, EmitUnpopulated: false}

// FromMsg renders the message published on subject with header h and body
// data, at stream sequence seq. Attributes missing from the headers are
// filled so the event stays valid: id "<stream>-<seq>", source "urn:ioc:hub".
// The NATS subject goes in the extension iocsubject.
func FromMsg(subject string, h nats.Header, data []byte, seq uint64) (Event, error) {
	e := Event{SpecVersion: ce.SpecVersion, ID: h.Get(ce.HeaderID), Source: h.Get(ce.HeaderSource), Type: h.Get(ce.HeaderType),
		Subject: h.Get(ce.HeaderSubject), DataContentType: "application/json", IocSeq: seq, IocSubject: subject}
	// A time RFC 3339 cannot write in UTC (a year before 0 or after 9999
	// once its offset is taken off: "0000-01-01T00:00:00+01:00") is left
	// out, as one that does not parse: the event would not encode.
	if t, err := time.Parse(time.RFC3339Nano, h.Get(ce.HeaderTime)); err == nil && t.UTC().Year() >= 0 && t.UTC().Year() <= 9999 {
		t = t.UTC()
		e.Time = &t
	}
	if e.ID == "" {
		e.ID = fmt.Sprintf("seq-%d", seq)
	}
	if e.Source == "" {
		e.Source = "urn:ioc:hub"
	}
	if e.Type == "" {
		e.Type = "vn.ioc.message.v1"
	}
	m, err := Message(subject)
	if err != nil {
		return e, err
	}
	if m == nil || strings.HasPrefix(h.Get(ce.HeaderContentType), ce.ContentTypeJSON) {
		if !json.Valid(data) {
			return e, fmt.Errorf("message %d on %s: body is not JSON", seq, subject)
		}
		e.Data = json.RawMessage(data)
		return e, nil
	}
	if err := proto.Unmarshal(data, m); err != nil {
		return e, fmt.Errorf("message %d on %s: decoding %s: %w", seq, subject, m.ProtoReflect().Descriptor().Name(), err)
	}
	b, err := marshal.Marshal(m)
	if err != nil {
		return e, fmt.Errorf("message %d on %s: %w", seq, subject, err)
	}
	e.Data = b
	return e, nil
}
