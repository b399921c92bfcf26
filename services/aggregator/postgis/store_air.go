package postgis

import (
	"time"

	"github.com/jackc/pgx/v5"
)

// airStore stores air observations in air_observation and each station's
// state in sensor; Result.Air.Inserted says which rows were new (for the
// AQI calculators). With roll-ups on, the inserts add their contributions to
// rollup (sql_rollup.go) and Result.Rollups lists the roll-ups written.
var airStore = kindStore{
	rows:        func(b Batch) int { return len(b.Air) },
	partitioned: "air_observation",
	observedAt:  func(b Batch, i int) time.Time { return b.Air[i].ObservedAt },
	staging: &staging{"air_staging", sqlCreateAirStaging, airStagingColumns,
		func(b Batch, i int) []any { return airValues(i, &b.Air[i]) }},
	queue: func(pb *pgx.Batch, b Batch, res *Result, ro rollupOptions) func() {
		if ro.on {
			pb.Queue(sqlInsertAirRollup, ro.lateness).Query(collectInsertedRollups(&res.Air.New, &res.Air.Inserted, airKeys(b.Air), &res.Rollups))
		} else {
			pb.Queue(sqlInsertAir).Query(collectInserted(&res.Air.New, &res.Air.Inserted, airKeys(b.Air)))
		}
		pb.Queue(sqlUpsertSensorAir).Query(collectChanged(&res.Air.Changed))
		return nil
	},
	result: func(res *Result) *KindResult { return &res.Air },
}

// trafficStore stores traffic observations in traffic_observation and each
// segment's state in road_segment.
// With roll-ups on, the inserts add their contributions to rollup
// (sql_rollup.go) and Result.Rollups lists the roll-ups written.
var trafficStore = kindStore{
	rows:        func(b Batch) int { return len(b.Traffic) },
	partitioned: "traffic_observation",
	observedAt:  func(b Batch, i int) time.Time { return b.Traffic[i].ObservedAt },
	staging: &staging{"traffic_staging", sqlCreateTrafficStaging, trafficStagingColumns,
		func(b Batch, i int) []any { return trafficValues(i, &b.Traffic[i]) }},
	queue: func(pb *pgx.Batch, _ Batch, res *Result, ro rollupOptions) func() {
		if ro.on {
			pb.Queue(sqlInsertTrafficRollup, ro.lateness).Query(collectInsertedRollups(&res.Traffic.New, nil, nil, &res.Rollups))
		} else {
			pb.Queue(sqlInsertTraffic).Query(countRows(&res.Traffic.New))
		}
		pb.Queue(sqlUpsertRoadSegment).Query(collectChanged(&res.Traffic.Changed))
		return nil
	},
	result: func(res *Result) *KindResult { return &res.Traffic },
}
