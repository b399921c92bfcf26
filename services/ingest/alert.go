package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/cap"
	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/feedcheck"
	"github.com/iochub/iochub/internal/subjects"

	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// alertGeometryTypes are the geometries an alert area may have.
var alertGeometryTypes = []string{"Point", "Polygon", "MultiPolygon"}

// parseAlert reads an alert in one of two JSON forms.
//
// The FIWARE Alert in keyValues form (smart-data-models dataModel.Alert):
//
//	{"id": "Alert:1", "type": "Alert", "category": "traffic", "subCategory": "trafficJam",
//	 "severity": "high", "location": {GeoJSON Point, Polygon or MultiPolygon},
//	 "dateIssued": "2025-07-01T09:25:55Z", "validFrom": "...", "validTo": "...",
//	 "description": "...", "alertSource": "https://..."}
//
// becomes a CAP-shaped iocv1.Alert with identifier = id, sender = alertSource
// (else the source id), sent = dateIssued (else validFrom), status Actual,
// msgType Alert, scope Public and one info block: category mapped to CAP
// (traffic→Transport, naturalDisaster→Geo, weather→Met, environment→Env,
// health→Health, security→Security, agriculture→Other), event = subCategory
// (else category), severity informational/low/medium/high/critical →
// Minor/Minor/Moderate/Severe/Extreme, urgency and certainty Unknown,
// effective = validFrom, expires = validTo, description, and one area whose
// geometry is location.
//
// iochub's own CAP-shaped JSON, recognised by its "identifier" member, follows
// OASIS CAP 1.2 element by element with GeoJSON for geometry ([lon, lat]):
//
//	{"identifier": "HN-2025-0001", "sender": "ioc@hanoi.gov.vn", "sent": "2025-07-01T08:00:00+07:00",
//	 "status": "Actual|Exercise|System|Test|Draft", "msgType": "Alert|Update|Cancel|Ack|Error",
//	 "scope": "Public|Restricted|Private", "references": ["sender,identifier,sent", ...], "note": "...",
//	 "info": [{"language": "vi-VN", "category": ["Met", ...], "event": "Ngập lụt",
//	           "urgency": "Immediate|Expected|Future|Past|Unknown",
//	           "severity": "Extreme|Severe|Moderate|Minor|Unknown",
//	           "certainty": "Observed|Likely|Possible|Unlikely|Unknown",
//	           "headline": "...", "description": "...", "instruction": "...", "senderName": "...",
//	           "effective": "RFC 3339", "onset": "RFC 3339", "expires": "RFC 3339",
//	           "area": [{"areaDesc": "...", "geometry": {GeoJSON}, "geocode": [{"valueName": "...", "value": "..."}]}]}],
//	 "area": [{"areaDesc": "Phường Hoàn Kiếm", "geometry": {GeoJSON Point, Polygon or MultiPolygon}}]}
//
// Required: identifier, sent, status, msgType, and for msgType Alert or Update
// at least one info with category and event. A top-level "area" list applies
// to every info that has none of its own. sender defaults to the source id,
// scope to Public, urgency, severity and certainty to Unknown. The event id is
// the identifier.
func parseAlert(f fields, env parseEnv) (*parsed, *itemError) {
	if _, ok := f.raw("identifier"); ok {
		return parseCAPJSON(f, env)
	}
	return parseFIWAREAlert(f, env)
}

var fiwareSeverity = map[string]string{
	"informational": "Minor", "low": "Minor", "medium": "Moderate", "high": "Severe", "critical": "Extreme",
}

var fiwareCategory = map[string]string{
	"traffic": "Transport", "naturalDisaster": "Geo", "weather": "Met", "environment": "Env",
	"health": "Health", "security": "Security", "agriculture": "Other",
}

func parseFIWAREAlert(f fields, env parseEnv) (*parsed, *itemError) {
	if ierr := validUTF8(f); ierr != nil {
		return nil, ierr
	}
	id, ierr := itemHead(f, "Alert")
	if ierr != nil {
		return nil, ierr
	}
	if ierr := capID("id", id); ierr != nil {
		return nil, ierr
	}
	cat, ierr := requiredStr(f, "category")
	if ierr != nil {
		return nil, ierr
	}
	capCat, known := fiwareCategory[cat]
	if !known {
		capCat = "Other"
	}
	sub, _, ierr := f.str("subCategory")
	if ierr != nil {
		return nil, ierr
	}
	severity := "Unknown"
	if s, ok, ierr := f.str("severity"); ierr != nil {
		return nil, ierr
	} else if ok {
		m, known := fiwareSeverity[s]
		if !known {
			return nil, &itemError{pointer: "severity", reason: fmt.Sprintf("%q is not one of informational, low, medium, high, critical", s)}
		}
		severity = m
	}
	sent, ok, ierr := f.timeField("dateIssued")
	if ierr != nil {
		return nil, ierr
	}
	validFrom, okFrom, ierr := f.timeField("validFrom")
	if ierr != nil {
		return nil, ierr
	}
	if !ok {
		if !okFrom {
			return nil, missing("dateIssued")
		}
		sent = validFrom
	}
	if ierr := notTooFarAhead("dateIssued", sent, env); ierr != nil {
		return nil, ierr
	}
	validTo, okTo, ierr := f.timeField("validTo")
	if ierr != nil {
		return nil, ierr
	}
	if okTo && okFrom && validTo.Before(validFrom) {
		return nil, &itemError{pointer: "validTo", reason: "validTo is before validFrom"}
	}
	desc, _, ierr := f.str("description")
	if ierr != nil {
		return nil, ierr
	}
	sender, _, ierr := f.str("alertSource")
	if ierr != nil {
		return nil, ierr
	}
	if sender != "" {
		if ierr := capID("alertSource", sender); ierr != nil {
			return nil, ierr
		}
	}
	for _, t := range [][2]string{{"category", cat}, {"subCategory", sub}, {"description", desc}} {
		if ierr := capText(t[0], t[1]); ierr != nil {
			return nil, ierr
		}
	}
	g, ierr := location(f, alertGeometryTypes...)
	if ierr != nil {
		return nil, ierr
	}
	event := sub
	if event == "" {
		event = cat
	}
	info := &iocv1.AlertInfo{Category: []string{capCat}, Event: event, Urgency: "Unknown", Severity: severity,
		Certainty: "Unknown", Headline: event, Description: desc}
	if okFrom {
		info.Effective = timestamppb.New(validFrom)
	}
	if okTo {
		info.Expires = timestamppb.New(validTo)
	}
	area := &iocv1.AlertArea{AreaDesc: event}
	if name, _, _ := f.str("name"); name != "" {
		if ierr := capText("name", name); ierr != nil {
			return nil, ierr
		}
		area.AreaDesc = name
	}
	if err := g.wkbInto(&area.Geometry); err != nil {
		return nil, &itemError{pointer: "location", reason: err.Error()}
	}
	info.Area = []*iocv1.AlertArea{area}
	m := &iocv1.Alert{Id: id, Identifier: id, Sender: sender, Sent: timestamppb.New(sent), Status: "Actual",
		MsgType: "Alert", Scope: "Public", Info: []*iocv1.AlertInfo{info}}
	if ierr := vertexLimits("location", g); ierr != nil {
		return nil, ierr
	}
	return &parsed{id: id, eventID: id, entityID: id, time: sent, shape: shapeAreas, geoms: []Geometry{g},
		geomPointer: "location.coordinates", msg: m, finish: alertFinish(m),
		areaScope: areaScope([]scopeArea{{pointer: "location", shape: &g}})}, nil
}

// alertMsgID is an alert's message id: its source, kind and identifier, and its
// sender when that is not the source. CAP makes an identifier unique per
// sender only, so another sender's alert under a stored identifier is
// another message (the aggregator dead-letters it: one sender per alert
// id, docs/alerts.md), not a duplicate to answer as stored. An alert
// without a sender is the source's own (alertFinish filled it in), as one
// that names the source. Read from the message, for every alert format
// (CAP XML, CAP JSON, FIWARE).
func alertMsgID(source string, it *parsed) string {
	id := ce.FeedMsgID(source, subjects.KindAlert, it.eventID)
	if a, ok := it.msg.(*iocv1.Alert); ok && a.GetSender() != source {
		id += "," + a.GetSender()
	}
	return id
}

func alertFinish(m *iocv1.Alert) func(o *iocv1.Origin) {
	return func(o *iocv1.Origin) {
		m.Origin = o
		if m.Sender == "" {
			m.Sender = o.GetSourceId()
		}
	}
}

func notTooFarAhead(ptr string, t time.Time, env parseEnv) *itemError {
	if err := feedcheck.EventTime("", t); err != nil { // the bound of every event, with --max-future off too
		return &itemError{pointer: ptr, reason: err.Error()}
	}
	if env.maxFuture > 0 && t.After(env.now.Add(env.maxFuture)) {
		return &itemError{pointer: ptr, reason: fmt.Sprintf("%s is %s in the future (more than %s ahead of the hub's clock)",
			t.Format(time.RFC3339), t.Sub(env.now).Round(time.Second), env.maxFuture)}
	}
	return nil
}

type capArea struct {
	AreaDesc string          `json:"areaDesc"`
	Geometry json.RawMessage `json:"geometry"`
	Geocode  []struct {
		ValueName string `json:"valueName"`
		Value     string `json:"value"`
	} `json:"geocode"`
}

type capInfo struct {
	Language    string          `json:"language"`
	Category    json.RawMessage `json:"category"`
	Event       string          `json:"event"`
	Urgency     string          `json:"urgency"`
	Severity    string          `json:"severity"`
	Certainty   string          `json:"certainty"`
	Headline    string          `json:"headline"`
	Description string          `json:"description"`
	Instruction string          `json:"instruction"`
	SenderName  string          `json:"senderName"`
	Effective   string          `json:"effective"`
	Onset       string          `json:"onset"`
	Expires     string          `json:"expires"`
	Area        []capArea       `json:"area"`
}

type capAlert struct {
	Identifier string          `json:"identifier"`
	Sender     string          `json:"sender"`
	Sent       string          `json:"sent"`
	Status     string          `json:"status"`
	MsgType    string          `json:"msgType"`
	Scope      string          `json:"scope"`
	Note       string          `json:"note"`
	References json.RawMessage `json:"references"`
	Info       []capInfo       `json:"info"`
	Area       []capArea       `json:"area"`
}

func enum(ptr, v string, allowed []string, def string) (string, *itemError) {
	if v == "" && def != "" {
		return def, nil
	}
	if v == "" {
		return "", missing(ptr)
	}
	if !slices.Contains(allowed, v) {
		return "", &itemError{pointer: ptr, reason: fmt.Sprintf("%q is not one of %s", v, strings.Join(allowed, ", "))}
	}
	return v, nil
}

// optTime reads an optional CAP date-time and the UTC offset it was written
// with (seconds east of UTC; 0 when absent).
func optTime(ptr, s string) (*timestamppb.Timestamp, int32, *itemError) {
	if s == "" {
		return nil, 0, nil
	}
	t, err := parseTime(s)
	if err != nil {
		return nil, 0, &itemError{pointer: ptr, reason: err.Error()}
	}
	return timestamppb.New(t), zoneOffset(s), nil
}

// zoneOffset is the UTC offset, in seconds, a date-time parseTime accepts was
// written with: "+07:00" is 25200, "Z" and the forms without an offset
// (read as UTC) are 0. It keeps a CAP-shaped JSON alert's offsets in the
// *_offset_seconds fields, as a CAP XML alert's are kept, so that its CAP
// form shows the times as they were sent.
func zoneOffset(s string) int32 {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			_, off := t.Zone()
			return int32(off) //nolint:gosec // G115: time.Parse bounds an offset to ±99:59, far within int32
		}
	}
	return 0
}

func parseCAPJSON(f fields, env parseEnv) (*parsed, *itemError) {
	if ierr := validUTF8(f); ierr != nil {
		return nil, ierr
	}
	b, err := json.Marshal(f.asMap())
	if err != nil {
		return nil, &itemError{reason: "re-reading alert: " + err.Error()}
	}
	var a capAlert
	if err := json.Unmarshal(b, &a); err != nil {
		ptr := ""
		var te *json.UnmarshalTypeError
		if ok := asTypeError(err, &te); ok {
			ptr = te.Field
		}
		return nil, &itemError{pointer: ptr, reason: "CAP JSON: " + jsonReason(err)}
	}
	if strings.TrimSpace(a.Identifier) == "" {
		return nil, missing("identifier")
	}
	if ierr := capID("identifier", a.Identifier); ierr != nil {
		return nil, ierr
	}
	if a.Sender != "" {
		if ierr := capID("sender", a.Sender); ierr != nil {
			return nil, ierr
		}
	}
	if ierr := capText("note", a.Note); ierr != nil {
		return nil, ierr
	}
	if len(a.Info) > cap.MaxInfos {
		return nil, &itemError{pointer: "info", reason: fmt.Sprintf("%d info blocks; the hub takes at most %d", len(a.Info), cap.MaxInfos)}
	}
	if a.Sent == "" {
		return nil, missing("sent")
	}
	sent, perr := parseTime(a.Sent)
	if perr != nil {
		return nil, &itemError{pointer: "sent", reason: perr.Error()}
	}
	if ierr := notTooFarAhead("sent", sent, env); ierr != nil {
		return nil, ierr
	}
	m := &iocv1.Alert{Id: a.Identifier, Identifier: a.Identifier, Sender: a.Sender, Sent: timestamppb.New(sent),
		SentOffsetSeconds: zoneOffset(a.Sent), Note: a.Note}
	var ierr *itemError
	if m.Status, ierr = enum("status", a.Status, cap.Statuses, ""); ierr != nil {
		return nil, ierr
	}
	if m.MsgType, ierr = enum("msgType", a.MsgType, cap.MsgTypes, ""); ierr != nil {
		return nil, ierr
	}
	if m.Scope, ierr = enum("scope", a.Scope, cap.Scopes, "Public"); ierr != nil {
		return nil, ierr
	}
	if len(a.References) > 0 && string(a.References) != "null" {
		var refs []string
		if json.Unmarshal(a.References, &refs) != nil {
			var s string
			if json.Unmarshal(a.References, &s) != nil {
				return nil, &itemError{pointer: "references", reason: "want an array of \"sender,identifier,sent\" strings"}
			}
			refs = strings.Fields(s) // CAP XML spells references space-separated
		}
		if len(refs) > cap.MaxReferences {
			return nil, &itemError{pointer: "references", reason: fmt.Sprintf("%d references; the hub takes at most %d", len(refs), cap.MaxReferences)}
		}
		for i, r := range refs {
			if len(r) > 2*cap.MaxIDBytes+32 || strings.ContainsFunc(r, isCtlOrSpace) {
				return nil, &itemError{pointer: "references[" + strconv.Itoa(i) + "]",
					reason: fmt.Sprintf("%s is not sender,identifier,sent with a sender and identifier of at most %d bytes", cap.Clip(r), cap.MaxIDBytes)}
			}
		}
		m.References = refs
	}
	if len(a.Info) == 0 && (m.MsgType == "Alert" || m.MsgType == "Update") {
		return nil, &itemError{pointer: "info", reason: "an Alert or Update needs at least one info block"}
	}
	var geoms []Geometry
	var scope []scopeArea
	// Identical geometries (the same area in each language, or repeated)
	// are drawn once for the hub's spatial join; vertices counts distinct ones.
	seen := map[string]bool{}
	vertices := 0
	areas := func(ptr string, as []capArea) ([]*iocv1.AlertArea, *itemError) {
		if len(as) > cap.MaxAreas {
			return nil, &itemError{pointer: ptr, reason: fmt.Sprintf("%d areas; the hub takes at most %d in one info", len(as), cap.MaxAreas)}
		}
		var out []*iocv1.AlertArea
		for i, ca := range as {
			ap := ptr + "[" + strconv.Itoa(i) + "]"
			if ierr := capText(ap+".areaDesc", ca.AreaDesc); ierr != nil {
				return nil, ierr
			}
			if len(ca.Geocode) > cap.MaxShapes {
				return nil, &itemError{pointer: ap + ".geocode", reason: fmt.Sprintf("%d geocodes; the hub takes at most %d in one area", len(ca.Geocode), cap.MaxShapes)}
			}
			area := &iocv1.AlertArea{AreaDesc: ca.AreaDesc}
			for k, gc := range ca.Geocode {
				gp := ap + ".geocode[" + strconv.Itoa(k) + "]"
				if ierr := capText(gp+".valueName", gc.ValueName); ierr != nil {
					return nil, ierr
				}
				if ierr := capText(gp+".value", gc.Value); ierr != nil {
					return nil, ierr
				}
				area.Geocode = append(area.Geocode, &iocv1.Geocode{ValueName: gc.ValueName, Value: gc.Value})
			}
			sa := scopeArea{pointer: ap, geocodes: area.Geocode}
			if len(ca.Geometry) > 0 && string(ca.Geometry) != "null" {
				g, err := ParseGeometry(ca.Geometry, ap+".geometry", alertGeometryTypes...)
				if err != nil {
					var ge *geometryError
					if !errors.As(err, &ge) {
						return nil, &itemError{pointer: ap + ".geometry", reason: err.Error()}
					}
					return nil, &itemError{pointer: ge.pointer, reason: ge.reason}
				}
				if ierr := vertexLimits(ap+".geometry", g); ierr != nil {
					return nil, ierr
				}
				if err := g.wkbInto(&area.Geometry); err != nil {
					return nil, &itemError{pointer: ap + ".geometry", reason: err.Error()}
				}
				if key := string(area.GetGeometry().GetWkb()); seen[key] {
					area.Geometry = nil // drawn already by an earlier area
				} else {
					seen[key] = true
					vertices += g.numOuterVertices()
					if vertices > cap.MaxVertices {
						return nil, &itemError{pointer: ap + ".geometry", reason: fmt.Sprintf("the alert's distinct geometries have more than %d vertices together; the hub takes at most %d", cap.MaxVertices, cap.MaxVertices)}
					}
					geoms = append(geoms, g)
					sa.shape = &g
				}
			} else if len(ca.Geocode) == 0 {
				return nil, &itemError{pointer: ap, reason: "an area needs a geometry or a geocode"}
			}
			scope = append(scope, sa)
			out = append(out, area)
		}
		return out, nil
	}
	topAreas, ierr := areas("area", a.Area)
	if ierr != nil {
		return nil, ierr
	}
	for i, in := range a.Info {
		ip := "info[" + strconv.Itoa(i) + "]"
		for _, t := range [][2]string{{"language", in.Language}, {"event", in.Event}, {"headline", in.Headline},
			{"description", in.Description}, {"instruction", in.Instruction}, {"senderName", in.SenderName}} {
			if ierr := capText(ip+"."+t[0], t[1]); ierr != nil {
				return nil, ierr
			}
		}
		info := &iocv1.AlertInfo{Language: in.Language, Event: in.Event, Headline: in.Headline, Description: in.Description,
			Instruction: in.Instruction, SenderName: in.SenderName}
		if len(in.Category) == 0 || string(in.Category) == "null" {
			return nil, missing(ip + ".category")
		}
		var cats []string
		if json.Unmarshal(in.Category, &cats) != nil {
			var c string
			if json.Unmarshal(in.Category, &c) != nil {
				return nil, &itemError{pointer: ip + ".category", reason: "want an array of CAP categories"}
			}
			cats = []string{c}
		}
		if len(cats) == 0 {
			return nil, missing(ip + ".category")
		}
		if len(cats) > cap.MaxShapes {
			return nil, &itemError{pointer: ip + ".category", reason: fmt.Sprintf("%d categories; the hub takes at most %d", len(cats), cap.MaxShapes)}
		}
		for j, c := range cats {
			if _, ierr := enum(ip+".category["+strconv.Itoa(j)+"]", c, cap.Categories, ""); ierr != nil {
				return nil, ierr
			}
		}
		info.Category = cats
		if strings.TrimSpace(in.Event) == "" {
			return nil, missing(ip + ".event")
		}
		if info.Urgency, ierr = enum(ip+".urgency", in.Urgency, cap.Urgencies, "Unknown"); ierr != nil {
			return nil, ierr
		}
		if info.Severity, ierr = enum(ip+".severity", in.Severity, cap.Severities, "Unknown"); ierr != nil {
			return nil, ierr
		}
		if info.Certainty, ierr = enum(ip+".certainty", in.Certainty, cap.Certainties, "Unknown"); ierr != nil {
			return nil, ierr
		}
		if info.Effective, info.EffectiveOffsetSeconds, ierr = optTime(ip+".effective", in.Effective); ierr != nil {
			return nil, ierr
		}
		if info.Onset, info.OnsetOffsetSeconds, ierr = optTime(ip+".onset", in.Onset); ierr != nil {
			return nil, ierr
		}
		if info.Expires, info.ExpiresOffsetSeconds, ierr = optTime(ip+".expires", in.Expires); ierr != nil {
			return nil, ierr
		}
		if info.Area, ierr = areas(ip+".area", in.Area); ierr != nil {
			return nil, ierr
		}
		if len(info.Area) == 0 {
			info.Area = topAreas
		}
		m.Info = append(m.Info, info)
	}
	return &parsed{id: a.Identifier, eventID: a.Identifier, entityID: a.Identifier, time: sent, shape: shapeAreas,
		geoms: geoms, geomPointer: "area", msg: m, finish: alertFinish(m), areaScope: areaScope(scope)}, nil
}

// validUTF8 refuses an item with a member that is not valid UTF-8
// (encoding/json would silently turn the bad bytes into U+FFFD); of several,
// it names the first in name order, however the members came.
func validUTF8(f fields) *itemError {
	var bad *itemError
	for name, raw := range f.all() {
		if !utf8.Valid(raw) && (bad == nil || name < bad.pointer) {
			bad = &itemError{pointer: name, reason: "the value is not valid UTF-8"}
		}
	}
	return bad
}

// capText checks a free-text member of an alert: at most cap.MaxTextBytes,
// no NUL character.
func capText(ptr, s string) *itemError {
	switch {
	case len(s) > cap.MaxTextBytes:
		return &itemError{pointer: ptr, reason: fmt.Sprintf("%d bytes of text; the hub takes at most %d", len(s), cap.MaxTextBytes)}
	case strings.IndexByte(s, 0) >= 0:
		return &itemError{pointer: ptr, reason: "the text holds a NUL character (U+0000)"}
	}
	return nil
}

// capID checks an identifier or sender (it becomes the event id, a NATS
// header and a subject): at most cap.MaxIDBytes, and as CAP wants no spaces,
// commas, < or &, nor control characters.
func capID(ptr, s string) *itemError {
	switch {
	case len(s) > cap.MaxIDBytes:
		return &itemError{pointer: ptr, reason: fmt.Sprintf("%s is %d bytes; the hub takes at most %d", cap.Clip(s), len(s), cap.MaxIDBytes)}
	case strings.ContainsFunc(s, func(r rune) bool { return isCtlOrSpace(r) || r == ',' || r == '<' || r == '&' }):
		return &itemError{pointer: ptr, reason: fmt.Sprintf("%s must not contain spaces, commas, < or &, nor control characters", cap.Clip(s))}
	}
	return nil
}

func isCtlOrSpace(r rune) bool { return r <= ' ' || r == 0x7f || unicode.IsSpace(r) }

// vertexLimits applies cap.MaxPolygonVertices to each ring of an area's
// geometry and cap.MaxVertices to the whole.
func vertexLimits(ptr string, g Geometry) *itemError {
	total := 0
	for _, p := range g.Polys {
		for _, r := range p {
			if n := len(r) / 2; n > cap.MaxPolygonVertices {
				return &itemError{pointer: ptr, reason: fmt.Sprintf("a ring has %d positions; the hub takes at most %d", n, cap.MaxPolygonVertices)}
			}
			total += len(r) / 2
		}
	}
	if total > cap.MaxVertices {
		return &itemError{pointer: ptr, reason: fmt.Sprintf("the geometry has %d positions; the hub takes at most %d", total, cap.MaxVertices)}
	}
	return nil
}
