package cap

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// alert reads one <alert> and applies Validate's rules to it, reporting
// only problems at paths that decoding has not already reported.
func (dc *decoder) alert(el elem) (Alert, bool) {
	var a Alert
	ok := dc.children(el, alertSeq, &a.Signature, func(c elem) bool {
		if c.name.Local == "info" {
			in, ok := dc.info(c)
			a.Infos = append(a.Infos, in)
			return ok
		}
		s, ok := dc.textOf(c)
		if !ok {
			return false
		}
		switch c.name.Local {
		case "identifier":
			a.Identifier = strings.TrimSpace(s)
		case "sender":
			a.Sender = strings.TrimSpace(s)
		case "sent":
			a.Sent = dc.time(c, s)
		case "status":
			a.Status = strings.TrimSpace(s)
		case "msgType":
			a.MsgType = strings.TrimSpace(s)
		case "source":
			a.Source = s
		case "scope":
			a.Scope = strings.TrimSpace(s)
		case "restriction":
			a.Restriction = s
		case "addresses":
			a.Addresses = s
		case "code":
			a.Codes = append(a.Codes, s)
		case "note":
			a.Note = s
		case "references":
			a.References = strings.TrimSpace(s)
		case "incidents":
			a.Incidents = s
		}
		return true
	})
	if !ok {
		return Alert{}, false
	}
	var vp problems
	validateAlert(&vp, &a, el.path)
	for _, p := range vp.list {
		if !dc.bad[p.Path] {
			p.Line = dc.lineOf(p.Path)
			dc.p.list = append(dc.p.list, p)
		}
	}
	return a, true
}

func (dc *decoder) info(el elem) (Info, bool) {
	var in Info
	ok := dc.children(el, infoSeq, nil, func(c elem) bool {
		switch c.name.Local {
		case "eventCode", "parameter":
			nv, ok := dc.namedValue(c)
			if c.name.Local == "eventCode" {
				in.EventCodes = append(in.EventCodes, nv)
			} else {
				in.Parameters = append(in.Parameters, nv)
			}
			return ok
		case "resource":
			r, ok := dc.resource(c)
			in.Resources = append(in.Resources, r)
			return ok
		case "area":
			ar, ok := dc.area(c)
			in.Areas = append(in.Areas, ar)
			return ok
		}
		s, ok := dc.textOf(c)
		if !ok {
			return false
		}
		switch c.name.Local {
		case "language":
			in.Language = strings.TrimSpace(s)
		case "category":
			in.Categories = append(in.Categories, strings.TrimSpace(s))
		case "event":
			in.Event = s
		case "responseType":
			in.ResponseTypes = append(in.ResponseTypes, strings.TrimSpace(s))
		case "urgency":
			in.Urgency = strings.TrimSpace(s)
		case "severity":
			in.Severity = strings.TrimSpace(s)
		case "certainty":
			in.Certainty = strings.TrimSpace(s)
		case "audience":
			in.Audience = s
		case "effective":
			in.Effective = dc.time(c, s)
		case "onset":
			in.Onset = dc.time(c, s)
		case "expires":
			in.Expires = dc.time(c, s)
		case "senderName":
			in.SenderName = s
		case "headline":
			in.Headline = s
		case "description":
			in.Description = s
		case "instruction":
			in.Instruction = s
		case "web":
			in.Web = strings.TrimSpace(s)
		case "contact":
			in.Contact = s
		}
		return true
	})
	if in.Language == "" {
		// The schema's default applies to an absent or empty <language>.
		in.Language = DefaultLanguage
	}
	return in, ok
}

func (dc *decoder) namedValue(el elem) (NamedValue, bool) {
	var nv NamedValue
	ok := dc.children(el, valueSeq, nil, func(c elem) bool {
		s, ok := dc.textOf(c)
		if c.name.Local == "valueName" {
			nv.ValueName = s
		} else {
			nv.Value = s
		}
		return ok
	})
	return nv, ok
}

func (dc *decoder) resource(el elem) (Resource, bool) {
	var r Resource
	ok := dc.children(el, resourceSeq, nil, func(c elem) bool {
		s, ok := dc.textOf(c)
		if !ok {
			return false
		}
		switch c.name.Local {
		case "resourceDesc":
			r.ResourceDesc = s
		case "mimeType":
			r.MimeType = s
		case "size":
			t := strings.TrimSpace(s)
			n, err := strconv.ParseInt(t, 10, 64)
			if err != nil {
				dc.problem(c.path, c.qname, fmt.Sprintf("size %s is not a whole number of bytes", clip(t)), c.line)
				return true
			}
			r.Size = &n
		case "uri":
			r.URI = strings.TrimSpace(s)
		case "derefUri":
			r.DerefURI = s
		case "digest":
			r.Digest = s
		}
		return true
	})
	return r, ok
}

func (dc *decoder) area(el elem) (Area, bool) {
	var a Area
	ok := dc.children(el, areaSeq, nil, func(c elem) bool {
		if c.name.Local == "geocode" {
			nv, ok := dc.namedValue(c)
			a.Geocodes = append(a.Geocodes, nv)
			return ok
		}
		s, ok := dc.textOf(c)
		if !ok {
			return false
		}
		switch c.name.Local {
		case "areaDesc":
			a.AreaDesc = s
		case "polygon":
			pg, reason := parsePolygon(s)
			if reason != "" {
				dc.problem(c.path, c.qname, reason, c.line)
			}
			a.Polygons = append(a.Polygons, pg)
		case "circle":
			ci, reason := parseCircle(s)
			if reason != "" {
				dc.problem(c.path, c.qname, reason, c.line)
			}
			a.Circles = append(a.Circles, ci)
		case "altitude", "ceiling":
			t := strings.TrimSpace(s)
			f, ok := parseDecimal(t)
			if !ok {
				dc.problem(c.path, c.qname, fmt.Sprintf("%s %s is not a decimal number of feet", c.name.Local, clip(t)), c.line)
				if c.name.Local == "altitude" {
					// The ceiling is not "without altitude": the altitude is unreadable.
					dc.bad[el.path+"/ceiling"] = true
				}
				return true
			}
			if c.name.Local == "altitude" {
				a.Altitude = &f
			} else {
				a.Ceiling = &f
			}
		}
		return true
	})
	return a, ok
}

// lineOf gives the line of the element at path or, for a missing element,
// of its nearest ancestor.
func (dc *decoder) lineOf(path string) int {
	for {
		if line, ok := dc.lines[path]; ok {
			return line
		}
		i := strings.LastIndexByte(path, '/')
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
}

// time reads a CAP date-time, reporting a bad one.
func (dc *decoder) time(el elem, s string) time.Time {
	t, reason := parseTime(strings.TrimSpace(s))
	if reason != "" {
		dc.problem(el.path, el.qname, reason, el.line)
	}
	return t
}
