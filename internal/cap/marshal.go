package cap

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Marshal writes the alert as a CAP 1.2 XML document: the CAP namespace as
// the default namespace, elements in the schema's order, date-times with
// their offsets, and the Signature bytes as they were read. Optional elements
// whose value is empty or zero are left out; required ones are always
// written. An alert that fails Validate is refused with its ValidationErrors.
//
// The output is not canonicalised: a signature over the original document
// may not verify against it.
func Marshal(a Alert) ([]byte, error) {
	if err := Validate(a); err != nil {
		return nil, fmt.Errorf("marshalling CAP alert %q: %w", a.Identifier, err)
	}
	w := &writer{}
	w.buf.Grow(1024 + len(a.Signature))
	w.buf.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	w.buf.WriteString(`<alert xmlns="` + Namespace + `">` + "\n")
	w.text(1, "identifier", a.Identifier)
	w.text(1, "sender", a.Sender)
	w.time(1, "sent", a.Sent)
	w.text(1, "status", a.Status)
	w.text(1, "msgType", a.MsgType)
	w.opt(1, "source", a.Source)
	w.text(1, "scope", a.Scope)
	w.opt(1, "restriction", a.Restriction)
	w.opt(1, "addresses", a.Addresses)
	for _, c := range a.Codes {
		w.text(1, "code", c)
	}
	w.opt(1, "note", a.Note)
	w.opt(1, "references", a.References)
	w.opt(1, "incidents", a.Incidents)
	for i := range a.Infos {
		w.info(&a.Infos[i])
	}
	if len(a.Signature) > 0 {
		w.indent(1)
		w.buf.Write(a.Signature)
		w.buf.WriteByte('\n')
	}
	w.buf.WriteString("</alert>\n")
	return w.buf.Bytes(), nil
}

type writer struct {
	buf bytes.Buffer
}

func (w *writer) indent(depth int) {
	for range depth {
		w.buf.WriteString("  ")
	}
}

func (w *writer) open(depth int, name string) {
	w.indent(depth)
	w.buf.WriteString("<" + name + ">\n")
}

func (w *writer) close(depth int, name string) {
	w.indent(depth)
	w.buf.WriteString("</" + name + ">\n")
}

// text writes a simple element, always.
func (w *writer) text(depth int, name, v string) {
	w.indent(depth)
	w.buf.WriteString("<" + name + ">")
	escape(&w.buf, v)
	w.buf.WriteString("</" + name + ">\n")
}

// opt writes a simple element unless its value is empty.
func (w *writer) opt(depth int, name, v string) {
	if v != "" {
		w.text(depth, name, v)
	}
}

func (w *writer) time(depth int, name string, t time.Time) {
	if !t.IsZero() {
		w.text(depth, name, t.Format(timeLayout))
	}
}

func (w *writer) namedValues(depth int, name string, nvs []NamedValue) {
	for _, nv := range nvs {
		w.open(depth, name)
		w.text(depth+1, "valueName", nv.ValueName)
		w.text(depth+1, "value", nv.Value)
		w.close(depth, name)
	}
}

func (w *writer) info(in *Info) {
	w.open(1, "info")
	w.opt(2, "language", in.Language)
	for _, c := range in.Categories {
		w.text(2, "category", c)
	}
	w.text(2, "event", in.Event)
	for _, r := range in.ResponseTypes {
		w.text(2, "responseType", r)
	}
	w.text(2, "urgency", in.Urgency)
	w.text(2, "severity", in.Severity)
	w.text(2, "certainty", in.Certainty)
	w.opt(2, "audience", in.Audience)
	w.namedValues(2, "eventCode", in.EventCodes)
	w.time(2, "effective", in.Effective)
	w.time(2, "onset", in.Onset)
	w.time(2, "expires", in.Expires)
	w.opt(2, "senderName", in.SenderName)
	w.opt(2, "headline", in.Headline)
	w.opt(2, "description", in.Description)
	w.opt(2, "instruction", in.Instruction)
	w.opt(2, "web", in.Web)
	w.opt(2, "contact", in.Contact)
	w.namedValues(2, "parameter", in.Parameters)
	for _, r := range in.Resources {
		w.open(2, "resource")
		w.text(3, "resourceDesc", r.ResourceDesc)
		w.text(3, "mimeType", r.MimeType)
		if r.Size != nil {
			w.text(3, "size", strconv.FormatInt(*r.Size, 10))
		}
		w.opt(3, "uri", r.URI)
		w.opt(3, "derefUri", r.DerefURI)
		w.opt(3, "digest", r.Digest)
		w.close(2, "resource")
	}
	for i := range in.Areas {
		a := &in.Areas[i]
		w.open(2, "area")
		w.text(3, "areaDesc", a.AreaDesc)
		for _, pg := range a.Polygons {
			w.text(3, "polygon", pg.String())
		}
		for _, c := range a.Circles {
			w.text(3, "circle", c.String())
		}
		w.namedValues(3, "geocode", a.Geocodes)
		if a.Altitude != nil {
			w.text(3, "altitude", formatFloat(*a.Altitude))
		}
		if a.Ceiling != nil {
			w.text(3, "ceiling", formatFloat(*a.Ceiling))
		}
		w.close(2, "area")
	}
	w.close(1, "info")
}

// escape writes s as element content. Unlike xml.EscapeText it keeps new
// lines and tabs as they are, so descriptions stay readable; a carriage
// return becomes a character reference because XML readers turn a literal
// one into a new line. Characters XML 1.0 cannot carry are replaced by
// U+FFFD, as encoding/xml does.
func escape(b *bytes.Buffer, s string) {
	last := 0
	for i := 0; i < len(s); {
		r, width := utf8.DecodeRuneInString(s[i:])
		var esc string
		switch {
		case r == '&':
			esc = "&amp;"
		case r == '<':
			esc = "&lt;"
		case r == '>':
			esc = "&gt;"
		case r == '\r':
			esc = "&#xD;"
		case r == '\n' || r == '\t':
		case !isXMLChar(r) || (r == utf8.RuneError && width == 1):
			esc = "\uFFFD"
		}
		if esc != "" {
			b.WriteString(s[last:i])
			b.WriteString(esc)
			last = i + width
		}
		i += width
	}
	b.WriteString(s[last:])
}

// isXMLChar reports whether r is in the XML 1.0 Char production.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}
