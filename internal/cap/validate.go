package cap

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Enumerations of the CAP 1.2 schema, in its order. Read only: the ingest's
// CAP-shaped JSON and the alert rules check against them too.
var (
	Statuses      = []string{"Actual", "Exercise", "System", "Test", "Draft"}
	MsgTypes      = []string{"Alert", "Update", "Cancel", "Ack", "Error"}
	Scopes        = []string{"Public", "Restricted", "Private"}
	Categories    = []string{"Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra", "CBRNE", "Other"}
	ResponseTypes = []string{"Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None"}
	Urgencies     = []string{"Immediate", "Expected", "Future", "Past", "Unknown"}
	Severities    = []string{"Extreme", "Severe", "Moderate", "Minor", "Unknown"}
	Certainties   = []string{"Observed", "Likely", "Possible", "Unlikely", "Unknown"}
)

// languageRE is the lexical form of xs:language.
var languageRE = regexp.MustCompile(`^[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*$`)

// timeLayout is CAP's date-time form: always an offset, never Z, no fraction.
const timeLayout = "2006-01-02T15:04:05-07:00"

// maxOffset is the largest time zone offset xs:dateTime allows.
const maxOffset = 14 * 60 * 60

// problems collects ValidationErrors.
type problems struct {
	list ValidationErrors
}

func (p *problems) add(path, element, reason string, line int) {
	p.list = append(p.list, &ValidationError{Path: path, Element: element, Reason: reason, Line: line})
}

func (p *problems) addf(path, element string, line int, format string, args ...any) {
	p.add(path, element, fmt.Sprintf(format, args...), line)
}

// Validate checks an Alert against the rules of the CAP 1.2 schema and the
// musts of the CAP 1.2 specification that the schema cannot express
// (restriction when Restricted, addresses when Private, closed polygons of at
// least four points, the references format, identifiers without spaces or
// commas). It returns ValidationErrors listing every problem, or nil.
func Validate(a Alert) error {
	var p problems
	validateAlert(&p, &a, "alert")
	if len(a.Signature) > 0 {
		if reason := signatureProblem(a.Signature); reason != "" {
			p.add("alert/Signature", "Signature", reason, 0)
		}
	}
	if len(p.list) == 0 {
		return nil
	}
	return p.list
}

func validateAlert(p *problems, a *Alert, path string) {
	checkID(p, path+"/identifier", "identifier", a.Identifier)
	checkID(p, path+"/sender", "sender", a.Sender)
	if a.Sent.IsZero() {
		p.add(path+"/sent", "sent", "required element is missing", 0)
	} else {
		checkTime(p, path+"/sent", "sent", a.Sent)
	}
	checkEnum(p, path+"/status", "status", a.Status, Statuses)
	checkEnum(p, path+"/msgType", "msgType", a.MsgType, MsgTypes)
	checkEnum(p, path+"/scope", "scope", a.Scope, Scopes)
	if a.Scope == "Restricted" && strings.TrimSpace(a.Restriction) == "" {
		p.add(path+"/restriction", "restriction", "required when scope is Restricted", 0)
	}
	if a.Scope == "Private" && strings.TrimSpace(a.Addresses) == "" {
		p.add(path+"/addresses", "addresses", "required when scope is Private", 0)
	}
	if a.References != "" {
		if reason := referencesProblem(a.References); reason != "" {
			p.add(path+"/references", "references", reason, 0)
		}
	}
	checkCount(p, path, "alert", "code", len(a.Codes), MaxCodes)
	checkCount(p, path, "alert", "info", len(a.Infos), MaxInfos)
	for i := range a.Infos {
		validateInfo(p, &a.Infos[i], fmt.Sprintf("%s/info[%d]", path, i))
	}
	checkVertices(p, a, path)
}

// checkCount reports more than max elements of one name in a parent.
func checkCount(p *problems, path, parent, name string, n, max int) {
	if n > max {
		p.addf(fmt.Sprintf("%s/%s[%d]", path, name, max), name, 0, "more than %d <%s> in <%s>; the hub takes at most %d", max, name, parent, max)
	}
}

// checkVertices applies MaxVertices to the distinct polygons and circles of
// the alert.
func checkVertices(p *problems, a *Alert, path string) {
	seen := map[string]bool{}
	total := 0
	for i := range a.Infos {
		for j := range a.Infos[i].Areas {
			ar := &a.Infos[i].Areas[j]
			at := fmt.Sprintf("%s/info[%d]/area[%d]", path, i, j)
			for k, pg := range ar.Polygons {
				key := ShapeKey(pg, nil)
				if seen[key] {
					continue
				}
				seen[key] = true
				total += len(pg)
				if total > MaxVertices {
					p.addf(fmt.Sprintf("%s/polygon[%d]", at, k), "polygon", 0, "the alert's distinct polygons and circles have more than %d vertices together; the hub takes at most %d", MaxVertices, MaxVertices)
					return
				}
			}
			for k, c := range ar.Circles {
				key := ShapeKey(nil, &c)
				if seen[key] {
					continue
				}
				seen[key] = true
				total += CircleSegments + 1
				if total > MaxVertices {
					p.addf(fmt.Sprintf("%s/circle[%d]", at, k), "circle", 0, "the alert's distinct polygons and circles have more than %d vertices together (a circle counts %d); the hub takes at most %d", MaxVertices, CircleSegments+1, MaxVertices)
					return
				}
			}
		}
	}
}

func validateInfo(p *problems, in *Info, path string) {
	checkCount(p, path, "info", "category", len(in.Categories), MaxShapes)
	checkCount(p, path, "info", "responseType", len(in.ResponseTypes), MaxShapes)
	checkCount(p, path, "info", "eventCode", len(in.EventCodes), MaxShapes)
	checkCount(p, path, "info", "parameter", len(in.Parameters), MaxShapes)
	checkCount(p, path, "info", "resource", len(in.Resources), MaxShapes)
	checkCount(p, path, "info", "area", len(in.Areas), MaxAreas)
	if in.Language != "" && !languageRE.MatchString(in.Language) {
		p.addf(path+"/language", "language", 0, "%s is not a language tag such as en-US or vi", clip(in.Language))
	}
	if len(in.Categories) == 0 {
		p.add(path+"/category[0]", "category", "at least one category is required", 0)
	}
	for i, c := range in.Categories {
		checkEnum(p, fmt.Sprintf("%s/category[%d]", path, i), "category", c, Categories)
	}
	for i, r := range in.ResponseTypes {
		checkEnum(p, fmt.Sprintf("%s/responseType[%d]", path, i), "responseType", r, ResponseTypes)
	}
	checkEnum(p, path+"/urgency", "urgency", in.Urgency, Urgencies)
	checkEnum(p, path+"/severity", "severity", in.Severity, Severities)
	checkEnum(p, path+"/certainty", "certainty", in.Certainty, Certainties)
	for _, t := range []struct {
		name string
		v    time.Time
	}{{"effective", in.Effective}, {"onset", in.Onset}, {"expires", in.Expires}} {
		if !t.v.IsZero() {
			checkTime(p, path+"/"+t.name, t.name, t.v)
		}
	}
	for i, r := range in.Resources {
		if r.Size != nil && *r.Size < 0 {
			p.addf(fmt.Sprintf("%s/resource[%d]/size", path, i), "size", 0, "size %d is negative; it is the resource's size in bytes", *r.Size)
		}
	}
	for i := range in.Areas {
		validateArea(p, &in.Areas[i], fmt.Sprintf("%s/area[%d]", path, i))
	}
}

func validateArea(p *problems, a *Area, path string) {
	checkCount(p, path, "area", "polygon", len(a.Polygons), MaxShapes)
	checkCount(p, path, "area", "circle", len(a.Circles), MaxShapes)
	checkCount(p, path, "area", "geocode", len(a.Geocodes), MaxShapes)
	for i, pg := range a.Polygons {
		if reason := polygonProblem(pg); reason != "" {
			p.add(fmt.Sprintf("%s/polygon[%d]", path, i), "polygon", reason, 0)
		}
	}
	for i, c := range a.Circles {
		if reason := circleProblem(c); reason != "" {
			p.add(fmt.Sprintf("%s/circle[%d]", path, i), "circle", reason, 0)
		}
	}
	if a.Altitude != nil && !isFinite(*a.Altitude) {
		p.add(path+"/altitude", "altitude", "altitude is not a finite number", 0)
	}
	if a.Ceiling != nil {
		if !isFinite(*a.Ceiling) {
			p.add(path+"/ceiling", "ceiling", "ceiling is not a finite number", 0)
		}
		if a.Altitude == nil {
			p.add(path+"/ceiling", "ceiling", "ceiling must not be used without altitude", 0)
		}
	}
}

func isFinite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// signatureProblem checks that sig is one or more XML-DSig elements that
// stand alone: well-formed, every prefix declared within them.
func signatureProblem(sig []byte) string {
	dc := &decoder{d: xml.NewDecoder(bytes.NewReader(sig)), src: sig, bad: map[string]bool{}, lines: map[string]int{}}
	elements := 0
	for {
		kind, el, ok := dc.next()
		if !ok {
			return "signature bytes are not well-formed XML: " + dc.p.list[0].Error()
		}
		switch kind {
		case tokEOF:
			if elements == 0 {
				return "signature bytes hold no element"
			}
			return ""
		case tokText:
			if len(bytes.TrimSpace(dc.text)) > 0 {
				return "signature bytes hold text outside an element"
			}
		case tokStart:
			elements++
			if el.name.Space != NamespaceDSig {
				return fmt.Sprintf("signature element <%s> is in namespace %s, not XML-DSig's %q", el.qname, clip(el.name.Space), NamespaceDSig)
			}
			if !dc.skip() {
				return "signature bytes are not well-formed XML: " + dc.p.list[0].Error()
			}
		}
	}
}

// checkID applies the specification's rule for identifier and sender: not
// empty, no spaces, commas or restricted characters (< and &).
func checkID(p *problems, path, element, v string) {
	switch {
	case v == "":
		p.add(path, element, "required element is missing or empty", 0)
	case len(v) > MaxIDBytes:
		p.addf(path, element, 0, "%s is %d bytes; the hub takes at most %d", clip(v), len(v), MaxIDBytes)
	case strings.ContainsAny(v, " \t\r\n,<&"):
		p.addf(path, element, 0, "%s must not contain spaces, commas, < or &", clip(v))
	}
}

func checkEnum(p *problems, path, element, v string, allowed []string) {
	if v == "" {
		p.addf(path, element, 0, "required element is missing or empty; want one of %s", strings.Join(allowed, ", "))
		return
	}
	if !slices.Contains(allowed, v) {
		p.addf(path, element, 0, "%s is not one of %s", clip(v), strings.Join(allowed, ", "))
	}
}

// checkTime reports a time that CAP's date-time form cannot carry exactly.
func checkTime(p *problems, path, element string, t time.Time) {
	_, off := t.Zone()
	switch {
	case t.Year() < 0 || t.Year() > 9999:
		p.addf(path, element, 0, "year %d does not fit the four digits of a CAP date-time", t.Year())
	case t.Nanosecond() != 0:
		p.add(path, element, "CAP date-times have whole seconds; this one has a fraction", 0)
	case off%60 != 0 || off > maxOffset || off < -maxOffset:
		p.addf(path, element, 0, "offset of %ds is not whole minutes within ±14:00", off)
	}
}

// parseTime reads CAP's date-time form YYYY-MM-DDThh:mm:ss±hh:mm. The
// reason is empty when s is good.
func parseTime(s string) (time.Time, string) {
	const want = "want the CAP date-time form YYYY-MM-DDThh:mm:ss±hh:mm"
	if strings.HasSuffix(s, "Z") || strings.HasSuffix(s, "z") {
		return time.Time{}, fmt.Sprintf("%s uses the UTC designator Z, which CAP forbids: write +00:00 instead", clip(s))
	}
	if len(s) != len(timeLayout) {
		if len(s) > 19 && s[19] == '.' {
			return time.Time{}, fmt.Sprintf("%s has fractional seconds, which CAP forbids; %s", clip(s), want)
		}
		if len(s) == 19 {
			return time.Time{}, fmt.Sprintf("%s has no time zone offset; %s", clip(s), want)
		}
		return time.Time{}, fmt.Sprintf("%s is not a CAP date-time; %s", clip(s), want)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := false
		switch i {
		case 4, 7:
			ok = c == '-'
		case 10:
			ok = c == 'T'
		case 13, 16, 22:
			ok = c == ':'
		case 19:
			ok = c == '+' || c == '-'
		default:
			ok = c >= '0' && c <= '9'
		}
		if !ok {
			return time.Time{}, fmt.Sprintf("%s is not a CAP date-time; %s", clip(s), want)
		}
	}
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Sprintf("%s is not a valid date-time: %v", clip(s), err)
	}
	_, off := t.Zone()
	if off > maxOffset || off < -maxOffset {
		return time.Time{}, fmt.Sprintf("%s has an offset beyond ±14:00", clip(s))
	}
	// A fresh fixed zone rather than Local, so that equal text gives equal values.
	return t.In(time.FixedZone("", off)), ""
}

// referencesProblem checks the references form: space-separated
// sender,identifier,sent triples.
func referencesProblem(s string) string {
	refs := strings.Fields(s)
	if len(refs) == 0 {
		return "references is blank; want space-separated sender,identifier,sent triples"
	}
	if len(refs) > MaxReferences {
		return fmt.Sprintf("%d references; the hub takes at most %d", len(refs), MaxReferences)
	}
	for i, ref := range refs {
		parts := strings.Split(ref, ",")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
			return fmt.Sprintf("reference %d %s is not sender,identifier,sent", i+1, clip(ref))
		}
		if len(parts[0]) > MaxIDBytes || len(parts[1]) > MaxIDBytes {
			return fmt.Sprintf("reference %d %s has a sender or identifier longer than %d bytes", i+1, clip(ref), MaxIDBytes)
		}
		if _, reason := parseTime(parts[2]); reason != "" {
			return fmt.Sprintf("reference %d %s: sent %s", i+1, clip(ref), reason)
		}
	}
	return ""
}

// isDecimal reports whether s is an xs:decimal: optional sign, digits, an
// optional fraction, no exponent.
func isDecimal(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

func parseDecimal(s string) (float64, bool) {
	if !isDecimal(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !isFinite(f) {
		return 0, false
	}
	return f, true
}

// parsePoint reads "lat,lon".
func parsePoint(s string) (Point, bool) {
	lat, lon, ok := strings.Cut(s, ",")
	if !ok {
		return Point{}, false
	}
	la, ok1 := parseDecimal(lat)
	lo, ok2 := parseDecimal(lon)
	return Point{Lat: la, Lon: lo}, ok1 && ok2
}

// parsePolygon reads whitespace-separated lat,lon pairs. Rules about the
// ring (count, closure, ranges) are polygonProblem's.
func parsePolygon(s string) (Polygon, string) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, "polygon is empty; want at least 4 space-separated lat,lon pairs, the first equal to the last"
	}
	if len(fields) > MaxPolygonVertices {
		return nil, fmt.Sprintf("polygon has %d points; the hub takes at most %d", len(fields), MaxPolygonVertices)
	}
	pg := make(Polygon, 0, len(fields))
	for i, f := range fields {
		pt, ok := parsePoint(f)
		if !ok {
			return nil, fmt.Sprintf("pair %d %s is not lat,lon in decimal degrees", i+1, clip(f))
		}
		pg = append(pg, pt)
	}
	return pg, ""
}

// parseCircle reads "lat,lon radius".
func parseCircle(s string) (Circle, string) {
	const want = "want \"lat,lon radius\" with the radius in km"
	fields := strings.Fields(s)
	if len(fields) != 2 {
		return Circle{}, fmt.Sprintf("%s is not a circle; %s", clip(s), want)
	}
	pt, ok := parsePoint(fields[0])
	if !ok {
		return Circle{}, fmt.Sprintf("centre %s is not lat,lon in decimal degrees; %s", clip(fields[0]), want)
	}
	r, ok := parseDecimal(fields[1])
	if !ok {
		return Circle{}, fmt.Sprintf("radius %s is not a decimal number of km; %s", clip(fields[1]), want)
	}
	return Circle{Center: pt, Radius: r}, ""
}

func pointProblem(pt Point) string {
	switch {
	case !isFinite(pt.Lat) || pt.Lat < -90 || pt.Lat > 90:
		return fmt.Sprintf("latitude %s is outside [-90, 90]", formatFloat(pt.Lat))
	case !isFinite(pt.Lon) || pt.Lon < -180 || pt.Lon > 180:
		return fmt.Sprintf("longitude %s is outside [-180, 180]", formatFloat(pt.Lon))
	}
	return ""
}

func polygonProblem(pg Polygon) string {
	if len(pg) < 4 {
		return fmt.Sprintf("polygon has %d pairs; want at least 4, the first equal to the last", len(pg))
	}
	if len(pg) > MaxPolygonVertices {
		return fmt.Sprintf("polygon has %d points; the hub takes at most %d", len(pg), MaxPolygonVertices)
	}
	for i, pt := range pg {
		if reason := pointProblem(pt); reason != "" {
			return fmt.Sprintf("pair %d: %s", i+1, reason)
		}
	}
	if pg[0] != pg[len(pg)-1] {
		return fmt.Sprintf("polygon is not closed: first pair %s differs from last pair %s", pg[0], pg[len(pg)-1])
	}
	return ""
}

func circleProblem(c Circle) string {
	if reason := pointProblem(c.Center); reason != "" {
		return "centre: " + reason
	}
	if !isFinite(c.Radius) || c.Radius < 0 {
		return fmt.Sprintf("radius %s km is negative or not a number", formatFloat(c.Radius))
	}
	return ""
}

// String formats the point as CAP writes it: "lat,lon".
func (pt Point) String() string { return formatFloat(pt.Lat) + "," + formatFloat(pt.Lon) }

// String formats the polygon as CAP writes it.
func (pg Polygon) String() string {
	var b strings.Builder
	for i, pt := range pg {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(pt.String())
	}
	return b.String()
}

// String formats the circle as CAP writes it: "lat,lon radius".
func (c Circle) String() string { return c.Center.String() + " " + formatFloat(c.Radius) }

// formatFloat writes the shortest decimal that reads back to the same float,
// without an exponent (xs:decimal has none).
func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
