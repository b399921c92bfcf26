package ingest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/iochub/iochub/internal/cap"
	"github.com/iochub/iochub/internal/capconv"
)

// FuzzCAPBody runs the CAP XML body path of the ingest (split, cap.Parse per
// alert, conversion to the event) on arbitrary bytes.
func FuzzCAPBody(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "internal", "cap", "testdata", "*.xml"))
	var docs [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		docs = append(docs, b)
		f.Add(b)
	}
	if len(docs) >= 2 {
		f.Add(append(append([]byte("<batch xmlns:cap=\"urn:oasis:names:tc:emergency:cap:1.2\">"), append(docs[0][bytes.IndexByte(docs[0][1:], '<')+1:], docs[1][bytes.IndexByte(docs[1][1:], '<')+1:]...)...), "</batch>"...))
	}
	// Past the limits: deep nesting, and many identical areas.
	seeded := 0
	for _, d := range docs {
		at := bytes.Index(d, []byte("<info>"))
		i, j := bytes.Index(d, []byte("<area>")), bytes.Index(d, []byte("</area>"))
		if at < 0 || i < 0 || j < i {
			continue
		}
		// (Kept small: the fuzzer minimises inputs that grow coverage by running them many times.)
		f.Add(append(append(append([]byte{}, d[:at]...), strings.Repeat("<x>", cap.MaxDepth+2)+strings.Repeat("</x>", cap.MaxDepth+2)...), d[at:]...))
		area := d[i : j+len("</area>")]
		f.Add(bytes.Replace(d, area, bytes.Repeat([]byte("<area><areaDesc>a</areaDesc></area>"), cap.MaxAreas+1), 1))
		f.Add(bytes.Replace(d, area, bytes.Repeat(area, 3), 1))
		seeded++
		break
	}
	if seeded == 0 {
		f.Fatal("no example with <info> and <area> to seed the limits")
	}
	for _, s := range []string{"", "<a/>", "<b>x</b>", "<b><alert/><x/></b>", "<alert><identifier>x</alert>", "<?xml version=\"1.0\"?><!DOCTYPE a><alert/>"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, format := range []string{formatCAP, formatXML} {
			items, err := decodeItems(bytes.NewReader(body), format, 20)
			if err != nil {
				if !errors.Is(err, ErrMalformedBody) && !errors.Is(err, ErrNoItems) && !errors.Is(err, ErrTooManyItems) {
					t.Fatalf("unexpected error kind %v", err)
				}
				if len(items) != 0 {
					t.Fatal("got items with an error")
				}
				continue
			}
			if len(items) == 0 || len(items) > 20 {
				t.Fatalf("got %d items; want 1..20", len(items))
			}
			for i, it := range items {
				if it.cap == nil || it.fields != nil {
					t.Fatalf("item %d: not a CAP item: %+v", i, it)
				}
				if (it.cap.alert == nil) == (it.err == "") {
					t.Fatalf("item %d: alert %v and err %q; want exactly one", i, it.cap.alert, it.err)
				}
				if it.cap.path == "" {
					t.Fatalf("item %d has no path", i)
				}
				if len(it.cap.id) > cap.MaxIDBytes+32 {
					t.Fatalf("item %d: id of %d bytes; want it clipped", i, len(it.cap.id))
				}
				if it.cap.alert == nil {
					continue
				}
				m, err := capconv.ToProto(*it.cap.alert)
				if err != nil {
					t.Fatalf("item %d: ToProto: %v", i, err)
				}
				back, err := capconv.FromProto(m)
				if err != nil {
					t.Fatalf("item %d: FromProto: %v", i, err)
				}
				if !reflect.DeepEqual(back, *it.cap.alert) {
					t.Fatalf("item %d: round trip differs:\ngot  %+v\nwant %+v", i, back, *it.cap.alert)
				}
			}
		}
	})
}
