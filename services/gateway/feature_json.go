package gateway

import (
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/iochub/iochub/internal/aqi"
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
	b = appendJSONText(b, id)
	b = append(b, `,"geometry":`...)
	b = append(b, geometry...)
	b = append(b, `,"properties":{"layer":`...)
	b = appendJSONText(b, p.Layer)
	b = append(b, `,"entityId":`...)
	b = appendJSONText(b, p.EntityID)
	b = append(b, `,"name":`...)
	b = appendJSONText(b, p.Name)
	b = append(b, `,"province":`...)
	b = appendJSONText(b, p.Province)
	b = append(b, `,"unit":`...)
	b = appendJSONText(b, p.Unit)
	if p.UpdatedAt != "" {
		b = append(b, `,"updatedAt":`...)
		b = appendJSONText(b, p.UpdatedAt)
	}
	if o := p.Observation; o != nil {
		b = append(b, `,"observation":{"id":`...)
		b = appendJSONText(b, o.ID)
		if o.Time != "" {
			b = append(b, `,"time":`...)
			b = appendJSONText(b, o.Time)
		}
		if len(o.Values) > 0 {
			var ok bool
			if b, ok = appendJSONValues(append(b, `,"values":`...), o.Values); !ok {
				return b[:start], false
			}
		}
		b = append(b, '}')
	}
	if p.AQI != nil {
		b = appendAQIJSON(append(b, `,"aqi":`...), p.AQI)
	}
	if p.WaterAlarm != nil {
		b = strconv.AppendInt(append(b, `,"waterAlarm":`...), int64(*p.WaterAlarm), 10)
	}
	return append(b, "}}"...), true
}

// appendJSONValues appends an observation's values, keys sorted as
// encoding/json sorts them; false for a value that is not a finite float64,
// an int32, a bool or a string.
func appendJSONValues(b []byte, values map[string]any) ([]byte, bool) {
	var arr [32]string
	keys := arr[:0]
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendJSONText(b, k), ':')
		switch v := values[k].(type) {
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return b, false
			}
			b = appendJSONNumber(b, v)
		case int32:
			b = strconv.AppendInt(b, int64(v), 10)
		case bool:
			b = strconv.AppendBool(b, v)
		case string:
			b = appendJSONText(b, v)
		default:
			return b, false
		}
	}
	return append(b, '}'), true
}

// appendAQIJSON appends a as encoding/json writes aqi.JSON (its members
// omitted when empty, in the struct's order; aqi.JSONOf leaves out the
// sub-indices that are not finite).
func appendAQIJSON(b []byte, a *aqi.JSON) []byte {
	b = append(b, '{')
	n := len(b)
	member := func(name string) {
		if len(b) > n {
			b = append(b, ',')
		}
		b = append(append(append(b, '"'), name...), `":`...)
	}
	text := func(name, v string) {
		if v != "" {
			member(name)
			b = appendJSONText(b, v)
		}
	}
	if a.Hourly != nil {
		member("hourly")
		b = strconv.AppendInt(b, int64(*a.Hourly), 10)
	}
	text("dominant", a.Dominant)
	if a.Band != 0 {
		member("band")
		b = strconv.AppendInt(b, int64(a.Band), 10)
	}
	text("bandVi", a.BandVI)
	text("bandEn", a.BandEN)
	text("color", a.Color)
	text("hour", a.Hour)
	text("reason", a.Reason)
	if a.Daily != nil {
		member("daily")
		b = strconv.AppendInt(b, int64(*a.Daily), 10)
	}
	if len(a.SubIndices) > 0 {
		member("subIndices")
		keys := make([]string, 0, len(a.SubIndices))
		for k := range a.SubIndices {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONNumber(append(appendJSONText(b, k), ':'), a.SubIndices[k])
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendJSONNumber appends the finite f as encoding/json writes a float64:
// the shortest decimal that reads back as f, in exponent form below 1e-6
// and from 1e21 on, the exponent without a leading zero.
func appendJSONNumber(b []byte, f float64) []byte {
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' { // e-07 → e-7
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONText appends s as a JSON string as encoding/json writes it with
// HTML left unescaped: '"', '\\' and the control characters escaped (\b,
// \f, \n, \r, \t by name), invalid UTF-8 as U+FFFD, U+2028 and U+2029
// escaped (JavaScript reads them as line ends).
func appendJSONText(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(append(b, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(append(b, s[start:]...), '"')
}
