package ingest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/seal"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

var reportNow = time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)

func reportEnv(t testing.TB) parseEnv {
	s, err := seal.New(bytes.Repeat([]byte{9}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return parseEnv{now: reportNow, maxFuture: 10 * time.Minute, seal: s}
}

const goodReport = `{"id":"r-1","type":"FieldReport","category":"flooding","dateReported":"2025-07-01T18:30:00+07:00",
"location":{"type":"Point","coordinates":[105.8342,21.0278]},"description":"Ngập sâu 40 cm trước số 12 phố Huế",
"media":["https://img.example.vn/a.jpg","http://img.example.vn/b.mp4"],
"contact":{"name":"Nguyễn Văn A","phone":"+84 912 345 678","email":"a@example.vn"}}`

func reportFields(t testing.TB, doc string) fields {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return fieldsOf(m)
}

func TestParseReport(t *testing.T) {
	env := reportEnv(t)
	it, ierr := kindSpecs["report"].parse(reportFields(t, goodReport), env)
	if ierr != nil {
		t.Fatal(ierr)
	}
	o := &iocv1.Origin{SourceId: "src", Province: "01", Unit: "00070"}
	it.finish(o)
	m := it.msg.(*iocv1.Report)
	if got, want := it.eventID, "r-1"; got != want || it.entityID != want || m.Id != want {
		t.Errorf("ids = %q %q %q; want %q", it.eventID, it.entityID, m.Id, want)
	}
	if got, want := m.ObservedAt.AsTime(), time.Date(2025, 7, 1, 11, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("observed_at = %v; want %v", got, want)
	}
	if m.Category != "flooding" || m.Status != "received" || len(m.Media) != 2 || !strings.HasPrefix(m.Text, "Ngập sâu") {
		t.Errorf("report = %v", m)
	}
	if it.shape != shapePoint || len(m.GetLocation().GetWkb()) != 21 {
		t.Errorf("shape %v, location %x; want a point", it.shape, m.GetLocation().GetWkb())
	}
	for _, secret := range []string{"912 345 678", "a@example.vn", "Nguyễn"} {
		if bytes.Contains(m.ContactSealed, []byte(secret)) {
			t.Errorf("sealed contact holds %q in clear", secret)
		}
	}
	pt, err := env.seal.Open(m.ContactSealed, []byte("src/r-1"))
	if err != nil {
		t.Fatal(err)
	}
	var c ReportContact
	if err := json.Unmarshal(pt, &c); err != nil {
		t.Fatal(err)
	}
	if want := (ReportContact{Name: "Nguyễn Văn A", Phone: "+84 912 345 678", Email: "a@example.vn"}); c != want {
		t.Errorf("contact = %+v; want %+v", c, want)
	}
	if _, err := env.seal.Open(m.ContactSealed, []byte("other/r-1")); err == nil {
		t.Error("contact opens for another report id; want it bound to src/r-1")
	}
}

func TestParseReportDefaults(t *testing.T) {
	env := reportEnv(t)
	env.seal = nil
	it, ierr := parseReport(reportFields(t, `{"id":"r-2","category":"other","location":{"type":"Point","coordinates":[105.8,21]},"media":["https://x.vn/p.jpg"]}`), env)
	if ierr != nil {
		t.Fatal(ierr)
	}
	it.finish(&iocv1.Origin{SourceId: "s"})
	m := it.msg.(*iocv1.Report)
	if !it.time.Equal(reportNow) {
		t.Errorf("time = %v; want the hub's clock %v without dateReported", it.time, reportNow)
	}
	if len(m.ContactSealed) != 0 || m.Text != "" {
		t.Errorf("contact %x, text %q; want none", m.ContactSealed, m.Text)
	}
}

func TestParseReportRejects(t *testing.T) {
	base := map[string]any{}
	if err := json.Unmarshal([]byte(goodReport), &base); err != nil {
		t.Fatal(err)
	}
	with := func(k string, v any) string {
		m := map[string]any{}
		for kk, vv := range base {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	manyMedia := make([]string, MaxReportMedia+1)
	for i := range manyMedia {
		manyMedia[i] = "https://x.vn/a.jpg"
	}
	for _, tc := range []struct {
		name, doc, pointer, reason string
	}{
		{"no id", with("id", nil), "id", "missing field"},
		{"wrong type", with("type", "Alert"), "type", `type "Alert" does not belong on this feed`},
		{"no category", with("category", nil), "category", "missing field"},
		{"unknown category", with("category", "noise"), "category", `category "noise" is not known; want`},
		{"no location", with("location", nil), "location", "missing field"},
		{"line location", with("location", map[string]any{"type": "LineString", "coordinates": [][]float64{{1, 2}, {3, 4}}}), "location.type", "geometry type LineString is not allowed here; want Point"},
		{"bad time", with("dateReported", "yesterday"), "dateReported", "is not an RFC 3339 time"},
		{"future", with("dateReported", "2025-07-01T13:00:00Z"), "dateReported", "in the future"},
		{"text too long", with("description", strings.Repeat("ồ", MaxReportText+1)), "description", "4001 characters long; at most 4000"},
		{"control char", with("description", "a\x00b"), "description", "control character U+0000"},
		{"nothing said", strings.Replace(with("media", nil), `"description":"Ngập sâu 40 cm trước số 12 phố Huế"`, `"description":"  "`, 1),
			"description", "a report needs a description or at least one media link"},
		{"media not array", with("media", "https://x.vn/a.jpg"), "media", "want an array of http or https URLs, got a JSON string"},
		{"too many media", with("media", manyMedia), "media", "11 media links; at most 10"},
		{"media ftp", with("media", []string{"ftp://x.vn/a.jpg"}), "media/0", "is not an http or https URL"},
		{"media javascript", with("media", []string{"https://x.vn/a", "javascript:alert(1)"}), "media/1", "is not an http or https URL"},
		{"media relative", with("media", []string{"/a.jpg"}), "media/0", "is not an http or https URL"},
		{"media no host", with("media", []string{"https:///a.jpg"}), "media/0", "has no host"},
		{"media user", with("media", []string{"https://u:p@x.vn/a.jpg"}), "media/0", "user name or password"},
		{"media number", with("media", []any{3}), "media/0", "want a URL string, got a JSON number"},
		{"media long", with("media", []string{"https://x.vn/" + strings.Repeat("a", MaxMediaURL)}), "media/0", "at most 2048"},
		{"contact string", with("contact", "0912345678"), "contact", "want an object with name, phone and email, got a JSON string"},
		{"contact unknown", with("contact", map[string]any{"address": "12 Huế"}), "contact/address", "unknown member"},
		{"contact unknowns", with("contact", map[string]any{"zalo": "0912", "address": "12 Huế", "fax": "024"}), "contact/address", "unknown member"},
		{"contact phone letters", with("contact", map[string]any{"phone": "call me"}), "contact/phone", "want a phone number"},
		{"contact phone number", with("contact", map[string]any{"phone": 912345678}), "contact/phone", "want a string, got a JSON number"},
		{"contact email", with("contact", map[string]any{"email": "A <a@x.vn>"}), "contact/email", "want a plain e-mail address"},
		{"contact long name", with("contact", map[string]any{"name": strings.Repeat("a", MaxContactField+1)}), "contact/name", "at most 200"},
		{"contact without key", goodReport, "contact", "this hub has no seal key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := reportEnv(t)
			if tc.name == "contact without key" {
				env.seal = nil
			}
			for range 20 { // the same place named every time
				_, ierr := parseReport(reportFields(t, tc.doc), env)
				if ierr == nil {
					t.Fatal("accepted; want a rejection")
				}
				if ierr.pointer != tc.pointer || !strings.Contains(ierr.reason, tc.reason) {
					t.Fatalf("got %s: %s; want %s: …%s…", ierr.pointer, ierr.reason, tc.pointer, tc.reason)
				}
			}
		})
	}
}

// FuzzParseReport parses arbitrary report items: no panic, a rejection says
// where and why, and an accepted report is bounded and never carries the
// contact in clear.
func FuzzParseReport(f *testing.F) {
	f.Add([]byte(goodReport))
	f.Add([]byte(`{"id":"x","category":"other","location":{"type":"Point","coordinates":[1,2]},"media":["https://a.b/c"],"contact":{"phone":"123"}}`))
	f.Add([]byte(`{"id":"x","category":"traffic","location":{"type":"Point","coordinates":[1,2]},"description":"d","contact":{}}`))
	env := reportEnv(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		var mm map[string]json.RawMessage
		if json.Unmarshal(raw, &mm) != nil || mm == nil {
			return
		}
		m := fieldsOf(mm)
		it, ierr := sameParse(t, "report", parseReport, mm, raw, env)
		if ierr != nil {
			if ierr.reason == "" {
				t.Fatalf("rejection without a reason: %+v", ierr)
			}
			return
		}
		it.finish(&iocv1.Origin{SourceId: "s"})
		r := it.msg.(*iocv1.Report)
		if it.id == "" || r.Id != it.id || it.time.IsZero() || r.GetLocation() == nil {
			t.Fatalf("accepted report lacks an id, time or location: %v", r)
		}
		if len(r.Media) > MaxReportMedia || len([]rune(r.Text)) > MaxReportText {
			t.Fatalf("accepted report over its bounds: %d media, %d characters", len(r.Media), len([]rune(r.Text)))
		}
		for _, u := range r.Media {
			if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
				t.Fatalf("accepted media link %q", u)
			}
		}
		c, ierr := reportContact(m)
		if ierr != nil {
			t.Fatalf("contact rejected after the report was accepted: %v", ierr)
		}
		if c == nil {
			if len(r.ContactSealed) != 0 {
				t.Fatal("sealed contact without a contact")
			}
			return
		}
		pt, err := env.seal.Open(r.ContactSealed, []byte("s/"+it.id))
		if err != nil {
			t.Fatalf("sealed contact does not open: %v", err)
		}
		want, _ := json.Marshal(c)
		if !bytes.Equal(pt, want) {
			t.Fatalf("sealed contact = %s; want %s", pt, want)
		}
	})
}
