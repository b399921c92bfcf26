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

// queueGeneric queues the statements that store the batch's rows of registered kinds.
func queueGeneric(pb *pgx.Batch, b Batch, res *Result) {
	if len(b.Generic) > 0 {
		pb.Queue(sqlInsertGeneric).Query(countRows(&res.Generic.New))
		pb.Queue(sqlUpsertSensorGeneric).Query(collectChanged(&res.Generic.Changed))
	}
}
