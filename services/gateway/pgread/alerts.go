package pgread

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// alertColumns are the columns AlertRow reads, in order. The area is RFC 7946
// GeoJSON made by PostGIS (outer rings counter-clockwise, 7 decimals; a
// MultiPolygon or MultiPoint of one part as that part) through
// iochub_geojson (migration 00008), which gives NULL instead of failing the
// whole query for an area PostGIS cannot write, such as a nested
// GeometryCollection that an earlier version stored.
const alertColumns = `a.id, a.source_id, a.state, a.msg_type, a.province, a.unit_code, a.received_at, a.updated_at, a.body,
       ARRAY(SELECT u.unit_code FROM alert_unit u WHERE u.alert_id = a.id ORDER BY 1),
       coalesce(iochub_geojson(a.area, 7), ''), a.area IS NOT NULL, coalesce(a.acked_by, ''), a.acked_at,
       CASE WHEN a.expires_default THEN a.expires END`

// SQLAlert selects one alert by its id ($1, "<source_id>/<identifier>").
const SQLAlert = `SELECT ` + alertColumns + `
FROM alert a
WHERE a.id = $1`

// SQLAlerts lists alerts, newest sent first: of province $1 (placed there or
// touching it; ” means every province), in force only when $2 (state active,
// an Alert or Update, not past its expiry: a Cancel, Ack or Error message is
// never in force), meeting the box $4..$7 (min lon, min lat, max lon, max lat)
// when $3, placed in or touching one of the units $9 when $9 is not NULL, at most $8.
const SQLAlerts = `SELECT ` + alertColumns + `
FROM alert a
WHERE ($1 = '' OR a.province = $1 OR EXISTS (SELECT 1 FROM alert_unit u WHERE u.alert_id = a.id AND u.unit_code = $1))
  AND (NOT $2::bool OR (a.state = 'active' AND a.msg_type IN ('Alert', 'Update') AND (a.expires IS NULL OR a.expires > now())))
  AND (NOT $3::bool OR a.area && ST_MakeEnvelope($4::float8, $5::float8, $6::float8, $7::float8, 4326))
  AND ($9::text[] IS NULL OR a.unit_code = ANY($9::text[])
       OR EXISTS (SELECT 1 FROM alert_unit u WHERE u.alert_id = a.id AND u.unit_code = ANY($9::text[])))
ORDER BY a.sent DESC, a.id
LIMIT $8`

// AlertRow is an alert as stored, with its lifecycle state and the units it touches.
type AlertRow struct {
	ID         string // <source_id>/<identifier>
	SourceID   string
	State      string // active, cancelled, expired or superseded
	MsgType    string
	Province   string
	Unit       string
	ReceivedAt time.Time
	UpdatedAt  time.Time
	// Body is the ioc.v1.Alert as received (protobuf).
	Body []byte
	// Units are the codes of the current units the alert's area touches.
	Units []string
	// Geometry is the alert's area as GeoJSON; nil when it has none (geocodes
	// only) or when BadGeometry.
	Geometry []byte
	// BadGeometry is true when the alert has an area that PostGIS could not
	// write as GeoJSON: the row is still listed, without geometry.
	BadGeometry bool
	// AckedBy is who acknowledged the alert (empty when nobody has), at AckedAt.
	AckedBy string
	AckedAt *time.Time
	// DefaultExpires is the expiry the hub gave the alert, its message naming
	// none (the aggregator's --alert-default-ttl, migration 00041); nil when
	// the message names its own or the hub gives none.
	DefaultExpires *time.Time
}

// AlertsQuery filters Alerts.
type AlertsQuery struct {
	// Province is a province code; "" means every province.
	Province string
	// Active keeps only alerts in force.
	Active bool
	// BBox is min lon, min lat, max lon, max lat; nil means anywhere.
	BBox *[4]float64
	// Limit is the most rows returned; it must be > 0.
	Limit int
	// Units, when not nil, keeps only alerts placed in or touching one of
	// these unit codes (a principal scoped to units).
	Units []string
}

func scanAlert(row pgx.Row) (AlertRow, error) {
	var a AlertRow
	var g string
	var hasArea bool
	if err := row.Scan(&a.ID, &a.SourceID, &a.State, &a.MsgType, &a.Province, &a.Unit, &a.ReceivedAt, &a.UpdatedAt, &a.Body, &a.Units, &g, &hasArea, &a.AckedBy, &a.AckedAt, &a.DefaultExpires); err != nil {
		return AlertRow{}, err
	}
	if g != "" {
		a.Geometry = []byte(g)
	}
	a.BadGeometry = hasArea && g == ""
	return a, nil
}

// Alert returns the alert with id; found is false when there is none.
func (s *Store) Alert(ctx context.Context, id string) (a AlertRow, found bool, err error) {
	a, err = scanAlert(s.pool.QueryRow(ctx, SQLAlert, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return AlertRow{}, false, nil
	}
	if err != nil {
		return AlertRow{}, false, fmt.Errorf("querying alert %s: %w", id, err)
	}
	return a, true, nil
}

// Alerts lists the alerts q selects.
func (s *Store) Alerts(ctx context.Context, q AlertsQuery) ([]AlertRow, error) {
	var box [4]float64
	if q.BBox != nil {
		box = *q.BBox
	}
	rows, err := s.pool.Query(ctx, SQLAlerts, q.Province, q.Active, q.BBox != nil, box[0], box[1], box[2], box[3], q.Limit, q.Units)
	if err != nil {
		return nil, fmt.Errorf("querying alerts of province %q: %w", q.Province, err)
	}
	defer rows.Close()
	var out []AlertRow
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("reading alerts of province %q: %w", q.Province, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading alerts of province %q: %w", q.Province, err)
	}
	return out, nil
}

// SQLAlertAck is the place of alert $1 and its acknowledgement, if any.
const SQLAlertAck = `SELECT a.province, a.unit_code,
    ARRAY(SELECT u.unit_code FROM alert_unit u WHERE u.alert_id = a.id ORDER BY 1),
    coalesce(a.acked_by, ''), a.acked_at
FROM alert a
WHERE a.id = $1`

// AlertAckRow is where an alert is and who acknowledged it when.
type AlertAckRow struct {
	Province, Unit string
	Units          []string
	AckedBy        string // empty when nobody has
	AckedAt        *time.Time
}

// AlertAck returns the place and acknowledgement of alert id; found is
// false when there is none.
func (s *Store) AlertAck(ctx context.Context, id string) (a AlertAckRow, found bool, err error) {
	err = s.pool.QueryRow(ctx, SQLAlertAck, id).Scan(&a.Province, &a.Unit, &a.Units, &a.AckedBy, &a.AckedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return AlertAckRow{}, false, nil
	}
	if err != nil {
		return AlertAckRow{}, false, fmt.Errorf("reading the acknowledgement of alert %s: %w", id, err)
	}
	return a, true, nil
}
