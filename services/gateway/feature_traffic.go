package gateway

import (
	"github.com/twpayne/go-geom"

	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// encodeTraffic is the Feature of a road segment: its values and LineString.
func encodeTraffic(st *iocv1.EntityState, entity string) (props kindProps, g geom.T, err error) {
	t := st.GetTraffic()
	props.Name = t.GetName()
	props.Observation = &observationJSON{ID: t.GetId(), Time: rfc3339(t.GetObservedAt()), Values: trafficValues(t)}
	g, err = decodeWKB(t.GetLocation().GetWkb())
	return props, g, err
}

// trafficValues are the present values of a traffic observation by their FIWARE names.
func trafficValues(t *iocv1.TrafficObserved) map[string]any {
	v := make(map[string]any, 8)
	put := func(name string, p *float64) {
		if p != nil && finite(*p) {
			v[name] = *p
		}
	}
	put("intensity", t.Intensity)
	put("occupancy", t.Occupancy)
	put("averageVehicleSpeed", t.AverageVehicleSpeed)
	put("averageVehicleLength", t.AverageVehicleLength)
	put("averageHeadwayTime", t.AverageHeadwayTime)
	if t.Congested != nil {
		v["congested"] = *t.Congested
	}
	if t.LaneId != nil {
		v["laneId"] = *t.LaneId
	}
	if t.GetLaneDirection() != "" {
		v["laneDirection"] = t.GetLaneDirection()
	}
	return v
}
