package aggregator

import (
	"fmt"
	"time"

	"github.com/twpayne/go-geom"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

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
	if err := checkFinite([]namedValue{
		{"intensity", m.Intensity}, {"occupancy", m.Occupancy}, {"averageVehicleSpeed", m.AverageVehicleSpeed},
		{"averageVehicleLength", m.AverageVehicleLength}, {"averageHeadwayTime", m.AverageHeadwayTime},
	}); err != nil {
		return err
	}
	extra := map[string]any{}
	if m.AverageVehicleLength != nil {
		extra["averageVehicleLength"] = *m.AverageVehicleLength
	}
	if m.AverageHeadwayTime != nil {
		extra["averageHeadwayTime"] = *m.AverageHeadwayTime
	}
	if m.GetLaneDirection() != "" {
		extra["laneDirection"] = m.GetLaneDirection()
	}
	d.msg = m
	d.row = postgis.TrafficRow{
		SourceID: c.source, EventID: m.GetId(), SegmentID: m.GetEntityId(), Name: m.GetName(),
		Province: d.province, UnitCode: d.unit, ObservedAt: c.observed, ReceivedAt: c.received, Geom: line,
		Intensity: m.Intensity, Occupancy: m.Occupancy, AverageVehicleSpeed: m.AverageVehicleSpeed,
		Congested: m.Congested, LaneID: m.LaneId, Extra: extra,
	}
	return nil
}

// trafficKind is the aggregator's side of traffic: rows of
// traffic_observation and road_segment.
var trafficKind = &kindOps{
	name:    subjects.KindTraffic,
	decode:  (*decoded).decodeTraffic,
	add:     func(b *postgis.Batch, row any) { b.Traffic = append(b.Traffic, row.(postgis.TrafficRow)) },
	changed: func(res postgis.Result) []postgis.Changed { return res.Traffic.Changed },
	state: func(d *decoded, _ postgis.Changed, st *iocv1.EntityState, ev *ce.Event) {
		r, _ := d.row.(postgis.TrafficRow)
		m, _ := d.msg.(*iocv1.TrafficObserved)
		st.EntityId = r.SegmentID
		st.Latest = &iocv1.EntityState_Traffic{Traffic: m}
		ev.ID, ev.Time = r.EventID, r.ObservedAt
	},
	result: func(res postgis.Result) postgis.KindResult { return res.Traffic },
}
