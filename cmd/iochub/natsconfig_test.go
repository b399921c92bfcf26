package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestNATSConfig(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"nats-config", "--reader-password-var", "R_PW"}, &out, &errOut); err != nil {
		t.Fatalf("nats-config: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{"user: hub, password: $NATS_HUB_PASSWORD", "user: reader, password: $R_PW", `"$JS.API.CONSUMER.CREATE.FEEDS.>"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("nats-config lacks %q:\n%s", want, out.String())
		}
	}
	if err := run(context.Background(), []string{"nats-config", "--hub-password-var", "a b"}, &out, &errOut); !errors.Is(err, errUsage) {
		t.Errorf("a bad variable name: %v; want errUsage", err)
	}
}
