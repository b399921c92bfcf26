package gateway

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/twpayne/go-geom"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/kind"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// TestFeatureOfRegisteredKind encodes the state of a kind the gateway has no
// code for, and takes its layer once it is registered.
func TestFeatureOfRegisteredKind(t *testing.T) {
	st := &iocv1.EntityState{Layer: "noise", EntityId: "dev-1", Province: "01", Unit: "00070", UpdatedAt: timestamppb.New(t0),
		Latest: &iocv1.EntityState_Observation{Observation: &iocv1.Observation{Id: "n-1", EntityId: "dev-1", Name: "Hồ Gươm",
			ObservedAt: timestamppb.New(t0), Location: mustWKB(t, geom.NewPointFlat(geom.XY, []float64{105.85, 21.03})),
			Values: map[string]float64{"LAeq": 67.5, "LAmax": 81}}}}
	f, err := encodeFeature(st, "ioc.state.01.noise.dev-1")
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"type":"Feature","id":"noise/dev-1","geometry":{"type":"Point","coordinates":[105.85,21.03]},` +
		`"properties":{"layer":"noise","entityId":"dev-1","name":"Hồ Gươm","province":"01","unit":"00070",` +
		`"updatedAt":"2026-11-21T08:00:00Z","observation":{"id":"n-1","time":"2026-11-21T08:00:00Z","values":{"LAeq":67.5,"LAmax":81}}}}`
	if string(f.json) != want || !f.located {
		t.Errorf("feature =\n%s\nwant\n%s", f.json, want)
	}
	if !json.Valid(f.json) {
		t.Error("feature is not JSON")
	}

	q := url.Values{"province": {"01"}, "layers": {"noise"}}
	if _, err := parseLiveQuery(q); err == nil {
		t.Error("layers=noise taken before noise is registered")
	}
	unregister, err := kind.Default.Register(kind.Kind{Name: "noise", Values: []kind.Value{{Name: "LAeq"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unregister)
	if p, err := parseLiveQuery(q); err != nil || len(p.Layers) != 1 || p.Layers[0] != "noise" {
		t.Errorf("layers=noise once registered: %v, %v; want the layer noise", p.Layers, err)
	}
}
