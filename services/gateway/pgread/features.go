package pgread

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/services/gateway/cql2"
)

// The OGC API – Features collections (docs/api.md "OGC API – Features").
// Each collection is a set of SQL constants: its FROM clause, the
// expressions of its feature id, keyset key, geometry, time and properties
// (a JSON object PostGIS and PostgreSQL build), the condition limiting it to
// a principal's provinces and units, and its queryables. FeatureQuery puts
// them together with the request's conditions, every value bound as a
// parameter.

// TimeMode says what datetime= selects in a collection.
type TimeMode int

// The time modes.
const (
	// TimeNone: the collection has no time; datetime= is refused.
	TimeNone TimeMode = iota
	// TimeColumn: datetime= selects rows whose Time lies in it.
	TimeColumn
	// TimeValidity: datetime= (an instant) selects the versions valid then;
	// without it, the current versions.
	TimeValidity
	// TimeWindow: datetime= selects roll-up windows: an instant the window
	// holding it (now without it), an interval the windows starting in it.
	TimeWindow
)

// Key is one column of a collection's keyset order.
type Key struct {
	// SQL is the key's expression; Cast its PostgreSQL type, for comparing
	// the text a cursor holds.
	SQL, Cast string
}

// Collection is one feature collection.
type Collection struct {
	ID, Title, Description string
	// GeometryType is the type of every geometry, for clients (GDAL) that
	// want one: Point, LineString, MultiPolygon or Geometry.
	GeometryType string
	// From is the FROM clause; Where a condition every row meets ("" none).
	From, Where string
	// FeatureID is the SQL of the feature id; ParseID turns an id back into
	// the key values (and, for roll-ups, the window), false for no such id.
	FeatureID string
	ParseID   func(id string) (keys []string, window string, ok bool)
	Keys      []Key
	// Geometry is the SQL of the geometry (SRID 4326).
	Geometry string
	// Time is the SQL datetime= compares; TimeMode how.
	Time     string
	TimeMode TimeMode
	// Properties is the SQL of the properties, a json value.
	Properties string
	// Scope is the condition limiting rows to a principal, with %[1]s the
	// bound provinces (text[]) and %[2]s the bound units (text[]).
	Scope string
	// Queryables are the properties filter= and ?name=value may use.
	Queryables map[string]cql2.Property
}

// Feature id codecs.
var b64 = base64.RawURLEncoding

// SQLBase64URL turns a text expression into unpadded base64url, as
// gateway.AlertID does (encode wraps lines every 76 characters; translate
// drops the newlines and the padding).
const sqlBase64URL = `translate(encode(convert_to(%s, 'UTF8'), 'base64'), E'+/=\n', '-_')`

func b64ID(id string) ([]string, string, bool) {
	b, err := b64.DecodeString(id)
	if err != nil || len(b) == 0 {
		return nil, "", false
	}
	return []string{string(b)}, "", true
}

func plainID(id string) ([]string, string, bool) { return []string{id}, "", id != "" }

// sqlUnitID is a unit version's feature id: its code for the current
// version, "<code>@<valid_from>" (RFC 3339, UTC) for a past one, so that every
// feature a datetime= listing gives can be fetched by its id (OGC API –
// Features, Part 1: /items/{featureId}), whatever the current map says.
const sqlUnitID = `CASE WHEN u.valid_to IS NULL THEN u.code
    ELSE u.code || '@' || to_char(u.valid_from AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') END`

// unitID reads sqlUnitID: the code, and the start of a past version as the
// "window" (ParseID's second value), which the item route takes as the
// instant of the version (UnitVersionAt).
func unitID(id string) ([]string, string, bool) {
	code, from, past := strings.Cut(id, "@")
	if code == "" || past && from == "" {
		return nil, "", false
	}
	if past {
		if _, err := time.Parse(time.RFC3339, from); err != nil {
			return nil, "", false
		}
	}
	return []string{code}, from, true
}

// UnitVersionAt is the instant a unit feature id's second part (unitID)
// names, zero for the current version.
func UnitVersionAt(from string) time.Time {
	t, _ := time.Parse(time.RFC3339, from)
	return t
}

// Units: admin_unit, the map valid at datetime= (the current one without).
const (
	sqlUnitsFrom       = `admin_unit u`
	sqlUnitsProperties = `json_build_object('code', u.code, 'level', u.level, 'parent', u.parent_code,
    'name', u.name_vi, 'nameEn', u.name_en, 'fullName', u.full_name_vi, 'fullNameEn', u.full_name_en,
    'validFrom', u.valid_from, 'validTo', u.valid_to)`
	sqlUnitsScope = `(u.code = ANY(%[1]s::text[]) OR u.code = ANY(%[2]s::text[]))`
)

// Stations: the sensor rows of air, water and weather stations, their latest values (sensor.last_values) and VN_AQI.
const (
	sqlStationsFrom       = `sensor s`
	sqlStationsWhere      = `s.kind IN ('air', 'water', 'weather')`
	sqlStationsProperties = `json_build_object('layer', s.kind, 'stationId', s.id, 'name', s.name,
    'province', s.province, 'unit', s.unit_code, 'sourceId', s.source_id, 'observedAt', s.last_observed_at,
    'aqi', (s.last_values->'aqi'->'hourly'), 'aqiBand', (s.last_values->'aqi'->'band'),
    'aqiDominant', (s.last_values->'aqi'->'dominant'), 'values', s.last_values - 'aqi', 'aqiDetail', s.last_values->'aqi')`
	sqlStationsScope = `(s.province = ANY(%[1]s::text[]) OR s.unit_code = ANY(%[2]s::text[]))`
)

// Segments: road_segment rows with their latest traffic values.
const (
	sqlSegmentsFrom       = `road_segment r`
	sqlSegmentsProperties = `json_build_object('layer', 'traffic', 'segmentId', r.id, 'name', r.name,
    'province', r.province, 'unit', r.unit_code, 'sourceId', r.source_id, 'observedAt', r.last_observed_at,
    'averageVehicleSpeed', r.last_values->'averageVehicleSpeed', 'intensity', r.last_values->'intensity',
    'occupancy', r.last_values->'occupancy', 'congested', r.last_values->'congested', 'values', r.last_values)`
	sqlSegmentsScope = `(r.province = ANY(%[1]s::text[]) OR r.unit_code = ANY(%[2]s::text[]))`
)

// Alerts: every stored alert, active and past (state), with its first info
// block's main fields. An alert is in a principal's scope when it is placed
// in one of its provinces or units, or when its area reaches one of them
// (alert_unit holds every current unit the area touches, provinces too), as
// /v1/alerts (SQLAlerts) reads it: an alert placed in 01 whose area reaches
// 79 is seen by a viewer of 79.
const (
	sqlAlertsFrom       = `alert a`
	sqlAlertsProperties = `json_build_object('entityId', a.id, 'sourceId', a.source_id, 'identifier', a.identifier,
    'sender', a.sender, 'sent', a.sent, 'status', a.status, 'msgType', a.msg_type, 'scope', a.scope,
    'state', a.state, 'province', a.province, 'unit', a.unit_code, 'expires', a.expires,
    'expiresDefault', a.expires_default,
    'receivedAt', a.received_at, 'updatedAt', a.updated_at,
    'event', a.info->0->>'event', 'headline', a.info->0->>'headline', 'severity', a.info->0->>'severity',
    'urgency', a.info->0->>'urgency', 'certainty', a.info->0->>'certainty', 'info', a.info)`
	sqlAlertsScope = `(a.province = ANY(%[1]s::text[]) OR a.unit_code = ANY(%[2]s::text[])
    OR EXISTS (SELECT 1 FROM alert_unit au WHERE au.alert_id = a.id AND au.unit_code = ANY(%[1]s::text[] || %[2]s::text[])))`
)

// Reports: citizen reports, public fields only. report.contact_enc (the
// reporter's contact) is never selected: no expression here names it.
const (
	sqlReportsFrom       = `report p`
	sqlReportsProperties = `json_build_object('reportId', p.id, 'sourceId', p.source_id, 'category', p.category,
    'text', p.text, 'media', p.media, 'status', p.status, 'assignee', p.assignee,
    'province', p.province, 'unit', p.unit_code, 'reportedAt', p.reported_at, 'receivedAt', p.received_at,
    'slaDeadline', p.sla_deadline, 'overdue', p.overdue, 'alertState', p.alert_state, 'updatedAt', p.updated_at)`
	sqlReportsScope = `(p.province = ANY(%[1]s::text[]) OR p.unit_code = ANY(%[2]s::text[]))`
)

// Roll-ups: each unit's figures of a window (docs/rollups.md), with the
// unit's current boundary.
const (
	sqlRollupsFrom       = `rollup r JOIN admin_unit u ON u.code = r.unit_code AND u.valid_to IS NULL`
	sqlRollupsFeatureID  = `r.unit_code || ':' || r.layer || ':' || r.win || ':' || extract(epoch FROM r.window_start)::bigint`
	sqlRollupsProperties = `json_build_object('unit', r.unit_code, 'name', u.name_vi, 'layer', r.layer, 'window', r.win,
    'windowStart', r.window_start, 'province', r.province, 'n', r.n, 'late', r.late, 'members', r.members,
    'gradeN', r.grade_n, 'aqiMean', r.aqi_sum / nullif(r.aqi_n, 0), 'aqiMax', r.aqi_max, 'bandMax', r.band_max,
    'dominant', r.dominant, 'speedMean', r.speed_wsum / nullif(r.speed_w, 0),
    'congestedShare', r.congested_n::float8 / nullif(r.congested_known, 0), 'vehicles', r.vehicles,
    'levelMax', r.level_max, 'alarmMax', r.alarm_max, 'tempMean', r.temp_sum / nullif(r.temp_n, 0),
    'precipSum', r.precip_sum, 'windMax', r.wind_max, 'resolved', r.resolved_n,
    'resolvedInSla', r.resolved_in_sla_n, 'overdue', r.overdue_n, 'rejected', r.rejected_n,
    'activated', json_build_object('Extreme', r.activated4_n, 'Severe', r.activated3_n, 'Moderate', r.activated2_n,
        'Minor', r.activated1_n, 'Unknown', r.activated0_n),
    'ended', json_build_object('Extreme', r.ended4_n, 'Severe', r.ended3_n, 'Moderate', r.ended2_n,
        'Minor', r.ended1_n, 'Unknown', r.ended0_n))`
	sqlRollupsScope = `(r.province = ANY(%[1]s::text[]) OR r.unit_code = ANY(%[2]s::text[]))`
)

// RollupWindows are the roll-up windows and their lengths.
var RollupWindows = map[string]time.Duration{"1m": time.Minute, "15m": 15 * time.Minute, "1h": time.Hour, "1d": 24 * time.Hour}

func rollupID(id string) ([]string, string, bool) {
	parts := strings.Split(id, ":")
	if len(parts) != 4 {
		return nil, "", false
	}
	if _, ok := RollupWindows[parts[2]]; !ok {
		return nil, "", false
	}
	sec, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil || sec < 0 || sec > 1<<40 {
		return nil, "", false
	}
	return []string{time.Unix(sec, 0).UTC().Format(time.RFC3339), parts[0], parts[1]}, parts[2], true
}

func stationID(id string) ([]string, string, bool) {
	kind, sid, ok := strings.Cut(id, ":")
	if !ok || sid == "" || (kind != "air" && kind != "water" && kind != "weather") {
		return nil, "", false
	}
	return []string{kind, sid}, "", true
}

type q = cql2.Property

// Collections are the OGC API – Features collections, in the order /ogc/collections lists them.
var Collections = []*Collection{
	{
		ID: "units", Title: "Administrative units",
		Description:  "Provinces, districts, communes and custom units with their boundaries; datetime= selects the map valid at an instant (the current map without it).",
		GeometryType: "MultiPolygon", From: sqlUnitsFrom, FeatureID: sqlUnitID, ParseID: unitID,
		Keys: []Key{{"u.code", "text"}}, Geometry: "u.boundary", Time: "", TimeMode: TimeValidity,
		Properties: sqlUnitsProperties, Scope: sqlUnitsScope,
		Queryables: map[string]cql2.Property{
			"code": q{SQL: "u.code", Type: cql2.String}, "level": q{SQL: "u.level", Type: cql2.String},
			"parent": q{SQL: "u.parent_code", Type: cql2.String}, "name": q{SQL: "u.name_vi", Type: cql2.String},
			"nameEn": q{SQL: "u.name_en", Type: cql2.String}, "validFrom": q{SQL: "u.valid_from", Type: cql2.Time},
			"validTo": q{SQL: "u.valid_to", Type: cql2.Time}, "geometry": q{SQL: "u.boundary", Type: cql2.Geometry},
		},
	},
	{
		ID: "stations", Title: "Stations",
		Description:  "Air, water and weather stations with their latest values and, for air, VN_AQI; datetime= compares the latest observation time.",
		GeometryType: "Point", From: sqlStationsFrom, Where: sqlStationsWhere,
		FeatureID: "s.kind || ':' || s.id", ParseID: stationID,
		Keys: []Key{{"s.kind", "text"}, {"s.id", "text"}}, Geometry: "s.location",
		Time: "s.last_observed_at", TimeMode: TimeColumn, Properties: sqlStationsProperties, Scope: sqlStationsScope,
		Queryables: map[string]cql2.Property{
			"layer": q{SQL: "s.kind", Type: cql2.String}, "stationId": q{SQL: "s.id", Type: cql2.String},
			"name": q{SQL: "s.name", Type: cql2.String}, "province": q{SQL: "s.province", Type: cql2.String},
			"unit": q{SQL: "s.unit_code", Type: cql2.String}, "sourceId": q{SQL: "s.source_id", Type: cql2.String},
			"observedAt": q{SQL: "s.last_observed_at", Type: cql2.Time},
			"aqi":        q{SQL: "(s.last_values->'aqi'->>'hourly')::float8", Type: cql2.Number},
			"aqiBand":    q{SQL: "(s.last_values->'aqi'->>'band')::float8", Type: cql2.Number},
			"geometry":   q{SQL: "s.location", Type: cql2.Geometry},
		},
	},
	{
		ID: "segments", Title: "Road segments",
		Description:  "Road segments with their latest traffic values; datetime= compares the latest observation time.",
		GeometryType: "LineString", From: sqlSegmentsFrom, FeatureID: "r.id", ParseID: plainID,
		Keys: []Key{{"r.id", "text"}}, Geometry: "r.geom", Time: "r.last_observed_at", TimeMode: TimeColumn,
		Properties: sqlSegmentsProperties, Scope: sqlSegmentsScope,
		Queryables: map[string]cql2.Property{
			"segmentId": q{SQL: "r.id", Type: cql2.String}, "name": q{SQL: "r.name", Type: cql2.String},
			"province": q{SQL: "r.province", Type: cql2.String}, "unit": q{SQL: "r.unit_code", Type: cql2.String},
			"sourceId": q{SQL: "r.source_id", Type: cql2.String}, "observedAt": q{SQL: "r.last_observed_at", Type: cql2.Time},
			"averageVehicleSpeed": q{SQL: "(r.last_values->>'averageVehicleSpeed')::float8", Type: cql2.Number},
			"intensity":           q{SQL: "(r.last_values->>'intensity')::float8", Type: cql2.Number},
			"congested":           q{SQL: "(r.last_values->>'congested')::boolean", Type: cql2.Bool},
			"geometry":            q{SQL: "r.geom", Type: cql2.Geometry},
		},
	},
	{
		ID: "alerts", Title: "Alerts",
		Description:  "CAP alerts, active and past (state: active, cancelled, expired, superseded); datetime= compares the time sent. Feature ids are those of /v1/alerts.",
		GeometryType: "Geometry", From: sqlAlertsFrom, FeatureID: fmt.Sprintf(sqlBase64URL, "a.id"), ParseID: b64ID,
		Keys: []Key{{"a.id", "text"}}, Geometry: "a.area", Time: "a.sent", TimeMode: TimeColumn,
		Properties: sqlAlertsProperties, Scope: sqlAlertsScope,
		Queryables: map[string]cql2.Property{
			"entityId": q{SQL: "a.id", Type: cql2.String}, "sourceId": q{SQL: "a.source_id", Type: cql2.String},
			"state": q{SQL: "a.state", Type: cql2.String}, "status": q{SQL: "a.status", Type: cql2.String},
			"msgType": q{SQL: "a.msg_type", Type: cql2.String}, "province": q{SQL: "a.province", Type: cql2.String},
			"unit": q{SQL: "a.unit_code", Type: cql2.String}, "sent": q{SQL: "a.sent", Type: cql2.Time},
			"expires": q{SQL: "a.expires", Type: cql2.Time}, "event": q{SQL: "(a.info->0->>'event')", Type: cql2.String},
			"severity": q{SQL: "(a.info->0->>'severity')", Type: cql2.String},
			"geometry": q{SQL: "a.area", Type: cql2.Geometry},
		},
	},
	{
		ID: "reports", Title: "Citizen reports",
		Description:  "Citizen reports, public fields only (never the reporter's contact); datetime= compares the time reported.",
		GeometryType: "Point", From: sqlReportsFrom, FeatureID: fmt.Sprintf(sqlBase64URL, "p.id"), ParseID: b64ID,
		Keys: []Key{{"p.id", "text"}}, Geometry: "p.point", Time: "p.reported_at", TimeMode: TimeColumn,
		Properties: sqlReportsProperties, Scope: sqlReportsScope,
		Queryables: map[string]cql2.Property{
			"category": q{SQL: "p.category", Type: cql2.String}, "status": q{SQL: "p.status", Type: cql2.String},
			"province": q{SQL: "p.province", Type: cql2.String}, "unit": q{SQL: "p.unit_code", Type: cql2.String},
			"sourceId": q{SQL: "p.source_id", Type: cql2.String}, "overdue": q{SQL: "p.overdue", Type: cql2.Bool},
			"reportedAt": q{SQL: "p.reported_at", Type: cql2.Time}, "slaDeadline": q{SQL: "p.sla_deadline", Type: cql2.Time},
			"geometry": q{SQL: "p.point", Type: cql2.Geometry},
		},
	},
	{
		ID: "rollups", Title: "Roll-ups",
		Description:  "Each unit's roll-up figures of a window (window=1m|15m|1h|1d, default 1h) on the unit's current boundary; datetime= selects the window holding an instant (now without it) or the windows starting in an interval.",
		GeometryType: "MultiPolygon", From: sqlRollupsFrom, FeatureID: sqlRollupsFeatureID, ParseID: rollupID,
		Keys:     []Key{{"r.window_start", "timestamptz"}, {"r.unit_code", "text"}, {"r.layer", "text"}},
		Geometry: "u.boundary", Time: "r.window_start", TimeMode: TimeWindow,
		Properties: sqlRollupsProperties, Scope: sqlRollupsScope,
		Queryables: map[string]cql2.Property{
			"unit": q{SQL: "r.unit_code", Type: cql2.String}, "layer": q{SQL: "r.layer", Type: cql2.String},
			"province": q{SQL: "r.province", Type: cql2.String}, "n": q{SQL: "r.n::float8", Type: cql2.Number},
			"aqiMax": q{SQL: "r.aqi_max::float8", Type: cql2.Number}, "bandMax": q{SQL: "r.band_max::float8", Type: cql2.Number},
			"alarmMax": q{SQL: "r.alarm_max::float8", Type: cql2.Number}, "windowStart": q{SQL: "r.window_start", Type: cql2.Time},
			"geometry": q{SQL: "u.boundary", Type: cql2.Geometry},
		},
	},
}

// CollectionByID returns the collection id, or nil.
func CollectionByID(id string) *Collection {
	for _, c := range Collections {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// Scope limits a query to a principal: All, or the rows of Provinces or of
// Units (for units, the units themselves).
type Scope struct {
	All       bool
	Provinces []string
	Units     []string
}

// FeatureQuery is one items (or item) request, validated.
type FeatureQuery struct {
	C     *Collection
	Scope Scope
	// BBox is minLon, minLat, maxLon, maxLat (CRS84); nil means anywhere.
	BBox *[4]float64
	// At is an instant; From and To an interval's ends (nil: open).
	At, From, To *time.Time
	// Interval says datetime= was an interval, even one open at both ends
	// ("../..": any time, From and To nil), which roll-ups must tell from no
	// datetime= at all (the window holding now).
	Interval bool
	// Window is the roll-up window (rollups only).
	Window string
	// Equals are simple property filters: queryable name → value of its type.
	Equals map[string]any
	Filter cql2.Expr
	// Simplify is a tolerance in degrees; 0 keeps geometries whole.
	Simplify float64
	Limit    int
	// After or Before is a cursor's key (Before: the page before it).
	After, Before []string
	// IDKeys selects one feature by its keys (items/{featureId}).
	IDKeys []string
	// Count asks for numberMatched (up to CountCap).
	Count bool
}

// CountCap bounds numberMatched: past it, the count is left out.
const CountCap = 100000

// args numbers placeholders; it implements cql2.Binder.
type args struct{ vals []any }

func (a *args) Bind(v any) string {
	a.vals = append(a.vals, v)
	return "$" + strconv.Itoa(len(a.vals))
}

// Build returns the statement of the page (and of numberMatched when Count)
// and their arguments: the count takes the first countArgs of them. The page selects, in order: the feature id, each key
// as text, the geometry as GeoJSON, the properties as JSON, and (paging
// backwards) the row's rank from the cursor as text.
func (fq FeatureQuery) Build() (page, count string, vals []any, countArgs int, err error) {
	c := fq.C
	a := &args{}
	var conds []string
	if c.Where != "" {
		conds = append(conds, c.Where)
	}
	if !fq.Scope.All {
		conds = append(conds, fmt.Sprintf(c.Scope, a.Bind(fq.Scope.Provinces), a.Bind(fq.Scope.Units)))
	}
	if fq.BBox != nil {
		b := fq.BBox
		conds = append(conds, fmt.Sprintf("ST_Intersects(%s, ST_MakeEnvelope(%s::float8, %s::float8, %s::float8, %s::float8, 4326))",
			c.Geometry, a.Bind(b[0]), a.Bind(b[1]), a.Bind(b[2]), a.Bind(b[3])))
	}
	switch c.TimeMode {
	case TimeColumn:
		conds = append(conds, timeConds(c.Time, fq, a)...)
	case TimeValidity:
		switch {
		case fq.At != nil:
			t := a.Bind(*fq.At)
			conds = append(conds, fmt.Sprintf("u.valid_from <= %[1]s::timestamptz AND (u.valid_to IS NULL OR %[1]s::timestamptz < u.valid_to)", t))
		case fq.Interval || fq.From != nil || fq.To != nil:
			return "", "", nil, 0, errors.New("units take an instant in datetime, not an interval")
		default:
			conds = append(conds, "u.valid_to IS NULL")
		}
	case TimeWindow:
		conds = append(conds, "r.win = "+a.Bind(fq.Window)+"::text")
		if fq.IDKeys == nil {
			if fq.At == nil && !fq.Interval && fq.From == nil && fq.To == nil {
				now := time.Now().UTC() // no datetime=: the window holding now
				fq.At = &now
			}
			if fq.At != nil {
				t := a.Bind(*fq.At)
				conds = append(conds, fmt.Sprintf("r.window_start <= %[1]s::timestamptz AND r.window_start > %[1]s::timestamptz - %[2]s::interval", t,
					a.Bind(RollupWindows[fq.Window].String())))
			} else {
				conds = append(conds, timeConds(c.Time, fq, a)...)
			}
		}
	}
	names := make([]string, 0, len(fq.Equals))
	for n := range fq.Equals {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p, ok := c.Queryables[n]
		if !ok {
			return "", "", nil, 0, fmt.Errorf("%q: %w", n, cql2.ErrUnknownProperty)
		}
		conds = append(conds, fmt.Sprintf("%s = %s", p.SQL, a.Bind(fq.Equals[n])))
	}
	f, err := fq.Filter.SQL(c.Queryables, a)
	if err != nil {
		return "", "", nil, 0, err
	}
	if f != "TRUE" {
		conds = append(conds, f)
	}
	keyList := make([]string, len(c.Keys))
	for i, k := range c.Keys {
		keyList[i] = k.SQL
	}
	keys := "(" + strings.Join(keyList, ", ") + ")"
	bound := func(vs []string) string {
		ps := make([]string, len(vs))
		for i, v := range vs {
			ps[i] = a.Bind(v) + "::" + c.Keys[i].Cast
		}
		return "(" + strings.Join(ps, ", ") + ")"
	}
	base := slices.Clone(conds)
	countArgs = len(a.vals)
	switch {
	case fq.IDKeys != nil:
		if len(fq.IDKeys) != len(c.Keys) {
			return "", "", nil, 0, errors.New("feature id has the wrong number of keys")
		}
		conds = append(conds, keys+" = "+bound(fq.IDKeys))
	case fq.After != nil:
		conds = append(conds, keys+" > "+bound(fq.After))
	case fq.Before != nil:
		conds = append(conds, keys+" < "+bound(fq.Before))
	}
	if len(fq.After) > 0 && len(fq.After) != len(c.Keys) || len(fq.Before) > 0 && len(fq.Before) != len(c.Keys) {
		return "", "", nil, 0, errors.New("cursor has the wrong number of keys")
	}
	geometry := c.Geometry
	if fq.Simplify > 0 {
		geometry = fmt.Sprintf("ST_SimplifyPreserveTopology(%s, %s::float8)", geometry, a.Bind(fq.Simplify))
	}
	var sel strings.Builder
	sel.WriteString("SELECT " + c.FeatureID + " AS fid")
	for i, k := range c.Keys {
		fmt.Fprintf(&sel, ", %s AS k%d", k.SQL, i)
	}
	sel.WriteString(", ST_AsGeoJSON(ST_ForcePolygonCCW(" + geometry + "), 7) AS geometry, (" + c.Properties + ")::text AS properties")
	where := ""
	if len(conds) > 0 {
		where = "\nWHERE " + strings.Join(conds, "\n  AND ")
	}
	order := make([]string, len(c.Keys))
	desc := make([]string, len(c.Keys))
	outer := make([]string, len(c.Keys))
	text := make([]string, len(c.Keys))
	for i, k := range c.Keys {
		order[i] = k.SQL
		desc[i] = k.SQL + " DESC"
		outer[i] = fmt.Sprintf("k%d", i)
		text[i] = fmt.Sprintf("k%d::text", i)
	}
	limit := a.Bind(fq.Limit + 1)
	if fq.Before != nil {
		page = fmt.Sprintf("SELECT fid, %s, geometry, properties, rn::text FROM (%s, row_number() OVER (ORDER BY %s) AS rn\nFROM %s%s\nORDER BY %s\nLIMIT %s) page ORDER BY %s",
			strings.Join(text, ", "), sel.String(), strings.Join(desc, ", "), c.From, where, strings.Join(desc, ", "), limit, strings.Join(outer, ", "))
	} else {
		page = fmt.Sprintf("SELECT fid, %s, geometry, properties FROM (%s\nFROM %s%s\nORDER BY %s\nLIMIT %s) page",
			strings.Join(text, ", "), sel.String(), c.From, where, strings.Join(order, ", "), limit)
	}
	if fq.Count {
		w := ""
		if len(base) > 0 {
			w = "\nWHERE " + strings.Join(base, "\n  AND ")
		}
		count = fmt.Sprintf("SELECT count(*) FROM (SELECT 1 FROM %s%s\nLIMIT %d) matched", c.From, w, CountCap+1)
	}
	return page, count, a.vals, countArgs, nil
}

func timeConds(col string, fq FeatureQuery, a *args) []string {
	var out []string
	if fq.At != nil {
		out = append(out, col+" = "+a.Bind(*fq.At)+"::timestamptz")
	}
	if fq.From != nil {
		out = append(out, col+" >= "+a.Bind(*fq.From)+"::timestamptz")
	}
	if fq.To != nil {
		out = append(out, col+" <= "+a.Bind(*fq.To)+"::timestamptz")
	}
	return out
}

// FeatureSink receives a page as it is read.
type FeatureSink interface {
	// Begin is called once the query has answered, before the first Feature
	// (also when there is none): from here on an error cannot be a problem document.
	Begin() error
	// Feature gets one feature's id, geometry (GeoJSON, nil for none) and
	// properties (a JSON object); the slices are valid during the call only.
	Feature(id, geometry, properties []byte) error
}

// Page is what was read of a page.
type Page struct {
	Returned int
	// First and Last are the keys of the first and last feature written.
	First, Last []string
	// More says there are features past Last (paging forwards) or before
	// First (paging backwards).
	More bool
	// Matched is numberMatched; MatchedKnown false when not counted or past CountCap.
	Matched      int64
	MatchedKnown bool
}

// sqlSetReadTimeout bounds the statements of the read-only transaction it runs in.
const sqlSetReadTimeout = `SELECT set_config('statement_timeout', $1, true)`

// ErrBegun wraps an error that came after FeatureSink.Begin.
var ErrBegun = errors.New("after the page began")

// Features runs fq in one read-only transaction whose statements are
// bounded by timeout, streaming the page's rows to sink as they arrive.
// An error wrapping ErrBegun came after sink.Begin.
func (s *Store) Features(ctx context.Context, fq FeatureQuery, timeout time.Duration, sink FeatureSink) (Page, error) {
	var pg Page
	page, count, vals, countArgs, err := fq.Build()
	if err != nil {
		return pg, fmt.Errorf("building the %s query: %w", fq.C.ID, err)
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN READ ONLY")
	// At least 1ms: 0 would mean no limit.
	b.Queue(sqlSetReadTimeout, strconv.FormatInt(max(1, timeout.Milliseconds()), 10))
	b.Queue(page, vals...)
	if count != "" {
		b.Queue(count, vals[:countArgs]...)
	}
	b.Queue("COMMIT")
	br := s.pool.SendBatch(ctx, b)
	defer func() { _ = br.Close() }()
	for range 2 {
		if _, err := br.Exec(); err != nil {
			return pg, fmt.Errorf("starting the %s query: %w", fq.C.ID, err)
		}
	}
	rows, err := br.Query()
	if err != nil {
		return pg, fmt.Errorf("querying %s: %w", fq.C.ID, err)
	}
	nk := len(fq.C.Keys)
	begun := false
	for rows.Next() {
		raw := rows.RawValues()
		if !begun {
			if err := sink.Begin(); err != nil {
				rows.Close()
				return pg, errors.Join(ErrBegun, err)
			}
			begun = true
		}
		if fq.Before != nil {
			rn, _ := strconv.Atoi(string(raw[nk+3]))
			if rn > fq.Limit {
				pg.More = true
				continue
			}
		} else if pg.Returned == fq.Limit {
			pg.More = true
			continue
		}
		key := make([]string, nk)
		for i := range nk {
			key[i] = string(raw[1+i])
		}
		if pg.First == nil {
			pg.First = key
		}
		pg.Last = key
		if err := sink.Feature(raw[0], raw[nk+1], raw[nk+2]); err != nil {
			rows.Close()
			return pg, errors.Join(ErrBegun, err)
		}
		pg.Returned++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		if begun {
			return pg, errors.Join(ErrBegun, fmt.Errorf("reading %s: %w", fq.C.ID, err))
		}
		return pg, fmt.Errorf("querying %s: %w", fq.C.ID, err)
	}
	if !begun {
		if err := sink.Begin(); err != nil {
			return pg, errors.Join(ErrBegun, err)
		}
	}
	if count != "" {
		var n int64
		if err := br.QueryRow().Scan(&n); err != nil {
			return pg, errors.Join(ErrBegun, fmt.Errorf("counting %s: %w", fq.C.ID, err))
		}
		pg.Matched, pg.MatchedKnown = n, n <= CountCap
	}
	if _, err := br.Exec(); err != nil {
		return pg, errors.Join(ErrBegun, fmt.Errorf("ending the %s query: %w", fq.C.ID, err))
	}
	return pg, nil
}
