package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
)

// TestGroupsAPI: PUT /v1/units/groups/{code} queues unit.group.put on the
// national subject with the document as understood, and refuses a bad code
// or an unknown member with a 400 naming it.
func TestGroupsAPI(t *testing.T) {
	srv, n, _ := operatorServer(t, testenv.PostGISWithUnits(t))
	ctx := context.Background()
	cons, err := n.JS.OrderedConsumer(ctx, subjects.StreamActions, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	it, err := cons.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()

	for _, c := range []struct{ name, code, body, want string }{
		{"unknown member", "inner-city", `{"name":"Nội đô","members":["00070","99999"]}`, "99999"},
		{"bad code", "a.b", `{"name":"x","members":["00070"]}`, "the code must be"},
		{"no members", "g", `{"name":"x","members":[]}`, "no members"},
		{"unknown field", "g", `{"name":"x","members":["00070"],"colour":"red"}`, "colour"},
	} {
		code, _, body := do(t, "PUT", srv.URL+"/v1/units/groups/"+c.code, testToken, "application/json", c.body, nil)
		if code != http.StatusBadRequest || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s; want 400 naming %q", c.name, code, body, c.want)
		}
	}
	// A group of the most members the schema takes is read whole (here it
	// is then refused for its unknown members, named); a body past that
	// room is 413 naming the limit.
	members := func(n int, code string) string {
		ms := make([]string, n)
		for i := range ms {
			ms[i] = fmt.Sprintf("%q", fmt.Sprintf(code, i))
		}
		return `{"name":"Lưu vực sông Hồng","members":[` + strings.Join(ms, ",") + `]}`
	}
	if code, _, body := do(t, "PUT", srv.URL+"/v1/units/groups/red-river", testToken, "application/json",
		members(schema.MaxGroupMembers, "9%04d"), nil); code != http.StatusBadRequest || !strings.Contains(body, "90000") {
		t.Errorf("a group of %d five-digit members: %d %.300s; want 400 naming an unknown member", schema.MaxGroupMembers, code, body)
	}
	if code, _, body := do(t, "PUT", srv.URL+"/v1/units/groups/red-river", testToken, "application/json",
		members(schema.MaxGroupMembers+1000, "%064d"), nil); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "at most 5000 members") {
		t.Errorf("an oversized group document: %d %.300s; want 413 naming the limit", code, body)
	}
	code, _, body := do(t, "PUT", srv.URL+"/v1/units/groups/inner-city", testToken, "application/json",
		`{"name":"Nội đô","members":["00070","00166"]}`, map[string]string{HeaderIdempotencyKey: "g-1"})
	if code != http.StatusAccepted || !strings.Contains(body, `"type":"unit.group.put","target":"inner-city"`) {
		t.Fatalf("PUT = %d %s", code, body)
	}
	a, m := nextAction(t, it)
	if m.Subject() != "ioc.action.VN.unit.inner-city" || a.GetTargetKind() != "unit" || a.GetTarget() != "inner-city" {
		t.Errorf("action %v on %s", a, m.Subject())
	}
	var doc schema.GroupDocument
	if err := json.Unmarshal(a.GetPayload(), &doc); err != nil || doc.Name != "Nội đô" || len(doc.Members) != 2 {
		t.Errorf("payload %s (%v)", a.GetPayload(), err)
	}
}

// TestGroupsAPIScope: redefining a group takes an admin of every province of
// its current members too, not only of the new ones (an admin of 01 could
// take 79's group and leave 79's identities out of its live view).
func TestGroupsAPIScope(t *testing.T) {
	const admin01 = "iocid_groups-admin-01"
	db := testenv.PostGISWithUnits(t)
	srv, _, _ := operatorServerOf(t, db, []auth.Identity{
		{ID: "id_00000000000000c1", Name: "admin of 01", Role: auth.RoleAdmin, Scopes: []string{"01"}, TokenSHA256: auth.HashToken(admin01)},
	})
	// south: 79's now; later: 79's from tomorrow; mine: 01's from tomorrow.
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO unit_group_member (group_code, member_code, valid_from)
		VALUES ('south', '79', now() - interval '1 day'), ('later', '79', now() + interval '1 day'),
		       ('mine', '00070', now() + interval '1 day')`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		token, group string
		want         int
	}{
		{admin01, "south", http.StatusForbidden}, // 79's group
		{admin01, "later", http.StatusForbidden}, // 79's from tomorrow, which the redefinition would close
		{admin01, "mine", http.StatusAccepted},   // 01's own, from tomorrow
		{admin01, "north", http.StatusAccepted},  // a new one, of 01's units
		{testToken, "south", http.StatusAccepted},
	} {
		code, _, body := do(t, "PUT", srv.URL+"/v1/units/groups/"+c.group, c.token, "application/json",
			`{"name":"taken","members":["00070"]}`, nil)
		if code != c.want {
			t.Errorf("PUT %s as %s = %d %s; want %d", c.group, c.token, code, body, c.want)
		}
	}
}
