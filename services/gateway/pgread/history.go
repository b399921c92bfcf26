package pgread

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// History: GET /v1/history buckets a time range into at most N points, each
// the min, mean and max of a layer's values over the bucket and the number of
// observations it summarises. PostgreSQL does the bucketing (date_bin) and
// the aggregation; this package only frames the rows.
//
// Sources: the raw observation table of the layer (per station or segment, or
// per unit: the rows whose unit_code is one of the given codes), or the
// rollup table (per unit, one window length). Every statement takes the
// bucket width in seconds ($2), the origin of the buckets, which is also the
// start of the range ($3), and the end of the range ($4, exclusive).

// HistoryStat names one statistic of a value.
type HistoryStat string

// The statistics a history value may carry.
const (
	StatMin  HistoryStat = "min"
	StatMean HistoryStat = "mean"
	StatMax  HistoryStat = "max"
	StatSum  HistoryStat = "sum"
)

// HistoryValue is one value of a layer and the statistics a source gives of
// it, in the order of the statement's columns.
type HistoryValue struct {
	Name  string
	Stats []HistoryStat
}

// HistoryLayer is what one layer's history statements return: after the
// bucket start and the count, one column per statistic of each value.
type HistoryLayer struct {
	Name string
	// Raw are the values the raw statements give; Rollup those the roll-up
	// statement gives (roll-ups keep only mergeable parts, so fewer).
	Raw, Rollup []HistoryValue
	// SQLRawEntity, SQLRawUnits and SQLRollup are the statements: $1 the
	// station or segment id, the unit codes (text[]), or the unit code.
	SQLRawEntity, SQLRawUnits, SQLRollup string
}

var mmm = []HistoryStat{StatMin, StatMean, StatMax}

// Raw columns of each layer: min, mean, max of each value (and the sum of
// precipitation and intensity). The traffic speed's mean is weighted by
// intensity, as in the roll-ups (Σ intensity × speed / Σ intensity over the
// observations that give both).
const (
	sqlHistAirRawCols = `
       min(aqi)::float8, avg(aqi)::float8, max(aqi)::float8,
       min(pm25), avg(pm25), max(pm25), min(pm10), avg(pm10), max(pm10),
       min(no2), avg(no2), max(no2), min(o3), avg(o3), max(o3),
       min(co), avg(co), max(co), min(so2), avg(so2), max(so2)`
	sqlHistWaterRawCols = `
       min(water_level), avg(water_level), max(water_level)`
	sqlHistWeatherRawCols = `
       min(temperature), avg(temperature), max(temperature),
       min(precipitation), avg(precipitation), max(precipitation), sum(precipitation),
       min(wind_speed), avg(wind_speed), max(wind_speed)`
	sqlHistTrafficRawCols = `
       min(average_vehicle_speed),
       sum(intensity * average_vehicle_speed) / nullif(sum(intensity) FILTER (WHERE average_vehicle_speed IS NOT NULL), 0),
       max(average_vehicle_speed),
       min(intensity), avg(intensity), max(intensity), sum(intensity)`

	// sqlHistEntityScope keeps an entity's rows to the reader's scope ($5
	// every province; else the provinces $6 and the units $7): a station id
	// is the sources' and may have rows in places the reader may not see
	// (another province's source sent the same id, the station moved).
	sqlHistEntityScope = ` AND ($5::bool OR province = ANY($6::text[]) OR unit_code = ANY($7::text[]))`
	sqlHistBucket      = `
SELECT date_bin(make_interval(secs => $2::float8), observed_at, $3::timestamptz) AS t, count(*),`
	sqlHistRange = ` AND observed_at >= $3::timestamptz AND observed_at < $4::timestamptz
GROUP BY 1 ORDER BY 1`
)

// The raw statements, per layer and filter.
const (
	SQLHistoryAirEntity     = sqlHistBucket + sqlHistAirRawCols + "\nFROM air_observation WHERE station_id = $1" + sqlHistEntityScope + sqlHistRange
	SQLHistoryAirUnits      = sqlHistBucket + sqlHistAirRawCols + "\nFROM air_observation WHERE unit_code = ANY($1::text[])" + sqlHistRange
	SQLHistoryWaterEntity   = sqlHistBucket + sqlHistWaterRawCols + "\nFROM water_observation WHERE station_id = $1" + sqlHistEntityScope + sqlHistRange
	SQLHistoryWaterUnits    = sqlHistBucket + sqlHistWaterRawCols + "\nFROM water_observation WHERE unit_code = ANY($1::text[])" + sqlHistRange
	SQLHistoryWeatherEntity = sqlHistBucket + sqlHistWeatherRawCols + "\nFROM weather_observation WHERE station_id = $1" + sqlHistEntityScope + sqlHistRange
	SQLHistoryWeatherUnits  = sqlHistBucket + sqlHistWeatherRawCols + "\nFROM weather_observation WHERE unit_code = ANY($1::text[])" + sqlHistRange
	SQLHistoryTrafficEntity = sqlHistBucket + sqlHistTrafficRawCols + "\nFROM traffic_observation WHERE segment_id = $1" + sqlHistEntityScope + sqlHistRange
	SQLHistoryTrafficUnits  = sqlHistBucket + sqlHistTrafficRawCols + "\nFROM traffic_observation WHERE unit_code = ANY($1::text[])" + sqlHistRange
)

// The roll-up statements: $1 the unit, $5 the window ('1m', '15m', '1h',
// '1d'). A window belongs to the bucket holding its start; the caller makes
// the bucket width a multiple of the window and the origin a window start,
// so every window lies wholly in one bucket. The count is Σ n.
const (
	sqlHistRollupBucket = `
SELECT date_bin(make_interval(secs => $2::float8), window_start, $3::timestamptz) AS t, sum(n)::bigint,`
	sqlHistRollupRange = `
FROM rollup
WHERE unit_code = $1 AND layer = $6 AND win = $5 AND window_start >= $3::timestamptz AND window_start < $4::timestamptz
GROUP BY 1 ORDER BY 1`

	SQLHistoryAirRollup = sqlHistRollupBucket + `
       sum(aqi_sum) / nullif(sum(aqi_n), 0), max(aqi_max)::float8` + sqlHistRollupRange
	SQLHistoryWaterRollup = sqlHistRollupBucket + `
       max(level_max)` + sqlHistRollupRange
	SQLHistoryWeatherRollup = sqlHistRollupBucket + `
       sum(temp_sum) / nullif(sum(temp_n), 0),
       sum(precip_sum),
       max(wind_max)` + sqlHistRollupRange
	SQLHistoryTrafficRollup = sqlHistRollupBucket + `
       sum(speed_wsum) / nullif(sum(speed_w), 0),
       sum(vehicles) / nullif(sum(n), 0), sum(vehicles)` + sqlHistRollupRange
)

// HistoryLayers are the layers history serves, by name.
var HistoryLayers = map[string]HistoryLayer{
	"air": {
		Name: "air",
		Raw: []HistoryValue{{"aqi", mmm}, {"pm25", mmm}, {"pm10", mmm}, {"no2", mmm}, {"o3", mmm},
			{"co", mmm}, {"so2", mmm}},
		Rollup:       []HistoryValue{{"aqi", []HistoryStat{StatMean, StatMax}}},
		SQLRawEntity: SQLHistoryAirEntity, SQLRawUnits: SQLHistoryAirUnits, SQLRollup: SQLHistoryAirRollup,
	},
	"water": {
		Name:         "water",
		Raw:          []HistoryValue{{"level", mmm}},
		Rollup:       []HistoryValue{{"level", []HistoryStat{StatMax}}},
		SQLRawEntity: SQLHistoryWaterEntity, SQLRawUnits: SQLHistoryWaterUnits, SQLRollup: SQLHistoryWaterRollup,
	},
	"weather": {
		Name: "weather",
		Raw: []HistoryValue{{"temperature", mmm}, {"precipitation", []HistoryStat{StatMin, StatMean, StatMax, StatSum}},
			{"wind", mmm}},
		Rollup: []HistoryValue{{"temperature", []HistoryStat{StatMean}}, {"precipitation", []HistoryStat{StatSum}},
			{"wind", []HistoryStat{StatMax}}},
		SQLRawEntity: SQLHistoryWeatherEntity, SQLRawUnits: SQLHistoryWeatherUnits, SQLRollup: SQLHistoryWeatherRollup,
	},
	"traffic": {
		Name:         "traffic",
		Raw:          []HistoryValue{{"speed", mmm}, {"intensity", []HistoryStat{StatMin, StatMean, StatMax, StatSum}}},
		Rollup:       []HistoryValue{{"speed", []HistoryStat{StatMean}}, {"intensity", []HistoryStat{StatMean, StatSum}}},
		SQLRawEntity: SQLHistoryTrafficEntity, SQLRawUnits: SQLHistoryTrafficUnits, SQLRollup: SQLHistoryTrafficRollup,
	},
}

// HistoryPoint is one bucket: its start, the observations it summarises and
// one figure per statistic column (nil where the bucket has no value).
type HistoryPoint struct {
	T       time.Time
	Count   int64
	Figures []*float64
}

// HistoryQuery selects one history.
type HistoryQuery struct {
	Layer HistoryLayer
	// Entity is a station or segment id (raw rows, those in Scope); else
	// Units (raw rows of those units) or, with Window set, Unit's roll-ups of
	// that window.
	Entity string
	Scope  Scope
	Units  []string
	Unit   string
	Window string
	// From is the origin of the buckets and the start of the range, To its
	// end (exclusive); Bucket the buckets' width (whole seconds).
	From, To time.Time
	Bucket   time.Duration
}

// History runs q and returns its points, oldest first, with the values
// whose columns they hold (HistoryLayer.Raw or .Rollup).
func (s *Store) History(ctx context.Context, q HistoryQuery) ([]HistoryPoint, []HistoryValue, error) {
	secs := q.Bucket.Seconds()
	var (
		rows   pgx.Rows
		err    error
		values []HistoryValue
	)
	switch {
	case q.Window != "":
		values = q.Layer.Rollup
		rows, err = s.pool.Query(ctx, q.Layer.SQLRollup, q.Unit, secs, q.From, q.To, q.Window, q.Layer.Name)
	case q.Entity != "":
		values = q.Layer.Raw
		rows, err = s.pool.Query(ctx, q.Layer.SQLRawEntity, q.Entity, secs, q.From, q.To,
			q.Scope.All, nonNil(q.Scope.Provinces), nonNil(q.Scope.Units))
	default:
		values = q.Layer.Raw
		rows, err = s.pool.Query(ctx, q.Layer.SQLRawUnits, q.Units, secs, q.From, q.To)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("querying %s history: %w", q.Layer.Name, err)
	}
	defer rows.Close()
	n := 0
	for _, v := range values {
		n += len(v.Stats)
	}
	var out []HistoryPoint
	dest := make([]any, 2+n)
	for rows.Next() {
		p := HistoryPoint{Figures: make([]*float64, n)}
		dest[0], dest[1] = &p.T, &p.Count
		for i := range p.Figures {
			dest[2+i] = &p.Figures[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, fmt.Errorf("reading %s history: %w", q.Layer.Name, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading %s history: %w", q.Layer.Name, err)
	}
	return out, values, nil
}

// SQLHistoryEntity finds a station (sensor of kind $2) or, for traffic, a
// road segment by id: its province and unit, for the scope check.
const SQLHistoryEntity = `
SELECT province, unit_code FROM sensor WHERE kind = $2 AND id = $1 AND $2 <> 'traffic'
UNION ALL
SELECT province, unit_code FROM road_segment WHERE id = $1 AND $2 = 'traffic'
LIMIT 1`

// HistoryEntity returns the province and unit of the station or segment id
// of layer; found is false when there is none.
func (s *Store) HistoryEntity(ctx context.Context, layer, id string) (province, unit string, found bool, err error) {
	err = s.pool.QueryRow(ctx, SQLHistoryEntity, id, layer).Scan(&province, &unit)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("looking up %s entity %s: %w", layer, id, err)
	}
	return province, unit, true, nil
}

// nonNil is s, or an empty list for nil (a NULL array matches nothing in
// ANY, but says less plainly that nothing is meant).
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
