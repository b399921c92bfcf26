package ingest

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/feedcheck"
)

// storable is the last check before an item is published, whatever its kind
// and whichever parser read it (JSON, CAP XML): every text of the event is
// valid UTF-8 without NUL and every time lies in feedcheck's range, as the
// aggregator demands before it writes PostgreSQL. A parser that forgot a
// check thus yields a rejection naming the field, not an item accepted and
// then dropped.
//
// It runs on every item, so the path of a field is kept as a stack of parts
// and spelt out only for an error.
func storable(m proto.Message) error {
	w, _ := storers.Get().(*storer)
	if w == nil {
		w = &storer{}
		w.path = w.buf[:0]
		// Bound once per storer, not per message and field.
		w.fieldFn, w.entryFn = w.field, w.entry
	}
	err := w.msg(m.ProtoReflect())
	clear(w.buf[:]) // no references into the item are kept
	w.path, w.err, w.mapFD = w.buf[:0], nil, nil
	storers.Put(w)
	return err
}

// storers keeps storer values (and their bound visitors) between items.
var storers sync.Pool

var timestampName = (&timestamppb.Timestamp{}).ProtoReflect().Descriptor().FullName()

// Kinds of pathPart.
const (
	partField   = iota // .name
	partIndex          // [index]
	partKey            // ["key"]
	partKeyWord        // " key" (the key itself is at fault)
)

type pathPart struct {
	kind  uint8
	name  protoreflect.Name
	index int
	key   protoreflect.MapKey
}

type storer struct {
	path []pathPart
	buf  [8]pathPart
	// err is the first fault found; it stops the walk.
	err error
	// mapFD is the map field whose entries entry visits.
	mapFD   protoreflect.FieldDescriptor
	fieldFn func(protoreflect.FieldDescriptor, protoreflect.Value) bool
	entryFn func(protoreflect.MapKey, protoreflect.Value) bool
}

// at spells the current path, as in "values[\"pm25\"]" or "area[0].geocode[1].value".
func (w *storer) at() string {
	var b strings.Builder
	for i, p := range w.path {
		switch p.kind {
		case partField:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(string(p.name))
		case partIndex:
			b.WriteString("[" + strconv.Itoa(p.index) + "]")
		case partKey:
			b.WriteString("[" + strconv.Quote(feedcheck.Clip(p.key.String())) + "]")
		case partKeyWord:
			b.WriteString(" key")
		}
	}
	return b.String()
}

func (w *storer) push(p pathPart) { w.path = append(w.path, p) }
func (w *storer) pop()            { w.path = w.path[:len(w.path)-1] }

// text is feedcheck.Text with the current path as the field, spelt only on failure.
func (w *storer) text(s string) error {
	if feedcheck.Text("", s, maxStorable) == nil {
		return nil
	}
	return feedcheck.Text(w.at(), s, maxStorable)
}

func (w *storer) msg(m protoreflect.Message) error {
	if m.Descriptor().FullName() == timestampName {
		ts, ok := m.Interface().(*timestamppb.Timestamp)
		if !ok {
			return nil
		}
		if err := ts.CheckValid(); err != nil {
			return fmt.Errorf("%s: %w", w.at(), err)
		}
		if t := ts.AsTime(); feedcheck.Time("", t) != nil {
			return feedcheck.Time(w.at(), t)
		}
		return nil
	}
	m.Range(w.fieldFn)
	return w.err
}

// field visits one populated field of a message, recording a fault in w.err.
func (w *storer) field(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
	w.push(pathPart{kind: partField, name: fd.Name()})
	switch {
	case fd.IsList():
		l := v.List()
		for i := 0; i < l.Len() && w.err == nil; i++ {
			w.push(pathPart{kind: partIndex, index: i})
			w.err = w.value(fd, l.Get(i))
			w.pop()
		}
	case fd.IsMap():
		outer := w.mapFD
		w.mapFD = fd
		v.Map().Range(w.entryFn)
		w.mapFD = outer
	default:
		w.err = w.value(fd, v)
	}
	w.pop()
	return w.err == nil
}

// entry visits one entry of the map field w.mapFD.
func (w *storer) entry(k protoreflect.MapKey, mv protoreflect.Value) bool {
	fd := w.mapFD
	if fd.MapKey().Kind() == protoreflect.StringKind {
		w.push(pathPart{kind: partKeyWord})
		w.err = w.text(k.String())
		w.pop()
	}
	if w.err == nil {
		w.push(pathPart{kind: partKey, key: k})
		w.err = w.value(fd.MapValue(), mv)
		w.pop()
	}
	return w.err == nil
}

// maxStorable bounds nothing the parsers have not bounded already; the
// lengths that matter are checked, with the JSON member's name, by them.
const maxStorable = 1 << 30

func (w *storer) value(fd protoreflect.FieldDescriptor, v protoreflect.Value) error {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return w.text(v.String())
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return w.msg(v.Message())
	}
	return nil
}
