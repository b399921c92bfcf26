package auth

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseKinds(t *testing.T) {
	for in, want := range map[string][]string{"": nil, " ": nil, "air": {"air"}, "water, air,air": {"air", "water"}} {
		got, err := ParseKinds(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseKinds(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"Air", "a.b", "1air", "air,*", strings.Repeat("a", 33)} {
		if _, err := ParseKinds(bad); !errors.Is(err, ErrBadIdentity) {
			t.Errorf("ParseKinds(%q) = %v; want ErrBadIdentity", bad, err)
		}
	}
	id := Identity{ID: "id_0123456789abcdef", Name: "bot", Role: RoleViewer, Scopes: []string{"01"}, Kinds: []string{"Air"}, TokenSHA256: HashToken("x")}
	if err := id.Check(); !errors.Is(err, ErrBadIdentity) {
		t.Errorf("Check with kind Air = %v; want ErrBadIdentity", err)
	}
	id.Kinds = []string{"air"}
	if err := id.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	if p := id.Principal(); !slices.Equal(p.Kinds, []string{"air"}) {
		t.Errorf("Principal().Kinds = %v", p.Kinds)
	}
}

func TestMayReadSubject(t *testing.T) {
	h := tree{"00070": "001", "001": "01", "26734": "79"}
	all := Principal{ID: "a", Role: RoleViewer, Scopes: []string{"01"}}
	air := Principal{ID: "k", Role: RoleViewer, Scopes: []string{"01"}, Kinds: []string{"air", "alert"}}
	ward := Principal{ID: "w", Role: RoleViewer, Scopes: []string{"00070"}, Kinds: []string{"water"}}
	none := Principal{ID: "n", Scopes: []string{"*"}}
	for _, tc := range []struct {
		p       Principal
		subject string
		want    bool
	}{
		{all, "ioc.feed.01.00070.water", true},
		{all, "ioc.feed.79.26734.water", false},
		{air, "ioc.feed.01.00070.air", true},
		{air, "ioc.feed.01.00070.alert", true},
		{air, "ioc.feed.01.00070.water", false},
		{air, "ioc.state.01.air.st-1", true},
		{air, "ioc.state.01.traffic.seg-1", false},
		{air, "ioc.rollup.01.001.air.1h", true},
		{air, "ioc.rollup.01.001.water.1h", false},
		{ward, "ioc.feed.01.00070.water", true},
		{ward, "ioc.feed.01.00004.water", false},
		{ward, "ioc.feed.01.00070.air", false},
		{ward, "ioc.state.01.water.st-1", true}, // the caller checks the entity's unit
		{ward, "ioc.state.79.water.st-1", false},
		{ward, "ioc.rollup.01.001.water.1h", false},
		{all, "ioc.action.01.report.r1", false},
		{all, "ioc.deadletter.01.air", false},
		{all, "ioc.feed.01", false},
		{none, "ioc.feed.01.00070.air", false},
	} {
		if got := tc.p.MayReadSubject(h, tc.subject); got != tc.want {
			t.Errorf("%s kinds %v MayReadSubject(%s) = %v; want %v", tc.p.Scopes, tc.p.Kinds, tc.subject, got, tc.want)
		}
	}
}

func TestMayReadFilter(t *testing.T) {
	h := tree{"00070": "001", "001": "01", "26734": "79"}
	air := Principal{ID: "k", Role: RoleViewer, Scopes: []string{"01"}, Kinds: []string{"air"}}
	star := Principal{ID: "s", Role: RoleViewer, Scopes: []string{"*"}}
	ward := Principal{ID: "w", Role: RoleViewer, Scopes: []string{"00070"}}
	for _, tc := range []struct {
		p      Principal
		filter string
		ok     bool
	}{
		{air, "ioc.feed.01.>", true},
		{air, "ioc.feed.01.*.air", true},
		{air, "ioc.feed.01.*.water", false},
		{air, "ioc.feed.79.>", false},
		{air, "ioc.feed.>", false},
		{air, "ioc.feed.*.*.air", false},
		{star, "ioc.feed.>", true},
		{star, "ioc.rollup.*.*.air.1h", true},
		{air, "ioc.state.01.air.>", true},
		{air, "ioc.state.01.water.>", false},
		{air, "ioc.action.01.>", false},
		{air, "ioc.deadletter.01.air", false},
		{air, "nats.>", false},
		{ward, "ioc.feed.01.>", true}, // part of 01: messages are filtered one by one
		{ward, "ioc.feed.79.>", false},
	} {
		err := tc.p.MayReadFilter(h, tc.filter)
		if (err == nil) != tc.ok {
			t.Errorf("%v kinds %v MayReadFilter(%s) = %v; want ok %v", tc.p.Scopes, tc.p.Kinds, tc.filter, err, tc.ok)
		}
	}
}
