package aggregator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twpayne/go-geom"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

func waterEvent(t testing.TB, station string, at time.Time, level float64) *iocv1.WaterObserved {
	return &iocv1.WaterObserved{
		Id: station + "@" + at.UTC().Format(time.RFC3339), EntityId: station, ObservedAt: timestamppb.New(at),
		Location: mustWKB(t, geom.NewPointFlat(geom.XY, []float64{105.86, 21.04})),
		Origin:   &iocv1.Origin{SourceId: sourceID, Province: province, Unit: unit, ReceivedAt: timestamppb.New(at)},
		Name:     "Trạm thủy văn Hà Nội", WaterLevel: proto.Float64(level),
		AlarmLevel_1: proto.Float64(9.5), AlarmLevel_2: proto.Float64(10.5), AlarmLevel_3: proto.Float64(11.5),
		Ph: proto.Float64(7.2), Other: map[string]float64{"NO3": 0.01},
	}
}

func weatherEvent(t testing.TB, station string, at time.Time, temp float64) *iocv1.WeatherObserved {
	return &iocv1.WeatherObserved{
		Id: station + "@" + at.UTC().Format(time.RFC3339), EntityId: station, ObservedAt: timestamppb.New(at),
		Location:    mustWKB(t, geom.NewPointFlat(geom.XY, []float64{105.80, 21.02})),
		Origin:      &iocv1.Origin{SourceId: sourceID, Province: province, Unit: unit, ReceivedAt: timestamppb.New(at)},
		Temperature: proto.Float64(temp), RelativeHumidity: proto.Float64(0.8), Precipitation: proto.Float64(3.5),
		Other: map[string]float64{"illuminance": 1000},
	}
}

// stationMsg builds a water or weather feed message as ingest publishes it.
func stationMsg(t testing.TB, kind string, m interface {
	proto.Message
	GetId() string
	GetEntityId() string
	GetObservedAt() *timestamppb.Timestamp
}) *nats.Msg {
	t.Helper()
	body, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	h := ce.Event{ID: m.GetId(), Source: ce.SourceURN(province, unit), Type: ce.ObservedType(kind), Subject: m.GetEntityId(),
		Time: m.GetObservedAt().AsTime()}.Header()
	h[nats.MsgIdHdr] = []string{sourceID + "/" + m.GetId()}
	h[HeaderSource] = []string{sourceID}
	return &nats.Msg{Subject: subjects.Feed(province, unit, kind), Header: h, Data: body}
}

func TestWaterAndWeatherStates(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	publish(t, ne.JS,
		stationMsg(t, subjects.KindWater, waterEvent(t, "hydro-long-bien", t0, 9.1)),
		stationMsg(t, subjects.KindWater, waterEvent(t, "hydro-long-bien", t0.Add(time.Hour), 10.8)),
		stationMsg(t, subjects.KindWeather, weatherEvent(t, "wx-lang", t0, 31.5)),
	)
	r := start(t, ne, pool, Config{Durable: "agg-stations"})
	waitRows(t, pool, "water_observation", 2)
	waitRows(t, pool, "weather_observation", 1)
	waitIdle(t, ne.JS, "agg-stations")

	ws := waitState(t, ne.JS, subjects.KindWater, "hydro-long-bien", func(es *iocv1.EntityState) bool { return es.GetWater().GetWaterLevel() == 10.8 })
	if ws.GetWaterAlarm() != 2 || ws.GetLayer() != "water" || ws.GetWater().GetOther()["NO3"] != 0.01 || ws.GetWater().GetPh() != 7.2 {
		t.Errorf("got water state %v; want alarm II at 10.8 m with pH and NO3", ws)
	}
	xs := waitState(t, ne.JS, subjects.KindWeather, "wx-lang", func(es *iocv1.EntityState) bool { return es.GetWeather() != nil })
	if xs.GetWeather().GetTemperature() != 31.5 || xs.GetWeather().GetOther()["illuminance"] != 1000 || xs.GetUnit() != unit {
		t.Errorf("got weather state %v; want 31.5 °C, illuminance 1000, unit %s", xs, unit)
	}
	var alarms []int
	rows, err := pool.Query(context.Background(), `SELECT water_alarm FROM water_observation ORDER BY observed_at`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a int
		if err := rows.Scan(&a); err != nil {
			t.Fatal(err)
		}
		alarms = append(alarms, a)
	}
	if len(alarms) != 2 || alarms[0] != 0 || alarms[1] != 2 {
		t.Errorf("got stored alarms %v; want [0 2]", alarms)
	}

	// A restarted aggregator rates a level-only observation against the
	// station's alarm levels it stored before.
	r.stop(t)
	start(t, ne, pool, Config{Durable: "agg-stations"})
	levelOnly := waterEvent(t, "hydro-long-bien", t0.Add(2*time.Hour), 11.6)
	levelOnly.AlarmLevel_1, levelOnly.AlarmLevel_2, levelOnly.AlarmLevel_3 = nil, nil, nil
	publish(t, ne.JS, stationMsg(t, subjects.KindWater, levelOnly))
	ws = waitState(t, ne.JS, subjects.KindWater, "hydro-long-bien", func(es *iocv1.EntityState) bool { return es.GetWater().GetWaterLevel() == 11.6 })
	if ws.GetWaterAlarm() != 3 || ws.GetWater().GetAlarmLevel_3() != 11.5 {
		t.Errorf("got state %v; want alarm III with the station's level III 11.5", ws)
	}
}

// TestAQIWarmsOnRestart: a restarted aggregator rates a station's next
// observation with the hours stored before the restart.
func TestAQIWarmsOnRestart(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	const station = "urn:ngsi-ld:Device:st-0"
	base := time.Now().UTC().Truncate(time.Hour).Add(-12 * time.Hour)
	var msgs []*nats.Msg
	for h := range 11 {
		m := airEvent(t, 0, base.Add(time.Duration(h)*time.Hour+10*time.Minute), 50)
		m.Pm10 = nil
		msgs = append(msgs, feedMsg(t, subjects.KindAir, m, ""))
	}
	publish(t, ne.JS, msgs...)
	r := start(t, ne, pool, Config{Durable: "agg-aqi"})
	waitRows(t, pool, "air_observation", 11)
	waitIdle(t, ne.JS, "agg-aqi")
	first := waitState(t, ne.JS, subjects.KindAir, station, func(es *iocv1.EntityState) bool { return es.GetAqi() != nil })
	if first.GetAqi().GetHourly() != 100 {
		t.Errorf("before the restart: got %v; want AQI 100", first.GetAqi())
	}
	r.stop(t)

	start(t, ne, pool, Config{Durable: "agg-aqi"})
	last := airEvent(t, 0, base.Add(11*time.Hour+10*time.Minute), 50)
	last.Pm10 = nil
	publish(t, ne.JS, feedMsg(t, subjects.KindAir, last, ""))
	es := waitState(t, ne.JS, subjects.KindAir, station, func(es *iocv1.EntityState) bool { return es.GetAir().GetId() == last.GetId() })
	x := es.GetAqi()
	if x.Hourly == nil || x.GetHourly() != 100 || x.GetBand() != 2 || x.GetColor() != "#FFFF00" || x.GetReason() != "" {
		t.Errorf("after the restart: got %v; want AQI 100 (band 2, #FFFF00) from the 11 stored hours and the new one", x)
	}
	var aqi, band int
	var dom string
	var lv []byte
	err := pool.QueryRow(context.Background(), `SELECT o.aqi, o.aqi_band, o.aqi_dominant, s.last_values->'aqi'
		FROM air_observation o JOIN sensor s ON s.kind = 'air' AND s.id = o.station_id WHERE o.event_id = $1`, last.GetId()).Scan(&aqi, &band, &dom, &lv)
	if err != nil {
		t.Fatal(err)
	}
	if aqi != 100 || band != 2 || dom != "pm25" || len(lv) == 0 {
		t.Errorf("got stored AQI %d band %d dominant %q last_values.aqi %s; want 100, 2, pm25 and the AQI", aqi, band, dom, lv)
	}
}

// FuzzDecodeStations feeds arbitrary water and weather bodies to the decoder:
// no panic, and what it accepts is storable (finite numbers, no NUL, a time
// after 1970, a Point or nothing) with an alarm level in 0..3 that the level
// has reached.
func FuzzDecodeStations(f *testing.F) {
	for _, m := range []proto.Message{waterEvent(f, "h", t0, 10.8), weatherEvent(f, "w", t0, 31)} {
		body, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		kind := subjects.KindWater
		if _, ok := m.(*iocv1.WeatherObserved); ok {
			kind = subjects.KindWeather
		}
		f.Add(kind, sourceID, body)
	}
	f.Fuzz(func(t *testing.T, kind, source string, body []byte) {
		if kind != subjects.KindWater && kind != subjects.KindWeather {
			return
		}
		h := ce.Event{ID: "id", Source: "urn:ioc:01:00070", Type: "t"}.Header()
		h[HeaderSource] = []string{source}
		d, err := decode(subjects.Feed(province, unit, kind), h, body, t0)
		if err != nil {
			return
		}
		var texts []string
		var extra map[string]any
		var observed time.Time
		switch kind {
		case subjects.KindWater:
			r := d.row.(postgis.WaterRow)
			texts, extra, observed = []string{r.SourceID, r.EventID, r.StationID, r.Name}, r.Extra, r.ObservedAt
			if r.WaterAlarm < 0 || r.WaterAlarm > 3 {
				t.Fatalf("water alarm %d", r.WaterAlarm)
			}
			if r.WaterAlarm > 0 {
				l := []*float64{r.AlarmLevel1, r.AlarmLevel2, r.AlarmLevel3}[r.WaterAlarm-1]
				if r.WaterLevel == nil || l == nil || *r.WaterLevel < *l {
					t.Fatalf("alarm %d without the level reaching it: %+v", r.WaterAlarm, r)
				}
			}
		case subjects.KindWeather:
			r := d.row.(postgis.WeatherRow)
			texts, extra, observed = []string{r.SourceID, r.EventID, r.StationID, r.Name}, r.Extra, r.ObservedAt
		}
		if observed.Unix() <= 0 {
			t.Fatalf("accepted observed_at %v", observed)
		}
		for _, s := range texts {
			if strings.ContainsRune(s, 0) {
				t.Fatalf("accepted a NUL byte in %q", s)
			}
		}
		for k, v := range extra {
			if f, ok := v.(float64); !ok || !finite(f) || k == "" || strings.ContainsRune(k, 0) {
				t.Fatalf("accepted extra %q = %v", k, v)
			}
		}
	})
}
