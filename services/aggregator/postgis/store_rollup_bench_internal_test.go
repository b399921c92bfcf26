package postgis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BenchmarkQueueRollups measures what a batch of the drain's shape costs
// the roll-ups in Go before anything is sent (queueRollups: contributions
// per unit and window, member counting, the statements' arguments): 500
// stations, one observation each in the same minute, under a ward →
// province → VN tree, each station's member row of the day held as a shared
// row (as from the store's memory); the stations of one ward (the drain's
// batches) or spread over 100. The baseline is the same
// batch's contributions walked without a unit or window: the floor of any
// per-row loop over the batch.
func BenchmarkQueueRollups(b *testing.B) {
	const n = 500
	at := time.Date(2026, 11, 21, 8, 30, 0, 0, time.UTC)
	day := dayWindow.start(at)
	from := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	aqi, band := int32(80), int16(2)
	ro := rollupOptions{on: true, lateness: 2 * time.Hour, known: newContextCache()}
	// wards is the number of wards of province 01 the stations are spread
	// over, station i in ward i % wards (one: the drain's batches; 100: a
	// province's feed, each row's ward another than the row before's).
	for _, wards := range []int{1, 100} {
		tree := unitTree{versions: map[string][]unitVersion{
			"01": {{parent: "VN", level: "province", from: from}},
			"VN": {{level: "national", from: from}},
		}, groups: map[string][]unitVersion{}}
		for w := range wards {
			tree.versions[fmt.Sprintf("%05d", 70+w)] = []unitVersion{{parent: "01", level: "commune", from: from}}
		}
		batch := Batch{Air: make([]AirRow, n)}
		for i := range batch.Air {
			batch.Air[i] = AirRow{SourceID: "src", EventID: fmt.Sprint(i), ObservedAt: at, ReceivedAt: at,
				StationID: fmt.Sprintf("urn:ngsi-ld:AirQualityObserved:st%04d", i), Province: "01", UnitCode: fmt.Sprintf("%05d", 70+i%wards),
				AQI: AQI{Value: &aqi, Band: band, Dominant: "pm25"}}
		}
		// rows are the member rows the batch starts from: every station's
		// shared row of the day, holding an earlier minute.
		rows := func() *memberRows {
			m := &memberRows{grades: make(map[memberKey]*memberRow, n), ranges: map[entityDay]minuteRange{}, optimistic: true}
			for i := range batch.Air {
				r := emptyMemberRow()
				r.head[0], r.version, r.units = 3, 1, []string{batch.Air[i].UnitCode, "01", "VN"}
				m.grades[memberKey{"air", batch.Air[i].StationID, day.Unix(), ""}] = r
				m.ranges[entityDay{"air", batch.Air[i].StationID, day.Unix()}] = minuteRange{0, minutesPerDay - 1}
			}
			return m
		}
		b.Run(fmt.Sprintf("queue/wards=%d", wards), func(b *testing.B) {
			in := make([]*memberRows, b.N)
			for i := range in {
				in[i] = rows()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				res := allInserted(batch)
				var pb pgx.Batch
				if _, err := queueRollups(context.Background(), nil, &pb, batch, &res, ro, rollupInput{tree: tree, members: in[i]}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	batch := Batch{Air: make([]AirRow, n)}
	for i := range batch.Air {
		batch.Air[i] = AirRow{SourceID: "src", EventID: fmt.Sprint(i), ObservedAt: at, ReceivedAt: at,
			StationID: fmt.Sprintf("st%04d", i), Province: "01", UnitCode: "00070", AQI: AQI{Value: &aqi, Band: band}}
	}
	b.Run("baseline_walk", func(b *testing.B) {
		b.ReportAllocs()
		var sum int64
		for b.Loop() {
			res := allInserted(batch)
			airStore.contribute(batch, &res, func(c contribution) { sum += c.figures.AQIN })
		}
		if sum == 0 {
			b.Fatal("no contribution")
		}
	})
}
