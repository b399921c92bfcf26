package ingest

import (
	"fmt"
	"strconv"

	"github.com/iochub/iochub/internal/units"
)

// principal is who sent a request: a registered source bound to a unit, or
// the dev token (unit "": any unit, the item's own).
type principal struct {
	sourceID string
	unit     string
}

func fmtPos(lon, lat float64) string {
	return "[" + strconv.FormatFloat(lon, 'f', -1, 64) + ", " + strconv.FormatFloat(lat, 'f', -1, 64) + "]"
}

func unitLabel(ix *units.Index, code string) string {
	if u, ok := ix.Get(code); ok && u.NameVI != "" {
		return code + " (" + u.NameVI + ")"
	}
	return code
}

// place finds the unit of a point: the smallest unit containing it, among
// within and its descendants when within is set (a unit contains its
// descendants, whatever its own, coarser, boundary says: units.Index.Covers).
func place(ix *units.Index, lon, lat float64, within string) (string, bool) {
	if within == "" {
		u, ok := ix.Locate(lon, lat)
		return u.Code, ok
	}
	u, ok := ix.LocateWithin(lon, lat, within)
	return u.Code, ok
}

// swappedFits reports whether exchanging lon and lat would put the point where it belongs.
func swappedFits(ix *units.Index, lon, lat float64, within string) bool {
	if within != "" {
		return ix.Covers(within, lat, lon)
	}
	_, ok := ix.Locate(lat, lon)
	return ok
}

// resolve finds the unit and province of an item and checks that its
// geometry lies where the principal may publish.
func resolve(ix *units.Index, p principal, it *parsed) (unit, province string, ierr *itemError) {
	if p.unit != "" {
		if _, ok := ix.Get(p.unit); !ok {
			return "", "", &itemError{reason: fmt.Sprintf("source unit %s is not a current administrative unit; ask the hub's operators to update the source", p.unit)}
		}
	}
	switch it.shape {
	case shapePoint, shapeLine:
		g := it.geoms[0]
		var vs [][2]float64
		var lon, lat float64
		mid := 0
		if it.shape == shapePoint && g.Type == "Point" {
			lon, lat = g.Polys[0][0][0], g.Polys[0][0][1] // no slice of vertices for one point
		} else {
			vs = g.Vertices()
			mid = len(vs) / 2
			lon, lat = vs[mid][0], vs[mid][1]
		}
		code, ok := place(ix, lon, lat, p.unit)
		if !ok {
			ptr := it.geomPointer
			what := "location " + fmtPos(lon, lat)
			if it.shape == shapeLine {
				ptr += "[" + strconv.Itoa(mid) + "]"
				what = "middle vertex " + fmtPos(lon, lat)
			}
			switch {
			case swappedFits(ix, lon, lat, p.unit):
				return "", "", &itemError{pointer: ptr, reason: what + ": " + swappedHint}
			case p.unit != "":
				return "", "", &itemError{pointer: ptr, reason: fmt.Sprintf("%s is outside source unit %s", what, unitLabel(ix, p.unit)), outside: true}
			default:
				return "", "", &itemError{pointer: ptr, reason: what + " is in no known administrative unit"}
			}
		}
		prov, ok := ix.Province(code)
		if !ok {
			return "", "", &itemError{reason: fmt.Sprintf("unit %s belongs to no province", code)}
		}
		if it.shape == shapeLine {
			for i, v := range vs {
				if !ix.Covers(prov, v[0], v[1]) {
					return "", "", &itemError{pointer: it.geomPointer + "[" + strconv.Itoa(i) + "]",
						reason: fmt.Sprintf("vertex %s is outside province %s of the segment", fmtPos(v[0], v[1]), unitLabel(ix, prov))}
				}
			}
		}
		return code, prov, nil
	case shapeAreas:
		return resolveAreas(ix, p, it)
	}
	return "", "", &itemError{reason: "unknown item shape"}
}

// resolveAreas places an alert: in the smallest unit that contains every
// vertex of its areas (within the source's unit), else in the source's unit
// (or, for the dev token, the province of the first vertex in a unit).
func resolveAreas(ix *units.Index, p principal, it *parsed) (string, string, *itemError) {
	if len(it.geoms) == 0 {
		if p.unit == "" {
			return "", "", &itemError{pointer: it.geomPointer, reason: "no area has a geometry; the dev token needs one to find the unit"}
		}
		prov, ok := ix.Province(p.unit)
		if !ok {
			return "", "", &itemError{reason: fmt.Sprintf("unit %s belongs to no province", p.unit)}
		}
		return p.unit, prov, nil
	}
	if p.unit != "" {
		meets := false
		for _, g := range it.geoms {
			if ix.CoversArea(p.unit, g.Polys) {
				meets = true
				break
			}
		}
		if !meets {
			reason := fmt.Sprintf("the alert's area does not intersect source unit %s", unitLabel(ix, p.unit))
			for _, g := range it.geoms {
				if ix.CoversArea(p.unit, g.Swapped().Polys) {
					reason = swappedHint
					break
				}
			}
			return "", "", &itemError{pointer: it.geomPointer, reason: reason, outside: true}
		}
	}
	var vs [][2]float64
	for _, g := range it.geoms {
		vs = append(vs, g.Vertices()...)
	}
	code := ""
	for _, v := range vs {
		if u, ok := ix.Locate(v[0], v[1]); ok && (p.unit == "" || ix.Within(u.Code, p.unit)) {
			code = u.Code
			break
		}
	}
	if code == "" && p.unit == "" {
		for _, pc := range ix.Codes(units.LevelProvince) {
			for _, g := range it.geoms {
				if ix.CoversArea(pc, g.Polys) {
					code = pc
					break
				}
			}
			if code != "" {
				break
			}
		}
		if code == "" {
			reason := "the alert's area is in no known administrative unit"
			for _, v := range vs {
				if _, ok := ix.Locate(v[1], v[0]); ok {
					reason = swappedHint
					break
				}
			}
			return "", "", &itemError{pointer: it.geomPointer, reason: reason}
		}
	}
	if code == "" {
		code = p.unit
	}
	// Climb until the unit holds every vertex, never above the source's unit.
	for {
		all := true
		for _, v := range vs {
			if !ix.Covers(code, v[0], v[1]) {
				all = false
				break
			}
		}
		if all || code == p.unit {
			break
		}
		u, ok := ix.Get(code)
		// Never above a province: the national unit VN is no item's unit.
		if !ok || u.ParentCode == "" || u.Level == units.LevelProvince {
			break
		}
		if _, ok := ix.Get(u.ParentCode); !ok {
			break
		}
		code = u.ParentCode
	}
	prov, ok := ix.Province(code)
	if !ok {
		return "", "", &itemError{reason: fmt.Sprintf("unit %s belongs to no province", code)}
	}
	return code, prov, nil
}
