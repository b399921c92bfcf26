package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/deadletter"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
)

// Keys of the dead-letter tests' identities.
const (
	dlOperator01  = "iocid_dl-operator-01"
	dlViewer01    = "iocid_dl-viewer-01"
	dlOperatorTwo = "iocid_dl-operator-01-79"
)

// deadletterServer is a gateway with the operator endpoints on real NATS
// and three dead letters: two air items of province 01, one traffic item of 79.
func deadletterServer(t *testing.T) (*httptest.Server, *testenv.NATSEnv, []uint64) {
	t.Helper()
	n := testenv.NATS(t)
	a := testAuth(t, &fakeLoader{list: []auth.Identity{
		{ID: "id_00000000000000d1", Name: "operator of 01", Role: auth.RoleOperator, Scopes: []string{"01"}, TokenSHA256: auth.HashToken(dlOperator01)},
		{ID: "id_00000000000000d2", Name: "viewer of 01", Role: auth.RoleViewer, Scopes: []string{"01"}, TokenSHA256: auth.HashToken(dlViewer01)},
		{ID: "id_00000000000000d3", Name: "operator of 01 and 79", Role: auth.RoleOperator, Scopes: []string{"01", "79"}, TokenSHA256: auth.HashToken(dlOperatorTwo)},
	}})
	if err := a.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{}, Deps{JS: n.JS, Metrics: prometheus.NewRegistry(), Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	g.RegisterOperator(mux, OperatorConfig{})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(g.Close)
	var seqs []uint64
	for i, it := range []struct{ province, kind, data string }{
		{"01", subjects.KindAir, "\x00\x01protobuf"},
		{"79", subjects.KindTraffic, `{"json":true}`},
		{"01", subjects.KindAir, "x"},
	} {
		h := ce.Event{ID: fmt.Sprintf("ev-%d", i), Source: ce.SourceURN(it.province, "u"), Type: ce.ObservedType(it.kind)}.Header()
		h["Iochub-Source"] = []string{"src"}
		h[nats.MsgIdHdr] = []string{fmt.Sprintf("src/ev-%d", i)}
		m := deadletter.Build(h, []byte(it.data), deadletter.Info{Subject: subjects.Feed(it.province, "u", it.kind),
			FeedsSeq: uint64(10 + i), Stage: deadletter.StageDecode, Reason: "bad " + strconv.Itoa(i), Time: time.Now(), Delivered: 1})
		ack, err := n.JS.PublishMsg(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return srv, n, seqs
}

func TestDeadlettersAPI(t *testing.T) {
	srv, n, seqs := deadletterServer(t)
	list := func(query string) deadletterList {
		t.Helper()
		code, _, body := do(t, "GET", srv.URL+"/v1/deadletters"+query, rulesToken, "", "", nil)
		var l deadletterList
		if code != http.StatusOK || json.Unmarshal([]byte(body), &l) != nil {
			t.Fatalf("GET /v1/deadletters%s = %d %s", query, code, body)
		}
		return l
	}
	if l := list(""); len(l.Items) != 3 || l.Next != 0 || l.Items[0].Sequence != seqs[0] || l.Items[2].Sequence != seqs[2] {
		t.Errorf("all = %+v; want the three in order, no next page", l)
	}
	code, _, body := do(t, "GET", srv.URL+"/v1/deadletters", dlOperator01, "", "", nil)
	var own deadletterList
	if code != http.StatusOK || json.Unmarshal([]byte(body), &own) != nil || len(own.Items) != 2 || own.Items[0].Province != "01" || own.Items[1].Province != "01" {
		t.Errorf("an operator of 01 lists %d %s; want the two of 01", code, body)
	}
	first := list("?province=01").Items
	if len(first) != 2 || first[0].Province != "01" || first[1].Province != "01" {
		t.Errorf("province 01 = %+v; want two", first)
	}
	l := first[0]
	if l.Subject != "ioc.feed.01.u.air" || l.Kind != subjects.KindAir || l.Source != "src" || l.EventID != "ev-0" ||
		l.Stage != deadletter.StageDecode || l.Reason != "bad 0" || l.FeedsSeq != 10 || l.Delivered != 1 || l.Time.IsZero() {
		t.Errorf("listed letter = %+v", l)
	}
	if l := list("?kind=traffic").Items; len(l) != 1 || l[0].Province != "79" {
		t.Errorf("kind traffic = %+v; want the one of 79", l)
	}
	page := list("?limit=2")
	if len(page.Items) != 2 || page.Next != seqs[1] {
		t.Fatalf("page 1 = %+v; want two and next %d", page, seqs[1])
	}
	if p2 := list("?limit=2&after=" + strconv.FormatUint(page.Next, 10)); len(p2.Items) != 1 || p2.Items[0].Sequence != seqs[2] || p2.Next != 0 {
		t.Errorf("page 2 = %+v; want the third and no next", p2)
	}

	// One, whole.
	code, _, body = do(t, "GET", srv.URL+"/v1/deadletters/"+strconv.FormatUint(seqs[0], 10), rulesToken, "", "", nil)
	var d struct {
		deadletter.Letter
		Headers       map[string][]string `json:"headers"`
		PayloadBase64 string              `json:"payloadBase64"`
		PayloadJSON   json.RawMessage     `json:"payloadJson"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &d) != nil {
		t.Fatalf("GET one = %d %s", code, body)
	}
	if p, _ := base64.StdEncoding.DecodeString(d.PayloadBase64); string(p) != "\x00\x01protobuf" || d.PayloadJSON != nil ||
		d.Headers[deadletter.HeaderMsgID][0] != "src/ev-0" || d.EventID != "ev-0" {
		t.Errorf("GET one = %s", body)
	}
	code, _, body = do(t, "GET", srv.URL+"/v1/deadletters/"+strconv.FormatUint(seqs[1], 10), rulesToken, "", "", nil)
	if code != http.StatusOK || json.Unmarshal([]byte(body), &d) != nil || string(d.PayloadJSON) != `{"json":true}` {
		t.Errorf("GET JSON one = %d %s; want payloadJson", code, body)
	}

	// Redrive and discard are operator actions on ACTIONS.
	cons, err := n.JS.OrderedConsumer(context.Background(), subjects.StreamActions, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	it, err := cons.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	s0 := strconv.FormatUint(seqs[0], 10)
	code, _, body = do(t, "POST", srv.URL+"/v1/deadletters/"+s0+"/redrive", rulesToken, "", "",
		map[string]string{HeaderIdempotencyKey: "rd-1", HeaderActor: "Trần Thị B"})
	if code != http.StatusAccepted || body != `{"actionId":"`+keyID(t, "test-admin", "POST", "/v1/deadletters/"+s0+"/redrive", "rd-1")+`","type":"deadletter.redrive","target":"`+s0+`"}`+"\n" {
		t.Fatalf("redrive = %d %s", code, body)
	}
	a, m := nextAction(t, it)
	if m.Subject() != "ioc.action.01.deadletter."+s0 || a.GetType() != deadletter.ActionRedrive || a.GetActor() != "test-admin as Trần Thị B" ||
		a.GetProvince() != "01" || a.GetTargetKind() != deadletter.TargetKind || a.GetTarget() != s0 {
		t.Errorf("redrive action %v on %s", a, m.Subject())
	}
	var detail map[string]any
	if json.Unmarshal(a.GetPayload(), &detail) != nil || detail["subject"] != "ioc.feed.01.u.air" || detail["eventId"] != "ev-0" {
		t.Errorf("redrive action payload %s; want the letter's subject and event", a.GetPayload())
	}
	s1 := strconv.FormatUint(seqs[1], 10)
	code, _, body = do(t, "DELETE", srv.URL+"/v1/deadletters/"+s1, rulesToken, "", "", nil)
	if code != http.StatusAccepted {
		t.Fatalf("discard = %d %s", code, body)
	}
	if a, m := nextAction(t, it); a.GetType() != deadletter.ActionDiscard || a.GetProvince() != "79" || m.Subject() != "ioc.action.79.deadletter."+s1 {
		t.Errorf("discard action %v on %s", a, m.Subject())
	}
}

func TestDeadlettersAPIRejections(t *testing.T) {
	srv, _, seqs := deadletterServer(t)
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/v1/deadletters", "", http.StatusUnauthorized},
		{"GET", "/v1/deadletters/1", "wrong", http.StatusUnauthorized},
		{"POST", "/v1/deadletters/1/redrive", "", http.StatusUnauthorized},
		{"DELETE", "/v1/deadletters/1", "", http.StatusUnauthorized},
		{"GET", "/v1/deadletters?limit=0", rulesToken, http.StatusBadRequest},
		{"GET", "/v1/deadletters?limit=1001", rulesToken, http.StatusBadRequest},
		{"GET", "/v1/deadletters?after=-1", rulesToken, http.StatusBadRequest},
		{"GET", "/v1/deadletters/abc", rulesToken, http.StatusBadRequest},
		{"GET", "/v1/deadletters/0", rulesToken, http.StatusBadRequest},
		{"GET", "/v1/deadletters/999", rulesToken, http.StatusNotFound},
		{"POST", "/v1/deadletters/999/redrive", rulesToken, http.StatusNotFound},
		{"DELETE", "/v1/deadletters/999", rulesToken, http.StatusNotFound},
		// Roles and provinces: a viewer handles none; an operator of 01 none of 79 (404, not probed).
		{"GET", "/v1/deadletters", dlViewer01, http.StatusForbidden},
		{"GET", "/v1/deadletters?province=79", dlOperator01, http.StatusForbidden},
		{"GET", "/v1/deadletters", dlOperatorTwo, http.StatusBadRequest}, // several provinces: say which
		{"GET", "/v1/deadletters/" + strconv.FormatUint(seqs[1], 10), dlOperator01, http.StatusNotFound},
		{"POST", "/v1/deadletters/" + strconv.FormatUint(seqs[1], 10) + "/redrive", dlOperator01, http.StatusNotFound},
		{"DELETE", "/v1/deadletters/" + strconv.FormatUint(seqs[1], 10), dlOperator01, http.StatusNotFound},
		{"GET", "/v1/deadletters/" + strconv.FormatUint(seqs[0], 10), dlOperator01, http.StatusOK},
		{"GET", "/v1/deadletters?province=79", dlOperatorTwo, http.StatusOK},
	} {
		code, _, body := do(t, tc.method, srv.URL+tc.path, tc.token, "", "", nil)
		if code != tc.want {
			t.Errorf("%s %s = %d %s; want %d", tc.method, tc.path, code, body, tc.want)
		}
	}
}
