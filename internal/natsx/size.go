package natsx

import "github.com/nats-io/nats.go"

// HeaderBytes is what the headers h take of a message against the server's
// max payload: "Key: value\r\n" for each value.
func HeaderBytes(h nats.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// WireSize is what NATS counts of a message against its max payload: the
// encoded headers ("NATS/1.0\r\n", the values, "\r\n") and the payload.
func WireSize(h nats.Header, data []byte) int {
	return len("NATS/1.0\r\n\r\n") + HeaderBytes(h) + len(data)
}
