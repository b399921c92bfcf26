package auth

import (
	"strings"
	"testing"
)

func TestTree(t *testing.T) {
	tr := Tree{
		"VN": {Level: "national"}, "01": {Parent: "VN", Level: "province"},
		"00070": {Parent: "01", Level: "commune"}, "26734": {Parent: "79", Level: "commune"},
	}
	for _, tc := range []struct {
		code, ancestor string
		want           bool
	}{
		{"00070", "01", true}, {"00070", "VN", true}, {"01", "00070", false}, {"26734", "79", true}, {"99999", "99999", true}, {"99999", "01", false},
	} {
		if got := tr.Within(tc.code, tc.ancestor); got != tc.want {
			t.Errorf("Within(%s, %s) = %v; want %v", tc.code, tc.ancestor, got, tc.want)
		}
	}
	if p, ok := tr.Province("00070"); !ok || p != "01" {
		t.Errorf("Province(00070) = %q, %v; want 01", p, ok)
	}
	if _, ok := tr.Province("26734"); ok { // its province 79 is not in the tree
		t.Error("the province of a unit whose province is unknown was found")
	}
	cyclic := Tree{"a": {Parent: "b"}, "b": {Parent: "a"}}
	if cyclic.Within("a", "c") {
		t.Error("a cycle in the tree reached an outside unit")
	}
	var none Tree
	if !none.Within("01", "01") || none.Within("00070", "01") || none.Exists("01") {
		t.Error("the nil tree knows units")
	}
}

// TestGrantRefusal: an admin grants only the scopes and kinds it holds.
func TestGrantRefusal(t *testing.T) {
	h := tree{"00070": "001", "00004": "001", "001": "01", "26734": "79"}
	prov := Principal{ID: "p", Role: RoleAdmin, Scopes: []string{"01"}}
	ward := Principal{ID: "w", Role: RoleAdmin, Scopes: []string{"00070"}}
	air := Principal{ID: "k", Role: RoleAdmin, Scopes: []string{"01"}, Kinds: []string{"air"}}
	op := Principal{ID: "o", Role: RoleOperator, Scopes: []string{"*"}}
	for _, tc := range []struct {
		p             Principal
		scopes, kinds []string
		want          string // in the refusal; "" = may
	}{
		{prov, []string{"00070", "001"}, nil, ""},
		{prov, []string{"01"}, []string{"water"}, ""},
		{prov, []string{"79"}, nil, "grant scopes 79"},
		{prov, []string{"*"}, nil, "grant scopes *"},
		{ward, []string{"00070"}, nil, ""},
		{ward, []string{"00004"}, nil, "grant scopes 00004"},
		{air, []string{"01"}, []string{"air"}, ""},
		{air, []string{"01"}, []string{"air", "water"}, "grant kinds air,water"},
		{air, []string{"01"}, nil, "grant every kind"},
		{op, []string{"01"}, nil, "admin role needed"},
	} {
		got := tc.p.GrantRefusal(h, tc.scopes, tc.kinds)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s of %v granting %v %v: %q; want %q", tc.p.Role, tc.p.Scopes, tc.scopes, tc.kinds, got, tc.want)
		}
	}
}
