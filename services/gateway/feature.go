package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/twpayne/go-geom"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/aqi"
	"github.com/iochub/iochub/internal/capconv"
	"github.com/iochub/iochub/internal/pbtime"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// errNoEntity is returned for a state that names no layer or entity, neither in
// its body nor in its subject.
var errNoEntity = errors.New("state names no layer or entity")

// feature is one entity's state encoded once as a GeoJSON Feature.
type feature struct {
	key   string // "<layer>/<entityId>", also the Feature id
	layer string
	json  []byte
	// geomErr is set when the geometry could not be decoded; the Feature then
	// carries "geometry": null and everything else.
	geomErr error
	// box is the bounding box of the geometry sent, computed here once so bbox
	// filters compare numbers; located is false when the Feature has no geometry.
	box     bbox
	located bool
	// units are the entity's unit and an alert's units, for unit scopes.
	units []string
	// pair is "<source>/<unit>" of the entity's latest event; stalePair the
	// pair a stale-source alert is about, staleActive whether it is active
	// (set by the hub, stale.go).
	pair        string
	stalePair   string
	staleActive bool
}

// Wire shapes of the Feature (the contract in the brief; field order is the wire order).
type (
	featureJSON struct {
		Type       string          `json:"type"`
		ID         string          `json:"id"`
		Geometry   json.RawMessage `json:"geometry"`
		Properties propertiesJSON  `json:"properties"`
	}
	propertiesJSON struct {
		Layer       string           `json:"layer"`
		EntityID    string           `json:"entityId"`
		Name        string           `json:"name"`
		Province    string           `json:"province"`
		Unit        string           `json:"unit"`
		UpdatedAt   string           `json:"updatedAt,omitempty"`
		Observation *observationJSON `json:"observation,omitempty"`
		Alert       *alertJSON       `json:"alert,omitempty"`
		Report      *reportJSON      `json:"report,omitempty"`
		// AQI is the VN_AQI of an air station; WaterAlarm the alarm level (0..3) a water station reached.
		AQI        *aqi.JSON `json:"aqi,omitempty"`
		WaterAlarm *int32    `json:"waterAlarm,omitempty"`
	}
	observationJSON struct {
		ID     string         `json:"id"`
		Time   string         `json:"time,omitempty"`
		Values map[string]any `json:"values,omitempty"`
	}
	alertJSON struct {
		// ID is AlertID of the entity: the {id} of GET /v1/alerts/{id}.
		ID         string             `json:"id"`
		Identifier string             `json:"identifier"`
		Sender     string             `json:"sender"`
		Sent       string             `json:"sent,omitempty"`
		Status     string             `json:"status"`
		MsgType    string             `json:"msgType"`
		Scope      string             `json:"scope"`
		State      string             `json:"state"`
		RuleID     string             `json:"ruleId,omitempty"` // the alert rule that raised it; empty for alerts from sources
		Units      []string           `json:"units"`
		Info       []capconv.InfoJSON `json:"info"`
		// Acked, AckedBy and AckedAt are the operator's acknowledgement
		// (POST /v1/alerts/{id}/ack); Acked is false and the others absent
		// while nobody has acknowledged the alert.
		Acked   bool   `json:"acked"`
		AckedBy string `json:"ackedBy,omitempty"`
		AckedAt string `json:"ackedAt,omitempty"`
		// HubExpires is when the alert expires by the hub's default lifetime
		// (--alert-default-ttl), its message naming no expiry; absent
		// otherwise, and on the live streams.
		HubExpires string `json:"hubExpires,omitempty"`
	}
)

// encodeFeature turns one STATE message into its Feature JSON. subject is the
// message's subject; it fills the province, layer and entity when the body
// leaves them empty.
func encodeFeature(st *iocv1.EntityState, subject string) (feature, error) {
	layer, entity, province := st.GetLayer(), st.GetEntityId(), st.GetProvince()
	if layer == "" || entity == "" || province == "" {
		if p, l, e, err := subjects.ParseState(subject); err == nil {
			layer, entity, province = firstNonEmpty(layer, l), firstNonEmpty(entity, e), firstNonEmpty(province, p)
		}
	}
	if layer == "" || entity == "" {
		return feature{}, fmt.Errorf("encoding state of %q: %w", subject, errNoEntity)
	}
	f := feature{key: layer + "/" + entity, layer: layer, units: entityUnits(st)}
	props := propertiesJSON{
		Layer:     layer,
		EntityID:  entity,
		Province:  province,
		Unit:      st.GetUnit(),
		UpdatedAt: rfc3339(st.GetUpdatedAt()),
	}
	var g geom.T
	var gerr error
	if fd := st.ProtoReflect().WhichOneof(latestOneof); fd != nil {
		if enc := featureEncoders[fd.Name()]; enc != nil {
			var kp kindProps
			kp, g, gerr = enc(st, entity)
			props.Name, props.Observation, props.Alert, props.Report, props.AQI, props.WaterAlarm =
				kp.Name, kp.Observation, kp.Alert, kp.Report, kp.AQI, kp.WaterAlarm
		}
	}
	gj := []byte("null")
	if gerr == nil {
		gj, gerr = geometryJSON(g)
		if gerr != nil {
			gj = []byte("null")
		} else {
			f.box, f.located = geometryBBox(g)
		}
	}
	f.geomErr = gerr
	if b, ok := appendFeatureJSON(make([]byte, 0, 384+len(gj)), f.key, gj, &props); ok {
		f.json = b
		return f, nil
	}
	b, err := featureJSONOf(f.key, gj, &props)
	if err != nil {
		return feature{}, fmt.Errorf("encoding state of %s: %w", f.key, err)
	}
	f.json = b
	return f, nil
}

// featureJSONOf is the Feature of id, geometry and p by encoding/json, HTML
// left unescaped: what appendFeatureJSON writes without it.
func featureJSONOf(id string, geometry []byte, p *propertiesJSON) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(featureJSON{Type: "Feature", ID: id, Geometry: geometry, Properties: *p}); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// entityUnits are st's unit and units, for unit scopes; nil when it names none.
func entityUnits(st *iocv1.EntityState) []string {
	us := st.GetUnits()
	if st.GetUnit() == "" {
		return us
	}
	return append([]string{st.GetUnit()}, us...)
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// rfc3339 formats a timestamp in UTC; nil or invalid is "".
func rfc3339(ts *timestamppb.Timestamp) string { return pbtime.RFC3339(ts) }

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Frame builders: the JSON around Features is written by hand so the Feature
// bytes are copied, never re-encoded.
var (
	stateFramePrefix = []byte(`{"type":"state","entity":`)
)

// removeFrame is {"type":"remove","id":K}: entity K left the client's bbox.
func removeFrame(key string) []byte {
	id, _ := json.Marshal(key) // a string always marshals
	b := make([]byte, 0, len(id)+24)
	b = append(b, `{"type":"remove","id":`...)
	b = append(b, id...)
	return append(b, '}')
}

// stateFrame is {"type":"state","entity":F}.
func stateFrame(f []byte) []byte {
	b := make([]byte, 0, len(stateFramePrefix)+len(f)+1)
	b = append(b, stateFramePrefix...)
	b = append(b, f...)
	return append(b, '}')
}

// snapshotFrame is {"type":"snapshot","province":P,"entities":[F,...]}.
func snapshotFrame(province string, fs [][]byte) []byte {
	n := 64
	for _, f := range fs {
		n += len(f) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"type":"snapshot","province":`...)
	p, _ := json.Marshal(province) // a string always marshals
	b = append(b, p...)
	b = append(b, `,"entities":[`...)
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, f...)
	}
	return append(b, "]}"...)
}
