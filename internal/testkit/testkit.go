// Package testkit holds the small helpers every test package shares: waiting
// for a condition with a deadline (Eventually), running a service's Run(ctx)
// so that its error is checked, not dropped (Start), comparing output with
// golden files (Golden), and making a private CA's TLS files (WriteTLSFiles).
//
// It imports only the standard library, so any package may use it in its
// tests without pulling in servers or databases (those are in testenv).
package testkit

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Poll intervals of Eventually: it starts fast, for conditions that hold at
// once, and backs off to spare the CPU on long waits.
const (
	firstPoll = 5 * time.Millisecond
	maxPoll   = 100 * time.Millisecond
)

// Eventually polls cond until it reports true, backing off from 5 ms to
// 100 ms between calls. If the timeout passes first it fails the test with
// what it was waiting for and the last state cond described. The timeout is
// a hang guard, not a performance requirement: make it generous.
//
// cond runs on the test goroutine, so it may call t.Fatal.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (ok bool, state string)) {
	t.Helper()
	if err := poll(timeout, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// errTimeout is what poll returns when the condition did not hold in time.
var errTimeout = errors.New("gave up")

// poll is Eventually without the test, so that its failure can be tested.
func poll(timeout time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	last := "(nothing observed)"
	for wait := firstPoll; ; wait = min(2*wait, maxPoll) {
		ok, state := cond()
		if ok {
			return nil
		}
		if state != "" {
			last = state
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%w after %v; last seen: %s", errTimeout, timeout, last)
		}
		time.Sleep(min(wait, left))
	}
}

// Holds adapts a condition without a state to Eventually.
func Holds(cond func() bool) func() (bool, string) {
	return func() (bool, string) { return cond(), "" }
}

// stopTimeout bounds the wait for Run to return after its context is cancelled.
const stopTimeout = 30 * time.Second

// Running is a Run(ctx) started by Start.
type Running struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done is closed
}

// Start runs run in a goroutine with a context that Stop (or the end of the
// test) cancels. At the end of the test it stops run, waits for it and fails
// the test if run returned an error other than context.Canceled, or did not
// return in 30 s. name says what runs, for the failure message.
func Start(t testing.TB, name string, run func(ctx context.Context) error) *Running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{name: name, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = run(ctx)
	}()
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return r
}

// Done is closed when run has returned.
func (r *Running) Done() <-chan struct{} { return r.done }

// Err is what run returned; call it after Done is closed.
func (r *Running) Err() error { return r.err }

// Stop cancels run's context and waits for it. It returns run's error,
// wrapped with the name, unless that is nil or context.Canceled. It may be
// called more than once.
func (r *Running) Stop() error {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(stopTimeout):
		return fmt.Errorf("%s: Run did not return %v after its context was cancelled", r.name, stopTimeout)
	}
	if r.err != nil && !errors.Is(r.err, context.Canceled) {
		return fmt.Errorf("%s: Run: %w", r.name, r.err)
	}
	return nil
}
