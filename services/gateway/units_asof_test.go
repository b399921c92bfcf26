package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/seed"
	"github.com/iochub/iochub/internal/testenv"
)

// TestUnitsAsOf: /v1/units with at answers the map of that time (02 Hà
// Giang on 2025-06-01, gone on the current map), read by an identity of its
// successor 08 Tuyên Quang and by one of every province, refused to an
// identity of another province or of some units only; a bad at is 400.
func TestUnitsAsOf(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	if _, err := schema.ImportPre2025Provinces(ctx, db.Pool, seed.ProvincesPre2025(), seed.ProvinceMerges2025()); err != nil {
		t.Fatal(err)
	}
	n := testenv.NATS(t)
	a, err := auth.New(auth.Config{Static: []auth.StaticToken{
		{Token: testToken, Principal: auth.Principal{ID: "admin", Role: auth.RoleAdmin, Scopes: []string{auth.AllScopes}}},
		{Token: "v08", Principal: auth.Principal{ID: "v08", Role: auth.RoleViewer, Scopes: []string{"08"}}},
		{Token: "v01", Principal: auth.Principal{ID: "v01", Role: auth.RoleViewer, Scopes: []string{"01"}}},
		{Token: "ward", Principal: auth.Principal{ID: "ward", Role: auth.RoleViewer, Scopes: []string{"00070"}}},
	}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{}, Deps{JS: n.JS, Pool: db.Pool, Metrics: prometheus.NewRegistry(), Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveGateway(t, g)
	get := func(token, query string) (int, string) {
		t.Helper()
		code, _, body := do(t, "GET", srv.URL+"/v1/units?"+query, token, "", "", nil)
		return code, body
	}
	june := "at=" + url.QueryEscape("2025-06-01T00:00:00+07:00")

	code, body := get(testToken, "province=02&"+june)
	var fc unitsFC
	if code != http.StatusOK || json.Unmarshal([]byte(body), &fc) != nil || len(fc.Features) == 0 ||
		fc.Features[0].ID != "02" || !strings.Contains(fc.Features[0].Properties.Name, "Hà Giang") {
		t.Fatalf("02 as of June 2025 = %d %.300s; want Hà Giang", code, body)
	}
	// Unescaped, the offset's + arrives as a space; it is read as +.
	if code, body := get(testToken, "province=02&at=2025-06-01T00:00:00+07:00"); code != http.StatusOK {
		t.Errorf("02 with an unescaped at = %d %.200s", code, body)
	}
	if code, body := get(testToken, "province=02"); code != http.StatusNotFound {
		t.Errorf("02 now = %d %.200s; want 404 (merged into 08)", code, body)
	}
	if code, body := get(testToken, "province=02&at=2025-08-01"); code != http.StatusNotFound {
		t.Errorf("02 as of August 2025 = %d %.200s; want 404", code, body)
	}
	if code, body := get("v08", "province=02&"+june); code != http.StatusOK {
		t.Errorf("viewer of 08 reading 02 of June 2025 = %d %.200s; want 200 (08 succeeds 02)", code, body)
	}
	if code, body := get("v01", "province=02&"+june); code != http.StatusForbidden || !strings.Contains(body, "08") {
		t.Errorf("viewer of 01 reading 02 of June 2025 = %d %.200s; want 403 naming 08", code, body)
	}
	if code, body := get("v01", "province=01&"+june); code != http.StatusOK {
		t.Errorf("viewer of 01 reading old 01 = %d %.200s; want 200", code, body)
	}
	if code, body := get("ward", "province=01&"+june); code != http.StatusForbidden {
		t.Errorf("viewer of a ward reading old 01 = %d %.200s; want 403", code, body)
	}
	// The current map as of now still lists the wards of 01.
	if code, body := get(testToken, "province=01&at=2026-01-01"); code != http.StatusOK || strings.Count(body, `"type":"Feature"`) != 127 {
		t.Errorf("01 as of 2026 = %d with %d features; want 127", code, strings.Count(body, `"type":"Feature"`))
	}
	if code, body := get(testToken, "province=01&at=yesterday"); code != http.StatusBadRequest || !strings.Contains(body, "at") {
		t.Errorf("bad at = %d %.200s; want 400", code, body)
	}
}
