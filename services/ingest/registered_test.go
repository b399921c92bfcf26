package ingest

import (
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/kind"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// TestParseRegistered reads items of a kind registered in the test alone.
func TestParseRegistered(t *testing.T) {
	if _, ok := lookupSpec("noise"); ok {
		t.Fatal("noise is taken before it is registered")
	}
	unregister, err := kind.Default.Register(kind.Kind{Name: "noise", Types: []string{"NoiseLevelObserved"},
		Values: []kind.Value{{Name: "LAeq", Min: 0, Max: 200, Required: true}, {Name: "LAmax", Min: 0, Max: 200}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unregister)
	spec, ok := lookupSpec("noise")
	if !ok || spec.ceType != "vn.ioc.noise.observed.v1" || !strings.Contains(strings.Join(supportedKinds(), ","), "noise") {
		t.Fatalf("spec of noise = %+v, %v; want it taken, of type vn.ioc.noise.observed.v1, and listed", spec, ok)
	}
	env := parseEnv{now: time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC), maxFuture: 10 * time.Minute}
	const head = `{"id":"n-1","refDevice":"dev-1","name":"Hồ Gươm","dateObserved":"2025-07-01T08:00:00Z","location":{"type":"Point","coordinates":[105.85,21.02]}`
	it, ierr := spec.parse(reportFields(t, head+`,"type":"NoiseLevelObserved","LAeq":67.5,"other":3}`), env)
	if ierr != nil {
		t.Fatal(ierr)
	}
	m := it.msg.(*iocv1.Observation)
	if it.entityID != "dev-1" || m.GetName() != "Hồ Gươm" || len(m.GetValues()) != 1 || m.GetValues()["LAeq"] != 67.5 ||
		len(m.GetLocation().GetWkb()) != 21 || it.shape != shapePoint {
		t.Errorf("parsed %v (entity %s); want dev-1's Point with LAeq 67.5 alone", m, it.entityID)
	}
	for body, pointer := range map[string]string{
		head + `}`:                                       "LAeq",
		head + `,"LAeq":201}`:                            "LAeq",
		head + `,"LAeq":60,"LAmax":-1}`:                  "LAmax",
		head + `,"LAeq":"loud"}`:                         "LAeq",
		head + `,"LAeq":60,"type":"AirQualityObserved"}`: "type",
	} {
		_, ierr := spec.parse(reportFields(t, body), env)
		if ierr == nil || ierr.pointer != pointer {
			t.Errorf("%s: rejection %v; want one at %s", body, ierr, pointer)
		}
	}
}
