package cap

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestRoundTrip parses every example, marshals it, parses the output and
// wants the same alert; marshalling that again must give the same bytes.
func TestRoundTrip(t *testing.T) {
	for _, f := range exampleFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			a := parseFile(t, filepath.Base(f))
			out, err := Marshal(a)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			b := parseOne(t, out)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("round trip changed the alert:\ngot  %+v\nwant %+v\nxml:\n%s", b, a, out)
			}
			again, err := Marshal(b)
			if err != nil {
				t.Fatalf("Marshal again: %v", err)
			}
			if !bytes.Equal(out, again) {
				t.Errorf("second Marshal differs:\n%s\n---\n%s", out, again)
			}
		})
	}
}

// fullAlert sets every field of the model.
func fullAlert(t *testing.T) Alert {
	t.Helper()
	loc := time.FixedZone("", 7*3600)
	return Alert{
		Identifier:  "VN-01-2025-0042",
		Sender:      "ioc@hanoi.gov.vn",
		Sent:        time.Date(2025, 7, 1, 10, 0, 0, 0, loc),
		Status:      "Exercise",
		MsgType:     "Update",
		Source:      "IOC Hà Nội",
		Scope:       "Restricted",
		Restriction: "operators only",
		Addresses:   `ops "flood desk"`,
		Codes:       []string{"IOC", "drill"},
		Note:        "note with <markup> & \"quotes\"",
		References:  "ioc@hanoi.gov.vn,VN-01-2025-0041,2025-07-01T09:00:00+07:00",
		Incidents:   "flood-2025-07",
		Infos: []Info{{
			Language:      "vi-VN",
			Categories:    []string{"Met", "Safety"},
			Event:         "Ngập lụt",
			ResponseTypes: []string{"Evacuate", "Monitor"},
			Urgency:       "Immediate",
			Severity:      "Severe",
			Certainty:     "Observed",
			Audience:      "residents",
			EventCodes:    []NamedValue{{"SAME", "FLW"}},
			Effective:     time.Date(2025, 7, 1, 10, 0, 0, 0, loc),
			Onset:         time.Date(2025, 7, 1, 11, 0, 0, 0, time.FixedZone("", -5*3600-30*60)),
			Expires:       time.Date(2025, 7, 2, 10, 0, 0, 0, time.FixedZone("", 0)),
			SenderName:    "Trung tâm IOC",
			Headline:      "Ngập sâu",
			Description:   "line one\n\tline two\r\nline three ]]> end",
			Instruction:   "Di chuyển lên cao",
			Web:           "https://ioc.hanoi.gov.vn/a/42",
			Contact:       "1022",
			Parameters:    []NamedValue{{"waterLevel", "III"}, {"", ""}},
			Resources: []Resource{
				{ResourceDesc: "map", MimeType: "image/png", Size: ptr(int64(2048)), URI: "https://ioc.hanoi.gov.vn/m.png", DerefURI: "aGVsbG8=", Digest: "abc"},
				{ResourceDesc: "note", MimeType: "text/plain"},
			},
			Areas: []Area{
				{
					AreaDesc: "Hoàn Kiếm",
					Polygons: []Polygon{{{21.0, 105.8}, {21.1, 105.8}, {21.1, 105.9}, {21.0, 105.8}}},
					Circles:  []Circle{{Point{21.03, 105.85}, 2.5}, {Point{-0.5, -179.999999}, 0}},
					Geocodes: []NamedValue{{"ward", "00070"}},
					Altitude: ptr(-12.5),
					Ceiling:  ptr(3000.0),
				},
				{AreaDesc: "geocodes only", Geocodes: []NamedValue{{"province", "01"}}},
			},
		}, {
			Language:   "en-US",
			Categories: []string{"Other"},
			Urgency:    "Unknown",
			Severity:   "Unknown",
			Certainty:  "Unknown",
		}},
		Signature: []byte(`<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignatureValue>
  x&amp;y</SignatureValue></Signature>`),
	}
}

func TestMarshalEveryField(t *testing.T) {
	want := fullAlert(t)
	out, err := Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got := parseOne(t, out)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v\nxml:\n%s", got, want, out)
	}
	for _, s := range []string{
		`<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">`,
		"<sent>2025-07-01T10:00:00+07:00</sent>",
		"<onset>2025-07-01T11:00:00-05:30</onset>",
		"<expires>2025-07-02T10:00:00+00:00</expires>",
		"<note>note with &lt;markup&gt; &amp; \"quotes\"</note>",
		"line one\n\tline two&#xD;\nline three ]]&gt; end",
		"<polygon>21,105.8 21.1,105.8 21.1,105.9 21,105.8</polygon>",
		"<circle>21.03,105.85 2.5</circle>",
		"<altitude>-12.5</altitude>",
		"  " + string(want.Signature) + "\n</alert>\n",
	} {
		if !strings.Contains(string(out), s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

// TestMarshalSchemaOrder checks the element order of the output against the
// schema's sequences, element by element.
func TestMarshalSchemaOrder(t *testing.T) {
	out, err := Marshal(fullAlert(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "<") && !strings.HasPrefix(line, "</") && !strings.HasPrefix(line, "<?") {
			name := strings.FieldsFunc(line[1:], func(r rune) bool { return r == '>' || r == ' ' })[0]
			names = append(names, name)
		}
	}
	want := strings.Fields(`alert identifier sender sent status msgType source scope restriction addresses code code note references incidents
		info language category category event responseType responseType urgency severity certainty audience eventCode valueName value
		effective onset expires senderName headline description instruction web contact parameter valueName value parameter valueName value
		resource resourceDesc mimeType size uri derefUri digest resource resourceDesc mimeType
		area areaDesc polygon circle circle geocode valueName value altitude ceiling area areaDesc geocode valueName value
		info language category event urgency severity certainty Signature`)
	if !reflect.DeepEqual(names, want) {
		t.Errorf("got order\n%v\nwant\n%v", names, want)
	}
}

func TestMarshalRefusesInvalid(t *testing.T) {
	a := fullAlert(t)
	a.Status = "Live"
	a.Infos[0].Areas[0].Polygons[0] = a.Infos[0].Areas[0].Polygons[0][:3]
	_, err := Marshal(a)
	list := problemsOf(t, err)
	if len(list) != 2 || list[0].Path != "alert/status" || list[1].Path != "alert/info[0]/area[0]/polygon[0]" {
		t.Errorf("got %v; want problems at alert/status and alert/info[0]/area[0]/polygon[0]", list)
	}
	if _, err := Marshal(Alert{}); err == nil {
		t.Error("Marshal(Alert{}) succeeded; want an error")
	}
}

func TestMarshalDefaultLanguage(t *testing.T) {
	a := fullAlert(t)
	a.Infos[1].Language = ""
	out, err := Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if got := parseOne(t, out).Infos[1].Language; got != DefaultLanguage {
		t.Errorf("got language %q; want %q", got, DefaultLanguage)
	}
}

func TestMarshalRefusesBadSignature(t *testing.T) {
	tests := []struct {
		name   string
		sig    string
		reason string
	}{
		{"not XML", "<ds:Signature>", "signature bytes are not well-formed XML"},
		{"undeclared prefix", "<ds:Signature/>", `namespace prefix "ds" is not declared`},
		{"other namespace", `<Signature xmlns="urn:x"/>`, `signature element <Signature> is in namespace "urn:x"`},
		{"text", `hello`, "signature bytes hold text outside an element"},
		{"blank", ` `, "signature bytes hold no element"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := fullAlert(t)
			a.Signature = []byte(tt.sig)
			_, err := Marshal(a)
			list := problemsOf(t, err)
			if len(list) != 1 || list[0].Path != "alert/Signature" || !strings.Contains(list[0].Reason, tt.reason) {
				t.Errorf("got %v; want one problem at alert/Signature containing %q", list, tt.reason)
			}
		})
	}
}
