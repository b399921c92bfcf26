package subjects

import "testing"

func TestTokenRoundTrip(t *testing.T) {
	for _, id := range []string{
		"urn:ngsi-ld:AirQualityObserved:RZ:Obsv4567",
		"Madrid-AmbientObserved-28079004-2016-03-15T11:00:00",
		"a.b c*d>e",
		"Trạm Hoàn Kiếm",
		"",
		"100%",
	} {
		tok := Token(id)
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c == '.' || c == ' ' || c == '*' || c == '>' || c >= 0x80 {
				t.Fatalf("Token(%q) = %q holds %q", id, tok, c)
			}
		}
		if got := Untoken(tok); got != id {
			t.Errorf("Untoken(Token(%q)) = %q; want %q", id, got, id)
		}
	}
}

func TestFeedAndState(t *testing.T) {
	s := Feed("01", "00070", KindAir)
	if s != "ioc.feed.01.00070.air" {
		t.Fatalf("Feed = %q", s)
	}
	p, u, k, err := ParseFeed(s)
	if err != nil || p != "01" || u != "00070" || k != "air" {
		t.Fatalf("ParseFeed(%q) = %q %q %q %v", s, p, u, k, err)
	}
	st := State("01", KindTraffic, "seg.1")
	if st != "ioc.state.01.traffic.seg%2E1" {
		t.Fatalf("State = %q", st)
	}
	p, l, e, err := ParseState(st)
	if err != nil || p != "01" || l != "traffic" || e != "seg.1" {
		t.Fatalf("ParseState(%q) = %q %q %q %v", st, p, l, e, err)
	}
	if _, _, _, err := ParseFeed("ioc.state.01.x"); err == nil {
		t.Fatal("ParseFeed accepted a state subject")
	}
}

func TestFeedFilter(t *testing.T) {
	for _, c := range []struct {
		filter         string
		province, unit string
		ok             bool
	}{
		{FeedProvince("01"), "01", "", true},
		{FeedUnit("01", "00070"), "01", "00070", true},
		{FeedUnit("01", "W.1"), "01", "W.1", true},
		{"ioc.feed.>", "", "", false},
		{">", "", "", false},
		{"ioc.feed.*.>", "", "", false},
		{"ioc.feed.01.*.>", "", "", false},
		{"ioc.feed.01.00070.air", "", "", false},
		{"ioc.state.01.>", "", "", false},
	} {
		p, u, ok := ParseFeedFilter(c.filter)
		if p != c.province || u != c.unit || ok != c.ok {
			t.Errorf("ParseFeedFilter(%q) = %q %q %v; want %q %q %v", c.filter, p, u, ok, c.province, c.unit, c.ok)
		}
	}
	if f := FeedUnit("01", "W.1"); f != "ioc.feed.01.W%2E1.>" {
		t.Errorf("FeedUnit = %q", f)
	}
}

func TestRollup(t *testing.T) {
	s := Rollup("01", "W.1", KindAir, "15m")
	if s != "ioc.rollup.01.W%2E1.air.15m" {
		t.Fatalf("Rollup = %q", s)
	}
	p, u, l, w, err := ParseRollup(s)
	if err != nil || p != "01" || u != "W.1" || l != "air" || w != "15m" {
		t.Fatalf("ParseRollup(%q) = %q %q %q %q %v", s, p, u, l, w, err)
	}
	if _, _, _, _, err := ParseRollup("ioc.state.01.air.x.y"); err == nil {
		t.Fatal("ParseRollup accepted a state subject")
	}
	if got := RollupProvince("01"); got != "ioc.rollup.01.>" {
		t.Fatalf("RollupProvince = %q", got)
	}
}

func TestAction(t *testing.T) {
	s := Action("01", "report", "r.1")
	if s != "ioc.action.01.report.r%2E1" {
		t.Fatalf("Action = %q", s)
	}
	p, k, id, err := ParseAction(s)
	if err != nil || p != "01" || k != "report" || id != "r.1" {
		t.Fatalf("ParseAction(%q) = %q %q %q %v", s, p, k, id, err)
	}
}

func TestDeadletter(t *testing.T) {
	s := Deadletter("01", "air")
	if s != "ioc.deadletter.01.air" {
		t.Fatalf("Deadletter = %q", s)
	}
	p, k, err := ParseDeadletter(Deadletter("0 1", "a.b"))
	if err != nil || p != "0 1" || k != "a.b" {
		t.Fatalf("ParseDeadletter = %q %q %v", p, k, err)
	}
	for _, tc := range []struct{ p, k, want string }{
		{"", "", "ioc.deadletter.*.*"},
		{"01", "", "ioc.deadletter.01.*"},
		{"", "air", "ioc.deadletter.*.air"},
	} {
		if got := DeadletterFilter(tc.p, tc.k); got != tc.want {
			t.Errorf("DeadletterFilter(%q, %q) = %q; want %q", tc.p, tc.k, got, tc.want)
		}
	}
	if _, _, err := ParseDeadletter("ioc.feed.01.air"); err == nil {
		t.Error("ParseDeadletter accepted a feed subject")
	}
}

func TestStreamOf(t *testing.T) {
	for subject, want := range map[string]string{
		Feed("01", "u", KindAir): StreamFeeds, StateProvince("01"): StreamState, Rollup("01", "u", "air", "1h"): StreamRollups,
		Action("01", "report", "r"): StreamActions, Deadletter("01", "air"): StreamDeadletter, "ioc.other.x": "", "sandbox.>": "",
	} {
		if got := StreamOf(subject); got != want {
			t.Errorf("StreamOf(%s) = %q; want %q", subject, got, want)
		}
	}
}
