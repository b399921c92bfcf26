package aggregator

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twpayne/go-geom"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/feedcheck"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/internal/testkit/rollupcheck"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// TestRollupsExactlyOnceAcrossKill feeds air and traffic observations of a
// ward under its province under VN, in a random order, some received late,
// some also resent under another Nats-Msg-Id, stops the aggregator
// mid-stream (the batches it had not committed are redelivered) and restarts
// it; every stored roll-up, of the ward and of the units above it, then
// equals plain SQL over the raw rows (rollupcheck), counting each row once,
// and ROLLUPS holds the last roll-up of each window with the stored figures.
func TestRollupsExactlyOnceAcrossKill(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	insertUnit(t, pool, "VN", "national", "", 102, 8)
	insertUnit(t, pool, province, "province", "VN", 105, 20)
	insertUnit(t, pool, unit, "commune", province, 105, 20)
	const stations, steps = 10, 30
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var msgs []*nats.Msg
	for k := range steps {
		at := t0.Add(time.Duration(k) * 3 * time.Minute)
		for s := range stations {
			a := airEvent(t, s, at, float64(10+k))
			if rng.IntN(8) == 0 { // late for every window but its day's
				a.Origin.ReceivedAt = timestamppb.New(at.Add(3 * time.Hour))
			}
			tr := trafficEvent(t, s, at, float64(5+k))
			msgs = append(msgs, feedMsg(t, subjects.KindAir, a, ""), feedMsg(t, subjects.KindTraffic, tr, ""))
			if s%3 == 0 { // a resend JetStream does not deduplicate
				msgs = append(msgs, feedMsg(t, subjects.KindAir, a, fmt.Sprintf("again-%d-%d", k, s)))
			}
		}
	}
	rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	published := make(chan struct{})
	go func() {
		defer close(published)
		for _, m := range msgs {
			if _, err := ne.JS.PublishMsg(context.Background(), m); err != nil {
				t.Errorf("publishing %s: %v", m.Subject, err)
				return
			}
		}
	}()
	// A batch of 25 holds ~10 air rows: 8 batches store about a quarter.
	killMidStream(t, ne, pool, "agg-rollup", 8, "air_observation", stations*steps)
	start(t, ne, pool, Config{Durable: "agg-rollup", BatchSize: 25})
	<-published
	waitRows(t, pool, "air_observation", stations*steps)
	waitRows(t, pool, "traffic_observation", stations*steps)
	waitIdle(t, ne.JS, "agg-rollup")

	// Each window's count equals the raw rows in it, for every window size.
	for _, q := range []struct{ layer, table string }{{"air", "air_observation"}, {"traffic", "traffic_observation"}} {
		var bad int
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM rollup r
			WHERE r.unit_code = $1 AND r.layer = $2 AND r.n + r.late <> (SELECT count(*) FROM `+q.table+` o
				WHERE o.unit_code = r.unit_code AND o.observed_at >= r.window_start
				AND o.observed_at < r.window_start + CASE r.win WHEN '1m' THEN interval '1 minute'
					WHEN '15m' THEN interval '15 minutes' WHEN '1h' THEN interval '1 hour' ELSE interval '1 day' END)`,
			unit, q.layer).Scan(&bad)
		if err != nil {
			t.Fatal(err)
		}
		if bad != 0 {
			t.Errorf("%d %s roll-ups count other than their raw rows", bad, q.layer)
		}
		var total int
		if err := pool.QueryRow(context.Background(), `SELECT coalesce(sum(n + late), 0) FROM rollup WHERE unit_code = $1 AND layer = $2 AND win = '1h'`, unit, q.layer).Scan(&total); err != nil {
			t.Fatal(err)
		}
		if total != stations*steps {
			t.Errorf("%s hourly roll-ups count %d rows; want %d", q.layer, total, stations*steps)
		}
	}
	rollupcheck.Check(t, pool)
	if n := rows(t, pool, "rollup WHERE unit_code = 'VN'"); n == 0 {
		t.Fatal("no roll-up of VN: the tree was not walked")
	}

	// ROLLUPS ends with the stored figures of each hourly window of the unit.
	st, err := ne.JS.Stream(context.Background(), subjects.StreamRollups)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(context.Background(), subjects.Rollup(province, unit, subjects.KindAir, "1d"))
	if err != nil {
		t.Fatalf("last air roll-up of the day: %v", err)
	}
	if got := raw.Header.Get(ce.HeaderType); got != ce.RollupType(subjects.KindAir) {
		t.Errorf("ce-type %q; want %q", got, ce.RollupType(subjects.KindAir))
	}
	var got rollupJSON
	if err := json.Unmarshal(raw.Data, &got); err != nil {
		t.Fatalf("decoding %s: %v", raw.Data, err)
	}
	var n int64
	var maxAQI *int32
	if err := pool.QueryRow(context.Background(), `SELECT n, aqi_max FROM rollup WHERE unit_code = $1 AND layer = 'air' AND win = '1d' AND window_start = $2`,
		unit, got.WindowStart).Scan(&n, &maxAQI); err != nil {
		t.Fatal(err)
	}
	if got.Observations != n || got.Observations != stations*steps || got.Unit != unit || got.Province != province {
		t.Errorf("published roll-up %+v; stored n %d, want %d observations of %s/%s", got, n, stations*steps, province, unit)
	}
	if (maxAQI == nil) != (got.AQIMax == nil) || (maxAQI != nil && *maxAQI != *got.AQIMax) {
		t.Errorf("published aqiMax %v; stored %v", got.AQIMax, maxAQI)
	}
}

// TestRollupStreamKeepsLatestWindow: after an observation of an earlier
// window than the unit's latest (a correction, published again), the last
// roll-up of each window length on ROLLUPS, whose subject has no window
// start, is still the latest window's, with its stored figures.
func TestRollupStreamKeepsLatestWindow(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	start(t, ne, pool, Config{Durable: "agg-latest"})
	latest, earlier := t0.Add(40*time.Minute), t0.Add(-20*time.Minute) // another minute, quarter and hour, the same day
	publish(t, ne.JS, feedMsg(t, subjects.KindAir, airEvent(t, 0, latest, 30), ""))
	waitRows(t, pool, "air_observation", 1)
	waitIdle(t, ne.JS, "agg-latest")
	publish(t, ne.JS, feedMsg(t, subjects.KindAir, airEvent(t, 1, earlier, 20), ""))
	waitRows(t, pool, "air_observation", 2)
	waitIdle(t, ne.JS, "agg-latest")

	st, err := ne.JS.Stream(context.Background(), subjects.StreamRollups)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		name  string
		start time.Time
	}{{"1m", latest.Truncate(time.Minute)}, {"15m", latest.Truncate(15 * time.Minute)}, {"1h", latest.Truncate(time.Hour)}} {
		raw, err := st.GetLastMsgForSubject(context.Background(), subjects.Rollup(province, unit, subjects.KindAir, w.name))
		if err != nil {
			t.Fatalf("last %s air roll-up of %s: %v", w.name, unit, err)
		}
		var got rollupJSON
		if err := json.Unmarshal(raw.Data, &got); err != nil {
			t.Fatalf("decoding %s: %v", raw.Data, err)
		}
		var n, late int64
		if err := pool.QueryRow(context.Background(), `SELECT n, late FROM rollup WHERE unit_code = $1 AND layer = 'air' AND win = $2 AND window_start = $3`,
			unit, w.name, w.start).Scan(&n, &late); err != nil {
			t.Fatal(err)
		}
		if !got.WindowStart.Equal(w.start) || got.Observations != n || got.Late != late || n+late != 1 {
			t.Errorf("last %s roll-up of %s on ROLLUPS: window %v, %d observations, %d late; want the latest window %v as stored: %d, %d",
				w.name, unit, got.WindowStart, got.Observations, got.Late, w.start, n, late)
		}
	}
}

// TestRollupFigures: the published figures are the stored sums divided, and
// absent without data.
func TestRollupFigures(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	i16 := func(v int16) *int16 { return &v }
	f := func(v float64) *float64 { return &v }
	start := time.Date(2026, 11, 21, 17, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		r    postgis.Rollup
		want string
	}{
		{postgis.Rollup{UnitCode: "01", Layer: "air", Window: "1d", WindowStart: start, Province: "01", N: 2,
			Figures: postgis.Figures{AQIN: 2, AQISum: 150, AQIMax: i32(100), BandMax: i16(2)}},
			`"aqiMax":100,"aqiMean":75,"worstBand":2`},
		{postgis.Rollup{Layer: "traffic", Window: "1h", WindowStart: start, N: 2,
			Figures: postgis.Figures{SpeedW: 100, SpeedWSum: 3000, CongestedN: 1, CongestedKnown: 4, Vehicles: 120}},
			`"meanSpeed":30,"congestedShare":0.25,"vehicles":120`},
		{postgis.Rollup{Layer: "water", Window: "15m", WindowStart: start, N: 1,
			Figures: postgis.Figures{LevelMax: f(9.8), AlarmMax: i16(2), AlarmN: [3]int64{0, 1, 0}}},
			`"levelMax":9.8,"alarmMax":2,"alarmObservations":{"1":0,"2":1,"3":0}`},
		{postgis.Rollup{Layer: "weather", Window: "1m", WindowStart: start, N: 2,
			Figures: postgis.Figures{TempN: 2, TempSum: 57, PrecipSum: 3, WindMax: f(12)}},
			`"temperatureMean":28.5,"precipitation":3,"windMax":12`},
		// Late only: no figure of the layer, only the known stations and stale sources.
		{postgis.Rollup{Layer: "air", Window: "1m", WindowStart: start, Late: 1}, `"updatedAt":"0001-01-01T00:00:00Z","stationsKnown":0,"stale":0}`},
		{postgis.Rollup{Layer: "air", Window: "1h", WindowStart: start, N: 3, Members: 2, GradeN: [7]int64{0, 1, 0, 1}, Known: 5, Stale: 1},
			`"stationsKnown":5,"stale":1,"stationsReporting":2,"stationsByBand":{"0":0,"1":1,"2":0,"3":1,"4":0,"5":0,"6":0}`},
		{postgis.Rollup{Layer: "water", Window: "1h", WindowStart: start, N: 3, Members: 2, GradeN: [7]int64{1, 0, 0, 1}, Known: 2},
			`"stationsKnown":2,"stale":0,"stationsReporting":2,"stationsByAlarm":{"0":1,"1":0,"2":0,"3":1}`},
		{postgis.Rollup{Layer: "traffic", Window: "1h", WindowStart: start, N: 9, Members: 4, GradeN: [7]int64{3, 1}, Known: 6},
			`"segmentsKnown":6,"stale":0,"segmentsReporting":4,"congestedSegmentShare":0.25`},
		{postgis.Rollup{Layer: "alert", Window: "1h", WindowStart: start, AlertsActive: [postgis.Grades]int64{0, 2, 0, 0, 1},
			Figures: postgis.Figures{Activated: [postgis.Grades]int64{0, 0, 0, 0, 1}, Ended: [postgis.Grades]int64{1}}},
			`"activated":{"Extreme":1,"Minor":0,"Moderate":0,"Severe":0,"Unknown":0},"ended":{"Extreme":0,"Minor":0,"Moderate":0,"Severe":0,"Unknown":1},"alertsActive":{"Extreme":1,"Minor":2,"Moderate":0,"Severe":0,"Unknown":0}`},
		{postgis.Rollup{Layer: "report", Window: "1d", WindowStart: start, N: 3, ReportsOpen: 5, Figures: postgis.Figures{RejectedN: 1, OpenN: 4}},
			`"opened":3,"resolved":0,"resolvedWithinSla":0,"overdue":0,"rejected":1,"open":5`},
	} {
		b, err := json.Marshal(figures(tt.r))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tt.want) {
			t.Errorf("%s: %s; want it to hold %s", tt.r.Layer, b, tt.want)
		}
	}
	if got := figures(postgis.Rollup{Window: "1d", WindowStart: start}).WindowEnd; !got.Equal(start.Add(24 * time.Hour)) {
		t.Errorf("window end %v; want a day later", got)
	}
}

// TestRollupsGolden: fixed observations of every layer with roll-ups, in two
// wards of a province under VN, with a redelivered batch and a late row, and
// alerts activated, superseded and cancelled, give the roll-ups of
// testdata/rollups.golden.json at every level, as published, with their
// gauges (-update rewrites it).
func TestRollupsGolden(t *testing.T) {
	pool := testDB(t)
	insertUnit(t, pool, "VN", "national", "", 100, 8)
	insertUnit(t, pool, province, "province", "VN", 105, 20)
	insertUnit(t, pool, unit, "commune", province, 105, 20)
	insertUnit(t, pool, "00073", "commune", province, 105, 20)
	store := postgis.NewStore(pool)
	at := time.Date(2026, 11, 21, 16, 58, 30, 0, time.UTC) // two minutes before the day ends in Hà Nội
	f := func(v float64) *float64 { return &v }
	aqi := func(v int32, band int16, dom string) postgis.AQI {
		return postgis.AQI{Value: &v, Band: band, Dominant: dom}
	}
	yes, no := true, false
	b := postgis.Batch{
		Air: []postgis.AirRow{
			{SourceID: "s", EventID: "a1", StationID: "st1", Province: province, UnitCode: unit, ObservedAt: at, ReceivedAt: at, AQI: aqi(80, 2, "pm25")},
			{SourceID: "s", EventID: "a2", StationID: "st2", Province: province, UnitCode: "00073", ObservedAt: at.Add(time.Minute), ReceivedAt: at.Add(time.Minute), AQI: aqi(160, 4, "o3")},
			{SourceID: "s", EventID: "a3", StationID: "st1", Province: province, UnitCode: unit, ObservedAt: at.Add(2 * time.Minute), ReceivedAt: at.Add(2 * time.Minute)},
		},
		Traffic: []postgis.TrafficRow{
			{SourceID: "s", EventID: "t1", SegmentID: "g1", Province: province, UnitCode: unit, ObservedAt: at, ReceivedAt: at, Intensity: f(100), AverageVehicleSpeed: f(40), Congested: &no},
			{SourceID: "s", EventID: "t2", SegmentID: "g2", Province: province, UnitCode: "00073", ObservedAt: at, ReceivedAt: at, Intensity: f(300), AverageVehicleSpeed: f(8), Congested: &yes},
		},
		Water: []postgis.WaterRow{
			{SourceID: "s", EventID: "w1", StationID: "h1", Province: province, UnitCode: unit, ObservedAt: at, ReceivedAt: at, WaterLevel: f(10.7), WaterAlarm: 2},
		},
		Weather: []postgis.WeatherRow{
			{SourceID: "s", EventID: "m1", StationID: "k1", Province: province, UnitCode: "00073", ObservedAt: at, ReceivedAt: at, Temperature: f(27), Precipitation: f(1.5), WindSpeed: f(6)},
			{SourceID: "s", EventID: "m2", StationID: "k1", Province: province, UnitCode: "00073", ObservedAt: at.Add(time.Minute), ReceivedAt: at.Add(time.Minute), Temperature: f(26), Precipitation: f(0.5), WindSpeed: f(9)},
		},
		Reports: []postgis.ReportRow{ // flooding's SLA is 4 h, traffic's 24 h
			{SourceID: "s", EventID: "r1", Province: province, UnitCode: unit, Category: "flooding", Lon: 105.5, Lat: 20.5, ReportedAt: at, ReceivedAt: at},
			{SourceID: "s", EventID: "r2", Province: province, UnitCode: "00073", Category: "traffic", Lon: 105.5, Lat: 20.5, ReportedAt: at.Add(time.Minute), ReceivedAt: at.Add(time.Minute)},
		},
	}
	late := postgis.Batch{Air: []postgis.AirRow{ // received 3 h after: late for every window but the day's
		{SourceID: "s", EventID: "a0", StationID: "st1", Province: province, UnitCode: unit, ObservedAt: at.Add(-time.Hour), ReceivedAt: at.Add(2 * time.Hour), AQI: aqi(300, 6, "pm10")},
	}}
	worse := postgis.Batch{Air: []postgis.AirRow{ // st2 again in the same minute, in a worse band: moves from band 4 to 5
		{SourceID: "s", EventID: "a4", StationID: "st2", Province: province, UnitCode: "00073", ObservedAt: at.Add(70 * time.Second), ReceivedAt: at.Add(70 * time.Second), AQI: aqi(220, 5, "o3")},
	}}
	// Alerts (changes at their sent, never late): a1, Extreme, over the
	// three units of the box (counted once in 01 and VN); a2, Minor, in 00073
	// by its unit code; at 17:03:30 (the next day in Hà Nội) an Update of a1,
	// Moderate and active, ends a1; at 17:08:30 a Cancel ends a2. Each batch
	// is delivered twice: once counts.
	alert := func(id, msgType, severity string, sent time.Time, unitCode string, area geom.T, refs ...string) postgis.AlertRow {
		return postgis.AlertRow{SourceID: "s", EventID: id, Identifier: id, Sender: "kttv", Sent: sent, Status: "Actual",
			MsgType: msgType, Scope: "Public", Refs: refs, Info: []byte(`[{"severity":"` + severity + `"}]`), Area: area,
			Province: province, UnitCode: unitCode, ReceivedAt: sent}
	}
	alerts := postgis.Batch{Alerts: []postgis.AlertRow{
		alert("a1", "Alert", "Extreme", at, province, square(105.2, 20.2, 0.1)),
		alert("a2", "Alert", "Minor", at, "00073", nil),
	}}
	ends := postgis.Batch{Alerts: []postgis.AlertRow{
		alert("u1", "Update", "Moderate", at.Add(5*time.Minute), province, square(105.2, 20.2, 0.1), "kttv,a1,"+at.Format(time.RFC3339)),
		alert("c2", "Cancel", "Minor", at.Add(10*time.Minute), "00073", nil, "kttv,a2,"+at.Format(time.RFC3339)),
	}}
	for _, batch := range []postgis.Batch{b, b, late, late, worse, worse, alerts, alerts, ends, ends} {
		if _, err := store.WriteBatch(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	// The sweep 5 h later marks the flooding report overdue, at its deadline
	// (twice: once counts). A resolution counts at the clock's time, so it
	// is not in the golden file (postgis.TestRollupReportChanges checks it).
	for range 2 {
		if _, err := store.MarkReportsOverdue(context.Background(), []string{"s/r1"}, at.Add(5*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	// One stale source in the commune 00073: stale in 00073, 01 and VN.
	if _, err := pool.Exec(context.Background(), `INSERT INTO source_stats (source_id, unit_code, province, last_event_at, last_seen_at, first_seen_at, stale_since)
		VALUES ('s', '00073', $1, $2, $2, $2, $2)`, province, at); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(context.Background(), `SELECT unit_code, layer, win, window_start, province, n, late, aqi_n, aqi_sum, aqi_max, band_max, dominant,
		speed_w, speed_wsum, congested_n, congested_known, vehicles, level_max, alarm_max, alarm1_n, alarm2_n, alarm3_n,
		temp_n, temp_sum, precip_sum, wind_max, resolved_n, resolved_in_sla_n, overdue_n, members, grade_n,
		activated0_n, activated1_n, activated2_n, activated3_n, activated4_n, ended0_n, ended1_n, ended2_n, ended3_n, ended4_n,
		open_n, closed_n, rejected_n FROM rollup ORDER BY layer, win, window_start, unit_code`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var rs []postgis.Rollup
	for rows.Next() {
		var r postgis.Rollup
		var grades []int64
		if err := rows.Scan(&r.UnitCode, &r.Layer, &r.Window, &r.WindowStart, &r.Province, &r.N, &r.Late,
			&r.AQIN, &r.AQISum, &r.AQIMax, &r.BandMax, &r.Dominant, &r.SpeedW, &r.SpeedWSum, &r.CongestedN, &r.CongestedKnown,
			&r.Vehicles, &r.LevelMax, &r.AlarmMax, &r.AlarmN[0], &r.AlarmN[1], &r.AlarmN[2],
			&r.TempN, &r.TempSum, &r.PrecipSum, &r.WindMax, &r.ResolvedN, &r.ResolvedInSLAN, &r.OverdueN, &r.Members, &grades,
			&r.Activated[0], &r.Activated[1], &r.Activated[2], &r.Activated[3], &r.Activated[4],
			&r.Ended[0], &r.Ended[1], &r.Ended[2], &r.Ended[3], &r.Ended[4], &r.OpenN, &r.ClosedN, &r.RejectedN); err != nil {
			t.Fatal(err)
		}
		copy(r.GradeN[:], grades)
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if err := store.RollupContext(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	var out []rollupJSON
	for _, r := range rs {
		out = append(out, figures(r)) // updatedAt zero: the golden file holds no clock
	}
	got, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Golden(t, filepath.Join("testdata", "rollups.golden.json"), append(got, '\n'), *update)
}

// TestRollupMsgID: a roll-up published again with the same figures has the
// same CloudEvents id; with another figure (a stale source since), another.
func TestRollupMsgID(t *testing.T) {
	r := postgis.Rollup{UnitCode: unit, Province: province, Layer: "air", Window: "1h", WindowStart: t0, N: 3, UpdatedAt: t0.Add(time.Minute)}
	id := func(r postgis.Rollup) string {
		t.Helper()
		m, err := rollupMsg(r)
		if err != nil {
			t.Fatal(err)
		}
		return m.Header.Get(ce.HeaderID)
	}
	a, b := id(r), id(r)
	r.Stale = 1
	c := id(r)
	if a != b || a == c || !strings.HasPrefix(a, r.Key()+"@") {
		t.Fatalf("ids %q, %q, then with a stale source %q; want the first two equal, the third another, each after %s@", a, b, c, r.Key())
	}
}

// The roll-ups of an event at the latest time the hub takes
// (feedcheck.MaxEventTime) can be published: every window holding it, the day
// in Asia/Ho_Chi_Minh included, ends within what JSON's times can write
// (a day ending in year 10000 failed, and its batch was retried forever).
func TestRollupOfTheLatestTime(t *testing.T) {
	at := feedcheck.MaxEventTime
	for w, length := range windowLength {
		start := at.Truncate(length)
		if w == "1d" {
			start = at.Add(7 * time.Hour).Truncate(length).Add(-7 * time.Hour)
		}
		if _, err := rollupMsg(postgis.Rollup{UnitCode: unit, Province: province, Layer: "air", Window: w, WindowStart: start, UpdatedAt: at}); err != nil {
			t.Errorf("window %s of %v: %v", w, at, err)
		}
	}
}
