package pgread

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ReportView is a citizen report as operators read it: never its contact.
type ReportView struct {
	ID          string            `json:"id"`
	Province    string            `json:"province"`
	Unit        string            `json:"unit"`
	Category    string            `json:"category"`
	Location    [2]float64        `json:"location"`
	Text        string            `json:"text"`
	Media       []string          `json:"media"`
	Status      string            `json:"status"`
	Assignee    string            `json:"assignee,omitempty"`
	ReportedAt  time.Time         `json:"reportedAt"`
	SLADeadline time.Time         `json:"slaDeadline"`
	Overdue     bool              `json:"overdue"`
	UpdatedAt   time.Time         `json:"updatedAt"`
	History     []ReportEventView `json:"history"`
}

// ReportEventView is one entry of a report's history.
type ReportEventView struct {
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"`
	From     string    `json:"from,omitempty"`
	To       string    `json:"to,omitempty"`
	Assignee string    `json:"assignee,omitempty"`
	Actor    string    `json:"actor,omitempty"`
	Note     string    `json:"note,omitempty"`
	Reason   string    `json:"reason,omitempty"`
}

// SQLReportPlace is the province and unit of report $1.
const SQLReportPlace = `SELECT province, coalesce(unit_code, '') FROM report WHERE id = $1`

// SQLReport reads report $1; contact_enc is deliberately not selected.
const SQLReport = `SELECT id, province, unit_code, category, ST_X(point), ST_Y(point), text, media, status, assignee,
    reported_at, sla_deadline, overdue, updated_at FROM report WHERE id = $1`

// SQLReportHistory lists the history of report $1, oldest first.
const SQLReportHistory = `SELECT at, kind, from_status, to_status, assignee, actor, note, reason
FROM report_event WHERE report_id = $1 ORDER BY id`

// ReportPlace returns the province and unit of report id; found is false when there is none.
func (s *Store) ReportPlace(ctx context.Context, id string) (province, unit string, found bool, err error) {
	err = s.pool.QueryRow(ctx, SQLReportPlace, id).Scan(&province, &unit)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("reading the place of report %s: %w", id, err)
	}
	return province, unit, true, nil
}

// Report returns report id with its history; found is false when there is none.
func (s *Store) Report(ctx context.Context, id string) (v ReportView, found bool, err error) {
	err = s.pool.QueryRow(ctx, SQLReport, id).Scan(&v.ID, &v.Province, &v.Unit, &v.Category, &v.Location[0], &v.Location[1],
		&v.Text, &v.Media, &v.Status, &v.Assignee, &v.ReportedAt, &v.SLADeadline, &v.Overdue, &v.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, false, nil
	}
	if err != nil {
		return v, false, fmt.Errorf("reading report %s: %w", id, err)
	}
	rows, err := s.pool.Query(ctx, SQLReportHistory, id)
	if err != nil {
		return v, false, fmt.Errorf("reading the history of report %s: %w", id, err)
	}
	v.History, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ReportEventView, error) {
		var e ReportEventView
		err := row.Scan(&e.At, &e.Kind, &e.From, &e.To, &e.Assignee, &e.Actor, &e.Note, &e.Reason)
		return e, err
	})
	if err != nil {
		return v, false, fmt.Errorf("reading the history of report %s: %w", id, err)
	}
	return v, true, nil
}
