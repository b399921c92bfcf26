package gateway

// sendQueue holds one client's frames waiting to be written, conflated by
// entity: at most one frame per key waits; a newer frame for a waiting key
// replaces the older one in place and keeps its place in line, so a slow client
// gets the newest state of each entity and memory stays bounded by the number
// of distinct entities, not the number of updates. It is not safe for
// concurrent use; the client's mutex guards it.
type sendQueue[F any] struct {
	max     int
	pending map[string]F
	order   []string // keys in arrival order; order[head:] are waiting
	head    int
}

// pushResult says what push did.
type pushResult int

const (
	pushAdded     pushResult = iota // a new key joined the end of the line
	pushConflated                   // the key was waiting; its frame was replaced
	pushOverflow                    // a new key would exceed max distinct keys; nothing was stored
)

func newSendQueue[F any](max int) *sendQueue[F] {
	return &sendQueue[F]{max: max, pending: make(map[string]F)}
}

// push queues f under key.
func (q *sendQueue[F]) push(key string, f F) pushResult {
	if _, ok := q.pending[key]; ok {
		q.pending[key] = f
		return pushConflated
	}
	if len(q.pending) >= q.max {
		return pushOverflow
	}
	q.pending[key] = f
	q.order = append(q.order, key)
	return pushAdded
}

// pop appends up to n waiting frames to dst in arrival order and removes them.
func (q *sendQueue[F]) pop(dst []F, n int) []F {
	for n > 0 && q.head < len(q.order) {
		k := q.order[q.head]
		q.order[q.head] = ""
		q.head++
		dst = append(dst, q.pending[k])
		delete(q.pending, k)
		n--
	}
	switch {
	case q.head == len(q.order):
		q.order = q.order[:0]
		q.head = 0
	case q.head > 1024 && q.head > len(q.order)/2:
		n := copy(q.order, q.order[q.head:])
		clear(q.order[n:])
		q.order = q.order[:n]
		q.head = 0
	}
	return dst
}

// len is the number of distinct keys waiting.
func (q *sendQueue[F]) len() int { return len(q.pending) }

// reset drops everything waiting.
func (q *sendQueue[F]) reset() {
	clear(q.pending)
	clear(q.order)
	q.order = q.order[:0]
	q.head = 0
}
