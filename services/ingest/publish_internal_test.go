package ingest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestPermanentPublishError: an event too large for NATS is the item's
// fault, never a retryable 503.
func TestPermanentPublishError(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{fmt.Errorf("publishing ioc.feed.01.00070.air: %w", nats.ErrMaxPayload), true},
		{errors.New("nats: maximum payload exceeded"), true},
		{errors.New("nats: header too large"), true},
		{fmt.Errorf("publishing x: %w", nats.ErrTimeout), false},
		{errors.New("no JetStream ack within 10s"), false},
		{fmt.Errorf("publishing x: %w", nats.ErrConnectionClosed), false},
	} {
		if got := permanentPublishError(tt.err); got != tt.want {
			t.Errorf("permanentPublishError(%v) = %v; want %v", tt.err, got, tt.want)
		}
	}
}
