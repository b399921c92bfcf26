package postgis

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/internal/testenv"
)

// TestMemberWritesPlannedGeneric: the update and the split of member rows
// are queued between sqlGenericPlans and sqlAutoPlans (memberWrites.queue),
// and so is the read of the rows a batch does not hold (queueMemberLock).
func TestMemberWritesPlannedGeneric(t *testing.T) {
	day := time.Date(2026, 11, 20, 17, 0, 0, 0, time.UTC)
	var w memberWrites
	r := emptyMemberRow()
	r.version = 1
	w.split(entityDay{"air", "st1", day.Unix()}, r, map[memberKey]*memberRow{})
	w.uLayers, w.uEntities, w.uUnits, w.uDays = []string{"air"}, []string{"st2"}, []string{""}, []time.Time{day}
	w.uHeads, w.uMinutes, w.uLos, w.uUpgrades, w.uVersions = [][]byte{r.head}, [][]byte{nil}, []int32{0}, []int32{0}, []int64{1}
	var pb pgx.Batch
	var found int
	w.queue(&pb, &found)
	want := []string{sqlGenericPlans, sqlSplitMemberDays, sqlUpdateMemberDays, sqlAutoPlans}
	if got := queuedSQL(&pb); !slices.Equal(got, want) {
		t.Errorf("queued %v; want generic plans, split, update, auto plans", names(got))
	}

	// Rows to create only: no plan to set.
	var c memberWrites
	c.create(memberKey{"air", "st3", day.Unix(), ""}, emptyMemberRow())
	pb = pgx.Batch{}
	c.queue(&pb, &found)
	if got := queuedSQL(&pb); !slices.Equal(got, []string{sqlCreateMemberDays}) {
		t.Errorf("queued %v; want the create alone", names(got))
	}

	b := Batch{Air: []AirRow{{StationID: "st1", ObservedAt: day.Add(time.Hour), ReceivedAt: day.Add(time.Hour), UnitCode: "W1"}}}
	for _, tc := range []struct {
		cache *memberCache
		read  string
	}{{&memberCache{bound: 10}, sqlReadEntityDays}, {nil, sqlLockEntityDays}} {
		pb = pgx.Batch{}
		queueMemberLock(&pb, b, tc.cache)
		if got := queuedSQL(&pb); !slices.Equal(got, []string{sqlGenericPlans, tc.read, sqlAutoPlans}) {
			t.Errorf("queued %v; want generic plans, %s, auto plans", names(got), names([]string{tc.read}))
		}
	}
}

// TestMemberUpdateByKey: with the generic plan the store asks for, the
// update of a batch's 500 member rows looks each up by its primary key in a
// table of 40,000 rows (20 days of 2,000 stations), where the plan made for
// the arrays given hashes the whole table (logged, not asserted: that is
// the planner's choice, shown by EXPLAIN in docs/benchmarks.md).
func TestMemberUpdateByKey(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO rollup_member_day (layer, entity, day, unit_code, grades, version, units)
		SELECT 'air', 'st' || lpad(i::text, 4, '0'), d, '', decode(repeat('00', 2048), 'hex'), 1, '{W1,P1,VN}'
		FROM generate_series(1, 2000) i, generate_series(timestamptz '2026-11-01 17:00Z', timestamptz '2026-11-20 17:00Z', interval '1 day') d`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE rollup_member_day`); err != nil {
		t.Fatal(err)
	}
	text := func(xs []string) string { return "'{" + strings.Join(xs, ",") + "}'" }
	rep := func(x string) []string {
		out := make([]string, 500)
		for i := range out {
			out[i] = x
		}
		return out
	}
	entities := make([]string, 500)
	for i := range entities {
		entities[i] = fmt.Sprintf("st%04d", i+1)
	}
	args := strings.Join([]string{text(rep("air")), text(entities), text(rep("2026-11-20 17:00Z")), text(rep(`""`)),
		text(rep(`"\\x` + strings.Repeat("03", headSlots) + `"`)), text(rep("100")), text(rep(`"\\x03"`)), text(rep("0")), text(rep("1"))}, ", ")
	plan := func(mode string) string {
		t.Helper()
		var out []string
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, mode); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `PREPARE member_update (text[], text[], timestamptz[], text[], bytea[], integer[], bytea[], integer[], bigint[]) AS `+sqlUpdateMemberDays); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `EXPLAIN EXECUTE member_update (`+args+`)`)
			if err != nil {
				return err
			}
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					return err
				}
				out = append(out, line)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `DEALLOCATE member_update`)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, "\n")
	}
	generic := plan(sqlGenericPlans)
	if strings.Contains(generic, "Seq Scan on rollup_member_day") || !strings.Contains(generic, "rollup_member_day_pkey") {
		t.Errorf("generic plan of the member update does not look rows up by key:\n%s", generic)
	}
	t.Logf("plan for the arrays given:\n%s", plan(sqlAutoPlans))
}

func queuedSQL(pb *pgx.Batch) []string {
	var out []string
	for _, q := range pb.QueuedQueries {
		out = append(out, q.SQL)
	}
	return out
}

// names shortens statements for a message: their first words.
func names(qs []string) []string {
	out := make([]string, len(qs))
	for i, q := range qs {
		f := strings.Fields(q)
		out[i] = strings.Join(f[:min(len(f), 4)], " ")
	}
	return out
}
