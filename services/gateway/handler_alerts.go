package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/cap"
	"github.com/iochub/iochub/internal/capconv"
	"github.com/iochub/iochub/internal/routes"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/gateway/pgread"
)

// Limits of GET /v1/alerts.
const (
	alertsDefaultLimit = 100
	alertsMaxLimit     = 1000
)

// AlertID is the URL-safe id of an alert: its entity id on STATE and in the
// alert table, "<source_id>/<identifier>", in unpadded base64url (RFC 4648
// §5). It is the Feature id of GET /v1/alerts, properties.alert.id on the
// live view, and the {id} of GET /v1/alerts/{id}. CAP identifiers may hold
// "/", "." and any other character but space, comma, "<" and "&"; base64url
// holds none of "/" and ".", so "{id}.cap" is never ambiguous.
func AlertID(entityID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(entityID))
}

// alertEntityID reverses AlertID.
func alertEntityID(id string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(b) == 0 {
		return "", false
	}
	return string(b), true
}

// alertDoc is GET /v1/alerts/{id}: the CAP alert, element by element (CAP
// names, date-times with their offsets, polygons as lat,lon points), with
// the hub's view of it beside.
type alertDoc struct {
	ID         string          `json:"id"`
	EntityID   string          `json:"entityId"`
	SourceID   string          `json:"sourceId"`
	State      string          `json:"state"`
	Province   string          `json:"province"`
	Unit       string          `json:"unit"`
	Units      []string        `json:"units"`
	ReceivedAt string          `json:"receivedAt"`
	UpdatedAt  string          `json:"updatedAt"`
	Geometry   json.RawMessage `json:"geometry"`
	Links      []link          `json:"links"`
	// Acked says whether an operator acknowledged the alert (POST
	// /v1/alerts/{id}/ack): who and when.
	Acked   bool   `json:"acked"`
	AckedBy string `json:"ackedBy,omitempty"`
	AckedAt string `json:"ackedAt,omitempty"`
	// HubExpires is when the alert expires by the hub's default lifetime
	// (--alert-default-ttl), its message naming no expiry (the CAP alert
	// below has none); absent otherwise.
	HubExpires string `json:"hubExpires,omitempty"`
	cap.Alert
}

type link struct {
	Rel  string `json:"rel"`
	Type string `json:"type"`
	Href string `json:"href"`
}

// serveAlert is GET /v1/alerts/{id} (JSON) and GET /v1/alerts/{id}.cap (CAP 1.2 XML).
func (g *Gateway) serveAlert(w http.ResponseWriter, r *http.Request) {
	who, ok := g.authenticate(w, r)
	if !ok || !readsKind(w, r, who, subjects.KindAlert) {
		return
	}
	id := r.PathValue("id")
	id, asCAP := strings.CutSuffix(id, ".cap")
	if g.readPool == nil {
		writeProblem(w, r, http.StatusServiceUnavailable, "this gateway has no database; alerts are not available here")
		return
	}
	tree, ok := g.hierarchy(w, r)
	if !ok {
		return
	}
	entity, ok := alertEntityID(id)
	if !ok {
		writeProblem(w, r, http.StatusNotFound, fmt.Sprintf("no alert has the id %q: ids are the Feature ids of /v1/alerts", truncate(id, 64)))
		return
	}
	row, found, err := pgread.New(g.readPool).Alert(r.Context(), entity)
	if err != nil {
		g.readFailed(w, r, err, "querying alert", "alert", entity)
		return
	}
	if !found || !who.CanReadAlert(tree, row.Province, row.Unit, row.Units) { // out of scope looks like absent: ids are not probed
		writeProblem(w, r, http.StatusNotFound, fmt.Sprintf("no alert has the id %q (%s)", id, truncate(entity, 128)))
		return
	}
	m := &iocv1.Alert{}
	if err := proto.Unmarshal(row.Body, m); err != nil {
		g.log.Error("decoding stored alert", "alert", entity, "err", err)
		writeProblem(w, r, http.StatusInternalServerError, "the stored alert cannot be read")
		return
	}
	a, err := capconv.FromProto(m)
	if err != nil {
		g.log.Error("converting stored alert", "alert", entity, "err", err)
		writeProblem(w, r, http.StatusInternalServerError, "the stored alert cannot be converted to CAP: "+err.Error())
		return
	}
	if row.BadGeometry {
		g.log.Warn("alert area cannot be written as GeoJSON", "alert", entity)
	}
	w.Header().Set("Cache-Control", "no-cache")
	if asCAP {
		doc, err := cap.Marshal(a)
		if err != nil {
			// An alert that came as JSON may lack what CAP requires.
			writeProblem(w, r, http.StatusNotAcceptable, "this alert has no valid CAP 1.2 form (it came in another format): "+err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/cap+xml")
		_, _ = w.Write(doc)
		return
	}
	d := alertDoc{
		ID: id, EntityID: row.ID, SourceID: row.SourceID, State: row.State, Province: row.Province, Unit: row.Unit,
		Units: nonNil(row.Units), ReceivedAt: row.ReceivedAt.UTC().Format(time.RFC3339Nano),
		UpdatedAt: row.UpdatedAt.UTC().Format(time.RFC3339Nano), Geometry: geometryOrNull(row.Geometry),
		Links: []link{{Rel: "alternate", Type: "application/cap+xml", Href: "/v1/alerts/" + id + ".cap"}},
		Alert: a,
	}
	if row.AckedAt != nil {
		d.Acked, d.AckedBy, d.AckedAt = true, row.AckedBy, row.AckedAt.UTC().Format(time.RFC3339Nano)
	}
	if row.DefaultExpires != nil {
		d.HubExpires = row.DefaultExpires.UTC().Format(time.RFC3339Nano)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		g.log.Warn("alert cannot be written as JSON; shown without geometry", "alert", entity, "err", err)
		d.Geometry = json.RawMessage("null")
		if err := enc.Encode(d); err != nil {
			writeProblem(w, r, http.StatusInternalServerError, "the stored alert cannot be written as JSON: "+err.Error())
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf.Bytes())
}

// alertsParams are the validated query parameters of /v1/alerts.
type alertsParams = pgread.AlertsQuery

// parseAlertsQuery validates [province=NN][&active=true|false][&limit=N][&bbox=minLon,minLat,maxLon,maxLat].
func parseAlertsQuery(q url.Values) (alertsParams, error) {
	p := alertsParams{Limit: alertsDefaultLimit}
	if _, ok := q["province"]; ok {
		prov, err := parseProvince(q)
		if err != nil {
			return p, err
		}
		p.Province = prov
	}
	one := func(name string) (string, bool, error) {
		vs, ok := q[name]
		if !ok {
			return "", false, nil
		}
		if len(vs) != 1 || len(vs[0]) > maxParamLen {
			return "", false, fmt.Errorf("parameter %s: give it once: %w", name, ErrBadParam)
		}
		return vs[0], true, nil
	}
	if v, ok, err := one("active"); err != nil {
		return p, err
	} else if ok {
		b, perr := strconv.ParseBool(v)
		if perr != nil {
			return p, fmt.Errorf("parameter active: %q is not true or false: %w", v, ErrBadParam)
		}
		p.Active = b
	}
	if v, ok, err := one("limit"); err != nil {
		return p, err
	} else if ok {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 || n > alertsMaxLimit {
			return p, fmt.Errorf("parameter limit: %q is not a whole number from 1 to %d: %w", v, alertsMaxLimit, ErrBadParam)
		}
		p.Limit = n
	}
	if v, ok, err := one("bbox"); err != nil {
		return p, err
	} else if ok {
		parts := strings.Split(v, ",")
		if len(parts) != 4 {
			return p, fmt.Errorf("parameter bbox: %q is not minLon,minLat,maxLon,maxLat: %w", v, ErrBadParam)
		}
		var box [4]float64
		for i, s := range parts {
			f, perr := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if perr != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return p, fmt.Errorf("parameter bbox: %q is not a number: %w", s, ErrBadParam)
			}
			box[i] = f
		}
		if box[0] < -180 || box[2] > 180 || box[1] < -90 || box[3] > 90 || box[0] > box[2] || box[1] > box[3] {
			return p, fmt.Errorf("parameter bbox: %q is not minLon,minLat,maxLon,maxLat within [-180,180]×[-90,90]: %w", v, ErrBadParam)
		}
		p.BBox = &box
	}
	return p, nil
}

// serveAlerts is GET /v1/alerts: a GeoJSON FeatureCollection of alerts, each
// Feature shaped as on the live view (properties.layer "alert",
// properties.alert) with id = AlertID and the geometry made by PostGIS.
func (g *Gateway) serveAlerts(w http.ResponseWriter, r *http.Request) {
	who, ok := g.authenticate(w, r)
	if !ok || !readsKind(w, r, who, subjects.KindAlert) {
		return
	}
	p, err := parseAlertsQuery(r.URL.Query())
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, err.Error())
		return
	}
	tree, ok := g.hierarchy(w, r)
	if !ok {
		return
	}
	if !alertsInScope(w, r, who, tree, &p) {
		return
	}
	if g.readPool == nil {
		writeProblem(w, r, http.StatusServiceUnavailable, "this gateway has no database; alerts are not available here")
		return
	}
	rows, err := pgread.New(g.readPool).Alerts(r.Context(), p)
	if err != nil {
		g.readFailed(w, r, err, "querying alerts", "province", p.Province)
		return
	}
	var buf bytes.Buffer
	buf.WriteString(`{"type":"FeatureCollection","features":[`)
	g.appendAlertFeatures(&buf, 0, who, tree, rows)
	buf.WriteString("]}")
	w.Header().Set("Content-Type", "application/geo+json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(buf.Bytes())
}

// writeAlertFeature writes row as a GeoJSON Feature (and a newline) with
// enc into buf; false, with buf possibly partly written, when the row cannot
// be decoded or written. One alert that cannot be written never fails a
// list: it is written without geometry, or else left out, and logged.
func (g *Gateway) writeAlertFeature(enc *json.Encoder, buf *bytes.Buffer, row pgread.AlertRow) bool {
	m := &iocv1.Alert{}
	if err := proto.Unmarshal(row.Body, m); err != nil {
		g.log.Error("decoding stored alert", "alert", row.ID, "err", err)
		return false
	}
	st := &iocv1.EntityState{AlertState: row.State, Units: row.Units}
	if row.AckedAt != nil {
		st.AlertAck = &iocv1.AlertAck{By: row.AckedBy, At: timestamppb.New(*row.AckedAt)}
	}
	props := propertiesJSON{
		Layer: subjects.KindAlert, EntityID: row.ID, Province: row.Province, Unit: row.Unit,
		UpdatedAt:   row.UpdatedAt.UTC().Format(time.RFC3339Nano),
		Observation: &observationJSON{ID: m.GetId(), Time: rfc3339(m.GetSent())},
		Alert:       alertProps(m, st),
	}
	props.Alert.ID = AlertID(row.ID)
	if row.DefaultExpires != nil {
		props.Alert.HubExpires = row.DefaultExpires.UTC().Format(time.RFC3339Nano)
	}
	for _, in := range m.GetInfo() {
		if props.Name = firstNonEmpty(in.GetHeadline(), in.GetEvent()); props.Name != "" {
			break
		}
	}
	if row.BadGeometry {
		g.log.Warn("alert area cannot be written as GeoJSON", "alert", row.ID)
	}
	mark := buf.Len()
	f := featureJSON{Type: "Feature", ID: AlertID(row.ID), Geometry: geometryOrNull(row.Geometry), Properties: props}
	if err := enc.Encode(f); err != nil {
		g.log.Warn("alert cannot be written as JSON; listed without geometry", "alert", row.ID, "err", err)
		buf.Truncate(mark)
		f.Geometry = json.RawMessage("null")
		if err := enc.Encode(f); err != nil {
			g.log.Error("alert cannot be written as JSON; left out of the list", "alert", row.ID, "err", err)
			return false
		}
	}
	return true
}

// registerAlerts adds the alerts API to mux.
func (g *Gateway) registerAlerts(mux routes.Mux) {
	mux.HandleFunc("GET /v1/alerts", g.serveAlerts)
	mux.HandleFunc("GET /v1/alerts/{id}", g.serveAlert)
}

func geometryOrNull(g []byte) json.RawMessage {
	if len(g) == 0 {
		return json.RawMessage("null")
	}
	return g
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// appendAlertFeatures appends to buf, after n features already there, the
// Features of the rows who may read, comma-separated; one that cannot be
// written is left out (writeAlertFeature logs it). It returns the count of
// features in buf.
func (g *Gateway) appendAlertFeatures(buf *bytes.Buffer, n int, who auth.Principal, tree *unitTree, rows []pgread.AlertRow) int {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	for _, row := range rows {
		if !who.CanReadAlert(tree, row.Province, row.Unit, row.Units) {
			continue
		}
		mark := buf.Len()
		if n > 0 {
			buf.WriteByte(',')
		}
		if !g.writeAlertFeature(enc, buf, row) {
			buf.Truncate(mark)
			continue
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
		n++
	}
	return n
}
