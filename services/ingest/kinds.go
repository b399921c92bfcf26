package ingest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/seal"
	"github.com/iochub/iochub/internal/subjects"
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
	// geomPointer is where the geometry is in the item, for messages.
	geomPointer string
	msg         proto.Message
	// finish fills Origin (and other source-dependent fields) before marshalling.
	finish func(o *iocv1.Origin)
}

// parseEnv is what parsing depends on besides the item.
type parseEnv struct {
	now       time.Time
	maxFuture time.Duration
	// seal seals a report's contact; nil when the hub has no seal key.
	seal *seal.Sealer
}

// kindSpec is one kind of feed the ingest takes; adding water, weather or
// report means adding one spec and its parse function.
type kindSpec struct {
	kind   string
	ceType string
	// types are the accepted values of an item's "type" member.
	types []string
	parse func(f fields, env parseEnv) (*parsed, *itemError)
}

var kindSpecs = map[string]kindSpec{
	subjects.KindAir:     {kind: subjects.KindAir, ceType: ce.ObservedType(subjects.KindAir), types: []string{"AirQualityObserved"}, parse: parseAir},
	subjects.KindTraffic: {kind: subjects.KindTraffic, ceType: ce.ObservedType(subjects.KindTraffic), types: []string{"TrafficFlowObserved"}, parse: parseTraffic},
	subjects.KindAlert:   {kind: subjects.KindAlert, ceType: ce.AlertType, types: []string{"Alert"}, parse: parseAlert},
	subjects.KindReport:  {kind: subjects.KindReport, ceType: ce.ObservedType(subjects.KindReport), types: []string{"FieldReport"}, parse: parseReport},
	subjects.KindWater:   {kind: subjects.KindWater, ceType: ce.ObservedType(subjects.KindWater), types: []string{"WaterQualityObserved", "WaterObserved"}, parse: parseWater},
	subjects.KindWeather: {kind: subjects.KindWeather, ceType: ce.ObservedType(subjects.KindWeather), types: []string{"WeatherObserved"}, parse: parseWeather},
}

// supportedKinds lists the kinds for messages, in a stable order.
func supportedKinds() []string {
	var ks []string
	for k := range kindSpecs {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
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
	if len(id) > 256 {
		return "", &itemError{pointer: "id", reason: fmt.Sprintf("id is %d bytes long; at most 256", len(id))}
	}
	return id, nil
}

// checkType rejects an item whose type names another kind.
func checkType(f fields, want ...string) *itemError {
	t, ok, err := f.str("type")
	if err != nil || !ok {
		return err
	}
	if !slices.Contains(want, t) {
		return &itemError{pointer: "type", reason: fmt.Sprintf("type %q does not belong on this feed; want %s", t, orList(want))}
	}
	return nil
}

// observationEventID is the event id of an observation: <item id>@<observedAt UTC RFC 3339>.
func observationEventID(id string, at time.Time) string {
	return id + "@" + at.UTC().Format(time.RFC3339)
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

// airFields maps FIWARE AirQualityObserved names onto the proto; nonNeg
// marks concentrations and speeds, which cannot be negative.
var airFields = map[string]struct {
	set    func(m *iocv1.AirQualityObserved, v float64)
	nonNeg bool
}{
	"pm25":             {func(m *iocv1.AirQualityObserved, v float64) { m.Pm25 = &v }, true},
	"pm10":             {func(m *iocv1.AirQualityObserved, v float64) { m.Pm10 = &v }, true},
	"pm1":              {func(m *iocv1.AirQualityObserved, v float64) { m.Pm1 = &v }, true},
	"no2":              {func(m *iocv1.AirQualityObserved, v float64) { m.No2 = &v }, true},
	"o3":               {func(m *iocv1.AirQualityObserved, v float64) { m.O3 = &v }, true},
	"co":               {func(m *iocv1.AirQualityObserved, v float64) { m.Co = &v }, true},
	"so2":              {func(m *iocv1.AirQualityObserved, v float64) { m.So2 = &v }, true},
	"nh3":              {func(m *iocv1.AirQualityObserved, v float64) { m.Nh3 = &v }, true},
	"no":               {func(m *iocv1.AirQualityObserved, v float64) { m.No = &v }, true},
	"nox":              {func(m *iocv1.AirQualityObserved, v float64) { m.Nox = &v }, true},
	"temperature":      {func(m *iocv1.AirQualityObserved, v float64) { m.Temperature = &v }, false},
	"relativeHumidity": {func(m *iocv1.AirQualityObserved, v float64) { m.RelativeHumidity = &v }, true},
	"windSpeed":        {func(m *iocv1.AirQualityObserved, v float64) { m.WindSpeed = &v }, true},
	"windDirection":    {func(m *iocv1.AirQualityObserved, v float64) { m.WindDirection = &v }, false},
}

// airAliases are spellings of pollutants seen in FIWARE payloads (NGSI-LD examples use upper case).
var airAliases = map[string]string{"PM2.5": "pm25", "PM25": "pm25", "PM10": "pm10", "PM1": "pm1", "NO2": "no2", "O3": "o3",
	"CO": "co", "SO2": "so2", "NH3": "nh3", "NO": "no", "NOx": "nox", "NOX": "nox"}

// notMeasurements are numeric members of an item that are not put in AirQualityObserved.other.
var notMeasurements = map[string]bool{"id": true, "type": true, "laneId": true}

// parseAir reads a FIWARE AirQualityObserved in keyValues form.
func parseAir(f fields, env parseEnv) (*parsed, *itemError) {
	id, ierr := itemID(f)
	if ierr != nil {
		return nil, ierr
	}
	if ierr := checkType(f, "AirQualityObserved"); ierr != nil {
		return nil, ierr
	}
	at, _, ierr := f.observedPeriod(env.now, env.maxFuture)
	if ierr != nil {
		return nil, ierr
	}
	g, ierr := location(f, "Point")
	if ierr != nil {
		return nil, ierr
	}
	entity, ierr := f.ref("refDevice")
	if ierr != nil {
		return nil, ierr
	}
	if entity == "" {
		if entity, ierr = f.ref("refPointOfInterest"); ierr != nil {
			return nil, ierr
		}
	}
	if entity == "" {
		entity = id
	}
	name, _, ierr := f.str("name")
	if ierr != nil {
		return nil, ierr
	}
	eventID := observationEventID(id, at)
	m := &iocv1.AirQualityObserved{Id: eventID, EntityId: entity, ObservedAt: timestamppb.New(at), Name: name}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		name := k
		if a, ok := airAliases[k]; ok {
			name = a
		}
		spec, known := airFields[name]
		if !known {
			raw, ok := f.value(k)
			if !ok || notMeasurements[k] || jsonKind(raw) != "number" {
				continue
			}
			v, _, ierr := f.num(k)
			if ierr != nil {
				return nil, ierr
			}
			if m.Other == nil {
				m.Other = make(map[string]float64)
			}
			m.Other[k] = v
			continue
		}
		v, ok, ierr := f.num(k)
		if ierr != nil {
			return nil, ierr
		}
		if !ok {
			continue
		}
		if spec.nonNeg && v < 0 {
			return nil, &itemError{pointer: k, reason: fmt.Sprintf("%s %v is negative; a concentration or speed cannot be", k, v)}
		}
		spec.set(m, v)
	}
	if err := g.wkbInto(&m.Location); err != nil {
		return nil, &itemError{pointer: "location", reason: err.Error()}
	}
	return &parsed{id: id, eventID: eventID, entityID: entity, time: at, shape: shapePoint,
		geoms: []Geometry{g}, geomPointer: "location.coordinates", msg: m,
		finish: func(o *iocv1.Origin) { m.Origin = o }}, nil
}

// parseTraffic reads a FIWARE TrafficFlowObserved in keyValues form.
func parseTraffic(f fields, env parseEnv) (*parsed, *itemError) {
	id, ierr := itemID(f)
	if ierr != nil {
		return nil, ierr
	}
	if ierr := checkType(f, "TrafficFlowObserved"); ierr != nil {
		return nil, ierr
	}
	at, from, ierr := f.observedPeriod(env.now, env.maxFuture)
	if ierr != nil {
		return nil, ierr
	}
	g, ierr := location(f, "LineString")
	if ierr != nil {
		return nil, ierr
	}
	entity, ierr := f.ref("refRoadSegment")
	if ierr != nil {
		return nil, ierr
	}
	if entity == "" {
		entity = id
	}
	name, _, ierr := f.str("name")
	if ierr != nil {
		return nil, ierr
	}
	eventID := observationEventID(id, at)
	m := &iocv1.TrafficObserved{Id: eventID, EntityId: entity, ObservedAt: timestamppb.New(at), Name: name}
	if !from.IsZero() {
		m.ObservedFrom = timestamppb.New(from)
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
			return nil, &itemError{pointer: "laneDirection", reason: fmt.Sprintf("%q is not forward or backward", d)}
		}
		m.LaneDirection = d
	}
	if err := g.wkbInto(&m.Location); err != nil {
		return nil, &itemError{pointer: "location", reason: err.Error()}
	}
	return &parsed{id: id, eventID: eventID, entityID: entity, time: at, shape: shapeLine,
		geoms: []Geometry{g}, geomPointer: "location.coordinates", msg: m,
		finish: func(o *iocv1.Origin) { m.Origin = o }}, nil
}

func (g Geometry) wkbInto(dst **iocv1.Geometry) error {
	b, err := g.WKB()
	if err != nil {
		return err
	}
	*dst = &iocv1.Geometry{Wkb: b}
	return nil
}
