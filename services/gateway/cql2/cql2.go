// Package cql2 parses the subset of OGC CQL2 text (OGC 21-065) that the
// gateway's OGC API – Features accepts in filter= and translates it into a
// parameterised SQL condition: property names become the SQL expressions a
// collection declares (its queryables), every literal becomes a bound
// parameter, never text in the statement. The parser is bounded (length,
// nesting, nodes, coordinates) because the filter comes from anyone.
//
// Supported: comparison (=, <>, <, <=, >, >=), LIKE (% and _, \ escaping;
// a literal pattern may not end in an unpaired \), IN, BETWEEN, IS [NOT]
// NULL, AND, OR, NOT, parentheses; S_INTERSECTS, S_DISJOINT, S_WITHIN,
// S_CONTAINS with POINT, LINESTRING, POLYGON, MULTIPOINT, MULTILINESTRING,
// MULTIPOLYGON or BBOX literals (CRS84); T_INTERSECTS, T_BEFORE, T_AFTER
// with TIMESTAMP, DATE or INTERVAL literals. Literals: 'strings' (” for a
// quote), numbers, TRUE, FALSE, TIMESTAMP('…'), DATE('…').
package cql2

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Bounds of a filter.
const (
	// MaxLen is the longest filter text, in bytes.
	MaxLen = 8192
	// MaxDepth is the deepest nesting of parentheses and operators.
	MaxDepth = 20
	// MaxNodes is the most operators, properties and literals in one filter.
	MaxNodes = 300
	// MaxCoords is the most coordinate pairs in all geometry literals together.
	MaxCoords = 2000
)

// ErrSyntax is returned (wrapped with where and what) for a filter that is
// not CQL2 text of the supported subset.
var ErrSyntax = errors.New("CQL2 syntax error")

// ErrTooLarge is returned for a filter beyond MaxLen, MaxDepth, MaxNodes or MaxCoords.
var ErrTooLarge = errors.New("CQL2 filter too large")

// ErrUnknownProperty is returned (wrapped with its name) by SQL for a
// property the collection does not have.
var ErrUnknownProperty = errors.New("unknown property")

// ErrType is returned by SQL for an operator given operands of the wrong kind.
var ErrType = errors.New("CQL2 type error")

// Type is the kind of value a property or literal holds.
type Type int

// The types of values.
const (
	String Type = iota + 1
	Number
	Bool
	Time
	Geometry
)

func (t Type) String() string {
	switch t {
	case String:
		return "string"
	case Number:
		return "number"
	case Bool:
		return "boolean"
	case Time:
		return "timestamp"
	case Geometry:
		return "geometry"
	}
	return "unknown"
}

// Property is a queryable: the SQL expression that computes it (a constant
// of the collection, never user text) and its type.
type Property struct {
	SQL  string
	Type Type
}

// Binder binds a value as a parameter of the statement being built and
// returns its placeholder ("$3").
type Binder interface {
	Bind(v any) string
}

// Expr is a parsed filter.
type Expr struct {
	root *node
}

type kind int

const (
	kAnd kind = iota + 1
	kOr
	kNot
	kCmp     // op: = <> < <= > >=
	kLike    // kids[0] LIKE kids[1]; neg
	kIn      // kids[0] IN kids[1:]; neg
	kBetween // kids[0] BETWEEN kids[1] AND kids[2]; neg
	kIsNull  // neg
	kSpatial // op: S_INTERSECTS …
	kTemporal
	kProp
	kStr
	kNum
	kBool
	kTime     // a TIMESTAMP or DATE literal
	kInterval // INTERVAL(a, b): kids are kTime or kOpen
	kOpen     // '..' in an interval
	kGeom     // WKT text in str
	kBBox     // nums
)

type node struct {
	kind kind
	op   string
	neg  bool
	str  string
	num  float64
	b    bool
	t    time.Time
	nums []float64
	kids []*node
}

// Parse parses src, a CQL2 text filter.
func Parse(src string) (Expr, error) {
	if len(src) > MaxLen {
		return Expr{}, fmt.Errorf("%d bytes, more than %d: %w", len(src), MaxLen, ErrTooLarge)
	}
	toks, err := lex(src)
	if err != nil {
		return Expr{}, err
	}
	p := &parser{toks: toks}
	n, err := p.orExpr()
	if err != nil {
		return Expr{}, err
	}
	if p.peek().kind != tEOF {
		return Expr{}, p.errf("unexpected %s after the end of the filter", p.peek())
	}
	return Expr{root: n}, nil
}

// token kinds
type tkind int

const (
	tEOF tkind = iota
	tIdent
	tQuoted // "identifier"
	tString
	tNumber
	tOp // = <> < <= > >=
	tLParen
	tRParen
	tComma
)

type token struct {
	kind tkind
	text string
	pos  int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of filter"
	case tString:
		return fmt.Sprintf("'%s' at %d", truncate(t.text, 40), t.pos)
	}
	return fmt.Sprintf("%q at %d", truncate(t.text, 40), t.pos)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func lex(src string) ([]token, error) {
	var out []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			out = append(out, token{tLParen, "(", i})
			i++
		case c == ')':
			out = append(out, token{tRParen, ")", i})
			i++
		case c == ',':
			out = append(out, token{tComma, ",", i})
			i++
		case c == '=':
			out = append(out, token{tOp, "=", i})
			i++
		case c == '<':
			if i+1 < len(src) && (src[i+1] == '=' || src[i+1] == '>') {
				out = append(out, token{tOp, src[i : i+2], i})
				i += 2
			} else {
				out = append(out, token{tOp, "<", i})
				i++
			}
		case c == '>':
			if i+1 < len(src) && src[i+1] == '=' {
				out = append(out, token{tOp, ">=", i})
				i += 2
			} else {
				out = append(out, token{tOp, ">", i})
				i++
			}
		case c == '\'':
			var b strings.Builder
			start := i
			i++
			for {
				if i >= len(src) {
					return nil, fmt.Errorf("string at %d is not closed: %w", start, ErrSyntax)
				}
				if src[i] == '\'' {
					if i+1 < len(src) && src[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(src[i])
				i++
			}
			out = append(out, token{tString, b.String(), start})
		case c == '"':
			end := strings.IndexByte(src[i+1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("quoted name at %d is not closed: %w", i, ErrSyntax)
			}
			out = append(out, token{tQuoted, src[i+1 : i+1+end], i})
			i += end + 2
		case c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9'):
			start := i
			if c == '.' && i+1 < len(src) && src[i+1] == '.' { // ".." in an interval
				out = append(out, token{tString, "..", i})
				i += 2
				continue
			}
			i++
			for i < len(src) && (src[i] >= '0' && src[i] <= '9' || src[i] == '.' || src[i] == 'e' || src[i] == 'E' ||
				((src[i] == '-' || src[i] == '+') && (src[i-1] == 'e' || src[i-1] == 'E'))) {
				i++
			}
			out = append(out, token{tNumber, src[start:i], start})
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			start := i
			for i < len(src) && (src[i] == '_' || src[i] == ':' || src[i] == '.' || src[i] >= 'a' && src[i] <= 'z' ||
				src[i] >= 'A' && src[i] <= 'Z' || src[i] >= '0' && src[i] <= '9') {
				i++
			}
			out = append(out, token{tIdent, src[start:i], start})
		default:
			return nil, fmt.Errorf("unexpected character %q at %d: %w", rune(c), i, ErrSyntax)
		}
		if len(out) > 4*MaxNodes+4*MaxCoords {
			return nil, fmt.Errorf("more than %d tokens: %w", 4*MaxNodes+4*MaxCoords, ErrTooLarge)
		}
	}
	out = append(out, token{tEOF, "", len(src)})
	return out, nil
}

type parser struct {
	toks   []token
	i      int
	depth  int
	nodes  int
	coords int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errf(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrSyntax)...)
}

// keyword reports whether the next token is the keyword kw (any case).
func (p *parser) keyword(kw string) bool {
	t := p.peek()
	return t.kind == tIdent && strings.EqualFold(t.text, kw)
}

func (p *parser) expect(k tkind, what string) (token, error) {
	t := p.next()
	if t.kind != k {
		return t, p.errf("want %s, got %s", what, t)
	}
	return t, nil
}

func (p *parser) newNode(n *node) (*node, error) {
	p.nodes++
	if p.nodes > MaxNodes {
		return nil, fmt.Errorf("more than %d operators and operands: %w", MaxNodes, ErrTooLarge)
	}
	return n, nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > MaxDepth {
		return fmt.Errorf("nested deeper than %d: %w", MaxDepth, ErrTooLarge)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

func (p *parser) orExpr() (*node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	left, err := p.andExpr()
	if err != nil {
		return nil, err
	}
	for p.keyword("OR") {
		p.next()
		right, err := p.andExpr()
		if err != nil {
			return nil, err
		}
		if left, err = p.newNode(&node{kind: kOr, kids: []*node{left, right}}); err != nil {
			return nil, err
		}
	}
	return left, nil
}

func (p *parser) andExpr() (*node, error) {
	left, err := p.notExpr()
	if err != nil {
		return nil, err
	}
	for p.keyword("AND") {
		p.next()
		right, err := p.notExpr()
		if err != nil {
			return nil, err
		}
		if left, err = p.newNode(&node{kind: kAnd, kids: []*node{left, right}}); err != nil {
			return nil, err
		}
	}
	return left, nil
}

func (p *parser) notExpr() (*node, error) {
	if p.keyword("NOT") {
		p.next()
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer p.leave()
		kid, err := p.notExpr()
		if err != nil {
			return nil, err
		}
		return p.newNode(&node{kind: kNot, kids: []*node{kid}})
	}
	return p.predicate()
}

var spatialOps = map[string]string{
	"S_INTERSECTS": "ST_Intersects", "S_DISJOINT": "ST_Disjoint", "S_WITHIN": "ST_Within", "S_CONTAINS": "ST_Contains",
}

var temporalOps = map[string]bool{"T_INTERSECTS": true, "T_BEFORE": true, "T_AFTER": true}

func (p *parser) predicate() (*node, error) {
	t := p.peek()
	if t.kind == tLParen {
		p.next()
		n, err := p.orExpr()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tRParen, "')'"); err != nil {
			return nil, err
		}
		return n, nil
	}
	if t.kind == tIdent {
		up := strings.ToUpper(t.text)
		if _, ok := spatialOps[up]; ok || temporalOps[up] {
			return p.function(up)
		}
	}
	left, err := p.scalar()
	if err != nil {
		return nil, err
	}
	neg := false
	if p.keyword("NOT") {
		p.next()
		neg = true
	}
	switch {
	case !neg && p.peek().kind == tOp:
		op := p.next().text
		right, err := p.scalar()
		if err != nil {
			return nil, err
		}
		return p.newNode(&node{kind: kCmp, op: op, kids: []*node{left, right}})
	case p.keyword("LIKE"):
		p.next()
		pat := p.peek()
		right, err := p.scalar()
		if err != nil {
			return nil, err
		}
		if right.kind == kStr && endsInEscape(right.str) {
			return nil, p.errf("LIKE pattern %s ends in the escape character \\; escape it (\\\\) to match a backslash", pat)
		}
		return p.newNode(&node{kind: kLike, neg: neg, kids: []*node{left, right}})
	case p.keyword("BETWEEN"):
		p.next()
		lo, err := p.scalar()
		if err != nil {
			return nil, err
		}
		if !p.keyword("AND") {
			return nil, p.errf("want AND in BETWEEN, got %s", p.peek())
		}
		p.next()
		hi, err := p.scalar()
		if err != nil {
			return nil, err
		}
		return p.newNode(&node{kind: kBetween, neg: neg, kids: []*node{left, lo, hi}})
	case p.keyword("IN"):
		p.next()
		if _, err := p.expect(tLParen, "'(' after IN"); err != nil {
			return nil, err
		}
		n := &node{kind: kIn, neg: neg, kids: []*node{left}}
		for {
			v, err := p.scalar()
			if err != nil {
				return nil, err
			}
			n.kids = append(n.kids, v)
			if p.peek().kind == tComma {
				p.next()
				continue
			}
			break
		}
		if _, err := p.expect(tRParen, "')' closing IN"); err != nil {
			return nil, err
		}
		return p.newNode(n)
	case !neg && p.keyword("IS"):
		p.next()
		if p.keyword("NOT") {
			p.next()
			neg = true
		}
		if !p.keyword("NULL") {
			return nil, p.errf("want NULL after IS, got %s", p.peek())
		}
		p.next()
		return p.newNode(&node{kind: kIsNull, neg: neg, kids: []*node{left}})
	}
	return nil, p.errf("want a comparison, LIKE, IN, BETWEEN or IS NULL, got %s", p.peek())
}

// endsInEscape reports whether a LIKE pattern ends in an unpaired escape
// character (\, as in CQL2 and PostgreSQL's default): "%\\" does not (an
// escaped backslash), "%\" and "%\\\" do. PostgreSQL refuses such a pattern
// (SQLSTATE 22025) only when it runs the query; the parser names it first.
func endsInEscape(pattern string) bool {
	n := len(pattern) - len(strings.TrimRight(pattern, `\`))
	return n%2 == 1
}

// function parses S_xxx(a, b) and T_xxx(a, b).
func (p *parser) function(name string) (*node, error) {
	p.next()
	if _, err := p.expect(tLParen, "'(' after "+name); err != nil {
		return nil, err
	}
	var args [2]*node
	for i := range args {
		if i == 1 {
			if _, err := p.expect(tComma, "',' between the arguments of "+name); err != nil {
				return nil, err
			}
		}
		var err error
		if _, spatial := spatialOps[name]; spatial {
			args[i], err = p.geomOperand()
		} else {
			args[i], err = p.timeOperand()
		}
		if err != nil {
			return nil, err
		}
	}
	if _, err := p.expect(tRParen, "')' closing "+name); err != nil {
		return nil, err
	}
	k := kTemporal
	if _, spatial := spatialOps[name]; spatial {
		k = kSpatial
	}
	return p.newNode(&node{kind: k, op: name, kids: args[:]})
}

// scalar is a property or a literal.
func (p *parser) scalar() (*node, error) {
	t := p.next()
	switch t.kind {
	case tString:
		return p.newNode(&node{kind: kStr, str: t.text})
	case tNumber:
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, p.errf("%s is not a number", t)
		}
		return p.newNode(&node{kind: kNum, num: f})
	case tQuoted:
		return p.newNode(&node{kind: kProp, str: t.text})
	case tIdent:
		switch strings.ToUpper(t.text) {
		case "TRUE":
			return p.newNode(&node{kind: kBool, b: true})
		case "FALSE":
			return p.newNode(&node{kind: kBool, b: false})
		case "TIMESTAMP", "DATE":
			return p.timeLiteral(strings.ToUpper(t.text))
		case "AND", "OR", "NOT", "LIKE", "IN", "BETWEEN", "IS", "NULL":
			return nil, p.errf("want a property or a value, got the keyword %s", t)
		}
		return p.newNode(&node{kind: kProp, str: t.text})
	}
	return nil, p.errf("want a property or a value, got %s", t)
}

func (p *parser) timeLiteral(fn string) (*node, error) {
	if _, err := p.expect(tLParen, "'(' after "+fn); err != nil {
		return nil, err
	}
	s, err := p.expect(tString, "a quoted "+strings.ToLower(fn))
	if err != nil {
		return nil, err
	}
	if _, err := p.expect(tRParen, "')' closing "+fn); err != nil {
		return nil, err
	}
	var at time.Time
	if fn == "DATE" {
		at, err = time.Parse(time.DateOnly, s.text)
	} else {
		at, err = time.Parse(time.RFC3339Nano, s.text)
	}
	if err != nil {
		return nil, p.errf("%s(%s) is not a valid %s", fn, s, strings.ToLower(fn))
	}
	return p.newNode(&node{kind: kTime, t: at.UTC()})
}

// timeOperand is a property, TIMESTAMP, DATE or INTERVAL.
func (p *parser) timeOperand() (*node, error) {
	if p.keyword("INTERVAL") {
		p.next()
		if _, err := p.expect(tLParen, "'(' after INTERVAL"); err != nil {
			return nil, err
		}
		n := &node{kind: kInterval}
		for i := range 2 {
			if i == 1 {
				if _, err := p.expect(tComma, "',' in INTERVAL"); err != nil {
					return nil, err
				}
			}
			t := p.next()
			switch {
			case t.kind == tString && t.text == "..":
				n.kids = append(n.kids, &node{kind: kOpen})
			case t.kind == tString:
				at, err := time.Parse(time.RFC3339Nano, t.text)
				if err != nil {
					if at, err = time.Parse(time.DateOnly, t.text); err != nil {
						return nil, p.errf("%s is not a timestamp, a date or '..'", t)
					}
				}
				n.kids = append(n.kids, &node{kind: kTime, t: at.UTC()})
			case t.kind == tIdent && (strings.EqualFold(t.text, "TIMESTAMP") || strings.EqualFold(t.text, "DATE")):
				k, err := p.timeLiteral(strings.ToUpper(t.text))
				if err != nil {
					return nil, err
				}
				n.kids = append(n.kids, k)
			default:
				return nil, p.errf("want a timestamp, a date or '..' in INTERVAL, got %s", t)
			}
		}
		if _, err := p.expect(tRParen, "')' closing INTERVAL"); err != nil {
			return nil, err
		}
		return p.newNode(n)
	}
	return p.scalar()
}

var geomTypes = map[string]int{ // lists nested above the position lists
	"POINT": 0, "LINESTRING": 0, "POLYGON": 1, "MULTIPOINT": 0, "MULTILINESTRING": 1, "MULTIPOLYGON": 2,
}

// geomOperand is a property, a WKT geometry literal or BBOX(…).
func (p *parser) geomOperand() (*node, error) {
	t := p.peek()
	if t.kind == tIdent {
		up := strings.ToUpper(t.text)
		if up == "BBOX" {
			p.next()
			if _, err := p.expect(tLParen, "'(' after BBOX"); err != nil {
				return nil, err
			}
			nums, err := p.numbers(4, 4, ',')
			if err != nil {
				return nil, err
			}
			if _, err := p.expect(tRParen, "')' closing BBOX"); err != nil {
				return nil, err
			}
			if nums[0] > nums[2] || nums[1] > nums[3] {
				return nil, p.errf("BBOX(%g,%g,%g,%g) is not minLon,minLat,maxLon,maxLat", nums[0], nums[1], nums[2], nums[3])
			}
			return p.newNode(&node{kind: kBBox, nums: nums})
		}
		if depth, ok := geomTypes[up]; ok {
			p.next()
			var b strings.Builder
			b.WriteString(up)
			if err := p.wktList(&b, depth, up); err != nil {
				return nil, err
			}
			return p.newNode(&node{kind: kGeom, str: b.String()})
		}
	}
	return p.scalar()
}

// numbers reads between lo and hi numbers separated by sep (',' or ' ').
func (p *parser) numbers(lo, hi int, sep byte) ([]float64, error) {
	var out []float64
	for {
		t, err := p.expect(tNumber, "a number")
		if err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, p.errf("%s is not a number", t)
		}
		out = append(out, f)
		if len(out) > hi {
			return nil, p.errf("more than %d numbers at %s", hi, t)
		}
		if sep == ',' {
			if p.peek().kind != tComma {
				break
			}
			p.next()
		} else if p.peek().kind != tNumber {
			break
		}
	}
	if len(out) < lo {
		return nil, p.errf("want %d numbers, got %d", lo, len(out))
	}
	return out, nil
}

// wktList reads a parenthesised WKT list nested depth levels above a
// position list, writing its canonical form to b. A POINT has one position,
// a LINESTRING two or more, and each ring of a POLYGON or MULTIPOLYGON four
// or more, closed.
func (p *parser) wktList(b *strings.Builder, depth int, typ string) error {
	if err := p.enter(); err != nil {
		return err
	}
	defer p.leave()
	if _, err := p.expect(tLParen, "'(' in "+typ); err != nil {
		return err
	}
	b.WriteByte('(')
	var first, last []float64
	n := 0
	for {
		if n > 0 {
			b.WriteByte(',')
		}
		switch {
		case depth > 0:
			if err := p.wktList(b, depth-1, typ); err != nil {
				return err
			}
		case typ == "MULTIPOINT" && p.peek().kind == tLParen:
			p.next()
			b.WriteByte('(')
			pos, err := p.position(b)
			if err != nil {
				return err
			}
			first, last = pos, pos
			if _, err := p.expect(tRParen, "')' in MULTIPOINT"); err != nil {
				return err
			}
			b.WriteByte(')')
		default:
			pos, err := p.position(b)
			if err != nil {
				return err
			}
			if n == 0 {
				first = pos
			}
			last = pos
		}
		n++
		if p.peek().kind != tComma {
			break
		}
		p.next()
	}
	if _, err := p.expect(tRParen, "')' in "+typ); err != nil {
		return err
	}
	b.WriteByte(')')
	if depth == 0 {
		switch typ {
		case "POINT":
			if n != 1 {
				return p.errf("a POINT has one position, not %d", n)
			}
		case "LINESTRING", "MULTILINESTRING":
			if n < 2 {
				return p.errf("a line of %s has %d position; want 2 or more", typ, n)
			}
		case "POLYGON", "MULTIPOLYGON":
			if n < 4 || first[0] != last[0] || first[1] != last[1] {
				return p.errf("a ring of %s must have 4 or more positions and end where it starts", typ)
			}
		}
	}
	return nil
}

// position reads "lon lat" (a third number, a height, is read and dropped).
func (p *parser) position(b *strings.Builder) ([]float64, error) {
	nums, err := p.numbers(2, 3, ' ')
	if err != nil {
		return nil, err
	}
	p.coords++
	if p.coords > MaxCoords {
		return nil, fmt.Errorf("more than %d positions: %w", MaxCoords, ErrTooLarge)
	}
	if nums[0] < -180 || nums[0] > 180 || nums[1] < -90 || nums[1] > 90 {
		return nil, p.errf("position %g %g is outside [-180,180]×[-90,90] (CRS84 is lon lat)", nums[0], nums[1])
	}
	b.WriteString(strconv.FormatFloat(nums[0], 'g', -1, 64))
	b.WriteByte(' ')
	b.WriteString(strconv.FormatFloat(nums[1], 'g', -1, 64))
	return nums[:2], nil
}
