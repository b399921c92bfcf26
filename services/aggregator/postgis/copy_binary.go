package postgis

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/ewkb"
	"github.com/twpayne/go-geom/encoding/wkbcommon"
)

// copyRows builds the data of a COPY … FROM STDIN BINARY in one buffer:
// the header, then per row its field count and each field as its length
// and its bytes in the column type's binary format, then the trailer.
//
// It is written here rather than left to pgx's CopyFrom because a direct
// batch's rows are the store's hot path, and pgx's way was a quarter of the
// store's CPU (BenchmarkWriteBatch's profile): it boxes every value in an
// []any, looks up an encode plan per value, and writes geometries with
// go-geom's reflective EWKB writer. Here each column's type is known when
// the code is written (the table's migration), the rows are encoded before
// the transaction waits for anything, and the buffers are reused.
// TestCopyRowsAsPgx holds it to the rows pgx's CopyFrom stores.
type copyRows struct {
	buf  []byte
	rows int
}

// copyHeader is the binary COPY signature, the flags (none) and the header
// extension's length (none).
const copyHeader = "PGCOPY\n\377\r\n\000" + "\000\000\000\000" + "\000\000\000\000"

// y2k is the origin of PostgreSQL's timestamps, in microseconds since
// 1970.
var y2k = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

var copyRowsPool = sync.Pool{New: func() any { return new(copyRows) }}

// newCopyRows returns an empty copyRows of the pool; put gives it back.
func newCopyRows() *copyRows {
	c := copyRowsPool.Get().(*copyRows)
	c.buf = append(c.buf[:0], copyHeader...)
	c.rows = 0
	return c
}

// put gives c back to the pool unless its buffer grew past what a batch
// needs (a batch of large extras), which the collector then takes.
func (c *copyRows) put() {
	if cap(c.buf) <= 4<<20 {
		copyRowsPool.Put(c)
	}
}

// row starts a row of fields fields.
func (c *copyRows) row(fields int) {
	c.buf = binary.BigEndian.AppendUint16(c.buf, uint16(fields))
	c.rows++
}

// head starts a row of fields fields with the columns every observation
// table begins with: source_id, event_id, observed_at, received_at, the
// entity's id, province and unit_code.
func (c *copyRows) head(fields int, source, event string, observed, received time.Time, entity, province, unit string) {
	c.row(fields)
	c.text(source)
	c.text(event)
	c.timestamptz(observed)
	c.timestamptz(received)
	c.text(entity)
	c.text(province)
	c.text(unit)
}

// data returns the COPY's data, trailer included; c takes no more rows.
func (c *copyRows) data() []byte {
	c.buf = binary.BigEndian.AppendUint16(c.buf, 0xffff)
	return c.buf
}

func (c *copyRows) null() { c.buf = binary.BigEndian.AppendUint32(c.buf, math.MaxUint32) }

// text writes s as text (or varchar); the server checks its encoding.
func (c *copyRows) text(s string) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(len(s)))
	c.buf = append(c.buf, s...)
}

// textOrNull writes s as text, the empty string as NULL.
func (c *copyRows) textOrNull(s string) {
	if s == "" {
		c.null()
		return
	}
	c.text(s)
}

// timestamptz writes t as microseconds since 2000-01-01 UTC, truncated as
// pgx truncates them.
func (c *copyRows) timestamptz(t time.Time) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 8)
	c.buf = binary.BigEndian.AppendUint64(c.buf, uint64(t.UnixMicro()-y2k))
}

// float8 writes *f as double precision, nil as NULL.
func (c *copyRows) float8(f *float64) {
	if f == nil {
		c.null()
		return
	}
	c.buf = binary.BigEndian.AppendUint32(c.buf, 8)
	c.buf = binary.BigEndian.AppendUint64(c.buf, math.Float64bits(*f))
}

// int4 writes *v as integer, nil as NULL.
func (c *copyRows) int4(v *int32) {
	if v == nil {
		c.null()
		return
	}
	c.buf = binary.BigEndian.AppendUint32(c.buf, 4)
	c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(*v))
}

// bool writes *v as boolean, nil as NULL.
func (c *copyRows) bool(v *bool) {
	if v == nil {
		c.null()
		return
	}
	c.buf = binary.BigEndian.AppendUint32(c.buf, 1)
	if *v {
		c.buf = append(c.buf, 1)
	} else {
		c.buf = append(c.buf, 0)
	}
}

// int2 writes v as smallint.
func (c *copyRows) int2(v int16) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 2)
	c.buf = binary.BigEndian.AppendUint16(c.buf, uint16(v))
}

// int2OrNull writes v as smallint, 0 as NULL.
func (c *copyRows) int2OrNull(v int16) {
	if v == 0 {
		c.null()
		return
	}
	c.int2(v)
}

// field reserves a field's length and returns where it is, for end to
// write once the field's bytes are appended.
func (c *copyRows) field() int {
	at := len(c.buf)
	c.buf = append(c.buf, 0, 0, 0, 0)
	return at
}

func (c *copyRows) end(at int) {
	binary.BigEndian.PutUint32(c.buf[at:], uint32(len(c.buf)-at-4))
}

// extra writes m as jsonb (its format's version, 1, then the JSON text
// extraValue sends), an empty m as NULL.
func (c *copyRows) extra(m map[string]any) error {
	if len(m) == 0 {
		c.null()
		return nil
	}
	at := c.field()
	c.buf = append(c.buf, 1)
	var err error
	if c.buf, err = appendExtraJSON(c.buf, m); err != nil {
		return fmt.Errorf("encoding extra: %w: %w", ErrUnencodable, err)
	}
	c.end(at)
	return nil
}

// point writes p as geometry (appendEWKB), nil as NULL.
func (c *copyRows) point(p *geom.Point) error {
	if p == nil {
		c.null()
		return nil
	}
	return c.geometry(p)
}

// line writes l as geometry (appendEWKB), nil as NULL.
func (c *copyRows) line(l *geom.LineString) error {
	if l == nil {
		c.null()
		return nil
	}
	return c.geometry(l)
}

// geometry writes g as geometry: its EWKB with the store's SRID.
func (c *copyRows) geometry(g geom.T) error {
	at := c.field()
	var err error
	if c.buf, err = appendEWKB(c.buf, g); err != nil {
		c.buf = c.buf[:at]
		return fmt.Errorf("encoding geometry: %w: %w", ErrUnencodable, err)
	}
	c.end(at)
	return nil
}

// appendEWKB appends g's EWKB with the store's SRID, little-endian (as
// pgx-geom writes it on this machine's architectures). A 2D point (not
// empty) and a 2D line are written here; any other geometry by go-geom's
// reflective writer, which the profile showed on the hot path.
func appendEWKB(buf []byte, g geom.T) ([]byte, error) {
	switch g := g.(type) {
	case *geom.Point:
		if g.Layout() == geom.XY && !g.Empty() {
			buf = appendEWKBHead(buf, wkbcommon.PointID)
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(g.X()))
			return binary.LittleEndian.AppendUint64(buf, math.Float64bits(g.Y())), nil
		}
	case *geom.LineString:
		if g.Layout() == geom.XY {
			flat := g.FlatCoords()
			buf = appendEWKBHead(buf, wkbcommon.LineStringID)
			buf = binary.LittleEndian.AppendUint32(buf, uint32(len(flat)/2)) //nolint:gosec // a decoded line's length fits
			for _, f := range flat {
				buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(f))
			}
			return buf, nil
		}
	}
	b, err := ewkb.Marshal(WithSRID(g), binary.LittleEndian)
	return append(buf, b...), err
}

// appendEWKBHead appends the byte order (NDR), the type with its SRID flag
// and the store's SRID.
func appendEWKBHead(buf []byte, typ uint32) []byte {
	buf = append(buf, 1)
	buf = binary.LittleEndian.AppendUint32(buf, typ|ewkbSRIDFlag)
	return binary.LittleEndian.AppendUint32(buf, SRID)
}

// ewkbSRIDFlag marks an EWKB geometry type followed by an SRID.
const ewkbSRIDFlag = 0x20000000

// copySQL is the statement of a binary COPY of columns into table.
func copySQL(table string, columns []string) string {
	cols := make([]string, len(columns))
	for i, col := range columns {
		cols[i] = pgx.Identifier{col}.Sanitize()
	}
	return "COPY " + pgx.Identifier{table}.Sanitize() + " (" + strings.Join(cols, ", ") + ") FROM STDIN BINARY"
}
