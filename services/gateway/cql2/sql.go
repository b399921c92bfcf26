package cql2

import (
	"fmt"
	"strings"
)

// SQL translates e into a boolean SQL condition over the queryables q (a
// geometry is a queryable of type Geometry, usually named "geometry"),
// binding every literal through b: the text it returns holds only the
// queryables' SQL, operators and placeholders. A zero Expr is "TRUE".
func (e Expr) SQL(q map[string]Property, b Binder) (string, error) {
	if e.root == nil {
		return "TRUE", nil
	}
	t := &translator{q: q, b: b}
	return t.cond(e.root)
}

type translator struct {
	q map[string]Property
	b Binder
}

// operand is a translated scalar: its SQL and type.
type operand struct {
	sql string
	typ Type
}

func (t *translator) scalar(n *node) (operand, error) {
	switch n.kind {
	case kProp:
		p, ok := t.q[n.str]
		if !ok {
			return operand{}, fmt.Errorf("%q: %w", truncate(n.str, 64), ErrUnknownProperty)
		}
		return operand{p.SQL, p.Type}, nil
	case kStr:
		return operand{"(" + t.b.Bind(n.str) + "::text)", String}, nil
	case kNum:
		return operand{"(" + t.b.Bind(n.num) + "::float8)", Number}, nil
	case kBool:
		return operand{"(" + t.b.Bind(n.b) + "::boolean)", Bool}, nil
	case kTime:
		return operand{"(" + t.b.Bind(n.t) + "::timestamptz)", Time}, nil
	case kGeom:
		return operand{"ST_GeomFromText(" + t.b.Bind(n.str) + "::text, 4326)", Geometry}, nil
	case kBBox:
		return operand{fmt.Sprintf("ST_MakeEnvelope(%s::float8, %s::float8, %s::float8, %s::float8, 4326)",
			t.b.Bind(n.nums[0]), t.b.Bind(n.nums[1]), t.b.Bind(n.nums[2]), t.b.Bind(n.nums[3])), Geometry}, nil
	}
	return operand{}, fmt.Errorf("a condition where a value is wanted: %w", ErrType)
}

func (t *translator) cond(n *node) (string, error) {
	switch n.kind {
	case kAnd, kOr:
		l, err := t.cond(n.kids[0])
		if err != nil {
			return "", err
		}
		r, err := t.cond(n.kids[1])
		if err != nil {
			return "", err
		}
		op := " AND "
		if n.kind == kOr {
			op = " OR "
		}
		return "(" + l + op + r + ")", nil
	case kNot:
		c, err := t.cond(n.kids[0])
		if err != nil {
			return "", err
		}
		return "(NOT " + c + ")", nil
	case kCmp:
		ops, err := t.same(n.kids, "comparison "+n.op, String, Number, Time, Bool)
		if err != nil {
			return "", err
		}
		if ops[0].typ == Bool && n.op != "=" && n.op != "<>" {
			return "", fmt.Errorf("booleans compare with = and <> only, not %s: %w", n.op, ErrType)
		}
		return "(" + ops[0].sql + " " + n.op + " " + ops[1].sql + ")", nil
	case kLike:
		ops, err := t.same(n.kids, "LIKE", String)
		if err != nil {
			return "", err
		}
		return "(" + ops[0].sql + not(n.neg) + " LIKE " + ops[1].sql + ")", nil
	case kBetween:
		ops, err := t.same(n.kids, "BETWEEN", String, Number, Time)
		if err != nil {
			return "", err
		}
		return "(" + ops[0].sql + not(n.neg) + " BETWEEN " + ops[1].sql + " AND " + ops[2].sql + ")", nil
	case kIn:
		ops, err := t.same(n.kids, "IN", String, Number, Time, Bool)
		if err != nil {
			return "", err
		}
		list := make([]string, 0, len(ops)-1)
		for _, o := range ops[1:] {
			list = append(list, o.sql)
		}
		return "(" + ops[0].sql + not(n.neg) + " IN (" + strings.Join(list, ", ") + "))", nil
	case kIsNull:
		if n.kids[0].kind != kProp {
			return "", fmt.Errorf("IS NULL takes a property: %w", ErrType)
		}
		o, err := t.scalar(n.kids[0])
		if err != nil {
			return "", err
		}
		if n.neg {
			return "(" + o.sql + " IS NOT NULL)", nil
		}
		return "(" + o.sql + " IS NULL)", nil
	case kSpatial:
		ops, err := t.same(n.kids, n.op, Geometry)
		if err != nil {
			return "", err
		}
		return spatialOps[n.op] + "(" + ops[0].sql + ", " + ops[1].sql + ")", nil
	case kTemporal:
		return t.temporal(n)
	}
	return "", fmt.Errorf("a value where a condition is wanted: %w", ErrType)
}

func not(neg bool) string {
	if neg {
		return " NOT"
	}
	return ""
}

// same translates operands that must all have one type, among allowed.
func (t *translator) same(kids []*node, what string, allowed ...Type) ([]operand, error) {
	out := make([]operand, 0, len(kids))
	for _, k := range kids {
		o, err := t.scalar(k)
		if err != nil {
			return nil, err
		}
		if len(out) > 0 && o.typ != out[0].typ {
			return nil, fmt.Errorf("%s of a %s and a %s: %w", what, out[0].typ, o.typ, ErrType)
		}
		out = append(out, o)
	}
	for _, a := range allowed {
		if out[0].typ == a {
			return out, nil
		}
	}
	return nil, fmt.Errorf("%s does not take a %s: %w", what, out[0].typ, ErrType)
}

// span is a temporal operand as [lo, hi]; "" is an open end.
type span struct{ lo, hi string }

func (t *translator) span(n *node) (span, error) {
	if n.kind == kInterval {
		var s [2]string
		for i, k := range n.kids {
			if k.kind == kOpen {
				continue
			}
			s[i] = "(" + t.b.Bind(k.t) + "::timestamptz)"
		}
		return span{s[0], s[1]}, nil
	}
	o, err := t.scalar(n)
	if err != nil {
		return span{}, err
	}
	if o.typ != Time {
		return span{}, fmt.Errorf("temporal operators take timestamps, dates and intervals, not a %s: %w", o.typ, ErrType)
	}
	return span{o.sql, o.sql}, nil
}

func (t *translator) temporal(n *node) (string, error) {
	a, err := t.span(n.kids[0])
	if err != nil {
		return "", err
	}
	b, err := t.span(n.kids[1])
	if err != nil {
		return "", err
	}
	switch n.op {
	case "T_BEFORE":
		if a.hi == "" || b.lo == "" {
			return "FALSE", nil
		}
		return "(" + a.hi + " < " + b.lo + ")", nil
	case "T_AFTER":
		if a.lo == "" || b.hi == "" {
			return "FALSE", nil
		}
		return "(" + a.lo + " > " + b.hi + ")", nil
	}
	var parts []string
	if a.lo != "" && b.hi != "" {
		parts = append(parts, a.lo+" <= "+b.hi)
	}
	if b.lo != "" && a.hi != "" {
		parts = append(parts, b.lo+" <= "+a.hi)
	}
	if len(parts) == 0 {
		return "TRUE", nil
	}
	return "(" + strings.Join(parts, " AND ") + ")", nil
}
