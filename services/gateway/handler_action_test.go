package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/gateway/pgread"
)

// Keys of TestActionOutcome's identities.
const (
	actOperator   = "iocid_act-operator-01"
	actOther      = "iocid_act-other-operator-01"
	actAdmin01    = "iocid_act-admin-01"
	actAdmin79    = "iocid_act-admin-79"
	actAdminAll   = "iocid_act-admin-all"
	actViewer01   = "iocid_act-viewer-01"
	actOperatorID = "id_00000000000000f1"
)

// GET /v1/actions/{id} tells how an action ended (applied, or refused with
// the reason) to the identity that queued it, whatever name it acted under,
// and to the admins of its province; to nobody else, and not before it
// ended (404 alike: ids are not probed).
func TestActionOutcome(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO action_done (id, type, actor, province, target_kind, target, at, result, reason) VALUES
		('a1', 'deadletter.redrive', 'id_00000000000000f1 as Lan', '01', 'deadletter', '12', now(), 'refused', 'not redrivable: FEEDS no longer holds it'),
		('a2', 'alert.ack', 'id_00000000000000f1', '01', 'alert', 'x', now(), 'applied', ''),
		('a3', 'identity.create', 'id_00000000000000f4', '', 'identity', 'id_00000000000000ff', now(), 'applied', '')`); err != nil {
		t.Fatal(err)
	}
	a := testAuth(t, &fakeLoader{list: []auth.Identity{
		{ID: actOperatorID, Name: "operator of 01", Role: auth.RoleOperator, Scopes: []string{"01"}, TokenSHA256: auth.HashToken(actOperator)},
		{ID: "id_00000000000000f2", Name: "another operator of 01", Role: auth.RoleOperator, Scopes: []string{"01"}, TokenSHA256: auth.HashToken(actOther)},
		{ID: "id_00000000000000f3", Name: "admin of 01", Role: auth.RoleAdmin, Scopes: []string{"01"}, TokenSHA256: auth.HashToken(actAdmin01)},
		{ID: "id_00000000000000f4", Name: "admin of 79", Role: auth.RoleAdmin, Scopes: []string{"79"}, TokenSHA256: auth.HashToken(actAdmin79)},
		{ID: "id_00000000000000f5", Name: "admin of all", Role: auth.RoleAdmin, Scopes: []string{auth.AllScopes}, TokenSHA256: auth.HashToken(actAdminAll)},
		{ID: "id_00000000000000f6", Name: "viewer of 01", Role: auth.RoleViewer, Scopes: []string{"01"}, TokenSHA256: auth.HashToken(actViewer01)},
	}})
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{}, Deps{JS: testenv.NATS(t).JS, Pool: db.Pool, Metrics: prometheus.NewRegistry(), Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	g.RegisterOperator(mux, OperatorConfig{})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(g.Close)

	get := func(token, id string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/v1/actions/"+id, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get(actOperator, "a1")
	var v pgread.ActionView
	if err := json.Unmarshal([]byte(body), &v); err != nil || code != 200 || v.Result != "refused" ||
		v.Reason != "not redrivable: FEEDS no longer holds it" || v.Type != "deadletter.redrive" || v.Target != "12" || v.Actor != "id_00000000000000f1 as Lan" {
		t.Fatalf("the actor reads its refused action: %d %s", code, body)
	}
	for _, c := range []struct {
		token, id string
		want      int
	}{
		{actOperator, "a2", 200}, // its own, applied
		{actAdmin01, "a1", 200},  // an admin of the action's province
		{actAdminAll, "a1", 200}, // an admin of every province
		{actAdminAll, "a3", 200}, // an action of no one province
		{actAdmin79, "a3", 200},  // its own, of no one province
		{actOther, "a1", 404},    // another operator of the province: not its action
		{actViewer01, "a1", 404}, // a viewer
		{actAdmin79, "a1", 404},  // an admin of another province
		{actAdmin01, "a3", 404},  // an action of no one province: admins of every province only
		{actOperator, "a9", 404}, // not applied or refused (yet)
		{actOperator, strings.Repeat("x", 200), 404},
		{"", "a1", 401},
	} {
		if code, body := get(c.token, c.id); code != c.want {
			t.Errorf("GET /v1/actions/%.20s as %s = %d %s; want %d", c.id, c.token, code, body, c.want)
		}
	}
}
