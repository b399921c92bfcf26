package ingest

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkb"

	"github.com/iochub/iochub/internal/cap"
	"github.com/iochub/iochub/internal/capconv"
	"github.com/iochub/iochub/internal/geomcheck"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// CAP XML body formats.
const (
	// formatCAP is application/cap+xml: one CAP 1.2 <alert> or a batch element of them.
	formatCAP = "cap"
	// formatXML is application/xml or text/xml: taken when the root is a CAP
	// alert or a batch of them, refused otherwise.
	formatXML = "xml"
)

// capItem is one alert of a CAP XML body.
type capItem struct {
	// alert is the parsed alert; nil when it was rejected (rawItem.err says why).
	alert *cap.Alert
	// id is the alert's identifier as far as it could be read, for the result.
	id string
	// path is the alert's element ("alert", "alert[2]") or, when it was
	// rejected, the element of its first problem.
	path string
}

// parse turns the alert into the event to publish; its signature fits
// kindSpec.parse (the fields are unused: the alert was parsed already).
func (c *capItem) parse(_ fields, env parseEnv) (*parsed, *itemError) {
	a := c.alert
	if ierr := notTooFarAhead("sent", a.Sent, env); ierr != nil {
		ierr.pointer = ""
		ierr.reason = c.path + "/sent: " + ierr.reason
		return nil, ierr
	}
	m, err := capconv.ToProto(*a)
	if err != nil {
		return nil, &itemError{reason: err.Error()}
	}
	// The CAP polygons and circles stay whole in the event (for the .cap
	// output); the geometry the hub joins on draws each distinct shape once,
	// so an area repeated (in each language, or ten thousand times) costs
	// nothing more.
	distinct := cap.DistinctAreaGeometries(*a)
	var geoms []Geometry
	var areas []scopeArea
	for i, pi := range m.GetInfo() {
		for j, pa := range pi.GetArea() {
			sa := scopeArea{label: fmt.Sprintf("%s/info[%d]/area[%d]: ", c.path, i, j), geocodes: pa.GetGeocode()}
			pa.Geometry = nil
			if g, ok := capGeometry(distinct[i][j]); ok {
				// What the aggregator would refuse to store is refused here.
				if err := geomcheck.Storable(distinct[i][j]); err != nil {
					return nil, &itemError{reason: sa.label + "the area cannot be stored: " + err.Error()}
				}
				b, err := wkb.Marshal(distinct[i][j], binary.LittleEndian)
				if err != nil {
					return nil, &itemError{reason: sa.label + "encoding the area's WKB: " + err.Error()}
				}
				pa.Geometry = &iocv1.Geometry{Wkb: b}
				geoms = append(geoms, g)
				sa.shape = &g
			}
			areas = append(areas, sa)
		}
	}
	return &parsed{id: a.Identifier, eventID: a.Identifier, entityID: a.Identifier, time: a.Sent, shape: shapeAreas,
		geoms: geoms, msg: m, finish: alertFinish(m), areaScope: areaScope(areas)}, nil
}

// capGeometry turns an area's shape into the form unit resolution reads.
func capGeometry(t geom.T) (Geometry, bool) {
	rings := func(p *geom.Polygon) [][]float64 {
		out := make([][]float64, 0, p.NumLinearRings())
		for k := range p.NumLinearRings() {
			out = append(out, p.LinearRing(k).FlatCoords())
		}
		return out
	}
	switch g := t.(type) {
	case *geom.Polygon:
		return Geometry{Type: "Polygon", Polys: [][][]float64{rings(g)}}, true
	case *geom.MultiPolygon:
		out := Geometry{Type: "MultiPolygon"}
		for i := range g.NumPolygons() {
			out.Polys = append(out.Polys, rings(g.Polygon(i)))
		}
		return out, len(out.Polys) > 0
	}
	return Geometry{}, false
}

// maxBatchPrefix bounds the bytes copied for the batch start tag over all
// the alerts of a batch (see decodeCAP).
const maxBatchPrefix = 32 << 20

// decodeCAP reads a CAP 1.2 XML body: one <alert> as the root, or a batch
// (any root element whose children are <alert>s). Each alert becomes one item:
// cap.Parse checks it alone, so one malformed alert rejects only itself, with
// the element path and line of every problem (paths and lines are those of
// the whole body). XML that cannot be read at all, a root that is neither an
// alert nor a batch of them, a DOCTYPE or text in a batch make the body
// malformed.
func decodeCAP(r io.Reader, maxItems int) ([]rawItem, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if len(bytes.TrimSpace(src)) == 0 {
		return nil, fmt.Errorf("reading CAP XML: %w", ErrNoItems)
	}
	sp, err := splitCAP(src, maxItems)
	if err != nil {
		return nil, err
	}
	if sp.single {
		return []rawItem{capRaw(src, "alert", "", sp.chunks[0].id, 0)}, nil
	}
	if len(sp.rootTag)*len(sp.chunks) > maxBatchPrefix {
		return nil, &bodyError{0, fmt.Sprintf("the namespace declarations of <%s> are too long for %d alerts; declare them on each alert", sp.rootName, len(sp.chunks))}
	}
	items := make([]rawItem, 0, len(sp.chunks))
	for i, c := range sp.chunks {
		at := "alert[" + strconv.Itoa(i) + "]"
		if c.notAlert != "" {
			items = append(items, rawItem{err: at + ": <" + c.notAlert + "> is not a CAP 1.2 <alert>; a batch may hold only alerts",
				cap: &capItem{path: at}})
			continue
		}
		// The alert alone in a copy of the batch start tag that keeps only
		// its namespace declarations; lines are shifted back afterwards.
		doc := make([]byte, 0, len(sp.rootTag)+c.end-c.start+len(sp.rootName)+3)
		doc = append(doc, sp.rootTag...)
		doc = append(doc, src[c.start:c.end]...)
		doc = append(doc, "</"+sp.rootName+">"...)
		items = append(items, capRaw(doc, at, "alert[0]", c.id, c.line-1))
	}
	return items, nil
}

// capRaw parses one alert document into an item; problems at within (the
// alert's path in doc) are renamed to at, and their lines moved by shift.
func capRaw(doc []byte, at, within, id string, shift int) rawItem {
	it := rawItem{cap: &capItem{id: id, path: at}}
	alerts, err := cap.Parse(bytes.NewReader(doc))
	if err == nil && len(alerts) != 1 {
		err = fmt.Errorf("%d alerts where one was expected: %w", len(alerts), cap.ErrInvalid)
	}
	if err != nil {
		var list cap.ValidationErrors
		if errors.As(err, &list) {
			for _, p := range list {
				if within != "" && (p.Path == within || strings.HasPrefix(p.Path, within+"/")) {
					p.Path = at + strings.TrimPrefix(p.Path, within)
				}
				if p.Line > 0 {
					p.Line += shift
				}
			}
		}
		if len(list) > 0 && (within == "" && list[0].Path != "" || list[0].Path == at || strings.HasPrefix(list[0].Path, at+"/")) {
			it.cap.path = list[0].Path
		}
		it.err = clipReason(err.Error())
		return it
	}
	it.cap.alert = &alerts[0]
	if it.cap.id == "" {
		it.cap.id = alerts[0].Identifier
	}
	return it
}

// capSplit is where the alerts of a body lie.
type capSplit struct {
	// single means the root is itself an alert; chunks then has one entry, for its identifier.
	single bool
	// rootName is the batch element's name as written; rootTag is its start
	// tag rebuilt with only its namespace declarations.
	rootName string
	rootTag  []byte
	chunks   []capChunk
}

// capChunk is one child of a batch.
type capChunk struct {
	start, end int    // byte offsets of the element
	line       int    // line of its start
	id         string // text of its identifier child, if any
	// notAlert is the name of a child that is not an alert.
	notAlert string
}

// splitCAP finds the alerts of a body with encoding/xml, checking only that
// the XML is well-formed; cap.Parse checks each alert.
func splitCAP(src []byte, maxItems int) (capSplit, error) {
	var sp capSplit
	d := xml.NewDecoder(bytes.NewReader(src))
	depth := 0
	var cur *capChunk
	inIdentifier := false
	// open names the open elements, as paths in problems do ("alert/info[0]/event").
	type level struct {
		seg    string
		counts map[string]int
	}
	var open []level
	path := func() string {
		segs := make([]string, 0, len(open))
		for _, l := range open {
			if l.seg != "" {
				segs = append(segs, l.seg)
			}
		}
		return strings.Join(segs, "/")
	}
	prev := int64(0)
	line := 1 // line at prev
	for {
		tok, terr := d.Token()
		if errors.Is(terr, io.EOF) {
			break
		}
		if terr != nil {
			l, _ := d.InputPos()
			at := ""
			if len(open) > 0 {
				at = " " + path() + ":"
			}
			return sp, &bodyError{d.InputOffset(), fmt.Sprintf("line %d:%s unreadable XML: %v", l, at, terr)}
		}
		off := d.InputOffset()
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth <= cap.MaxDepth {
				seg := t.Name.Local
				if n := len(open); n > 0 && (cap.Repeatable(seg) || seg == "alert" && n == 1) {
					if open[n-1].counts == nil {
						open[n-1].counts = map[string]int{}
					}
					seg += "[" + strconv.Itoa(open[n-1].counts[seg]) + "]"
					open[n-1].counts[t.Name.Local]++
				}
				if len(open) == 1 && !sp.single {
					open[0].seg = "" // a batch element is not named: its alerts are alert[i]
				}
				open = append(open, level{seg: seg})
			}
			switch {
			case depth > cap.MaxDepth:
				l, _ := d.InputPos()
				return sp, &bodyError{prev, fmt.Sprintf("line %d: elements are nested more than %d deep; the hub reads at most %d levels", l, cap.MaxDepth, cap.MaxDepth)}
			case depth == 1:
				sp.rootName = rawName(src, prev)
				if t.Name.Local == "alert" {
					sp.single = true
					sp.chunks = append(sp.chunks, capChunk{})
					cur = &sp.chunks[0]
				} else {
					sp.rootTag = nsTag(sp.rootName, t)
				}
			case depth == 2 && !sp.single:
				if len(sp.chunks) >= maxItems {
					return sp, fmt.Errorf("more than %d alerts: %w", maxItems, ErrTooManyItems)
				}
				lt := bytes.IndexByte(src[prev:], '<')
				c := capChunk{start: int(prev) + lt, line: line + bytes.Count(src[prev:int(prev)+lt], []byte{'\n'})}
				if t.Name.Local != "alert" {
					c.notAlert = rawName(src, prev)
				}
				sp.chunks = append(sp.chunks, c)
				cur = &sp.chunks[len(sp.chunks)-1]
			}
			inIdentifier = cur != nil && t.Name.Local == "identifier" && depth == 2+boolInt(!sp.single)
		case xml.EndElement:
			if len(open) > 0 {
				open = open[:len(open)-1]
			}
			if depth == 2 && !sp.single && cur != nil {
				cur.end = int(off)
				cur = nil
			}
			depth--
			inIdentifier = false
		case xml.CharData:
			if inIdentifier && cur.id == "" {
				cur.id = clipID(string(bytes.TrimSpace(t)))
			}
			if depth == 1 && !sp.single && len(bytes.TrimSpace(t)) > 0 {
				return sp, &bodyError{prev, fmt.Sprintf("batch element <%s> holds text; it may hold only CAP 1.2 <alert> elements", sp.rootName)}
			}
		case xml.Directive:
			return sp, &bodyError{prev, "a DOCTYPE or other <!...> declaration is refused in CAP XML"}
		}
		line += bytes.Count(src[prev:off], []byte{'\n'})
		prev = off
	}
	if sp.rootName == "" {
		return sp, &bodyError{0, "no XML element: want a CAP 1.2 <alert> or a batch of them"}
	}
	alerts := 0
	for _, c := range sp.chunks {
		if c.notAlert == "" {
			alerts++
		}
	}
	if alerts == 0 {
		return sp, &bodyError{0, fmt.Sprintf("<%s> is neither a CAP 1.2 <alert> nor a batch holding any", sp.rootName)}
	}
	return sp, nil
}

// clipID is an identifier for a result: whole when it is short enough to be
// one (cap.MaxIDBytes), else its first 64 bytes and its size, so that a huge
// rejected value is never echoed.
func clipID(s string) string {
	if len(s) <= cap.MaxIDBytes {
		return s
	}
	const keep = 64
	cut := keep
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// maxReason bounds the reason of a rejected alert (up to 100 problems, with
// paths up to cap.MaxDepth names long, could otherwise be large).
const maxReason = 8 << 10

// clipReason cuts a reason longer than maxReason on a rune boundary, saying so.
func clipReason(s string) string {
	if len(s) <= maxReason {
		return s
	}
	cut := maxReason
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes in all)"
}

// nsTag rebuilds a start tag named as written with only the namespace
// declarations of t.
func nsTag(name string, t xml.StartElement) []byte {
	var b bytes.Buffer
	b.WriteString("<" + name)
	for _, a := range t.Attr {
		switch {
		case a.Name.Space == "xmlns":
			b.WriteString(" xmlns:" + a.Name.Local + `="`)
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			b.WriteString(` xmlns="`)
		default:
			continue
		}
		_ = xml.EscapeText(&b, []byte(a.Value))
		b.WriteByte('"')
	}
	b.WriteByte('>')
	return b.Bytes()
}

// rawName reads the element name of the start tag at or after off, as written.
func rawName(src []byte, off int64) string {
	i := int(off) + bytes.IndexByte(src[off:], '<') + 1
	j := i
	for j < len(src) && !strings.ContainsRune(" \t\r\n/>", rune(src[j])) {
		j++
	}
	return string(src[i:j])
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
