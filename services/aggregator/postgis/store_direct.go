package postgis

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/ewkb"
)

// direct is how a kind's rows are written straight into their table, by a
// COPY that assumes every row is new (writeDirect): no staging table, no
// INSERT … ON CONFLICT. The table's primary key refuses a row stored before
// or twice in the batch (unique_violation), which rolls the whole
// transaction back; the batch is then written again the exact way.
type direct struct {
	table string
	// copySQL is the binary COPY of the row's columns into table.
	copySQL string
	// encode appends row i of the kind in b to c (one field per column).
	encode func(c *copyRows, b Batch, i int) error
	// queue queues the statements that follow the COPY (the entities'
	// states), recording in res what they did when their results are read;
	// an error when a value cannot be sent.
	queue func(pb *pgx.Batch, b Batch, res *Result) error
}

// directOnly reports whether every kind with rows in b can be written
// straight (writeDirect).
func directOnly(b Batch) bool {
	some := false
	for _, k := range kindStores {
		if k.rows(b) == 0 {
			continue
		}
		if k.direct == nil {
			return false
		}
		some = true
	}
	return some
}

// sqlstateUniqueViolation is the SQLSTATE of a row refused by a unique index.
const sqlstateUniqueViolation = "23505"

// writeDirect writes b, whose kinds all have a direct way, as if every row
// were new: in one transaction, the roll-ups' reads (roll-ups on) in the
// round trip that sets the statement timeout, a COPY per kind straight into
// its partitioned table, then one round trip for the states and (roll-ups
// on) the roll-ups of every row, as writeAllNew queues them. A row stored
// before or twice in b makes the COPY fail (unique_violation); a member row
// changed since it was read fails its version check; the server may break a
// deadlock: in each case the transaction is rolled back, nothing of b is
// stored, and it returns errNotAllNew for WriteBatch to write b the exact
// way. With roll-ups off it is the same without the roll-ups.
func (s *Store) writeDirect(ctx context.Context, b Batch) (Result, error) {
	rows, err := encodeDirect(b)
	if err != nil {
		return Result{}, err
	}
	defer rows.release()
	w := s.newDirectWrite(b)
	err = s.directTx(ctx, w.queueReads, func(tx *pgx.Conn) error {
		// The states' statements and the roll-ups are made while the rows
		// are copied: they need only b and (roll-ups) the tree and the
		// member rows read before, which are optimistic (never locked nor
		// created in a round trip of their own, so queueRollups does not
		// use tx).
		queued := make(chan error, 1)
		go func() { queued <- w.build(ctx) }()
		copyErr := s.copyDirect(ctx, tx, rows)
		if err := <-queued; copyErr != nil || err != nil {
			return errors.Join(copyErr, err)
		}
		return w.apply(ctx, tx)
	})
	if err := s.settleOptimistic(w.in, err); err != nil {
		return Result{}, err
	}
	return w.res, nil
}

// directWrite is what a direct batch's transaction makes besides its COPY:
// the roll-ups' reads, then the states' statements and the roll-ups, built
// from b and those reads (build), then sent (apply).
type directWrite struct {
	s  *Store
	b  Batch
	on bool // roll-ups on
	in rollupInput
	// res is what the batch did; all is b as if every row were new.
	res, all Result
	pb, rb   pgx.Batch
	done     func()
}

func (s *Store) newDirectWrite(b Batch) *directWrite {
	return &directWrite{s: s, b: b, on: s.rollups.on, done: func() {}}
}

// queueReads queues the roll-ups' reads (roll-ups on).
func (w *directWrite) queueReads(pb *pgx.Batch) {
	if w.on {
		queueRollupReads(pb, w.b, &w.in, &w.s.members)
	}
}

// build queues the states' statements and (roll-ups on) the roll-ups of
// every row of b, from b and the reads queueReads made; it uses no
// connection.
func (w *directWrite) build(ctx context.Context) error {
	// Every row is stored if the transaction commits: the COPY stores
	// each or fails.
	w.all = allInserted(w.b)
	if w.on && w.in.members != nil && !w.in.members.optimistic {
		return fmt.Errorf("member rows read under lock in a direct batch: %w", ErrMemberRow)
	}
	for _, k := range kindStores {
		if k.rows(w.b) == 0 {
			continue
		}
		if err := k.direct.queue(&w.pb, w.b, &w.res); err != nil {
			return err
		}
	}
	if w.on {
		var err error
		if w.done, err = queueRollups(ctx, nil, &w.rb, w.b, &w.all, w.s.rollups, w.in); err != nil {
			return err
		}
	}
	return nil
}

// apply sends what build queued, with the sources' activity, once the rows
// are copied, and checks the member rows' versions.
func (w *directWrite) apply(ctx context.Context, tx *pgx.Conn) error {
	b := w.b
	for _, k := range kindStores {
		if k.result != nil && k.rows(b) > 0 {
			r := k.result(&w.res)
			r.New = k.rows(b)
			r.Inserted = k.result(&w.all).Inserted
		}
	}
	pb := &w.pb
	pb.QueuedQueries = append(pb.QueuedQueries, w.rb.QueuedQueries...)
	queueBatchActivity(pb, b, w.res) // last: it locks the sources' rows until the commit
	if pb.Len() > 0 {
		if err := tx.SendBatch(ctx, pb).Close(); err != nil {
			return fmt.Errorf("applying batch of %d rows: %w", b.Len(), err)
		}
	}
	if err := w.in.members.check(); err != nil {
		return fmt.Errorf("%w: %w", errNotAllNew, err)
	}
	w.done()
	w.res.Rollups = w.all.Rollups
	return nil
}

// directRows are a direct batch's rows encoded for their COPYs, one per
// kind with rows (in kindStores' order).
type directRows []*copyRows

// encodeDirect encodes the rows of every kind of b for copyDirect; release
// gives their buffers back once copied.
func encodeDirect(b Batch) (directRows, error) {
	rows := make(directRows, len(kindStores))
	for j, k := range kindStores {
		if n := k.rows(b); n > 0 {
			c, err := k.direct.encodeRows(b, n)
			if err != nil {
				rows.release()
				return nil, err
			}
			rows[j] = c
		}
	}
	return rows, nil
}

// encodeRows encodes the n rows of d's kind in b; put gives their buffer
// back once copied.
func (d *direct) encodeRows(b Batch, n int) (*copyRows, error) {
	c := newCopyRows()
	for i := range n {
		if err := d.encode(c, b, i); err != nil {
			c.put()
			return nil, fmt.Errorf("encoding row %d of %s: %w", i, d.table, err)
		}
	}
	return c, nil
}

func (d directRows) release() {
	for i, c := range d {
		if c != nil {
			c.put()
			d[i] = nil
		}
	}
}

// copyDirect copies the rows of every kind of a batch, encoded
// (encodeDirect), straight into its table.
func (s *Store) copyDirect(ctx context.Context, tx *pgx.Conn, rows directRows) error {
	for j, k := range kindStores {
		c := rows[j]
		if c == nil {
			continue
		}
		d := k.direct
		tag, err := tx.PgConn().CopyFrom(ctx, bytes.NewReader(c.data()), d.copySQL)
		if err != nil {
			// On a broken connection pgconn returns before its sender
			// stopped reading the buffer: it is left to the collector.
			rows[j] = nil
			return fmt.Errorf("copying %d rows into %s: %w", c.rows, d.table, err)
		}
		if copied := tag.RowsAffected(); int(copied) != c.rows {
			return fmt.Errorf("copying into %s: copied %d rows of %d: %w", d.table, copied, c.rows, ErrShortCopy)
		}
	}
	return nil
}

// directTx runs fn in a write transaction on a connection of the pool,
// as BeginFunc does, but in one round trip less: BEGIN, the statement
// timeout and the statements reads queues (the roll-ups' reads) go in one
// pipeline. It commits when fn returns nil and rolls back otherwise; a
// connection left in a transaction (a failed rollback) is closed by the
// pool on release.
func (s *Store) directTx(ctx context.Context, reads func(*pgx.Batch), fn func(*pgx.Conn) error) error {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return timedOut(ctx, fmt.Errorf("beginning transaction: %w", err))
	}
	defer c.Release()
	conn := c.Conn()
	rollback := func() { _, _ = conn.Exec(ctx, "ROLLBACK") }
	var pb pgx.Batch
	pb.Queue("BEGIN")
	q, args := s.beginStatement(ctx) // the statement timeout, and the partition's fence (fence.go)
	pb.Queue(q, args...)
	reads(&pb)
	if err := conn.SendBatch(ctx, &pb).Close(); err != nil {
		rollback()
		return fenced(timedOut(ctx, fmt.Errorf("beginning transaction, reading the roll-ups' units and members: %w", err)))
	}
	if err := fn(conn); err != nil {
		rollback()
		return timedOut(ctx, err)
	}
	tag, err := conn.Exec(ctx, "COMMIT")
	if err != nil {
		rollback()
		return timedOut(ctx, fmt.Errorf("committing transaction: %w", err))
	}
	if tag.String() != "COMMIT" { // the server rolled back a failed transaction
		return fmt.Errorf("committing transaction: %w", pgx.ErrTxCommitRollback)
	}
	return nil
}

// airColumns are the columns of air_observation a batch writes.
var airColumns = []string{
	"source_id", "event_id", "observed_at", "received_at", "station_id", "province", "unit_code",
	"location", "pm25", "pm10", "no2", "o3", "co", "so2", "extra", "aqi", "aqi_band", "aqi_dominant",
}

// airDirect writes air rows straight into air_observation, then the state of
// each station from the batch's newest row of it (sqlUpsertSensorAirRows).
var airDirect = &direct{
	table:   "air_observation",
	copySQL: copySQL("air_observation", airColumns),
	encode: func(c *copyRows, b Batch, i int) error {
		r := &b.Air[i]
		c.row(len(airColumns))
		c.text(r.SourceID)
		c.text(r.EventID)
		c.timestamptz(r.ObservedAt)
		c.timestamptz(r.ReceivedAt)
		c.text(r.StationID)
		c.text(r.Province)
		c.text(r.UnitCode)
		if err := c.point(r.Location); err != nil {
			return err
		}
		for _, v := range [...]*float64{r.PM25, r.PM10, r.NO2, r.O3, r.CO, r.SO2} {
			c.float8(v)
		}
		if err := c.extra(r.Extra); err != nil {
			return err
		}
		c.int4(r.AQI.Value)
		c.int2OrNull(r.AQI.Band)
		c.textOrNull(r.AQI.Dominant)
		return nil
	},
	queue: queueAirStates,
}

// latestRows returns, per entity, the index of its row of the batch that
// may become its state: the latest observed, of two at the same instant the
// later in the batch (as DISTINCT ON … ORDER BY observed_at DESC, seq DESC
// chooses from a staging table), in the order the entities first appear.
func latestRows[K comparable](n int, entity func(i int) K, observed func(i int) time.Time) []int {
	at := make(map[K]int, n)
	var out []int
	for i := range n {
		e := entity(i)
		j, ok := at[e]
		if !ok {
			at[e] = len(out)
			out = append(out, i)
			continue
		}
		if !observed(i).Before(observed(out[j])) { // i is later in the batch
			out[j] = i
		}
	}
	return out
}

// queueAirStates queues the upsert of the state of each station of b.Air
// from its newest row, recording the stations whose state it wrote in
// res.Air.Changed. The state's values are written here as the JSON text
// sqlUpsertSensorAir builds on the server (appendAirValues), all of them in
// one string.
func queueAirStates(pb *pgx.Batch, b Batch, res *Result) error {
	// Per station and province: the statement keeps, of a station's rows,
	// those that may move its state (sqlOwnsState) before the newest.
	idx := latestRows(len(b.Air), func(i int) StationRef { return StationRef{b.Air[i].Province, b.Air[i].StationID} },
		func(i int) time.Time { return b.Air[i].ObservedAt })
	m := len(idx)
	var (
		seqs                                               = make([]int32, m)
		stations, names, provinces, units, sources, events = make([]string, m), make([]string, m), make([]string, m), make([]string, m), make([]string, m), make([]string, m)
		locations                                          = make([][]byte, m)
		observed                                           = make([]time.Time, m)
		values                                             = make([]string, m)
		ends                                               = make([]int, m)
		buf                                                []byte
	)
	for j, i := range idx {
		r := &b.Air[i]
		seqs[j], stations[j], names[j], provinces[j], units[j], sources[j], events[j] =
			int32(i), r.StationID, r.Name, r.Province, r.UnitCode, r.SourceID, r.EventID //nolint:gosec // a batch's index fits
		observed[j] = r.ObservedAt
		var err error
		if locations[j], err = ewkbValue(r.Location); err != nil {
			return fmt.Errorf("encoding the location of station %s: %w", r.StationID, err)
		}
		if buf, err = appendAirValues(buf, r); err != nil {
			return fmt.Errorf("encoding the values of station %s: %w", r.StationID, err)
		}
		ends[j] = len(buf)
	}
	all, start := string(buf), 0
	for j, end := range ends {
		values[j], start = all[start:end], end
	}
	// A station with rows of two provinces in the batch needs its state's
	// owner looked up before the newest row is chosen; others do not. Only a
	// batch of several provinces can hold one: the common batch of one
	// province is told apart without a map.
	sql := sqlUpsertSensorAirRowsOne
	if slices.ContainsFunc(provinces, func(p string) bool { return p != provinces[0] }) {
		seen := make(map[string]bool, len(idx))
		for _, id := range stations {
			if seen[id] {
				sql = sqlUpsertSensorAirRows
				break
			}
			seen[id] = true
		}
	}
	pb.Queue(sql, seqs, stations, names, provinces, units, sources, locations, events, observed,
		values).Query(collectChanged(&res.Air.Changed))
	return nil
}

// appendAirValues appends to buf the values of r's state as a JSON object,
// the text of the jsonb sqlUpsertSensorAir builds from the same row: the
// pollutants present, then the extra values, then the AQI under "aqi". Of
// two members with one name the later is kept by jsonb, as by the server's
// concatenation (an extra value named like a pollutant, or "aqi", replaces
// it). A pollutant is written as the server writes a float8 into jsonb: a
// number, the same number as its shortest decimal text, or the string
// "NaN", "Infinity" or "-Infinity".
func appendAirValues(buf []byte, r *AirRow) ([]byte, error) {
	buf = append(buf, '{')
	first := true
	member := func(name string) {
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = append(buf, '"')
		buf = append(buf, name...)
		buf = append(buf, '"', ':')
	}
	for _, p := range [...]struct {
		name string
		v    *float64
	}{{"pm25", r.PM25}, {"pm10", r.PM10}, {"no2", r.NO2}, {"o3", r.O3}, {"co", r.CO}, {"so2", r.SO2}} {
		if p.v == nil {
			continue
		}
		member(p.name)
		switch v := *p.v; {
		case math.IsNaN(v):
			buf = append(buf, `"NaN"`...)
		case math.IsInf(v, 1):
			buf = append(buf, `"Infinity"`...)
		case math.IsInf(v, -1):
			buf = append(buf, `"-Infinity"`...)
		default:
			buf = strconv.AppendFloat(buf, v, 'g', -1, 64)
		}
	}
	if len(r.Extra) > 0 {
		// The object's members after buf's: its '{' becomes the comma
		// between them (or goes, when buf has none) and its '}' goes.
		at := len(buf)
		x, err := appendExtraJSON(buf, r.Extra)
		if err != nil {
			return nil, err
		}
		switch {
		case first:
			buf = x[:at+copy(x[at:], x[at+1:len(x)-1])]
			first = false
		default:
			x[at] = ','
			buf = x[:len(x)-1]
		}
	}
	if len(r.AQI.JSON) > 0 {
		// Checked, since it is spliced in: the server refused invalid JSON
		// when it parsed it alone.
		if !json.Valid(r.AQI.JSON) {
			return nil, fmt.Errorf("the VN_AQI is not JSON: %w", ErrInvalidJSON)
		}
		member("aqi")
		buf = append(buf, r.AQI.JSON...)
	}
	return append(buf, '}'), nil
}

// ewkbValue is p as EWKB with SRID 4326, nil (NULL) when p is nil.
func ewkbValue(p *geom.Point) ([]byte, error) {
	if p == nil {
		return nil, nil
	}
	return ewkb.Marshal(WithSRID(p), binary.LittleEndian)
}
