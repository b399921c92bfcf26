package aggregator

import (
	"context"
	"time"

	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// WaterAlarmLevels is what warming the water stations' alarm levels needs of
// the store; *postgis.Store has it.
type WaterAlarmLevels interface {
	WaterAlarmLevels(ctx context.Context) (map[postgis.StationRef][3]*float64, error)
}

// waterForget is how long a water station's alarm levels are kept unseen.
const waterForget = 30 * 24 * time.Hour

// waterBook remembers the alarm levels (báo động I, II, III) each water
// station last sent, so that an observation with only its water level is
// still rated against its station's levels. Used by the preparer goroutine
// of the feed pipeline only (pipeline.go), batch after batch in fetch order.
type waterBook struct {
	stations  map[postgis.StationRef]*waterStation // a station of a province, as the AQI's
	lastSweep time.Time
}

type waterStation struct {
	levels [3]*float64
	seen   time.Time
}

func newWaterBook() *waterBook { return &waterBook{stations: map[postgis.StationRef]*waterStation{}} }

// warm loads every station's last stored alarm levels in one query.
func (b *waterBook) warm(ctx context.Context, store any, now time.Time) error {
	h, ok := store.(WaterAlarmLevels)
	if !ok {
		return nil
	}
	levels, err := h.WaterAlarmLevels(ctx)
	if err != nil {
		return err
	}
	for ref, l := range levels {
		b.stations[ref] = &waterStation{levels: l, seen: now}
	}
	return nil
}

// fill completes the alarm levels an observation leaves out with its
// station's, remembers those it sends, and sets its alarm level.
func (b *waterBook) fill(p *pending, now time.Time) {
	for i := range p.batch.Water {
		r := &p.batch.Water[i]
		items := p.of(subjects.KindWater)
		m, _ := items[i].d.msg.(*iocv1.WaterObserved)
		if m == nil {
			m = &iocv1.WaterObserved{}
		}
		k := postgis.StationRef{Province: r.Province, ID: r.StationID}
		st := b.stations[k]
		if st == nil {
			st = &waterStation{}
			b.stations[k] = st
		}
		st.seen = now
		rowLevels := [3]**float64{&r.AlarmLevel1, &r.AlarmLevel2, &r.AlarmLevel3}
		msgLevels := [3]**float64{&m.AlarmLevel_1, &m.AlarmLevel_2, &m.AlarmLevel_3}
		for k := range 3 {
			switch {
			case *rowLevels[k] != nil:
				v := **rowLevels[k]
				st.levels[k] = &v
			case st.levels[k] != nil:
				v := *st.levels[k]
				*rowLevels[k], *msgLevels[k] = &v, &v
				items[i].d.edited = true
			}
		}
		r.WaterAlarm = WaterAlarm(r.WaterLevel, r.AlarmLevel1, r.AlarmLevel2, r.AlarmLevel3)
		items[i].d.row = *r
	}
	b.sweep(now)
}

// sweep forgets the stations unseen for waterForget, at most once an hour.
func (b *waterBook) sweep(now time.Time) {
	sweepUnseen(b.stations, func(st *waterStation) time.Time { return st.seen }, &b.lastSweep, now, waterForget)
}
