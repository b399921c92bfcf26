package cap

import (
	"reflect"
	"strings"
	"testing"
)

// baseDoc is a valid alert exercising most elements; the rejection cases
// each change one thing in it.
const baseDoc = `<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>VN-01-2025-0001</identifier>
  <sender>ioc@hanoi.gov.vn</sender>
  <sent>2025-07-01T10:00:00+07:00</sent>
  <status>Actual</status>
  <msgType>Update</msgType>
  <scope>Public</scope>
  <code>IOC</code>
  <references>ioc@hanoi.gov.vn,VN-01-2025-0000,2025-07-01T09:00:00+07:00</references>
  <info>
    <language>vi-VN</language>
    <category>Met</category>
    <event>Flood</event>
    <responseType>Evacuate</responseType>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Observed</certainty>
    <expires>2025-07-02T10:00:00+07:00</expires>
    <resource>
      <resourceDesc>map</resourceDesc>
      <mimeType>image/png</mimeType>
      <size>1024</size>
    </resource>
    <area>
      <areaDesc>Hoan Kiem</areaDesc>
      <polygon>21.0,105.8 21.0,105.9 21.1,105.9 21.0,105.8</polygon>
      <circle>21.03,105.85 2.5</circle>
      <geocode><valueName>ward</valueName><value>00070</value></geocode>
      <altitude>10</altitude>
      <ceiling>100</ceiling>
    </area>
  </info>
</alert>`

func TestParseBaseDoc(t *testing.T) {
	a := parseOne(t, []byte(baseDoc))
	ar := a.Infos[0].Areas[0]
	if *ar.Altitude != 10 || *ar.Ceiling != 100 || *a.Infos[0].Resources[0].Size != 1024 {
		t.Errorf("got altitude %v ceiling %v size %v; want 10, 100, 1024", *ar.Altitude, *ar.Ceiling, *a.Infos[0].Resources[0].Size)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		path     string
		element  string
		reason   string
	}{
		{"sent in UTC with Z", "<sent>2025-07-01T10:00:00+07:00", "<sent>2025-07-01T03:00:00Z",
			"alert/sent", "sent", "uses the UTC designator Z, which CAP forbids: write +00:00 instead"},
		{"sent without offset", "<sent>2025-07-01T10:00:00+07:00", "<sent>2025-07-01T10:00:00",
			"alert/sent", "sent", "has no time zone offset"},
		{"sent with fraction", "<sent>2025-07-01T10:00:00+07:00", "<sent>2025-07-01T10:00:00.5+07:00",
			"alert/sent", "sent", "fractional seconds"},
		{"sent not a date", "<sent>2025-07-01T10:00:00+07:00", "<sent>2025-13-01T10:00:00+07:00",
			"alert/sent", "sent", "is not a valid date-time"},
		{"expires with Z", "<expires>2025-07-02T10:00:00+07:00", "<expires>2025-07-02T10:00:00Z",
			"alert/info[0]/expires", "expires", "UTC designator Z"},
		{"status", "<status>Actual", "<status>Real",
			"alert/status", "status", `"Real" is not one of Actual, Exercise, System, Test, Draft`},
		{"msgType", "<msgType>Update", "<msgType>Upgrade", "alert/msgType", "msgType", `"Upgrade" is not one of`},
		{"scope", "<scope>Public", "<scope>Everyone", "alert/scope", "scope", `"Everyone" is not one of Public, Restricted, Private`},
		{"category", "<category>Met", "<category>Weather", "alert/info[0]/category[0]", "category", `"Weather" is not one of Geo, Met`},
		{"responseType", "<responseType>Evacuate", "<responseType>Run", "alert/info[0]/responseType[0]", "responseType", `"Run" is not one of`},
		{"urgency", "<urgency>Immediate", "<urgency>Now", "alert/info[0]/urgency", "urgency", `"Now" is not one of`},
		{"severity", "<severity>Severe", "<severity>Bad", "alert/info[0]/severity", "severity", `"Bad" is not one of`},
		{"certainty", "<certainty>Observed", "<certainty>Sure", "alert/info[0]/certainty", "certainty", `"Sure" is not one of`},
		{"missing identifier", "<identifier>VN-01-2025-0001</identifier>", "",
			"alert/identifier", "identifier", "required element <identifier> is missing from <alert>"},
		{"missing event", "<event>Flood</event>", "", "alert/info[0]/event", "event", "required element <event> is missing from <info>"},
		{"missing category", "<category>Met</category>", "", "alert/info[0]/category[0]", "category", "required element <category> is missing"},
		{"missing areaDesc", "<areaDesc>Hoan Kiem</areaDesc>", "", "alert/info[0]/area[0]/areaDesc", "areaDesc", "required element <areaDesc> is missing from <area>"},
		{"missing value", "<value>00070</value>", "", "alert/info[0]/area[0]/geocode[0]/value", "value", "required element <value> is missing"},
		{"restricted without restriction", "<scope>Public", "<scope>Restricted",
			"alert/restriction", "restriction", "required when scope is Restricted"},
		{"private without addresses", "<scope>Public", "<scope>Private",
			"alert/addresses", "addresses", "required when scope is Private"},
		{"identifier with space", "<identifier>VN-01-2025-0001", "<identifier>VN 01",
			"alert/identifier", "identifier", "must not contain spaces, commas, < or &"},
		{"references not a triple", "<references>ioc@hanoi.gov.vn,VN-01-2025-0000,2025-07-01T09:00:00+07:00", "<references>VN-01-2025-0000",
			"alert/references", "references", `reference 1 "VN-01-2025-0000" is not sender,identifier,sent`},
		{"references sent with Z", "VN-01-2025-0000,2025-07-01T09:00:00+07:00", "VN-01-2025-0000,2025-07-01T02:00:00Z",
			"alert/references", "references", "UTC designator Z"},
		{"language", "<language>vi-VN", "<language>vi_VN", "alert/info[0]/language", "language", `"vi_VN" is not a language tag`},
		{"polygon of 3 pairs", "21.0,105.8 21.0,105.9 21.1,105.9 21.0,105.8", "21.0,105.8 21.0,105.9 21.0,105.8",
			"alert/info[0]/area[0]/polygon[0]", "polygon", "polygon has 3 pairs; want at least 4"},
		{"polygon not closed", "21.0,105.8 21.0,105.9 21.1,105.9 21.0,105.8", "21.0,105.8 21.0,105.9 21.1,105.9 21.1,105.8",
			"alert/info[0]/area[0]/polygon[0]", "polygon", "polygon is not closed: first pair 21,105.8 differs from last pair 21.1,105.8"},
		{"polygon latitude", "21.0,105.8 21.0,105.9 21.1,105.9 21.0,105.8", "21.0,105.8 91.0,105.9 21.1,105.9 21.0,105.8",
			"alert/info[0]/area[0]/polygon[0]", "polygon", "pair 2: latitude 91 is outside [-90, 90]"},
		{"polygon longitude", "21.0,105.8 21.0,105.9 21.1,105.9 21.0,105.8", "21.0,105.8 21.0,185.9 21.1,105.9 21.0,105.8",
			"alert/info[0]/area[0]/polygon[0]", "polygon", "pair 2: longitude 185.9 is outside [-180, 180]"},
		{"polygon lon,lat swapped text", "21.0,105.8 21.0,105.9", "21.0;105.8 21.0,105.9",
			"alert/info[0]/area[0]/polygon[0]", "polygon", `pair 1 "21.0;105.8" is not lat,lon in decimal degrees`},
		{"polygon with exponent", "21.0,105.8 21.0,105.9", "2.1e1,105.8 21.0,105.9",
			"alert/info[0]/area[0]/polygon[0]", "polygon", `pair 1 "2.1e1,105.8" is not lat,lon`},
		{"empty polygon", "<polygon>21.0,105.8 21.0,105.9 21.1,105.9 21.0,105.8</polygon>", "<polygon> </polygon>",
			"alert/info[0]/area[0]/polygon[0]", "polygon", "polygon is empty"},
		{"circle negative radius", "<circle>21.03,105.85 2.5", "<circle>21.03,105.85 -2.5",
			"alert/info[0]/area[0]/circle[0]", "circle", "radius -2.5 km is negative"},
		{"circle without radius", "<circle>21.03,105.85 2.5", "<circle>21.03,105.85",
			"alert/info[0]/area[0]/circle[0]", "circle", `"21.03,105.85" is not a circle; want "lat,lon radius"`},
		{"circle centre", "<circle>21.03,105.85 2.5", "<circle>-95,105.85 2.5",
			"alert/info[0]/area[0]/circle[0]", "circle", "centre: latitude -95 is outside [-90, 90]"},
		{"ceiling without altitude", "<altitude>10</altitude>", "",
			"alert/info[0]/area[0]/ceiling", "ceiling", "ceiling must not be used without altitude"},
		{"altitude not decimal", "<altitude>10</altitude>", "<altitude>ten</altitude>",
			"alert/info[0]/area[0]/altitude", "altitude", `altitude "ten" is not a decimal number`},
		{"size not integer", "<size>1024</size>", "<size>1.5</size>",
			"alert/info[0]/resource[0]/size", "size", `size "1.5" is not a whole number of bytes`},
		{"size negative", "<size>1024</size>", "<size>-1</size>",
			"alert/info[0]/resource[0]/size", "size", "size -1 is negative"},
		{"out of order", "<status>Actual</status>\n  <msgType>Update</msgType>", "<msgType>Update</msgType>\n  <status>Actual</status>",
			"alert/status", "status", "<status> is out of order: the schema puts it before <msgType>"},
		{"twice", "<scope>Public</scope>", "<scope>Public</scope><scope>Public</scope>",
			"alert/scope", "scope", "<scope> appears more than once in <alert>; the schema allows one"},
		{"unknown element", "<code>IOC</code>", "<code>IOC</code><colour>red</colour>",
			"alert/colour", "colour", "<colour> is not an element of <alert> in CAP 1.2"},
		{"element in no namespace", "<event>Flood</event>", `<event>Flood</event><foo xmlns="">x</foo>`,
			"alert/info[0]/foo", "foo", "<foo> has no namespace; CAP 1.2 elements are in namespace"},
		{"element in other namespace", "<event>Flood</event>", `<event>Flood</event><x:foo xmlns:x="urn:x">x</x:foo>`,
			"alert/info[0]/x:foo", "x:foo", `<x:foo> in namespace "urn:x" is not allowed in <info>`},
		{"signature inside info", "<event>Flood</event>", `<event>Flood</event><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/>`,
			"alert/info[0]/ds:Signature", "ds:Signature", "XML-DSig <ds:Signature> is allowed only at the end of <alert>"},
		{"CAP element after signature", "  </info>\n</alert>", `  </info><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/><note>late</note></alert>`,
			"alert/note", "note", "<note> is out of order: the schema puts it before <ds:Signature>"},
		{"text in complex element", "<areaDesc>Hoan Kiem</areaDesc>", "oops<areaDesc>Hoan Kiem</areaDesc>",
			"alert/info[0]/area[0]", "area", `<area> holds text "oops"; it may hold only elements`},
		{"element in simple element", "<event>Flood</event>", "<event>Flood<b>!</b></event>",
			"alert/info[0]/event/b", "b", "<event> must hold text only, not elements"},
		{"attribute", "<event>Flood", `<event lang="en">Flood`, "alert/info[0]/event", "event", "attribute lang is not allowed on <event>"},
		{"CAP 1.1 namespace", "urn:oasis:names:tc:emergency:cap:1.2", "urn:oasis:names:tc:emergency:cap:1.1",
			"alert", "alert", `<alert> is in namespace "urn:oasis:names:tc:emergency:cap:1.1", not CAP 1.2's`},
		{"no namespace", ` xmlns="urn:oasis:names:tc:emergency:cap:1.2"`, "",
			"alert", "alert", `<alert> is in namespace "", not CAP 1.2's`},
		{"undeclared prefix", "<event>Flood</event>", "<cap:event>Flood</cap:event>",
			"alert/info[0]/cap:event", "cap:event", `malformed XML: namespace prefix "cap" is not declared`},
		{"undeclared attribute prefix", "<event>Flood", `<event x:a="1">Flood`,
			"alert/info[0]/event", "event", `namespace prefix "x" of attribute x:a is not declared`},
		{"mismatched end tag", "<event>Flood</event>", "<event>Flood</evnt>",
			"alert/info[0]/event", "event", "malformed XML: end tag </evnt> does not close <event>"},
		{"unclosed", "</alert>", "", "alert", "alert", "malformed XML: the document ends before <alert> is closed"},
		{"bad entity", "<event>Flood", "<event>Flood &amp Rain", "alert/info[0]/event", "event", "malformed XML: "},
		{"DOCTYPE", `<?xml version="1.0" encoding="UTF-8"?>`, `<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE alert [<!ENTITY x "y">]>`,
			"", "", "a DOCTYPE or other <!...> directive is not allowed"},
		{"second root", "</alert>", "</alert><alert/>", "alert", "alert", "a second root element"},
		{"text after root", "</alert>", "</alert>junk", "", "", "text outside the root element"},
		{"unsupported encoding", `encoding="UTF-8"`, `encoding="ISO-8859-1"`, "", "", `malformed XML: encoding "ISO-8859-1" is not supported; send UTF-8`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(baseDoc, tt.old, tt.new, 1)
			if doc == baseDoc {
				t.Fatalf("%q not found in baseDoc", tt.old)
			}
			alerts, err := Parse(strings.NewReader(doc))
			if alerts != nil {
				t.Errorf("got %d alerts; want none", len(alerts))
			}
			list := problemsOf(t, err)
			if len(list) != 1 {
				t.Errorf("got %d problems; want 1: %v", len(list), list)
			}
			got := list[0]
			if got.Path != tt.path || got.Element != tt.element || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("got path %q element %q reason %q; want %q %q containing %q", got.Path, got.Element, got.Reason, tt.path, tt.element, tt.reason)
			}
			if got.Line == 0 {
				t.Errorf("got line 0 for %v; want the line in the document", got)
			}
		})
	}
}

func TestParseEmpty(t *testing.T) {
	for _, doc := range []string{"", "  \n", "<?xml version=\"1.0\"?>"} {
		_, err := Parse(strings.NewReader(doc))
		list := problemsOf(t, err)
		if want := "empty document: no <alert> element"; list[0].Reason != want {
			t.Errorf("Parse(%q): got %q; want %q", doc, list[0].Reason, want)
		}
	}
}

func TestParseBatchRejectsOtherChildren(t *testing.T) {
	doc := `<batch><alert xmlns="urn:oasis:names:tc:emergency:cap:1.1"/></batch>`
	_, err := Parse(strings.NewReader(doc))
	list := problemsOf(t, err)
	if got, want := list[0].Element, "alert"; got != want {
		t.Errorf("got element %q; want %q (%v)", got, want, list)
	}
	if !strings.Contains(list[0].Reason, "is neither a CAP 1.2 <alert> nor a batch") {
		t.Errorf("got reason %q", list[0].Reason)
	}
	_, err = Parse(strings.NewReader(`<batch xmlns="urn:b"> </batch>`))
	list = problemsOf(t, err)
	if !strings.Contains(list[0].Reason, "<batch> holds no CAP 1.2 <alert>") {
		t.Errorf("got reason %q; want it to say the batch holds no alert", list[0].Reason)
	}
}

// TestParseListsEveryProblem checks that problems in different places are
// all reported, in document order, rather than only the first.
func TestParseListsEveryProblem(t *testing.T) {
	r := strings.NewReplacer(
		"<sent>2025-07-01T10:00:00+07:00", "<sent>2025-07-01T03:00:00Z",
		"<urgency>Immediate", "<urgency>Soon",
		"21.0,105.8 21.0,105.9 21.1,105.9 21.0,105.8", "21.0,105.8 21.0,105.9 21.1,105.9",
		"<circle>21.03,105.85 2.5", "<circle>21.03,105.85 -1",
	)
	_, err := Parse(strings.NewReader(r.Replace(baseDoc)))
	list := problemsOf(t, err)
	var paths []string
	for _, p := range list {
		paths = append(paths, p.Path)
	}
	want := []string{"alert/sent", "alert/info[0]/urgency", "alert/info[0]/area[0]/polygon[0]", "alert/info[0]/area[0]/circle[0]"}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("got %v; want %v (%v)", paths, want, list)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "4 problems in CAP alert: alert/sent (line 5): ") {
		t.Errorf("got message %q", msg)
	}
}

func TestValidateAlertValue(t *testing.T) {
	a := parseOne(t, []byte(baseDoc))
	if err := Validate(a); err != nil {
		t.Fatalf("Validate(valid) = %v", err)
	}
	a.Sent = a.Sent.Add(1500000) // 1.5 ms: not representable
	a.Infos[0].Areas[0].Polygons[0] = a.Infos[0].Areas[0].Polygons[0][:3]
	list := problemsOf(t, Validate(a))
	want := ValidationErrors{
		{Path: "alert/sent", Element: "sent", Reason: "CAP date-times have whole seconds; this one has a fraction"},
		{Path: "alert/info[0]/area[0]/polygon[0]", Element: "polygon", Reason: "polygon has 3 pairs; want at least 4, the first equal to the last"},
	}
	if !reflect.DeepEqual(list, want) {
		t.Errorf("got %v; want %v", list, want)
	}
}

func TestParseTolerates(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		check    func(a Alert) bool
	}{
		{"xsi:schemaLocation", `<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">`,
			`<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="urn:oasis:names:tc:emergency:cap:1.2 CAP-v1.2.xsd">`,
			func(a Alert) bool { return a.Identifier == "VN-01-2025-0001" }},
		{"comment and CDATA in text", "<event>Flood</event>", "<event>Fl<!-- c -->o<![CDATA[o<d]]></event>",
			func(a Alert) bool { return a.Infos[0].Event == "Floo<d" }},
		{"white space around tokens", "<status>Actual</status>", "<status>\n   Actual\n  </status>",
			func(a Alert) bool { return a.Status == "Actual" }},
		{"free text kept as written", "<event>Flood</event>", "<event>  Flood\n</event>",
			func(a Alert) bool { return a.Infos[0].Event == "  Flood\n" }},
		{"empty language gets the default", "<language>vi-VN</language>", "<language/>",
			func(a Alert) bool { return a.Infos[0].Language == DefaultLanguage }},
		{"prefixed CAP elements", `<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>VN-01-2025-0001</identifier>`, `<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2" xmlns:c="urn:oasis:names:tc:emergency:cap:1.2">
  <c:identifier>VN-01-2025-0001</c:identifier>`,
			func(a Alert) bool { return a.Identifier == "VN-01-2025-0001" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(baseDoc, tt.old, tt.new, 1)
			if doc == baseDoc {
				t.Fatalf("%q not found in baseDoc", tt.old)
			}
			a := parseOne(t, []byte(doc))
			if !tt.check(a) {
				t.Errorf("got %+v", a)
			}
		})
	}
}
