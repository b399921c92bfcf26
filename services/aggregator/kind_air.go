package aggregator

import (
	"context"
	"time"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

func (d *decoded) decodeAir(data []byte, source string, now time.Time) error {
	m := &iocv1.AirQualityObserved{}
	c, loc, err := decodeStation(data, m, source, now)
	if err != nil {
		return err
	}
	named := [...]namedValue{
		{"pm1", m.Pm1}, {"nh3", m.Nh3}, {"no", m.No}, {"nox", m.Nox}, {"temperature", m.Temperature},
		{"relativeHumidity", m.RelativeHumidity}, {"windSpeed", m.WindSpeed}, {"windDirection", m.WindDirection},
	}
	// In a fixed order (the pollutants, the named values, the others by
	// name), so that of several bad values the error names the same one.
	if err := checkFinite([]namedValue{{"pm25", m.Pm25}, {"pm10", m.Pm10}, {"no2", m.No2}, {"o3", m.O3}, {"co", m.Co}, {"so2", m.So2}}); err != nil {
		return err
	}
	if err := checkFinite(named[:]); err != nil {
		return err
	}
	extra := map[string]any{}
	for _, f := range named {
		if f.v != nil {
			extra[f.name] = *f.v
		}
	}
	// An other value under a present named value's name is left out, unchecked.
	if err := addOthers(extra, m.GetOther(), func(name string) bool { _, taken := extra[name]; return !taken }, false); err != nil {
		return err
	}
	d.msg = m
	d.row = postgis.AirRow{
		SourceID: c.source, EventID: m.GetId(), StationID: m.GetEntityId(), Name: m.GetName(),
		Province: d.province, UnitCode: d.unit, ObservedAt: c.observed, ReceivedAt: c.received, Location: loc,
		PM25: m.Pm25, PM10: m.Pm10, NO2: m.No2, O3: m.O3, CO: m.Co, SO2: m.So2, Extra: extra,
	}
	return nil
}

// airKind is the aggregator's side of air quality: rows of air_observation
// and sensor, with the station's VN_AQI (aqi.go).
var airKind = &kindOps{
	name:    subjects.KindAir,
	decode:  (*decoded).decodeAir,
	add:     func(b *postgis.Batch, row any) { b.Air = append(b.Air, row.(postgis.AirRow)) },
	prepare: func(_ context.Context, s *Service, p *pending, _ time.Time) { s.aqi.rateAhead(p) },
	settle: func(ctx context.Context, s *Service, p *pending, start time.Time) {
		s.aqi.settle(ctx, s.db, p, start)
	},
	ready:     func(s *Service, p *pending) bool { return s.aqi.ready(p) },
	release:   func(s *Service, p *pending) { s.aqi.done(p) },
	committed: func(s *Service, p *pending, res postgis.Result, now time.Time) { s.aqi.commit(p, res, now) },
	warm:      func(ctx context.Context, s *Service, now time.Time) error { return s.aqi.warmAll(ctx, s.db, now) },
	changed:   func(res postgis.Result) []postgis.Changed { return res.Air.Changed },
	state: func(d *decoded, _ postgis.Changed, st *iocv1.EntityState, ev *ce.Event) {
		r, _ := d.row.(postgis.AirRow)
		m, _ := d.msg.(*iocv1.AirQualityObserved)
		st.EntityId = r.StationID
		st.Latest = &iocv1.EntityState_Air{Air: m}
		st.Aqi = d.annot.GetAqi()
		ev.ID, ev.Time = r.EventID, r.ObservedAt
	},
	result: func(res postgis.Result) postgis.KindResult { return res.Air },
}
