package gateway

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/iochub/iochub/internal/auth"
)

// Live roll-ups by unit (/v1/live?unit=VN&rollups=1h): the roll-ups of the
// national unit or of a custom group, whose subjects carry the unit's own
// code as province token (ioc.rollup.<code>.<code>.<layer>.<window>). Who
// may open one:
//   - VN: an identity whose scope is every province (*): the national figures
//     sum every province's observations;
//   - a custom group: an identity that may read every current member of the
//     group (a province scope covers its members there, a unit scope the
//     units within it), since the group's figures sum its members'
//     observations. A group without a current member is for * only.
//
// A province, ward or unknown code is refused: a province's units are in
// province=NN, and a finer unit's roll-ups with it.

// unitLevelNational and unitLevelCustom are the admin_unit levels a view by
// unit accepts.
const (
	unitLevelNational = "national"
	unitLevelCustom   = "custom"
)

// readableUnitRollups checks that who may open the roll-ups of code (the
// national unit or a current custom group), answering 404, 403 or 503 itself
// otherwise.
func (g *Gateway) readableUnitRollups(w http.ResponseWriter, r *http.Request, who auth.Principal, code string) bool {
	what := "read the roll-ups of unit " + code
	if code == nationalCode {
		if !who.AllProvinces() || !who.CanRead(code) {
			forbid(w, r, who, what+" (a scope of every province, *, is needed)")
			return false
		}
		return true
	}
	tree, ok := g.hierarchy(w, r)
	if !ok {
		return false
	}
	n, known := tree.nodes[code]
	switch {
	case !known || g.tree == nil:
		writeProblem(w, r, http.StatusNotFound, fmt.Sprintf("parameter unit: no current national unit or custom group has the code %q", truncate(code, 40)))
		return false
	case n.Level != unitLevelCustom && n.Level != unitLevelNational:
		writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf(
			"parameter unit: %s is a %s; a view by unit is for the national unit %s and custom groups (a province's units: province=)",
			code, n.Level, nationalCode))
		return false
	case n.Level == unitLevelNational:
		// Another national unit than VN: the same rule.
		if !who.AllProvinces() || !who.CanRead(code) {
			forbid(w, r, who, what+" (a scope of every province, *, is needed)")
			return false
		}
		return true
	}
	members, err := g.tree.store.GroupMembers(r.Context(), code)
	if err != nil {
		g.log.Error("reading group members", "group", code, "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "the units database is unavailable; retry later")
		return false
	}
	if len(members) == 0 && !who.AllProvinces() {
		forbid(w, r, who, what+" (a group without current members: a scope of every province, *, is needed)")
		return false
	}
	var denied []string
	for _, m := range members {
		if !who.CanReadUnit(tree, m) {
			denied = append(denied, m)
		}
	}
	if len(denied) > 0 {
		forbid(w, r, who, fmt.Sprintf("%s (members outside the identity's scopes: %s)", what, truncate(strings.Join(denied, ","), 200)))
		return false
	}
	return true
}
