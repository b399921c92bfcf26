package aggregator

import (
	"context"
	"time"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

func (d *decoded) decodeWater(data []byte, source string, now time.Time) error {
	m := &iocv1.WaterObserved{}
	c, loc, err := decodeStation(data, m, source, now)
	if err != nil {
		return err
	}
	extra, err := checkValues([]namedValue{
		{"waterLevel", m.WaterLevel}, {"alarmLevel1", m.AlarmLevel_1}, {"alarmLevel2", m.AlarmLevel_2}, {"alarmLevel3", m.AlarmLevel_3},
		{"flow", m.Flow}, {"temperature", m.Temperature}, {"pH", m.Ph}, {"conductivity", m.Conductivity},
		{"turbidity", m.Turbidity}, {"O2", m.DissolvedOxygen},
	}, m.GetOther())
	if err != nil {
		return err
	}
	d.msg = m
	d.row = postgis.WaterRow{
		SourceID: c.source, EventID: m.GetId(), StationID: m.GetEntityId(), Name: m.GetName(),
		Province: d.province, UnitCode: d.unit, ObservedAt: c.observed, ReceivedAt: c.received, Location: loc,
		WaterLevel: m.WaterLevel, AlarmLevel1: m.AlarmLevel_1, AlarmLevel2: m.AlarmLevel_2, AlarmLevel3: m.AlarmLevel_3,
		WaterAlarm: WaterAlarm(m.WaterLevel, m.AlarmLevel_1, m.AlarmLevel_2, m.AlarmLevel_3),
		Flow:       m.Flow, Temperature: m.Temperature, PH: m.Ph, Conductivity: m.Conductivity, Turbidity: m.Turbidity,
		DissolvedOxygen: m.DissolvedOxygen, Extra: extra,
	}
	return nil
}

// waterKind is the aggregator's side of water: rows of water_observation and
// sensor, with the station's alarm levels (water.go).
var waterKind = &kindOps{
	name:    subjects.KindWater,
	decode:  (*decoded).decodeWater,
	add:     func(b *postgis.Batch, row any) { b.Water = append(b.Water, row.(postgis.WaterRow)) },
	prepare: func(_ context.Context, s *Service, p *pending, start time.Time) { s.water.fill(p, start) },
	warm:    func(ctx context.Context, s *Service, now time.Time) error { return s.water.warm(ctx, s.db, now) },
	changed: func(res postgis.Result) []postgis.Changed { return res.Water.Changed },
	state: func(d *decoded, _ postgis.Changed, st *iocv1.EntityState, ev *ce.Event) {
		r, _ := d.row.(postgis.WaterRow)
		m, _ := d.msg.(*iocv1.WaterObserved)
		st.EntityId = r.StationID
		st.Latest = &iocv1.EntityState_Water{Water: m}
		st.WaterAlarm = int32(r.WaterAlarm)
		ev.ID, ev.Time = r.EventID, r.ObservedAt
	},
	result: func(res postgis.Result) postgis.KindResult { return res.Water },
}
