package postgis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// partitions remembers the monthly partitions known to exist, so that only a
// batch touching a new month pays for creating one.
type partitions struct {
	mu    sync.Mutex
	known map[string]bool // partition name
}

// partitionSpec is one monthly partition of an observation table.
type partitionSpec struct {
	parent, name string
	from, to     time.Time
}

// monthPartition names the partition of parent holding t: parent_pYYYYMM,
// bounded by the UTC month.
func monthPartition(parent string, t time.Time) partitionSpec {
	t = t.UTC()
	from := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return partitionSpec{
		parent: parent,
		name:   fmt.Sprintf("%s_p%04d%02d", parent, from.Year(), int(from.Month())),
		from:   from,
		to:     from.AddDate(0, 1, 0),
	}
}

// missing lists the partitions the batch needs that are not known to exist.
func (p *partitions) missing(b Batch) []partitionSpec {
	need := needed(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []partitionSpec
	for _, ps := range need {
		if !p.known[ps.name] {
			out = append(out, ps)
		}
	}
	return out
}

// needed lists the partitions the batch's rows go to, by name.
func needed(b Batch) []partitionSpec {
	// By month first, a time of each: the partitions' names are made once
	// per month of the batch, not once per row.
	type month struct {
		parent string
		year   int
		month  time.Month
	}
	need := map[month]time.Time{}
	for _, k := range kindStores {
		if k.partitioned == "" {
			continue
		}
		for i := range k.rows(b) {
			t := k.observedAt(b, i).UTC()
			need[month{k.partitioned, t.Year(), t.Month()}] = t
		}
	}
	out := make([]partitionSpec, 0, len(need))
	for m, t := range need {
		out = append(out, monthPartition(m.parent, t))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// noPartition reports whether err is the server's refusal of a row whose
// partition does not exist ("no partition of relation … found for row": a
// check_violation that names the partitioned table and no constraint): a
// partition this store knew was dropped since, by the retention of another
// store (another aggregator) or between its own check and write.
func noPartition(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || pg.Code != sqlstateCheckViolation || pg.ConstraintName != "" {
		return false
	}
	for _, k := range kindStores {
		if k.partitioned != "" && k.partitioned == pg.TableName {
			return true
		}
	}
	return false
}

// sqlstateCheckViolation is the SQLSTATE of check_violation.
const sqlstateCheckViolation = "23514"

func (p *partitions) remember(specs []partitionSpec) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ps := range specs {
		p.known[ps.name] = true
	}
}

// ensurePartitions creates the monthly partitions b needs, in a transaction of
// its own under an advisory lock so that aggregators racing for the same new
// month do not collide.
func (s *Store) ensurePartitions(ctx context.Context, b Batch) error {
	specs := s.parts.missing(b)
	if len(specs) == 0 {
		return nil
	}
	err := s.BeginFunc(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlLockPartitions); err != nil {
			return fmt.Errorf("locking partitions: %w", err)
		}
		for _, ps := range specs {
			const layout = "2006-01-02 15:04:05+00"
			q := fmt.Sprintf(sqlCreatePartition, pgx.Identifier{ps.name}.Sanitize(), pgx.Identifier{ps.parent}.Sanitize(),
				ps.from.Format(layout), ps.to.Format(layout))
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("creating partition %s: %w", ps.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ensuring %d partitions: %w", len(specs), err)
	}
	s.parts.remember(specs)
	return nil
}

// sqlObservationPartitions lists the partitions of the partitioned
// observation tables named in $1, with their parent.
const sqlObservationPartitions = `SELECT c.relname, p.relname
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname = ANY($1::text[])
ORDER BY c.relname`

// DropObservationsBefore drops the monthly partitions of the observation
// tables whose whole month ends at or before cutoff (a partition named
// otherwise, such as a default one, is left alone), under the lock that
// serialises partition creation, and returns their names. Roll-ups, current
// states, alerts and reports are not touched: only raw observations age out.
// A late observation of a dropped month makes its partition again, as any
// new month does.
func (s *Store) DropObservationsBefore(ctx context.Context, cutoff time.Time) ([]string, error) {
	var parents []string
	for _, k := range kindStores {
		if k.partitioned != "" && !slices.Contains(parents, k.partitioned) {
			parents = append(parents, k.partitioned)
		}
	}
	var dropped []string
	err := s.BeginFunc(ctx, func(tx pgx.Tx) error {
		dropped = dropped[:0]
		if _, err := tx.Exec(ctx, sqlLockPartitions); err != nil {
			return fmt.Errorf("locking partitions: %w", err)
		}
		rows, err := tx.Query(ctx, sqlObservationPartitions, parents)
		if err != nil {
			return fmt.Errorf("listing observation partitions: %w", err)
		}
		names, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
			var v [2]string
			err := r.Scan(&v[0], &v[1])
			return v, err
		})
		if err != nil {
			return fmt.Errorf("listing observation partitions: %w", err)
		}
		for _, n := range names {
			from, ok := partitionMonth(n[1], n[0])
			if !ok || from.AddDate(0, 1, 0).After(cutoff) {
				continue
			}
			if _, err := tx.Exec(ctx, "DROP TABLE "+pgx.Identifier{n[0]}.Sanitize()); err != nil {
				return fmt.Errorf("dropping partition %s: %w", n[0], err)
			}
			dropped = append(dropped, n[0])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.parts.forget(dropped)
	return dropped, nil
}

// partitionMonth reads the month of partition name of parent
// (parent_pYYYYMM, as monthPartition names it).
func partitionMonth(parent, name string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(name, parent+"_p")
	if !ok || len(rest) != 6 {
		return time.Time{}, false
	}
	t, err := time.Parse("200601", rest)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), monthPartition(parent, t).name == name
}

// forgetBatch forgets the partitions of b's rows: ensurePartitions makes
// them again (CREATE TABLE IF NOT EXISTS) before b is written.
func (p *partitions) forgetBatch(b Batch) {
	var names []string
	for _, ps := range needed(b) {
		names = append(names, ps.name)
	}
	p.forget(names)
}

func (p *partitions) forget(names []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range names {
		delete(p.known, n)
	}
}
