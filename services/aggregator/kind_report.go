package aggregator

import (
	"github.com/nats-io/nats.go"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// reportKind is the aggregator's side of citizen reports: the report store
// (postgis/store_reports.go) keeps their workflow and decides their states;
// the decoder and the status actions are in reports.go.
var reportKind = &kindOps{
	name:   subjects.KindReport,
	decode: (*decoded).decodeReport,
	add:    func(b *postgis.Batch, row any) { b.Reports = append(b.Reports, row.(postgis.ReportRow)) },
	// The report store's states are the reports as stored (more), not
	// indexed by row: its result has no Changed.
	result: func(res postgis.Result) postgis.KindResult {
		return postgis.KindResult{New: res.Reports.New, Duplicates: res.Reports.Duplicates, Inserted: res.Reports.Inserted}
	},
	more: func(_ *Service, res postgis.Result) ([]*nats.Msg, error) {
		out := make([]*nats.Msg, 0, len(res.Reports.States))
		for _, r := range res.Reports.States {
			msg, err := reportStateMsg(r)
			if err != nil {
				return nil, err
			}
			out = append(out, msg)
		}
		return out, nil
	},
}
