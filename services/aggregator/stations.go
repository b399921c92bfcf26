package aggregator

import (
	"fmt"
	"strings"
)

// checkValues rejects values that are not finite numbers and names in other
// that cannot be stored; it returns other as a map for the extra column.
func checkValues(named map[string]*float64, other map[string]float64) (map[string]any, error) {
	for name, v := range named {
		if v != nil && !finite(*v) {
			return nil, fmt.Errorf("%s is %v; want a finite number", name, *v)
		}
	}
	extra := map[string]any{}
	for name, v := range other {
		if name == "" || strings.ContainsRune(name, 0) {
			return nil, fmt.Errorf("other has an empty name or one with a NUL byte")
		}
		if !finite(v) {
			return nil, fmt.Errorf("%s is %v; want a finite number", name, v)
		}
		if _, taken := named[name]; !taken {
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
