package testkit

import (
	"fmt"
	"strings"
	"sync"
)

// ErrorLog is a nats-server logger (server.Logger) that keeps the errors
// the server logs and drops the rest, for tests that wait for one (a leaf
// connection's TLS refusal, say).
type ErrorLog struct {
	mu   sync.Mutex
	errs []string
}

func (l *ErrorLog) Noticef(string, ...any) {}
func (l *ErrorLog) Warnf(string, ...any)   {}
func (l *ErrorLog) Fatalf(string, ...any)  {}
func (l *ErrorLog) Debugf(string, ...any)  {}
func (l *ErrorLog) Tracef(string, ...any)  {}

// Errorf keeps the error.
func (l *ErrorLog) Errorf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, fmt.Sprintf(format, v...))
}

// Has reports whether a logged error contains s.
func (l *ErrorLog) Has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.errs {
		if strings.Contains(e, s) {
			return true
		}
	}
	return false
}

// Count is how many logged errors contain s.
func (l *ErrorLog) Count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.errs {
		if strings.Contains(e, s) {
			n++
		}
	}
	return n
}
