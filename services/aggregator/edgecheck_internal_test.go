package aggregator

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/iochub/iochub/services/aggregator/postgis"
)

// TestEdgeRoots: the units of an edge are read from the filters nats-server
// writes in Nats-Stream-Source; a source without filters (or with one not of
// a province or unit) has none.
func TestEdgeRoots(t *testing.T) {
	for _, c := range []struct {
		hdr  string
		want []string
	}{
		{"FEEDS:Ab12Cd34 17 ioc.feed.01.00070.> > ioc.feed.01.00070.air", []string{"00070"}},
		{"FEEDS:Ab12Cd34 17 ioc.feed.01.> > ioc.feed.01.00070.air", []string{"01"}},
		{"FEEDS:Ab12Cd34 17 ioc.feed.01.00070.>\fioc.feed.01.00004.> >\f> ioc.feed.01.00004.air", []string{"00070", "00004"}},
		{"FEEDS:Ab12Cd34 17 > > ioc.feed.01.00070.air", nil},
		{"FEEDS:Ab12Cd34 17 ioc.feed.01.00070.>\f> >\f> ioc.feed.79.1.air", nil},
		{"FEEDS 17", nil},
		{"", nil},
	} {
		if got := edgeRoots(headerFilters(c.hdr)); !slices.Equal(got, c.want) {
			t.Errorf("edgeRoots(headerFilters(%q)) = %q; want %q", c.hdr, got, c.want)
		}
	}
}

// TestEdgeItemFault: an edge's item passes only with a registered source,
// in the source's unit or below, in its province, and with the source among
// the edge's units when the edge has filters.
func TestEdgeItemFault(t *testing.T) {
	b := postgis.Bindings{
		Sources: map[string]string{"hk": "00070", "hn": "01", "hcm": "79", "bd": "00004"},
		Parents: map[string][]string{"00070": {"01"}, "00004": {"01"}, "01": {"VN"}, "79": {"VN"}, "26734": {"79"}},
	}
	for _, c := range []struct {
		name                   string
		source, province, unit string
		roots                  []string
		fault                  string // "" passes; else a part of the reason
	}{
		{"own source and ward", "hk", "01", "00070", []string{"00070"}, ""},
		{"province edge, ward source", "hk", "01", "00070", []string{"01"}, ""},
		{"province edge, province source", "hn", "01", "00070", []string{"01"}, ""},
		{"edge without filters", "hn", "01", "00070", nil, ""},
		{"unregistered source", "ghost", "01", "00070", []string{"00070"}, "not registered"},
		{"the province's source claimed by a ward's edge", "hn", "01", "00070", []string{"00070"}, "not among the edge's units"},
		{"another ward's source", "bd", "01", "00070", []string{"00070"}, "is not in it"},
		{"another province's source", "hcm", "01", "00070", nil, "is not in it"},
		{"unit outside its province", "hk", "79", "00070", nil, "not in province 79"},
		{"unknown unit", "hk", "01", "99999", nil, "not in province 01"},
	} {
		got := edgeItemFault(b, c.source, c.province, c.unit, c.roots)
		if c.fault == "" && got != "" || c.fault != "" && !strings.Contains(got, c.fault) {
			t.Errorf("%s: fault %q; want one containing %q", c.name, got, c.fault)
		}
	}
}

// BenchmarkEdgeItemVerdict: what the check of one sourced item costs, its
// source and place seen before (the usual case: an edge's items are of a
// few sources and units), beside the check computed afresh (the baseline,
// what every item paid before verdicts were remembered), over a tree of 34
// provinces of 100 communes each.
func BenchmarkEdgeItemVerdict(b *testing.B) {
	bs := postgis.Bindings{Sources: map[string]string{"hk": "p01-c07"}, Parents: map[string][]string{}}
	for p := range 34 {
		prov := fmt.Sprintf("p%02d", p)
		bs.Parents[prov] = []string{"VN"}
		for c := range 100 {
			bs.Parents[fmt.Sprintf("%s-c%02d", prov, c)] = []string{prov}
		}
	}
	hdr := "FEEDS:Ab12Cd34 17 ioc.feed.p01.p01-c07.> > ioc.feed.p01.p01-c07.air"
	b.Run("remembered", func(b *testing.B) {
		e := edgeBindings{b: bs, verdicts: map[edgeKey]string{}}
		for b.Loop() {
			if e.verdict(edgeKey{"hk", "p01", "p01-c07", headerFilters(hdr)}) != "" {
				b.Fatal("refused")
			}
		}
	})
	b.Run("baseline-afresh", func(b *testing.B) {
		for b.Loop() {
			if edgeItemFault(bs, "hk", "p01", "p01-c07", edgeRoots(headerFilters(hdr))) != "" {
				b.Fatal("refused")
			}
		}
	})
}
