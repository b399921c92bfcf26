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
	Identifier  string    `json:"identifier"`
	Sender      string    `json:"sender"`
	Sent        time.Time `json:"sent"`    // with the offset it was written with
	Status      string    `json:"status"`  // Actual, Exercise, System, Test, Draft
	MsgType     string    `json:"msgType"` // Alert, Update, Cancel, Ack, Error
	Source      string    `json:"source,omitempty"`
	Scope       string    `json:"scope"`                 // Public, Restricted, Private
	Restriction string    `json:"restriction,omitempty"` // required when Scope is Restricted
	Addresses   string    `json:"addresses,omitempty"`   // required when Scope is Private; space-separated, multi-word ones in double quotes
	Codes       []string  `json:"code,omitempty"`
	Note        string    `json:"note,omitempty"`
	References  string    `json:"references,omitempty"` // space-separated "sender,identifier,sent" triples
	Incidents   string    `json:"incidents,omitempty"`
	Infos       []Info    `json:"info,omitempty"`
	// Signature holds the raw XML of the XML-DSig element(s) that end the
	// alert (normally one <Signature>), byte for byte, concatenated in
	// document order. Namespace declarations the signature inherited from
	// enclosing elements are added to its start tag so the bytes stand alone.
	// Nil when the alert is not signed.
	Signature []byte `json:"signature,omitempty"`
}

// Info is one <info> block: the alert in one language.
type Info struct {
	Language      string       `json:"language"` // DefaultLanguage when the element is absent
	Categories    []string     `json:"category"` // Geo, Met, Safety, Security, Rescue, Fire, Health, Env, Transport, Infra, CBRNE, Other
	Event         string       `json:"event"`
	ResponseTypes []string     `json:"responseType,omitempty"` // Shelter, Evacuate, Prepare, Execute, Avoid, Monitor, Assess, AllClear, None
	Urgency       string       `json:"urgency"`                // Immediate, Expected, Future, Past, Unknown
	Severity      string       `json:"severity"`               // Extreme, Severe, Moderate, Minor, Unknown
	Certainty     string       `json:"certainty"`              // Observed, Likely, Possible, Unlikely, Unknown
	Audience      string       `json:"audience,omitempty"`
	EventCodes    []NamedValue `json:"eventCode,omitempty"`
	Effective     time.Time    `json:"effective,omitzero"`
	Onset         time.Time    `json:"onset,omitzero"`
	Expires       time.Time    `json:"expires,omitzero"`
	SenderName    string       `json:"senderName,omitempty"`
	Headline      string       `json:"headline,omitempty"`
	Description   string       `json:"description,omitempty"`
	Instruction   string       `json:"instruction,omitempty"`
	Web           string       `json:"web,omitempty"`
	Contact       string       `json:"contact,omitempty"`
	Parameters    []NamedValue `json:"parameter,omitempty"`
	Resources     []Resource   `json:"resource,omitempty"`
	Areas         []Area       `json:"area,omitempty"`
}

// NamedValue is a <valueName>/<value> pair (eventCode, parameter, geocode).
type NamedValue struct {
	ValueName string `json:"valueName"`
	Value     string `json:"value"`
}

// Resource is a <resource>: a file that supplements the info block.
type Resource struct {
	ResourceDesc string `json:"resourceDesc"`
	MimeType     string `json:"mimeType"`
	Size         *int64 `json:"size,omitempty"` // bytes; nil when absent
	URI          string `json:"uri,omitempty"`
	DerefURI     string `json:"derefUri,omitempty"` // base-64 content
	Digest       string `json:"digest,omitempty"`   // SHA-1 hash of the content
}

// Area is an <area>. An area may be described by geocodes only, in which
// case it has no geometry (AreaGeometry returns nil).
type Area struct {
	AreaDesc string       `json:"areaDesc"`
	Polygons []Polygon    `json:"polygon,omitempty"`
	Circles  []Circle     `json:"circle,omitempty"`
	Geocodes []NamedValue `json:"geocode,omitempty"`
	Altitude *float64     `json:"altitude,omitempty"` // feet above mean sea level; nil when absent
	Ceiling  *float64     `json:"ceiling,omitempty"`  // feet; only with Altitude
}

// Point is a WGS 84 position in decimal degrees, in CAP's lat,lon order.
type Point struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// Polygon is a CAP polygon: a closed ring of at least four points, the first
// equal to the last.
type Polygon []Point

// Circle is a CAP circle: a centre and a radius in kilometres.
type Circle struct {
	Center Point   `json:"center"`
	Radius float64 `json:"radius"` // km, ≥ 0
}
