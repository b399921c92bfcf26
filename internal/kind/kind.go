// Package kind describes the kinds of data the hub carries beyond its
// built-in ones, so that the pipeline stages iterate over registered kinds
// instead of switching on their names.
//
// A registered kind is an observation kind: an entity (a station, a device)
// observed at a Point with numeric values by name, like noise levels or a
// river's turbidity. Registering one is all it takes for it to flow from
// POST /v1/feeds/<name> through the FEEDS stream, the aggregator (the table
// observation_generic and the entity's row in sensor) and the STATE stream
// to the live view, with no edit of the services:
//
//	kind.Default.Register(kind.Kind{
//		Name:  "noise",
//		Types: []string{"NoiseLevelObserved"},
//		Values: []kind.Value{{Name: "LAeq", Min: 0, Max: 200, Required: true}},
//	})
//
// Every process of a hub must register the same kinds (an ingest that accepts
// a kind its aggregator does not know dead-letters what it accepted), so
// register them in one place that every role runs, before the roles start.
//
// The built-in kinds (subjects.Kinds) keep their own messages and tables;
// docs/architecture.md ("How to add a kind") says which files each has.
//
// The package is a leaf: it imports nothing of the hub but internal/subjects,
// so that readers (the gateway) and the writer (the aggregator) share it.
package kind

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/iochub/iochub/internal/subjects"
)

// ErrInvalid is returned by Register for a Kind that cannot be registered:
// a bad or taken name, or bad values.
var ErrInvalid = errors.New("invalid kind")

// MaxValues bounds the values a kind declares, and so the values of one event.
const MaxValues = 64

// MaxTypes and MaxTypeBytes bound a kind's types: the ingest names every one
// of them in the rejection of each item of another type, so that a long list
// would make the answer to a small request of many items huge.
const (
	MaxTypes     = 16
	MaxTypeBytes = 128
)

// Kind is one registered observation kind.
type Kind struct {
	// Name is the kind's name: the {kind} of POST /v1/feeds/{kind}, the
	// token of the FEEDS and STATE subjects, the layer of the live view and
	// the <kind> of its CloudEvents type vn.ioc.<kind>.observed.v1. Lower
	// case ASCII letters and digits, starting with a letter, at most 32.
	Name string
	// Types are the values an item's "type" member may have (e.g. its FIWARE
	// type); an item without "type" is taken. Empty takes any type. At most
	// MaxTypes, each of 1 to MaxTypeBytes bytes without spaces or control
	// characters.
	Types []string
	// Values are the numeric values an item may carry, by their names.
	// Other members of an item are ignored.
	Values []Value
}

// Value is one numeric value of a kind.
type Value struct {
	// Name is the value's member in the item and its name in the state.
	Name string
	// Min and Max bound the value (inclusive); both zero means any finite number.
	Min, Max float64
	// Required makes an item without the value a bad item.
	Required bool
}

// Check reports why v is out of the value's bounds, or "".
func (v Value) Check(x float64) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return fmt.Sprintf("%s is %v; want a finite number", v.Name, x)
	case v.Min == 0 && v.Max == 0:
		return ""
	case x < v.Min || x > v.Max:
		return fmt.Sprintf("%s %v is out of its range [%v, %v]", v.Name, x, v.Min, v.Max)
	}
	return ""
}

// Value returns the value of k named name.
func (k Kind) Value(name string) (Value, bool) {
	for _, v := range k.Values {
		if v.Name == name {
			return v, true
		}
	}
	return Value{}, false
}

var (
	namePattern  = regexp.MustCompile(`^[a-z][a-z0-9]{0,31}$`)
	valuePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.]{0,63}$`)
	// reserved are item members every observation reads; a value cannot take them.
	reserved = []string{"id", "type", "name", "location", "dateObserved", "dateObservedTo", "dateObservedFrom",
		"refDevice", "refPointOfInterest"}
)

// validate says why k cannot be registered.
func (k Kind) validate() error {
	if !namePattern.MatchString(k.Name) {
		return fmt.Errorf("%w: name %q: want lower case letters and digits, starting with a letter, at most 32", ErrInvalid, k.Name)
	}
	if subjects.ValidKind(k.Name) {
		return fmt.Errorf("%w: %q is a built-in kind", ErrInvalid, k.Name)
	}
	if len(k.Types) > MaxTypes {
		return fmt.Errorf("%w: %s has %d types; want at most %d", ErrInvalid, k.Name, len(k.Types), MaxTypes)
	}
	for i, t := range k.Types {
		switch {
		case t == "" || len(t) > MaxTypeBytes:
			return fmt.Errorf("%w: %s: type %d has %d bytes; want 1 to %d", ErrInvalid, k.Name, i, len(t), MaxTypeBytes)
		case !utf8.ValidString(t) || strings.IndexFunc(t, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
			return fmt.Errorf("%w: %s: type %q is not UTF-8 text without spaces or control characters", ErrInvalid, k.Name, t)
		case slices.Contains(k.Types[:i], t):
			return fmt.Errorf("%w: %s: type %q twice", ErrInvalid, k.Name, t)
		}
	}
	if len(k.Values) == 0 || len(k.Values) > MaxValues {
		return fmt.Errorf("%w: %s has %d values; want 1 to %d", ErrInvalid, k.Name, len(k.Values), MaxValues)
	}
	seen := map[string]bool{}
	for _, v := range k.Values {
		switch {
		case !valuePattern.MatchString(v.Name) || slices.Contains(reserved, v.Name):
			return fmt.Errorf("%w: %s: value name %q is not allowed", ErrInvalid, k.Name, v.Name)
		case seen[v.Name]:
			return fmt.Errorf("%w: %s: value %q twice", ErrInvalid, k.Name, v.Name)
		case math.IsNaN(v.Min) || math.IsNaN(v.Max) || v.Min > v.Max:
			return fmt.Errorf("%w: %s: value %q has bounds [%v, %v]", ErrInvalid, k.Name, v.Name, v.Min, v.Max)
		}
		seen[v.Name] = true
	}
	return nil
}

// Registry holds registered kinds. It is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	kinds map[string]Kind
}

// Default is the registry the services read.
var Default = &Registry{}

// Register adds k and returns a function that removes it again (for tests).
// It fails, wrapping ErrInvalid, for a kind that is invalid, built in or
// registered already.
func (r *Registry) Register(k Kind) (unregister func(), err error) {
	if err := k.validate(); err != nil {
		return nil, err
	}
	k.Types = slices.Clone(k.Types)
	k.Values = slices.Clone(k.Values)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, taken := r.kinds[k.Name]; taken {
		return nil, fmt.Errorf("%w: %q is registered already", ErrInvalid, k.Name)
	}
	if r.kinds == nil {
		r.kinds = map[string]Kind{}
	}
	r.kinds[k.Name] = k
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.kinds, k.Name)
	}, nil
}

// Lookup returns the registered kind named name.
func (r *Registry) Lookup(name string) (Kind, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.kinds[name]
	return k, ok
}

// Names lists the registered kinds, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.kinds))
	for n := range r.kinds {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Known reports whether name is a built-in kind or registered in r.
func (r *Registry) Known(name string) bool {
	if subjects.ValidKind(name) {
		return true
	}
	_, ok := r.Lookup(name)
	return ok
}

// All lists the built-in kinds, then the registered ones.
func (r *Registry) All() []string {
	return append(slices.Clone(subjects.Kinds), r.Names()...)
}
