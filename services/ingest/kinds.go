package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/feedcheck"
	"github.com/iochub/iochub/internal/kind"
	"github.com/iochub/iochub/internal/seal"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/units"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// shapeRule says how an item's geometry places it in a unit.
type shapeRule int

const (
	// shapePoint: the point must lie in the unit.
	shapePoint shapeRule = iota
	// shapeLine: the middle vertex must lie in the unit, every vertex in the unit's province.
	shapeLine
	// shapeAreas: at least one area must meet the unit (alerts; areas may be absent).
	shapeAreas
)

// parsed is an item that passed the checks of its kind and waits for its unit.
type parsed struct {
	id       string // the item's own id
	eventID  string // ce-id and the proto's id
	entityID string // ce-subject: station, segment or alert identifier
	time     time.Time
	shape    shapeRule
	geoms    []Geometry
	// geom1 backs geoms when there is one geometry.
	geom1 [1]Geometry
	// geomPointer is where the geometry is in the item, for messages.
	geomPointer string
	msg         proto.Message
	// finish fills Origin (and other source-dependent fields) before marshalling.
	finish func(o *iocv1.Origin)
	// areaScope, for alerts, checks that every area lies where a source bound
	// to unit may alert (Config.AlertScope); see alertscope.go.
	areaScope func(ix *units.Index, unit, scope string) *itemError
}

// parseEnv is what parsing depends on besides the item.
type parseEnv struct {
	now       time.Time
	maxFuture time.Duration
	// maxAge is Config.MaxAge: 0 means no limit but feedcheck.MinTime.
	maxAge time.Duration
	// seal seals a report's contact; nil when the hub has no seal key.
	seal *seal.Sealer
}

// kindSpec is one kind of feed the ingest takes. A built-in kind has one
// entry in kindSpecs and its parse function in a file of its own (air and
// traffic here, water.go, weather.go, report.go, alert.go); a kind registered
// with internal/kind needs neither: lookupSpec makes its spec (registered.go).
type kindSpec struct {
	kind   string
	ceType string
	// parse checks an item's "type" member and reads the rest.
	parse func(f fields, env parseEnv) (*parsed, *itemError)
	// capXML says the kind takes CAP XML bodies too (alerts).
	capXML bool
	// msgID is the plain message id FEEDS deduplicates an item of the kind
	// on, once parsed and finished, before the ingest keys it
	// (ce.MsgIDKey.ID); nil means its source, kind and event id
	// (ce.FeedMsgID).
	msgID func(source string, it *parsed) string
}

var kindSpecs = map[string]kindSpec{
	subjects.KindAir:     {kind: subjects.KindAir, ceType: ce.ObservedType(subjects.KindAir), parse: parseAir},
	subjects.KindTraffic: {kind: subjects.KindTraffic, ceType: ce.ObservedType(subjects.KindTraffic), parse: parseTraffic},
	subjects.KindAlert:   {kind: subjects.KindAlert, ceType: ce.AlertType, parse: parseAlert, capXML: true, msgID: alertMsgID},
	subjects.KindReport:  {kind: subjects.KindReport, ceType: ce.ObservedType(subjects.KindReport), parse: parseReport},
	subjects.KindWater:   {kind: subjects.KindWater, ceType: ce.ObservedType(subjects.KindWater), parse: parseWater},
	subjects.KindWeather: {kind: subjects.KindWeather, ceType: ce.ObservedType(subjects.KindWeather), parse: parseWeather},
}

// supportedKinds lists the kinds for messages, in a stable order: the
// built-in ones, then the registered ones.
func supportedKinds() []string {
	var ks []string
	for k := range kindSpecs {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return append(ks, kind.Default.Names()...)
}

// itemID reads the required id.
func itemID(f fields) (string, *itemError) {
	id, ok, err := f.str("id")
	if err != nil {
		return "", err
	}
	if !ok || strings.TrimSpace(id) == "" {
		return "", missing("id")
	}
	// The id becomes a NATS header, the message id and part of a primary key.
	if err := feedcheck.ID("id", id); err != nil {
		return "", &itemError{pointer: "id", reason: err.Error()}
	}
	return id, nil
}

// checkType rejects an item whose type names another kind; no want takes
// any type.
func checkType(f fields, want ...string) *itemError {
	if len(want) == 0 {
		return nil
	}
	if raw, ok := f.value("type"); ok && bytes.IndexByte(raw, '\\') < 0 {
		for _, w := range want {
			if isJSONString(raw, w) {
				return nil // as below, without making the string
			}
		}
	}
	t, ok, err := f.str("type")
	if err != nil || !ok {
		return err
	}
	if !slices.Contains(want, t) {
		return &itemError{pointer: "type", reason: fmt.Sprintf("type %q does not belong on this feed; want %s", feedcheck.Clip(t), orList(want))}
	}
	return nil
}

// itemHead reads the required id and rejects an item whose type names another kind.
func itemHead(f fields, types ...string) (string, *itemError) {
	id, ierr := itemID(f)
	if ierr != nil {
		return "", ierr
	}
	return id, checkType(f, types...)
}

// requiredStr reads a string member that must be present and not empty.
func requiredStr(f fields, name string) (string, *itemError) {
	s, ok, ierr := f.str(name)
	if ierr != nil {
		return "", ierr
	}
	if !ok || s == "" {
		return "", missing(name)
	}
	return s, nil
}

// obsHead is what every FIWARE observation has: ids, time, location, name.
type obsHead struct {
	id, eventID, entity, name string
	// at is the observation's time; from the start of its period, if any.
	at, from time.Time
	geom     Geometry
}

// readObservation reads the head of a FIWARE observation of the given types:
// id, type, observed period, location (a geomType), entity (the first of refs
// present, else the id) and name.
func readObservation(f fields, env parseEnv, geomType string, refs []string, types ...string) (obsHead, *itemError) {
	var h obsHead
	id, ierr := itemHead(f, types...)
	if ierr != nil {
		return h, ierr
	}
	at, from, ierr := f.observedPeriod(env.now, env.maxFuture, env.maxAge)
	if ierr != nil {
		return h, ierr
	}
	g, ierr := location(f, geomType)
	if ierr != nil {
		return h, ierr
	}
	var entity string
	for _, r := range refs {
		if entity, ierr = f.ref(r); ierr != nil {
			return h, ierr
		}
		if entity != "" {
			// The entity becomes the ce-subject header and a primary key.
			if err := feedcheck.ID(r, entity); err != nil {
				return h, &itemError{pointer: r, reason: err.Error()}
			}
			break
		}
	}
	if entity == "" {
		entity = id
	}
	name, _, ierr := f.str("name")
	if ierr != nil {
		return h, ierr
	}
	// The name is carried in every state of the entity.
	if err := feedcheck.Text("name", name, feedcheck.MaxNameBytes); err != nil {
		return h, &itemError{pointer: "name", reason: err.Error()}
	}
	return obsHead{id: id, eventID: observationEventID(id, at), entity: entity, name: name, at: at, from: from, geom: g}, nil
}

// parsed is the item of an observation with this head whose message m keeps
// its location at loc and its origin at origin.
func (h obsHead) parsed(shape shapeRule, m proto.Message, loc **iocv1.Geometry, origin **iocv1.Origin) (*parsed, *itemError) {
	if err := h.geom.wkbInto(loc); err != nil {
		return nil, &itemError{pointer: "location", reason: err.Error()}
	}
	p := &parsed{id: h.id, eventID: h.eventID, entityID: h.entity, time: h.at, shape: shape,
		geomPointer: "location.coordinates", msg: m,
		finish: func(o *iocv1.Origin) { *origin = o }}
	p.geom1[0] = h.geom
	p.geoms = p.geom1[:] // in the same allocation
	return p, nil
}

// observationEventID is the event id of an observation: <item id>@<observedAt UTC RFC 3339>.
func observationEventID(id string, at time.Time) string {
	var buf [128]byte
	b := append(append(buf[:0], id...), '@')
	return string(at.UTC().AppendFormat(b, time.RFC3339)) // one allocation, not two
}

func location(f fields, allowed ...string) (Geometry, *itemError) {
	raw, ok := f.value("location")
	if !ok {
		return Geometry{}, missing("location")
	}
	g, err := ParseGeometry(raw, "location", allowed...)
	if err != nil {
		var ge *geometryError
		if !errors.As(err, &ge) {
			return Geometry{}, &itemError{pointer: "location", reason: err.Error()}
		}
		return Geometry{}, &itemError{pointer: ge.pointer, reason: ge.reason}
	}
	return g, nil
}

// airAliases are spellings of pollutants seen in FIWARE payloads (NGSI-LD examples use upper case).
var airAliases = map[string]string{"PM2.5": "pm25", "PM25": "pm25", "PM10": "pm10", "PM1": "pm1", "NO2": "no2", "O3": "o3",
	"CO": "co", "SO2": "so2", "NH3": "nh3", "NO": "no", "NOx": "nox", "NOX": "nox"}

// notMeasurements are numeric members of an item that are not put in an observation's other.
var notMeasurements = map[string]bool{"id": true, "type": true, "laneId": true}

// concentration rejects a negative concentration or speed.
func concentration(name string, v float64) string {
	if v < 0 {
		return fmt.Sprintf("%s %v is negative; a concentration or speed cannot be", name, v)
	}
	return ""
}

// airMeasures maps FIWARE AirQualityObserved names onto the proto.
var airMeasures = map[string]measure[*iocv1.AirQualityObserved]{
	"pm25":             {field: func(m *iocv1.AirQualityObserved) **float64 { return &m.Pm25 }, check: concentration},
	"pm10":             {field: func(m *iocv1.AirQualityObserved) **float64 { return &m.Pm10 }, check: concentration},
	"pm1":              {field: func(m *iocv1.AirQualityObserved) **float64 { return &m.Pm1 }, check: concentration},
	"no2":              {field: func(m *iocv1.AirQualityObserved) **float64 { return &m.No2 }, check: concentration},
	"o3":               {field: func(m *iocv1.AirQualityObserved) **float64 { return &m.O3 }, check: concentration},
	"co":               {field: func(m *iocv1.AirQualityObserved) **float64 { return &m.Co }, check: concentration},
	"so2":              {field: func(m *iocv1.AirQualityObserved) **float64 { return &m.So2 }, check: concentration},
	"nh3":              {field: func(m *iocv1.AirQualityObserved) **float64 { return &m.Nh3 }, check: concentration},
	"no":               {field: func(m *iocv1.AirQualityObserved) **float64 { return &m.No }, check: concentration},
	"nox":              {field: func(m *iocv1.AirQualityObserved) **float64 { return &m.Nox }, check: concentration},
	"temperature":      {field: func(m *iocv1.AirQualityObserved) **float64 { return &m.Temperature }},
	"relativeHumidity": {field: func(m *iocv1.AirQualityObserved) **float64 { return &m.RelativeHumidity }, check: concentration},
	"windSpeed":        {field: func(m *iocv1.AirQualityObserved) **float64 { return &m.WindSpeed }, check: concentration},
	"windDirection":    {field: func(m *iocv1.AirQualityObserved) **float64 { return &m.WindDirection }},
}

// airTable indexes airMeasures by member name.
var airTable = newMeasureTable(airMeasures, airAliases, nil)

// parseAir reads a FIWARE AirQualityObserved in keyValues form.
func parseAir(f fields, env parseEnv) (*parsed, *itemError) {
	h, ierr := readStation(f, env, "AirQualityObserved")
	if ierr != nil {
		return nil, ierr
	}
	// The event and its time in one allocation (the time as timestamppb.New makes it).
	a := new(struct {
		m  iocv1.AirQualityObserved
		at timestamppb.Timestamp
	})
	a.at.Seconds, a.at.Nanos = h.at.Unix(), int32(h.at.Nanosecond())
	m := &a.m
	m.Id, m.EntityId, m.ObservedAt, m.Name = h.eventID, h.entity, &a.at, h.name
	if m.Other, ierr = readMeasures(f, m, &airTable); ierr != nil {
		return nil, ierr
	}
	return h.parsed(shapePoint, m, &m.Location, &m.Origin)
}

// parseTraffic reads a FIWARE TrafficFlowObserved in keyValues form.
func parseTraffic(f fields, env parseEnv) (*parsed, *itemError) {
	h, ierr := readObservation(f, env, "LineString", []string{"refRoadSegment"}, "TrafficFlowObserved")
	if ierr != nil {
		return nil, ierr
	}
	m := &iocv1.TrafficObserved{Id: h.eventID, EntityId: h.entity, ObservedAt: timestamppb.New(h.at), Name: h.name}
	if !h.from.IsZero() {
		m.ObservedFrom = timestamppb.New(h.from)
	}
	for _, n := range []struct {
		name string
		dst  **float64
	}{
		{"intensity", &m.Intensity}, {"occupancy", &m.Occupancy}, {"averageVehicleSpeed", &m.AverageVehicleSpeed},
		{"averageVehicleLength", &m.AverageVehicleLength}, {"averageHeadwayTime", &m.AverageHeadwayTime},
	} {
		v, ok, ierr := f.num(n.name)
		if ierr != nil {
			return nil, ierr
		}
		if !ok {
			continue
		}
		if v < 0 {
			return nil, &itemError{pointer: n.name, reason: fmt.Sprintf("%s %v is negative", n.name, v)}
		}
		if why := checkPlausible(n.name, n.name, v); why != "" {
			return nil, &itemError{pointer: n.name, reason: why}
		}
		*n.dst = &v
	}
	if c, ok, ierr := f.boolean("congested"); ierr != nil {
		return nil, ierr
	} else if ok {
		m.Congested = &c
	}
	if l, ok, ierr := f.integer("laneId"); ierr != nil {
		return nil, ierr
	} else if ok {
		m.LaneId = &l
	}
	if d, ok, ierr := f.str("laneDirection"); ierr != nil {
		return nil, ierr
	} else if ok {
		if d != "forward" && d != "backward" {
			return nil, &itemError{pointer: "laneDirection", reason: fmt.Sprintf("%q is not forward or backward", feedcheck.Clip(d))}
		}
		m.LaneDirection = d
	}
	return h.parsed(shapeLine, m, &m.Location, &m.Origin)
}

func (g Geometry) wkbInto(dst **iocv1.Geometry) error {
	if g.Type == "Point" {
		// The message and its 21 bytes (as WKB writes them) in one allocation.
		pt := new(struct {
			m   iocv1.Geometry
			wkb [21]byte
		})
		pt.m.Wkb = appendPointWKB(pt.wkb[:0], g.Polys[0][0])
		*dst = &pt.m
		return nil
	}
	b, err := g.WKB()
	if err != nil {
		return err
	}
	*dst = &iocv1.Geometry{Wkb: b}
	return nil
}
