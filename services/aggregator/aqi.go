package aggregator

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/aqi"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// AirHistory is what warming the AQI calculators needs of the store;
// *postgis.Store has it. A Store without it starts every station empty.
type AirHistory interface {
	AirHistory(ctx context.Context, since time.Time, stations []string) ([]postgis.AirSample, error)
}

var _ AirHistory = (*postgis.Store)(nil)

// aqiKeep is how long a station's hours are kept: the AQI calculator's window,
// and how long a station may stay unseen before it is forgotten.
const aqiKeep = aqi.StationHours * time.Hour

// vietnam is the time zone of the daily AQI's day (UTC+7, no daylight saving).
var vietnam = time.FixedZone("ICT", 7*3600)

// aqiBook keeps a VN_AQI calculator per air station in memory. The committer
// goroutine of the feed pipeline (pipeline.go) changes it; the preparer reads
// it to rate a batch ahead, while earlier batches are written (rateAhead).
//
// Rows are rated twice: before the write, on a scratch copy of the station
// (so the AQI goes into the row's columns), and after the commit the rows
// stored for the first time are added to the station itself, so that a
// redelivered observation is never counted twice.
type aqiBook struct {
	// mu guards stations (the map and each station), busy and epoch between
	// the preparer, which reads them, and the committer, which changes them.
	mu       sync.Mutex
	stations map[postgis.StationRef]*aqiStation
	// busy counts, per station, the batches rated ahead that have rows of
	// it and are not done (committed or given up) yet: until then its
	// calculator may still change, so a later batch leaves it to settle.
	busy map[postgis.StationRef]int
	// epoch changes when sweep forgets stations: a batch rated ahead in an
	// older epoch is rated again by settle.
	epoch uint64
	// warm is set once every station's history was loaded at start; until
	// then, stations first seen in a batch are loaded in one query per batch.
	warm      bool
	lastSweep time.Time
	log       *slog.Logger
}

type aqiStation struct {
	calc aqi.Station
	seen time.Time // wall clock of the last observation added
}

func newAQIBook(log *slog.Logger) *aqiBook {
	return &aqiBook{stations: map[postgis.StationRef]*aqiStation{}, busy: map[postgis.StationRef]int{}, log: log}
}

// keyOf is the station of r: its id in its province. A station id is the
// sources' own: the same id from another province is another station (or a
// source taking over one it does not own, whose readings must not enter its
// AQI), as for the stations' states (postgis.StationRef).
func keyOf(r *postgis.AirRow) postgis.StationRef {
	return postgis.StationRef{Province: r.Province, ID: r.StationID}
}

// warmAll loads the last aqiKeep of every station's observations in one query.
func (b *aqiBook) warmAll(ctx context.Context, store any, now time.Time) error {
	h, ok := store.(AirHistory)
	if !ok {
		b.warm = true // nothing to load from
		return nil
	}
	rows, err := h.AirHistory(ctx, now.Add(-aqiKeep), nil)
	if err != nil {
		return err
	}
	b.load(rows, now)
	b.warm = true
	b.log.Info("AQI calculators warmed", "stations", len(b.stations), "observations", len(rows))
	return nil
}

// warmNew loads, in one query, the history of the stations of rows that are
// not known yet; it does nothing once warmAll succeeded.
func (b *aqiBook) warmNew(ctx context.Context, store any, rows []postgis.AirRow, now time.Time) {
	h, ok := store.(AirHistory)
	if b.warm || !ok {
		return
	}
	var unknown []string
	var keys []postgis.StationRef
	seen := map[postgis.StationRef]bool{}
	oldest := now
	for i := range rows {
		k := keyOf(&rows[i])
		if _, known := b.stations[k]; known || seen[k] {
			continue
		}
		seen[k] = true
		keys = append(keys, k)
		unknown = append(unknown, k.ID)
		oldest = minTime(oldest, rows[i].ObservedAt)
	}
	if len(unknown) == 0 {
		return
	}
	hist, err := h.AirHistory(ctx, oldest.Add(-aqiKeep), unknown)
	if err != nil {
		// The stations start from what arrives; their AQI says why while it lacks hours.
		b.log.Warn("loading the air history of new stations failed", "stations", len(unknown), "err", err)
		return
	}
	for _, k := range keys {
		b.stations[k] = &aqiStation{seen: now}
	}
	b.load(hist, now)
}

func (b *aqiBook) load(rows []postgis.AirSample, now time.Time) {
	for _, r := range rows {
		k := postgis.StationRef{Province: r.Province, ID: r.StationID}
		st := b.stations[k]
		if st == nil {
			st = &aqiStation{seen: now}
			b.stations[k] = st
		}
		// Too old or not a concentration: the row was stored before the
		// station's newer hours or by hand; it does not count.
		_ = st.calc.Add(r.ObservedAt, values(r.PM25, r.PM10, r.O3, r.CO, r.SO2, r.NO2))
	}
}

// aqiAhead is what rateAhead did to a batch, for settle and done.
type aqiAhead struct {
	on       bool
	epoch    uint64
	stations []postgis.StationRef        // every station of the batch, each counted busy once
	deferred map[postgis.StationRef]bool // those left to settle
}

// rateAhead rates, in the preparer while earlier batches are written, the
// rows of the stations that no batch in flight has: their calculators are
// as the batches before will leave them. The others are left to settle,
// which rates them after those batches. Exact either way: a station's AQI
// depends on its own calculator and rows only. Nothing is done before the
// book is warm (settle then does it all, as before).
func (b *aqiBook) rateAhead(p *pending) {
	p.aqi = aqiAhead{}
	if !b.warm || len(p.batch.Air) == 0 {
		return
	}
	scratch := map[postgis.StationRef]*aqi.Station{}
	deferred := map[postgis.StationRef]bool{}
	b.mu.Lock()
	p.aqi = aqiAhead{on: true, epoch: b.epoch, deferred: deferred}
	for i := range p.batch.Air {
		id := keyOf(&p.batch.Air[i])
		if _, ok := scratch[id]; ok || deferred[id] {
			continue
		}
		p.aqi.stations = append(p.aqi.stations, id)
		if b.busy[id] > 0 {
			deferred[id] = true
		} else {
			scratch[id] = b.scratch(id)
		}
		b.busy[id]++
	}
	b.mu.Unlock()
	b.rateWith(p, scratch, deferred)
}

// settle completes the rating in the committer, right before the write:
// the rows rateAhead left, or every row when it did nothing or the book
// forgot stations since (as rate, loading unknown stations first when the
// book is not warm).
func (b *aqiBook) settle(ctx context.Context, store any, p *pending, start time.Time) {
	b.mu.Lock()
	stale := p.aqi.on && p.aqi.epoch != b.epoch
	b.mu.Unlock()
	if !p.aqi.on || stale {
		b.warmNew(ctx, store, p.batch.Air, start)
		b.rate(p)
		return
	}
	if len(p.aqi.deferred) == 0 {
		return
	}
	// The committer alone changes the book, so it reads it without the lock.
	scratch := map[postgis.StationRef]*aqi.Station{}
	for id := range p.aqi.deferred {
		scratch[id] = b.scratch(id)
	}
	b.rateWith(p, scratch, nil)
}

// ready reports whether rateAhead rated every row of p, in the book's
// epoch: settle then has nothing to do, and p's rows do not wait for the
// commit of the batches before it.
func (b *aqiBook) ready(p *pending) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return p.aqi.on && p.aqi.epoch == b.epoch && len(p.aqi.deferred) == 0
}

// done ends what rateAhead counted busy for p, once p was committed or
// given up.
func (b *aqiBook) done(p *pending) {
	if !p.aqi.on {
		return
	}
	b.mu.Lock()
	for _, id := range p.aqi.stations {
		if b.busy[id]--; b.busy[id] <= 0 {
			delete(b.busy, id)
		}
	}
	b.mu.Unlock()
	p.aqi = aqiAhead{}
}

// rate sets the AQI columns of every air row of the batch, from each
// station's hours and the rows before it in the batch. The AQI of the only
// row of a station in the batch is kept (decoded.rated): when every row of
// the batch is stored, it is also the AQI of the station's state after the
// commit, which commit then need not compute again.
func (b *aqiBook) rate(p *pending) {
	scratch := map[postgis.StationRef]*aqi.Station{}
	for i := range p.batch.Air {
		id := keyOf(&p.batch.Air[i])
		if _, ok := scratch[id]; ok {
			continue
		}
		scratch[id] = b.scratch(id)
	}
	b.rateWith(p, scratch, nil)
}

// rateWith rates the rows of the stations in scratch, each station's
// calculator there holding its hours before the batch; rows of the
// stations in skip are left as they are. It gives scratch's calculators
// back to scratchStations: the caller must not use them after.
func (b *aqiBook) rateWith(p *pending, scratch map[postgis.StationRef]*aqi.Station, skip map[postgis.StationRef]bool) {
	rows := map[postgis.StationRef]int{} // rows per station in the batch
	items := p.of(subjects.KindAir)
	for i := range p.batch.Air {
		r := &p.batch.Air[i]
		k := keyOf(r)
		rows[k]++
		st := scratch[k]
		if skip[k] || st == nil {
			continue
		}
		idx, added := rateRow(st, r)
		r.AQI = rowAQI(idx)
		items[i].d.row = *r
		items[i].d.rated = nil
		if added {
			items[i].d.rated = idx
		}
	}
	for i := range p.batch.Air {
		if id := keyOf(&p.batch.Air[i]); rows[id] > 1 && scratch[id] != nil && !skip[id] {
			items[i].d.rated = nil
		}
	}
	for _, st := range scratch { // nothing rated keeps them
		scratchStations.Put(st)
	}
}

// rateRow adds r to st and returns the AQI at r's hour, and whether r was
// added (or the AQI says why not).
func rateRow(st *aqi.Station, r *postgis.AirRow) (*iocv1.AirQualityIndex, bool) {
	if err := st.Add(r.ObservedAt, values(r.PM25, r.PM10, r.O3, r.CO, r.SO2, r.NO2)); err != nil {
		return &iocv1.AirQualityIndex{Hour: timestamppb.New(r.ObservedAt.Truncate(time.Hour)), Reason: err.Error()}, false
	}
	return index(st, r.ObservedAt), true
}

// allInserted reports whether inserted names each of n rows once.
func allInserted(inserted []int, n int) bool {
	if len(inserted) != n {
		return false
	}
	seen := make([]bool, n)
	for _, i := range inserted {
		if i < 0 || i >= n || seen[i] {
			return false
		}
		seen[i] = true
	}
	return true
}

// commit adds the rows stored for the first time to their stations, and sets
// the AQI of the state of every changed station.
func (b *aqiBook) commit(p *pending, res postgis.Result, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, i := range res.Air.Inserted {
		if i < 0 || i >= len(p.batch.Air) {
			continue
		}
		r := &p.batch.Air[i]
		k := keyOf(r)
		st := b.stations[k]
		if st == nil {
			st = &aqiStation{}
			b.stations[k] = st
		}
		st.seen = now
		if err := st.calc.Add(r.ObservedAt, values(r.PM25, r.PM10, r.O3, r.CO, r.SO2, r.NO2)); err != nil {
			b.log.Debug("observation not counted in the AQI", "station", r.StationID, "err", err)
		}
		// Kept in the book, the day before's daily AQI is copied into the
		// batches' scratch calculators: computed once a station and day,
		// not once a row (an Add of today leaves it).
		st.calc.DailyAQI(yesterday(r.ObservedAt))
	}
	allNew := allInserted(res.Air.Inserted, len(p.batch.Air))
	items := p.of(subjects.KindAir)
	for _, c := range res.Air.Changed {
		if c.Index < 0 || c.Index >= len(items) {
			continue
		}
		d := &items[c.Index].d
		if allNew && d.rated != nil {
			// The station's only row, added to the same hours by rate and
			// above: the same AQI.
			d.annot = &iocv1.EntityState{Aqi: d.rated}
			continue
		}
		r, _ := d.row.(postgis.AirRow)
		k := keyOf(&r)
		st := b.stations[k]
		if st == nil {
			// A redelivery of rows the book never saw (warming failed): rate what there is.
			st = &aqiStation{seen: now}
			_ = st.calc.Add(r.ObservedAt, values(r.PM25, r.PM10, r.O3, r.CO, r.SO2, r.NO2))
			b.stations[k] = st
		}
		st.seen = now
		d.annot = &iocv1.EntityState{Aqi: index(&st.calc, r.ObservedAt)}
	}
	b.sweep(now)
}

// sweep forgets the stations unseen for aqiKeep, at most once an hour.
func (b *aqiBook) sweep(now time.Time) {
	if sweepUnseen(b.stations, func(st *aqiStation) time.Time { return st.seen }, &b.lastSweep, now, aqiKeep) {
		b.epoch++
	}
}

// sweepUnseen deletes the stations last seen keep or more before now, at most
// once an hour (*last is when it last did), and reports whether it deleted any.
func sweepUnseen[K comparable, S any](stations map[K]S, seen func(S) time.Time, last *time.Time, now time.Time, keep time.Duration) bool {
	if now.Sub(*last) < time.Hour {
		return false
	}
	*last = now
	deleted := false
	for id, st := range stations {
		if now.Sub(seen(st)) >= keep {
			delete(stations, id)
			deleted = true
		}
	}
	return deleted
}

func values(pm25, pm10, o3, co, so2, no2 *float64) aqi.Values {
	var v aqi.Values
	for p, x := range [aqi.NumPollutants]*float64{aqi.PM25: pm25, aqi.PM10: pm10, aqi.O3: o3, aqi.CO: co, aqi.SO2: so2, aqi.NO2: no2} {
		if x != nil {
			v[p] = aqi.Measured(*x)
		}
	}
	return v
}

// index is the station's AQI at the hour holding at: the hourly AQI (or why
// there is none) and the daily AQI of the day before, in Vietnam.
func index(st *aqi.Station, at time.Time) *iocv1.AirQualityIndex {
	h := st.Hourly(at)
	x := &iocv1.AirQualityIndex{Hour: timestamppb.New(at.Truncate(time.Hour))}
	if h.Err != nil {
		x.Reason = h.Err.Error()
	} else {
		v := int32(min(h.AQI, math.MaxInt32))
		x.Hourly = &v
		x.Dominant = h.Dominant.FIWARE()
		x.Band = int32(h.Band.Level)
		x.BandVi, x.BandEn, x.Color = h.Band.NameVI, h.Band.NameEN, h.Band.Color
		x.SubIndices = map[string]float64{}
		for p, pi := range h.Pollutants {
			if pi.OK {
				x.SubIndices[aqi.Pollutant(p).FIWARE()] = math.Round(pi.Index*10) / 10
			}
		}
	}
	if d, ok := st.DailyAQI(yesterday(at)); ok {
		v := int32(min(d, math.MaxInt32))
		x.Daily = &v
	}
	return x
}

// yesterday is a time in the day before at's, in Vietnam.
func yesterday(at time.Time) time.Time { return at.In(vietnam).AddDate(0, 0, -1) }

// rowAQI turns an AQI into the row's columns and its last_values JSON.
func rowAQI(x *iocv1.AirQualityIndex) postgis.AQI {
	var out postgis.AQI
	if x.Hourly != nil {
		out.Value, out.Band, out.Dominant = x.Hourly, int16(x.GetBand()), x.GetDominant()
	}
	out.JSON = []byte("null")
	if j := aqi.JSONOf(x); j != nil {
		out.JSON = j.AppendJSON(make([]byte, 0, 256))
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// scratch is a copy of station id's calculator as the book holds it (a new
// one for a station it does not know), for a batch to rate on without
// changing the book.
func (b *aqiBook) scratch(id postgis.StationRef) *aqi.Station {
	st := scratchStations.Get().(*aqi.Station)
	if known := b.stations[id]; known != nil {
		*st = known.calc
	} else {
		*st = aqi.Station{}
	}
	return st
}

// scratchStations are the scratch calculators of the batches rated, used
// again (each ~4 kB: a batch of 500 stations took 2 MB, the drain's largest
// allocation). rateWith gives them back.
var scratchStations = sync.Pool{New: func() any { return new(aqi.Station) }}
