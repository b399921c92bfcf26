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
}

// The schema's sequences, in order.
var (
	alertSeq = []child{
		{"identifier", true, false}, {"sender", true, false}, {"sent", true, false},
		{"status", true, false}, {"msgType", true, false}, {"source", false, false},
		{"scope", true, false}, {"restriction", false, false}, {"addresses", false, false},
		{"code", false, true}, {"note", false, false}, {"references", false, false},
		{"incidents", false, false}, {"info", false, true},
	}
	infoSeq = []child{
		{"language", false, false}, {"category", true, true}, {"event", true, false},
		{"responseType", false, true}, {"urgency", true, false}, {"severity", true, false},
		{"certainty", true, false}, {"audience", false, false}, {"eventCode", false, true},
		{"effective", false, false}, {"onset", false, false}, {"expires", false, false},
		{"senderName", false, false}, {"headline", false, false}, {"description", false, false},
		{"instruction", false, false}, {"web", false, false}, {"contact", false, false},
		{"parameter", false, true}, {"resource", false, true}, {"area", false, true},
	}
	resourceSeq = []child{
		{"resourceDesc", true, false}, {"mimeType", true, false}, {"size", false, false},
		{"uri", false, false}, {"derefUri", false, false}, {"digest", false, false},
	}
	areaSeq = []child{
		{"areaDesc", true, false}, {"polygon", false, true}, {"circle", false, true},
		{"geocode", false, true}, {"altitude", false, false}, {"ceiling", false, false},
	}
	valueSeq = []child{{"valueName", true, false}, {"value", true, false}}
)

// repeatable names the CAP elements whose paths carry an index.
var repeatable = map[string]bool{
	"code": true, "info": true, "category": true, "responseType": true, "eventCode": true,
	"parameter": true, "resource": true, "area": true, "polygon": true, "circle": true, "geocode": true,
}

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
}

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
	el := elem{raw: t.Name, qname: qname(t.Name), line: line, start: off}
	parentDir := ""
	var parent *open
	if len(dc.open) > 0 {
		parent = &dc.open[len(dc.open)-1]
		parentDir = parent.childDir
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
	if el.name.Space == Namespace {
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
	el.path = parentDir + seg
	childDir := el.path + "/"
	if len(dc.open) == 0 && el.name != (xml.Name{Space: Namespace, Local: "alert"}) {
		childDir = "" // a batch wrapper: its alerts are alert[0], alert[1], ...
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
	if _, ok := dc.lines[el.path]; !ok {
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
				dc.problem(el.path, el.qname, fmt.Sprintf("<%s> is in namespace %q, not CAP 1.2's %q", el.qname, el.name.Space, Namespace), el.line)
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
			dc.problem(el.path, el.qname, fmt.Sprintf("<%s> (namespace %q) is neither a CAP 1.2 <alert> nor a batch of them; CAP 1.2 elements are in namespace %q",
				wrapper.qname, wrapper.name.Space, Namespace), el.line)
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
	for {
		kind, c, ok := dc.next()
		if !ok {
			return "", false
		}
		switch kind {
		case tokText:
			buf = append(buf, dc.text...)
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
				dc.problem(el.path, el.qname, unexpected(parent, el, sig != nil), el.line)
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
		return fmt.Sprintf("<%s> in namespace %q is not allowed in <%s>", el.qname, el.name.Space, parent.qname)
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
