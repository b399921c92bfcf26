package units

// Parents maps a unit code to the parent codes its versions have had: the
// unit tree of every version at once, for questions whose answer must hold
// whatever the map (is an edge's item in a unit of the edge, in any version).
// The Index of one time answers them for that time (Index.Ancestors).
type Parents map[string][]string

// ParentsOf indexes the parents of every code of us, in any version.
func ParentsOf(us []Unit) Parents {
	p := Parents{}
	for _, u := range us {
		if u.ParentCode != "" {
			p[u.Code] = append(p[u.Code], u.ParentCode)
		}
	}
	return p
}

// Up is code and every code above it in some version; a cycle in bad data
// ends the walk (each code is visited once).
func (p Parents) Up(code string) map[string]bool {
	out := map[string]bool{code: true}
	todo := []string{code}
	for len(todo) > 0 {
		c := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for _, parent := range p[c] {
			if !out[parent] {
				out[parent] = true
				todo = append(todo, parent)
			}
		}
	}
	return out
}
