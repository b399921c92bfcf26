package postgis

import (
	"encoding/json"
	"math"
	"slices"

	"github.com/iochub/iochub/internal/jsonw"
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
			buf = jsonw.AppendFloat(buf, v)
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
