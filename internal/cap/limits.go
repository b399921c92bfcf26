package cap

import (
	"strconv"
	"unicode/utf8"
)

// Limits on what Parse reads and Validate accepts. They keep the cost of an
// untrusted document linear in its size and bounded, and the alert small
// enough for the hub's events, headers and spatial joins. Real alerts stay
// far below them (a national multi-language alert has a few infos and tens of
// areas); a document over a limit is refused with a ValidationError naming
// the element and the limit.
const (
	// MaxDepth is the deepest element nesting Parse reads (a CAP alert is 5
	// deep; a batch and an XML-DSig signature add a few levels).
	MaxDepth = 32
	// MaxElements is the most elements Parse reads in one document.
	MaxElements = 100_000
	// MaxTokens is the most XML tokens (tags, text runs, comments,
	// processing instructions) Parse reads in one document.
	MaxTokens = 4 * MaxElements
	// MaxNameBytes is the longest element or attribute name (with its prefix).
	MaxNameBytes = 256
	// MaxAttrs is the most attributes (namespace declarations included) on one element.
	MaxAttrs = 64
	// MaxTextBytes is the longest text of one element, except <polygon> and <derefUri>.
	MaxTextBytes = 64 << 10
	// MaxPolygonTextBytes is the longest text of one <polygon>.
	MaxPolygonTextBytes = 1 << 20
	// MaxDerefURIBytes is the longest <derefUri> (a base-64 file).
	MaxDerefURIBytes = 4 << 20
	// MaxIDBytes is the longest identifier or sender, alone or in a
	// reference: they become event ids, NATS headers and subject tokens.
	MaxIDBytes = 256
	// MaxReferences is the most sender,identifier,sent triples in <references>.
	MaxReferences = 100
	// MaxCodes is the most <code> elements of an alert.
	MaxCodes = 100
	// MaxInfos is the most <info> blocks of an alert.
	MaxInfos = 32
	// MaxAreas is the most <area> elements of one <info>.
	MaxAreas = 100
	// MaxShapes is the most <polygon>, the most <circle> and the most
	// <geocode> elements of one <area> (each counted alone), and the most
	// <category>, <responseType>, <eventCode>, <parameter> and <resource>
	// elements of one <info>.
	MaxShapes = 100
	// MaxPolygonVertices is the most points of one polygon.
	MaxPolygonVertices = 10_000
	// MaxVertices is the most vertices of the distinct polygons and circles
	// of an alert, together; a circle counts as the CircleSegments+1
	// vertices of the polygon drawn for it. Identical polygons or circles
	// (the same area repeated in each language) count once.
	MaxVertices = 20_000
)

// clip shortens a value for a message: the first 64 bytes (cut on a rune
// boundary) and the size, so that a huge rejected value is never echoed.
func clip(s string) string {
	const keep = 64
	if len(s) <= keep+16 {
		return strconv.Quote(s)
	}
	cut := keep
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// Clip is clip for other packages: a value quoted, or its first 64 bytes
// quoted and its size when it is long.
func Clip(s string) string { return clip(s) }

// textLimit is the most bytes of text the element may hold.
func textLimit(local string) int {
	switch local {
	case "polygon":
		return MaxPolygonTextBytes
	case "derefUri":
		return MaxDerefURIBytes
	}
	return MaxTextBytes
}
