package ingest

import (
	"encoding/json"
)

// The fast path of the body decoder: a JSON array of objects, the shape of
// nearly every batch, is split into items by one strict pass over the bytes,
// without reflection and without copying the values (each member's raw value
// is a slice of the body). It takes only what it can read whole and for
// certain: anything else (a syntax error, an item that is not an object, a
// key with escapes, nesting deeper than maxFastDepth, too many items, no
// items) makes it give up, and the body is read again by the encoding/json
// path of decode.go, which then gives the answer and the message it always
// gave. FuzzDecodeItems checks that both paths agree on every body the fast
// one takes.

// maxFastDepth bounds the nesting the fast path follows (recursion depth);
// deeper bodies go to encoding/json, which has its own limit.
const maxFastDepth = 64

// fastScan is a strict JSON scanner over b: it accepts exactly RFC 8259 JSON
// as encoding/json does (strings may hold any byte from 0x20 up, as there).
type fastScan struct {
	b []byte
	i int
	// members is scratch for the members of the item being read.
	members []member
	// lazy keeps each item's members (in kept) instead of making its map.
	lazy bool
	kept []member
	// keptTotal counts the members kept, in every block.
	keptTotal int
}

type member struct {
	key string
	raw json.RawMessage
}

func (s *fastScan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next reads what follows a member or element: a comma (more: true, and the
// whitespace after it skipped) or closer (more: false, ok: true); anything
// else is a syntax error (more and ok false).
func (s *fastScan) next(closer byte) (more, ok bool) {
	s.ws()
	if s.i >= len(s.b) {
		return false, false
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		s.ws()
		return true, true
	case closer:
		s.i++
		return false, true
	}
	return false, false
}

// value skips one JSON value starting at s.i (no leading whitespace).
func (s *fastScan) value(depth int) bool {
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		_, ok := s.str()
		return ok
	case '{':
		if depth >= maxFastDepth {
			return false
		}
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == '}' {
			s.i++
			return true
		}
		for {
			if s.i >= len(s.b) || s.b[s.i] != '"' {
				return false
			}
			if _, ok := s.str(); !ok {
				return false
			}
			s.ws()
			if s.i >= len(s.b) || s.b[s.i] != ':' {
				return false
			}
			s.i++
			s.ws()
			if !s.value(depth + 1) {
				return false
			}
			if more, ok := s.next('}'); !more {
				return ok
			}
		}
	case '[':
		if depth >= maxFastDepth {
			return false
		}
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return true
		}
		for {
			if !s.value(depth + 1) {
				return false
			}
			if more, ok := s.next(']'); !more {
				return ok
			}
		}
	case 't':
		return s.lit("true")
	case 'f':
		return s.lit("false")
	case 'n':
		return s.lit("null")
	}
	return s.number()
}

func (s *fastScan) lit(w string) bool {
	if len(s.b)-s.i < len(w) || string(s.b[s.i:s.i+len(w)]) != w {
		return false
	}
	s.i += len(w)
	return true
}

// str skips a string literal at s.i; plain says it has no escape and only
// ASCII bytes, so that its inside is its text.
func (s *fastScan) str() (plain, ok bool) {
	plain = true
	s.i++ // '"'
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return plain, true
		case c < 0x20:
			return false, false
		case c == '\\':
			plain = false
			if s.i+1 >= len(s.b) {
				return false, false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return false, false
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !isHex(h) {
						return false, false
					}
				}
				s.i += 6
			default:
				return false, false
			}
		default:
			if c >= 0x80 {
				plain = false
			}
			s.i++
		}
	}
	return false, false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number skips -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (s *fastScan) number() bool {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	s.i = i
	return true
}

// object reads the object at s.i (an item) into a map of its members, as
// encoding/json would (the last of repeated keys wins); ok is false for
// anything the fast path does not take. When s.lazy, an item with members
// that is not a GeoJSON Feature is returned as its members instead (map nil).
func (s *fastScan) object() (map[string]json.RawMessage, []member, bool) {
	m, ok := s.objectMembers()
	if !ok || m != nil {
		return m, nil, ok
	}
	if s.lazy && !isFeature(s.members) {
		if len(s.members) > cap(s.kept)-len(s.kept) {
			// A new block (the items before keep theirs): never grown by
			// copying; twice the last, so that a request's blocks are few
			// and its last (which reqMem keeps) is the largest.
			s.kept = make([]member, 0, max(keptBlock, len(s.members), 2*cap(s.kept)))
		}
		start := len(s.kept)
		s.kept = append(s.kept, s.members...)
		s.keptTotal += len(s.members)
		return nil, s.kept[start:len(s.kept):len(s.kept)], true
	}
	return membersMap(s.members), nil, true
}

// keptBlock is how many members a block of kept members holds.
const keptBlock = 512

// isFeature reports whether members (in order; the last of repeated keys
// wins) make a GeoJSON Feature, as featureToItem sees it.
func isFeature(members []member) bool {
	for i := len(members) - 1; i >= 0; i-- {
		if members[i].key == "type" {
			return isJSONString(members[i].raw, "Feature")
		}
	}
	return false
}

// membersMap is the map of an item's members (the last of repeated keys wins).
func membersMap(members []member) map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, len(members))
	for _, mb := range members {
		m[mb.key] = mb.raw
	}
	return m
}

// fieldsIn is r's fields: its own map; its members, read where they lie; or,
// for an item of more than maxListMembers members, *shared (made on first
// use) filled with them. Nothing may keep *shared past the item, the next
// one refills it.
func (r rawItem) fieldsIn(shared *map[string]json.RawMessage) fields {
	if r.members == nil {
		return fieldsOf(r.fields)
	}
	if len(r.members) <= maxListMembers {
		return fields{list: r.members}
	}
	if *shared == nil {
		*shared = make(map[string]json.RawMessage, len(r.members))
	}
	fillFields(*shared, r.members)
	return fieldsOf(*shared)
}

// fillFields clears f and puts members in it (the last of repeated keys
// wins): the same fields as membersMap, in a map reused from item to item.
func fillFields(f map[string]json.RawMessage, members []member) {
	clear(f)
	for _, mb := range members {
		f[mb.key] = mb.raw
	}
}

// objectMembers reads the object at s.i into s.members; m is an empty map
// for {} and nil otherwise.
func (s *fastScan) objectMembers() (map[string]json.RawMessage, bool) {
	s.i++ // '{'
	s.members = s.members[:0]
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return map[string]json.RawMessage{}, true
	}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return nil, false
		}
		k0 := s.i
		plain, ok := s.str()
		if !ok || !plain {
			return nil, false // encoding/json unescapes the key (and mends bad UTF-8): leave it that
		}
		key := keyString(s.b[k0+1 : s.i-1])
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return nil, false
		}
		s.i++
		s.ws()
		v0 := s.i
		if !s.value(2) {
			return nil, false
		}
		s.members = append(s.members, member{key: key, raw: json.RawMessage(s.b[v0:s.i:s.i])})
		if more, ok := s.next('}'); more {
			continue
		} else if !ok {
			return nil, false
		}
		return nil, true
	}
}

// knownKeys are member names common in items: reading one as a key does not
// allocate a string.
var knownKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"id", "type", "name", "location", "dateObserved", "dateObservedFrom", "dateObservedTo",
		"refDevice", "refPointOfInterest", "refRoadSegment", "address", "source", "dataProvider",
		"pm25", "pm10", "pm1", "no2", "o3", "co", "so2", "nh3", "no", "nox", "PM2.5", "PM25", "PM10", "PM1", "NO2",
		"O3", "CO", "SO2", "NH3", "NO", "NOx", "NOX", "temperature", "relativeHumidity", "windSpeed", "windDirection",
		"precipitation", "atmosphericPressure", "airQualityIndex", "airQualityLevel", "reliability",
		"intensity", "occupancy", "averageVehicleSpeed", "averageVehicleLength", "averageHeadwayTime",
		"congested", "laneId", "laneDirection", "waterLevel", "flow", "ph", "conductivity", "turbidity",
		"dissolvedOxygen", "alarmLevel1", "alarmLevel2", "alarmLevel3", "geometry", "properties", "coordinates",
		"identifier", "sender", "sent", "status", "msgType", "scope", "info", "area", "references",
		"category", "description", "media", "@context", "value", "object", "observedAt", "unitCode",
	} {
		m[k] = k
	}
	return m
}()

func keyString(b []byte) string {
	if k, ok := knownKeys[string(b)]; ok {
		return k
	}
	return string(b)
}

// fastArrayInto reads a body that is a JSON array of objects (or nulls),
// with at most maxItems items; ok is false when the body is anything else,
// and the encoding/json path must read it. When lazy, an item that is not a
// Feature and has members comes with its members instead of its map (see
// rawItem.members). The items and their members are in mem's memory (when
// mem is not nil), which keeps them for its next request.
func fastArrayInto(body []byte, maxItems int, lazy bool, mem *reqMem) (items []rawItem, ok bool) {
	s := fastScan{b: body, lazy: lazy}
	if mem != nil {
		s.kept = mem.kept[:0]
		if cap(s.kept) < mem.keptNeed {
			s.kept = make([]member, 0, mem.keptNeed)
		}
		defer func() {
			mem.kept, mem.keptNeed = s.kept, s.keptTotal
			if ok {
				mem.items = items
			}
		}()
	}
	if len(body) >= 3 && body[0] == 0xEF && body[1] == 0xBB && body[2] == 0xBF {
		s.i = 3
	}
	s.ws()
	if s.i >= len(body) || body[s.i] != '[' {
		return nil, false
	}
	s.i++
	s.ws()
	if s.i >= len(body) || body[s.i] == ']' {
		return nil, false // no items: the slow path says so
	}
	if mem != nil && cap(mem.items) > 0 {
		items = mem.items[:0]
	} else {
		items = make([]rawItem, 0, min(maxItems, 1+len(body)/64))
	}
	for {
		if len(items) >= maxItems || s.i >= len(body) {
			return nil, false
		}
		switch body[s.i] {
		case '{':
			m, members, ok := s.object()
			if !ok {
				return nil, false
			}
			if members != nil {
				items = append(items, rawItem{members: members})
				break
			}
			f, reason := featureToItem(m)
			items = append(items, rawItem{fields: f, err: reason})
		case 'n':
			if !s.lit("null") {
				return nil, false
			}
			items = append(items, rawItem{err: "item is null; want a JSON object"})
		default:
			return nil, false
		}
		if more, ok := s.next(']'); more {
			continue
		} else if !ok {
			return nil, false
		}
		s.ws()
		if s.i != len(body) {
			return nil, false
		}
		return items, true
	}
}
