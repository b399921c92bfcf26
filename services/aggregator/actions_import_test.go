package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/testenv"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

const twoCommunes = `{"type":"FeatureCollection","features":[
{"type":"Feature","properties":{"code":"99901","name":"Một"},"geometry":{"type":"Polygon","coordinates":[[[105.85,21.02],[105.851,21.02],[105.851,21.021],[105.85,21.021],[105.85,21.02]]]}},
{"type":"Feature","properties":{"code":"99902","name":"Hai"},"geometry":{"type":"Polygon","coordinates":[[[105.86,21.02],[105.861,21.02],[105.861,21.021],[105.86,21.021],[105.86,21.02]]]}}]}`

// TestUnitImportAction: unit.import imports the stored file once however
// often the action is applied (a redelivery), ends its record done with
// the counts and deletes the file; a file gone or malformed refuses the
// action and ends the record failed with the reason.
func TestUnitImportAction(t *testing.T) {
	ctx := context.Background()
	db, acts, obs, kv := importActions(t)
	action := func(id string) *iocv1.Action {
		p, _ := json.Marshal(UnitImportPayload{Object: id, ValidFrom: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
		return &iocv1.Action{Id: "act-" + id, Type: ActionUnitImport, Actor: "admin", Province: "VN", TargetKind: "unit",
			Target: id, At: timestamppb.Now(), Payload: p}
	}
	record := func(id string) natsx.UnitImport {
		t.Helper()
		e, err := kv.Get(ctx, id)
		if err != nil {
			t.Fatalf("progress of %s: %v", id, err)
		}
		var r natsx.UnitImport
		if err := json.Unmarshal(e.Value(), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	count := func(q string) int {
		var c int
		if err := db.Pool.QueryRow(ctx, q).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}

	if _, err := obs.PutString(ctx, "imp-1", twoCommunes); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second is a redelivery
		_, applied, err := acts.Apply(ctx, action("imp-1"))
		if err != nil || applied != (i == 0) {
			t.Fatalf("apply #%d: applied %v, %v", i+1, applied, err)
		}
	}
	if r := record("imp-1"); r.State != natsx.ImportDone || r.Read != 2 || r.Written != 2 {
		t.Errorf("record %+v; want done, 2 read, 2 written", r)
	}
	if c := count(`SELECT count(*) FROM admin_unit WHERE code IN ('99901','99902')`); c != 2 {
		t.Errorf("%d versions of the imported communes; want 2", c)
	}
	if c := count(`SELECT count(*) FROM audit_log WHERE action = 'unit.import'`); c != 1 {
		t.Errorf("%d audit rows; want 1", c)
	}
	if _, err := obs.GetInfo(ctx, "imp-1"); err == nil {
		t.Error("the imported file is still stored")
	} else if !strings.Contains(err.Error(), jetstream.ErrObjectNotFound.Error()) {
		t.Errorf("looking up the imported file: %v", err)
	}

	if _, err := obs.PutString(ctx, "imp-bad", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{}}]}`); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"imp-bad", "imp-gone"} {
		if _, applied, err := acts.Apply(ctx, action(id)); err != nil || applied {
			t.Fatalf("%s: applied %v, %v; want refused", id, applied, err)
		}
		if r := record(id); r.State != natsx.ImportFailed || r.Error == "" {
			t.Errorf("%s: record %+v; want failed with the reason", id, r)
		}
	}
	if r := record("imp-bad"); !strings.Contains(r.Error, "features[0]") {
		t.Errorf("reason %q does not name features[0]", r.Error)
	}

	// The whole map again without ward 00004 (merged away), as a replace: 00004 is retired, the rest stays.
	var whole string
	if err := db.Pool.QueryRow(ctx, `SELECT json_build_object('type', 'FeatureCollection', 'features', json_agg(json_build_object(
			'type', 'Feature', 'properties', json_build_object('code', code, 'name', name_vi, 'nameEn', name_en),
			'geometry', ST_AsGeoJSON(boundary)::json) ORDER BY code))::text
		FROM admin_unit WHERE valid_to IS NULL AND level IN ('province', 'commune') AND code <> '00004'`).Scan(&whole); err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutString(ctx, "imp-whole", whole); err != nil {
		t.Fatal(err)
	}
	p, _ := json.Marshal(UnitImportPayload{Object: "imp-whole", ValidFrom: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), Replace: true})
	replace := &iocv1.Action{Id: "act-imp-whole", Type: ActionUnitImport, Actor: "admin", Province: "VN", TargetKind: "unit",
		Target: "imp-whole", At: timestamppb.Now(), Payload: p}
	if _, applied, err := acts.Apply(ctx, replace); err != nil || !applied {
		t.Fatalf("replace: applied %v, %v", applied, err)
	}
	if r := record("imp-whole"); r.State != natsx.ImportDone || r.Retired != 1 || !r.Replace {
		t.Errorf("replace record %+v; want done, replace, 1 retired", r)
	}
	if c := count(`SELECT count(*) FROM admin_unit WHERE code = '00004' AND valid_to IS NULL`); c != 0 {
		t.Error("ward 00004, not in the whole map, is still current")
	}
	if c := count(`SELECT count(*) FROM admin_unit WHERE code IN ('00070', '01', '99901') AND valid_to IS NULL`); c != 3 {
		t.Errorf("%d of 00070, 01, 99901 current after the replace; want 3", c)
	}
}

// TestUnitImportWithinActorScope: a unit.import is applied only when its
// actor, as it is when the action is applied, may import maps (the
// gateway's rule at queue time: an admin of every province). Refused, it
// imports nothing and its import ends failed with the reason.
func TestUnitImportWithinActorScope(t *testing.T) {
	ctx := context.Background()
	db, acts, obs, kv := importActions(t)
	adminAll := storeIdentity(t, db.Pool, auth.RoleAdmin, []string{"*"})
	admin01 := storeIdentity(t, db.Pool, auth.RoleAdmin, []string{"01"})
	operatorAll := storeIdentity(t, db.Pool, auth.RoleOperator, []string{"*"})
	narrowed := storeIdentity(t, db.Pool, auth.RoleAdmin, []string{"*"})
	narrowIdentity(t, db.Pool, narrowed, "01")

	for _, tc := range []struct {
		name, id, actor string
		refuse          bool
	}{
		{"an admin of one province", "imp-01", admin01, true},
		{"an operator", "imp-op", operatorAll, true},
		{"narrowed since it was queued", "imp-narrowed", narrowed + " as Lan", true},
		{"an admin of every province", "imp-all", adminAll + " as An", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := obs.PutString(ctx, tc.id, twoCommunes); err != nil {
				t.Fatal(err)
			}
			p, _ := json.Marshal(UnitImportPayload{Object: tc.id, ValidFrom: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
			a := &iocv1.Action{Id: "act-" + tc.id, Type: ActionUnitImport, Actor: tc.actor, Province: "VN", TargetKind: "unit",
				Target: tc.id, At: timestamppb.Now(), Payload: p}
			_, applied, err := acts.Apply(ctx, a)
			if err != nil || applied == tc.refuse {
				t.Fatalf("applied %v, %v; want applied %v", applied, err, !tc.refuse)
			}
			result, reason := actionOutcome(t, db.Pool, a.GetId())
			var rec natsx.UnitImport
			if e, err := kv.Get(ctx, tc.id); err != nil || json.Unmarshal(e.Value(), &rec) != nil {
				t.Fatalf("progress of %s: %v", tc.id, err)
			}
			var communes int
			if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM admin_unit WHERE code IN ('99901','99902')`).Scan(&communes); err != nil {
				t.Fatal(err)
			}
			if tc.refuse {
				if result != "refused" || !strings.Contains(reason, "may not import maps") || rec.State != natsx.ImportFailed || rec.Error != reason || communes != 0 {
					t.Errorf("recorded %s %q, import %s %q, %d communes; want refused, failed with the reason, none imported", result, reason, rec.State, rec.Error, communes)
				}
				return
			}
			if result != "applied" || rec.State != natsx.ImportDone || communes != 2 {
				t.Errorf("recorded %s %q, import %s, %d communes; want applied, done, 2", result, reason, rec.State, communes)
			}
		})
	}
}

// TestUnitImportActionAfterDirectImport: a unit.import applied while a
// direct import (iochub units import, schema.ImportUnits) of the same map
// has not committed waits for it, then finds the map imported (done, the
// units unchanged), where it used to fail on admin_unit's unique key
// (23505) and be refused for good.
func TestUnitImportActionAfterDirectImport(t *testing.T) {
	ctx := context.Background()
	db, acts, obs, kv := importActions(t)
	if _, err := obs.PutString(ctx, "imp-1", twoCommunes); err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	// The direct import, as schema.ImportUnits runs it, held open.
	commit := testenv.HoldUnitsImport(t, db.Pool, twoCommunes, schema.ImportOptions{ValidFrom: from})
	p, _ := json.Marshal(UnitImportPayload{Object: "imp-1", ValidFrom: from})
	a := &iocv1.Action{Id: "act-imp-1", Type: ActionUnitImport, Actor: "admin", Province: "VN", TargetKind: "unit",
		Target: "imp-1", At: timestamppb.Now(), Payload: p}
	// The action waits for the direct import's transaction.
	err := testenv.WhileHeld(t, db.Pool, "the action", commit, func() error {
		_, applied, err := acts.Apply(ctx, a)
		if err == nil && !applied {
			var result, reason string
			err = db.Pool.QueryRow(ctx, `SELECT result, reason FROM action_done WHERE id = $1`, a.GetId()).Scan(&result, &reason)
			err = errors.Join(fmt.Errorf("not applied: %s %q", result, reason), err)
		}
		return err
	}, func(err error) string { return fmt.Sprint(err) })
	if err != nil {
		t.Fatalf("the action after the direct import: %v; want it applied", err)
	}
	var rec natsx.UnitImport
	if e, err := kv.Get(ctx, "imp-1"); err != nil || json.Unmarshal(e.Value(), &rec) != nil {
		t.Fatalf("progress of imp-1: %v", err)
	}
	if rec.State != natsx.ImportDone || rec.Read != 2 || rec.Written != 0 || rec.Unchanged != 2 {
		t.Errorf("record %+v; want done, 2 read, 0 written, 2 unchanged", rec)
	}
	var versions int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM admin_unit WHERE code IN ('99901','99902')`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if versions != 2 {
		t.Errorf("%d versions of the imported communes; want 2", versions)
	}
}

// importActions is the set-up of the unit.import tests: a database with
// units, NATS, the actions with unit.import registered, and the buckets of
// the uploaded files and of the imports' progress.
func importActions(t *testing.T) (*testenv.DBEnv, *Actions, jetstream.ObjectStore, jetstream.KeyValue) {
	t.Helper()
	db := testenv.PostGISWithUnits(t)
	n := testenv.NATS(t)
	ctx := context.Background()
	acts, err := NewActions(ActionsConfig{}, n.JS, db.Pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	acts.RegisterAction(ActionUnitImport, UnitImportAction(n.JS, nil))
	obs, err := n.JS.ObjectStore(ctx, natsx.BucketUnitImportFiles)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := n.JS.KeyValue(ctx, natsx.BucketUnitImports)
	if err != nil {
		t.Fatal(err)
	}
	return db, acts, obs, kv
}
