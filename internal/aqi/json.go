package aqi

import (
	"math"
	"strconv"

	"github.com/iochub/iochub/internal/jsonw"
	"github.com/iochub/iochub/internal/pbtime"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// JSON is the JSON form of a station's AQI (ioc.v1.AirQualityIndex) in the
// hub's contracts: properties.aqi of an air station's live Feature, and the
// "aqi" member of sensor.last_values in PostGIS. It is its VN_AQI as the
// aggregator computed it (Decision 1459/QĐ-TCMT), or why there is none.
type JSON struct {
	Hourly     *int32             `json:"hourly,omitempty"`
	Dominant   string             `json:"dominant,omitempty"`
	Band       int32              `json:"band,omitempty"`
	BandVI     string             `json:"bandVi,omitempty"`
	BandEN     string             `json:"bandEn,omitempty"`
	Color      string             `json:"color,omitempty"`
	Hour       string             `json:"hour,omitempty"` // RFC 3339, UTC
	Reason     string             `json:"reason,omitempty"`
	Daily      *int32             `json:"daily,omitempty"`
	SubIndices map[string]float64 `json:"subIndices,omitempty"`
}

// JSONOf is x's JSON form; nil when x is nil. An hour that is not a valid
// timestamp between years 0 and 9999 is left out, and so are sub-indices
// without a name or with a value that is not finite, so the result always
// marshals.
func JSONOf(x *iocv1.AirQualityIndex) *JSON {
	if x == nil {
		return nil
	}
	out := &JSON{Hourly: x.Hourly, Dominant: x.GetDominant(), Band: x.GetBand(), BandVI: x.GetBandVi(),
		BandEN: x.GetBandEn(), Color: x.GetColor(), Reason: x.GetReason(), Daily: x.Daily}
	out.Hour = pbtime.RFC3339(x.GetHour())
	for k, v := range x.GetSubIndices() {
		if k != "" && !math.IsNaN(v) && !math.IsInf(v, 0) {
			if out.SubIndices == nil {
				out.SubIndices = map[string]float64{}
			}
			out.SubIndices[k] = v
		}
	}
	return out
}

// AppendJSON appends j as encoding/json writes it with HTML left unescaped
// (its members omitted when empty, in the struct's order), without its
// reflection: an air station's AQI is written with every observation it
// rates. FuzzAppendJSON holds it to encoding/json's bytes; j's
// sub-indices are finite, as JSONOf leaves them.
func (j *JSON) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	n := len(b)
	member := func(name string) {
		if len(b) > n {
			b = append(b, ',')
		}
		b = append(append(append(b, '"'), name...), `":`...)
	}
	text := func(name, v string) {
		if v != "" {
			member(name)
			b = jsonw.AppendString(b, v)
		}
	}
	integer := func(name string, v int32) {
		member(name)
		b = strconv.AppendInt(b, int64(v), 10)
	}
	if j.Hourly != nil {
		integer("hourly", *j.Hourly)
	}
	text("dominant", j.Dominant)
	if j.Band != 0 {
		integer("band", j.Band)
	}
	text("bandVi", j.BandVI)
	text("bandEn", j.BandEN)
	text("color", j.Color)
	text("hour", j.Hour)
	text("reason", j.Reason)
	if j.Daily != nil {
		integer("daily", *j.Daily)
	}
	if len(j.SubIndices) > 0 {
		member("subIndices")
		b = jsonw.AppendFloats(b, j.SubIndices)
	}
	return append(b, '}')
}
