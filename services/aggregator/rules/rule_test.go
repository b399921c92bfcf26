package rules

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/alertrule"
)

func TestIdentifier(t *testing.T) {
	since := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	for _, entity := range []string{"seg-1", "urn:ngsi-ld:RoadSegment:a,b c", "trạm.1"} {
		id := Identifier("r_1", entity, since)
		if strings.ContainsAny(id, ", <&") {
			t.Errorf("identifier %q has a character CAP forbids", id)
		}
		rule, ent, got, err := ParseIdentifier(id)
		if err != nil || rule != "r_1" || ent != entity || !got.Equal(since) {
			t.Errorf("ParseIdentifier(%q) = %q, %q, %v, %v; want r_1, %q, %v", id, rule, ent, got, err, entity, since)
		}
		if got := RuleOfAlert(alertrule.SourceID + "/" + id); got != "r_1" {
			t.Errorf("RuleOfAlert of %q = %q; want r_1", id, got)
		}
		if got := RuleOfAlert(alertrule.SourceID + "/" + CancelID(id)); got != "r_1" {
			t.Errorf("RuleOfAlert of the cancel of %q = %q; want r_1", id, got)
		}
	}
	for _, bad := range []string{"", "rule:", "rule:r1", "rule:r1:x", "rule:r1:x:notanumber", "other:r1:x:1", "rule::x:1"} {
		if _, _, _, err := ParseIdentifier(bad); !errors.Is(err, ErrNotRuleAlert) {
			t.Errorf("ParseIdentifier(%q) = %v; want ErrNotRuleAlert", bad, err)
		}
	}
	for _, id := range []string{"src/rule:r1:x:1", "rules/other", "rules/rule:", ""} {
		if got := RuleOfAlert(id); got != "" {
			t.Errorf("RuleOfAlert(%q) = %q; want empty", id, got)
		}
	}
}
