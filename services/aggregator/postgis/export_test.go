package postgis

// WrittenAllNew returns how many batches s wrote as all new, in the round
// trip of their inserts (writeAllNew), and how many it wrote again the exact
// way because some row was not new.
func (s *Store) WrittenAllNew() (allNew, rewritten int64) {
	return s.allNew.Load(), s.rewritten.Load()
}
