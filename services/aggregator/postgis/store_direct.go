package postgis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twpayne/go-geom"
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
// each station (queueAirStates).
var airDirect = &direct{
	table:   "air_observation",
	copySQL: copySQL("air_observation", airColumns),
	encode: func(c *copyRows, b Batch, i int) error {
		r := &b.Air[i]
		c.head(len(airColumns), r.SourceID, r.EventID, r.ObservedAt, r.ReceivedAt, r.StationID, r.Province, r.UnitCode)
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

// trafficColumns are the columns of traffic_observation a batch writes.
var trafficColumns = []string{
	"source_id", "event_id", "observed_at", "received_at", "segment_id", "province", "unit_code",
	"geom", "intensity", "occupancy", "average_vehicle_speed", "congested", "lane_id", "extra",
}

// trafficDirect writes traffic rows straight into traffic_observation, then
// the state of each segment (queueTrafficStates).
var trafficDirect = &direct{
	table:   "traffic_observation",
	copySQL: copySQL("traffic_observation", trafficColumns),
	encode: func(c *copyRows, b Batch, i int) error {
		r := &b.Traffic[i]
		c.head(len(trafficColumns), r.SourceID, r.EventID, r.ObservedAt, r.ReceivedAt, r.SegmentID, r.Province, r.UnitCode)
		if err := c.line(r.Geom); err != nil {
			return err
		}
		c.float8(r.Intensity)
		c.float8(r.Occupancy)
		c.float8(r.AverageVehicleSpeed)
		c.bool(r.Congested)
		c.int4(r.LaneID)
		return c.extra(r.Extra)
	},
	queue: queueTrafficStates,
}

// latestRows returns, per key, the index of its row of the batch that may
// become its entity's state: the latest observed, of two at the same
// instant (to the microsecond PostgreSQL keeps) the later in the batch (as
// DISTINCT ON … ORDER BY observed_at DESC, seq DESC chooses from a staging
// table), in the order the keys first appear. row gives row i's key and
// observation time.
func latestRows[K comparable](n int, row func(i int) (K, time.Time)) []int {
	type latest struct {
		i  int
		at int64 // µs
	}
	at := make(map[K]int, n)
	var out []latest
	for i := range n {
		k, t := row(i)
		j, ok := at[k]
		switch {
		case !ok:
			at[k] = len(out)
			out = append(out, latest{i, t.UnixMicro()})
		case t.UnixMicro() >= out[j].at: // i is later in the batch
			out[j] = latest{i, t.UnixMicro()}
		}
	}
	idx := make([]int, len(out))
	for j, l := range out {
		idx[j] = l.i
	}
	return idx
}

// stateKey is what keeps a row of an entity from being hidden by another
// before the state's owner is known: rows of one province and one source
// either all may move the entity's state or none may (sqlOwnsState), so
// the newest of each is the only one of them that can become it.
type stateKey struct{ province, source, entity string }

// entityRow is what a state upsert takes of a row besides its geometry and
// values.
type entityRow struct {
	id, name, province, unit, source, event string
	observed                                time.Time
}

func (e *entityRow) key() stateKey { return stateKey{e.province, e.source, e.id} }

// queueStates queues the upsert of the state of each entity of rows from
// its newest row (one, or several when an entity has rows of two provinces
// or sources: stateRows.queue), recording in changed the entities whose
// state it wrote: entity gives what the upsert takes of a row, geometry
// its geometry's EWKB and values appends its values as the JSON text the
// staged way builds on the server, all of them in one string (geometry and
// values for the rows chosen only).
func queueStates[R any](pb *pgx.Batch, rows []R, entity func(*R) entityRow, geometry func(*R) ([]byte, error),
	values func([]byte, *R) ([]byte, error), one, several string, changed *[]Changed) error {
	idx := latestRows(len(rows), func(i int) (stateKey, time.Time) {
		e := entity(&rows[i])
		return e.key(), e.observed
	})
	st := newStateRows(len(idx))
	for j, i := range idx {
		r := &rows[i]
		e := entity(r)
		g, err := geometry(r)
		// A value the store cannot send is the item's fault, never to be
		// retried (ErrUnencodable; a VN_AQI that is not JSON is also
		// ErrInvalidJSON): the batch is split and the item dead-lettered.
		if err != nil {
			return fmt.Errorf("encoding the geometry of %s: %w: %w", e.id, ErrUnencodable, err)
		}
		st.set(j, i, e, g)
		if st.buf, err = values(st.buf, r); err != nil {
			return fmt.Errorf("encoding the values of %s: %w: %w", e.id, ErrUnencodable, err)
		}
		st.ends[j] = len(st.buf)
	}
	st.queue(pb, one, several, changed)
	return nil
}

// queueAirStates queues the upsert of the state of each station of b.Air,
// recording the stations whose state it wrote in res.Air.Changed
// (queueStates, sensorRowsUpsert, appendAirValues).
func queueAirStates(pb *pgx.Batch, b Batch, res *Result) error {
	return queueStates(pb, b.Air, (*AirRow).entity, (*AirRow).ewkb, appendAirValues,
		sqlUpsertSensorAirRowsOne, sqlUpsertSensorAirRows, &res.Air.Changed)
}

func (r *AirRow) entity() entityRow {
	return entityRow{r.StationID, r.Name, r.Province, r.UnitCode, r.SourceID, r.EventID, r.ObservedAt}
}

func (r *AirRow) ewkb() ([]byte, error) { return ewkbOf(r.Location) }

// queueTrafficStates is queueAirStates for the segments of b.Traffic
// (sqlUpsertRoadSegmentRows, appendTrafficValues).
func queueTrafficStates(pb *pgx.Batch, b Batch, res *Result) error {
	return queueStates(pb, b.Traffic, (*TrafficRow).entity, (*TrafficRow).ewkb, appendTrafficValues,
		sqlUpsertRoadSegmentRowsOne, sqlUpsertRoadSegmentRows, &res.Traffic.Changed)
}

func (r *TrafficRow) entity() entityRow {
	return entityRow{r.SegmentID, r.Name, r.Province, r.UnitCode, r.SourceID, r.EventID, r.ObservedAt}
}

func (r *TrafficRow) ewkb() ([]byte, error) { return ewkbOf(r.Geom) }

// stateRows are the rows of a batch that may become a state (latestRows) as
// the arrays a state upsert written straight takes (sqlSensorRowsArrays,
// sqlTrafficRowsArrays): the row's index in the batch, the entity's id,
// name, province, unit, source, geometry as EWKB, event and observation
// time, and its state's values as JSON text.
type stateRows struct {
	seqs                                          []int32
	ids, names, provinces, units, sources, events []string
	geoms                                         [][]byte
	observed                                      []time.Time
	values                                        []string
	// buf holds the values' text, ends where each ends.
	buf  []byte
	ends []int
}

func newStateRows(m int) *stateRows {
	return &stateRows{
		seqs: make([]int32, m), ids: make([]string, m), names: make([]string, m), provinces: make([]string, m),
		units: make([]string, m), sources: make([]string, m), events: make([]string, m), geoms: make([][]byte, m),
		observed: make([]time.Time, m), values: make([]string, m), ends: make([]int, m),
	}
}

// set makes row i of the batch, of e with geometry g (EWKB), the j-th
// entity's.
func (s *stateRows) set(j, i int, e entityRow, g []byte) {
	s.seqs[j], s.ids[j], s.names[j], s.provinces[j], s.units[j], s.sources[j], s.events[j] =
		int32(i), e.id, e.name, e.province, e.unit, e.source, e.event //nolint:gosec // a batch's index fits
	s.observed[j], s.geoms[j] = e.observed, g
}

// queue queues the upsert, recording the entities whose state it wrote in
// changed: one of rows of one entity each (the common batch: the conflict
// clause alone keeps a row that may not move a state from moving it, and
// there is no other row of the entity it could hide), else one that looks
// up each entity's owner before its newest row is chosen. Only a batch of
// several provinces or sources can hold an entity twice (latestRows keeps
// one row per stateKey): the common batch is told apart without a map.
func (s *stateRows) queue(pb *pgx.Batch, one, several string, changed *[]Changed) {
	all, start := string(s.buf), 0
	for j, end := range s.ends {
		s.values[j], start = all[start:end], end
	}
	sql := one
	if slices.ContainsFunc(s.provinces, func(p string) bool { return p != s.provinces[0] }) ||
		slices.ContainsFunc(s.sources, func(src string) bool { return src != s.sources[0] }) {
		seen := make(map[string]bool, len(s.ids))
		for _, id := range s.ids {
			if seen[id] {
				sql = several
				break
			}
			seen[id] = true
		}
	}
	pb.Queue(sql, s.seqs, s.ids, s.names, s.provinces, s.units, s.sources, s.geoms, s.events, s.observed,
		s.values).Query(collectChanged(changed))
}

// stateJSON writes a state's values as a JSON object, as the server's
// jsonb_strip_nulls(jsonb_build_object(…)) || coalesce(extra, '{}') makes
// them: the members present, then the extra values (of two members with one
// name the later is kept by jsonb, as by the server's concatenation).
type stateJSON struct {
	buf   []byte
	first bool
}

func openStateJSON(buf []byte) stateJSON { return stateJSON{buf: append(buf, '{'), first: true} }

func (j *stateJSON) member(name string) {
	if !j.first {
		j.buf = append(j.buf, ',')
	}
	j.first = false
	j.buf = append(j.buf, '"')
	j.buf = append(j.buf, name...)
	j.buf = append(j.buf, '"', ':')
}

// float writes v, when present, as the server writes a float8 into jsonb:
// a number, the same number as its shortest decimal text, or the string
// "NaN", "Infinity" or "-Infinity".
func (j *stateJSON) float(name string, v *float64) {
	if v == nil {
		return
	}
	j.member(name)
	switch f := *v; {
	case math.IsNaN(f):
		j.buf = append(j.buf, `"NaN"`...)
	case math.IsInf(f, 1):
		j.buf = append(j.buf, `"Infinity"`...)
	case math.IsInf(f, -1):
		j.buf = append(j.buf, `"-Infinity"`...)
	default:
		j.buf = strconv.AppendFloat(j.buf, f, 'g', -1, 64)
	}
}

// extra writes the members of m after those written.
func (j *stateJSON) extra(m map[string]any) error {
	if len(m) == 0 {
		return nil
	}
	// The object's members after buf's: its '{' becomes the comma
	// between them (or goes, when buf has none) and its '}' goes.
	at := len(j.buf)
	x, err := appendExtraJSON(j.buf, m)
	if err != nil {
		return err
	}
	if j.first {
		j.buf = x[:at+copy(x[at:], x[at+1:len(x)-1])]
		j.first = false
	} else {
		x[at] = ','
		j.buf = x[:len(x)-1]
	}
	return nil
}

func (j *stateJSON) close() []byte { return append(j.buf, '}') }

// appendAirValues appends to buf the values of r's state as a JSON object,
// the text of the jsonb sqlUpsertSensorAir builds from the same row: the
// pollutants present, then the extra values, then the AQI under "aqi" (an
// extra value named like a pollutant, or "aqi", is replaced by the later).
func appendAirValues(buf []byte, r *AirRow) ([]byte, error) {
	j := openStateJSON(buf)
	for _, p := range [...]struct {
		name string
		v    *float64
	}{{"pm25", r.PM25}, {"pm10", r.PM10}, {"no2", r.NO2}, {"o3", r.O3}, {"co", r.CO}, {"so2", r.SO2}} {
		j.float(p.name, p.v)
	}
	if err := j.extra(r.Extra); err != nil {
		return nil, err
	}
	if len(r.AQI.JSON) > 0 {
		// Checked, since it is spliced in: the server refused invalid JSON
		// when it parsed it alone.
		if !json.Valid(r.AQI.JSON) {
			return nil, fmt.Errorf("the VN_AQI is not JSON: %w", ErrInvalidJSON)
		}
		j.member("aqi")
		j.buf = append(j.buf, r.AQI.JSON...)
	}
	return j.close(), nil
}

// appendTrafficValues appends to buf the values of r's state as a JSON
// object, the text of the jsonb sqlUpsertRoadSegment builds from the same
// row: intensity, occupancy, averageVehicleSpeed, congested and laneId when
// present, then the extra values.
func appendTrafficValues(buf []byte, r *TrafficRow) ([]byte, error) {
	j := openStateJSON(buf)
	j.float("intensity", r.Intensity)
	j.float("occupancy", r.Occupancy)
	j.float("averageVehicleSpeed", r.AverageVehicleSpeed)
	if r.Congested != nil {
		j.member("congested")
		j.buf = strconv.AppendBool(j.buf, *r.Congested)
	}
	if r.LaneID != nil {
		j.member("laneId")
		j.buf = strconv.AppendInt(j.buf, int64(*r.LaneID), 10)
	}
	if err := j.extra(r.Extra); err != nil {
		return nil, err
	}
	return j.close(), nil
}

// ewkbOf is g as EWKB with the store's SRID (appendEWKB), nil (NULL) when
// g is nil.
func ewkbOf[G interface {
	*geom.Point | *geom.LineString
	geom.T
}](g G) ([]byte, error) {
	if g == nil {
		return nil, nil
	}
	return appendEWKB(nil, g)
}
