package testkit

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// GaugesOf are the values of reg's gauges whose label name is value, by
// metric name; a series absent is absent from the map.
func GaugesOf(t testing.TB, reg prometheus.Gatherer, name, value string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == name && lp.GetValue() == value {
					out[mf.GetName()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}
