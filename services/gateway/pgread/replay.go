package pgread

import (
	"context"
	"fmt"
	"time"
)

// Replay: GET /v1/replay reads the province as the wall showed it at an
// instant "at" from stored history: per station or segment its latest
// observation observed at or before at and less than ReplayMaxAge before it
// (older: absent), the alerts active at at (active_from <= at < active_until,
// migration 00023), and the roll-ups of the 1h window holding at. Every
// statement takes the province ($1), at ($2), the unit codes a principal is
// limited to ($3, NULL: the whole province) and a row limit ($4). Entities
// come out as GeoJSON Features shaped like the live feed's (layer, entityId,
// province, unit, updatedAt, observation{id,time,values}).

// ReplayMaxAge is how old an observation may be at the replayed instant and still be shown.
const ReplayMaxAge = 2 * time.Hour

// sqlReplayLatest is, for each entity of the province (%[3]s: the ids from
// its current row), its latest observation in the window, found through the
// (id, observed_at) index of %[2]s: the work grows with the entities, not
// with the observations of the window. The observation's own province and
// unit decide whether it is shown (where the wall showed it).
const sqlReplayLatest = `(SELECT o.* FROM (%[3]s) e
    CROSS JOIN LATERAL (SELECT * FROM %[2]s x
        WHERE x.%[1]s = e.id AND x.observed_at <= $2::timestamptz AND x.observed_at > $2::timestamptz - interval '%[4]d seconds'
        ORDER BY x.observed_at DESC LIMIT 1) o
    WHERE o.province = $1 AND ($3::text[] IS NULL OR o.unit_code = ANY($3::text[]))) o`

func replayEntitySQL(layer, idCol, table, geomCol, values, extra string) string {
	entities := "SELECT id FROM sensor WHERE province = $1 AND kind = '" + layer + "'"
	if layer == "traffic" {
		entities = "SELECT id FROM road_segment WHERE province = $1"
	}
	return `SELECT json_build_object('type', 'Feature', 'id', '` + layer + `/' || o.` + idCol + `,
    'geometry', iochub_geojson(o.` + geomCol + `, 7)::json,
    'properties', json_strip_nulls(json_build_object('layer', '` + layer + `', 'entityId', o.` + idCol + `,
        'province', o.province, 'unit', o.unit_code, 'updatedAt', o.received_at,
        'observation', json_build_object('id', o.event_id, 'time', o.observed_at,
            'values', json_strip_nulls(json_build_object(` + values + `)))` + extra + `)))::text
FROM ` + fmt.Sprintf(sqlReplayLatest, idCol, table, entities, int(ReplayMaxAge/time.Second)) + `
ORDER BY o.` + idCol + `
LIMIT $4`
}

// The replay statements of each layer's entities.
var (
	SQLReplayAir = replayEntitySQL("air", "station_id", "air_observation", "location",
		`'pm25', o.pm25, 'pm10', o.pm10, 'no2', o.no2, 'o3', o.o3, 'co', o.co, 'so2', o.so2`,
		`, 'aqi', CASE WHEN o.aqi IS NULL THEN NULL ELSE json_build_object('hourly', o.aqi, 'band', o.aqi_band, 'dominant', o.aqi_dominant) END`)
	SQLReplayWater = replayEntitySQL("water", "station_id", "water_observation", "location",
		`'waterLevel', o.water_level, 'alarmLevel1', o.alarm_level_1, 'alarmLevel2', o.alarm_level_2,
            'alarmLevel3', o.alarm_level_3, 'flow', o.flow, 'temperature', o.temperature`,
		`, 'waterAlarm', o.water_alarm`)
	SQLReplayWeather = replayEntitySQL("weather", "station_id", "weather_observation", "location",
		`'temperature', o.temperature, 'relativeHumidity', o.relative_humidity, 'precipitation', o.precipitation,
            'windSpeed', o.wind_speed, 'windDirection', o.wind_direction, 'atmosphericPressure', o.atmospheric_pressure`, ``)
	SQLReplayTraffic = replayEntitySQL("traffic", "segment_id", "traffic_observation", "geom",
		`'intensity', o.intensity, 'occupancy', o.occupancy, 'averageVehicleSpeed', o.average_vehicle_speed,
            'congested', o.congested`, ``)
)

// SQLReplayAlerts lists the alerts of province $1 (placed there or touching
// it) active at $2: became active at or before it and not stopped by it.
const SQLReplayAlerts = `SELECT ` + alertColumns + `
FROM alert a
WHERE (a.province = $1 OR EXISTS (SELECT 1 FROM alert_unit u WHERE u.alert_id = a.id AND u.unit_code = $1))
  AND a.active_from IS NOT NULL AND a.active_from <= $2::timestamptz
  AND (a.active_until IS NULL OR a.active_until > $2::timestamptz)
  AND ($3::text[] IS NULL OR a.unit_code = ANY($3::text[])
       OR EXISTS (SELECT 1 FROM alert_unit u WHERE u.alert_id = a.id AND u.unit_code = ANY($3::text[])))
ORDER BY a.sent DESC, a.id
LIMIT $4`

// SQLReplayRollups are the 1h roll-ups of the window holding $2 of the
// province's units, as JSON shaped like the live roll-up documents.
const SQLReplayRollups = `SELECT json_strip_nulls(json_build_object('unit', r.unit_code, 'province', r.province,
    'layer', r.layer, 'window', r.win, 'windowStart', r.window_start, 'windowEnd', r.window_start + interval '1 hour',
    'observations', r.n, 'late', r.late, 'updatedAt', r.updated_at,
    'aqiMax', r.aqi_max, 'aqiMean', r.aqi_sum / nullif(r.aqi_n, 0), 'worstBand', r.band_max, 'dominant', r.dominant,
    'meanSpeed', r.speed_wsum / nullif(r.speed_w, 0),
    'congestedShare', r.congested_n::float8 / nullif(r.congested_known, 0), 'vehicles', r.vehicles,
    'levelMax', r.level_max, 'alarmMax', r.alarm_max, 'temperatureMean', r.temp_sum / nullif(r.temp_n, 0),
    'precipitation', r.precip_sum, 'windMax', r.wind_max))::text
FROM rollup r
WHERE r.province = $1 AND r.win = '1h'
  AND r.window_start = date_bin(interval '1 hour', $2::timestamptz, timestamptz '2000-01-01 00:00:00+00')
  AND ($3::text[] IS NULL OR r.unit_code = ANY($3::text[]))
  AND ($5::text[] IS NULL OR r.layer = ANY($5::text[]))
ORDER BY r.unit_code, r.layer
LIMIT $4`

// ReplayLayers are the replay statements of entities, by layer.
var ReplayLayers = map[string]string{"air": SQLReplayAir, "water": SQLReplayWater, "weather": SQLReplayWeather, "traffic": SQLReplayTraffic}

// ReplayQuery selects what Replay reads.
type ReplayQuery struct {
	Province string
	At       time.Time
	// Layers are the entity layers (air, traffic, water, weather) and
	// "alert"; the roll-ups of every layer are read whatever they are,
	// unless RollupLayers (not nil) lists the layers to read.
	Layers       []string
	RollupLayers []string
	// Units, when not nil, limits to these unit codes.
	Units []string
	// Limit is the most rows of each statement.
	Limit int
}

// ReplayResult is the province at an instant.
type ReplayResult struct {
	Entities [][]byte // GeoJSON Features
	Alerts   []AlertRow
	Rollups  [][]byte // roll-up documents
}

// Replay reads the province as it was at q.At.
func (s *Store) Replay(ctx context.Context, q ReplayQuery) (ReplayResult, error) {
	var out ReplayResult
	texts := func(sql, what string, more ...any) ([][]byte, error) {
		rows, err := s.pool.Query(ctx, sql, append([]any{q.Province, q.At, q.Units, q.Limit}, more...)...)
		if err != nil {
			return nil, fmt.Errorf("replaying %s of province %s: %w", what, q.Province, err)
		}
		defer rows.Close()
		var bs [][]byte
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				return nil, fmt.Errorf("reading replayed %s of province %s: %w", what, q.Province, err)
			}
			bs = append(bs, b)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("reading replayed %s of province %s: %w", what, q.Province, err)
		}
		return bs, nil
	}
	for _, l := range q.Layers {
		if l == "alert" {
			rows, err := s.pool.Query(ctx, SQLReplayAlerts, q.Province, q.At, q.Units, q.Limit)
			if err != nil {
				return out, fmt.Errorf("replaying alerts of province %s: %w", q.Province, err)
			}
			for rows.Next() {
				a, err := scanAlert(rows)
				if err != nil {
					rows.Close()
					return out, fmt.Errorf("reading replayed alerts of province %s: %w", q.Province, err)
				}
				out.Alerts = append(out.Alerts, a)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return out, fmt.Errorf("reading replayed alerts of province %s: %w", q.Province, err)
			}
			continue
		}
		sql, ok := ReplayLayers[l]
		if !ok {
			return out, fmt.Errorf("replay of layer %q: not a layer", l)
		}
		bs, err := texts(sql, l)
		if err != nil {
			return out, err
		}
		out.Entities = append(out.Entities, bs...)
	}
	var err error
	out.Rollups, err = texts(SQLReplayRollups, "roll-ups", q.RollupLayers)
	return out, err
}
