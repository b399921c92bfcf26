package cap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Parse reads a CAP 1.2 document: one <alert>, or a batch, which is any root
// element whose children are CAP 1.2 <alert>s. It checks namespace
// well-formedness, the schema (element names and order, required elements,
// enumerations, date-times) and the specification's musts (see Validate).
//
// Leading and trailing white space is ignored in values that are tokens
// (enumerations, date-times, numbers, identifier, sender, references,
// language, URIs); free text is kept as written. An <info> without
// <language> gets DefaultLanguage. xsi: attributes, comments and processing
// instructions are dropped; a DOCTYPE is refused.
//
// A batch is all or nothing: on any problem Parse returns no alerts and a
// ValidationErrors listing every problem it found (reading stops at the first
// problem that leaves the XML unreadable). Parse reads r to the end; bound it
// (http.MaxBytesReader) when it is untrusted.
func Parse(r io.Reader) ([]Alert, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading CAP document: %w", err)
	}
	return parseBytes(src)
}

// child is one element of a schema sequence.
type child struct {
	name     string
	required bool
	many     bool
	// max bounds how many a repeatable element may appear (see limits.go).
	max int
}

// The schema's sequences, in order.
var (
	alertSeq = []child{
		{"identifier", true, false, 0}, {"sender", true, false, 0}, {"sent", true, false, 0},
		{"status", true, false, 0}, {"msgType", true, false, 0}, {"source", false, false, 0},
		{"scope", true, false, 0}, {"restriction", false, false, 0}, {"addresses", false, false, 0},
		{"code", false, true, MaxCodes}, {"note", false, false, 0}, {"references", false, false, 0},
		{"incidents", false, false, 0}, {"info", false, true, MaxInfos},
	}
	infoSeq = []child{
		{"language", false, false, 0}, {"category", true, true, MaxShapes}, {"event", true, false, 0},
		{"responseType", false, true, MaxShapes}, {"urgency", true, false, 0}, {"severity", true, false, 0},
		{"certainty", true, false, 0}, {"audience", false, false, 0}, {"eventCode", false, true, MaxShapes},
		{"effective", false, false, 0}, {"onset", false, false, 0}, {"expires", false, false, 0},
		{"senderName", false, false, 0}, {"headline", false, false, 0}, {"description", false, false, 0},
		{"instruction", false, false, 0}, {"web", false, false, 0}, {"contact", false, false, 0},
		{"parameter", false, true, MaxShapes}, {"resource", false, true, MaxShapes}, {"area", false, true, MaxAreas},
	}
	resourceSeq = []child{
		{"resourceDesc", true, false, 0}, {"mimeType", true, false, 0}, {"size", false, false, 0},
		{"uri", false, false, 0}, {"derefUri", false, false, 0}, {"digest", false, false, 0},
	}
	areaSeq = []child{
		{"areaDesc", true, false, 0}, {"polygon", false, true, MaxShapes}, {"circle", false, true, MaxShapes},
		{"geocode", false, true, MaxShapes}, {"altitude", false, false, 0}, {"ceiling", false, false, 0},
	}
	valueSeq = []child{{"valueName", true, false, 0}, {"value", true, false, 0}}
)

// repeatable names the CAP elements whose paths carry an index.
var repeatable = map[string]bool{
	"code": true, "info": true, "category": true, "responseType": true, "eventCode": true,
	"parameter": true, "resource": true, "area": true, "polygon": true, "circle": true, "geocode": true,
}

// Repeatable reports whether a CAP element may appear more than once in its
// parent, so that its paths carry an index ("area[2]").
func Repeatable(local string) bool { return repeatable[local] }

const xmlNamespace = "http://www.w3.org/XML/1998/namespace"

// elem is a start tag, resolved.
type elem struct {
	raw   xml.Name // Space is the prefix as written
	name  xml.Name // Space is the namespace URI
	qname string   // as written: prefix:local
	path  string
	line  int
	start int64 // offset of '<'
	attrs []xml.Attr
	// attrPrefixes are the prefixes of the attributes as written.
	attrPrefixes []string
}

type binding struct{ prefix, uri string }

type open struct {
	el       elem
	nsMark   int // len(decoder.ns) before the element's declarations
	childDir string
	counts   map[string]int
}

type tokenKind int

const (
	tokStart tokenKind = iota
	tokEnd
	tokText
	tokEOF
)

type decoder struct {
	d     *xml.Decoder
	src   []byte
	ns    []binding
	open  []open
	p     problems
	bad   map[string]bool // paths with a decoding problem
	lines map[string]int  // line of each element path
	fatal bool
	// text is the character data of the last tokText, valid until next call.
	text []byte
	// tokens and elements count what was read, against MaxTokens and MaxElements.
	tokens, elements int
	// skipping is how many open elements are being skipped: elements within
	// them get no path of their own (problems there name the skipped
	// element), so skipping costs nothing per element beyond the token.
	skipping int
}

// maxProblems bounds the problems reported for one document; reading stops
// at the next.
const maxProblems = 100

// maxBindings bounds the namespace declarations in scope at once.
const maxBindings = 256

// lineDepth is the deepest element whose line is kept for problems found
// after reading (CAP's own elements are at most 6 deep, batch included).
const lineDepth = 8

func parseBytes(src []byte) ([]Alert, error) {
	dc := &decoder{
		d:     xml.NewDecoder(bytes.NewReader(src)),
		src:   src,
		bad:   map[string]bool{},
		lines: map[string]int{},
	}
	alerts := dc.document()
	if len(dc.p.list) > 0 {
		return nil, dc.p.list
	}
	return alerts, nil
}

func (dc *decoder) problem(path, element, reason string, line int) {
	if len(dc.p.list) >= maxProblems {
		if !dc.fatal {
			dc.fatal = true
			dc.p.add(path, element, fmt.Sprintf("more than %d problems; reading stopped", maxProblems), line)
		}
		return
	}
	dc.bad[path] = true
	dc.p.add(path, element, reason, line)
}

func (dc *decoder) fail(path, element, reason string) {
	line, _ := dc.d.InputPos()
	dc.problem(path, element, reason, line)
	dc.fatal = true
}

// where names the innermost open element, for problems found before a new
// element could be named.
func (dc *decoder) where() (path, element string) {
	if len(dc.open) == 0 {
		return "", ""
	}
	top := dc.open[len(dc.open)-1].el
	return top.path, top.qname
}

func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// lookup resolves a prefix ("" for the default namespace) and says at which
// depth of the binding stack it was declared.
func (dc *decoder) lookup(prefix string) (uri string, at int, ok bool) {
	for i := len(dc.ns) - 1; i >= 0; i-- {
		if dc.ns[i].prefix == prefix {
			return dc.ns[i].uri, i, true
		}
	}
	return "", -1, false
}

// next returns the next start tag, end tag, text or end of input, keeping
// the namespace scopes, matching end tags to start tags and naming paths.
// It returns ok false after a fatal problem.
func (dc *decoder) next() (tokenKind, elem, bool) {
	for {
		if dc.fatal {
			return tokEOF, elem{}, false
		}
		dc.tokens++
		if dc.tokens > MaxTokens {
			path, el := dc.where()
			dc.fail(path, el, fmt.Sprintf("the document has more than %d XML tokens (tags, texts, comments); the hub reads at most %d", MaxTokens, MaxTokens))
			return tokEOF, elem{}, false
		}
		off := dc.d.InputOffset()
		tok, err := dc.d.RawToken()
		if errors.Is(err, io.EOF) {
			if len(dc.open) > 0 {
				path, el := dc.where()
				dc.fail(path, el, fmt.Sprintf("malformed XML: the document ends before <%s> is closed", el))
				return tokEOF, elem{}, false
			}
			return tokEOF, elem{}, true
		}
		if err != nil {
			path, el := dc.where()
			reason := err.Error()
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				reason = se.Msg
			}
			if enc, ok := strings.CutSuffix(strings.TrimPrefix(reason, "xml: "), " declared but Decoder.CharsetReader is nil"); ok {
				reason = enc + " is not supported; send UTF-8"
			}
			dc.fail(path, el, "malformed XML: "+reason)
			return tokEOF, elem{}, false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return dc.start(t, off)
		case xml.EndElement:
			if len(dc.open) == 0 {
				dc.fail(qname(t.Name), qname(t.Name), fmt.Sprintf("malformed XML: end tag </%s> without a start tag", qname(t.Name)))
				return tokEOF, elem{}, false
			}
			top := dc.open[len(dc.open)-1]
			if top.el.raw != t.Name {
				dc.fail(top.el.path, top.el.qname, fmt.Sprintf("malformed XML: end tag </%s> does not close <%s>", qname(t.Name), top.el.qname))
				return tokEOF, elem{}, false
			}
			dc.ns = dc.ns[:top.nsMark]
			dc.open = dc.open[:len(dc.open)-1]
			return tokEnd, top.el, true
		case xml.CharData:
			dc.text = t
			return tokText, elem{}, true
		case xml.Directive:
			path, el := dc.where()
			dc.fail(path, el, "a DOCTYPE or other <!...> directive is not allowed in a CAP document")
			return tokEOF, elem{}, false
		default: // comments and processing instructions carry nothing of the alert
		}
	}
}

func (dc *decoder) start(t xml.StartElement, off int64) (tokenKind, elem, bool) {
	line, _ := dc.d.InputPos()
	el := elem{raw: t.Name, line: line, start: off}
	parentDir := ""
	var parent *open
	if len(dc.open) > 0 {
		parent = &dc.open[len(dc.open)-1]
		parentDir = parent.childDir
	}
	dc.elements++
	path, pel := dc.where()
	switch {
	case len(t.Name.Space)+len(t.Name.Local) > MaxNameBytes:
		dc.fail(path, pel, fmt.Sprintf("an element name of %d bytes (%s); the hub reads names of at most %d bytes",
			len(t.Name.Space)+len(t.Name.Local)+1, clip(qname(t.Name)), MaxNameBytes))
		return tokEOF, elem{}, false
	case len(dc.open) >= MaxDepth:
		dc.fail(path, pel, fmt.Sprintf("<%s> is nested more than %d elements deep; the hub reads at most %d levels", qname(t.Name), MaxDepth, MaxDepth))
		return tokEOF, elem{}, false
	case dc.elements > MaxElements:
		dc.fail(path, pel, fmt.Sprintf("the document has more than %d elements; the hub reads at most %d", MaxElements, MaxElements))
		return tokEOF, elem{}, false
	case len(t.Attr) > MaxAttrs:
		dc.fail(path, pel, fmt.Sprintf("<%s> has %d attributes; the hub reads at most %d on one element", qname(t.Name), len(t.Attr), MaxAttrs))
		return tokEOF, elem{}, false
	}
	el.qname = qname(t.Name)
	for _, a := range t.Attr {
		if len(a.Value) > MaxTextBytes {
			dc.fail(path, pel, fmt.Sprintf("attribute %s on <%s> holds more than %d bytes; the hub takes at most %d", clip(qname(a.Name)), el.qname, MaxTextBytes, MaxTextBytes))
			return tokEOF, elem{}, false
		}
		if len(a.Name.Space)+len(a.Name.Local) > MaxNameBytes {
			dc.fail(path, pel, fmt.Sprintf("an attribute name of %d bytes on <%s>; the hub reads names of at most %d bytes",
				len(a.Name.Space)+len(a.Name.Local)+1, el.qname, MaxNameBytes))
			return tokEOF, elem{}, false
		}
	}
	mark := len(dc.ns)
	for _, a := range t.Attr {
		switch {
		case a.Name.Space == "xmlns":
			if a.Value == "" {
				dc.fail(parentDir+el.qname, el.qname, fmt.Sprintf("malformed XML: namespace prefix %q is declared empty", a.Name.Local))
				return tokEOF, elem{}, false
			}
			dc.ns = append(dc.ns, binding{a.Name.Local, a.Value})
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			dc.ns = append(dc.ns, binding{"", a.Value})
		}
	}
	if len(dc.ns) > maxBindings {
		dc.fail(path, pel, fmt.Sprintf("more than %d namespace declarations are in scope at <%s>; the hub reads at most %d", maxBindings, el.qname, maxBindings))
		return tokEOF, elem{}, false
	}
	// Name the element before resolving it, so that problems can point at it.
	el.name.Local = t.Name.Local
	switch prefix := t.Name.Space; prefix {
	case "":
		el.name.Space, _, _ = dc.lookup("")
	case "xml":
		el.name.Space = xmlNamespace
	default:
		uri, _, ok := dc.lookup(prefix)
		if !ok || prefix == "xmlns" {
			dc.open = append(dc.open, open{el: elem{path: parentDir + el.qname, qname: el.qname}})
			dc.fail(parentDir+el.qname, el.qname, fmt.Sprintf(
				"malformed XML: namespace prefix %q is not declared (the document is not namespace-well-formed; declare xmlns:%s or drop the prefix)", prefix, prefix))
			return tokEOF, elem{}, false
		}
		el.name.Space = uri
	}
	seg := el.qname
	switch {
	case dc.skipping > 0:
		// Within a skipped element: no path of its own, no line kept.
	case el.name.Space == Namespace:
		seg = el.name.Local
		if parent != nil && (repeatable[seg] || (seg == "alert" && parentDir == "")) {
			if parent.counts == nil {
				parent.counts = map[string]int{}
			}
			n := parent.counts[seg]
			parent.counts[seg]++
			seg += "[" + strconv.Itoa(n) + "]"
		}
	}
	var childDir string
	switch {
	case dc.skipping > 0:
		el.path, childDir = parent.el.path, parentDir
	case len(dc.open) == 0 && el.name != (xml.Name{Space: Namespace, Local: "alert"}):
		el.path = seg
		childDir = "" // a batch wrapper: its alerts are alert[0], alert[1], ...
	default:
		el.path = parentDir + seg
		childDir = el.path + "/"
	}
	seen := map[xml.Name]bool{}
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		n := a.Name
		if n.Space != "" {
			el.attrPrefixes = append(el.attrPrefixes, n.Space)
		}
		switch n.Space {
		case "":
		case "xml":
			n.Space = xmlNamespace
		default:
			uri, _, ok := dc.lookup(n.Space)
			if !ok {
				dc.open = append(dc.open, open{el: el})
				dc.fail(el.path, el.qname, fmt.Sprintf("malformed XML: namespace prefix %q of attribute %s is not declared", n.Space, qname(a.Name)))
				return tokEOF, elem{}, false
			}
			n.Space = uri
		}
		if seen[n] {
			dc.open = append(dc.open, open{el: el})
			dc.fail(el.path, el.qname, fmt.Sprintf("malformed XML: attribute %s appears twice", qname(a.Name)))
			return tokEOF, elem{}, false
		}
		seen[n] = true
		el.attrs = append(el.attrs, xml.Attr{Name: n, Value: a.Value})
	}
	dc.open = append(dc.open, open{el: el, nsMark: mark, childDir: childDir})
	if _, ok := dc.lines[el.path]; !ok && dc.skipping == 0 && len(dc.open) <= lineDepth {
		dc.lines[el.path] = line
	}
	return tokStart, el, true
}

// document reads the prolog, the root and the epilogue.
func (dc *decoder) document() []Alert {
	var alerts []Alert
	sawRoot := false
	for {
		kind, el, ok := dc.next()
		if !ok {
			return nil
		}
		switch kind {
		case tokEOF:
			if !sawRoot {
				dc.problem("", "", "empty document: no <alert> element", 0)
			}
			return alerts
		case tokText:
			if len(bytes.TrimSpace(dc.text)) > 0 {
				dc.fail("", "", "malformed XML: text outside the root element")
				return nil
			}
		case tokStart:
			if sawRoot {
				dc.fail(el.path, el.qname, "malformed XML: a second root element; wrap several alerts in one batch element")
				return nil
			}
			sawRoot = true
			switch {
			case el.name.Space == Namespace && el.name.Local == "alert":
				a, ok := dc.alert(el)
				if !ok {
					return nil
				}
				alerts = append(alerts, a)
			case el.name.Local == "alert":
				dc.problem(el.path, el.qname, fmt.Sprintf("<%s> is in namespace %s, not CAP 1.2's %q", el.qname, clip(el.name.Space), Namespace), el.line)
				if !dc.skip() {
					return nil
				}
			default:
				batch, ok := dc.batch(el)
				if !ok {
					return nil
				}
				alerts = batch
			}
		}
	}
}

// batch reads a wrapper whose children are alerts.
func (dc *decoder) batch(wrapper elem) ([]Alert, bool) {
	var alerts []Alert
	for {
		kind, el, ok := dc.next()
		if !ok {
			return nil, false
		}
		switch kind {
		case tokText:
			if len(bytes.TrimSpace(dc.text)) > 0 {
				dc.problem(wrapper.qname, wrapper.qname, fmt.Sprintf("batch element <%s> holds text; it may hold only CAP 1.2 <alert> elements", wrapper.qname), wrapper.line)
			}
		case tokStart:
			if el.name.Space == Namespace && el.name.Local == "alert" {
				a, ok := dc.alert(el)
				if !ok {
					return nil, false
				}
				alerts = append(alerts, a)
				continue
			}
			dc.problem(el.path, el.qname, fmt.Sprintf("<%s> (namespace %s) is neither a CAP 1.2 <alert> nor a batch of them; CAP 1.2 elements are in namespace %q",
				wrapper.qname, clip(wrapper.name.Space), Namespace), el.line)
			return nil, dc.skipRest()
		case tokEnd:
			if len(alerts) == 0 {
				dc.problem(wrapper.qname, wrapper.qname, fmt.Sprintf("<%s> holds no CAP 1.2 <alert> (namespace %q)", wrapper.qname, Namespace), wrapper.line)
			}
			return alerts, true
		}
	}
}

// skipRest consumes the input after an unrecoverable structural problem,
// still reporting malformed XML.
func (dc *decoder) skipRest() bool {
	for {
		kind, _, ok := dc.next()
		if !ok {
			return false
		}
		if kind == tokEOF {
			return true
		}
	}
}

// skip consumes the rest of the element just started.
func (dc *decoder) skip() bool {
	dc.skipping++
	defer func() { dc.skipping-- }()
	depth := 1
	for depth > 0 {
		kind, _, ok := dc.next()
		if !ok {
			return false
		}
		switch kind {
		case tokStart:
			depth++
		case tokEnd:
			depth--
		}
	}
	return true
}

// checkAttrs refuses attributes on a CAP element other than xsi:*.
func (dc *decoder) checkAttrs(el elem) {
	for _, a := range el.attrs {
		if a.Name.Space != namespaceXSI {
			dc.problem(el.path, el.qname, fmt.Sprintf("attribute %s is not allowed on <%s>", a.Name.Local, el.qname), el.line)
		}
	}
}

// text reads a simple element's content.
func (dc *decoder) textOf(el elem) (string, bool) {
	dc.checkAttrs(el)
	var buf []byte
	limit, size := textLimit(el.name.Local), 0
	for {
		kind, c, ok := dc.next()
		if !ok {
			return "", false
		}
		switch kind {
		case tokText:
			if size <= limit {
				size += len(dc.text)
				if size > limit {
					dc.problem(el.path, el.qname, fmt.Sprintf("<%s> holds more than %d bytes of text; the hub takes at most %d", el.qname, limit, limit), el.line)
					buf = nil
					continue
				}
				buf = append(buf, dc.text...)
			}
		case tokStart:
			dc.problem(c.path, c.qname, fmt.Sprintf("<%s> must hold text only, not elements", el.qname), c.line)
			if !dc.skip() {
				return "", false
			}
		case tokEnd:
			return string(buf), true
		}
	}
}

// children walks the children of a complex element in schema order,
// handing each CAP child to fn, which must consume it. XML-DSig elements are
// allowed at the end when sig is not nil, and appended to it raw.
func (dc *decoder) children(parent elem, seq []child, sig *[]byte, fn func(el elem) bool) bool {
	dc.checkAttrs(parent)
	counts := make([]int, len(seq))
	pos, last := -1, ""
	textReported := false
	var reported map[string]bool
	for {
		kind, el, ok := dc.next()
		if !ok {
			return false
		}
		switch kind {
		case tokText:
			if !textReported && len(bytes.TrimSpace(dc.text)) > 0 {
				textReported = true
				dc.problem(parent.path, parent.qname, fmt.Sprintf("<%s> holds text %q; it may hold only elements", parent.qname, abbreviate(bytes.TrimSpace(dc.text))), parent.line)
			}
		case tokEnd:
			for i, c := range seq {
				if c.required && counts[i] == 0 {
					path := parent.path + "/" + c.name
					if c.many {
						path += "[0]"
					}
					dc.problem(path, c.name, fmt.Sprintf("required element <%s> is missing from <%s>", c.name, parent.qname), parent.line)
				}
			}
			return true
		case tokStart:
			if sig != nil && el.name.Space == NamespaceDSig {
				raw, ok := dc.capture(el)
				if !ok {
					return false
				}
				*sig = append(*sig, raw...)
				pos, last = len(seq), el.qname
				continue
			}
			idx := -1
			if el.name.Space == Namespace {
				idx = slices.IndexFunc(seq, func(c child) bool { return c.name == el.name.Local })
			}
			if idx < 0 {
				// Reported once per name: a thousand copies say no more than one.
				if reported == nil {
					reported = map[string]bool{}
				}
				if !reported[el.path] {
					reported[el.path] = true
					dc.problem(el.path, el.qname, unexpected(parent, el, sig != nil), el.line)
				}
				if !dc.skip() {
					return false
				}
				continue
			}
			if idx < pos {
				dc.problem(el.path, el.qname, fmt.Sprintf("<%s> is out of order: the schema puts it before <%s>", el.name.Local, last), el.line)
			} else {
				pos, last = idx, el.qname
			}
			counts[idx]++
			if seq[idx].max > 0 && counts[idx] > seq[idx].max {
				if counts[idx] == seq[idx].max+1 {
					dc.problem(el.path, el.qname, fmt.Sprintf("more than %d <%s> in <%s>; the hub takes at most %d", seq[idx].max, el.name.Local, parent.qname, seq[idx].max), el.line)
				}
				if !dc.skip() {
					return false
				}
				continue
			}
			if !seq[idx].many && counts[idx] > 1 {
				dc.problem(el.path, el.qname, fmt.Sprintf("<%s> appears more than once in <%s>; the schema allows one", el.name.Local, parent.qname), el.line)
				if !dc.skip() {
					return false
				}
				continue
			}
			if !fn(el) {
				return false
			}
		}
	}
}

func unexpected(parent, el elem, dsig bool) string {
	switch {
	case el.name.Space == "":
		return fmt.Sprintf("<%s> has no namespace; CAP 1.2 elements are in namespace %q", el.qname, Namespace)
	case el.name.Space == NamespaceDSig:
		return fmt.Sprintf("XML-DSig <%s> is allowed only at the end of <alert>, not in <%s>", el.qname, parent.qname)
	case el.name.Space != Namespace:
		return fmt.Sprintf("<%s> in namespace %s is not allowed in <%s>", el.qname, clip(el.name.Space), parent.qname)
	}
	return fmt.Sprintf("<%s> is not an element of <%s> in CAP 1.2", el.name.Local, parent.qname)
}

func abbreviate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// capture reads an XML-DSig element and returns its bytes as written, with
// declarations of the namespaces it inherited added to its start tag.
func (dc *decoder) capture(el elem) ([]byte, bool) {
	dc.skipping++
	defer func() { dc.skipping-- }()
	sigMark := dc.open[len(dc.open)-1].nsMark
	inherited := map[string]string{}
	use := func(prefix string, element bool) {
		if prefix == "xml" || (prefix == "" && !element) {
			return
		}
		uri, at, ok := dc.lookup(prefix)
		if ok && at >= sigMark {
			return // declared within the signature
		}
		if ok || prefix == "" {
			// For the default namespace, an undeclared one is kept
			// undeclared (xmlns="") wherever the bytes are written.
			inherited[prefix] = uri
		}
	}
	use(el.raw.Space, true)
	for _, p := range el.attrPrefixes {
		use(p, false)
	}
	depth := 1
	for depth > 0 {
		kind, c, ok := dc.next()
		if !ok {
			return nil, false
		}
		switch kind {
		case tokStart:
			depth++
			use(c.raw.Space, true)
			for _, p := range c.attrPrefixes {
				use(p, false)
			}
		case tokEnd:
			depth--
		}
	}
	end := dc.d.InputOffset()
	raw := dc.src[el.start:end]
	if len(inherited) == 0 {
		return slices.Clone(raw), true
	}
	prefixes := make([]string, 0, len(inherited))
	for p := range inherited {
		prefixes = append(prefixes, p)
	}
	slices.Sort(prefixes)
	var decl bytes.Buffer
	for _, p := range prefixes {
		decl.WriteString(" xmlns")
		if p != "" {
			decl.WriteString(":" + p)
		}
		decl.WriteString(`="`)
		_ = xml.EscapeText(&decl, []byte(inherited[p]))
		decl.WriteString(`"`)
	}
	at := 1 + len(el.qname) // after "<prefix:local"
	out := make([]byte, 0, len(raw)+decl.Len())
	out = append(out, raw[:at]...)
	out = append(out, decl.Bytes()...)
	out = append(out, raw[at:]...)
	return out, true
}
