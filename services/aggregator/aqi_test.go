package aggregator

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// The PM2.5 table of Decision 1459: 25 µg/m³ is AQI 50, 50 is 100, 80 is 150.
// A constant concentration is its own NowCast, so these are the expected AQIs.

// hourAt is 30 minutes into the hour h hours after base.
var aqiBase = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func hourAt(h int) time.Time { return aqiBase.Add(time.Duration(h)*time.Hour + 30*time.Minute) }

func aqiRow(station string, at time.Time, pm25 float64) postgis.AirRow {
	return postgis.AirRow{SourceID: "s", EventID: station + "@" + at.Format(time.RFC3339Nano), StationID: station,
		ObservedAt: at, PM25: &pm25}
}

// firstDelivery stands for the message of a row a test adds to a pending
// batch: delivered once. Its other methods are not called.
type firstDelivery struct {
	jetstream.Msg
	data []byte // the message's bytes (Data), when the test needs them
}

func (firstDelivery) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: 1}, nil
}

func (f firstDelivery) Data() []byte { return f.data }

func airPending(rows ...postgis.AirRow) *pending {
	p := &pending{}
	for _, r := range rows {
		p.add(decoded{kind: subjects.KindAir, ops: airKind, row: r}, firstDelivery{})
	}
	return p
}

// storeAll plays a batch through the book as the aggregator does: rate, then
// commit with the rows given as new (nil means all) and the latest row of
// each station as its state.
func storeAll(b *aqiBook, p *pending, inserted []int, now time.Time) {
	b.rate(p)
	if inserted == nil {
		for i := range p.batch.Air {
			inserted = append(inserted, i)
		}
	}
	latest := map[string]int{}
	for i, r := range p.batch.Air {
		if j, ok := latest[r.StationID]; !ok || !r.ObservedAt.Before(p.batch.Air[j].ObservedAt) {
			latest[r.StationID] = i
		}
	}
	var res postgis.Result
	res.Air.Inserted = inserted
	for _, i := range latest {
		res.Air.Changed = append(res.Air.Changed, postgis.Changed{Index: i})
	}
	b.commit(p, res, now)
}

func hours(station string, from, to int, pm25 float64) []postgis.AirRow {
	var rows []postgis.AirRow
	for h := from; h < to; h++ {
		rows = append(rows, aqiRow(station, hourAt(h), pm25))
	}
	return rows
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestAQINowCastAndGaps(t *testing.T) {
	b := newAQIBook(quietLog())
	now := hourAt(30)
	storeAll(b, airPending(hours("st", 0, 12, 50)...), nil, now)

	tests := []struct {
		name       string
		hour       int
		pm25       float64
		wantAQI    int32 // 0: not computed
		wantReason string
	}{
		{"12 hours of 50 µg/m³", 11, 50, 100, ""},
		{"one hour missing: 2 of the latest 3 are there", 13, 50, 100, ""},
		{"two hours missing: only 1 of the latest 3", 16, 50, 0, "NowCast needs at least 2 of the latest 3 hourly values (have 1)"},
		{"the next hour: 2 of 3 again", 17, 25, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := airPending(aqiRow("st", hourAt(tt.hour).Add(time.Minute), tt.pm25))
			storeAll(b, p, nil, now)
			x := p.items[airKind][0].d.annot.GetAqi()
			if x == nil {
				t.Fatal("got no AQI on the state")
			}
			if tt.wantReason != "" {
				if x.Hourly != nil || x.GetBand() != 0 || !strings.Contains(x.GetReason(), tt.wantReason) ||
					!strings.Contains(x.GetReason(), "AQI could not be computed") {
					t.Errorf("got hourly %v band %d reason %q; want none with a reason containing %q", x.Hourly, x.GetBand(), x.GetReason(), tt.wantReason)
				}
				if p.batch.Air[0].AQI.Value != nil || !strings.Contains(string(p.batch.Air[0].AQI.JSON), "NowCast needs") {
					t.Errorf("got row AQI %v %s; want none, with the reason in its JSON", p.batch.Air[0].AQI.Value, p.batch.Air[0].AQI.JSON)
				}
				return
			}
			if x.Hourly == nil || x.GetReason() != "" {
				t.Fatalf("got hourly %v reason %q; want an AQI", x.Hourly, x.GetReason())
			}
			if tt.wantAQI != 0 && *x.Hourly != tt.wantAQI {
				t.Errorf("got AQI %d; want %d", *x.Hourly, tt.wantAQI)
			}
			if x.GetDominant() != "pm25" || math.Round(x.GetSubIndices()["pm25"]) != float64(*x.Hourly) {
				t.Errorf("got dominant %q sub-indices %v; want pm25 at %d", x.GetDominant(), x.GetSubIndices(), *x.Hourly)
			}
			if !x.GetHour().AsTime().Equal(hourAt(tt.hour).Truncate(time.Hour)) {
				t.Errorf("got hour %v; want %v", x.GetHour().AsTime(), hourAt(tt.hour).Truncate(time.Hour))
			}
			if row := p.batch.Air[0].AQI; row.Value == nil || *row.Value != *x.Hourly || row.Dominant != "pm25" || int32(row.Band) != x.GetBand() {
				t.Errorf("got row AQI %+v; want the state's %d", row, *x.Hourly)
			}
		})
	}
}

func TestAQIBand(t *testing.T) {
	b := newAQIBook(quietLog())
	p := airPending(hours("st", 0, 12, 50)...)
	storeAll(b, p, nil, hourAt(12))
	x := p.items[airKind][11].d.annot.GetAqi()
	if x.GetBand() != 2 || x.GetBandVi() != "Trung bình" || x.GetBandEn() != "Moderate" || x.GetColor() != "#FFFF00" {
		t.Errorf("got band %d %q %q %q; want 2 Trung bình Moderate #FFFF00", x.GetBand(), x.GetBandVi(), x.GetBandEn(), x.GetColor())
	}
	// Rated within the batch: the first row has no earlier hour, the twelfth has eleven.
	if p.batch.Air[0].AQI.Value != nil || p.batch.Air[1].AQI.Value == nil || *p.batch.Air[11].AQI.Value != 100 {
		t.Errorf("got row AQIs %v, %v, %v; want none, some, 100", p.batch.Air[0].AQI.Value, p.batch.Air[1].AQI.Value, p.batch.Air[11].AQI.Value)
	}
}

// TestAQIRedeliveryNotCounted: a row the store already had (not inserted)
// changes neither the hour's mean nor the AQI.
func TestAQIRedeliveryNotCounted(t *testing.T) {
	b := newAQIBook(quietLog())
	storeAll(b, airPending(hours("st", 0, 11, 40)...), nil, hourAt(12))
	// Hour 11 gets 20 and 60: mean 40, so the NowCast of twelve 40s is 40, AQI 80.
	last := airPending(aqiRow("st", hourAt(11), 20), aqiRow("st", hourAt(11).Add(time.Minute), 60))
	storeAll(b, last, nil, hourAt(12))
	if x := last.items[airKind][1].d.annot.GetAqi(); x.Hourly == nil || *x.Hourly != 80 {
		t.Fatalf("got %v; want AQI 80", x)
	}
	again := airPending(aqiRow("st", hourAt(11).Add(time.Minute), 60))
	storeAll(b, again, []int{}, hourAt(12))
	if x := again.items[airKind][0].d.annot.GetAqi(); x.Hourly == nil || *x.Hourly != 80 {
		t.Errorf("after a redelivery: got %v; want AQI 80 still", x)
	}
}

func TestAQIDaily(t *testing.T) {
	b := newAQIBook(quietLog())
	// 2026-11-20 in Vietnam runs from 2026-11-19T17:00Z to 2026-11-20T17:00Z.
	dayStart := time.Date(2026, 11, 19, 17, 0, 0, 0, time.UTC)
	var rows []postgis.AirRow
	for h := range 24 {
		c := 25.0
		if h >= 12 {
			c = 75 // the day's mean is 50: AQI 100
		}
		rows = append(rows, aqiRow("st", dayStart.Add(time.Duration(h)*time.Hour+10*time.Minute), c))
	}
	storeAll(b, airPending(rows...), nil, dayStart.Add(25*time.Hour))
	p := airPending(aqiRow("st", dayStart.Add(24*time.Hour+5*time.Minute), 75))
	storeAll(b, p, nil, dayStart.Add(25*time.Hour))
	if x := p.items[airKind][0].d.annot.GetAqi(); x.Daily == nil || *x.Daily != 100 {
		t.Errorf("got daily %v; want 100 for 2026-11-20", x.Daily)
	}
	// On the day itself the daily AQI is of the day before, which has no hours.
	p = airPending(aqiRow("st", dayStart.Add(23*time.Hour+50*time.Minute), 75))
	storeAll(b, p, nil, dayStart.Add(25*time.Hour))
	if x := p.items[airKind][0].d.annot.GetAqi(); x.Daily != nil {
		t.Errorf("got daily %v during 2026-11-20; want none (2026-11-19 has no hours)", *x.Daily)
	}
}

type fakeHistory struct {
	Store
	calls [][]string
	rows  []postgis.AirSample
	err   error
}

func (f *fakeHistory) AirHistory(_ context.Context, since time.Time, stations []string) ([]postgis.AirSample, error) {
	f.calls = append(f.calls, stations)
	if f.err != nil {
		return nil, f.err
	}
	var out []postgis.AirSample
	for _, r := range f.rows {
		if !r.ObservedAt.Before(since) && (stations == nil || slices.Contains(stations, r.StationID)) {
			out = append(out, r)
		}
	}
	return out, nil
}

func samples(station string, from, to int, pm25 float64) []postgis.AirSample {
	var out []postgis.AirSample
	for h := from; h < to; h++ {
		out = append(out, postgis.AirSample{StationID: station, ObservedAt: hourAt(h), PM25: &pm25})
	}
	return out
}

func TestAQIWarm(t *testing.T) {
	now := hourAt(12)
	t.Run("at start, one query for every station", func(t *testing.T) {
		f := &fakeHistory{rows: append(samples("a", 0, 11, 50), samples("b", 0, 11, 25)...)}
		b := newAQIBook(quietLog())
		if err := b.warmAll(context.Background(), f, now); err != nil {
			t.Fatal(err)
		}
		p := airPending(aqiRow("a", hourAt(11), 50), aqiRow("b", hourAt(11), 25), aqiRow("c", hourAt(11), 50))
		b.warmNew(context.Background(), f, p.batch.Air, now)
		storeAll(b, p, nil, now)
		if len(f.calls) != 1 || f.calls[0] != nil {
			t.Errorf("got history queries %v; want one, for every station", f.calls)
		}
		for i, want := range []int32{100, 50, 0} {
			x := p.items[airKind][i].d.annot.GetAqi()
			if got := x.GetHourly(); got != want || (want == 0) != (x.Hourly == nil) {
				t.Errorf("station %s: got AQI %v (%s); want %d", p.batch.Air[i].StationID, x.Hourly, x.GetReason(), want)
			}
		}
	})
	t.Run("start failed: one query per batch for its new stations", func(t *testing.T) {
		f := &fakeHistory{rows: samples("a", 0, 11, 50), err: errors.New("database down")}
		b := newAQIBook(quietLog())
		if err := b.warmAll(context.Background(), f, now); err == nil {
			t.Fatal("got no error from a failing store")
		}
		f.err = nil
		p := airPending(aqiRow("a", hourAt(11), 50), aqiRow("a", hourAt(11).Add(time.Minute), 50), aqiRow("b", hourAt(11), 50))
		b.warmNew(context.Background(), f, p.batch.Air, now)
		storeAll(b, p, nil, now)
		p2 := airPending(aqiRow("a", hourAt(12), 50), aqiRow("b", hourAt(12), 50))
		b.warmNew(context.Background(), f, p2.batch.Air, now)
		if len(f.calls) != 2 || !slices.Equal(f.calls[1], []string{"a", "b"}) {
			t.Errorf("got history queries %v; want the failed one, then one for [a b]", f.calls)
		}
		if x := p.items[airKind][1].d.annot.GetAqi(); x.GetHourly() != 100 {
			t.Errorf("station a: got %v; want AQI 100 from its history", x)
		}
	})
	t.Run("a store without history", func(t *testing.T) {
		b := newAQIBook(quietLog())
		if err := b.warmAll(context.Background(), struct{ Store }{}, now); err != nil || !b.warm {
			t.Errorf("got %v, warm %v; want nil and warm", err, b.warm)
		}
	})
}

func TestAQIEvictsUnseenStations(t *testing.T) {
	b := newAQIBook(quietLog())
	t1 := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	storeAll(b, airPending(aqiRow("old", hourAt(0), 30)), nil, t1)
	storeAll(b, airPending(aqiRow("recent", hourAt(40), 30)), nil, t1.Add(40*time.Hour))
	storeAll(b, airPending(aqiRow("now", hourAt(49), 30)), nil, t1.Add(49*time.Hour))
	_, old := b.stations[postgis.StationRef{ID: "old"}]
	_, recent := b.stations[postgis.StationRef{ID: "recent"}]
	if old || !recent || len(b.stations) != 2 {
		t.Errorf("got stations %v; want old forgotten after 48 h unseen, recent and now kept", keys(b.stations))
	}
}

func keys[V any](m map[postgis.StationRef]V) []string {
	var out []string
	for k := range m {
		out = append(out, k.Province+"/"+k.ID)
	}
	slices.Sort(out)
	return out
}

func TestWaterAlarm(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name       string
		level      *float64
		l1, l2, l3 *float64
		want       int16
	}{
		{"below I", f(9.0), f(9.5), f(10.5), f(11.5), 0},
		{"at I", f(9.5), f(9.5), f(10.5), f(11.5), 1},
		{"between II and III", f(11), f(9.5), f(10.5), f(11.5), 2},
		{"above III", f(12.1), f(9.5), f(10.5), f(11.5), 3},
		{"no level", nil, f(9.5), f(10.5), f(11.5), 0},
		{"no thresholds", f(12), nil, nil, nil, 0},
		{"only III known", f(12), nil, nil, f(11.5), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := WaterAlarm(tt.level, tt.l1, tt.l2, tt.l3); got != tt.want {
				t.Errorf("got %d; want %d", got, tt.want)
			}
		})
	}
}

func waterPending(rows ...postgis.WaterRow) *pending {
	p := &pending{}
	for _, r := range rows {
		m := &iocv1.WaterObserved{WaterLevel: r.WaterLevel, AlarmLevel_1: r.AlarmLevel1, AlarmLevel_2: r.AlarmLevel2, AlarmLevel_3: r.AlarmLevel3}
		p.add(decoded{kind: subjects.KindWater, ops: waterKind, msg: m, row: r}, firstDelivery{})
	}
	return p
}

type fakeLevels struct {
	Store
	levels map[postgis.StationRef][3]*float64
}

func (f fakeLevels) WaterAlarmLevels(context.Context) (map[postgis.StationRef][3]*float64, error) {
	return f.levels, nil
}

// TestWaterBookRemembersAlarmLevels: an observation with only its water level
// is rated against the levels its station sent before (or had stored at start).
func TestWaterBookRemembersAlarmLevels(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	now := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	b := newWaterBook()
	if err := b.warm(context.Background(), fakeLevels{levels: map[postgis.StationRef][3]*float64{{ID: "stored"}: {f(3), f(4), f(5)}, {Province: "79", ID: "a"}: {f(1), f(2), f(3)}}}, now); err != nil {
		t.Fatal(err)
	}
	p := waterPending(
		postgis.WaterRow{StationID: "a", WaterLevel: f(9), AlarmLevel1: f(9.5), AlarmLevel2: f(10.5), AlarmLevel3: f(11.5)},
		postgis.WaterRow{StationID: "a", WaterLevel: f(10.7)},
		postgis.WaterRow{StationID: "a", WaterLevel: f(10.7), AlarmLevel2: f(11)}, // a new level II
		postgis.WaterRow{StationID: "stored", WaterLevel: f(4.2)},
		postgis.WaterRow{StationID: "new", WaterLevel: f(100)},
	)
	b.fill(p, now)
	for i, want := range []int16{0, 2, 1, 2, 0} {
		if got := p.batch.Water[i].WaterAlarm; got != want || p.items[waterKind][i].d.row.(postgis.WaterRow).WaterAlarm != want {
			t.Errorf("row %d: got alarm %d (state row %d); want %d", i, got, p.items[waterKind][i].d.row.(postgis.WaterRow).WaterAlarm, want)
		}
	}
	if m := p.items[waterKind][1].d.msg.(*iocv1.WaterObserved); m.GetAlarmLevel_1() != 9.5 || m.GetAlarmLevel_3() != 11.5 {
		t.Errorf("the level-only observation's event: got levels %v %v; want the station's 9.5 and 11.5", m.AlarmLevel_1, m.AlarmLevel_3)
	}
	if r := p.batch.Water[1]; r.AlarmLevel2 == nil || *r.AlarmLevel2 != 10.5 {
		t.Errorf("the level-only observation's row: got level II %v; want 10.5", r.AlarmLevel2)
	}
	b.fill(waterPending(), now.Add(31*24*time.Hour))
	if len(b.stations) != 0 {
		t.Errorf("after 31 days unseen: got stations %v; want none", keys(b.stations))
	}
}

// TestStationBooksKeepProvincesApart: the same station id from a source of
// another province (another station, or one taking over this one) never
// enters this province's station: its AQI hours, in the batch and after, and
// its water alarm levels (the states keep them apart too: postgis's
// TestEntityNotTakenAcrossProvinces).
func TestStationBooksKeepProvincesApart(t *testing.T) {
	in := func(r postgis.AirRow, province string) postgis.AirRow {
		r.Province, r.EventID = province, province+"/"+r.EventID
		return r
	}
	t1 := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	mixed, alone := newAQIBook(quietLog()), newAQIBook(quietLog())
	var pMixed, pAlone *pending
	for h := range 12 {
		own := in(aqiRow("st-x", hourAt(h), 30+float64(h)), "01")
		pAlone = airPending(own)
		storeAll(alone, pAlone, nil, t1)
		// In one batch with the owner's row, and before it: the shared
		// scratch of a batch's rows of one station must not mix them.
		pMixed = airPending(in(aqiRow("st-x", hourAt(h).Add(-time.Minute), 900), "79"), own)
		storeAll(mixed, pMixed, nil, t1)
	}
	if got, want := pMixed.batch.Air[1].AQI.Value, pAlone.batch.Air[0].AQI.Value; got == nil || want == nil || *got != *want {
		t.Errorf("01's st-x rated %s in a batch with 79's st-x; want %s as alone", fmtAQI(got), fmtAQI(want))
	}
	own, other := mixed.stations[postgis.StationRef{Province: "01", ID: "st-x"}], mixed.stations[postgis.StationRef{Province: "79", ID: "st-x"}]
	if own == nil || other == nil || len(mixed.stations) != 2 {
		t.Fatalf("stations %v; want 01/st-x and 79/st-x apart", keys(mixed.stations))
	}
	at := hourAt(5)
	if got, want := index(&own.calc, at).GetHourly(), index(&alone.stations[postgis.StationRef{Province: "01", ID: "st-x"}].calc, at).GetHourly(); got != want {
		t.Errorf("01's st-x hourly AQI %d with 79's readings beside it; want %d as alone", got, want)
	}

	f := func(v float64) *float64 { return &v }
	w := newWaterBook()
	p := waterPending(
		postgis.WaterRow{StationID: "h", Province: "79", WaterLevel: f(1), AlarmLevel1: f(0.5), AlarmLevel2: f(0.6), AlarmLevel3: f(0.7)},
		postgis.WaterRow{StationID: "h", Province: "01", WaterLevel: f(5)},
	)
	w.fill(p, t1)
	if got := p.batch.Water[1].WaterAlarm; got != 0 || p.batch.Water[1].AlarmLevel3 != nil {
		t.Errorf("01's h rated against 79's alarm levels: alarm %d, level III %v; want none", got, p.batch.Water[1].AlarmLevel3)
	}
}

func fmtAQI(v *int32) string {
	if v == nil {
		return "no AQI"
	}
	return strconv.Itoa(int(*v))
}
