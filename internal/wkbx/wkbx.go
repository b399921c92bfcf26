// Package wkbx decodes OGC Well-Known Binary from untrusted bytes. go-geom's
// decoder believes the counts in the input, so a few bytes claiming millions of
// points make it allocate until the process dies; Unmarshal first walks the
// structure and refuses any count the remaining bytes cannot hold.
package wkbx

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkb"
)

// ErrMalformed is returned for WKB whose structure does not fit its bytes.
var ErrMalformed = errors.New("malformed WKB")

// maxDepth bounds the nesting of collections.
const maxDepth = 8

// Unmarshal decodes WKB (ISO or EWKB; XY, XYZ, XYM or XYZM) of any OGC type
// after checking that every count fits the bytes that follow it. Which layouts a
// caller accepts is the caller's policy.
func Unmarshal(b []byte) (geom.T, error) {
	n, err := check(b, 0)
	if err != nil {
		return nil, err
	}
	if n != len(b) {
		return nil, fmt.Errorf("%w: %d bytes after the geometry", ErrMalformed, len(b)-n)
	}
	g, err := wkb.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return g, nil
}

// check validates the geometry at the start of b and returns its length.
func check(b []byte, depth int) (int, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("%w: collections nested deeper than %d", ErrMalformed, maxDepth)
	}
	if len(b) < 5 {
		return 0, fmt.Errorf("%w: %d bytes; a geometry header needs 5", ErrMalformed, len(b))
	}
	var order binary.ByteOrder
	switch b[0] {
	case 0:
		order = binary.BigEndian
	case 1:
		order = binary.LittleEndian
	default:
		return 0, fmt.Errorf("%w: byte order %d", ErrMalformed, b[0])
	}
	raw := order.Uint32(b[1:5])
	off := 5
	// EWKB flags: Z, M and an SRID that follows the type.
	const ewkbZ, ewkbM, ewkbSRID = 0x80000000, 0x40000000, 0x20000000
	stride := 2
	if raw&ewkbZ != 0 {
		stride++
	}
	if raw&ewkbM != 0 {
		stride++
	}
	if raw&ewkbSRID != 0 {
		if len(b) < off+4 {
			return 0, fmt.Errorf("%w: truncated SRID", ErrMalformed)
		}
		off += 4
	}
	typ := raw &^ (ewkbZ | ewkbM | ewkbSRID)
	// ISO: 1000s are Z, 2000s M, 3000s ZM.
	switch typ / 1000 {
	case 0:
	case 1, 2:
		stride++
	case 3:
		stride += 2
	default:
		return 0, fmt.Errorf("%w: geometry type %d", ErrMalformed, raw)
	}
	if stride > 4 {
		return 0, fmt.Errorf("%w: geometry type %d has both EWKB and ISO dimensions", ErrMalformed, raw)
	}
	typ %= 1000
	size := 8 * stride
	count := func(min int) (int, error) {
		if len(b) < off+4 {
			return 0, fmt.Errorf("%w: truncated count", ErrMalformed)
		}
		n := int(order.Uint32(b[off : off+4]))
		off += 4
		if n < 0 || min > 0 && n > (len(b)-off)/min {
			return 0, fmt.Errorf("%w: a count of %d does not fit the %d bytes left", ErrMalformed, n, len(b)-off)
		}
		return n, nil
	}
	points := func() error {
		n, err := count(size)
		if err != nil {
			return err
		}
		off += size * n
		return nil
	}
	switch typ {
	case 1: // Point
		if len(b) < off+size {
			return 0, fmt.Errorf("%w: truncated point", ErrMalformed)
		}
		return off + size, nil
	case 2: // LineString
		if err := points(); err != nil {
			return 0, err
		}
		return off, nil
	case 3: // Polygon
		rings, err := count(4)
		if err != nil {
			return 0, err
		}
		for range rings {
			if err := points(); err != nil {
				return 0, err
			}
		}
		return off, nil
	case 4, 5, 6, 7: // MultiPoint, MultiLineString, MultiPolygon, GeometryCollection
		parts, err := count(5)
		if err != nil {
			return 0, err
		}
		for range parts {
			n, err := check(b[off:], depth+1)
			if err != nil {
				return 0, err
			}
			off += n
		}
		return off, nil
	}
	return 0, fmt.Errorf("%w: geometry type %d is not an OGC type", ErrMalformed, raw)
}
