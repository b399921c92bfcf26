package auth

// maxTreeDepth bounds a walk up a Tree: deeper than any real hierarchy; it
// stops a cycle in bad data.
const maxTreeDepth = 16

// UnitNode is where one unit sits in a Tree.
type UnitNode struct {
	Parent string // "" for a unit without a parent
	Level  string // province, commune, ...
}

// Tree is how units nest, by code: each unit's parent and level, as read
// from the current admin_unit rows (all of them in the gateway, the
// ancestors of the units an action names in the aggregator). It is the
// Hierarchy both check scopes with, so they agree on what lies where. The
// nil Tree knows no unit.
type Tree map[string]UnitNode

// Within reports whether unit code is ancestor itself or lies inside it.
func (t Tree) Within(code, ancestor string) bool {
	for range maxTreeDepth {
		if code == ancestor {
			return true
		}
		n, ok := t[code]
		if !ok || n.Parent == "" {
			return false
		}
		code = n.Parent
	}
	return false
}

// Province is the province unit code lies in (itself for a province).
func (t Tree) Province(code string) (string, bool) {
	for range maxTreeDepth {
		n, ok := t[code]
		if !ok {
			return "", false
		}
		if n.Level == "province" {
			return code, true
		}
		code = n.Parent
	}
	return "", false
}

// Exists reports whether code is a unit of t.
func (t Tree) Exists(code string) bool {
	_, ok := t[code]
	return ok
}
