// Package capconv converts OASIS CAP 1.2 alerts (internal/cap) to and from
// the ioc.v1.Alert event, without loss: every CAP element has a field in
// the proto, date-times keep the offset they were written with, polygons and
// circles are kept as given (with their CAP text form) beside the WKB
// geometry computed from them, and an XML-DSig signature is kept as bytes.
// ToProto then FromProto gives back an equal cap.Alert.
package capconv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/cap"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"

	"github.com/iochub/iochub/internal/wkbx"
)

// ToProto converts a CAP alert into the event the ingest publishes. The
// event id (Alert.id) is the CAP identifier; Origin is left for the caller.
// Each area's geometry is cap.AreaGeometry as WKB (little endian, lon/lat);
// an area without a shape (geocodes only) has no geometry and no_geometry set.
func ToProto(a cap.Alert) (*iocv1.Alert, error) {
	m := &iocv1.Alert{
		Id:                a.Identifier,
		Identifier:        a.Identifier,
		Sender:            a.Sender,
		Status:            a.Status,
		MsgType:           a.MsgType,
		Scope:             a.Scope,
		Note:              a.Note,
		Source:            a.Source,
		Restriction:       a.Restriction,
		Addresses:         a.Addresses,
		Code:              cloneStrings(a.Codes),
		Incidents:         a.Incidents,
		References:        strings.Fields(a.References),
		Signature:         cloneBytes(a.Signature),
		Sent:              stamp(a.Sent),
		SentOffsetSeconds: offset(a.Sent),
	}
	for i := range a.Infos {
		in := &a.Infos[i]
		pi := &iocv1.AlertInfo{
			Language:               in.Language,
			Category:               cloneStrings(in.Categories),
			Event:                  in.Event,
			ResponseType:           cloneStrings(in.ResponseTypes),
			Urgency:                in.Urgency,
			Severity:               in.Severity,
			Certainty:              in.Certainty,
			Audience:               in.Audience,
			EventCode:              namedValues(in.EventCodes),
			Effective:              stamp(in.Effective),
			EffectiveOffsetSeconds: offset(in.Effective),
			Onset:                  stamp(in.Onset),
			OnsetOffsetSeconds:     offset(in.Onset),
			Expires:                stamp(in.Expires),
			ExpiresOffsetSeconds:   offset(in.Expires),
			SenderName:             in.SenderName,
			Headline:               in.Headline,
			Description:            in.Description,
			Instruction:            in.Instruction,
			Web:                    in.Web,
			Contact:                in.Contact,
			Parameter:              namedValues(in.Parameters),
		}
		for _, r := range in.Resources {
			pr := &iocv1.AlertResource{ResourceDesc: r.ResourceDesc, MimeType: r.MimeType, Uri: r.URI,
				DerefUri: r.DerefURI, Digest: r.Digest}
			if r.Size != nil {
				s := *r.Size
				pr.Size = &s
			}
			pi.Resource = append(pi.Resource, pr)
		}
		for j := range in.Areas {
			pa, err := areaToProto(&in.Areas[j])
			if err != nil {
				return nil, fmt.Errorf("converting CAP alert %q info[%d] area[%d]: %w", a.Identifier, i, j, err)
			}
			pi.Area = append(pi.Area, pa)
		}
		m.Info = append(m.Info, pi)
	}
	return m, nil
}

func areaToProto(a *cap.Area) (*iocv1.AlertArea, error) {
	pa := &iocv1.AlertArea{AreaDesc: a.AreaDesc}
	for _, gc := range a.Geocodes {
		pa.Geocode = append(pa.Geocode, &iocv1.Geocode{ValueName: gc.ValueName, Value: gc.Value})
	}
	for _, pg := range a.Polygons {
		ll := make([]float64, 0, 2*len(pg))
		for _, pt := range pg {
			ll = append(ll, pt.Lat, pt.Lon)
		}
		pa.Polygon = append(pa.Polygon, &iocv1.AlertPolygon{LatLon: ll, Cap: pg.String()})
	}
	for _, c := range a.Circles {
		pa.Circle = append(pa.Circle, &iocv1.AlertCircle{Lat: c.Center.Lat, Lon: c.Center.Lon, RadiusKm: c.Radius, Cap: c.String()})
	}
	if a.Altitude != nil {
		v := *a.Altitude
		pa.Altitude = &v
	}
	if a.Ceiling != nil {
		v := *a.Ceiling
		pa.Ceiling = &v
	}
	g := cap.AreaGeometry(*a)
	if g == nil {
		pa.NoGeometry = true
		return pa, nil
	}
	b, err := wkb.Marshal(g, binary.LittleEndian)
	if err != nil {
		return nil, fmt.Errorf("encoding WKB: %w", err)
	}
	pa.Geometry = &iocv1.Geometry{Wkb: b}
	return pa, nil
}

// FromProto converts an alert event back into a CAP alert; for an event made
// by ToProto the result equals the original. Events that came in another
// form (FIWARE or iochub JSON) lack CAP's polygon text: an area with a
// geometry but no polygon or circle gets one CAP polygon per outer ring
// (CAP has no holes) and a Point becomes a circle of radius 0; date-times
// without an offset are written in UTC and cut to whole seconds. The result
// is not validated: cap.Marshal does that.
func FromProto(m *iocv1.Alert) (cap.Alert, error) {
	if m == nil {
		return cap.Alert{}, fmt.Errorf("converting alert: %w", ErrNoAlert)
	}
	a := cap.Alert{
		Identifier:  m.GetIdentifier(),
		Sender:      m.GetSender(),
		Sent:        timeOf(m.GetSent(), m.GetSentOffsetSeconds()),
		Status:      m.GetStatus(),
		MsgType:     m.GetMsgType(),
		Source:      m.GetSource(),
		Scope:       m.GetScope(),
		Restriction: m.GetRestriction(),
		Addresses:   m.GetAddresses(),
		Codes:       cloneStrings(m.GetCode()),
		Note:        m.GetNote(),
		References:  strings.Join(m.GetReferences(), " "),
		Incidents:   m.GetIncidents(),
		Signature:   cloneBytes(m.GetSignature()),
	}
	for i, pi := range m.GetInfo() {
		in := cap.Info{
			Language:      pi.GetLanguage(),
			Categories:    cloneStrings(pi.GetCategory()),
			Event:         pi.GetEvent(),
			ResponseTypes: cloneStrings(pi.GetResponseType()),
			Urgency:       pi.GetUrgency(),
			Severity:      pi.GetSeverity(),
			Certainty:     pi.GetCertainty(),
			Audience:      pi.GetAudience(),
			EventCodes:    capValues(pi.GetEventCode()),
			Effective:     timeOf(pi.GetEffective(), pi.GetEffectiveOffsetSeconds()),
			Onset:         timeOf(pi.GetOnset(), pi.GetOnsetOffsetSeconds()),
			Expires:       timeOf(pi.GetExpires(), pi.GetExpiresOffsetSeconds()),
			SenderName:    pi.GetSenderName(),
			Headline:      pi.GetHeadline(),
			Description:   pi.GetDescription(),
			Instruction:   pi.GetInstruction(),
			Web:           pi.GetWeb(),
			Contact:       pi.GetContact(),
			Parameters:    capValues(pi.GetParameter()),
		}
		for _, pr := range pi.GetResource() {
			r := cap.Resource{ResourceDesc: pr.GetResourceDesc(), MimeType: pr.GetMimeType(), URI: pr.GetUri(),
				DerefURI: pr.GetDerefUri(), Digest: pr.GetDigest()}
			if pr.Size != nil {
				s := pr.GetSize()
				r.Size = &s
			}
			in.Resources = append(in.Resources, r)
		}
		for j, pa := range pi.GetArea() {
			ar, err := areaFromProto(pa)
			if err != nil {
				return cap.Alert{}, fmt.Errorf("converting alert %q info[%d] area[%d]: %w", m.GetIdentifier(), i, j, err)
			}
			in.Areas = append(in.Areas, ar)
		}
		a.Infos = append(a.Infos, in)
	}
	return a, nil
}

func areaFromProto(pa *iocv1.AlertArea) (cap.Area, error) {
	a := cap.Area{AreaDesc: pa.GetAreaDesc()}
	for k, p := range pa.GetPolygon() {
		ll := p.GetLatLon()
		if len(ll)%2 != 0 {
			return cap.Area{}, fmt.Errorf("polygon[%d] has %d coordinates; want lat,lon pairs: %w", k, len(ll), ErrBadArea)
		}
		pg := make(cap.Polygon, 0, len(ll)/2)
		for i := 0; i+1 < len(ll); i += 2 {
			pg = append(pg, cap.Point{Lat: ll[i], Lon: ll[i+1]})
		}
		a.Polygons = append(a.Polygons, pg)
	}
	for _, c := range pa.GetCircle() {
		a.Circles = append(a.Circles, cap.Circle{Center: cap.Point{Lat: c.GetLat(), Lon: c.GetLon()}, Radius: c.GetRadiusKm()})
	}
	for _, gc := range pa.GetGeocode() {
		a.Geocodes = append(a.Geocodes, cap.NamedValue{ValueName: gc.GetValueName(), Value: gc.GetValue()})
	}
	if pa.Altitude != nil {
		v := pa.GetAltitude()
		a.Altitude = &v
	}
	if pa.Ceiling != nil {
		v := pa.GetCeiling()
		a.Ceiling = &v
	}
	if len(a.Polygons) == 0 && len(a.Circles) == 0 && len(pa.GetGeometry().GetWkb()) > 0 {
		if err := shapesFromWKB(&a, pa.GetGeometry().GetWkb()); err != nil {
			return cap.Area{}, err
		}
	}
	return a, nil
}

// shapesFromWKB writes a geometry that came without CAP shapes as CAP polygons
// (outer rings, lat,lon) or, for a Point, a circle of radius 0.
func shapesFromWKB(a *cap.Area, b []byte) error {
	g, err := wkbx.Unmarshal(b)
	if err != nil {
		return fmt.Errorf("decoding area geometry: %w", errors.Join(err, ErrBadArea))
	}
	ring := func(p *geom.Polygon) {
		if p.NumLinearRings() == 0 {
			return
		}
		r := p.LinearRing(0)
		pg := make(cap.Polygon, 0, r.NumCoords())
		for i := range r.NumCoords() {
			c := r.Coord(i)
			pg = append(pg, cap.Point{Lat: c.Y(), Lon: c.X()})
		}
		a.Polygons = append(a.Polygons, pg)
	}
	switch t := g.(type) {
	case *geom.Point:
		a.Circles = append(a.Circles, cap.Circle{Center: cap.Point{Lat: t.Y(), Lon: t.X()}})
	case *geom.Polygon:
		ring(t)
	case *geom.MultiPolygon:
		for i := range t.NumPolygons() {
			ring(t.Polygon(i))
		}
	default:
		return fmt.Errorf("area geometry is a %T; want a Point, Polygon or MultiPolygon: %w", g, ErrBadArea)
	}
	return nil
}

func stamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func offset(t time.Time) int32 {
	if t.IsZero() {
		return 0
	}
	_, off := t.Zone()
	return int32(off)
}

// timeOf rebuilds a CAP date-time: the instant in a zone of the given
// offset, as cap.Parse makes them, cut to whole seconds.
func timeOf(ts *timestamppb.Timestamp, off int32) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return time.Unix(ts.GetSeconds(), 0).In(time.FixedZone("", int(off)))
}

func namedValues(nvs []cap.NamedValue) []*iocv1.NamedValue {
	var out []*iocv1.NamedValue
	for _, nv := range nvs {
		out = append(out, &iocv1.NamedValue{ValueName: nv.ValueName, Value: nv.Value})
	}
	return out
}

func capValues(nvs []*iocv1.NamedValue) []cap.NamedValue {
	var out []cap.NamedValue
	for _, nv := range nvs {
		out = append(out, cap.NamedValue{ValueName: nv.GetValueName(), Value: nv.GetValue()})
	}
	return out
}

func cloneStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
