package rules

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkb"
	"google.golang.org/protobuf/types/known/timestamppb"

	iocv1 "github.com/iochub/iochub/proto/ioc/v1"

	"github.com/iochub/iochub/internal/alertrule"
	"github.com/iochub/iochub/internal/wkbx"
)

// ParameterRuleID is the CAP parameter (valueName) that names the rule which
// raised an alert, in each info block.
const ParameterRuleID = "iochub:ruleId"

// lineBuffer is how far, in degrees (about 30 m), the area of an alert on a
// road segment reaches around the segment's line.
const lineBuffer = 0.0003

// capTime is the CAP 1.2 date-time form (an offset, never "Z").
const capTime = "2006-01-02T15:04:05-07:00"

// Reference is the CAP reference to the alert raised for t: "sender,identifier,sent".
func Reference(identifier string, sent time.Time) string {
	return alertrule.SourceID + "," + identifier + "," + sent.UTC().Format(capTime)
}

// text is the wording of a kind of rule in one language.
type text struct {
	event, raised, cleared string
}

var wording = map[string]map[string]text{
	alertrule.KindAQIBand: {
		"vi-VN": {"Chất lượng không khí xấu", "Chỉ số VN_AQI tại %s ở mức %s (%s) từ %s", "Chất lượng không khí tại %s đã cải thiện"},
		"en-US": {"Poor air quality", "VN_AQI at %s is in band %s (%s) since %s", "Air quality at %s has improved"},
	},
	alertrule.KindCongestion: {
		"vi-VN": {"Ùn tắc giao thông", "Tốc độ trung bình trên %s là %s km/h (%s) từ %s", "Giao thông trên %s đã thông thoáng"},
		"en-US": {"Traffic congestion", "Average speed on %s is %s km/h (%s) since %s", "Traffic on %s flows again"},
	},
	alertrule.KindWaterLevel: {
		"vi-VN": {"Mực nước vượt mức báo động", "Mực nước tại %s ở báo động %s (%s) từ %s", "Mực nước tại %s đã xuống dưới mức báo động"},
		"en-US": {"Water level above alarm level", "Water level at %s is at alarm level %s (%s) since %s", "Water level at %s is below the alarm level again"},
	},
}

// silence is the wording of the Cancel of an alert whose entity went silent,
// in each language: headline, description, instruction.
var silence = map[string][3]string{
	"vi-VN": {"Mất dữ liệu từ %s", "Không nhận được dữ liệu từ %s từ %s; cảnh báo của quy tắc %s được hủy.",
		"Hãy kiểm tra trạm đo và các nguồn khác trước khi coi là đã hết nguy hiểm."},
	"en-US": {"No data from %s", "No data from %s since %s; the alert of rule %s is cancelled.",
		"Check the station and other sources before treating the danger as over."},
}

var categories = map[string]string{alertrule.KindAQIBand: "Env", alertrule.KindCongestion: "Transport", alertrule.KindWaterLevel: "Met"}

// Alert builds the CAP alert of a transition: for Raise an Alert with the
// entity's geometry as its area, for Cancel a Cancel that refers to it.
// receivedAt is the wall-clock time the engine publishes it.
func Alert(t Transition, receivedAt time.Time) (*iocv1.Alert, error) {
	a := &iocv1.Alert{
		Identifier: t.Identifier,
		Sender:     alertrule.SourceID,
		Sent:       timestamppb.New(t.At),
		Status:     "Actual",
		MsgType:    "Alert",
		Scope:      "Public",
		Origin:     &iocv1.Origin{SourceId: alertrule.SourceID, Province: t.Province, Unit: t.Unit, ReceivedAt: timestamppb.New(receivedAt)},
	}
	name := entityName(t)
	value, threshold := values(t)
	var area []*iocv1.AlertArea
	switch t.Action {
	case Raise:
		a.Id = t.Identifier
		if t.State != nil {
			g, err := areaOf(t.State)
			if err != nil {
				return nil, fmt.Errorf("area of %s: %w", t.Entity, err)
			}
			if g != nil {
				area = []*iocv1.AlertArea{{AreaDesc: name, Geometry: g}}
			}
		}
	case Cancel:
		a.Id = CancelID(t.Identifier)
		a.Identifier = a.Id
		a.MsgType = "Cancel"
		a.References = []string{Reference(t.Identifier, t.RaisedAt)}
		a.Note = "condition of rule " + t.Rule.ID + " no longer holds"
		if !t.NoDataSince.IsZero() {
			a.Note = fmt.Sprintf("no data since %s (last state received %s); rule %s cancels its alert after %s without data",
				t.NoDataSince.UTC().Format(capTime), t.LastReceived.UTC().Format(capTime), t.Rule.ID, t.Rule.StaleAfter())
		}
	default:
		return nil, fmt.Errorf("building the alert of transition %v: %w", t.Action, ErrNotRuleAlert)
	}
	for _, lang := range []string{"vi-VN", "en-US"} {
		w := wording[t.Rule.Kind][lang]
		in := &iocv1.AlertInfo{
			Language:   lang,
			Category:   []string{categoryOf(t.Rule.Kind)},
			Event:      w.event,
			Urgency:    "Immediate",
			Severity:   t.Rule.Severity,
			Certainty:  "Observed",
			SenderName: "iochub",
			Effective:  timestamppb.New(t.At),
			Onset:      timestamppb.New(t.Since),
			Area:       area,
			Parameter: []*iocv1.NamedValue{
				{ValueName: ParameterRuleID, Value: t.Rule.ID},
				{ValueName: "iochub:entity", Value: t.Entity},
				{ValueName: "iochub:threshold", Value: threshold},
			},
		}
		if in.Severity == "" {
			in.Severity = "Unknown"
		}
		if in.Event == "" {
			in.Event = "Rule " + t.Rule.ID
		}
		switch t.Action {
		case Raise:
			in.Headline = w.event + ": " + name
			in.Description = fmt.Sprintf(w.raised, name, value, threshold, t.Since.UTC().Format(capTime))
		case Cancel:
			in.Headline = fmt.Sprintf(w.cleared, name)
			in.Description = in.Headline
			in.ResponseType = []string{"AllClear"}
			if !t.NoDataSince.IsZero() {
				// Silence is not an all clear: the danger may last.
				s := silence[lang]
				in.Headline = fmt.Sprintf(s[0], name)
				in.Description = fmt.Sprintf(s[1], name, t.NoDataSince.UTC().Format(capTime), t.Rule.ID)
				in.Instruction = s[2]
				in.ResponseType = []string{"Monitor"}
			}
			// A Cancel is not itself an alert in force: it expires when sent.
			in.Expires = timestamppb.New(t.At)
		}
		a.Info = append(a.Info, in)
	}
	return a, nil
}

// CancelID is the identifier (and event id) of the Cancel of the alert identifier.
func CancelID(identifier string) string { return identifier + ":cancel" }

func categoryOf(kind string) string {
	if c, ok := categories[kind]; ok {
		return c
	}
	return "Other"
}

func entityName(t Transition) string {
	var name string
	if st := t.State; st != nil {
		switch {
		case st.GetTraffic() != nil:
			name = st.GetTraffic().GetName()
		case st.GetAir() != nil:
			name = st.GetAir().GetName()
		case st.GetWater() != nil:
			name = st.GetWater().GetName()
		}
	}
	if name == "" {
		return t.Entity
	}
	return name + " (" + t.Entity + ")"
}

// values returns the observed value and the rule's threshold, as text.
func values(t Transition) (value, threshold string) {
	st := t.State
	switch t.Rule.Kind {
	case alertrule.KindAQIBand:
		threshold = "≥ " + strconv.Itoa(t.Rule.Params.MinBand)
		if b := st.GetAqi().GetBand(); b > 0 {
			value = strconv.Itoa(int(b))
		}
	case alertrule.KindCongestion:
		threshold = "< " + strconv.FormatFloat(t.Rule.Params.MaxSpeed, 'f', -1, 64)
		if v := st.GetTraffic(); v != nil && v.AverageVehicleSpeed != nil {
			value = strconv.FormatFloat(*v.AverageVehicleSpeed, 'f', 1, 64)
		}
	case alertrule.KindWaterLevel:
		threshold = "≥ " + strconv.Itoa(t.Rule.Params.MinAlarm)
		if st != nil {
			value = strconv.Itoa(int(st.GetWaterAlarm()))
		}
	}
	if value == "" {
		value = "?"
	}
	return value, threshold
}

// areaOf is the area of an alert about an entity: a station's Point as it
// is, a road segment's line buffered into a Polygon (its bounding box widened
// by lineBuffer), nothing when the state has no geometry.
func areaOf(st *iocv1.EntityState) (*iocv1.Geometry, error) {
	var raw []byte
	switch {
	case st.GetTraffic() != nil:
		raw = st.GetTraffic().GetLocation().GetWkb()
	case st.GetAir() != nil:
		raw = st.GetAir().GetLocation().GetWkb()
	case st.GetWater() != nil:
		raw = st.GetWater().GetLocation().GetWkb()
	}
	if len(raw) == 0 {
		return nil, nil
	}
	g, err := wkbx.Unmarshal(raw)
	if err != nil {
		return nil, fmt.Errorf("decoding WKB: %w", err)
	}
	switch v := g.(type) {
	case *geom.Point:
		return &iocv1.Geometry{Wkb: raw}, nil
	case *geom.LineString, *geom.MultiLineString, *geom.Polygon, *geom.MultiPolygon:
		b := v.Bounds()
		minX, minY := b.Min(0)-lineBuffer, b.Min(1)-lineBuffer
		maxX, maxY := b.Max(0)+lineBuffer, b.Max(1)+lineBuffer
		if math.IsNaN(minX) || math.IsInf(minX, 0) || math.IsNaN(maxY) || math.IsInf(maxY, 0) {
			return nil, fmt.Errorf("geometry has no finite bounds")
		}
		// Counter-clockwise outer ring, as RFC 7946 wants.
		p, err := geom.NewPolygon(geom.XY).SetCoords([][]geom.Coord{{
			{minX, minY}, {maxX, minY}, {maxX, maxY}, {minX, maxY}, {minX, minY},
		}})
		if err != nil {
			return nil, fmt.Errorf("buffering the line: %w", err)
		}
		out, err := wkb.Marshal(p, wkb.NDR)
		if err != nil {
			return nil, fmt.Errorf("encoding WKB: %w", err)
		}
		return &iocv1.Geometry{Wkb: out}, nil
	}
	return nil, fmt.Errorf("geometry is a %T; want a Point or a LineString", g)
}
