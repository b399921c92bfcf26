package ingest

import (
	"time"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/iochub/iochub/internal/feedcheck"
)

// wireStorable is storable's rules checked on the encoded event b of a
// message md, without reflection: it reports true only when storable would
// find nothing (every string, map key included, valid UTF-8 without NUL,
// every timestamp valid and in feedcheck's range). Anything it does not
// expect (an unknown field, a group, a wire type that does not match the
// descriptor) makes it answer false, and the caller asks storable, which
// also says what is wrong and where.
func wireStorable(b []byte, md protoreflect.MessageDescriptor) bool {
	return wireMessage(b, md, 0)
}

// maxWireDepth bounds the recursion; iochub's events nest a few levels.
const maxWireDepth = 16

func wireMessage(b []byte, md protoreflect.MessageDescriptor, depth int) bool {
	if depth > maxWireDepth {
		return false
	}
	if md.FullName() == timestampName {
		return wireTimestamp(b)
	}
	fields := md.Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		fd := fields.ByNumber(num)
		if fd == nil {
			return false
		}
		if fd.IsMap() || fd.Kind() == protoreflect.StringKind || fd.Kind() == protoreflect.MessageKind {
			if typ != protowire.BytesType {
				return false
			}
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			switch {
			case fd.IsMap():
				if !wireMapEntry(v, fd, depth) {
					return false
				}
			case fd.Kind() == protoreflect.StringKind:
				if !wireText(v) {
					return false
				}
			default:
				if !wireMessage(v, fd.Message(), depth+1) {
					return false
				}
			}
			continue
		}
		if fd.Kind() == protoreflect.GroupKind {
			return false
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return false
		}
		b = b[n:]
	}
	return true
}

// wireMapEntry checks one entry (key 1, value 2) of the map field fd.
func wireMapEntry(b []byte, fd protoreflect.FieldDescriptor, depth int) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		var kd protoreflect.FieldDescriptor
		switch num {
		case 1:
			kd = fd.MapKey()
		case 2:
			kd = fd.MapValue()
		default:
			return false
		}
		if kd.Kind() == protoreflect.StringKind || kd.Kind() == protoreflect.MessageKind {
			if typ != protowire.BytesType {
				return false
			}
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			if kd.Kind() == protoreflect.StringKind && !wireText(v) ||
				kd.Kind() == protoreflect.MessageKind && !wireMessage(v, kd.Message(), depth+1) {
				return false
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return false
		}
		b = b[n:]
	}
	return true
}

// wireText is feedcheck.Text with storable's bound, on the wire bytes: the
// rules stay in one place. The string shares v's bytes (no copy); Text only
// reads it, and builds its message only on a fault.
func wireText(v []byte) bool {
	return feedcheck.Text("", unsafe.String(unsafe.SliceData(v), len(v)), maxStorable) == nil //nolint:gosec // G103: a read-only view of v for the call, which keeps no reference
}

// wireTimestamp checks a google.protobuf.Timestamp as storable does.
func wireTimestamp(b []byte) bool {
	var secs, nanos int64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.VarintType || num != 1 && num != 2 {
			return false
		}
		b = b[n:]
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if num == 1 {
			secs = int64(v)
		} else {
			nanos = int64(int32(v))
		}
	}
	// Within feedcheck's range, which timestamppb's (years 1 to 9999) holds,
	// with nanos as CheckValid wants them.
	if nanos < 0 || nanos >= 1e9 || secs < feedcheck.MinTime.Unix() || secs > feedcheck.MaxTime.Unix() {
		return false
	}
	return feedcheck.Time("", time.Unix(secs, nanos).UTC()) == nil
}
