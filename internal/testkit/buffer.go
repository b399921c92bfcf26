package testkit

import (
	"bytes"
	"sync"
)

// LockedBuffer is a bytes.Buffer that goroutines may write while a test
// reads it (a process's stdout and stderr, a logger). When Limit is set it
// keeps the first Limit bytes written and drops the rest.
type LockedBuffer struct {
	Limit int

	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Limit > 0 {
		if room := l.Limit - l.b.Len(); room < len(p) {
			l.b.Write(p[:max(room, 0)])
			return len(p), nil
		}
	}
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
