package ingest

import "github.com/nats-io/nats.go/jetstream"

// WrapPublisher puts wrap around the JetStream s publishes feeds with.
func WrapPublisher(s *Service, wrap func(jetstream.JetStream) jetstream.JetStream) { s.js = wrap(s.js) }
