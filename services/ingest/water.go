package ingest

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// waterAliases are spellings of WaterQualityObserved quantities onto the names of waterMeasures.
var waterAliases = map[string]string{"pH": "ph", "O2": "dissolvedOxygen", "Tur": "turbidity"}

// waterMeasures maps FIWARE WaterQualityObserved names, and iochub's flood-watch
// names (waterLevel, alarmLevel1..3, flow), onto the proto.
var waterMeasures = map[string]measure[*iocv1.WaterObserved]{
	// A water level is measured against the station's datum and may be below it.
	"waterLevel":  {field: func(m *iocv1.WaterObserved) **float64 { return &m.WaterLevel }},
	"alarmLevel1": {field: func(m *iocv1.WaterObserved) **float64 { return &m.AlarmLevel_1 }},
	"alarmLevel2": {field: func(m *iocv1.WaterObserved) **float64 { return &m.AlarmLevel_2 }},
	"alarmLevel3": {field: func(m *iocv1.WaterObserved) **float64 { return &m.AlarmLevel_3 }},
	// A tidal river can flow backwards: a negative discharge is allowed.
	"flow":            {field: func(m *iocv1.WaterObserved) **float64 { return &m.Flow }},
	"temperature":     {field: func(m *iocv1.WaterObserved) **float64 { return &m.Temperature }},
	"ph":              {field: func(m *iocv1.WaterObserved) **float64 { return &m.Ph }, check: between(0, 14)},
	"conductivity":    {field: func(m *iocv1.WaterObserved) **float64 { return &m.Conductivity }, check: nonNegative},
	"turbidity":       {field: func(m *iocv1.WaterObserved) **float64 { return &m.Turbidity }, check: nonNegative},
	"dissolvedOxygen": {field: func(m *iocv1.WaterObserved) **float64 { return &m.DissolvedOxygen }, check: nonNegative},
}

// waterTable indexes waterMeasures by member name.
var waterTable = newMeasureTable(waterMeasures, waterAliases, waterSkip)

// waterSkip are members parseWater reads itself.
var waterSkip = map[string]bool{"alarmLevels": true}

// parseWater reads a FIWARE WaterQualityObserved in keyValues form, with
// iochub's flood-watch members: waterLevel (m), alarmLevel1/2/3 (m, the
// station's báo động I/II/III) or alarmLevels [I, II, III], and flow (m³/s).
func parseWater(f fields, env parseEnv) (*parsed, *itemError) {
	h, ierr := readStation(f, env, "WaterQualityObserved", "WaterObserved")
	if ierr != nil {
		return nil, ierr
	}
	m := &iocv1.WaterObserved{Id: h.eventID, EntityId: h.entity, ObservedAt: timestamppb.New(h.at), Name: h.name}
	other, ierr := readMeasures(f, m, &waterTable)
	if ierr != nil {
		return nil, ierr
	}
	m.Other = other
	if ierr := readAlarmLevels(f, m); ierr != nil {
		return nil, ierr
	}
	return h.parsed(shapePoint, m, &m.Location, &m.Origin)
}

// readAlarmLevels reads alarmLevels [I, II, III] (null or absent entries
// allowed), checks it against alarmLevel1..3 when both are given, and checks
// that the levels rise from I to III.
func readAlarmLevels(f fields, m *iocv1.WaterObserved) *itemError {
	dsts := []**float64{&m.AlarmLevel_1, &m.AlarmLevel_2, &m.AlarmLevel_3}
	if raw, ok := f.value("alarmLevels"); ok {
		var ls []*float64
		if jsonKind(raw) != "array" || json.Unmarshal(raw, &ls) != nil {
			return &itemError{pointer: "alarmLevels", reason: "want an array of up to 3 numbers in metres [I, II, III] (null for a level the station lacks), got a JSON " + describe(raw)}
		}
		if len(ls) > 3 {
			return &itemError{pointer: "alarmLevels", reason: fmt.Sprintf("has %d levels; Vietnamese flood warnings have 3 (báo động I, II, III)", len(ls))}
		}
		for i, l := range ls {
			if l == nil {
				continue
			}
			if d := *dsts[i]; d != nil && **dsts[i] != *l {
				return &itemError{pointer: fmt.Sprintf("alarmLevels[%d]", i), reason: fmt.Sprintf("%v disagrees with alarmLevel%d %v", *l, i+1, *d)}
			}
			v := *l
			if why := checkPlausible(fmt.Sprintf("alarmLevels[%d]", i), fmt.Sprintf("alarmLevel%d", i+1), v); why != "" {
				return &itemError{pointer: fmt.Sprintf("alarmLevels[%d]", i), reason: why}
			}
			*dsts[i] = &v
		}
	}
	prev, prevN := (*float64)(nil), 0
	for i, d := range dsts {
		if *d == nil {
			continue
		}
		if prev != nil && **d <= *prev {
			return &itemError{pointer: fmt.Sprintf("alarmLevel%d", i+1), reason: fmt.Sprintf("alarmLevel%d %v is not above alarmLevel%d %v; alarm levels rise from I to III", i+1, **d, prevN, *prev)}
		}
		prev, prevN = *d, i+1
	}
	return nil
}

// describe names raw's JSON type, saying "array of other things" for arrays
// (which is why an array was refused).
func describe(raw json.RawMessage) string {
	if k := jsonKind(raw); k != "array" {
		return k
	}
	return "array with something other than numbers"
}
