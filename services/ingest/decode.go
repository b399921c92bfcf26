package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/iochub/iochub/internal/feedcheck"
)

// rawItem is one item as read from the body, before validation.
type rawItem struct {
	// fields are the item's top-level members; nil when err is set, or
	// when members holds them.
	fields map[string]json.RawMessage
	// members, only from decodeItemsLazy, are the item's top-level members in
	// order (a slice of the body's), for the parsers to read where they lie,
	// or, past maxListMembers, from a map the caller reuses (fieldsIn); fields
	// is nil then.
	members []member
	// line is the 1-based NDJSON line of the item, 0 for other formats.
	line int
	// err says why the item could not be read; the other items are still used.
	err string
	// cap is set for an alert of a CAP XML body (fields is nil then).
	cap *capItem
}

// Body formats the ingest reads.
const (
	formatJSON   = "json"   // a JSON array of items, one item, or a GeoJSON FeatureCollection / Feature
	formatNDJSON = "ndjson" // one JSON item (or Feature) per line
)

// bodyFormat maps a Content-Type to a format; "" means sniff the body.
func bodyFormat(contentType string) (string, error) {
	if strings.TrimSpace(contentType) == "" {
		return "", nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", fmt.Errorf("parsing Content-Type %q: %w", contentType, ErrUnsupportedMediaType)
	}
	switch mt {
	case "application/json", "application/geo+json", "text/json":
		return formatJSON, nil
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines", "application/json-seq":
		return formatNDJSON, nil
	case "text/plain", "application/octet-stream":
		return "", nil
	case "application/cap+xml":
		return formatCAP, nil
	case "application/xml", "text/xml":
		return formatXML, nil
	}
	return "", fmt.Errorf("Content-Type %s: %w", mt, ErrUnsupportedMediaType)
}

// bodyError is a malformed body: the reason and the byte offset where reading stopped.
type bodyError struct {
	offset int64
	reason string
}

func (e *bodyError) Error() string {
	return fmt.Sprintf("at byte %d: %s", e.offset, e.reason)
}

func (e *bodyError) Unwrap() error { return ErrMalformedBody }

// decodeItems reads every item of the body, streaming: an array or
// FeatureCollection is read element by element and an NDJSON body line by
// line. A malformed item of an NDJSON body rejects only that line; any other
// syntax error makes the whole body malformed (*bodyError, ErrMalformedBody).
// Read errors of r (such as *http.MaxBytesError) are returned wrapped.
//
// A body that is a JSON array of objects is read whole (it is bounded by the
// caller's reader) and split by the fast path (decode_fast.go); whatever that
// path does not take is read by the encoding/json path, decodeStream, which
// sees the same bytes and, after them, the same read error.
func decodeItems(r io.Reader, format string, maxItems int) ([]rawItem, error) {
	return decodeItemsSized(r, format, maxItems, 0)
}

// decodeItemsSized is decodeItems for a body of about size bytes (its
// Content-Length; 0 or less when unknown), read into one buffer of that size.
func decodeItemsSized(r io.Reader, format string, maxItems int, size int64) ([]rawItem, error) {
	return decodeItemsInto(r, format, maxItems, size, false, nil)
}

// decodeItemsInto is decodeItemsSized, lazy or not (lazy: an item of a
// JSON array read by the fast path may come as its members rather than its
// map, see rawItem.members), reading a JSON body, and the items of
// its fast path, into mem's memory (when mem is not nil; mem.body is then
// the body the items point to).
func decodeItemsInto(r io.Reader, format string, maxItems int, size int64, lazy bool, mem *reqMem) ([]rawItem, error) {
	if format == formatCAP || format == formatXML {
		return decodeCAP(r, maxItems)
	}
	if format == formatNDJSON {
		return decodeStream(r, format, maxItems)
	}
	var buf []byte
	if mem != nil {
		buf = mem.body
	}
	body, rerr := readAllSized(r, size, buf)
	if mem != nil {
		mem.body = body
	}
	if rerr == nil {
		if items, ok := fastArrayInto(body, maxItems, lazy, mem); ok {
			return items, nil
		}
		return decodeStream(bytes.NewReader(body), format, maxItems)
	}
	return decodeStream(io.MultiReader(bytes.NewReader(body), errReader{rerr}), format, maxItems)
}

// readAllSized is io.ReadAll into a buffer sized for size bytes (the
// caller bounds r): buf when it has room, a new one otherwise.
func readAllSized(r io.Reader, size int64, buf []byte) ([]byte, error) {
	if size <= 0 || size > 64<<20 {
		return io.ReadAll(r)
	}
	b := buf[:0]
	if int64(cap(b)) < size+1 {
		b = make([]byte, 0, size+1) // +1: the read that finds the end needs room
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return b, err
		}
	}
}

// errReader replays a read error after the bytes read before it.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// decodeStream is decodeItems on encoding/json, streaming.
func decodeStream(r io.Reader, format string, maxItems int) ([]rawItem, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	first, err := firstByte(br)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading body: %w", ErrNoItems)
		}
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if format == formatNDJSON {
		return decodeNDJSON(br, nil, maxItems)
	}
	switch first {
	case '[':
		return decodeArray(br, maxItems)
	case '{':
		// Sniff, also under application/json: a first line that is a whole
		// JSON value followed by more data is NDJSON (a pretty-printed object's
		// first line is not valid JSON on its own).
		line, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading body: %w", err)
		}
		if json.Valid(bytes.TrimSpace(line)) {
			if _, perr := firstByte(br); perr == nil {
				return decodeNDJSON(br, line, maxItems)
			}
		}
		return decodeObject(io.MultiReader(bytes.NewReader(line), br), maxItems)
	}
	return nil, &bodyError{0, fmt.Sprintf("want a JSON array, a JSON object or NDJSON; the body starts with %q", first)}
}

// firstByte skips whitespace and a UTF-8 byte order mark and peeks at the next byte.
func firstByte(br *bufio.Reader) (byte, error) {
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
	}
	for {
		b, err := br.Peek(1)
		if err != nil {
			return 0, err
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			_, _ = br.Discard(1)
			continue
		}
		return b[0], nil
	}
}

// readLine reads up to and including the next '\n' (or the end of the body).
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return line, err
	}
}

func decodeNDJSON(br *bufio.Reader, firstLine []byte, maxItems int) ([]rawItem, error) {
	var items []rawItem
	lineNo := 0
	handle := func(line []byte) error {
		lineNo++
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			return nil
		}
		if len(items) >= maxItems {
			return fmt.Errorf("more than %d items: %w", maxItems, ErrTooManyItems)
		}
		it := rawItem{line: lineNo}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(line, &m); err != nil {
			it.err = fmt.Sprintf("line %d: %s", lineNo, itemJSONReason(err))
		} else if m == nil {
			it.err = fmt.Sprintf("line %d: item is null; want a JSON object", lineNo)
		} else {
			it.fields, it.err = featureToItem(m)
			if it.err != "" {
				it.err = fmt.Sprintf("line %d: %s", lineNo, it.err)
			}
		}
		items = append(items, it)
		return nil
	}
	if firstLine != nil {
		if err := handle(firstLine); err != nil {
			return nil, err
		}
	}
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			if herr := handle(line); herr != nil {
				return nil, herr
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading NDJSON line %d: %w", lineNo+1, err)
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("reading NDJSON: %w", ErrNoItems)
	}
	return items, nil
}

func decodeArray(r io.Reader, maxItems int) ([]rawItem, error) {
	cr := &countReader{r: r}
	dec := json.NewDecoder(cr)
	if _, err := dec.Token(); err != nil { // '['
		return nil, syntaxOrRead(err, dec, cr)
	}
	var items []rawItem
	for dec.More() {
		if len(items) >= maxItems {
			return nil, fmt.Errorf("more than %d items: %w", maxItems, ErrTooManyItems)
		}
		var m map[string]json.RawMessage
		err := dec.Decode(&m)
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			items = append(items, rawItem{err: fmt.Sprintf("item is a JSON %s; want a JSON object", te.Value)})
			continue
		case err != nil:
			return nil, syntaxOrRead(err, dec, cr)
		case m == nil:
			items = append(items, rawItem{err: "item is null; want a JSON object"})
			continue
		}
		f, reason := featureToItem(m)
		items = append(items, rawItem{fields: f, err: reason})
	}
	if _, err := dec.Token(); err != nil { // ']'
		return nil, syntaxOrRead(err, dec, cr)
	}
	if err := expectEOF(dec, cr); err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("reading JSON array: %w", ErrNoItems)
	}
	return items, nil
}

// decodeObject reads one JSON object: a GeoJSON FeatureCollection, whose
// features are streamed one by one, or a single item or Feature.
func decodeObject(r io.Reader, maxItems int) ([]rawItem, error) {
	cr := &countReader{r: r}
	dec := json.NewDecoder(cr)
	if _, err := dec.Token(); err != nil { // '{'
		return nil, syntaxOrRead(err, dec, cr)
	}
	obj := make(map[string]json.RawMessage)
	var items []rawItem
	isFC := false
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, syntaxOrRead(err, dec, cr)
		}
		key, _ := kt.(string)
		if key != "features" {
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return nil, syntaxOrRead(err, dec, cr)
			}
			obj[key] = v
			continue
		}
		off := dec.InputOffset()
		t, err := dec.Token()
		if err != nil {
			return nil, syntaxOrRead(err, dec, cr)
		}
		if d, ok := t.(json.Delim); !ok || d != '[' {
			return nil, &bodyError{off, "features must be an array of GeoJSON Features"}
		}
		isFC = true
		for dec.More() {
			if len(items) >= maxItems {
				return nil, fmt.Errorf("more than %d features: %w", maxItems, ErrTooManyItems)
			}
			var m map[string]json.RawMessage
			err := dec.Decode(&m)
			var te *json.UnmarshalTypeError
			switch {
			case errors.As(err, &te):
				items = append(items, rawItem{err: fmt.Sprintf("feature is a JSON %s; want a GeoJSON Feature", te.Value)})
				continue
			case err != nil:
				return nil, syntaxOrRead(err, dec, cr)
			}
			if m == nil || unquote(m["type"]) != "Feature" {
				items = append(items, rawItem{err: "feature: type must be \"Feature\""})
				continue
			}
			f, reason := featureToItem(m)
			items = append(items, rawItem{fields: f, err: reason})
		}
		if _, err := dec.Token(); err != nil { // ']'
			return nil, syntaxOrRead(err, dec, cr)
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, syntaxOrRead(err, dec, cr)
	}
	if err := expectEOF(dec, cr); err != nil {
		return nil, err
	}
	if isFC {
		if t := unquote(obj["type"]); t != "" && t != "FeatureCollection" {
			return nil, &bodyError{0, fmt.Sprintf("an object with features must be a FeatureCollection, not %q", feedcheck.Clip(t))}
		}
		if len(items) == 0 {
			return nil, fmt.Errorf("reading FeatureCollection: %w", ErrNoItems)
		}
		return items, nil
	}
	if unquote(obj["type"]) == "FeatureCollection" {
		return nil, &bodyError{dec.InputOffset(), "FeatureCollection has no features array"}
	}
	f, reason := featureToItem(obj)
	return []rawItem{{fields: f, err: reason}}, nil
}

// featureToItem turns a GeoJSON Feature into an item (properties, with
// geometry as location and the feature id as id when the properties lack
// them); any other object is already an item.
func featureToItem(m map[string]json.RawMessage) (map[string]json.RawMessage, string) {
	if !isJSONString(m["type"], "Feature") {
		return m, ""
	}
	props := make(map[string]json.RawMessage)
	if p, ok := m["properties"]; ok && string(p) != "null" {
		if err := json.Unmarshal(p, &props); err != nil {
			return nil, "properties: want a JSON object"
		}
		if props == nil {
			props = make(map[string]json.RawMessage)
		}
	}
	if _, ok := props["id"]; !ok {
		if id, ok := m["id"]; ok {
			props["id"] = id
		}
	}
	if g, ok := m["geometry"]; ok && string(g) != "null" {
		if _, ok := props["location"]; !ok {
			props["location"] = g
		}
	}
	return props, ""
}

// isJSONString reports whether raw is a JSON string whose text is s
// (unquote(raw) == s), without making a string in the common case.
func isJSONString(raw json.RawMessage, s string) bool {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return false
	}
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 {
		return string(inner) == s && utf8.ValidString(s)
	}
	return unquote(raw) == s
}

// unquote returns the JSON string in raw, or "" if raw is not a string.
func unquote(raw json.RawMessage) string {
	if len(raw) < 2 || raw[0] != '"' {
		return ""
	}
	// raw is a JSON value read by a decoder: a string without escapes that is
	// valid UTF-8 decodes to its inside.
	if inner := raw[1 : len(raw)-1]; raw[len(raw)-1] == '"' && bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

func expectEOF(dec *json.Decoder, cr *countReader) error {
	off := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return syntaxOrRead(err, dec, cr)
		}
		return &bodyError{off, "unexpected data after the JSON value; send several items as a JSON array or as NDJSON (application/x-ndjson)"}
	}
	return nil
}

// syntaxOrRead turns a decoder error into a *bodyError with its offset, or
// passes a read error (body too large, connection lost) through.
// A body that ends too early is reported at its end (cr counts the bytes
// read), not at the start of the value being read.
func syntaxOrRead(err error, dec *json.Decoder, cr *countReader) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return &bodyError{se.Offset, "invalid JSON: " + se.Error()}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &bodyError{max(cr.n, dec.InputOffset()), "unexpected end of JSON: the body ends there, truncated"}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &bodyError{te.Offset, "invalid JSON: " + te.Error()}
	}
	return fmt.Errorf("reading body: %w", err)
}

// itemJSONReason describes why one NDJSON line is not an item.
func itemJSONReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d of the line: %s", se.Offset, se.Error())
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("item is a JSON %s; want a JSON object", te.Value)
	}
	return "invalid JSON: " + err.Error()
}

// jsonReason shortens a json error for a field's message.
func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("got a JSON %s at %s", te.Value, te.Field)
		}
		return fmt.Sprintf("got a JSON %s", te.Value)
	}
	return err.Error()
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
