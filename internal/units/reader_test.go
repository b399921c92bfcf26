package units_test

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/iochub/iochub/internal/units"
)

// FuzzUnitReader checks that no units file makes the Reader panic, that it
// fails only with ErrInvalidUnits, and that what it returns is complete.
func FuzzUnitReader(f *testing.F) {
	f.Add(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"01","name":"a"},"geometry":{"type":"Polygon","coordinates":[[[105.7,20.9],[105.9,20.9],[105.9,21.1],[105.7,21.1],[105.7,20.9]]]}}]}`)
	f.Add(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"00001","name":"a"},"geometry":{"type":"MultiPolygon","coordinates":[[[[105.7,20.9],[105.9,20.9],[105.9,21.1],[105.7,21.1],[105.7,20.9]]]]}}]}`)
	f.Add(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"02"},"geometry":{"type":"LineString","coordinates":[[105,21],[106,22]]}}]}`)
	f.Add(`{"features":[{"type":"Feature","properties":{"code":1},"geometry":null}],"type":"FeatureCollection"}`)
	f.Add(`{"type":"FeatureCollection","features":[],"bbox":[1,2,3,4]}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, s string) {
		r := units.NewReader(strings.NewReader(s), units.ReadOptions{})
		for i := 0; ; i++ {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				if !errors.Is(err, units.ErrInvalidUnits) {
					t.Fatalf("got %v; want an error wrapping ErrInvalidUnits", err)
				}
				return
			}
			if rec.Index != i || rec.Code == "" || rec.Boundary == nil || rec.Boundary.Empty() ||
				(rec.Level != units.LevelProvince && rec.Level != units.LevelCommune) {
				t.Fatalf("got record %+v at %d; want index %d, a code, a level and a boundary", rec, i, i)
			}
		}
	})
}

// repeat reads s over and over, n bytes in all.
func repeat(s string, n int64) io.Reader {
	return io.LimitReader(&cycle{s: s}, n)
}

type cycle struct {
	s string
	i int
}

func (c *cycle) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.s[c.i%len(c.s)]
		c.i++
	}
	return len(p), nil
}

// countingReader counts what was read from it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestReaderBounds: one feature, or any other member of the file, longer
// than MaxFeatureBytes is refused having read little more than that (not
// the file, whose size alone bounded a read before); a boundary of more
// than MaxFeatureVertices positions and a file of more than MaxFeatures
// features are refused, naming the feature.
func TestReaderBounds(t *testing.T) {
	const head = `{"type":"FeatureCollection","features":[`
	read := func(r io.Reader) (int, error) {
		t.Helper()
		u := units.NewReader(r, units.ReadOptions{})
		for {
			if _, err := u.Next(); err != nil {
				if errors.Is(err, io.EOF) {
					return u.Read(), nil
				}
				if !errors.Is(err, units.ErrInvalidUnits) {
					t.Fatalf("got %v; want an error wrapping ErrInvalidUnits", err)
				}
				return u.Read(), err
			}
		}
	}
	for _, c := range []struct {
		name, prefix, unit string
		want               string
	}{
		{"a feature's coordinates", head + `{"type":"Feature","properties":{"code":"01"},"geometry":{"type":"Polygon","coordinates":[[`, `[105.1,21.1],`, "features[0]: a value longer than"},
		{"a member before the features", `{"type":"FeatureCollection","bbox":[`, `1,`, "reading bbox: a value longer than"},
		{"a key", `{"type":"FeatureCollection","`, `k`, "reading the FeatureCollection: a value longer than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := &countingReader{r: io.MultiReader(strings.NewReader(c.prefix), repeat(c.unit, 3*units.MaxFeatureBytes))}
			_, err := read(in)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v; want %q", err, c.want)
			}
			if limit := int64(units.MaxFeatureBytes + 64<<10); in.n > limit {
				t.Errorf("read %d bytes before refusing; want at most %d", in.n, limit)
			}
		})
	}

	t.Run("vertices", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(head + `{"type":"Feature","properties":{"code":"01"},"geometry":{"type":"Polygon","coordinates":[[[105,21]`)
		for i := range units.MaxFeatureVertices - 1 {
			b.WriteString(",[105.")
			b.WriteString(strconv.Itoa(i%9 + 1))
			b.WriteString(",21.5]")
		}
		b.WriteString(`,[105,21]]]}}]}`)
		_, err := read(strings.NewReader(b.String()))
		if want := "features[0] (code 01): the boundary has 1000001 positions; at most 1000000"; err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v; want %q", err, want)
		}
	})

	t.Run("features", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(head)
		for i := range units.MaxFeatures + 1 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"type":"Feature","properties":{"code":"c%d"},"geometry":{"type":"Polygon","coordinates":[[[105,21],[106,21],[106,22],[105,21]]]}}`, i)
		}
		b.WriteString(`]}`)
		u := units.NewReader(strings.NewReader(b.String()), units.ReadOptions{Level: units.LevelCustom})
		var err error
		for err == nil {
			_, err = u.Next()
		}
		if want := "features: more than 100000"; !errors.Is(err, units.ErrInvalidUnits) || !strings.Contains(err.Error(), want) || u.Read() != units.MaxFeatures {
			t.Fatalf("after %d features got %v; want %q after %d", u.Read(), err, want, units.MaxFeatures)
		}
	})
}
