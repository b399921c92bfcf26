package jsonw

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

// marshal is v as encoding/json writes it with HTML left unescaped.
func marshal(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// FuzzAppend holds every writer to encoding/json's bytes: strings with
// escapes, invalid UTF-8 and line separators, numbers of every size and
// sign, objects of mixed values.
func FuzzAppend(f *testing.F) {
	f.Add("Hoàn Kiếm \"trạm\" <1> & \\", 35.5, int32(3), true)
	f.Add("\u2028\u2029\x00\x1f\x7f\b\f\n\r\t\xff\xfe", 1e21, int32(-1), false)
	f.Add("", 1.5e-7, int32(0), true)
	f.Add("x", math.Copysign(0, -1), int32(math.MaxInt32), false)
	f.Fuzz(func(t *testing.T, s string, x float64, n int32, flag bool) {
		if got, want := AppendString(nil, s), marshal(t, s); !bytes.Equal(got, want) {
			t.Fatalf("AppendString(%q) %s; encoding/json %s", s, got, want)
		}
		m := map[string]any{s: s, "n": n, "flag": flag, "z" + s: 1.25}
		fm := map[string]float64{s: 2, "pm10": 12.5}
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			if got, want := AppendFloat(nil, x), marshal(t, x); !bytes.Equal(got, want) {
				t.Fatalf("AppendFloat(%v) %s; encoding/json %s", x, got, want)
			}
			m["x"], fm["x"] = x, x
		}
		got, ok := AppendValues(nil, m)
		if want := marshal(t, m); !ok || !bytes.Equal(got, want) {
			t.Fatalf("AppendValues %s, %v; encoding/json %s", got, ok, want)
		}
		if got, want := AppendFloats(nil, fm), marshal(t, fm); !bytes.Equal(got, want) {
			t.Fatalf("AppendFloats %s; encoding/json %s", got, want)
		}
	})
}

// TestAppendValuesDeclines: a value of another type, or not finite, is
// refused.
func TestAppendValuesDeclines(t *testing.T) {
	for _, v := range []any{int64(1), math.NaN(), math.Inf(1), nil, []int{1}} {
		if _, ok := AppendValues(nil, map[string]any{"v": v}); ok {
			t.Errorf("%#v: written", v)
		}
	}
}
