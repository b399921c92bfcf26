package postgis

import (
	"encoding/json"
	"strings"

	"github.com/iochub/iochub/internal/jsonw"
)

// appendExtraJSON appends m as encoding/json marshals it (keys sorted, the
// same bytes). jsonw writes the common case, whose bytes are json.Marshal's
// but for the HTML characters json.Marshal escapes (<, >, &): a map with one
// of those in a name or a string, or a value jsonw does not write (not
// finite, nested, another type), is marshalled by encoding/json. It spares
// each row's extra values the reflection of json.Marshal's map encoder,
// which was a tenth of a batch's allocations (docs/benchmarks.md, ninth
// session).
func appendExtraJSON(buf []byte, m map[string]any) ([]byte, error) {
	for k, v := range m {
		if s, ok := v.(string); strings.ContainsAny(k, "<>&") || ok && strings.ContainsAny(s, "<>&") {
			return appendMarshalled(buf, m)
		}
	}
	if out, ok := jsonw.AppendValues(buf, m); ok {
		return out, nil
	}
	return appendMarshalled(buf, m)
}

// appendMarshalled appends json.Marshal's m.
func appendMarshalled(buf []byte, m map[string]any) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return buf, err
	}
	return append(buf, b...), nil
}
