package ingest

import (
	"fmt"
	"strings"

	"github.com/iochub/iochub/internal/cap"
	"github.com/iochub/iochub/internal/units"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// Alert area scopes (Config.AlertScope): where a source bound to a unit may
// send alerts.
const (
	// AlertScopeProvince lets a source alert anywhere in the province of its unit (the default).
	AlertScopeProvince = "province"
	// AlertScopeUnit lets a source alert only within its own unit.
	AlertScopeUnit = "unit"
)

// GeocodeUnit is the geocode valueName whose value is an iochub unit code
// (as in GET /v1/units): the one geocode the hub understands.
const GeocodeUnit = "iochub:unit"

// scopeTolerance is how far, in degrees (about 550 m), a vertex may lie
// outside the scope unit's boundary and still count as inside it: alert
// areas are drawn by hand and the boundaries are simplified.
const scopeTolerance = 0.005

// scopeArea is one area of an alert, as the scope check reads it.
type scopeArea struct {
	// pointer is where the area is in a JSON item; label prefixes the reason
	// for a CAP XML item ("alert/info[0]/area[1]: ").
	pointer, label string
	// shape is the area's own shape (repeats of an earlier area's shapes left
	// out), nil when it has none.
	shape *Geometry
	// geocodes are the area's geocodes.
	geocodes []*iocv1.Geocode
}

// areaScope returns the check, for parsed.areaScope, that every area lies
// in the scope of a source bound to unit: the unit's province, or with
// scope AlertScopeUnit the unit itself.
//
//   - A shape (polygon, circle, multipolygon, point) is inside when every
//     vertex is, within scopeTolerance (a circle is judged by the 64 vertices
//     of the polygon drawn for it, so by its centre and radius).
//   - A geocode iochub:unit must name a known unit inside the scope.
//   - Other geocodes (EMMA_ID, FIPS, SAME...) are not judged: the hub draws
//     nothing for them and an area with no shape places the alert in the
//     source's own unit, so it cannot reach outside the scope.
func areaScope(areas []scopeArea) func(ix *units.Index, unit, scope string) *itemError {
	return func(ix *units.Index, unit, scope string) *itemError {
		within, what := unit, "unit"
		if scope != AlertScopeUnit {
			prov, ok := ix.Province(unit)
			if !ok {
				return &itemError{reason: fmt.Sprintf("source unit %s belongs to no province", unit)}
			}
			within, what = prov, "province"
		}
		for _, a := range areas {
			reject := func(reason string) *itemError {
				if within == unit {
					reason += fmt.Sprintf("; a source of unit %s may alert only within it", unit)
				} else {
					reason += fmt.Sprintf("; a source of unit %s may alert only within its %s", unitLabel(ix, unit), what)
				}
				return &itemError{pointer: a.pointer, outside: true, reason: a.label + reason}
			}
			if a.shape != nil {
				for _, v := range a.shape.Vertices() {
					if !nearlyContains(ix, within, v[0], v[1]) {
						return reject(fmt.Sprintf("vertex %s is outside %s %s", fmtPos(v[0], v[1]), what, unitLabel(ix, within)))
					}
				}
			}
			for _, gc := range a.geocodes {
				if !strings.EqualFold(gc.GetValueName(), GeocodeUnit) {
					continue
				}
				code := strings.TrimSpace(gc.GetValue())
				if _, ok := ix.Get(code); !ok {
					return &itemError{pointer: a.pointer, reason: a.label + fmt.Sprintf("geocode %s %s is not a known unit", GeocodeUnit, cap.Clip(code))}
				}
				if !ix.Within(code, within) {
					return reject(fmt.Sprintf("geocode %s %s is outside %s %s", GeocodeUnit, unitLabel(ix, code), what, unitLabel(ix, within)))
				}
			}
		}
		return nil
	}
}

// nearlyContains reports whether the point is in unit code or within
// scopeTolerance of it (one of the eight points around it at that distance
// is in it). In the unit means units.Index.Covers, as when the item is
// placed (resolve): a point of one of its descendants is in it too.
func nearlyContains(ix *units.Index, code string, lon, lat float64) bool {
	if ix.Covers(code, lon, lat) {
		return true
	}
	const d = scopeTolerance
	for _, o := range [8][2]float64{{d, 0}, {-d, 0}, {0, d}, {0, -d}, {d, d}, {d, -d}, {-d, d}, {-d, -d}} {
		if ix.Covers(code, lon+o[0], lat+o[1]) {
			return true
		}
	}
	return false
}
