package gateway

import (
	"bytes"
	"strings"

	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// Stale sources in the live view: the aggregator raises a CAP alert
// (sender iochub, identifier source-stale:<source>/<unit>:<unix time>) while
// a source is silent in a unit for 3× its interval, and cancels it when data
// returns. The hub follows those alerts' states and marks the Feature of
// every entity the stale source publishes in that unit with
// "stale": true (the last property); a fresh entity's Feature is unchanged.
// When a pair turns stale or fresh, its entities are sent again.

// staleAlertPrefix starts the identifier of the hub's stale-source alerts.
const staleAlertPrefix = "source-stale:"

// staleSender is the sender (and source) of the hub's own alerts.
const staleSender = "iochub"

// staleMark is spliced before the closing braces of a stale entity's Feature.
var staleMark = []byte(`,"stale":true}}`)

// sourcePair is "<source>/<unit>" of the entity in st: the source of its
// latest event (its origin) and its unit; "" when either is unknown.
func sourcePair(st *iocv1.EntityState) string {
	fd := st.ProtoReflect().WhichOneof(latestOneof)
	if fd == nil || fd.Message() == nil || st.GetUnit() == "" {
		return ""
	}
	m := st.ProtoReflect().Get(fd).Message()
	of := m.Descriptor().Fields().ByName("origin")
	if of == nil || of.Message() == nil || !m.Has(of) {
		return ""
	}
	o, ok := m.Get(of).Message().Interface().(*iocv1.Origin)
	if !ok || o.GetSourceId() == "" {
		return ""
	}
	return o.GetSourceId() + "/" + st.GetUnit()
}

// staleAlertPair is the "<source>/<unit>" a stale-source alert is about and
// whether the alert is active; "" when st is not such an alert (or is its Cancel).
func staleAlertPair(st *iocv1.EntityState) (pair string, active bool) {
	if st.GetLayer() != subjects.KindAlert {
		return "", false
	}
	a := st.GetAlert()
	// The entity id is <source>/<identifier>: only the hub's own source
	// (reserved: no registered source may take it) raises these.
	if a == nil || a.GetSender() != staleSender || a.GetMsgType() != "Alert" || !strings.HasPrefix(a.GetIdentifier(), staleAlertPrefix) ||
		st.GetEntityId() != staleSender+"/"+a.GetIdentifier() {
		return "", false
	}
	rest := strings.TrimPrefix(a.GetIdentifier(), staleAlertPrefix)
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 || !strings.Contains(rest[:i], "/") {
		return "", false
	}
	for _, c := range rest[i+1:] {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	return rest[:i], st.GetAlertState() == "active"
}

// markStale is f's Feature JSON with "stale": true as its last property.
func markStale(f []byte) []byte {
	if !bytes.HasSuffix(f, []byte("}}")) {
		return f
	}
	out := make([]byte, 0, len(f)+len(staleMark))
	out = append(out, f[:len(f)-2]...)
	return append(out, staleMark...)
}
