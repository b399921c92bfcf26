package schema

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twpayne/go-geom/encoding/wkb"

	"github.com/iochub/iochub/internal/units"
)

// DefaultUnitsValidFrom is when the 2025 map took effect: 1 July 2025 in Vietnam.
var DefaultUnitsValidFrom = time.Date(2025, 7, 1, 0, 0, 0, 0, time.FixedZone("ICT", 7*3600))

// ImportOptions steers ImportUnits; every zero value has a default.
type ImportOptions struct {
	// Level of every unit in the file; empty means by the length of the code:
	// 2 digits a province, 5 a commune (see units.ReadOptions).
	Level string
	// Parent code of every unit in the file; empty means, for provinces, the
	// national unit VN if there is one (EnsureNational), else none, and, for
	// communes, the current province containing the commune.
	Parent string
	// ValidFrom starts the imported versions; zero means DefaultUnitsValidFrom.
	ValidFrom time.Time
	// Progress, if set, is called as features are read with the number read
	// so far and total -1, then once more with done = total when all are read.
	Progress func(done, total int)
	// Replace says the file is the whole administrative map from ValidFrom
	// on, for each level it holds: the current provinces, districts and
	// communes of those levels it does not hold are retired (closed at
	// ValidFrom), as a merger or a reform retires the units it merges away.
	// A level the file holds none of is left as it is (a file of provinces
	// does not retire every commune). The import is refused when a unit left
	// current (a commune of a retired province, a custom group) would have a
	// retired parent.
	Replace bool
	// Waiting, if set, is called once before the import waits for another
	// import to end: imports are applied one at a time (lockUnits), and a
	// big map can hold the next for minutes.
	Waiting func()
}

// MaxUnitsValidFromAhead is how far ahead of the clock an import may start
// its versions (clocks apart). The current units are those whose version has
// no end (valid_to IS NULL), everywhere from the ingest's map to the scopes
// of identities: a version starting later would be current at once, and the
// units it changes would vanish before their time. A map that takes effect
// on a known day is imported on that day.
const MaxUnitsValidFromAhead = 5 * time.Minute

// ImportResult counts what ImportUnits did.
type ImportResult struct {
	// Read is the number of features in the file.
	Read int
	// Inserted is the number of new versions opened (new or changed units).
	Inserted int
	// Unchanged is the number of units identical to their current version.
	Unchanged int
	// Closed is the number of current versions closed by a change.
	Closed int
	// Retired is the number of current units closed because a Replace
	// file does not hold them.
	Retired int
	// Repaired lists the codes whose invalid boundary ST_MakeValid repaired.
	Repaired []string
}

// ImportUnits loads a GeoJSON FeatureCollection of administrative units into
// admin_unit, versioning them: a unit identical to its current version (same
// level, parent, names and boundary) is left alone, a changed one has its
// current version closed at opts.ValidFrom and a new one opened. Feature
// properties: code (required), name, nameEn, fullName, fullNameEn.
//
// Features are decoded one at a time and streamed by COPY into a staging
// table; the rest is set-based SQL, all in one transaction, so a bad file
// writes nothing. Errors about the file wrap units.ErrInvalidUnits and name the
// feature as features[i] with its code.
func ImportUnits(ctx context.Context, pool *pgxpool.Pool, r io.Reader, opts ImportOptions) (ImportResult, error) {
	var res ImportResult
	if opts.Level != "" && !units.ValidLevel(opts.Level) {
		return res, fmt.Errorf("importing units: level %q is not one of national, province, district, commune, custom", opts.Level)
	}
	if opts.ValidFrom.IsZero() {
		opts.ValidFrom = DefaultUnitsValidFrom
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("importing units: beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if res, err = ImportUnitsTx(ctx, tx, r, opts); err != nil {
		return res, err
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("importing units: committing: %w", err)
	}
	return res, nil
}

// ImportUnitsTx is ImportUnits in tx, which the caller commits (the
// aggregator's unit.import action imports in the action's transaction, so a
// redelivered action imports once). It uses a temporary staging table
// dropped at commit, so one tx imports once. It first takes lockUnits, so
// an import running meanwhile (the CLI's direct one, or the hub's) is
// waited for and this one compares with what it committed.
func ImportUnitsTx(ctx context.Context, tx pgx.Tx, r io.Reader, opts ImportOptions) (ImportResult, error) {
	var res ImportResult
	if opts.Level != "" && !units.ValidLevel(opts.Level) {
		return res, fmt.Errorf("importing units: level %q is not one of national, province, district, commune, custom", opts.Level)
	}
	if opts.ValidFrom.IsZero() {
		opts.ValidFrom = DefaultUnitsValidFrom
	}
	if late := time.Until(opts.ValidFrom); late > MaxUnitsValidFromAhead {
		return res, fmt.Errorf("importing units: valid_from %s is in the future: import the map on the day it takes effect: %w",
			opts.ValidFrom.Format(time.RFC3339), ErrUnitVersion)
	}
	if err := lockUnits(ctx, tx, opts.Waiting); err != nil {
		return res, fmt.Errorf("importing units: %w", err)
	}
	if _, err := tx.Exec(ctx, sqlUnitStageCreate); err != nil {
		return res, fmt.Errorf("importing units: creating staging table: %w", err)
	}
	src := &unitSource{r: units.NewReader(r, units.ReadOptions{Level: opts.Level, Parent: opts.Parent}), progress: opts.Progress}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"unit_stage"}, unitStageColumns, src)
	if src.err != nil {
		return res, fmt.Errorf("importing units: %w", src.err)
	}
	if err != nil {
		return res, fmt.Errorf("importing units: copying features: %w", err)
	}
	if int(n) != src.r.Read() {
		return res, fmt.Errorf("importing units: COPY stored %d of %d features: %w", n, src.r.Read(), ErrShortCopy)
	}
	res.Read = src.r.Read()
	if opts.Progress != nil {
		opts.Progress(res.Read, res.Read)
	}

	var gidx int
	var gcode, glevel string
	switch err := tx.QueryRow(ctx, sqlUnitStageGroup).Scan(&gidx, &gcode, &glevel); {
	case err == nil:
		return res, fmt.Errorf("importing units: features[%d] (code %s): the code is that of a current unit of level %s; a custom group and a unit never share a code (groups are changed with units group): %w",
			gidx, gcode, glevel, units.ErrInvalidUnits)
	case !errors.Is(err, pgx.ErrNoRows):
		return res, fmt.Errorf("importing units: checking groups: %w", err)
	}
	if err := unitPrepare(ctx, tx, &res); err != nil {
		return res, fmt.Errorf("importing units: %w", err)
	}
	if _, err := tx.Exec(ctx, sqlUnitStageProvinceParent); err != nil {
		return res, fmt.Errorf("importing units: linking provinces to the national unit: %w", err)
	}
	// Units above communes first, so communes find their current province;
	// a Replace file retires the provinces and districts it does not hold
	// before, so that they are not found.
	if err := unitVersion(ctx, tx, opts.ValidFrom, false, &res); err != nil {
		return res, fmt.Errorf("importing units: %w", err)
	}
	if opts.Replace {
		if err := unitRetire(ctx, tx, opts.ValidFrom, false, &res); err != nil {
			return res, fmt.Errorf("importing units: %w", err)
		}
	}
	var idx int
	var code, parent string
	switch err := tx.QueryRow(ctx, sqlUnitStageUnknownParent, opts.ValidFrom).Scan(&idx, &code, &parent); {
	case err == nil:
		return res, fmt.Errorf("importing units: features[%d] (code %s): parent %s is not a current unit or has no version valid from %s: %w",
			idx, code, parent, opts.ValidFrom.Format(time.RFC3339), units.ErrInvalidUnits)
	case !errors.Is(err, pgx.ErrNoRows):
		return res, fmt.Errorf("importing units: checking parents: %w", err)
	}
	if _, err := tx.Exec(ctx, sqlUnitStageSetParents, opts.ValidFrom); err != nil {
		return res, fmt.Errorf("importing units: finding parents of communes: %w", err)
	}
	switch err := tx.QueryRow(ctx, sqlUnitStageOrphan).Scan(&idx, &code); {
	case err == nil:
		return res, fmt.Errorf("importing units: features[%d] (code %s): no current province contains this commune; import the provinces first or set the parent: %w",
			idx, code, units.ErrInvalidUnits)
	case !errors.Is(err, pgx.ErrNoRows):
		return res, fmt.Errorf("importing units: checking parents: %w", err)
	}
	if err := unitVersion(ctx, tx, opts.ValidFrom, true, &res); err != nil {
		return res, fmt.Errorf("importing units: %w", err)
	}
	if opts.Replace {
		if err := unitRetire(ctx, tx, opts.ValidFrom, true, &res); err != nil {
			return res, fmt.Errorf("importing units: %w", err)
		}
		if err := unitOrphans(ctx, tx); err != nil {
			return res, fmt.Errorf("importing units: %w", err)
		}
	}
	if err := tx.QueryRow(ctx, sqlUnitCountUnchanged).Scan(&res.Unchanged); err != nil {
		return res, fmt.Errorf("importing units: counting unchanged units: %w", err)
	}
	return res, nil
}

// lockUnits makes tx the only transaction importing versions into
// admin_unit until it ends: it waits for the one holding the lock to commit
// or roll back, calling waiting, if set, before it waits. Every import (of
// units, by the CLI or by the hub's unit.import action, and of past units)
// takes it before it reads admin_unit, and so does every definition of a
// custom group (LockUnits, which has the lock order). Without it, two imports at once each
// compared their file with the units as they were before either (neither
// sees the other's rows before commit), and the second's insert of a code
// failed on admin_unit's unique keys (23505) once the first committed; a
// blind retry would be right only by chance. Under READ COMMITTED, the
// default, each statement sees what was committed before it began, so the
// statements after the lock see the other import whole: the same map is
// found unchanged, a later one is the next version. The lock goes at commit
// or rollback (or at the rollback of a savepoint taken before it).
func lockUnits(ctx context.Context, tx pgx.Tx, waiting func()) error {
	if waiting != nil {
		var got bool
		if err := tx.QueryRow(ctx, sqlUnitTryLock).Scan(&got); err != nil {
			return fmt.Errorf("taking the units lock: %w", err)
		}
		if got {
			return nil
		}
		waiting()
	}
	if _, err := tx.Exec(ctx, sqlUnitLock); err != nil {
		return fmt.Errorf("waiting for another import of units to end: %w", err)
	}
	return nil
}

// unitPrepare builds the staged boundaries and repairs the invalid ones.
func unitPrepare(ctx context.Context, tx pgx.Tx, res *ImportResult) error {
	if _, err := tx.Exec(ctx, sqlUnitStageSetBoundary); err != nil {
		return fmt.Errorf("decoding boundaries: %w", err)
	}
	rows, err := tx.Query(ctx, sqlUnitStageRepair)
	if err != nil {
		return fmt.Errorf("repairing boundaries: %w", err)
	}
	for rows.Next() {
		var idx int
		var code string
		if err := rows.Scan(&idx, &code); err != nil {
			rows.Close()
			return fmt.Errorf("repairing boundaries: %w", err)
		}
		res.Repaired = append(res.Repaired, code)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("repairing boundaries: %w", err)
	}
	slices.Sort(res.Repaired)
	var idx int
	var code string
	switch err := tx.QueryRow(ctx, sqlUnitStageUnrepairable).Scan(&idx, &code); {
	case err == nil:
		return fmt.Errorf("features[%d] (code %s): the boundary is invalid and ST_MakeValid leaves no polygon: %w",
			idx, code, units.ErrInvalidUnits)
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("checking repaired boundaries: %w", err)
	}
	return nil
}

// unitVersion applies the staged units of one phase: communes or the others.
func unitVersion(ctx context.Context, tx pgx.Tx, validFrom time.Time, communes bool, res *ImportResult) error {
	if _, err := tx.Exec(ctx, sqlUnitMarkUnchanged, communes); err != nil {
		return fmt.Errorf("comparing with current units: %w", err)
	}
	var idx int
	var code string
	var from time.Time
	var to *time.Time
	switch err := tx.QueryRow(ctx, sqlUnitTooOld, validFrom, communes).Scan(&idx, &code, &from, &to); {
	case err == nil && to == nil:
		return fmt.Errorf("features[%d] (code %s): the current version is valid from %s; a change must start later than that, not at %s: %w",
			idx, code, from.Format(time.RFC3339), validFrom.Format(time.RFC3339), ErrUnitVersion)
	case err == nil:
		return fmt.Errorf("features[%d] (code %s): a past version is valid from %s to %s; a new version must start at its end or later, not at %s: %w",
			idx, code, from.Format(time.RFC3339), to.Format(time.RFC3339), validFrom.Format(time.RFC3339), ErrUnitVersion)
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("checking versions: %w", err)
	}
	tag, err := tx.Exec(ctx, sqlUnitClose, validFrom, communes)
	if err != nil {
		return fmt.Errorf("closing changed units: %w", err)
	}
	res.Closed += int(tag.RowsAffected())
	tag, err = tx.Exec(ctx, sqlUnitInsert, validFrom, communes)
	if err != nil {
		return fmt.Errorf("inserting units: %w", err)
	}
	res.Inserted += int(tag.RowsAffected())
	return nil
}

// unitRetire retires the current administrative units of a Replace file's
// phase (communes, or the levels above) that the file does not hold.
func unitRetire(ctx context.Context, tx pgx.Tx, validFrom time.Time, communes bool, res *ImportResult) error {
	var code string
	var from time.Time
	switch err := tx.QueryRow(ctx, sqlUnitRetireTooOld, validFrom, communes).Scan(&code, &from); {
	case err == nil:
		return fmt.Errorf("unit %s, not in the file, would be retired at %s, but its current version is valid from %s: %w",
			code, validFrom.Format(time.RFC3339), from.Format(time.RFC3339), ErrUnitVersion)
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("checking the units to retire: %w", err)
	}
	tag, err := tx.Exec(ctx, sqlUnitRetire, validFrom, communes)
	if err != nil {
		return fmt.Errorf("retiring the units not in the file: %w", err)
	}
	res.Retired += int(tag.RowsAffected())
	return nil
}

// unitOrphans refuses a Replace import that leaves a current unit (a custom
// group, or one of the file whose parent was given) under a retired parent.
func unitOrphans(ctx context.Context, tx pgx.Tx) error {
	var code, level, parent string
	switch err := tx.QueryRow(ctx, sqlUnitOrphan).Scan(&code, &level, &parent); {
	case err == nil:
		return fmt.Errorf("the %s %s stays current, but its parent %s is not in the file and would be retired; put %s in the file (or change its parent first): %w",
			level, code, parent, parent, units.ErrInvalidUnits)
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("checking parents after retiring: %w", err)
	}
	return nil
}

// unitSource feeds CopyFrom from a UnitReader. Its err is about the file;
// CopyFrom aborts the COPY when it is set.
type unitSource struct {
	r        *units.Reader
	progress func(done, total int)
	row      []any
	err      error
}

func (s *unitSource) Next() bool {
	rec, err := s.r.Next()
	if errors.Is(err, io.EOF) {
		return false
	}
	if err != nil {
		s.err = err
		return false
	}
	b, err := wkb.Marshal(rec.Boundary, wkb.NDR)
	if err != nil {
		s.err = fmt.Errorf("features[%d] (code %s): encoding the geometry: %w: %w", rec.Index, rec.Code, err, units.ErrInvalidUnits)
		return false
	}
	var parent any
	if rec.Parent != "" {
		parent = rec.Parent
	}
	s.row = []any{rec.Index, rec.Code, rec.Level, parent, rec.Name, rec.NameEn, rec.FullName, rec.FullNameEn, b}
	if s.progress != nil {
		s.progress(s.r.Read(), -1)
	}
	return true
}

func (s *unitSource) Values() ([]any, error) { return s.row, nil }

func (s *unitSource) Err() error { return s.err }

// HasUnits reports whether admin_unit holds any unit (current or past), so a
// development hub seeds the map only into an empty database.
func HasUnits(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	var has bool
	if err := pool.QueryRow(ctx, sqlUnitAny).Scan(&has); err != nil {
		return false, fmt.Errorf("asking whether admin_unit has units: %w", err)
	}
	return has, nil
}
