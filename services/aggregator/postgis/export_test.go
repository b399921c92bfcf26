package postgis

// WrittenAllNew returns how many batches s wrote as all new, in the round
// trip of their inserts (writeAllNew), and how many it wrote again the exact
// way because some row was not new.
func (s *Store) WrittenAllNew() (allNew, rewritten int64) {
	return s.allNew.Load(), s.rewritten.Load()
}

// SetMemberCacheBound bounds the member rows s keeps in memory to n.
func (s *Store) SetMemberCacheBound(n int) {
	s.members.mu.Lock()
	defer s.members.mu.Unlock()
	s.members.bound = n
}

// MemberCacheRows returns the number of member rows s keeps in memory.
func (s *Store) MemberCacheRows() int {
	s.members.mu.Lock()
	defer s.members.mu.Unlock()
	return s.members.n
}
