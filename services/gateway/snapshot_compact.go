package gateway

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"unique"
)

// The compact snapshot (snapshot=compact on /v1/live, docs/api.md) carries the
// same Features as the snapshot frame, each member's name once per shape
// instead of once per entity:
//
//	{"type":"snapshot","province":"01","shapes":[
//	  {"paths":[["type"],["id"],["geometry","type"],…],"same":{"0":"Feature",…},"rows":[["air/a",…],…]},…]}
//
// A shape is the list of member paths of the Features that have exactly
// those members in that order (a path ends at a value that is not an object,
// or at an empty object); "same" holds the values every row of the shape
// shares (only when it has two rows or more), by the path's index, and each
// row the others in path order. Each value is the Feature's own JSON text,
// byte for byte. A wall screen's snapshot of 5 000 air stations is 3.3 MB as
// Features; most of it is member names repeated per station.

// flatFeature is one entity's Feature cut into member paths and values: made
// once per Feature (entity.flat) and shared by the compact snapshots until
// the entity changes.
type flatFeature struct {
	src []byte // the Feature it was made of (entity.json); valid while the entity holds the same bytes
	// shape is the member paths, each the inside of a JSON array of the
	// members' names (as written in src), each ended by '\n' (which a JSON
	// string cannot hold); equal shapes share one handle.
	shape unique.Handle[string]
	// spans are the start and end offsets in src of each path's value.
	spans []uint32
}

// of tells whether ff was made of b (the same bytes, not a copy: a Feature's
// bytes are never changed once encoded).
func (ff *flatFeature) of(b []byte) bool {
	return ff != nil && len(ff.src) == len(b) && len(b) > 0 && &ff.src[0] == &b[0]
}

var errFlatten = errors.New("feature is not a JSON object")

// maxFlattenDepth bounds the nesting of the objects flatten cuts (the
// gateway's Features nest four deep; the ingest bounds a feed's own).
const maxFlattenDepth = 64

// flatten cuts the Feature b into paths and values, with f's buffers,
// reused from one Feature to the next (the flat form keeps only its shape's
// handle and its own spans).
func (f *flattener) flatten(b []byte) (flatFeature, error) {
	f.b, f.path, f.shape, f.spans = b, f.path[:0], f.shape[:0], f.spans[:0]
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' || isEmptyObject(b, i) || len(b) > 1<<31 {
		return flatFeature{}, errFlatten
	}
	i, err := f.object(i, 1)
	if err != nil {
		return flatFeature{}, err
	}
	if skipWS(b, i) != len(b) {
		return flatFeature{}, errFlatten
	}
	return flatFeature{src: b, shape: unique.Make(string(f.shape)), spans: slices.Clone(f.spans)}, nil
}

type flattener struct {
	b     []byte
	path  []byte // the current path: quoted names, comma-separated
	shape []byte
	spans []uint32
}

// object reads the members of the object at b[i] (a '{', depth objects
// deep), and returns the offset after it.
func (f *flattener) object(i, depth int) (int, error) {
	if depth > maxFlattenDepth {
		return 0, errFlatten
	}
	b := f.b
	i++
	for {
		i = skipWS(b, i)
		if i >= len(b) || b[i] != '"' {
			return 0, errFlatten
		}
		k := i
		i = skipString(b, i)
		if i < 0 {
			return 0, errFlatten
		}
		name := b[k:i]
		i = skipWS(b, i)
		if i >= len(b) || b[i] != ':' {
			return 0, errFlatten
		}
		i = skipWS(b, i+1)
		n := len(f.path)
		if n > 0 {
			f.path = append(f.path, ',')
		}
		f.path = append(f.path, name...)
		var err error
		if i < len(b) && b[i] == '{' && !isEmptyObject(b, i) {
			i, err = f.object(i, depth+1)
		} else {
			j := skipValue(b, i)
			if j < 0 {
				return 0, errFlatten
			}
			f.shape = append(f.shape, f.path...)
			f.shape = append(f.shape, '\n')
			f.spans = append(f.spans, uint32(i), uint32(j))
			i = j
		}
		if err != nil {
			return 0, err
		}
		f.path = f.path[:n]
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, errFlatten
		}
		switch b[i] {
		case ',':
			i++
		case '}':
			return i + 1, nil
		default:
			return 0, errFlatten
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// isEmptyObject tells whether the object at b[i] is {}.
func isEmptyObject(b []byte, i int) bool {
	j := skipWS(b, i+1)
	return j < len(b) && b[j] == '}'
}

// skipString returns the offset after the string at b[i] (a '"'), or -1.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the offset after the JSON value at b[i], or -1. The
// value is valid JSON (the gateway encoded it); only its end is looked for.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				if i < 0 {
					return -1
				}
				i--
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}

// compactSnapshotFrame is the compact snapshot of the Features fs (in their
// order within each shape; shapes in the order of their first Feature).
func compactSnapshotFrame(province string, fs []*flatFeature) []byte {
	type group struct {
		shape string
		rows  []*flatFeature
	}
	var groups []*group
	byShape := make(map[unique.Handle[string]]*group)
	n := 64
	for _, ff := range fs {
		g := byShape[ff.shape]
		if g == nil {
			g = &group{shape: ff.shape.Value()}
			byShape[ff.shape] = g
			groups = append(groups, g)
			n += len(g.shape) + 64
		}
		g.rows = append(g.rows, ff)
		n += len(ff.src)/2 + 4
	}
	b := make([]byte, 0, n)
	b = append(b, `{"type":"snapshot","province":`...)
	p, _ := json.Marshal(province) // a string always marshals
	b = append(b, p...)
	b = append(b, `,"shapes":[`...)
	var same []bool
	for gi, g := range groups {
		if gi > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"paths":[`...)
		cols := 0
		start := 0
		for i := 0; i < len(g.shape); i++ {
			if g.shape[i] != '\n' {
				continue
			}
			if cols > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = append(b, g.shape[start:i]...)
			b = append(b, ']')
			start = i + 1
			cols++
		}
		b = append(b, `],"same":{`...)
		same = same[:0]
		first := g.rows[0]
		wrote := false
		for c := range cols {
			v := value(first, c)
			eq := len(g.rows) > 1
			for _, r := range g.rows[1:] {
				if string(value(r, c)) != string(v) {
					eq = false
					break
				}
			}
			same = append(same, eq)
			if eq {
				if wrote {
					b = append(b, ',')
				}
				b = append(b, '"')
				b = strconv.AppendInt(b, int64(c), 10)
				b = append(b, `":`...)
				b = append(b, v...)
				wrote = true
			}
		}
		b = append(b, `},"rows":[`...)
		for ri, r := range g.rows {
			if ri > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			w := false
			for c := range cols {
				if same[c] {
					continue
				}
				if w {
					b = append(b, ',')
				}
				b = append(b, value(r, c)...)
				w = true
			}
			b = append(b, ']')
		}
		b = append(b, "]}"...)
	}
	return append(b, "]}"...)
}

// value is the JSON text of ff's value at path index c.
func value(ff *flatFeature, c int) []byte {
	return ff.src[ff.spans[2*c]:ff.spans[2*c+1]]
}
