package postgis

import (
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twpayne/go-geom"
)

// GenericRow is one observation of a kind registered with internal/kind,
// stored in observation_generic; the entity's state is its row of sensor.
type GenericRow struct {
	Kind       string
	SourceID   string
	EventID    string
	EntityID   string
	Name       string // empty keeps the known one
	Province   string
	UnitCode   string
	ObservedAt time.Time
	ReceivedAt time.Time
	Location   *geom.Point // nil when the item had none
	Values     map[string]float64
}

func genericValues(i int, r *GenericRow) []any {
	props := make(map[string]any, len(r.Values))
	for k, v := range r.Values {
		props[k] = v
	}
	return []any{
		i, r.Kind, r.SourceID, r.EventID, r.ObservedAt, r.ReceivedAt, r.EntityID, r.Name, r.Province, r.UnitCode,
		geomValue(r.Location), props,
	}
}

// genericStore stores the observations of registered kinds in
// observation_generic and each entity's state in sensor.
var genericStore = kindStore{
	rows:        func(b Batch) int { return len(b.Generic) },
	partitioned: "observation_generic",
	observedAt:  func(b Batch, i int) time.Time { return b.Generic[i].ObservedAt },
	staging: &staging{"generic_staging", sqlCreateGenericStaging, genericStagingColumns,
		func(b Batch, i int) []any { return genericValues(i, &b.Generic[i]) }},
	queue: func(pb *pgx.Batch, b Batch, res *Result, _ rollupOptions) func() {
		pb.Queue(sqlInsertGeneric).Query(collectGenericInserted(&res.Generic.New, &res.Generic.Inserted, b.Generic))
		pb.Queue(sqlUpsertSensorGeneric).Query(collectChanged(&res.Generic.Changed))
		return nil
	},
	result: func(res *Result) *KindResult { return &res.Generic },
}

// collectGenericInserted is collectInserted for the rows of registered
// kinds, whose idempotency key has the kind too (sqlInsertGeneric's
// RETURNING kind, source_id, event_id, observed_at).
func collectGenericInserted(n *int, idx *[]int, rows []GenericRow) func(pgx.Rows) error {
	type key struct {
		kind string
		insertedKey
	}
	keys := make(map[key]int, len(rows))
	for i := len(rows) - 1; i >= 0; i-- { // of two rows with one key, the first is the one stored
		r := &rows[i]
		keys[key{r.Kind, insertedKey{r.SourceID, r.EventID, r.ObservedAt.UnixMicro()}}] = i
	}
	return func(rs pgx.Rows) error {
		for rs.Next() {
			var k key
			var at time.Time
			if err := rs.Scan(&k.kind, &k.source, &k.event, &at); err != nil {
				return err
			}
			*n++
			k.observed = at.UnixMicro()
			if i, ok := keys[k]; ok {
				*idx = append(*idx, i)
			}
		}
		return rs.Err()
	}
}
