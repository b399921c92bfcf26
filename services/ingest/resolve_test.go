package ingest_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/iochub/iochub/services/ingest"
)

// TestUnitResolution checks which unit each kind of item lands in, per token.
func TestUnitResolution(t *testing.T) {
	e := newEnv(t, ingest.Config{})
	hcmc := [2]float64{106.7009, 10.7769}
	span := capAlert("span", hoanKiem)
	// A polygon from Hoàn Kiếm to Cầu Giấy: in two wards, so its unit is the province.
	span["area"] = []any{map[string]any{"areaDesc": "Hoàn Kiếm – Cầu Giấy", "geometry": polygon(
		[2]float64{105.7833, 21.0250}, [2]float64{105.8524, 21.0250}, [2]float64{105.8524, 21.0300},
		[2]float64{105.7833, 21.0300}, [2]float64{105.7833, 21.0250})}}
	noGeom := capAlert("geocode-only", hoanKiem)
	noGeom["area"] = []any{map[string]any{"areaDesc": "Hoàn Kiếm", "geocode": []any{map[string]any{"valueName": "GSO", "value": "00070"}}}}
	tests := []struct {
		name, kind, token string
		item              map[string]any
		wantStatus        string
		wantUnit          string
		wantSubject       string
	}{
		{"dev air in a ward", "air", tokDev, air("r1", cauGiay), "accepted", "00166", "ioc.feed.01.00166.air"},
		{"dev air in HCMC (no wards loaded)", "air", tokDev, air("r2", hcmc), "accepted", "79", "ioc.feed.79.79.air"},
		{"province source, item in a ward", "air", tokProvince, air("r3", hoanKiem), "accepted", "00070", "ioc.feed.01.00070.air"},
		{"HCMC source in HCMC", "air", tokHCMC, air("r4", hcmc), "accepted", "79", "ioc.feed.79.79.air"},
		{"dev traffic by its middle vertex", "traffic", tokDev, traffic("r5", cauGiay), "accepted", "00166", "ioc.feed.01.00166.traffic"},
		{"dev alert across two wards", "alert", tokDev, span, "accepted", "01", "ioc.feed.01.01.alert"},
		{"ward source, alert across two wards", "alert", tokWard, with(span, "identifier", "span-hk"), "accepted", "00070", "ioc.feed.01.00070.alert"},
		{"ward source, geocode-only alert", "alert", tokWard, noGeom, "accepted", "00070", "ioc.feed.01.00070.alert"},
		{"dev token, geocode-only alert", "alert", tokDev, with(capAlert("g2", hoanKiem), "area", []any{map[string]any{"areaDesc": "x", "geocode": []any{map[string]any{"valueName": "GSO", "value": "00070"}}}}), "rejected", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, tt.kind, tt.token, "", arr(t, tt.item))
			if r.code != 202 || len(r.resp.Results) != 1 {
				t.Fatalf("got HTTP %d; want 202: %s", r.code, r.raw)
			}
			got := r.resp.Results[0]
			if got.Status != tt.wantStatus || got.Unit != tt.wantUnit || got.Subject != tt.wantSubject {
				t.Errorf("got %s in %q on %q (%s); want %s in %q on %q", got.Status, got.Unit, got.Subject, got.Reason, tt.wantStatus, tt.wantUnit, tt.wantSubject)
			}
		})
	}
}

// TestBodyTooLargeChunked sends a body without Content-Length, so the limit trips while reading.
func TestBodyTooLargeChunked(t *testing.T) {
	e := newEnv(t, ingest.Config{MaxBodyBytes: 4096})
	var items []map[string]any
	for i := range 40 {
		items = append(items, air("c"+strings.Repeat("x", i), hoanKiem))
	}
	body := io.MultiReader(bytes.NewReader(arr(t, items...))) // hides the length
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/feeds/air", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tokWard)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "larger than 4096 bytes") {
		t.Errorf("got HTTP %d %s; want 413 naming the limit", res.StatusCode, b)
	}
}
