package postgis_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

func TestWriteReports(t *testing.T) {
	ctx := context.Background()
	db := testenv.PostGIS(t)
	store := postgis.NewStore(db.Pool)
	at := time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC)
	rows := []postgis.ReportRow{
		{SourceID: "s", EventID: "a", Province: "01", UnitCode: "00070", Category: "flooding", Lon: 105.85, Lat: 21.02,
			Text: "ngập", Media: []string{"https://x.vn/1.jpg", "https://x.vn/2.jpg"}, ContactEnc: []byte{9, 9}, ReportedAt: at, ReceivedAt: at},
		{SourceID: "s", EventID: "b", Province: "01", UnitCode: "00070", Category: "unlisted", Lon: 105.8, Lat: 21, ReportedAt: at, ReceivedAt: at},
	}
	batch, err := store.WriteBatch(ctx, postgis.Batch{Reports: rows})
	res := batch.Reports
	if err != nil {
		t.Fatal(err)
	}
	if res.New != 2 || res.Duplicates != 0 || len(res.States) != 2 {
		t.Fatalf("first write = %+v; want 2 new states", res)
	}
	byID := map[string]postgis.ReportState{}
	for _, s := range res.States {
		byID[s.ID] = s
	}
	a, b := byID["s/a"], byID["s/b"]
	if want := at.Add(4 * time.Hour); !a.Deadline.Equal(want) {
		t.Errorf("flooding deadline = %v; want %v (4 h SLA)", a.Deadline, want)
	}
	if want := at.Add(120 * time.Hour); !b.Deadline.Equal(want) {
		t.Errorf("unlisted category deadline = %v; want %v (the SLA of other)", b.Deadline, want)
	}
	if a.Status != "received" || a.Lon != 105.85 || a.Lat != 21.02 || len(a.Media) != 2 || b.Media == nil {
		t.Errorf("state a = %+v, b media %v", a, b.Media)
	}
	// An operator assigns a; the source resends both: nothing changes.
	if err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		_, err := postgis.SetReportStatus(ctx, tx, "s/a", "assigned", "team")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	rows[0].Text = "changed"
	batch, err = store.WriteBatch(ctx, postgis.Batch{Reports: rows})
	res = batch.Reports
	if err != nil {
		t.Fatal(err)
	}
	if res.New != 0 || res.Duplicates != 2 || len(res.States) != 2 {
		t.Fatalf("resend = %+v; want 2 duplicates with their states", res)
	}
	for _, s := range res.States {
		if s.ID == "s/a" && (s.Status != "assigned" || s.Assignee != "team" || s.Text != "ngập") {
			t.Errorf("resent a = %+v; want it as stored (assigned to team, first text)", s)
		}
	}
	var contact []byte
	var events int
	if err := db.Pool.QueryRow(ctx, `SELECT contact_enc, (SELECT count(*) FROM report_event WHERE report_id = 's/a') FROM report WHERE id = 's/a'`).Scan(&contact, &events); err != nil {
		t.Fatal(err)
	}
	if string(contact) != "\x09\x09" || events != 1 {
		t.Errorf("contact %x, %d events; want 0909 and one received event", contact, events)
	}
}
