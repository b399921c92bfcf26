package gateway

import (
	"strconv"

	"github.com/iochub/iochub/internal/jsonw"
)

// appendFeatureJSON appends the Feature of id, geometry (compact JSON) and p
// byte for byte as encoding/json writes featureJSON with HTML left
// unescaped, without its reflection: this runs once per STATE message on
// the gateway's hub goroutine. It reports false, with b as it was, when p
// holds what it does not write (an alert, a report, a value of a type the
// observations do not use), for encoding/json to write.
// FuzzFeatureJSON holds it to encoding/json's bytes.
func appendFeatureJSON(b []byte, id string, geometry []byte, p *propertiesJSON) ([]byte, bool) {
	if p.Alert != nil || p.Report != nil {
		return b, false
	}
	start := len(b)
	b = append(b, `{"type":"Feature","id":`...)
	b = jsonw.AppendString(b, id)
	b = append(b, `,"geometry":`...)
	b = append(b, geometry...)
	b = append(b, `,"properties":{"layer":`...)
	b = jsonw.AppendString(b, p.Layer)
	b = append(b, `,"entityId":`...)
	b = jsonw.AppendString(b, p.EntityID)
	b = append(b, `,"name":`...)
	b = jsonw.AppendString(b, p.Name)
	b = append(b, `,"province":`...)
	b = jsonw.AppendString(b, p.Province)
	b = append(b, `,"unit":`...)
	b = jsonw.AppendString(b, p.Unit)
	if p.UpdatedAt != "" {
		b = append(b, `,"updatedAt":`...)
		b = jsonw.AppendString(b, p.UpdatedAt)
	}
	if o := p.Observation; o != nil {
		b = append(b, `,"observation":{"id":`...)
		b = jsonw.AppendString(b, o.ID)
		if o.Time != "" {
			b = append(b, `,"time":`...)
			b = jsonw.AppendString(b, o.Time)
		}
		if len(o.Values) > 0 {
			var ok bool
			if b, ok = jsonw.AppendValues(append(b, `,"values":`...), o.Values); !ok {
				return b[:start], false
			}
		}
		b = append(b, '}')
	}
	if p.AQI != nil {
		b = p.AQI.AppendJSON(append(b, `,"aqi":`...))
	}
	if p.WaterAlarm != nil {
		b = strconv.AppendInt(append(b, `,"waterAlarm":`...), int64(*p.WaterAlarm), 10)
	}
	return append(b, "}}"...), true
}
