package aggregator

import (
	"errors"
	"fmt"
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
	notNamed := func(name string) bool {
		return !slices.ContainsFunc(named, func(f namedValue) bool { return f.name == name })
	}
	if err := addOthers(extra, other, notNamed, true); err != nil {
		return nil, err
	}
	return extra, nil
}

// addOthers adds to extra the values of other, a message's values by name,
// whose name keep accepts. It rejects a name that cannot be stored and a
// value that is not a finite number (of every entry when checkAll, else of
// those kept). Of several bad entries the error names the least by name,
// the same on every run whatever the map's order, with no sort on the way
// of a good message.
func addOthers(extra map[string]any, other map[string]float64, keep func(string) bool, checkAll bool) error {
	var badName string
	var bad error
	reject := func(name string, err error) {
		if bad == nil || name < badName {
			badName, bad = name, err
		}
	}
	for name, v := range other {
		switch kept := keep(name); {
		case name == "" || strings.ContainsRune(name, 0):
			reject(name, errors.New("other has an empty name or one with a NUL byte"))
		case (kept || checkAll) && !finite(v):
			reject(name, fmt.Errorf("%s is %v; want a finite number", name, v))
		case kept:
			extra[name] = v
		}
	}
	return bad
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
