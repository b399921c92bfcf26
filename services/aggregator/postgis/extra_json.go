package postgis

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
)

// appendExtraJSON appends m as encoding/json marshals it (keys sorted, the
// same bytes), writing itself the common case: finite float64 and string
// values, with keys and strings of printable ASCII that need no escape
// (FIWARE names, units, directions). Anything else is marshalled by
// encoding/json. It spares each row's extra values the reflection of
// json.Marshal's map encoder, which was a tenth of a batch's allocations
// (docs/benchmarks.md, ninth session).
func appendExtraJSON(buf []byte, m map[string]any) ([]byte, error) {
	var small [16]string
	keys := small[:0]
	for k, v := range m {
		switch v := v.(type) {
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return appendMarshalled(buf, m)
			}
		case string:
			if !plainJSON(v) {
				return appendMarshalled(buf, m)
			}
		default:
			return appendMarshalled(buf, m)
		}
		if !plainJSON(k) {
			return appendMarshalled(buf, m)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		buf = append(buf, k...)
		buf = append(buf, '"', ':')
		switch v := m[k].(type) {
		case float64:
			buf = appendJSONFloat(buf, v)
		case string:
			buf = append(buf, '"')
			buf = append(buf, v...)
			buf = append(buf, '"')
		}
	}
	return append(buf, '}'), nil
}

// appendMarshalled appends json.Marshal's m.
func appendMarshalled(buf []byte, m map[string]any) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return buf, err
	}
	return append(buf, b...), nil
}

// plainJSON reports whether s is written as a JSON string between quotes
// as it is: printable ASCII without a quote, a backslash, or one of the
// characters encoding/json escapes for HTML (<, >, &).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// appendJSONFloat appends the finite f as encoding/json writes a float64:
// the shortest decimal that reads back as f, in exponent form below 1e-6
// and from 1e21 on (as ECMAScript), the exponent without a leading zero.
func appendJSONFloat(buf []byte, f float64) []byte {
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	buf = strconv.AppendFloat(buf, f, format, -1, 64)
	if format == 'e' {
		// e-07 → e-7
		if n := len(buf); n >= 4 && buf[n-4] == 'e' && buf[n-3] == '-' && buf[n-2] == '0' {
			buf[n-2] = buf[n-1]
			buf = buf[:n-1]
		}
	}
	return buf
}
