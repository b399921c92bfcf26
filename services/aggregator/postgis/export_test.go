package postgis

import (
	"context"

	"github.com/jackc/pgx/v5"
)

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

// WriteAirStates writes, in tx, the state of each station of b.Air from its
// newest row, as a batch written straight does after its COPY, and returns
// the stations whose state it wrote.
func WriteAirStates(ctx context.Context, tx pgx.Tx, b Batch) ([]Changed, error) {
	var pb pgx.Batch
	var res Result
	if err := queueAirStates(&pb, b, &res); err != nil {
		return nil, err
	}
	if err := tx.SendBatch(ctx, &pb).Close(); err != nil {
		return nil, err
	}
	return res.Air.Changed, nil
}
