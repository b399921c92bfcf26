package postgis

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twpayne/go-geom"
)

// AQI is the hourly VN_AQI of an air observation, computed by the aggregator
// when it writes the row.
type AQI struct {
	// Value is the hourly AQI; nil when it could not be computed (Reason says why).
	Value *int32
	// Band is 1 (Tốt) … 6 (Nguy hại); 0 without a value.
	Band int16
	// Dominant is the FIWARE name of the dominant pollutant ("pm25"); empty without a value.
	Dominant string
	// JSON is what sensor.last_values keeps under "aqi" (hourly, band, dominant,
	// hour, reason, daily); nil stores nothing.
	JSON []byte
}

// WaterRow is one observation at a hydrological or water-quality station.
type WaterRow struct {
	SourceID        string
	EventID         string
	StationID       string
	Name            string // empty keeps the known one
	Province        string
	UnitCode        string
	ObservedAt      time.Time
	ReceivedAt      time.Time
	Location        *geom.Point
	WaterLevel      *float64 // m above the station's datum
	AlarmLevel1     *float64 // m, báo động I
	AlarmLevel2     *float64
	AlarmLevel3     *float64
	WaterAlarm      int16 // the highest alarm level reached, 0..3
	Flow            *float64
	Temperature     *float64
	PH              *float64
	Conductivity    *float64
	Turbidity       *float64
	DissolvedOxygen *float64
	Extra           map[string]any // every other value, by its FIWARE name
}

// WeatherRow is one observation at a weather station.
type WeatherRow struct {
	SourceID            string
	EventID             string
	StationID           string
	Name                string
	Province            string
	UnitCode            string
	ObservedAt          time.Time
	ReceivedAt          time.Time
	Location            *geom.Point
	Temperature         *float64
	RelativeHumidity    *float64
	Precipitation       *float64
	WindSpeed           *float64
	WindDirection       *float64
	AtmosphericPressure *float64
	Extra               map[string]any
}

func waterValues(i int, r *WaterRow) []any {
	return []any{
		i, r.SourceID, r.EventID, r.ObservedAt, r.ReceivedAt, r.StationID, r.Name, r.Province, r.UnitCode,
		geomValue(r.Location), r.WaterLevel, r.AlarmLevel1, r.AlarmLevel2, r.AlarmLevel3, r.WaterAlarm, r.Flow,
		r.Temperature, r.PH, r.Conductivity, r.Turbidity, r.DissolvedOxygen, extraValue(r.Extra),
	}
}

func weatherValues(i int, r *WeatherRow) []any {
	return []any{
		i, r.SourceID, r.EventID, r.ObservedAt, r.ReceivedAt, r.StationID, r.Name, r.Province, r.UnitCode,
		geomValue(r.Location), r.Temperature, r.RelativeHumidity, r.Precipitation, r.WindSpeed, r.WindDirection,
		r.AtmosphericPressure, extraValue(r.Extra),
	}
}

// waterStore stores water observations in water_observation and each
// station's state in sensor; its contribute hook gives the roll-ups the rows inserted.
var waterStore = kindStore{
	rows:        func(b Batch) int { return len(b.Water) },
	partitioned: "water_observation",
	observedAt:  func(b Batch, i int) time.Time { return b.Water[i].ObservedAt },
	staging: &staging{"water_staging", sqlCreateWaterStaging, waterStagingColumns,
		func(b Batch, i int) []any { return waterValues(i, &b.Water[i]) }},
	direct: waterDirect,
	queue: func(pb *pgx.Batch, b Batch, res *Result, _ rollupOptions) func() {
		pb.Queue(sqlInsertWater).Query(collectInserted(&res.Water.New, &res.Water.Inserted, indexKeys(len(b.Water), func(i int) (string, string, time.Time) {
			return b.Water[i].SourceID, b.Water[i].EventID, b.Water[i].ObservedAt
		})))
		pb.Queue(sqlUpsertSensorWater).Query(collectChanged(&res.Water.Changed))
		return nil
	},
	units: func(b Batch, out []string) []string {
		for i := range b.Water {
			out = append(out, b.Water[i].UnitCode)
		}
		return out
	},
	contribute: func(b Batch, res *Result, emit func(contribution)) {
		for _, i := range res.Water.Inserted {
			r := &b.Water[i]
			c := contribution{layer: "water", unit: r.UnitCode, province: r.Province, observed: r.ObservedAt, received: r.ReceivedAt, entity: r.StationID}
			c.figures.LevelMax = r.WaterLevel
			alarm := r.WaterAlarm
			c.grade = min(max(alarm, 0), 3)
			c.figures.AlarmMax = &alarm
			if alarm >= 1 && alarm <= 3 {
				c.figures.AlarmN[alarm-1] = 1
			}
			emit(c)
		}
	},
	result: func(res *Result) *KindResult { return &res.Water },
}

// weatherStore stores weather observations in weather_observation and each
// station's state in sensor; its contribute hook gives the roll-ups the rows inserted.
var weatherStore = kindStore{
	rows:        func(b Batch) int { return len(b.Weather) },
	partitioned: "weather_observation",
	observedAt:  func(b Batch, i int) time.Time { return b.Weather[i].ObservedAt },
	staging: &staging{"weather_staging", sqlCreateWeatherStaging, weatherStagingColumns,
		func(b Batch, i int) []any { return weatherValues(i, &b.Weather[i]) }},
	direct: weatherDirect,
	queue: func(pb *pgx.Batch, b Batch, res *Result, _ rollupOptions) func() {
		pb.Queue(sqlInsertWeather).Query(collectInserted(&res.Weather.New, &res.Weather.Inserted, indexKeys(len(b.Weather), func(i int) (string, string, time.Time) {
			return b.Weather[i].SourceID, b.Weather[i].EventID, b.Weather[i].ObservedAt
		})))
		pb.Queue(sqlUpsertSensorWeather).Query(collectChanged(&res.Weather.Changed))
		return nil
	},
	units: func(b Batch, out []string) []string {
		for i := range b.Weather {
			out = append(out, b.Weather[i].UnitCode)
		}
		return out
	},
	contribute: func(b Batch, res *Result, emit func(contribution)) {
		for _, i := range res.Weather.Inserted {
			r := &b.Weather[i]
			c := contribution{layer: "weather", unit: r.UnitCode, province: r.Province, observed: r.ObservedAt, received: r.ReceivedAt}
			if r.Temperature != nil {
				c.figures.TempN, c.figures.TempSum = 1, *r.Temperature
			}
			if r.Precipitation != nil {
				c.figures.PrecipSum = *r.Precipitation
			}
			c.figures.WindMax = r.WindSpeed
			emit(c)
		}
	},
	result: func(res *Result) *KindResult { return &res.Weather },
}

// insertedKey is the idempotency key of a raw observation: source, event
// and observation time (to the microsecond PostgreSQL keeps).
type insertedKey struct {
	source, event string
	observed      int64
}

// collectInserted records which rows of the batch an INSERT … RETURNING
// source_id, event_id, observed_at stored for the first time, by their index
// in the batch (looked up in keys).
func collectInserted(n *int, idx *[]int, keys map[insertedKey]int) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		for rows.Next() {
			var k insertedKey
			var at time.Time
			if err := rows.Scan(&k.source, &k.event, &at); err != nil {
				return err
			}
			*n++
			k.observed = at.UnixMicro()
			if i, ok := keys[k]; ok {
				*idx = append(*idx, i)
			}
		}
		return rows.Err()
	}
}

// indexKeys indexes n rows by their idempotency key (key(i) of row i); of
// two rows with one key, the first is the one stored.
func indexKeys(n int, key func(i int) (source, event string, observed time.Time)) map[insertedKey]int {
	m := make(map[insertedKey]int, n)
	for i := n - 1; i >= 0; i-- {
		src, ev, at := key(i)
		m[insertedKey{src, ev, at.UnixMicro()}] = i
	}
	return m
}

// airKeys indexes the air rows of a batch by their idempotency key.
func airKeys(rows []AirRow) map[insertedKey]int {
	return indexKeys(len(rows), func(i int) (string, string, time.Time) {
		return rows[i].SourceID, rows[i].EventID, rows[i].ObservedAt
	})
}

// trafficKeys indexes the traffic rows of a batch by their idempotency key.
func trafficKeys(rows []TrafficRow) map[insertedKey]int {
	return indexKeys(len(rows), func(i int) (string, string, time.Time) {
		return rows[i].SourceID, rows[i].EventID, rows[i].ObservedAt
	})
}

// AirSample is one stored air observation's pollutants, for warming the
// aggregator's AQI calculators.
type AirSample struct {
	StationID  string
	Province   string // of the row: a station id is its province's (sqlSensorOnConflict)
	ObservedAt time.Time
	PM25       *float64
	PM10       *float64
	O3         *float64
	CO         *float64
	SO2        *float64
	NO2        *float64
}

// AirHistory returns the pollutants of the air observations made since
// since, of stations (nil means every station), oldest first, in one query.
func (s *Store) AirHistory(ctx context.Context, since time.Time, stations []string) ([]AirSample, error) {
	rows, err := s.pool.Query(ctx, sqlAirHistory, since, stations)
	if err != nil {
		return nil, fmt.Errorf("reading air history since %s: %w", since.Format(time.RFC3339), err)
	}
	defer rows.Close()
	var out []AirSample
	for rows.Next() {
		var a AirSample
		if err := rows.Scan(&a.StationID, &a.Province, &a.ObservedAt, &a.PM25, &a.PM10, &a.O3, &a.CO, &a.SO2, &a.NO2); err != nil {
			return nil, fmt.Errorf("reading air history: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading air history: %w", err)
	}
	return out, nil
}

func aqiBand(b int16) any {
	if b == 0 {
		return nil
	}
	return b
}

func nullText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// jsonValue passes JSON bytes as a string so that pgx COPYs them into jsonb as text.
func jsonValue(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// StationRef is a station of a province: the same id from another province
// is another station (sqlSensorOnConflict); the aggregator's AQI and water
// books key their stations by it too.
type StationRef struct{ Province, ID string }

// WaterAlarmLevels returns the alarm levels (báo động I, II, III, m; nil where
// unknown) last stored for each water station, in one query.
func (s *Store) WaterAlarmLevels(ctx context.Context) (map[StationRef][3]*float64, error) {
	rows, err := s.pool.Query(ctx, sqlWaterAlarmLevels)
	if err != nil {
		return nil, fmt.Errorf("reading water alarm levels: %w", err)
	}
	defer rows.Close()
	out := map[StationRef][3]*float64{}
	for rows.Next() {
		var ref StationRef
		var l [3]*float64
		if err := rows.Scan(&ref.ID, &ref.Province, &l[0], &l[1], &l[2]); err != nil {
			return nil, fmt.Errorf("reading water alarm levels: %w", err)
		}
		out[ref] = l
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading water alarm levels: %w", err)
	}
	return out, nil
}
