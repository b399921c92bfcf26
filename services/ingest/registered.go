package ingest

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/kind"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// lookupSpec returns the spec of a built-in kind, or makes that of a kind
// registered with internal/kind.
func lookupSpec(name string) (kindSpec, bool) {
	if s, ok := kindSpecs[name]; ok {
		return s, true
	}
	k, ok := kind.Default.Lookup(name)
	if !ok {
		return kindSpec{}, false
	}
	return kindSpec{kind: k.Name, ceType: ce.ObservedType(k.Name), parse: func(f fields, env parseEnv) (*parsed, *itemError) {
		return parseRegistered(k, f, env)
	}}, true
}

// parseRegistered reads an observation of a registered kind: the head of
// every station's observation (id, type, time, Point, refDevice or
// refPointOfInterest, name) and the kind's values within their bounds.
// Other members are ignored. A value's name is one member's, dots included
// (internal/kind), so its rejections point at that member, not at a path.
func parseRegistered(k kind.Kind, f fields, env parseEnv) (*parsed, *itemError) {
	h, ierr := readStation(f, env, k.Types...)
	if ierr != nil {
		return nil, ierr
	}
	m := &iocv1.Observation{Id: h.eventID, EntityId: h.entity, ObservedAt: timestamppb.New(h.at), Name: h.name,
		Values: make(map[string]float64, len(k.Values))}
	for _, v := range k.Values {
		x, ok, ierr := registeredValue(f, v)
		if ierr != nil {
			ierr.member = true
			return nil, ierr
		}
		if ok {
			m.Values[v.Name] = x
		}
	}
	return h.parsed(shapePoint, m, &m.Location, &m.Origin)
}

// registeredValue reads value v of an item, if it has it, within its bounds.
func registeredValue(f fields, v kind.Value) (float64, bool, *itemError) {
	x, ok, ierr := f.num(v.Name)
	switch {
	case ierr != nil:
		return 0, false, ierr
	case !ok && v.Required:
		return 0, false, missing(v.Name)
	case !ok:
		return 0, false, nil
	}
	if why := v.Check(x); why != "" {
		return 0, false, &itemError{pointer: v.Name, reason: why}
	}
	return x, true, nil
}
