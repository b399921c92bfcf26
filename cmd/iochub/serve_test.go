package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

// TestWaitBounded: a role that ignores the end of its context does not hold
// the hub's shutdown past the bound, and a failing role's error is reported.
func TestWaitBounded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	stuck := make(chan struct{})
	defer close(stuck)
	g.Go(func() error { <-stuck; return nil }) // never looks at gctx
	g.Go(func() error { return errors.New("role failed") })
	start := time.Now()
	err := waitBounded(gctx, g, 200*time.Millisecond)
	cancel()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("waitBounded took %s; want about 200ms", took)
	}
	if err == nil || !strings.Contains(err.Error(), "did not stop") || !strings.Contains(err.Error(), "role failed") {
		t.Errorf("waitBounded = %v; want the timeout naming the role's failure", err)
	}

	g, gctx = errgroup.WithContext(context.Background())
	g.Go(func() error { return nil })
	if err := waitBounded(gctx, g, time.Second); err != nil {
		t.Errorf("waitBounded of roles that stop = %v; want nil", err)
	}
}

// TestRolesTable: --target accepts exactly the names of the roles table.
func TestRolesTable(t *testing.T) {
	for _, name := range []string{"ingest", "aggregator", "gateway"} {
		if findRole(name) == nil {
			t.Errorf("role %q is not in the table", name)
		}
	}
	if findRole("all") != nil || findRole("querier") != nil {
		t.Error("the table has a role it should not")
	}
}
