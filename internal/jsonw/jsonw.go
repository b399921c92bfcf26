// Package jsonw writes JSON values byte for byte as encoding/json writes
// them with HTML left unescaped (json.Encoder.SetEscapeHTML(false)),
// without its reflection. It serves the hub's hottest encoders (the
// gateway's live Features, the aggregator's rows), whose fuzz tests hold
// them to encoding/json's bytes; everything else uses encoding/json.
package jsonw

import (
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string: '"', '\\' and the control
// characters escaped (\b, \f, \n, \r, \t by name, the others as \u00XX),
// invalid UTF-8 as U+FFFD, U+2028 and U+2029 escaped (JavaScript reads
// them as line ends).
func AppendString(b []byte, s string) []byte {
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

// AppendFloat appends the finite f as encoding/json writes a float64: the
// shortest decimal that reads back as f, in exponent form below 1e-6 and
// from 1e21 on (as ECMAScript), the exponent without a leading zero.
func AppendFloat(b []byte, f float64) []byte {
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

// AppendValues appends m as an object, keys sorted as encoding/json sorts
// them; false (b then holds a part of it) for a value that is not a finite
// float64, an int32, a bool or a string.
func AppendValues(b []byte, m map[string]any) ([]byte, bool) {
	var small [32]string
	b = append(b, '{')
	for i, k := range sortedKeys(m, small[:0]) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(AppendString(b, k), ':')
		switch v := m[k].(type) {
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return b, false
			}
			b = AppendFloat(b, v)
		case int32:
			b = strconv.AppendInt(b, int64(v), 10)
		case bool:
			b = strconv.AppendBool(b, v)
		case string:
			b = AppendString(b, v)
		default:
			return b, false
		}
	}
	return append(b, '}'), true
}

// AppendFloats appends m (finite values) as an object, keys sorted.
func AppendFloats(b []byte, m map[string]float64) []byte {
	var small [16]string
	b = append(b, '{')
	for i, k := range sortedKeys(m, small[:0]) {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendFloat(append(AppendString(b, k), ':'), m[k])
	}
	return append(b, '}')
}

// sortedKeys appends m's keys to dst, sorted as encoding/json sorts them.
func sortedKeys[V any](m map[string]V, dst []string) []string {
	for k := range m {
		dst = append(dst, k)
	}
	slices.Sort(dst)
	return dst
}
