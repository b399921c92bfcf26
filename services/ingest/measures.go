package ingest

import (
	"fmt"
	"slices"
)

// measure is one named quantity of a point-station kind (water, weather):
// where it goes in the event and which values it may take.
type measure struct {
	dst func(v float64)
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

// readStation reads the head of a point-station observation (air, water,
// weather) of the given FIWARE types: its entity is refDevice, else
// refPointOfInterest, else the id. A station keeps only its period's end (at).
func readStation(f fields, env parseEnv, types ...string) (obsHead, *itemError) {
	return readObservation(f, env, "Point", []string{"refDevice", "refPointOfInterest"}, types...)
}

// readMeasures reads the named quantities of spec (and their aliases) into
// their fields, and every other numeric member into other (nil when none).
// skip names members that are neither (handled by the caller, or not
// measurements).
func readMeasures(f fields, spec map[string]measure, aliases map[string]string, skip map[string]bool) (map[string]float64, *itemError) {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var other map[string]float64
	for _, k := range keys {
		if skip[k] || notMeasurements[k] {
			continue
		}
		name := k
		if a, ok := aliases[k]; ok {
			name = a
		}
		m, known := spec[name]
		if !known {
			raw, ok := f.value(k)
			if !ok || jsonKind(raw) != "number" {
				continue
			}
			v, _, ierr := f.num(k)
			if ierr != nil {
				return nil, ierr
			}
			if other == nil {
				other = make(map[string]float64)
			}
			other[k] = v
			continue
		}
		v, ok, ierr := f.num(k)
		if ierr != nil {
			return nil, ierr
		}
		if !ok {
			continue
		}
		if m.check != nil {
			if why := m.check(k, v); why != "" {
				return nil, &itemError{pointer: k, reason: why}
			}
		}
		m.dst(v)
	}
	return other, nil
}
