package cql2

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// binder numbers placeholders and keeps the values.
type binder struct{ vals []any }

func (b *binder) Bind(v any) string {
	b.vals = append(b.vals, v)
	return fmt.Sprintf("$%d", len(b.vals))
}

var queryables = map[string]Property{
	"unit":       {"s.unit_code", String},
	"layer":      {"s.kind", String},
	"aqi":        {"s.aqi", Number},
	"congested":  {"s.congested", Bool},
	"observedAt": {"s.observed_at", Time},
	"geometry":   {"s.location", Geometry},
}

func TestSQL(t *testing.T) {
	tests := []struct {
		in, want string
		vals     int
	}{
		{"unit = '00070'", "(s.unit_code = ($1::text))", 1},
		{`"unit"='00070' AND layer <> 'air'`, "((s.unit_code = ($1::text)) AND (s.kind <> ($2::text)))", 2},
		{"aqi >= 100 OR NOT (aqi < 50)", "((s.aqi >= ($1::float8)) OR (NOT (s.aqi < ($2::float8))))", 2},
		{"congested = TRUE", "(s.congested = ($1::boolean))", 1},
		{"unit LIKE '000%'", "(s.unit_code LIKE ($1::text))", 1},
		{"unit NOT IN ('a', 'b')", "(s.unit_code NOT IN (($1::text), ($2::text)))", 2},
		{"aqi BETWEEN 1 AND 2e2", "(s.aqi BETWEEN ($1::float8) AND ($2::float8))", 2},
		{"aqi IS NOT NULL", "(s.aqi IS NOT NULL)", 0},
		{"observedAt > TIMESTAMP('2026-01-02T03:04:05Z')", "(s.observed_at > ($1::timestamptz))", 1},
		{"S_INTERSECTS(geometry, BBOX(105.7,20.9,106,21.1))", "ST_Intersects(s.location, ST_MakeEnvelope($1::float8, $2::float8, $3::float8, $4::float8, 4326))", 4},
		{"s_intersects(geometry, POLYGON((105 21, 106 21, 106 22, 105 21)))", "ST_Intersects(s.location, ST_GeomFromText($1::text, 4326))", 1},
		{"S_WITHIN(geometry, MULTIPOLYGON(((105 21, 106 21, 106 22, 105 21)),((0 0,1 0,1 1,0 0))))", "ST_Within(s.location, ST_GeomFromText($1::text, 4326))", 1},
		{"S_INTERSECTS(geometry, MULTIPOINT((1 2), (3 4)))", "ST_Intersects(s.location, ST_GeomFromText($1::text, 4326))", 1},
		{"S_INTERSECTS(geometry, POINT(-1.5 2))", "ST_Intersects(s.location, ST_GeomFromText($1::text, 4326))", 1},
		{"T_INTERSECTS(observedAt, INTERVAL('2026-01-01T00:00:00Z', '..'))", "(($1::timestamptz) <= s.observed_at)", 1},
		{"T_INTERSECTS(observedAt, INTERVAL('2026-01-01', '2026-02-01'))", "(s.observed_at <= ($2::timestamptz) AND ($1::timestamptz) <= s.observed_at)", 2},
		{"T_BEFORE(observedAt, DATE('2026-01-01'))", "(s.observed_at < ($1::timestamptz))", 1},
		{`unit LIKE '%\\'`, "(s.unit_code LIKE ($1::text))", 1},    // an escaped backslash
		{`unit LIKE '\%\_x%'`, "(s.unit_code LIKE ($1::text))", 1}, // escaped wildcards
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			b := &binder{}
			got, err := e.SQL(queryables, b)
			if err != nil {
				t.Fatalf("SQL: %v", err)
			}
			if got != tt.want || len(b.vals) != tt.vals {
				t.Errorf("got %q with %d values; want %q with %d", got, len(b.vals), tt.want, tt.vals)
			}
		})
	}
}

func TestSQLInjectionIsBound(t *testing.T) {
	e, err := Parse(`unit = '''; DROP TABLE sensor; --'`)
	if err != nil {
		t.Fatal(err)
	}
	b := &binder{}
	got, err := e.SQL(queryables, b)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "DROP") || b.vals[0] != "'; DROP TABLE sensor; --" {
		t.Errorf("got %q with %q; want the text bound", got, b.vals)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"", ErrSyntax},
		{"unit =", ErrSyntax},
		{"unit = 'x", ErrSyntax},
		{"unit = 'x' AND", ErrSyntax},
		{"(unit = 'x'", ErrSyntax},
		{"unit = 'x')", ErrSyntax},
		{"unit ~ 'x'", ErrSyntax},
		{"S_INTERSECTS(geometry, POLYGON((105 21, 106 21, 106 22)))", ErrSyntax},
		{"S_INTERSECTS(geometry, POINT(200 0))", ErrSyntax},
		{"S_INTERSECTS(geometry, BBOX(2,0,1,1))", ErrSyntax},
		{"observedAt > TIMESTAMP('yesterday')", ErrSyntax},
		{"nope = 1", ErrUnknownProperty},
		{"unit = 1", ErrType},
		{"congested > TRUE", ErrType},
		{"aqi LIKE 'x'", ErrType},
		{`unit LIKE '%\'`, ErrSyntax},
		{`unit NOT LIKE '\\\'`, ErrSyntax},
		{"S_INTERSECTS(geometry, unit)", ErrType},
		{"T_INTERSECTS(unit, DATE('2026-01-01'))", ErrType},
		{strings.Repeat("(", MaxDepth+1) + "unit = 'a'" + strings.Repeat(")", MaxDepth+1), ErrTooLarge},
		{strings.Repeat("NOT ", MaxDepth+1) + "unit = 'a'", ErrTooLarge},
		{strings.Repeat("unit = 'a' OR ", MaxNodes/3+1) + "unit = 'a'", ErrTooLarge},
		{strings.Repeat("x", MaxLen+1), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(truncate(tt.in, 60), func(t *testing.T) {
			e, err := Parse(tt.in)
			if err == nil {
				_, err = e.SQL(queryables, &binder{})
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v; want %v", err, tt.want)
			}
		})
	}
}

// TestLikeTrailingEscape: a LIKE pattern ending in an unpaired escape
// character, which PostgreSQL refuses at run time (SQLSTATE 22025), is a
// syntax error naming the pattern and where it starts.
func TestLikeTrailingEscape(t *testing.T) {
	_, err := Parse(`unit = 'a' AND unit LIKE '%\'`)
	if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), `'%\' at 25`) {
		t.Errorf("got %v; want a CQL2 syntax error naming '%%\\' at 25", err)
	}
}

// FuzzCQL2: any text parses or fails with one of the package's errors,
// never panics, and what parses translates with only queryable SQL,
// placeholders and operators: no byte of a literal reaches the SQL.
func FuzzCQL2(f *testing.F) {
	for _, s := range []string{
		"unit = '00070' AND layer = 'air'",
		"aqi >= 100 OR NOT (aqi < 50)",
		"S_INTERSECTS(geometry, POLYGON((105 21, 106 21, 106 22, 105 21)))",
		"S_INTERSECTS(geometry, BBOX(105.7,20.9,106,21.1))",
		"T_INTERSECTS(observedAt, INTERVAL('2026-01-01T00:00:00Z', '..'))",
		"unit IN ('a','b') AND aqi BETWEEN 1 AND 2 AND aqi IS NULL",
		`"unit" LIKE 'x%'`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Parse(src)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Parse(%q): unexpected error %v", src, err)
			}
			return
		}
		b := &binder{}
		got, err := e.SQL(queryables, b)
		if err != nil {
			if !errors.Is(err, ErrUnknownProperty) && !errors.Is(err, ErrType) {
				t.Fatalf("SQL(%q): unexpected error %v", src, err)
			}
			return
		}
		if strings.ContainsAny(got, "'\";") || !utf8.ValidString(got) {
			t.Fatalf("SQL(%q) = %q: holds a quote or semicolon", src, got)
		}
	})
}
