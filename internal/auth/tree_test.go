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

// TestActionRules: the rules of the operator actions the gateway asks when
// it queues an action and the aggregator again when it applies it.
func TestActionRules(t *testing.T) {
	h := tree{"00070": "001", "00004": "001", "001": "01", "26734": "79"}
	tr := Tree{"01": {Level: "province"}, "79": {Level: "province"},
		"00070": {Parent: "01", Level: "commune"}, "26734": {Parent: "79", Level: "commune"}}
	prov := Principal{ID: "p", Role: RoleAdmin, Scopes: []string{"01"}}
	ward := Principal{ID: "w", Role: RoleAdmin, Scopes: []string{"00070"}}
	air := Principal{ID: "k", Role: RoleAdmin, Scopes: []string{"01"}, Kinds: []string{"air"}}
	all := Principal{ID: "a", Role: RoleAdmin, Scopes: []string{"*"}}
	op := Principal{ID: "o", Role: RoleOperator, Scopes: []string{"00070"}}
	viewer := Principal{ID: "v", Role: RoleViewer, Scopes: []string{"01"}}

	for _, tc := range []struct {
		name string
		got  bool
		want bool
	}{
		{"an admin manages an identity of a ward of its province", prov.ManagesIdentity(h, []string{"00070"}, nil), true},
		{"an admin of a ward manages no identity of its province", ward.ManagesIdentity(h, []string{"01"}, nil), false},
		{"an admin of one kind manages no identity of every kind", air.ManagesIdentity(h, []string{"01"}, nil), false},
		{"an admin of one kind manages an identity of it", air.ManagesIdentity(h, []string{"01"}, []string{"air"}), true},
		{"an operator manages no identity", op.ManagesIdentity(h, []string{"00070"}, nil), false},
		{"an operator of a ward changes its reports", op.CanActReport(h, "01", "00070"), true},
		{"an operator of a ward changes no report beside it", op.CanActReport(h, "01", "00004"), false},
		{"a viewer changes no report", viewer.CanActReport(h, "01", "00070"), false},
		{"an admin reading air changes no report", air.CanActReport(h, "01", "00070"), false},
		{"an operator of a ward acts on its dead letters", op.CanActDeadLetter(h, "01", "air", "ioc.feed.01.00070.air"), true},
		{"an operator of a ward acts on no letter beside it", op.CanActDeadLetter(h, "01", "air", "ioc.feed.01.00004.air"), false},
		{"a viewer acts on no dead letter", viewer.CanActDeadLetter(h, "01", "air", "ioc.feed.01.00070.air"), false},
		{"an admin reading air acts on no traffic letter", air.CanActDeadLetter(h, "01", "traffic", "ioc.feed.01.00070.traffic"), false},
		{"only every province acts on a letter of none", prov.CanActDeadLetter(h, "", "air", "x"), false},
		{"every province acts on a letter of none", all.CanActDeadLetter(h, "", "air", "x"), true},
		{"an admin of every province imports maps", all.CanImportMaps(), true},
		{"an admin of one province imports no map", prov.CanImportMaps(), false},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v; want %v", tc.name, tc.got, tc.want)
		}
	}

	for _, tc := range []struct {
		name, got, want string // want in the refusal; "" = may
	}{
		{"a rule of its province", prov.RuleRefusal("01", "congestion", "traffic"), ""},
		{"a rule of another province", prov.RuleRefusal("79", "congestion", "traffic"), "change alert rules of province 79"},
		{"a rule of a layer it does not read", air.RuleRefusal("01", "congestion", "traffic"), "of kind congestion (they watch traffic"},
		{"a rule of a ward's admin", ward.RuleRefusal("01", "aqi_band", "air"), "change alert rules of province 01"},
		{"a rule of an operator", op.RuleRefusal("01", "aqi_band", "air"), "admin role needed"},
		{"a group in its province", prov.GroupRefusal(tr, "g", []string{"00070", "01"}, []string{"00070"}), ""},
		{"a group with a member of another province", prov.GroupRefusal(tr, "g", []string{"00070", "26734"}, nil), "group unit 26734 of province 79"},
		{"a new member of no province", prov.GroupRefusal(tr, "g", []string{"99999"}, nil), ""},
		{"replacing a member of another province", prov.GroupRefusal(tr, "g", []string{"00070"}, []string{"26734"}), "redefine group g, whose member 26734 is of province 79"},
		{"replacing a member of no province", prov.GroupRefusal(tr, "g", nil, []string{"99999"}), "whose member 99999 is of province *"},
		{"replacing a member of no province, of every province", all.GroupRefusal(tr, "g", nil, []string{"99999"}), ""},
		{"a group of an operator", op.GroupRefusal(tr, "g", []string{"00070"}, nil), "admin role needed"},
	} {
		if (tc.want == "") != (tc.got == "") || !strings.Contains(tc.got, tc.want) {
			t.Errorf("%s: %q; want %q", tc.name, tc.got, tc.want)
		}
	}
}
