package postgis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ReportRow is one citizen field report as received. ContactEnc is the
// reporter's contact sealed with the hub key (nil when none was given); it is
// stored and never read back by the aggregator.
type ReportRow struct {
	SourceID   string
	EventID    string // the report's id at its source
	Province   string
	UnitCode   string
	Category   string
	Lon, Lat   float64
	Text       string
	Media      []string
	ContactEnc []byte
	ReportedAt time.Time
	ReceivedAt time.Time
}

// ID is the report's key: <source_id>/<event id>.
func (r ReportRow) ID() string { return r.SourceID + "/" + r.EventID }

// ReportState is a stored report without its contact: what STATE carries.
type ReportState struct {
	ID         string
	SourceID   string
	EventID    string
	Province   string
	UnitCode   string
	Category   string
	Lon, Lat   float64
	Text       string
	Media      []string
	Status     string
	Assignee   string
	ReportedAt time.Time
	ReceivedAt time.Time
	Deadline   time.Time
	Overdue    bool
	// AlertState is the overdue alert's state: "" none, raised or cancelled.
	AlertState string
	UpdatedAt  time.Time
}

// ReportResult is what a batch did with its reports.
type ReportResult struct {
	New        int
	Duplicates int
	// States are the reports of the batch as stored (a resent report keeps
	// its stored status), to publish.
	States []ReportState
	// Inserted are the positions in the batch of the reports stored for the
	// first time (the first of a report given twice), in no particular order:
	// the reports opened, for the roll-ups.
	Inserted []int
}

// ReportEvent is one entry of a report's history.
type ReportEvent struct {
	ReportID   string
	Kind       string // received, status, refused, overdue
	FromStatus string
	ToStatus   string
	Assignee   string
	Actor      string
	ActionID   string
	Note       string
	Reason     string
}

// ActionRecord is an operator action as the aggregator handles it.
type ActionRecord struct {
	ID         string
	Type       string
	Actor      string
	Province   string
	TargetKind string
	Target     string
	At         time.Time
}

// ErrNotFound is returned when a row asked for does not exist.
var ErrNotFound = errors.New("not found")

// reportCols are the columns of a ReportState, in scanReport's order.
const reportCols = `id, source_id, event_id, province, unit_code, category, ST_X(point), ST_Y(point), text, media,
    status, assignee, reported_at, received_at, sla_deadline, overdue, alert_state, updated_at`

// sqlInsertReports stores the reports given as arrays ($1..$13), each with
// its deadline from its category's SLA (the SLA of "other" for a category
// not in report_category), records their reception, and returns every report
// of the input as stored with whether it is new. Resent reports are left as
// they are.
const sqlInsertReports = `WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[],
        $8::float8[], $9::text[], $10::text[], $11::bytea[], $12::timestamptz[], $13::timestamptz[])
    AS t(id, source_id, event_id, province, unit_code, category, lon, lat, text, media, contact_enc, reported_at, received_at)
), ins AS (
    INSERT INTO report (id, source_id, event_id, province, unit_code, category, point, text, media, contact_enc,
        reported_at, received_at, sla_deadline)
    SELECT i.id, i.source_id, i.event_id, i.province, i.unit_code, i.category, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326),
        i.text, ARRAY(SELECT jsonb_array_elements_text(i.media::jsonb)), i.contact_enc, i.reported_at, i.received_at,
        i.reported_at + COALESCE(c.sla, o.sla, interval '72 hours')
    FROM input i
    LEFT JOIN report_category c ON c.code = i.category
    LEFT JOIN report_category o ON o.code = 'other'
    ON CONFLICT DO NOTHING
    RETURNING ` + reportCols + `
), ev AS (
    INSERT INTO report_event (report_id, kind, to_status) SELECT id, 'received', status FROM ins
)
SELECT *, true FROM ins
UNION ALL
SELECT ` + reportCols + `, false FROM report WHERE id IN (SELECT id FROM input) AND id NOT IN (SELECT id FROM ins)`

// reportStore stores citizen reports with their workflow, statement by
// statement after the other kinds' round trip. Its contribute hook gives the
// roll-ups the reports opened (stored for the first time) at their
// reported_at: in n (subject to the lateness) and in open_n (not).
var reportStore = kindStore{
	rows: func(b Batch) int { return len(b.Reports) },
	write: func(ctx context.Context, tx pgx.Tx, b Batch, res *Result) error {
		var err error
		res.Reports, err = writeReports(ctx, tx, b.Reports)
		return err
	},
	units: func(b Batch, out []string) []string {
		for i := range b.Reports {
			out = append(out, b.Reports[i].UnitCode)
		}
		return out
	},
	inserted: func(res *Result) *[]int { return &res.Reports.Inserted },
	contribute: func(b Batch, res *Result, emit func(contribution)) {
		for _, i := range res.Reports.Inserted {
			r := &b.Reports[i]
			emit(contribution{layer: "report", unit: r.UnitCode, province: r.Province, observed: r.ReportedAt, received: r.ReceivedAt})
			// The same report opened, as a change of the gauge reports
			// open: never late (store_rollup_report.go).
			emit(openedChange(r))
		}
	},
}

// writeReports stores a batch's reports in tx, in one round trip.

func writeReports(ctx context.Context, tx pgx.Tx, rows []ReportRow) (ReportResult, error) {
	var res ReportResult
	n := len(rows)
	var (
		ids, srcs, evs, provs, units, cats, texts, media = make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		lons, lats = make([]float64, n), make([]float64, n)
		contacts   = make([][]byte, n)
		rep, recv  = make([]time.Time, n), make([]time.Time, n)
	)
	first := make(map[string]int, n) // by id: the first position of the report in rows
	for i, r := range rows {
		if _, ok := first[r.ID()]; !ok {
			first[r.ID()] = i
		}
		m := r.Media
		if m == nil {
			m = []string{}
		}
		b, err := json.Marshal(m)
		if err != nil {
			return res, fmt.Errorf("encoding media of report %s: %w", r.ID(), err)
		}
		ids[i], srcs[i], evs[i], provs[i], units[i], cats[i], texts[i], media[i] = r.ID(), r.SourceID, r.EventID, r.Province, r.UnitCode, r.Category, r.Text, string(b)
		lons[i], lats[i], contacts[i], rep[i], recv[i] = r.Lon, r.Lat, r.ContactEnc, r.ReportedAt, r.ReceivedAt
	}
	q, err := tx.Query(ctx, sqlInsertReports, ids, srcs, evs, provs, units, cats, lons, lats, texts, media, contacts, rep, recv)
	if err != nil {
		return res, fmt.Errorf("inserting %d reports: %w", n, err)
	}
	defer q.Close()
	for q.Next() {
		var st ReportState
		var inserted bool
		if err := q.Scan(append(reportDest(&st), &inserted)...); err != nil {
			return res, fmt.Errorf("reading stored reports: %w", err)
		}
		if inserted {
			res.New++
			res.Inserted = append(res.Inserted, first[st.ID])
		}
		res.States = append(res.States, st)
	}
	if err := q.Err(); err != nil {
		return res, fmt.Errorf("inserting %d reports: %w", n, err)
	}
	res.Duplicates = n - res.New
	return res, nil
}

func reportDest(st *ReportState) []any {
	return []any{&st.ID, &st.SourceID, &st.EventID, &st.Province, &st.UnitCode, &st.Category, &st.Lon, &st.Lat, &st.Text,
		&st.Media, &st.Status, &st.Assignee, &st.ReportedAt, &st.ReceivedAt, &st.Deadline, &st.Overdue, &st.AlertState, &st.UpdatedAt}
}

func collectReports(rows pgx.Rows) ([]ReportState, error) {
	defer rows.Close()
	var out []ReportState
	for rows.Next() {
		var st ReportState
		if err := rows.Scan(reportDest(&st)...); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

const sqlReportForUpdate = `SELECT ` + reportCols + ` FROM report WHERE id = $1 FOR UPDATE`

// ReportForUpdate reads report id and locks it until tx ends; ErrNotFound when there is none.
func ReportForUpdate(ctx context.Context, tx pgx.Tx, id string) (ReportState, error) {
	var st ReportState
	err := tx.QueryRow(ctx, sqlReportForUpdate, id).Scan(reportDest(&st)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, fmt.Errorf("report %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return st, fmt.Errorf("reading report %s: %w", id, err)
	}
	return st, nil
}

const sqlSetReportStatus = `UPDATE report SET status = $2, assignee = $3, updated_at = now()
WHERE id = $1 RETURNING ` + reportCols

// SetReportStatus changes a report's status and assignee in tx and returns it.
func SetReportStatus(ctx context.Context, tx pgx.Tx, id, status, assignee string) (ReportState, error) {
	var st ReportState
	if err := tx.QueryRow(ctx, sqlSetReportStatus, id, status, assignee).Scan(reportDest(&st)...); err != nil {
		return st, fmt.Errorf("setting status of report %s: %w", id, err)
	}
	return st, nil
}

const sqlAddReportEvent = `INSERT INTO report_event (report_id, kind, from_status, to_status, assignee, actor, action_id, note, reason)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

// AddReportEvent appends to a report's history in tx.
func AddReportEvent(ctx context.Context, tx pgx.Tx, e ReportEvent) error {
	if _, err := tx.Exec(ctx, sqlAddReportEvent, e.ReportID, e.Kind, e.FromStatus, e.ToStatus, e.Assignee, e.Actor,
		e.ActionID, e.Note, e.Reason); err != nil {
		return fmt.Errorf("recording %s event of report %s: %w", e.Kind, e.ReportID, err)
	}
	return nil
}

const sqlClaimAction = `INSERT INTO action_done (id, type, actor, province, target_kind, target, at, result)
VALUES ($1, $2, $3, $4, $5, $6, $7, 'applied') ON CONFLICT (id) DO NOTHING`

// ClaimAction records in tx that action a is being handled; false when it
// was handled before (a redelivery or a retried request).
func ClaimAction(ctx context.Context, tx pgx.Tx, a ActionRecord) (bool, error) {
	var at *time.Time
	if !a.At.IsZero() {
		at = &a.At
	}
	tag, err := tx.Exec(ctx, sqlClaimAction, a.ID, a.Type, a.Actor, a.Province, a.TargetKind, a.Target, at)
	if err != nil {
		return false, fmt.Errorf("recording action %s: %w", a.ID, err)
	}
	return tag.RowsAffected() == 1, nil
}

const sqlRefuseAction = `UPDATE action_done SET result = 'refused', reason = $2 WHERE id = $1`

// RefuseAction records in tx that action id, claimed in tx, was refused.
func RefuseAction(ctx context.Context, tx pgx.Tx, id, reason string) error {
	if _, err := tx.Exec(ctx, sqlRefuseAction, id, reason); err != nil {
		return fmt.Errorf("recording refusal of action %s: %w", id, err)
	}
	return nil
}

const sqlAudit = `INSERT INTO audit_log (actor, action, target, detail) VALUES ($1, $2, $3, $4)`

// Audit writes one audit_log row in tx; detail is stored as JSON.
func Audit(ctx context.Context, tx pgx.Tx, actor, action, target string, detail any) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("encoding audit detail of %s: %w", action, err)
	}
	if _, err := tx.Exec(ctx, sqlAudit, actor, action, target, string(b)); err != nil {
		return fmt.Errorf("writing audit row of %s on %s: %w", action, target, err)
	}
	return nil
}

// sqlDueReports lists open reports not yet overdue whose deadline is at or
// before $3, in province $1 (empty: all), at most $2.
const sqlDueReports = `SELECT ` + reportCols + ` FROM report
WHERE NOT overdue AND status NOT IN ('resolved', 'rejected') AND sla_deadline <= $3 AND ($1 = '' OR province = $1)
ORDER BY sla_deadline LIMIT $2`

// DueReports lists up to limit open reports whose deadline has passed at now
// and that are not marked overdue yet, as they will be once marked.
func (s *Store) DueReports(ctx context.Context, province string, now time.Time, limit int) ([]ReportState, error) {
	rows, err := s.pool.Query(ctx, sqlDueReports, province, limit, now)
	if err != nil {
		return nil, fmt.Errorf("listing overdue reports: %w", err)
	}
	out, err := collectReports(rows)
	if err != nil {
		return nil, fmt.Errorf("listing overdue reports: %w", err)
	}
	for i := range out {
		out[i].Overdue, out[i].AlertState, out[i].UpdatedAt = true, "raised", now
	}
	return out, nil
}

// sqlMarkOverdue marks the reports $1 overdue at $2 (those not overdue yet
// and still open), records it, and returns the province, unit and SLA
// deadline of each report it marked.
const sqlMarkOverdue = `WITH up AS (
    UPDATE report SET overdue = true, alert_state = 'raised', updated_at = $2
    WHERE id = ANY($1) AND NOT overdue AND status NOT IN ('resolved', 'rejected')
    RETURNING id, status, sla_deadline, province, unit_code
), ev AS (
    INSERT INTO report_event (report_id, kind, from_status, to_status, actor, reason)
    SELECT id, 'overdue', status, status, 'iochub', 'SLA deadline ' || sla_deadline || ' passed' FROM up
), au AS (
    INSERT INTO audit_log (actor, action, target, detail)
    SELECT 'iochub', 'report.overdue', 'report:' || id, jsonb_build_object('slaDeadline', sla_deadline, 'status', status) FROM up
)
SELECT province, unit_code, sla_deadline FROM up`

// sqlClosedAlerted lists reports resolved or rejected whose overdue alert is still raised.
const sqlClosedAlerted = `SELECT ` + reportCols + ` FROM report
WHERE alert_state = 'raised' AND status IN ('resolved', 'rejected') AND ($1 = '' OR province = $1)
ORDER BY updated_at LIMIT $2`

// ClosedAlertedReports lists up to limit reports that were closed while
// their overdue alert is raised: the alert is to be cancelled.
func (s *Store) ClosedAlertedReports(ctx context.Context, province string, limit int) ([]ReportState, error) {
	rows, err := s.pool.Query(ctx, sqlClosedAlerted, province, limit)
	if err != nil {
		return nil, fmt.Errorf("listing closed reports with alerts: %w", err)
	}
	out, err := collectReports(rows)
	if err != nil {
		return nil, fmt.Errorf("listing closed reports with alerts: %w", err)
	}
	return out, nil
}

const sqlMarkAlertCancelled = `UPDATE report SET alert_state = 'cancelled' WHERE id = ANY($1) AND alert_state = 'raised'`

// MarkReportAlertsCancelled records that the overdue alerts of reports ids were cancelled.
func (s *Store) MarkReportAlertsCancelled(ctx context.Context, ids []string) error {
	if _, err := s.pool.Exec(ctx, sqlMarkAlertCancelled, ids); err != nil {
		return fmt.Errorf("marking the alerts of %d reports cancelled: %w", len(ids), err)
	}
	return nil
}

// Pool is the store's pool, for the aggregator's transactions of operator actions.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }
