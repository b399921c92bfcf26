package postgis

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twpayne/go-geom"

	"github.com/iochub/iochub/internal/flagx"
)

// SRID is the spatial reference of every geometry iochub stores: WGS 84.
const SRID = 4326

// AirRow is one air-quality observation at a station.
type AirRow struct {
	SourceID   string
	EventID    string // unique per source: <item id>@<observedAt>
	StationID  string
	Name       string // the station's name; empty keeps the known one
	Province   string
	UnitCode   string
	ObservedAt time.Time
	ReceivedAt time.Time
	Location   *geom.Point // nil when the item had none
	PM25       *float64    // µg/m³, like the other pollutants; nil when absent
	PM10       *float64
	NO2        *float64
	O3         *float64
	CO         *float64
	SO2        *float64
	Extra      map[string]any // every other value, by its FIWARE name
	AQI        AQI            // the hourly VN_AQI at this observation
}

// TrafficRow is one traffic observation on a road segment.
type TrafficRow struct {
	SourceID            string
	EventID             string
	SegmentID           string
	Name                string
	Province            string
	UnitCode            string
	ObservedAt          time.Time
	ReceivedAt          time.Time
	Geom                *geom.LineString // nil when the item had none
	Intensity           *float64
	Occupancy           *float64
	AverageVehicleSpeed *float64
	Congested           *bool
	LaneID              *int32
	Extra               map[string]any
}

// AlertRow is one CAP alert.
type AlertRow struct {
	SourceID   string
	EventID    string // the CAP identifier
	Identifier string
	Sender     string
	Sent       time.Time
	Status     string
	MsgType    string
	Scope      string
	Refs       []string // CAP references, "sender,identifier,sent"
	Info       []byte   // JSON array of the info blocks
	Area       geom.T   // every area geometry collected; nil when the alert has none. Stored as iochub_alert_area makes it (migration 00008)
	// Expires is when the alert stops being in force: the latest expires of
	// its info blocks, else the hub's default (ExpiresDefault); nil for never.
	Expires *time.Time
	// ExpiresDefault says Expires is the hub's default lifetime
	// (aggregator Config.AlertDefaultTTL), not the message's: the message
	// names no expiry, and Info and Body are left without one.
	ExpiresDefault bool
	Province       string
	UnitCode       string
	ReceivedAt     time.Time
	Body           []byte // the marshalled ioc.v1.Alert, kept to republish its state later
}

// ID is the alert's key in the alert table: <source_id>/<identifier>.
func (r AlertRow) ID() string { return r.SourceID + "/" + r.Identifier }

// Batch is what one transaction writes.
type Batch struct {
	Air     []AirRow
	Traffic []TrafficRow
	Alerts  []AlertRow
	Water   []WaterRow
	Weather []WeatherRow
	Reports []ReportRow
	// Generic are the observations of the kinds registered with internal/kind.
	Generic []GenericRow
	// Redelivered says that some of the batch's messages were delivered
	// before: an earlier delivery may have committed and not published, so
	// the roll-ups of its rows stored before are read back to publish again
	// (Result.Rollups). A resend under a new message id is not redelivered:
	// its roll-ups were published when it was first stored.
	Redelivered bool
	// Sources are the feed sources and units of the batch's rows (not the
	// hub's own), each once: with roll-ups on, those stale are fresh again
	// in the batch's transaction (sqlFreshSources), so that its roll-ups do
	// not count them stale; the source's activity (Activity) then cancels
	// their stale alerts.
	Sources []SourceUnit
	// Activity, when set, says what the batch brings each source and unit
	// given what its statements stored (the Result WriteBatch will return):
	// it is recorded in the batch's transaction (sqlRecordActivity), seen at
	// ActivityAt (the hub's clock), so that a source's figures count a
	// batch's events exactly when its rows are stored, whatever happens
	// after the commit. It gives each source and unit pair once (an upsert
	// cannot change a row twice; the aggregator's sourceActivity does).
	Activity   func(Result) []SourceActivity
	ActivityAt time.Time
}

// SourceUnit is a feed source and a unit its rows are in.
type SourceUnit struct{ SourceID, UnitCode string }

// Len is the number of rows of every kind.
func (b Batch) Len() int {
	return len(b.Air) + len(b.Traffic) + len(b.Alerts) + len(b.Water) + len(b.Weather) + len(b.Reports) + len(b.Generic)
}

// Changed is an entity whose current state a batch changed (or wrote again,
// when a redelivered observation ties with the stored state).
type Changed struct {
	// Index is the position, in its slice of the Batch, of the row that is now
	// the entity's state.
	Index int
	// UpdatedAt is when the state was written (the transaction's time).
	UpdatedAt time.Time
	// State is the alert's lifecycle state: active or expired. Empty for observations.
	State string
	// Units are the codes of the current units the alert's area intersects, sorted.
	Units []string
	// AckedBy and AckedAt are the alert's acknowledgement; AckedBy is empty
	// while it has none.
	AckedBy string
	AckedAt time.Time
}

// KindResult is what a batch did with the rows of one kind.
type KindResult struct {
	// New is the number of rows stored for the first time.
	New int
	// Duplicates is the number of rows already stored (redeliveries, resent events).
	Duplicates int
	// Changed lists the entities whose state was written, in no particular order.
	Changed []Changed
	// Inserted are the positions in the batch of the rows stored for the
	// first time, in no particular order (filled for every kind).
	Inserted []int
}

// Result is what WriteBatch did.
type Result struct {
	Air     KindResult
	Traffic KindResult
	Alerts  KindResult
	Water   KindResult
	Weather KindResult
	Reports ReportResult
	// Generic is what the batch did with its rows of registered kinds, all
	// together: the indexes of Changed are positions in Batch.Generic.
	Generic KindResult
	// Referenced are the stored alerts that Updates or Cancels of the batch
	// refer to, with their new state (superseded or cancelled). An alert of
	// the batch itself appears here, not in Alerts.Changed, when another of
	// the batch refers to it.
	Referenced []AlertState
	// Rollups are the roll-ups the batch changed (roll-ups on only), each as
	// the batch left it, with those to publish again: the windows of its
	// rows stored before (a redelivery) and the latest windows of the units,
	// layers and lengths of which it changed an earlier window
	// (queueLatestRollups); by unit, layer, window and start
	// (sortForPublish), the order to publish them in.
	Rollups []Rollup
	// changes are contributions of entity changes (reports resolved or gone
	// overdue) that writeRollups adds after the kinds' (store_rollup_report.go).
	changes []contribution
	// alertChanges are the alerts the batch activated or ended, recorded
	// with roll-ups on (store_rollup_alert.go).
	alertChanges []alertChange
	// alertPeriods are the stored active periods of a redelivered batch's
	// alerts (roll-ups on), and again the contributions of their changes,
	// whose roll-ups are read back to publish again, not added.
	alertPeriods []alertChange
	again        []contribution
}

// AlertState is the state of a stored alert, for republishing it.
type AlertState struct {
	ID        string // <source_id>/<identifier>
	State     string
	UpdatedAt time.Time
	Province  string
	UnitCode  string
	Body      []byte   // the marshalled ioc.v1.Alert
	Units     []string // codes of the units its area intersects, sorted
	AckedBy   string   // the operator who acknowledged it; empty when nobody has
	AckedAt   time.Time
}

// DefaultStatementTimeout is the StatementTimeout of a zero StoreConfig.
const DefaultStatementTimeout = 30 * time.Second

// StoreConfig configures a Store. The zero value is the default.
type StoreConfig struct {
	// StatementTimeout bounds every statement of the store's write
	// transactions (SET LOCAL statement_timeout; PostgreSQL counts statements
	// sent in one pipeline, as WriteBatch sends its upserts, as one), so that
	// a message too costly to store cannot hold a backend forever: the
	// statement fails with ErrStatementTimeout (SQLSTATE 57014) and the
	// transaction rolls back. Zero means DefaultStatementTimeout; it is
	// rounded up to a millisecond.
	StatementTimeout time.Duration
	// NoRollups turns the roll-ups off: the batches add no contributions to
	// rollup (for measuring their cost; docs/rollups.md).
	NoRollups bool
	// Lateness is how long after a window's end an observation (by its
	// received_at) still counts in the window; a later one counts in the
	// window's late figure only. Zero means DefaultLateness.
	Lateness time.Duration
}

// Validate reports a negative StatementTimeout.
func (c StoreConfig) Validate() error {
	if c.StatementTimeout < 0 {
		return fmt.Errorf("statement timeout %v is negative: %w", c.StatementTimeout, ErrConfig)
	}
	if c.Lateness < 0 {
		return fmt.Errorf("roll-up lateness %v is negative: %w", c.Lateness, ErrConfig)
	}
	return nil
}

// RegisterFlags registers the store's settings on fs.
func (c *StoreConfig) RegisterFlags(fs *flag.FlagSet) {
	flagx.Positive(fs, &c.StatementTimeout, "statement-timeout", DefaultStatementTimeout,
		"bound of every statement the aggregator writes with, a `duration` above 0 (the writes are always bounded); a slower one fails and its item is retried or dead-lettered (IOCHUB_STATEMENT_TIMEOUT)")
	fs.BoolVar(&c.NoRollups, "no-rollups", false, "store no roll-ups (IOCHUB_NO_ROLLUPS)")
	flagx.Positive(fs, &c.Lateness, "rollup-lateness", DefaultLateness,
		"how long after a window's end an observation still counts in its roll-up, a `duration` above 0 (1s counts nearly every observation received after its window's end as late); a later one counts as late (IOCHUB_ROLLUP_LATENESS)")
}

// Store writes the aggregator's batches. It is safe for concurrent use.
type Store struct {
	pool  *pgxpool.Pool
	parts partitions
	// timeout is the value of statement_timeout set in each write transaction.
	timeout string
	rollups rollupOptions
	// allNew counts the batches writeAllNew wrote; rewritten those it
	// gave back to the exact way (some row not new, or some member row
	// changed since the store kept it).
	allNew, rewritten atomic.Int64
	// members are the member rows the store's batches read or wrote last
	// (writeAllNew).
	members memberCache
}

// NewStore returns a store with the default StoreConfig writing through pool,
// which must come from Open (or otherwise have the PostGIS codec registered)
// on a migrated database.
func NewStore(pool *pgxpool.Pool) *Store {
	s, _ := NewStoreWith(pool, StoreConfig{}) // the zero config is valid
	return s
}

// NewStoreWith is NewStore with cfg.
func NewStoreWith(pool *pgxpool.Pool, cfg StoreConfig) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := cfg.StatementTimeout
	if d == 0 {
		d = DefaultStatementTimeout
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	late := cfg.Lateness
	if late == 0 {
		late = DefaultLateness
	}
	ro := rollupOptions{on: !cfg.NoRollups, lateness: late, known: newContextCache()}
	return &Store{pool: pool, parts: partitions{known: map[string]bool{}}, timeout: fmt.Sprintf("%dms", ms), rollups: ro}, nil
}

// begin starts a write transaction whose statements are bounded by the
// store's statement timeout (SET LOCAL: it ends with the transaction).
func (s *Store) begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	q, args := s.beginStatement(ctx) // fence.go
	if _, err := tx.Exec(ctx, q, args...); err != nil {
		_ = tx.Rollback(ctx)
		return nil, fenced(fmt.Errorf("setting the statement timeout: %w", err))
	}
	return tx, nil
}

// SetStatementTimeout bounds each statement of tx to d (at least 1 ms: 0
// would mean none), until tx ends: what a write transaction of the store
// sets itself, for the transactions others begin (the operator actions').
func SetStatementTimeout(ctx context.Context, tx pgx.Tx, d time.Duration) error {
	if _, err := tx.Exec(ctx, sqlSetStatementTimeout, fmt.Sprintf("%dms", max(1, d.Milliseconds()))); err != nil {
		return fmt.Errorf("setting the statement timeout: %w", err)
	}
	return nil
}

// BeginFunc runs fn in a write transaction bounded by the store's statement
// timeout, committing when fn returns nil and rolling back otherwise. A
// statement that ran out of time gives an error that Is ErrStatementTimeout.
func (s *Store) BeginFunc(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return timedOut(ctx, fmt.Errorf("beginning transaction: %w", err))
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if err := fn(tx); err != nil {
		return timedOut(ctx, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return timedOut(ctx, fmt.Errorf("committing transaction: %w", err))
	}
	return nil
}

// sqlstateQueryCanceled is the SQLSTATE of a statement cancelled by its
// statement timeout or by a cancel request.
const sqlstateQueryCanceled = "57014"

// sqlstateTransactionTimeout is PostgreSQL 17's transaction_timeout: the
// server ended a transaction that ran past it (and its session).
const sqlstateTransactionTimeout = "25P04"

// ServerTimedOut reports whether err is the server ending a statement, or
// a transaction, for running out of time: query_canceled (57014: the
// statement timeout, or a cancel request) or transaction_timeout (25P04, a
// limit a DBA may set on PostgreSQL 17). With the caller's context alive, a
// batch too large or a message too costly, not a passing fault.
func ServerTimedOut(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == sqlstateQueryCanceled || pgErr.Code == sqlstateTransactionTimeout)
}

// timedOut marks err with ErrStatementTimeout when the server ended the
// statement or transaction for its time (ServerTimedOut) and ctx was not
// cancelled: then the store's limit, not the caller, ended it.
func timedOut(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || !ServerTimedOut(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrStatementTimeout, err)
}

// WriteBatch stores b in one transaction: raw observations by COPY into
// staging tables and one INSERT … ON CONFLICT DO NOTHING per kind, the state
// of each entity upserted unless the stored state is newer, alerts upserted
// with the units their areas touch, and (roll-ups on) the contributions of
// the rows inserted added to rollup. Either all of b is stored or none of it.
//
// With roll-ups on, a batch of observations only (no alert, no report) is
// first written as if every row were new (writeAllNew): its roll-ups ride in
// the round trip of the inserts. When the database says otherwise (a row
// was stored before, or twice in b, or a member row changed since the store
// read it), that transaction is rolled back and the batch written again the
// exact way: the inserts first, then the contributions of the rows they
// inserted.
//
// A batch of kinds that all have a direct way (air, traffic, water, weather), roll-ups on or off, is
// written straight into its tables (writeDirect): a COPY that assumes
// every row new, the primary key refusing any that is not; then too the
// batch is written again the exact way.
//
// Each statement is bounded by the store's StatementTimeout; one that runs
// out of time fails the batch with an error that Is ErrStatementTimeout.
//
// The monthly partitions the store knows exist are its memory: when the
// server finds one missing (another store's retention dropped it), the
// store forgets the batch's, makes them again and writes the batch once more.
func (s *Store) WriteBatch(ctx context.Context, b Batch) (Result, error) {
	return s.partitionRetry(ctx, b, s.writeBatch)
}

// partitionRetry runs write, and once more when the server found a
// partition of b missing (another store's retention dropped it): the store
// forgets b's partitions first, and write makes them again.
func (s *Store) partitionRetry(ctx context.Context, b Batch, write func(context.Context, Batch) (Result, error)) (Result, error) {
	res, err := write(ctx, b)
	if err != nil && noPartition(err) && ctx.Err() == nil {
		s.parts.forgetBatch(b)
		res, err = write(ctx, b)
	}
	return res, err
}

// writeBatch is WriteBatch's one attempt.
func (s *Store) writeBatch(ctx context.Context, b Batch) (Result, error) {
	var res Result
	if b.Len() == 0 {
		return res, nil
	}
	if err := s.ensurePartitions(ctx, b); err != nil {
		return res, err
	}
	if direct := directOnly(b); direct || (s.rollups.on && observationsOnly(b)) {
		write := s.writeAllNew
		if direct {
			write = s.writeDirect
		}
		res, err := write(ctx, b)
		if !errors.Is(err, errNotAllNew) {
			if err != nil {
				return Result{}, fmt.Errorf("writing batch: %w", err)
			}
			s.allNew.Add(1)
			return res, nil
		}
		return s.writeAgain(ctx, b)
	}
	return s.writeExact(ctx, b)
}

// writeAgain writes b the exact way after a way that assumed every row new
// found one that was not (counted as rewritten).
func (s *Store) writeAgain(ctx context.Context, b Batch) (Result, error) {
	if err := s.ensurePartitions(ctx, b); err != nil {
		return Result{}, err
	}
	s.rewritten.Add(1)
	return s.writeExact(ctx, b)
}

// writeExact writes b the exact way: staged, each kind's rows inserted
// unless stored before, and the roll-ups of the rows the inserts inserted.
func (s *Store) writeExact(ctx context.Context, b Batch) (Result, error) {
	var res Result
	err := s.BeginFunc(ctx, func(tx pgx.Tx) error {
		var in rollupInput
		if _, err := stage(ctx, tx, b, nil); err != nil {
			return err
		}
		var reads func(*pgx.Batch)
		if s.rollups.on {
			reads = func(pb *pgx.Batch) { queueRollupReads(pb, b, &in, nil) }
		}
		if err := apply(ctx, tx, b, &res, s.rollups, reads); err != nil {
			return err
		}
		for _, k := range kindStores {
			if k.write != nil && k.rows(b) > 0 {
				if err := k.write(ctx, tx, b, &res); err != nil {
					return err
				}
			}
		}
		// After the writes: the reports' write says which reports it opened.
		if s.rollups.on {
			// The member rows it writes, locked, get new versions: the
			// store's copies of them are stale from here on.
			s.members.forget(in.members)
			if err := writeRollups(ctx, tx, b, &res, s.rollups, in); err != nil {
				return err
			}
			if err := in.members.check(); err != nil {
				return fmt.Errorf("%w: %w", ErrMemberRow, err) // they were locked
			}
		}
		var pb pgx.Batch
		if queueBatchActivity(&pb, b, res); pb.Len() > 0 {
			if err := tx.SendBatch(ctx, &pb).Close(); err != nil {
				return fmt.Errorf("recording the sources' activity: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("writing batch: %w", err)
	}
	return res, nil
}

// errNotAllNew is writeAllNew's answer when some row of the batch was not
// inserted, or some member row it took from the store's memory had changed
// (errMemberVersion): its transaction was rolled back.
var errNotAllNew = errors.New("the batch was not all new, or its member rows changed")

// observationsOnly reports whether b holds no rows of a kind that writes
// statement by statement after the inserts (alerts, reports), whose roll-up
// changes are known only then.
func observationsOnly(b Batch) bool {
	for _, k := range kindStores {
		if k.write != nil && k.rows(b) > 0 {
			return false
		}
	}
	return true
}

// writeAllNew writes b, observations only, with roll-ups on, assuming that
// every row of b is new: the contributions of all of them are computed
// before the inserts and their statements queued in the inserts' round trip,
// so that the roll-ups cost no round trip of their own. Its member rows
// come from the store's memory where it holds them (memberCache), else are
// read whole, without a lock, in stage's round trip; they are written (or
// created) only where their version is still the one read. When the inserts
// did not insert every row (a redelivery, a row stored twice in b), or a
// member row changed since it was read, or the database found a deadlock,
// the transaction is rolled back and it returns errNotAllNew: nothing of b
// is stored then, and WriteBatch writes it the exact way. As there, the
// member rows are locked (written) after the inserts.
func (s *Store) writeAllNew(ctx context.Context, b Batch) (Result, error) {
	var res Result
	var in rollupInput
	err := s.BeginFunc(ctx, func(tx pgx.Tx) error {
		read, err := stage(ctx, tx, b, func(pb *pgx.Batch) { queueRollupReads(pb, b, &in, &s.members) })
		if err != nil {
			return err
		}
		if !read {
			return errNotAllNew // nothing staged: nothing to gain
		}
		var pb pgx.Batch
		finish := queueApply(&pb, b, &res, s.rollups)
		all := allInserted(b)
		done, err := queueRollups(ctx, tx, &pb, b, &all, s.rollups, in)
		if err != nil {
			return err
		}
		// As if every row is new, which the transaction checks below.
		queueBatchActivity(&pb, b, all)
		if err := tx.SendBatch(ctx, &pb).Close(); err != nil {
			return fmt.Errorf("applying batch of %d rows with its roll-ups: %w", b.Len(), err)
		}
		for _, f := range finish {
			f()
		}
		for _, k := range kindStores {
			if k.result == nil {
				continue
			}
			r := k.result(&res)
			r.Duplicates = k.rows(b) - r.New
			// A kind with roll-ups needs every row new; so does any kind
			// when the batch recorded its activity as if all were.
			if (k.contribute != nil || b.Activity != nil) && (r.New != k.rows(b) || len(r.Inserted) != r.New) {
				return errNotAllNew
			}
		}
		if err := in.members.check(); err != nil {
			return fmt.Errorf("%w: %w", errNotAllNew, err)
		}
		done()
		res.Rollups = all.Rollups
		return nil
	})
	if err := s.settleOptimistic(in, err); err != nil {
		return Result{}, err
	}
	return res, nil
}

// sqlstateDeadlock is the SQLSTATE of a transaction the server ended to
// break a deadlock.
const sqlstateDeadlock = "40P01"

// settleOptimistic ends a batch written as if all new (writeAllNew,
// writeDirect) whose transaction ended with err: the member rows it read
// are kept when it committed and forgotten otherwise; a row stored before
// (unique_violation, only the direct way's COPY meets it) or a deadlock the
// server broke make it errNotAllNew, for WriteBatch to write the batch
// again the exact way.
func (s *Store) settleOptimistic(in rollupInput, err error) error {
	if err == nil {
		s.members.install(in.members)
		return nil
	}
	s.members.forget(in.members)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == sqlstateUniqueViolation || pgErr.Code == sqlstateDeadlock) {
		return fmt.Errorf("%w: %w", errNotAllNew, err)
	}
	return err
}

// allInserted is the Result of b as if every row of it were new: each
// kind's rows all inserted, in b's order (the roll-ups' contributions of a
// batch written as all new, and its sources' activity).
func allInserted(b Batch) Result {
	var all Result
	for _, k := range kindStores {
		if k.result != nil {
			r := k.result(&all)
			r.New = k.rows(b)
			r.Inserted = make([]int, r.New)
			for i := range r.Inserted {
				r.Inserted[i] = i
			}
		}
	}
	return all
}

// stage creates the staging tables the batch needs and copies the rows in.
// reads, when not nil, queues statements sent in the round trip of the
// first table's creation (the roll-ups' reads, before any insert);
// it reports whether they were sent (not when b has nothing to stage).
func stage(ctx context.Context, tx pgx.Tx, b Batch, reads func(*pgx.Batch)) (read bool, err error) {
	for _, k := range kindStores {
		n := k.rows(b)
		if k.staging == nil || n == 0 {
			continue
		}
		st := k.staging
		if reads != nil && !read {
			var pb pgx.Batch
			pb.Queue(st.create)
			reads(&pb)
			if err := tx.SendBatch(ctx, &pb).Close(); err != nil {
				return read, fmt.Errorf("creating %s and reading the roll-ups' units and members: %w", st.table, err)
			}
			read = true
		} else if _, err := tx.Exec(ctx, st.create); err != nil {
			return read, fmt.Errorf("creating %s: %w", st.table, err)
		}
		copied, err := tx.CopyFrom(ctx, pgx.Identifier{st.table}, st.columns, pgx.CopyFromSlice(n, func(i int) ([]any, error) {
			return st.values(b, i), nil
		}))
		if err != nil {
			return read, fmt.Errorf("copying %d rows into %s: %w", n, st.table, err)
		}
		if int(copied) != n {
			return read, fmt.Errorf("copying into %s: copied %d rows of %d: %w", st.table, copied, n, ErrShortCopy)
		}
	}
	return read, nil
}

// queueRollupReads queues on pb the reads the roll-ups of b need, filled
// into *in once pb is sent: the units of b's rows and their ancestors, the
// member rows of its stations and segments, locked (queueMemberLock; those
// cache holds taken from it, when not nil), and the member horizon, after
// the shared lock that keeps the horizon and the rows before it as read
// until the transaction ends (sqlShareMemberDays). First, the batch's stale
// sources are fresh again (sqlFreshSources), before the roll-ups read the
// stale figures.
func queueRollupReads(pb *pgx.Batch, b Batch, in *rollupInput, cache *memberCache) {
	if len(b.Sources) > 0 {
		srcs, units := make([]string, len(b.Sources)), make([]string, len(b.Sources))
		for i, su := range b.Sources {
			srcs[i], units[i] = su.SourceID, su.UnitCode
		}
		pb.Queue(sqlFreshSources, srcs, units)
	}
	pb.Queue(sqlShareMemberDays)
	if units := rollupUnits(b); len(units) > 0 {
		queueGeneric(pb, func() { pb.Queue(sqlUnitVersions, units).Query(collectTree(&in.tree)) })
	}
	in.members = queueMemberLock(pb, b, cache)
	pb.Queue(sqlMemberHorizon).QueryRow(func(row pgx.Row) error {
		var day *time.Time
		if err := row.Scan(&day); err != nil {
			return fmt.Errorf("reading the roll-ups' member horizon: %w", err)
		}
		if day != nil {
			in.horizon = *day
		}
		return nil
	})
}

// queueApply queues on pb the statements that move the staged rows into
// their tables, recording in res what they did, and returns the funcs to
// run once every result was read.
func queueApply(pb *pgx.Batch, b Batch, res *Result, ro rollupOptions) []func() {
	var finish []func()
	for _, k := range kindStores {
		if k.queue == nil || k.rows(b) == 0 {
			continue
		}
		if f := k.queue(pb, b, res, ro); f != nil {
			finish = append(finish, f)
		}
	}
	return finish
}

// apply moves the staged rows into their tables in one round trip. reads,
// when not nil, queues in the same round trip the roll-ups' reads that
// stage did not send (queueRollupReads).
func apply(ctx context.Context, tx pgx.Tx, b Batch, res *Result, ro rollupOptions, reads func(*pgx.Batch)) error {
	var pb pgx.Batch
	finish := queueApply(&pb, b, res, ro)
	if reads != nil {
		reads(&pb)
	}
	if pb.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, &pb).Close(); err != nil {
		return fmt.Errorf("applying batch of %d rows: %w", b.Len(), err)
	}
	for _, f := range finish {
		f()
	}
	for _, k := range kindStores {
		if k.result != nil {
			r := k.result(res)
			r.Duplicates = k.rows(b) - r.New
		}
	}
	return nil
}

// DueAlerts returns up to limit active alerts whose expiry has passed, in
// province (empty means every province), with State "expired" and UpdatedAt
// now. They stay active in the table until MarkExpired: publish their state
// first, then mark them, so that a crash in between publishes them again.
func (s *Store) DueAlerts(ctx context.Context, province string, limit int) ([]AlertState, error) {
	now := time.Now().UTC()
	rows, err := s.pool.Query(ctx, sqlDueAlerts, province, limit)
	if err != nil {
		return nil, fmt.Errorf("listing expired alerts: %w", err)
	}
	defer rows.Close()
	var out []AlertState
	for rows.Next() {
		a := AlertState{State: "expired", UpdatedAt: now}
		var by *string
		var at *time.Time
		if err := rows.Scan(&a.ID, &a.Province, &a.UnitCode, &a.Body, &a.Units, &by, &at); err != nil {
			return nil, fmt.Errorf("listing expired alerts: %w", err)
		}
		if by != nil && at != nil {
			a.AckedBy, a.AckedAt = *by, *at
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing expired alerts: %w", err)
	}
	return out, nil
}

func body(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func countRows(n *int) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		for rows.Next() {
			*n++
		}
		return rows.Err()
	}
}

func collectChanged(out *[]Changed) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		for rows.Next() {
			var c Changed
			if err := rows.Scan(&c.Index, &c.UpdatedAt); err != nil {
				return err
			}
			*out = append(*out, c)
		}
		return rows.Err()
	}
}

func airValues(i int, r *AirRow) []any {
	return []any{
		i, r.SourceID, r.EventID, r.ObservedAt, r.ReceivedAt, r.StationID, r.Name, r.Province, r.UnitCode,
		geomValue(r.Location), r.PM25, r.PM10, r.NO2, r.O3, r.CO, r.SO2, extraValue(r.Extra),
		r.AQI.Value, aqiBand(r.AQI.Band), nullText(r.AQI.Dominant), jsonValue(r.AQI.JSON),
	}
}

func trafficValues(i int, r *TrafficRow) []any {
	return []any{
		i, r.SourceID, r.EventID, r.ObservedAt, r.ReceivedAt, r.SegmentID, r.Name, r.Province, r.UnitCode,
		geomValue(r.Geom), r.Intensity, r.Occupancy, r.AverageVehicleSpeed, r.Congested, r.LaneID, extraValue(r.Extra),
	}
}

func alertValues(i int, r *AlertRow) []any {
	refs := r.Refs
	if refs == nil {
		refs = []string{}
	}
	info := r.Info
	if len(info) == 0 {
		info = []byte("[]")
	}
	return []any{
		i, r.ID(), r.SourceID, r.EventID, r.Identifier, r.Sender, r.Sent, r.Status, r.MsgType, r.Scope, refs,
		string(info), geomValue(r.Area), r.Expires, r.ExpiresDefault, r.Province, r.UnitCode, r.ReceivedAt,
		body(r.Body),
	}
}

// geomValue turns a possibly nil geometry (of any concrete type) into a value
// pgx encodes: an untyped nil for NULL, else the geometry with SRID 4326.
func geomValue[G geom.T](g G) any {
	var t geom.T = g
	if t == nil {
		return nil
	}
	switch v := t.(type) {
	case *geom.Point:
		if v == nil {
			return nil
		}
		return WithSRID(v)
	case *geom.LineString:
		if v == nil {
			return nil
		}
		return WithSRID(v)
	}
	return WithSRID(t)
}

// WithSRID is g with SRID 4326: g itself when it has it, else a copy that
// has it. It never changes g, which a batch's rows share between the
// goroutines that encode them (writeDirect's COPY and its states); a
// decoder that gives its geometries the SRID (the aggregator's) makes it
// free here.
func WithSRID(g geom.T) geom.T {
	if g.SRID() == SRID {
		return g
	}
	switch v := g.(type) {
	case *geom.Point:
		return v.Clone().SetSRID(SRID)
	case *geom.LineString:
		return v.Clone().SetSRID(SRID)
	case *geom.Polygon:
		return v.Clone().SetSRID(SRID)
	case *geom.MultiPoint:
		return v.Clone().SetSRID(SRID)
	case *geom.MultiLineString:
		return v.Clone().SetSRID(SRID)
	case *geom.MultiPolygon:
		return v.Clone().SetSRID(SRID)
	case *geom.GeometryCollection:
		return geom.NewGeometryCollection().MustPush(v.Geoms()...).SetSRID(SRID)
	}
	return g
}

// extraValue is the jsonb value of a row's extra values: NULL when there
// are none, else their JSON (appendExtraJSON), which pgx sends as it is; m
// itself when json.Marshal refuses it (a NaN), for pgx to report.
func extraValue(m map[string]any) any {
	if len(m) == 0 {
		return nil
	}
	if b, err := appendExtraJSON(nil, m); err == nil {
		return json.RawMessage(b)
	}
	return m
}
