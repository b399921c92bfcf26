package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/kind"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// TestEndToEndRegisteredKind registers a kind in this test alone, with no
// code of its own in the services, and sees an item of it flow from
// POST /v1/feeds/noise through NATS and PostGIS to the live view.
func TestEndToEndRegisteredKind(t *testing.T) {
	unregister, err := kind.Default.Register(kind.Kind{
		Name:   "noise",
		Types:  []string{"NoiseLevelObserved"},
		Values: []kind.Value{{Name: "LAeq", Min: 0, Max: 200, Required: true}, {Name: "LAmax", Min: 0, Max: 200}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unregister)
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	token, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "hk-noise", Name: "Hoàn Kiếm noise", UnitCode: "00070"})
	if err != nil {
		t.Fatal(err)
	}
	h := startHub(t, "all", n, db)
	live := newLiveView(t, h.url, "01")
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	lon, lat := 105.8522, 21.0288 // by Hoàn Kiếm lake, in ward 00070
	item := func(id string, laeq any) map[string]any {
		return map[string]any{"id": id, "type": "NoiseLevelObserved", "refDevice": "hk-noise-1", "name": "Hồ Gươm",
			"dateObserved": at.UTC().Format(time.RFC3339), "location": map[string]any{"type": "Point", "coordinates": []float64{lon, lat}},
			"LAeq": laeq, "LAmax": 81.5}
	}

	if code, res, raw := post(t, h.url+"/v1/feeds/noise", token, []any{item("n-1", 67.5)}); code != http.StatusAccepted || res.Accepted != 1 {
		t.Fatalf("POST noise = %d %s; want 202 with 1 accepted", code, raw)
	}
	props, g := live.wait(t, "hk-noise-1", 30*time.Second, any1)
	if v := obj(obj(props["observation"])["values"]); props["layer"] != "noise" || props["unit"] != "00070" ||
		props["name"] != "Hồ Gươm" || v["LAeq"] != 67.5 || v["LAmax"] != 81.5 {
		t.Errorf("live noise = %v; want layer noise, unit 00070, its name, LAeq 67.5, LAmax 81.5", props)
	}
	if c, _ := g["coordinates"].([]any); g["type"] != "Point" || len(c) != 2 || c[0] != lon || c[1] != lat {
		t.Errorf("live noise geometry = %v; want Point [%v %v]", g, lon, lat)
	}
	var rows int
	var laeq float64
	err = db.Pool.QueryRow(ctx, `SELECT count(*), max((properties->>'LAeq')::float8) FROM observation_generic
		WHERE kind = 'noise' AND entity_id = 'hk-noise-1'`).Scan(&rows, &laeq)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 1 || laeq != 67.5 {
		t.Errorf("observation_generic holds %d rows of hk-noise-1 with LAeq %v; want 1 with 67.5", rows, laeq)
	}

	// The kind's bounds are checked before the item is accepted.
	code, res, raw := post(t, h.url+"/v1/feeds/noise", token, []any{item("n-2", 500.0)})
	if rejected := code/100 == 4 || code == http.StatusAccepted && res.Rejected == 1; !rejected {
		t.Fatalf("POST of LAeq 500 = %d %s; want a rejection", code, raw)
	}
	// Once unregistered, the kind is not taken.
	unregister()
	if code, _, raw := post(t, h.url+"/v1/feeds/noise", token, []any{item("n-3", 60.0)}); code != http.StatusNotFound {
		t.Errorf("POST to an unregistered kind = %d %s; want 404", code, raw)
	}
}
