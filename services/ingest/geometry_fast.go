package ingest

import (
	"encoding/json"
	"slices"
	"strconv"
)

// fastDecoded is what fastGeometry read: a geometry still to be finished,
// or the rejection the encoding/json path would give.
type fastDecoded struct {
	g   Geometry
	err error
}

// fastGeometry reads the common shapes of a station's or a segment's
// location, {"type":"Point"|"LineString","coordinates":...} with numbers
// only, without reflection; ok is false for anything else (other members,
// repeated or differently cased keys, escapes, other types, a position that
// is not 2 or 3 numbers, a number out of range), which parseGeometrySlow
// then reads. FuzzGeometry checks that both agree where this one answers.
func fastGeometry(raw json.RawMessage, at string, allowed []string) (out fastDecoded, ok bool) {
	s := fastScan{b: raw}
	s.ws()
	if s.i >= len(raw) || raw[s.i] != '{' {
		return out, false
	}
	s.i++
	var typ string
	var coords []byte
	haveType := false
	for {
		s.ws()
		if s.i >= len(raw) || raw[s.i] != '"' {
			return out, false
		}
		k0 := s.i
		if plain, ok := s.str(); !ok || !plain {
			return out, false
		}
		key := raw[k0+1 : s.i-1]
		s.ws()
		if s.i >= len(raw) || raw[s.i] != ':' {
			return out, false
		}
		s.i++
		s.ws()
		v0 := s.i
		switch string(key) {
		case "type":
			if haveType || s.i >= len(raw) || raw[s.i] != '"' {
				return out, false
			}
			if plain, ok := s.str(); !ok || !plain {
				return out, false
			}
			switch t := raw[v0+1 : s.i-1]; string(t) {
			case "Point":
				typ = "Point"
			case "LineString":
				typ = "LineString"
			default:
				return out, false
			}
			haveType = true
		case "coordinates":
			if coords != nil || !s.value(1) {
				return out, false
			}
			coords = raw[v0:s.i]
		default:
			return out, false
		}
		s.ws()
		if s.i >= len(raw) {
			return out, false
		}
		if raw[s.i] == ',' {
			s.i++
			continue
		}
		if raw[s.i] != '}' {
			return out, false
		}
		s.i++
		s.ws()
		if s.i != len(raw) || coords == nil || !slices.Contains(allowed, typ) {
			return out, false
		}
		break
	}
	switch typ {
	case "Point":
		var buf [3]float64
		n, ok := fastNumbers(coords, buf[:])
		if !ok || n < 2 {
			return out, false
		}
		if why := positionFault(buf[:n]); why != "" { // as position says it
			return fastDecoded{err: &geometryError{at + ".coordinates", why}}, true
		}
		// The three levels of Polys in one allocation.
		pt := new(struct {
			polys [1][][]float64
			ring  [1][]float64
			xy    [2]float64
		})
		pt.xy = [2]float64{buf[0], buf[1]}
		pt.ring[0] = pt.xy[:]
		pt.polys[0] = pt.ring[:]
		return fastDecoded{g: Geometry{Type: "Point", Polys: pt.polys[:]}}, true
	case "LineString":
		xy, ok, err := fastLine(coords, at+".coordinates")
		if !ok {
			return out, false
		}
		if err != nil {
			return fastDecoded{err: err}, true
		}
		return fastDecoded{g: Geometry{Type: typ, Polys: [][][]float64{{xy}}}}, true
	}
	return out, false
}

// fastNumbers reads an array of up to len(dst) numbers into dst.
func fastNumbers(b []byte, dst []float64) (int, bool) {
	s := fastScan{b: b}
	s.ws()
	if s.i >= len(b) || b[s.i] != '[' {
		return 0, false
	}
	s.i++
	n := 0
	for {
		s.ws()
		v0 := s.i
		if n >= len(dst) || !s.number() {
			return 0, false
		}
		v, err := strconv.ParseFloat(string(b[v0:s.i]), 64)
		if err != nil {
			return 0, false
		}
		dst[n] = v
		n++
		if more, ok := s.next(']'); !ok {
			return 0, false
		} else if !more {
			s.ws()
			return n, s.i == len(b)
		}
	}
}

// fastLine reads the positions [[n, n], ...] of a LineString (at least 2,
// at most MaxVertices) into one flat xy, checking each as positions does
// (the first fault, named as positions names it, is the error); ok is false
// where the slow path must read it.
func fastLine(b []byte, at string) (xy []float64, ok bool, err error) {
	s := fastScan{b: b}
	s.ws()
	if s.i >= len(b) || b[s.i] != '[' {
		return nil, false, nil
	}
	s.i++
	n := 0
	for {
		s.ws()
		v0 := s.i
		if n >= MaxVertices || !s.value(1) {
			return nil, false, nil
		}
		var c [3]float64
		k, ok := fastNumbers(b[v0:s.i], c[:])
		if !ok || k < 2 {
			return nil, false, nil
		}
		if why := positionFault(c[:k]); why != "" && err == nil {
			err = &geometryError{at + "[" + strconv.Itoa(n) + "]", why}
		}
		xy = append(xy, c[0], c[1])
		n++
		if more, ok := s.next(']'); !ok {
			return nil, false, nil
		} else if !more {
			break
		}
	}
	if n < 2 {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	return xy, true, nil
}
