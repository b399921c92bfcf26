package postgis

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// WrittenAllNew returns how many batches s wrote as all new, in the round
// trip of their inserts (writeAllNew), and how many it wrote again the exact
// way because some row was not new.
func (s *Store) WrittenAllNew() (allNew, rewritten int64) {
	return s.allNew.Load(), s.rewritten.Load()
}

// SetMemberCacheBound bounds the member rows s keeps in memory to n.
func (s *Store) SetMemberCacheBound(n int) {
	s.members.mu.Lock()
	defer s.members.mu.Unlock()
	s.members.bound = n
}

// MemberCacheRows returns the number of member rows s keeps in memory.
func (s *Store) MemberCacheRows() int {
	s.members.mu.Lock()
	defer s.members.mu.Unlock()
	return s.members.n
}

// WriteAirStates writes, in tx, the state of each station of b.Air from its
// newest row, as a batch written straight does after its COPY, and returns
// the stations whose state it wrote.
func WriteAirStates(ctx context.Context, tx pgx.Tx, b Batch) ([]Changed, error) {
	var pb pgx.Batch
	var res Result
	if err := queueAirStates(&pb, b, &res); err != nil {
		return nil, err
	}
	if err := tx.SendBatch(ctx, &pb).Close(); err != nil {
		return nil, err
	}
	return res.Air.Changed, nil
}

// ContextReads returns how many of s's batches read known sensors and stale
// sources (the counts of some unit its memory did not hold).
func (s *Store) ContextReads() int64 {
	return s.rollups.known.reads.Load()
}

// LimitContextCache bounds the units whose counts s keeps in memory to n
// (maxCachedUnits otherwise), and returns how many it holds now.
func (s *Store) LimitContextCache(n int) int {
	c := s.rollups.known
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > 0 {
		c.limit = n
	}
	return len(c.units)
}

// RollupContextCachedIn sets the Known and Stale figures of rs in tx as a
// batch of s writing them would: through the counts s keeps in memory.
func (s *Store) RollupContextCachedIn(ctx context.Context, tx pgx.Tx, rs []Rollup) error {
	units := make([]string, 0, len(rs))
	for _, r := range rs {
		units = append(units, r.UnitCode)
	}
	slices.Sort(units)
	var pb pgx.Batch
	counts := queueRollupContextCached(&pb, slices.Compact(units), s.rollups.known)
	if err := tx.SendBatch(ctx, &pb).Close(); err != nil {
		return err
	}
	setRollupContext(rs, counts)
	return nil
}

// RollupContextIn sets the Known and Stale figures and the gauges of rs in
// tx, read afresh (sqlRollupContext).
func RollupContextIn(ctx context.Context, tx pgx.Tx, rs []Rollup) error {
	return rollupContext(ctx, tx, rs)
}

// CopyEnded reports whether st's BEGIN and COPY ended.
func (st *Started) CopyEnded() bool {
	select {
	case <-st.done:
		return true
	default:
		return false
	}
}

// CopyAirAsPgx copies rows into table, which has air_observation's
// columns, by pgx's CopyFrom with the values the store gave it before it
// encoded its own COPY: the reference the binary encoder is held to.
func CopyAirAsPgx(ctx context.Context, conn *pgx.Conn, table string, rows []AirRow) error {
	_, err := conn.CopyFrom(ctx, pgx.Identifier{table}, airColumns, pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		r := &rows[i]
		return []any{
			r.SourceID, r.EventID, r.ObservedAt, r.ReceivedAt, r.StationID, r.Province, r.UnitCode,
			geomValue(r.Location), r.PM25, r.PM10, r.NO2, r.O3, r.CO, r.SO2, extraValue(r.Extra),
			r.AQI.Value, aqiBand(r.AQI.Band), nullText(r.AQI.Dominant),
		}, nil
	}))
	return err
}

// CopyAirBinary copies rows into table, which has air_observation's
// columns, as a direct batch's COPY does.
func CopyAirBinary(ctx context.Context, conn *pgx.Conn, table string, rows []AirRow) error {
	data, _, err := AirCopy(rows)
	if err != nil {
		return err
	}
	tag, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(data), copySQL(table, airColumns))
	if err != nil {
		return err
	}
	if int(tag.RowsAffected()) != len(rows) {
		return fmt.Errorf("copied %d rows of %d", tag.RowsAffected(), len(rows))
	}
	return nil
}

// AirCopy returns rows encoded as a direct batch's COPY into
// air_observation encodes them, and that COPY's statement.
func AirCopy(rows []AirRow) (data []byte, sql string, err error) {
	c, err := airDirect.encodeRows(Batch{Air: rows}, len(rows))
	if err != nil {
		return nil, "", err
	}
	defer c.put()
	return bytes.Clone(c.data()), airDirect.copySQL, nil
}
