package ingest

import (
	"fmt"
	"strconv"

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
func storable(m proto.Message) error {
	return storableMsg(m.ProtoReflect(), "")
}

var timestampName = (&timestamppb.Timestamp{}).ProtoReflect().Descriptor().FullName()

func storableMsg(m protoreflect.Message, path string) error {
	if m.Descriptor().FullName() == timestampName {
		ts, ok := m.Interface().(*timestamppb.Timestamp)
		if !ok {
			return nil
		}
		if err := ts.CheckValid(); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return feedcheck.Time(path, ts.AsTime())
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := string(fd.Name())
		if path != "" {
			p = path + "." + p
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = storableValue(fd, l.Get(i), p+"["+strconv.Itoa(i)+"]")
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if fd.MapKey().Kind() == protoreflect.StringKind {
					err = feedcheck.Text(p+" key", k.String(), maxStorable)
				}
				if err == nil {
					err = storableValue(fd.MapValue(), mv, p+"["+strconv.Quote(feedcheck.Clip(k.String()))+"]")
				}
				return err == nil
			})
		default:
			err = storableValue(fd, v, p)
		}
		return err == nil
	})
	return err
}

// maxStorable bounds nothing the parsers have not bounded already; the
// lengths that matter are checked, with the JSON member's name, by them.
const maxStorable = 1 << 30

func storableValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string) error {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return feedcheck.Text(path, v.String(), maxStorable)
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return storableMsg(v.Message(), path)
	}
	return nil
}
