// Package cap reads, validates and writes OASIS Common Alerting Protocol 1.2
// messages (namespace urn:oasis:names:tc:emergency:cap:1.2), and turns their
// areas into go-geom geometry (GeoJSON axis order: lon, lat).
//
// It owns the CAP codec only: no transport, no storage. Parse keeps the whole
// alert (every info block, parameter, resource, area, polygon, circle and
// geocode, and an XML-DSig signature as raw bytes) so that Marshal can write
// the same alert back as CAP 1.2 XML.
package cap

import "time"

// Namespaces this package reads and writes.
const (
	// Namespace is the XML namespace of CAP 1.2 elements.
	Namespace = "urn:oasis:names:tc:emergency:cap:1.2"
	// NamespaceDSig is the XML namespace of the XML-DSig signature an alert may end with.
	NamespaceDSig = "http://www.w3.org/2000/09/xmldsig#"
	// namespaceXSI is the XML Schema instance namespace (xsi:schemaLocation is tolerated and dropped).
	namespaceXSI = "http://www.w3.org/2001/XMLSchema-instance"
)

// DefaultLanguage is the language of an info block that names none (CAP 1.2 schema default).
const DefaultLanguage = "en-US"

// Alert is one CAP 1.2 <alert>. Fields follow the schema's element order.
// A zero time.Time or an empty string means the optional element is absent.
type Alert struct {
	Identifier  string
	Sender      string
	Sent        time.Time // with the offset it was written with
	Status      string    // Actual, Exercise, System, Test, Draft
	MsgType     string    // Alert, Update, Cancel, Ack, Error
	Source      string
	Scope       string // Public, Restricted, Private
	Restriction string // required when Scope is Restricted
	Addresses   string // required when Scope is Private; space-separated, multi-word ones in double quotes
	Codes       []string
	Note        string
	References  string // space-separated "sender,identifier,sent" triples
	Incidents   string
	Infos       []Info
	// Signature holds the raw XML of the XML-DSig element(s) that end the
	// alert (normally one <Signature>), byte for byte, concatenated in
	// document order. Namespace declarations the signature inherited from
	// enclosing elements are added to its start tag so the bytes stand alone.
	// Nil when the alert is not signed.
	Signature []byte
}

// Info is one <info> block: the alert in one language.
type Info struct {
	Language      string   // DefaultLanguage when the element is absent
	Categories    []string // Geo, Met, Safety, Security, Rescue, Fire, Health, Env, Transport, Infra, CBRNE, Other
	Event         string
	ResponseTypes []string // Shelter, Evacuate, Prepare, Execute, Avoid, Monitor, Assess, AllClear, None
	Urgency       string   // Immediate, Expected, Future, Past, Unknown
	Severity      string   // Extreme, Severe, Moderate, Minor, Unknown
	Certainty     string   // Observed, Likely, Possible, Unlikely, Unknown
	Audience      string
	EventCodes    []NamedValue
	Effective     time.Time
	Onset         time.Time
	Expires       time.Time
	SenderName    string
	Headline      string
	Description   string
	Instruction   string
	Web           string
	Contact       string
	Parameters    []NamedValue
	Resources     []Resource
	Areas         []Area
}

// NamedValue is a <valueName>/<value> pair (eventCode, parameter, geocode).
type NamedValue struct {
	ValueName string
	Value     string
}

// Resource is a <resource>: a file that supplements the info block.
type Resource struct {
	ResourceDesc string
	MimeType     string
	Size         *int64 // bytes; nil when absent
	URI          string
	DerefURI     string // base-64 content
	Digest       string // SHA-1 hash of the content
}

// Area is an <area>. An area may be described by geocodes only, in which
// case it has no geometry (AreaGeometry returns nil).
type Area struct {
	AreaDesc string
	Polygons []Polygon
	Circles  []Circle
	Geocodes []NamedValue
	Altitude *float64 // feet above mean sea level; nil when absent
	Ceiling  *float64 // feet; only with Altitude
}

// Point is a WGS 84 position in decimal degrees, in CAP's lat,lon order.
type Point struct {
	Lat float64
	Lon float64
}

// Polygon is a CAP polygon: a closed ring of at least four points, the first
// equal to the last.
type Polygon []Point

// Circle is a CAP circle: a centre and a radius in kilometres.
type Circle struct {
	Center Point
	Radius float64 // km, ≥ 0
}
