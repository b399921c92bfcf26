package ingest

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/iochub/iochub/internal/feedcheck"
)

// measure is one named quantity of a point-station kind (air, water,
// weather) whose event is an M: where it goes in the event and which values
// it may take. The tables of them are built once, not per item.
type measure[M any] struct {
	field func(m M) **float64
	// check returns why v cannot be this quantity, or "".
	check func(name string, v float64) string
}

func nonNegative(name string, v float64) string {
	if v < 0 {
		return fmt.Sprintf("%s %v is negative; it cannot be", name, v)
	}
	return ""
}

func fraction(name string, v float64) string {
	if v < 0 || v > 1 {
		return fmt.Sprintf("%s %v is outside [0, 1]; FIWARE gives it as a fraction (85 %% is 0.85)", name, v)
	}
	return ""
}

func between(lo, hi float64) func(string, float64) string {
	return func(name string, v float64) string {
		if v < lo || v > hi {
			return fmt.Sprintf("%s %v is outside [%v, %v]", name, v, lo, hi)
		}
		return ""
	}
}

// bound is the physically plausible range of a quantity, in the unit
// docs/feeds.md gives it.
type bound struct{ lo, hi float64 }

// plausible bounds every named quantity of every kind (by its canonical
// name): a value outside is a sensor or unit fault (pm25 1e308), not an
// observation, and would poison every aggregate it enters. docs/feeds.md
// lists the same table.
var plausible = map[string]bound{
	// Air, µg/m³ (CO too: 10 mg/m³ = 10000).
	"pm25": {0, 2000}, "pm10": {0, 2000}, "pm1": {0, 2000},
	"no2": {0, 10000}, "o3": {0, 10000}, "so2": {0, 10000}, "nh3": {0, 10000}, "no": {0, 10000}, "nox": {0, 10000},
	"co": {0, 100000},
	// Weather and the weather members of air and water stations.
	"temperature":         {-60, 70},   // °C (air and water alike)
	"relativeHumidity":    {0, 100},    // a fraction 0..1 (weather refuses more); some air sources send %
	"windSpeed":           {0, 120},    // m/s
	"windDirection":       {-360, 360}, // degrees
	"precipitation":       {0, 2000},   // mm
	"atmosphericPressure": {0, 1200},   // hPa
	// Water.
	"waterLevel": {-1000, 10000}, "alarmLevel1": {-1000, 10000}, "alarmLevel2": {-1000, 10000}, "alarmLevel3": {-1000, 10000}, // m
	"flow":            {-1e6, 1e6}, // m³/s
	"ph":              {0, 14},
	"conductivity":    {0, 1e6}, // µS/cm
	"turbidity":       {0, 1e5}, // NTU
	"dissolvedOxygen": {0, 100}, // mg/L
	// Traffic.
	"intensity":            {0, 1e6}, // vehicles in the period
	"occupancy":            {0, 100}, // a fraction 0..1; some sources send %
	"averageVehicleSpeed":  {0, 300}, // km/h
	"averageVehicleLength": {0, 100}, // m
	"averageHeadwayTime":   {0, 86400},
}

// MaxOther is the most numeric members of an item kept in other (each
// becomes a key of the extra column and of every live state).
const MaxOther = 64

// maxOther bounds the magnitude of a quantity iochub does not know (kept in other).
const maxOther = 1e12

// checkPlausible returns why v cannot be quantity name (canonical) sent as
// member, or "".
func checkPlausible(member, name string, v float64) string {
	b, ok := plausible[name]
	if !ok {
		if math.Abs(v) > maxOther {
			return fmt.Sprintf("%s %v is beyond ±%g; no measurement is that large", member, v, maxOther)
		}
		return ""
	}
	if v < b.lo || v > b.hi {
		return fmt.Sprintf("%s %v is outside the plausible range [%v, %v]; check the sensor and the unit", member, v, b.lo, b.hi)
	}
	return ""
}

// readStation reads the head of a point-station observation (air, water,
// weather) of the given FIWARE types: its entity is refDevice, else
// refPointOfInterest, else the id. A station keeps only its period's end (at).
func readStation(f fields, env parseEnv, types ...string) (obsHead, *itemError) {
	return readObservation(f, env, "Point", []string{"refDevice", "refPointOfInterest"}, types...)
}

// measureTable is a kind's measures indexed by every member name that
// names one (canonical or alias), with what readMeasures checks, and the
// members it skips (handled by the caller, or not measurements), so that
// reading a member costs one lookup; built once per kind.
type measureTable[M any] struct {
	byMember map[string]measureEntry[M]
}

type measureEntry[M any] struct {
	// skipped marks a member newMeasureTable was told to skip, or one of
	// notMeasurements.
	skipped bool
	name    string // canonical
	m       measure[M]
	// b is plausible[name], if hasBound.
	b        bound
	hasBound bool
}

// newMeasureTable indexes spec under its names and their aliases.
func newMeasureTable[M any](spec map[string]measure[M], aliases map[string]string, skip map[string]bool) measureTable[M] {
	t := measureTable[M]{byMember: make(map[string]measureEntry[M], len(spec)+len(aliases)+len(skip)+len(notMeasurements))}
	add := func(member, name string) {
		m, ok := spec[name]
		if !ok || skip[member] || notMeasurements[member] {
			return
		}
		b, hasBound := plausible[name]
		t.byMember[member] = measureEntry[M]{name: name, m: m, b: b, hasBound: hasBound}
	}
	for name := range spec {
		if _, aliased := aliases[name]; !aliased {
			add(name, name)
		}
	}
	for member, name := range aliases {
		add(member, name)
	}
	for _, names := range []map[string]bool{skip, notMeasurements} {
		for member, is := range names {
			if is { // add refused it: no entry yet
				t.byMember[member] = measureEntry[M]{skipped: true}
			}
		}
	}
	return t
}

// checkBound is checkPlausible with the bound already looked up.
func (e *measureEntry[M]) checkBound(member string, v float64) string {
	if !e.hasBound {
		return checkPlausible(member, e.name, v)
	}
	if v < e.b.lo || v > e.b.hi {
		return fmt.Sprintf("%s %v is outside the plausible range [%v, %v]; check the sensor and the unit", member, v, e.b.lo, e.b.hi)
	}
	return ""
}

// readMeasures reads the named quantities of the table (and their aliases)
// into their fields, and every other numeric member into other (nil when
// none). The result is that of reading the members in the order of their
// names: the member a rejection names is the first at fault in that order,
// and of two members naming one quantity (pm25 and PM2.5) the later one
// wins. Members that came as a list are read in the body's order first,
// which gives the same result unless one is at fault or two name one
// quantity; only then are they sorted and read again. msg must come with
// none of its quantities set (the body-order pass takes a quantity already
// set for a clash).
func readMeasures[M any](f fields, msg M, t *measureTable[M]) (map[string]float64, *itemError) {
	var kb [maxListMembers]member
	members := kb[:0]
	for k, raw := range f.all() {
		members = append(members, member{k, raw})
	}
	if f.list != nil {
		if other, ierr, clash := readMeasuresIn(members, msg, t, true); ierr == nil && !clash {
			return other, nil
		}
	}
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
	other, ierr, _ := readMeasuresIn(members, msg, t, false)
	return other, ierr
}

// readMeasuresIn is readMeasures over members in their order; with once, it
// stops (clash) at a quantity that an earlier member already set.
func readMeasuresIn[M any](members []member, msg M, t *measureTable[M], once bool) (other map[string]float64, ierr *itemError, clash bool) {
	// The values of the quantities, in one allocation (a field holds a pointer).
	var vals []float64
	for i := range members {
		k := members[i].key
		e, known := t.byMember[k]
		if e.skipped {
			continue
		}
		if !known {
			raw, ok := unwrap(members[i].raw)
			if !ok || jsonKind(raw) != "number" {
				continue
			}
			v, _, ierr := numOf(k, raw, ok)
			if ierr != nil {
				return nil, ierr, false
			}
			// The name becomes a key of the extra jsonb column and of the live values.
			if err := feedcheck.ID("member name", k); err != nil {
				// The pointer names the member unless it has no name (a JSON pointer cannot show it then).
				return nil, &itemError{pointer: pathSegment(feedcheck.Clip(k)), reason: fmt.Sprintf("%v (%q)", err, feedcheck.Clip(k))}, false
			}
			if why := checkPlausible(k, k, v); why != "" {
				return nil, &itemError{pointer: k, reason: why}, false
			}
			if len(other) >= MaxOther {
				return nil, &itemError{pointer: k, reason: fmt.Sprintf("more than %d numeric members that are not quantities of this kind; send at most %d", MaxOther, MaxOther)}, false
			}
			if other == nil {
				other = make(map[string]float64)
			}
			other[k] = v
			continue
		}
		raw, ok := unwrap(members[i].raw)
		v, ok, ierr := numOf(k, raw, ok)
		if ierr != nil {
			return nil, ierr, false
		}
		if !ok {
			continue
		}
		if e.m.check != nil {
			if why := e.m.check(k, v); why != "" {
				return nil, &itemError{pointer: k, reason: why}, false
			}
		}
		if why := e.checkBound(k, v); why != "" {
			return nil, &itemError{pointer: k, reason: why}, false
		}
		dst := e.m.field(msg)
		if once && *dst != nil {
			return nil, nil, true
		}
		if vals == nil {
			vals = make([]float64, 0, len(members)) // never grown: at most one value per member
		}
		vals = append(vals, v)
		*dst = &vals[len(vals)-1]
	}
	return other, nil, false
}
