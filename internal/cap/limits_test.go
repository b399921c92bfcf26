package cap

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// capDoc is a minimal valid alert around the given info content (after
// <certainty>) and alert identifier.
func capDoc(identifier, infoTail string, infos int) []byte {
	var b strings.Builder
	b.WriteString(`<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>` + identifier + `</identifier>
<sender>ioc@hanoi.gov.vn</sender><sent>2025-07-01T10:00:00+07:00</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope>`)
	for range infos {
		b.WriteString(`<info><category>Met</category><event>Flood</event><urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>`)
		b.WriteString(infoTail)
		b.WriteString(`</info>`)
	}
	b.WriteString(`</alert>`)
	return []byte(b.String())
}

// allocated runs f and returns the bytes it allocated.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// parseProblems parses doc, which must be refused, and returns its problems.
func parseProblems(t *testing.T, doc []byte) ValidationErrors {
	t.Helper()
	alerts, err := Parse(bytes.NewReader(doc))
	if err == nil {
		t.Fatalf("Parse accepted %d alerts; want a refusal", len(alerts))
	}
	var list ValidationErrors
	if !errors.As(err, &list) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Parse error %v (%T); want ValidationErrors", err, err)
	}
	return list
}

// hasProblem reports whether a problem is at path with a reason containing reason.
func hasProblem(list ValidationErrors, path, reason string) bool {
	for _, p := range list {
		if p.Path == path && strings.Contains(p.Reason, reason) {
			return true
		}
	}
	return false
}

// TestParseDeepNesting: 100 000 nested unknown elements (≈700 KB) once grew
// the process to ~15 GB (every element kept a copy of its whole path). Now
// reading stops at MaxDepth, naming it, and costs little.
func TestParseDeepNesting(t *testing.T) {
	const n = 100_000
	doc := capDoc("N-1", "", 1)
	at := bytes.Index(doc, []byte("<info>"))
	var b bytes.Buffer
	b.Write(doc[:at])
	b.WriteString(strings.Repeat("<x>", n))
	b.WriteString(strings.Repeat("</x>", n))
	b.Write(doc[at:])
	deep := b.Bytes()
	var list ValidationErrors
	alloc := allocated(func() { list = parseProblems(t, deep) })
	// Elements within a skipped one are named by it.
	if !hasProblem(list, "alert/x", fmt.Sprintf("<x> is nested more than %d elements deep; the hub reads at most %d levels", MaxDepth, MaxDepth)) {
		t.Errorf("got %v; want the depth limit", list)
	}
	if limit := uint64(16 * len(deep)); alloc > limit {
		t.Errorf("Parse allocated %d bytes for a %d-byte document; want at most %d", alloc, len(deep), limit)
	}
	// Within the limit, unknown nested elements cost linear work too.
	b.Reset()
	b.Write(doc[:at])
	for range MaxElements / 2 / 30 {
		b.WriteString(strings.Repeat("<x>", 30) + strings.Repeat("</x>", 30))
	}
	b.Write(doc[at:])
	wide := b.Bytes()
	alloc = allocated(func() { list = parseProblems(t, wide) })
	if !hasProblem(list, "alert/x", "<x> is not an element of <alert>") || len(list) != 1 {
		t.Errorf("got %v; want <x> reported", list)
	}
	if limit := uint64(16 * len(wide)); alloc > limit {
		t.Errorf("Parse allocated %d bytes for a %d-byte document; want at most %d", alloc, len(wide), limit)
	}
}

// TestParseStructureLimits: element names, attributes, element count and
// text sizes are bounded, and a problem names the limit.
func TestParseStructureLimits(t *testing.T) {
	doc := capDoc("L-1", "", 1)
	at := bytes.Index(doc, []byte("<info>"))
	insert := func(s string) []byte {
		return append(append(append([]byte{}, doc[:at]...), s...), doc[at:]...)
	}
	manyAttrs := "<x"
	for i := range MaxAttrs + 1 {
		manyAttrs += fmt.Sprintf(` a%d="1"`, i)
	}
	manyAttrs += "/>"
	tests := []struct {
		name   string
		doc    []byte
		path   string
		reason string
	}{
		{"long element name", insert("<" + strings.Repeat("n", MaxNameBytes+1) + "/>"), "alert",
			fmt.Sprintf("the hub reads names of at most %d bytes", MaxNameBytes)},
		{"long attribute name", insert("<x " + strings.Repeat("n", MaxNameBytes+1) + `="1"/>`), "alert",
			fmt.Sprintf("the hub reads names of at most %d bytes", MaxNameBytes)},
		{"many attributes", insert(manyAttrs), "alert", fmt.Sprintf("the hub reads at most %d on one element", MaxAttrs)},
		{"huge attribute", insert(`<x a="` + strings.Repeat("v", MaxTextBytes+1) + `"/>`), "alert",
			fmt.Sprintf("holds more than %d bytes", MaxTextBytes)},
		{"many elements", insert(strings.Repeat("<x><y/></x>", MaxElements/2+1)), "alert/x",
			fmt.Sprintf("more than %d elements", MaxElements)},
		{"many tokens", insert("<x>" + strings.Repeat("<!---->", MaxTokens) + "</x>"), "alert/x",
			fmt.Sprintf("more than %d XML tokens", MaxTokens)},
		{"long description", capDoc("L-1", "<description>"+strings.Repeat("d", MaxTextBytes+1)+"</description>", 1),
			"alert/info[0]/description", fmt.Sprintf("<description> holds more than %d bytes of text", MaxTextBytes)},
		{"NUL in description", capDoc("L-1", "<description>a\x00b</description>", 1),
			"alert/info[0]/description", "illegal character code U+0000"},
		{"NUL reference in headline", capDoc("L-1", "<headline>a&#0;b</headline>", 1),
			"alert/info[0]/headline", "illegal character code U+0000"},
		{"invalid UTF-8 in event", bytes.Replace(capDoc("L-1", "", 1), []byte("Flood"), []byte("Fl\xffood"), 1),
			"alert/info[0]/event", "invalid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list := parseProblems(t, tc.doc)
			if !hasProblem(list, tc.path, tc.reason) {
				t.Errorf("got %v; want a problem at %s containing %q", list, tc.path, tc.reason)
			}
			if len(list.Error()) > 4096 {
				t.Errorf("the error is %d bytes long; want a short one", len(list.Error()))
			}
		})
	}
}

// TestParseLongIdentifier: a 1 MB identifier or sender (it becomes a NATS
// header) is refused naming the field, and never echoed whole.
func TestParseLongIdentifier(t *testing.T) {
	for _, tc := range []struct {
		name, field string
		size        int
		reason      string
	}{
		{"identifier 1 MB", "identifier", 1 << 20, fmt.Sprintf("holds more than %d bytes of text", MaxTextBytes)},
		{"identifier over the id limit", "identifier", MaxIDBytes + 1, fmt.Sprintf("…(%d bytes) is %d bytes; the hub takes at most %d", MaxIDBytes+1, MaxIDBytes+1, MaxIDBytes)},
		{"sender over the id limit", "sender", 5000, fmt.Sprintf("is 5000 bytes; the hub takes at most %d", MaxIDBytes)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := capDoc("ID-1", "", 1)
			old := map[string]string{"identifier": "<identifier>ID-1<", "sender": "<sender>ioc@hanoi.gov.vn<"}[tc.field]
			doc = bytes.Replace(doc, []byte(old), []byte("<"+tc.field+">"+strings.Repeat("i", tc.size)+"<"), 1)
			list := parseProblems(t, doc)
			if !hasProblem(list, "alert/"+tc.field, tc.reason) {
				t.Errorf("got %.500s; want a problem at alert/%s containing %q", list, tc.field, tc.reason)
			}
			if len(list.Error()) > 1024 {
				t.Errorf("the error is %d bytes long; want the value clipped", len(list.Error()))
			}
		})
	}
	refs := strings.Repeat("s,i,2025-07-01T09:00:00+07:00 ", MaxReferences+1)
	list := parseProblems(t, bytes.Replace(capDoc("R-1", "", 1), []byte("<scope>Public</scope>"), []byte("<scope>Public</scope><references>"+refs+"</references>"), 1))
	if !hasProblem(list, "alert/references", fmt.Sprintf("the hub takes at most %d", MaxReferences)) {
		t.Errorf("got %v; want too many references reported", list)
	}
	longRef := "s," + strings.Repeat("i", MaxIDBytes+1) + ",2025-07-01T09:00:00+07:00"
	list = parseProblems(t, bytes.Replace(capDoc("R-1", "", 1), []byte("<scope>Public</scope>"), []byte("<scope>Public</scope><references>"+longRef+"</references>"), 1))
	if !hasProblem(list, "alert/references", fmt.Sprintf("longer than %d bytes", MaxIDBytes)) {
		t.Errorf("got %v; want the long reference reported", list)
	}
}

// square is a closed CAP polygon around (lat, lon).
func square(lat, lon float64) string {
	return fmt.Sprintf("%g,%g %g,%g %g,%g %g,%g %g,%g", lat, lon, lat, lon+0.01, lat+0.01, lon+0.01, lat+0.01, lon, lat, lon)
}

// ring is a closed CAP polygon of n points (n ≥ 4) around (lat, lon).
func ring(n int, lat, lon float64) string {
	var b strings.Builder
	for i := range n - 1 {
		fmt.Fprintf(&b, "%g,%g ", lat+float64(i)*1e-5, lon+float64(i%2)*1e-3)
	}
	fmt.Fprintf(&b, "%g,%g", lat, lon)
	return b.String()
}

// TestParseAreaLimits: 10 000 identical areas were accepted and stalled the
// aggregator; counts of infos, areas and shapes and the vertices are bounded.
func TestParseAreaLimits(t *testing.T) {
	area := "<area><areaDesc>a</areaDesc><polygon>" + square(21, 105.8) + "</polygon></area>"
	many := capDoc("A-1", strings.Repeat(area, 10_000), 1)
	var list ValidationErrors
	alloc := allocated(func() { list = parseProblems(t, many) })
	if !hasProblem(list, fmt.Sprintf("alert/info[0]/area[%d]", MaxAreas), fmt.Sprintf("more than %d <area> in <info>; the hub takes at most %d", MaxAreas, MaxAreas)) {
		t.Errorf("got %v; want the area limit", list)
	}
	if len(list) != 1 {
		t.Errorf("got %d problems; want the limit once", len(list))
	}
	if limit := uint64(16 * len(many)); alloc > limit {
		t.Errorf("Parse allocated %d bytes for a %d-byte document; want at most %d", alloc, len(many), limit)
	}
	shapes := func(el, text string, n int) string {
		return "<area><areaDesc>a</areaDesc>" + strings.Repeat("<"+el+">"+text+"</"+el+">", n) + "</area>"
	}
	tests := []struct {
		name, tail   string
		infos        int
		path, reason string
	}{
		{"infos", "", MaxInfos + 1, fmt.Sprintf("alert/info[%d]", MaxInfos), fmt.Sprintf("more than %d <info>", MaxInfos)},
		{"polygons", shapes("polygon", square(21, 105.8), MaxShapes+1), 1, fmt.Sprintf("alert/info[0]/area[0]/polygon[%d]", MaxShapes), fmt.Sprintf("more than %d <polygon> in <area>", MaxShapes)},
		{"circles", shapes("circle", "21,105.8 1", MaxShapes+1), 1, fmt.Sprintf("alert/info[0]/area[0]/circle[%d]", MaxShapes), fmt.Sprintf("more than %d <circle> in <area>", MaxShapes)},
		{"geocodes", shapes("geocode", "<valueName>w</valueName><value>1</value>", MaxShapes+1), 1, fmt.Sprintf("alert/info[0]/area[0]/geocode[%d]", MaxShapes), fmt.Sprintf("more than %d <geocode> in <area>", MaxShapes)},
		{"vertices of a polygon", shapes("polygon", ring(MaxPolygonVertices+1, 21, 105.8), 1), 1, "alert/info[0]/area[0]/polygon[0]", fmt.Sprintf("polygon has %d points; the hub takes at most %d", MaxPolygonVertices+1, MaxPolygonVertices)},
		{"vertices in total", shapes("polygon", ring(MaxPolygonVertices, 21, 105.8), 1) + shapes("polygon", ring(MaxPolygonVertices, 21, 105.9), 1) + shapes("polygon", square(21, 106), 1),
			1, "alert/info[0]/area[2]/polygon[0]", fmt.Sprintf("have more than %d vertices together", MaxVertices)},
		{"circle vertices in total", shapes("polygon", ring(MaxPolygonVertices, 21, 105.8), 1) + shapes("polygon", ring(MaxPolygonVertices-CircleSegments, 21, 105.9), 1) + shapes("circle", "21,106 1", 1),
			1, "alert/info[0]/area[2]/circle[0]", fmt.Sprintf("have more than %d vertices together (a circle counts %d)", MaxVertices, CircleSegments+1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list := parseProblems(t, capDoc("A-1", tc.tail, tc.infos))
			if !hasProblem(list, tc.path, tc.reason) {
				t.Errorf("got %.1000v; want a problem at %s containing %q", list, tc.path, tc.reason)
			}
		})
	}
	// Identical shapes count once: one 10 000-point polygon and a circle in
	// each of four languages, plus a second copy in the same area.
	tail := shapes("polygon", ring(MaxPolygonVertices, 21, 105.8), 2) + shapes("circle", "21,106 1", 1)
	a := parseOne(t, capDoc("A-2", tail, 4))
	g := DistinctAreaGeometries(a)
	if len(g) != 4 || len(g[0]) != 2 || g[0][0] == nil || g[0][1] == nil {
		t.Fatalf("got %v; want the first info's two areas drawn", g)
	}
	if n := len(g[0][0].FlatCoords()) / 2; n != MaxPolygonVertices {
		t.Errorf("first area drawn with %d coordinates; want one polygon of %d (its copy dropped)", n, MaxPolygonVertices)
	}
	for i := 1; i < 4; i++ {
		for j := range g[i] {
			if g[i][j] != nil {
				t.Errorf("info %d area %d drawn again; want nil for a repeat", i, j)
			}
		}
	}
}

// TestValidateLimits: Validate applies the same bounds to an Alert built in Go.
func TestValidateLimits(t *testing.T) {
	a := parseOne(t, capDoc("V-1", "<area><areaDesc>a</areaDesc><polygon>"+square(21, 105.8)+"</polygon></area>", 1))
	for range MaxAreas {
		a.Infos[0].Areas = append(a.Infos[0].Areas, a.Infos[0].Areas[0])
	}
	a.Identifier = strings.Repeat("x", MaxIDBytes+1)
	err := Validate(a)
	var list ValidationErrors
	if !errors.As(err, &list) {
		t.Fatalf("Validate: %v; want ValidationErrors", err)
	}
	if !hasProblem(list, fmt.Sprintf("alert/info[0]/area[%d]", MaxAreas), fmt.Sprintf("more than %d <area>", MaxAreas)) ||
		!hasProblem(list, "alert/identifier", fmt.Sprintf("the hub takes at most %d", MaxIDBytes)) {
		t.Errorf("got %v; want the area and identifier limits", list)
	}
}

func TestClip(t *testing.T) {
	if got := clip("short"); got != `"short"` {
		t.Errorf("clip(short) = %s", got)
	}
	long := strings.Repeat("é", 100) // 200 bytes
	got := clip(long)
	if !strings.HasSuffix(got, "…(200 bytes)") || len(got) > 64+30 {
		t.Errorf("clip(long) = %s; want 64 bytes and the size", got)
	}
}
