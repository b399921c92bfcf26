package postgis_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iochub/iochub/internal/alertrule"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
	"github.com/iochub/iochub/services/aggregator/rules"
)

func mustRule(t *testing.T, id, body string) alertrule.Rule {
	t.Helper()
	r, err := alertrule.Parse(id, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func inTx(t *testing.T, pool *pgxpool.Pool, f func(tx pgx.Tx) error) {
	t.Helper()
	if err := pgx.BeginFunc(context.Background(), pool, f); err != nil {
		t.Fatal(err)
	}
}

func TestRulesStore(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	s := postgis.NewStore(db.Pool)
	v0, err := s.RulesVersion(ctx, "01")
	if err != nil {
		t.Fatal(err)
	}
	r1 := mustRule(t, "r1", `{"province":"01","kind":"congestion","params":{"maxSpeed":15,"segments":["s1"]},"for":"10m","severity":"Severe"}`)
	inTx(t, db.Pool, func(tx pgx.Tx) error {
		before, after, err := postgis.PutRule(ctx, tx, r1, "op-a")
		if err != nil {
			return err
		}
		if before != nil || after.Version != 1 || after.UpdatedBy != "op-a" || !after.Same(r1) || after.UpdatedAt.IsZero() {
			t.Errorf("new rule: got before %v, after %+v; want nil and version 1 by op-a", before, after)
		}
		return nil
	})
	v1, _ := s.RulesVersion(ctx, "01")
	if v1 == v0 {
		t.Errorf("version did not change on insert: %s", v1)
	}
	// The same rule again is not a change.
	inTx(t, db.Pool, func(tx pgx.Tx) error {
		_, after, err := postgis.PutRule(ctx, tx, r1, "op-b")
		if err == nil && (after.Version != 1 || after.UpdatedBy != "op-a") {
			t.Errorf("unchanged rule: got version %d by %s; want 1 by op-a", after.Version, after.UpdatedBy)
		}
		return err
	})
	r1b := mustRule(t, "r1", `{"province":"01","kind":"congestion","params":{"maxSpeed":20},"for":"1h","severity":"Minor","enabled":false}`)
	inTx(t, db.Pool, func(tx pgx.Tx) error {
		before, after, err := postgis.PutRule(ctx, tx, r1b, "op-b")
		if err != nil {
			return err
		}
		if before == nil || !before.Same(r1) || after.Version != 2 || !after.Same(r1b) || after.UpdatedBy != "op-b" {
			t.Errorf("changed rule: got before %+v, after %+v", before, after)
		}
		return nil
	})
	v2, _ := s.RulesVersion(ctx, "01")
	if v2 == v1 {
		t.Errorf("version did not change on update: %s", v2)
	}
	r2 := mustRule(t, "r2", `{"province":"79","kind":"water_level","params":{"minAlarm":3},"severity":"Extreme"}`)
	inTx(t, db.Pool, func(tx pgx.Tx) error { _, _, err := postgis.PutRule(ctx, tx, r2, "op"); return err })
	if v, _ := s.RulesVersion(ctx, "01"); v != v2 {
		t.Errorf("another province's rule changed the version of 01: %s; want %s", v, v2)
	}
	got, err := s.Rules(ctx, "01")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Same(r1b) || got[0].For != time.Hour {
		t.Errorf("rules of 01: got %+v; want r1 changed", got)
	}
	all, err := s.Rules(ctx, "")
	if err != nil || len(all) != 2 || all[0].ID != "r1" || all[1].ID != "r2" || !all[1].Same(r2) {
		t.Errorf("every rule: got %+v, %v", all, err)
	}
	inTx(t, db.Pool, func(tx pgx.Tx) error {
		gone, err := postgis.DeleteRule(ctx, tx, "r1")
		if err != nil {
			return err
		}
		if gone == nil || !gone.Same(r1b) || gone.Version != 2 {
			t.Errorf("deleted: got %+v; want r1 version 2", gone)
		}
		none, err := postgis.DeleteRule(ctx, tx, "r1")
		if none != nil {
			t.Errorf("deleted twice: got %+v; want nil", none)
		}
		return err
	})
	if v, _ := s.RulesVersion(ctx, "01"); v == v2 {
		t.Errorf("version did not change on delete: %s", v)
	}
	// A row the rules package cannot read is an error naming it.
	if _, err := db.Pool.Exec(ctx, `UPDATE alert_rule SET params = '{"minAlarm":9}' WHERE id = 'r2'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rules(ctx, "79"); err == nil {
		t.Error("a rule with bad params in the table was read")
	}
	// The table refuses what no rule may be.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO alert_rule (id, province, kind, severity, for_duration) VALUES ('x', '01', 'congestion', 'Minor', '-1 minute')`); err == nil {
		t.Error("a negative duration was stored")
	}
}

func TestRaisedAlerts(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	s := postgis.NewStore(db.Pool)
	sent := time.Date(2026, 11, 21, 8, 10, 0, 0, time.UTC)
	raised := rules.Identifier("r1", "s1", sent.Add(-10*time.Minute))
	other := rules.Identifier("r1", "s2", sent.Add(-10*time.Minute))
	row := func(src, ident, msgType string, refs ...string) postgis.AlertRow {
		return postgis.AlertRow{SourceID: src, EventID: ident, Identifier: ident, Sender: src, Sent: sent, Status: "Actual",
			MsgType: msgType, Scope: "Public", Refs: refs, Province: "01", UnitCode: "00070", ReceivedAt: sent}
	}
	_, err := s.WriteBatch(ctx, postgis.Batch{Alerts: []postgis.AlertRow{
		row("rules", raised, "Alert"),
		row("rules", other, "Alert"),
		row("rules", rules.CancelID(other), "Cancel", rules.Reference(other, sent)),
		row("src-a", "rule:r9:s1:1", "Alert"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.RaisedAlerts(ctx, "01")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Identifier != raised || !got[0].Sent.Equal(sent) || got[0].Province != "01" || got[0].Unit != "00070" {
		t.Errorf("got %+v; want only %s", got, raised)
	}
	if got, _ := s.RaisedAlerts(ctx, "79"); len(got) != 0 {
		t.Errorf("province 79: got %+v; want none", got)
	}
}
