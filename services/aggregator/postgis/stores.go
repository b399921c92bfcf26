package postgis

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// kindStore is how WriteBatch stores the rows of one kind of a Batch.
// WriteBatch (ensurePartitions, stage, apply) iterates over kindStores and
// switches on no kind.
type kindStore struct {
	// rows is the number of the kind's rows in b.
	rows func(b Batch) int
	// partitioned, optional, is the table partitioned by month that the rows
	// go to, and observedAt the time of row i that picks its partition.
	partitioned string
	observedAt  func(b Batch, i int) time.Time
	// staging, optional, is the temporary table the rows are copied into.
	staging *staging
	// direct, optional, writes the rows straight into their table when
	// they are all new (writeDirect); a batch takes that way only when
	// every kind with rows in it has one.
	direct *direct
	// queue, optional, queues the statements that move the staged rows into
	// their tables, recording in res what they did; the statements of every
	// kind run in one round trip. The func it returns, if any, runs once
	// every result was read (to combine the results of several statements).
	queue func(pb *pgx.Batch, b Batch, res *Result, ro rollupOptions) (finish func())
	// write, optional, stores the rows in the transaction after the round
	// trip, statement by statement (the reports' workflow; the alerts' turns
	// the alerts activated or ended into roll-up changes).
	write func(ctx context.Context, tx pgx.Tx, b Batch, res *Result) error
	// units, optional for a kind with roll-ups, appends the units of the
	// kind's rows of b to out.
	units func(b Batch, out []string) []string
	// contribute, optional, is the kind's roll-up hook: it emits the
	// contribution of every row of b that res says was inserted (never one
	// the database already had), once the rows are applied (store_rollup.go).
	contribute func(b Batch, res *Result, emit func(contribution))
	// result, optional, is the kind's KindResult in res, whose Duplicates
	// apply sets from its New.
	result func(res *Result) *KindResult
	// inserted, for a kind with contribute and no result (the reports), is
	// where res holds the positions of its rows inserted.
	inserted func(res *Result) *[]int
}

// insertedOf returns where res holds the positions of k's rows inserted;
// nil for a kind without roll-ups.
func (k kindStore) insertedOf(res *Result) *[]int {
	switch {
	case k.inserted != nil:
		return k.inserted(res)
	case k.result != nil && k.contribute != nil:
		return &k.result(res).Inserted
	}
	return nil
}

// staging is a temporary table that a kind's rows are copied into.
type staging struct {
	table, create string
	columns       []string
	// values are the column values of row i of the kind in b.
	values func(b Batch, i int) []any
}

// kindStores are the stores of every kind of a Batch, in the order their
// statements run. A kind is its file (row type, staging, statements) and one
// line here.
var kindStores = []kindStore{
	airStore,
	trafficStore,
	waterStore,
	weatherStore,
	genericStore,
	alertStore,
	reportStore,
}
