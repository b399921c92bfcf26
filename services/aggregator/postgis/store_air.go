package postgis

import (
	"time"

	"github.com/jackc/pgx/v5"
)

// airStore stores air observations in air_observation and each station's
// state in sensor; Result.Air.Inserted says which rows were new (for the
// AQI calculators). Its contribute hook gives the roll-ups the rows inserted.
var airStore = kindStore{
	rows:        func(b Batch) int { return len(b.Air) },
	partitioned: "air_observation",
	observedAt:  func(b Batch, i int) time.Time { return b.Air[i].ObservedAt },
	staging: &staging{"air_staging", sqlCreateAirStaging, airStagingColumns,
		func(b Batch, i int) []any { return airValues(i, &b.Air[i]) }},
	direct: airDirect,
	queue: func(pb *pgx.Batch, b Batch, res *Result, _ rollupOptions) func() {
		pb.Queue(sqlInsertAir).Query(collectInserted(&res.Air.New, &res.Air.Inserted, airKeys(b.Air)))
		pb.Queue(sqlUpsertSensorAir).Query(collectChanged(&res.Air.Changed))
		return nil
	},
	units: func(b Batch, out []string) []string {
		for i := range b.Air {
			out = append(out, b.Air[i].UnitCode)
		}
		return out
	},
	contribute: func(b Batch, res *Result, emit func(contribution)) {
		for _, i := range res.Air.Inserted {
			r := &b.Air[i]
			c := contribution{layer: "air", unit: r.UnitCode, province: r.Province, observed: r.ObservedAt, received: r.ReceivedAt, entity: r.StationID}
			if v := r.AQI.Value; v != nil {
				c.figures.AQIN, c.figures.AQISum, c.figures.AQIMax = 1, float64(*v), v
				if r.AQI.Band != 0 {
					band := r.AQI.Band
					c.figures.BandMax = &band
					c.grade = min(max(band, 0), 6)
				}
				if r.AQI.Dominant != "" {
					dom := r.AQI.Dominant
					c.figures.Dominant = &dom
				}
			}
			emit(c)
		}
	},
	result: func(res *Result) *KindResult { return &res.Air },
}

// trafficStore stores traffic observations in traffic_observation and each
// segment's state in road_segment.
// Its contribute hook gives the roll-ups the rows inserted.
var trafficStore = kindStore{
	rows:        func(b Batch) int { return len(b.Traffic) },
	partitioned: "traffic_observation",
	observedAt:  func(b Batch, i int) time.Time { return b.Traffic[i].ObservedAt },
	staging: &staging{"traffic_staging", sqlCreateTrafficStaging, trafficStagingColumns,
		func(b Batch, i int) []any { return trafficValues(i, &b.Traffic[i]) }},
	direct: trafficDirect,
	queue: func(pb *pgx.Batch, b Batch, res *Result, _ rollupOptions) func() {
		pb.Queue(sqlInsertTraffic).Query(collectInserted(&res.Traffic.New, &res.Traffic.Inserted, trafficKeys(b.Traffic)))
		pb.Queue(sqlUpsertRoadSegment).Query(collectChanged(&res.Traffic.Changed))
		return nil
	},
	units: func(b Batch, out []string) []string {
		for i := range b.Traffic {
			out = append(out, b.Traffic[i].UnitCode)
		}
		return out
	},
	contribute: func(b Batch, res *Result, emit func(contribution)) {
		for _, i := range res.Traffic.Inserted {
			r := &b.Traffic[i]
			c := contribution{layer: "traffic", unit: r.UnitCode, province: r.Province, observed: r.ObservedAt, received: r.ReceivedAt, entity: r.SegmentID}
			f := &c.figures
			if r.Intensity != nil {
				f.Vehicles = *r.Intensity
				if r.AverageVehicleSpeed != nil {
					f.SpeedW, f.SpeedWSum = *r.Intensity, *r.Intensity**r.AverageVehicleSpeed
				}
			}
			if r.Congested != nil {
				f.CongestedKnown = 1
				if *r.Congested {
					f.CongestedN, c.grade = 1, 1
				}
			}
			emit(c)
		}
	},
	result: func(res *Result) *KindResult { return &res.Traffic },
}
