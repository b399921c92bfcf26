package aggregator

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twpayne/go-geom"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/feedcheck"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"

	"github.com/iochub/iochub/internal/wkbx"
)

// HeaderSource is the NATS header naming the feed source that sent an item.
const HeaderSource = ce.HeaderFeedSource

// decoded is one feed message made ready for the store: the event as it came
// (to be republished as state) and the row that stores it. Exactly one of the
// kind's pairs is set.
type decoded struct {
	kind     string
	province string
	unit     string
	event    ce.Event

	air        *iocv1.AirQualityObserved
	airRow     postgis.AirRow
	traffic    *iocv1.TrafficObserved
	trafficRow postgis.TrafficRow
	alert      *iocv1.Alert
	alertRow   postgis.AlertRow
	report     *iocv1.Report
	reportRow  postgis.ReportRow
	water      *iocv1.WaterObserved
	waterRow   postgis.WaterRow
	weather    *iocv1.WeatherObserved
	weatherRow postgis.WeatherRow
	// aqi is the station's VN_AQI, set after the commit for the air rows that became a state.
	aqi *iocv1.AirQualityIndex
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
	switch kind {
	case subjects.KindAir:
		err = d.decodeAir(data, source, now)
	case subjects.KindTraffic:
		err = d.decodeTraffic(data, source, now)
	case subjects.KindAlert:
		err = d.decodeAlert(data, source, now)
	case subjects.KindReport:
		err = d.decodeReport(data, source, now)
	case subjects.KindWater:
		err = d.decodeWater(data, source, now)
	case subjects.KindWeather:
		err = d.decodeWeather(data, source, now)
	default:
		return d, fmt.Errorf("%w: kind %q on %s", ErrUnsupportedKind, kind, subject)
	}
	if err != nil {
		return d, fmt.Errorf("%w: %s on %s: %w", ErrBadMessage, kind, subject, err)
	}
	return d, nil
}

func (d *decoded) decodeAir(data []byte, source string, now time.Time) error {
	m := &iocv1.AirQualityObserved{}
	c, loc, err := decodeStation(data, m, source, now)
	if err != nil {
		return err
	}
	extra := map[string]any{}
	for name, v := range map[string]*float64{
		"pm1": m.Pm1, "nh3": m.Nh3, "no": m.No, "nox": m.Nox, "temperature": m.Temperature,
		"relativeHumidity": m.RelativeHumidity, "windSpeed": m.WindSpeed, "windDirection": m.WindDirection,
	} {
		if v != nil {
			extra[name] = *v
		}
	}
	for name, v := range m.GetOther() {
		if name == "" || strings.ContainsRune(name, 0) {
			return fmt.Errorf("other has an empty name or one with a NUL byte")
		}
		if _, taken := extra[name]; !taken {
			extra[name] = v
		}
	}
	for name, v := range extra {
		if f, ok := v.(float64); ok && !finite(f) {
			return fmt.Errorf("%s is %v; want a finite number", name, f)
		}
	}
	for name, v := range map[string]*float64{"pm25": m.Pm25, "pm10": m.Pm10, "no2": m.No2, "o3": m.O3, "co": m.Co, "so2": m.So2} {
		if v != nil && !finite(*v) {
			return fmt.Errorf("%s is %v; want a finite number", name, *v)
		}
	}
	d.air = m
	d.airRow = postgis.AirRow{
		SourceID: c.source, EventID: m.GetId(), StationID: m.GetEntityId(), Name: m.GetName(),
		Province: d.province, UnitCode: d.unit, ObservedAt: c.observed, ReceivedAt: c.received, Location: loc,
		PM25: m.Pm25, PM10: m.Pm10, NO2: m.No2, O3: m.O3, CO: m.Co, SO2: m.So2, Extra: extra,
	}
	return nil
}

func (d *decoded) decodeTraffic(data []byte, source string, now time.Time) error {
	m := &iocv1.TrafficObserved{}
	c, err := decodeObservation(data, m, source, now, func() error { return checkStation(m, m.GetLaneDirection()) })
	if err != nil {
		return err
	}
	var line *geom.LineString
	if t := c.location; t != nil {
		ls, ok := t.(*geom.LineString)
		if !ok {
			return fmt.Errorf("location is a %T; want a LineString", t)
		}
		if ls.NumCoords() < 2 {
			return fmt.Errorf("location has %d points; a LineString needs at least 2", ls.NumCoords())
		}
		line = ls
	}
	extra := map[string]any{}
	for name, v := range map[string]*float64{
		"intensity": m.Intensity, "occupancy": m.Occupancy, "averageVehicleSpeed": m.AverageVehicleSpeed,
		"averageVehicleLength": m.AverageVehicleLength, "averageHeadwayTime": m.AverageHeadwayTime,
	} {
		if v != nil && !finite(*v) {
			return fmt.Errorf("%s is %v; want a finite number", name, *v)
		}
	}
	if m.AverageVehicleLength != nil {
		extra["averageVehicleLength"] = *m.AverageVehicleLength
	}
	if m.AverageHeadwayTime != nil {
		extra["averageHeadwayTime"] = *m.AverageHeadwayTime
	}
	if m.GetLaneDirection() != "" {
		extra["laneDirection"] = m.GetLaneDirection()
	}
	d.traffic = m
	d.trafficRow = postgis.TrafficRow{
		SourceID: c.source, EventID: m.GetId(), SegmentID: m.GetEntityId(), Name: m.GetName(),
		Province: d.province, UnitCode: d.unit, ObservedAt: c.observed, ReceivedAt: c.received, Geom: line,
		Intensity: m.Intensity, Occupancy: m.Occupancy, AverageVehicleSpeed: m.AverageVehicleSpeed,
		Congested: m.Congested, LaneID: m.LaneId, Extra: extra,
	}
	return nil
}

// alertInfo is how an info block is kept in alert.info (jsonb): the names of
// the live contract; areas keep their description and geocodes, their
// geometry lives in alert.area.
type alertInfo struct {
	Language    string        `json:"language,omitempty"`
	Category    []string      `json:"category,omitempty"`
	Event       string        `json:"event,omitempty"`
	Urgency     string        `json:"urgency,omitempty"`
	Severity    string        `json:"severity,omitempty"`
	Certainty   string        `json:"certainty,omitempty"`
	Headline    string        `json:"headline,omitempty"`
	Description string        `json:"description,omitempty"`
	Instruction string        `json:"instruction,omitempty"`
	SenderName  string        `json:"senderName,omitempty"`
	Effective   *time.Time    `json:"effective,omitempty"`
	Onset       *time.Time    `json:"onset,omitempty"`
	Expires     *time.Time    `json:"expires,omitempty"`
	Areas       []alertAreaJS `json:"areas,omitempty"`
}

type alertAreaJS struct {
	AreaDesc string            `json:"areaDesc,omitempty"`
	Geocodes map[string]string `json:"geocodes,omitempty"`
}

func (d *decoded) decodeAlert(data []byte, source string, now time.Time) error {
	m := &iocv1.Alert{}
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Errorf("unmarshalling Alert: %w", err)
	}
	src, received, err := origin(m.GetOrigin(), source, now)
	if err != nil {
		return err
	}
	sent, err := required("sent", m.GetSent())
	if err != nil {
		return err
	}
	eventID := m.GetId()
	if eventID == "" {
		eventID = m.GetIdentifier()
	}
	texts := []string{m.GetSender(), m.GetStatus(), m.GetMsgType(), m.GetScope()}
	texts = append(texts, m.GetReferences()...)
	if err := checkText(map[string]string{"identifier": m.GetIdentifier()}, texts...); err != nil {
		return err
	}
	if err := storableText("id", eventID); err != nil {
		return err
	}
	var (
		infos   []alertInfo
		areas   []geom.T
		expires *time.Time
	)
	for i, in := range m.GetInfo() {
		ai := alertInfo{
			Language: in.GetLanguage(), Category: in.GetCategory(), Event: in.GetEvent(), Urgency: in.GetUrgency(),
			Severity: in.GetSeverity(), Certainty: in.GetCertainty(), Headline: in.GetHeadline(),
			Description: in.GetDescription(), Instruction: in.GetInstruction(), SenderName: in.GetSenderName(),
		}
		for name, ts := range map[string]*timestamppb.Timestamp{"effective": in.GetEffective(), "onset": in.GetOnset(), "expires": in.GetExpires()} {
			if ts == nil {
				continue
			}
			t, err := required(fmt.Sprintf("info[%d].%s", i, name), ts)
			if err != nil {
				return err
			}
			switch name {
			case "effective":
				ai.Effective = &t
			case "onset":
				ai.Onset = &t
			case "expires":
				ai.Expires = &t
				if expires == nil || t.After(*expires) {
					expires = &t
				}
			}
		}
		for j, a := range in.GetArea() {
			aj := alertAreaJS{AreaDesc: a.GetAreaDesc()}
			for _, gc := range a.GetGeocode() {
				if aj.Geocodes == nil {
					aj.Geocodes = map[string]string{}
				}
				aj.Geocodes[gc.GetValueName()] = gc.GetValue()
			}
			ai.Areas = append(ai.Areas, aj)
			if g := a.GetGeometry(); g != nil && len(g.GetWkb()) > 0 {
				t, err := decodeWKB(g.GetWkb())
				if err != nil {
					return fmt.Errorf("info[%d].area[%d]: %w", i, j, err)
				}
				switch t.(type) {
				case *geom.Point, *geom.Polygon, *geom.MultiPolygon:
				default:
					return fmt.Errorf("info[%d].area[%d] is a %T; want a Point, Polygon or MultiPolygon", i, j, t)
				}
				areas = append(areas, t)
			}
		}
		infos = append(infos, ai)
	}
	info, err := json.Marshal(infos)
	if err != nil {
		return fmt.Errorf("encoding info: %w", err)
	}
	if strings.Contains(string(info), `\u0000`) {
		return fmt.Errorf("info has a NUL character")
	}
	if infos == nil {
		info = []byte("[]")
	}
	var area geom.T
	switch len(areas) {
	case 0:
	case 1:
		area = areas[0]
	default:
		gc := geom.NewGeometryCollection()
		if err := gc.Push(areas...); err != nil {
			return fmt.Errorf("collecting areas: %w", err)
		}
		area = gc
	}
	d.alert = m
	d.alertRow = postgis.AlertRow{
		SourceID: src, EventID: eventID, Identifier: m.GetIdentifier(), Sender: m.GetSender(), Sent: sent,
		Status: m.GetStatus(), MsgType: m.GetMsgType(), Scope: m.GetScope(), Refs: m.GetReferences(),
		Info: info, Area: area, Expires: expires, Province: d.province, UnitCode: d.unit, ReceivedAt: received,
		Body: data,
	}
	return nil
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
	if c.observed, err = required("observed_at", m.GetObservedAt()); err != nil {
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
	return checkText(map[string]string{"id": m.GetId(), "entity_id": m.GetEntityId()}, append([]string{m.GetName()}, more...)...)
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
func checkText(requiredFields map[string]string, optional ...string) error {
	for name, v := range requiredFields {
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
	if _, ok := t.(*geom.GeometryCollection); ok {
		// go-geom panics on FlatCoords of a collection; no feed sends one.
		return nil, fmt.Errorf("a GeometryCollection is not accepted; send its parts as separate geometries")
	}
	if t.Layout() != geom.XY {
		return nil, fmt.Errorf("geometry has layout %v; want 2D (XY)", t.Layout())
	}
	flat := t.FlatCoords()
	for i := 0; i+1 < len(flat); i += 2 {
		lon, lat := flat[i], flat[i+1]
		if !finite(lon) || !finite(lat) || lon < -180 || lon > 180 || lat < -90 || lat > 90 {
			return nil, fmt.Errorf("coordinate (%v, %v) is not a longitude, latitude pair", lon, lat)
		}
	}
	switch g := t.(type) {
	case *geom.Point:
		if g.Empty() {
			return nil, fmt.Errorf("point is empty")
		}
	case *geom.Polygon:
		if err := checkRings(g); err != nil {
			return nil, err
		}
	case *geom.MultiPolygon:
		for i := 0; i < g.NumPolygons(); i++ {
			if err := checkRings(g.Polygon(i)); err != nil {
				return nil, fmt.Errorf("polygon %d: %w", i, err)
			}
		}
	}
	return t, nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// checkRings rejects what PostGIS refuses to load: rings of fewer than 4
// points or not closed.
func checkRings(p *geom.Polygon) error {
	if p.NumLinearRings() == 0 {
		return fmt.Errorf("polygon has no ring")
	}
	for i := 0; i < p.NumLinearRings(); i++ {
		r := p.LinearRing(i)
		n := r.NumCoords()
		if n < 4 {
			return fmt.Errorf("ring %d has %d points; want at least 4", i, n)
		}
		if !r.Coord(0).Equal(geom.XY, r.Coord(n-1)) {
			return fmt.Errorf("ring %d is not closed", i)
		}
	}
	return nil
}
