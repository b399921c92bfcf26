package aggregator

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// namedValue is a value of a message (nil: absent) by its FIWARE name.
type namedValue struct {
	name string
	v    *float64
}

// checkFinite rejects the first value of vs, in their order, that is not a
// finite number.
func checkFinite(vs []namedValue) error {
	for _, f := range vs {
		if f.v != nil && !finite(*f.v) {
			return fmt.Errorf("%s is %v; want a finite number", f.name, *f.v)
		}
	}
	return nil
}

// checkValues rejects values that are not finite numbers and names in other
// that cannot be stored; it returns other, but for the names of named, as a
// map for the extra column.
func checkValues(named []namedValue, other map[string]float64) (map[string]any, error) {
	if err := checkFinite(named); err != nil {
		return nil, err
	}
	extra := map[string]any{}
	for _, name := range slices.Sorted(maps.Keys(other)) { // the same name in the error every time
		v := other[name]
		if name == "" || strings.ContainsRune(name, 0) {
			return nil, fmt.Errorf("other has an empty name or one with a NUL byte")
		}
		if !finite(v) {
			return nil, fmt.Errorf("%s is %v; want a finite number", name, v)
		}
		if !slices.ContainsFunc(named, func(f namedValue) bool { return f.name == name }) {
			extra[name] = v
		}
	}
	return extra, nil
}

// WaterAlarm is the highest alarm level (báo động I, II, III) that level has
// reached: 0 when none, or when the level or the thresholds are unknown. A
// threshold the station lacks is skipped.
func WaterAlarm(level, l1, l2, l3 *float64) int16 {
	if level == nil {
		return 0
	}
	var alarm int16
	for i, l := range []*float64{l1, l2, l3} {
		if l != nil && *level >= *l {
			alarm = int16(i + 1)
		}
	}
	return alarm
}
