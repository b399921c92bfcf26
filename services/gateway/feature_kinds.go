package gateway

import (
	"sort"

	"github.com/twpayne/go-geom"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/iochub/iochub/internal/aqi"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// featureEncoder returns the kind's properties of the Feature of a state of
// entity (name, observation and the kind's own) and its geometry;
// encodeFeature fills the rest.
type featureEncoder func(st *iocv1.EntityState, entity string) (kindProps, geom.T, error)

// kindProps are the properties of a Feature that its kind's encoder fills
// (returned by value: a pointer to propertiesJSON would put it on the heap).
type kindProps struct {
	Name        string
	Observation *observationJSON
	Alert       *alertJSON
	Report      *reportJSON
	AQI         *aqi.JSON
	WaterAlarm  *int32
}

// featureEncoders are the Feature encoders by the member of
// EntityState.latest they read. A built-in kind is its encoder in
// feature_<kind>.go and one line here; every kind registered with
// internal/kind arrives as an observation, which encodeObservation shows.
var featureEncoders = map[protoreflect.Name]featureEncoder{
	"air":         encodeAir,
	"traffic":     encodeTraffic,
	"water":       encodeWater,
	"weather":     encodeWeather,
	"alert":       encodeAlert,
	"report":      encodeReport,
	"observation": encodeObservation,
}

// latestOneof is EntityState's oneof latest.
var latestOneof = (&iocv1.EntityState{}).ProtoReflect().Descriptor().Oneofs().ByName("latest")

// encodeObservation is the Feature of an entity of a registered kind: its
// values by name in properties.observation.values, its Point.
func encodeObservation(st *iocv1.EntityState, entity string) (props kindProps, g geom.T, err error) {
	o := st.GetObservation()
	props.Name = o.GetName()
	v := make(map[string]any, len(o.GetValues()))
	keys := make([]string, 0, len(o.GetValues()))
	for k := range o.GetValues() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if x := o.GetValues()[k]; k != "" && finite(x) {
			v[k] = x
		}
	}
	props.Observation = &observationJSON{ID: o.GetId(), Time: rfc3339(o.GetObservedAt()), Values: v}
	g, err = decodeWKB(o.GetLocation().GetWkb())
	return props, g, err
}
