package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/units"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// ActionUnitImport imports a map (target kind "unit", target the import id):
// the payload is a UnitImportPayload naming the GeoJSON FeatureCollection
// the gateway stored in the object store natsx.BucketUnitImportFiles. The
// import runs in the action's transaction, so a redelivered action (already
// recorded as done) imports nothing again; its progress is written to the
// key-value bucket natsx.BucketUnitImports under the import id. A bad file
// refuses the action and ends the import "failed" with the reason.
const ActionUnitImport = "unit.import"

// UnitImportPayload is the payload of unit.import.
type UnitImportPayload struct {
	// Object is the name of the file in natsx.BucketUnitImportFiles.
	Object string `json:"object"`
	// ValidFrom starts the imported versions; zero means schema.DefaultUnitsValidFrom.
	ValidFrom time.Time `json:"validFrom"`
	// Replace: the file is the whole map (schema.ImportOptions.Replace).
	Replace bool `json:"replace,omitempty"`
}

// importProgressEvery bounds how often the progress record is rewritten
// while features are read.
const importProgressEvery = 500 * time.Millisecond

// UnitImportAction returns the handler of unit.import.
func UnitImportAction(js jetstream.JetStream, log *slog.Logger) ActionHandler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
		if a.GetTargetKind() != targetKindUnit {
			return nil, Refuse(fmt.Sprintf("target kind is %q; want unit", a.GetTargetKind()))
		}
		var p UnitImportPayload
		if err := json.Unmarshal(a.GetPayload(), &p); err != nil || p.Object == "" {
			return nil, Refuse(fmt.Sprintf("payload is not {\"object\":\"...\",\"validFrom\":\"...\"}: %v", err))
		}
		kv, err := js.KeyValue(ctx, natsx.BucketUnitImports)
		if err != nil {
			return nil, fmt.Errorf("opening bucket %s: %w", natsx.BucketUnitImports, err)
		}
		rec := natsx.UnitImport{ID: a.GetTarget(), State: natsx.ImportRunning, ValidFrom: p.ValidFrom, Replace: p.Replace, Actor: a.GetActor()}
		if e, err := kv.Get(ctx, a.GetTarget()); err == nil {
			_ = json.Unmarshal(e.Value(), &rec)
			rec.State, rec.Error = natsx.ImportRunning, ""
		}
		put := func(r natsx.UnitImport) {
			r.UpdatedAt = time.Now().UTC()
			b, _ := json.Marshal(r)
			// The context of a finished action may be done; the record is still written.
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, err := kv.Put(pctx, r.ID, b); err != nil {
				log.Warn("writing import progress failed", "import", r.ID, "err", err)
			}
		}
		var obs jetstream.ObjectStore
		// drop deletes the file once its import is done or failed for good.
		drop := func() {
			if obs == nil {
				return
			}
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := obs.Delete(dctx, p.Object); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
				log.Warn("deleting imported map failed", "import", a.GetTarget(), "err", err)
			}
		}
		fail := func(reason string) error {
			r := rec
			r.State, r.Error = natsx.ImportFailed, reason
			AfterCommit(ctx, func() { put(r); drop() })
			return Refuse(reason)
		}
		obs, err = js.ObjectStore(ctx, natsx.BucketUnitImportFiles)
		if err != nil {
			return nil, fmt.Errorf("opening object store %s: %w", natsx.BucketUnitImportFiles, err)
		}
		// The gateway's rule at queue time (auth.Principal.CanImportMaps),
		// of the actor as it is now: the import ends failed with the reason.
		if who, ok := actingAs(ctx); ok && !who.CanImportMaps() {
			return nil, fail(mayNot(who, "import maps (admin of every province, scope *, needed)"))
		}
		obj, err := obs.Get(ctx, p.Object)
		switch {
		case errors.Is(err, jetstream.ErrObjectNotFound):
			return nil, fail(fmt.Sprintf("the uploaded file %s is gone (kept 7 days); upload it again", p.Object))
		case err != nil:
			return nil, fmt.Errorf("reading %s from %s: %w", p.Object, natsx.BucketUnitImportFiles, err)
		}
		defer func() { _ = obj.Close() }()
		put(rec)
		last := time.Now()
		opts := schema.ImportOptions{ValidFrom: p.ValidFrom, Replace: p.Replace, Progress: func(done, _ int) {
			rec.Read = done
			if time.Since(last) >= importProgressEvery {
				last = time.Now()
				put(rec)
			}
		}, Waiting: func() {
			log.Info("map import waits for another to finish", "import", a.GetTarget())
		}}
		// A savepoint: a bad file rolls back the import only, and the
		// refusal is still recorded in tx.
		sp, err := tx.Begin(ctx)
		if err != nil {
			return nil, fmt.Errorf("importing map %s: savepoint: %w", a.GetTarget(), err)
		}
		res, err := schema.ImportUnitsTx(ctx, sp, obj, opts)
		if err != nil {
			_ = sp.Rollback(ctx)
			if errors.Is(err, units.ErrInvalidUnits) || errors.Is(err, schema.ErrUnitVersion) {
				return nil, fail(err.Error())
			}
			if why, ok := refusedValue(err); ok {
				return nil, fail(why)
			}
			if why, ok := refusedVersion(err); ok {
				return nil, fail(why)
			}
			return nil, err
		}
		if err := sp.Commit(ctx); err != nil {
			return nil, fmt.Errorf("importing map %s: releasing savepoint: %w", a.GetTarget(), err)
		}
		rec.State, rec.Read, rec.Written, rec.Unchanged, rec.Closed, rec.Retired = natsx.ImportDone, res.Read, res.Inserted, res.Unchanged, res.Closed, res.Retired
		done := rec
		AfterCommit(ctx, func() { put(done); drop() })
		log.Info("map imported", "import", a.GetTarget(), "read", res.Read, "written", res.Inserted, "closed", res.Closed, "retired", res.Retired)
		return nil, nil
	}
}

// refusedVersion reports whether err is admin_unit refusing a version of
// the file (a unique key or an exclusion constraint): the import's checks
// (schema.ErrUnitVersion) should have found it first, and if one is missed
// the file is refused with the database's word rather than retried for
// ever, since imports are applied one at a time (a direct import from the
// CLI too: schema.ImportUnitsTx waits for it), so no retry changes what the
// file and the table hold.
func refusedVersion(err error) (string, bool) {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || pg.Code != "23505" && pg.Code != "23P01" {
		return "", false
	}
	return fmt.Sprintf("the database refused a version of the file: %s (SQLSTATE %s)", pg.Message, pg.Code), true
}
