package gateway

import "github.com/gorilla/websocket"

// WebSocket close codes the gateway sends on /v1/live and /v1/streams. Every close the gateway
// starts uses one of these; the table in README.md says what a client should do
// on each. Codes 4000-4999 are private to iochub (RFC 6455 §7.4.2).
const (
	// CloseNormal (1000) answers a client that closed the connection itself.
	CloseNormal = websocket.CloseNormalClosure
	// CloseGoingAway (1001) is sent to every client when the gateway shuts down;
	// reconnect, with backoff, to another instance or the same one after restart.
	CloseGoingAway = websocket.CloseGoingAway
	// ClosePolicy (1008) is reserved for a client that breaks a rule after the
	// upgrade. Parameters are checked before the upgrade (400), so nothing sends
	// it today; do not retry unchanged.
	ClosePolicy = websocket.ClosePolicyViolation
	// CloseTooBig (1009) is sent by gorilla/websocket itself, from the reader,
	// when a client sends a data message over the 4 KiB read limit (the live
	// socket is one-way); 1002 likewise for a protocol error. These are the only
	// frames not written by the connection's writer goroutine (gorilla's
	// WriteControl is safe to call concurrently).
	CloseTooBig = websocket.CloseMessageTooBig
	// CloseInternal (1011) is sent when the gateway hit an unexpected error for this
	// connection (e.g. it could not build the snapshot); reconnect with backoff.
	CloseInternal = websocket.CloseInternalServerErr
	// CloseStreamFailure (4000) is sent when the province's STATE stream consumer
	// failed; the hub is dropped and rebuilt by the next client, so reconnect
	// with backoff and expect a fresh snapshot.
	CloseStreamFailure = 4000
	// CloseTooSlow (4001) is sent when more distinct entities waited for this client
	// than Config.SendQueue allows: the client did not read fast enough. Reconnect;
	// the new snapshot carries the newest state of every entity.
	CloseTooSlow = 4001
	// ClosePingTimeout (4002) is sent when no pong (or any other frame) came back
	// within Config.PongWait; the network or the client is stuck. Reconnect.
	ClosePingTimeout = 4002
	// CloseRevoked (4003) is sent, at the next ping, to the live views of an
	// identity that was revoked (or whose session identity is gone). Do not
	// reconnect with the same credentials: sign in again.
	CloseRevoked = 4003
	// CloseStreamTooSlow (4004) ends an event stream (/v1/streams) whose client
	// did not read fast enough: its queue of Config.StreamQueue events stayed
	// full for Config.StreamStall. Nothing was skipped: the reason text ends
	// with since=seq:<N>, N the last event sent; reconnect with it (SSE gets
	// the final event overflow instead).
	CloseStreamTooSlow = 4004
)

// closeReason is the metric label of a disconnect, by close code.
func closeReason(code int) string {
	switch code {
	case CloseNormal:
		return "client_closed"
	case CloseGoingAway:
		return "shutdown"
	case ClosePolicy:
		return "policy"
	case CloseTooBig:
		return "too_big"
	case CloseInternal:
		return "internal"
	case CloseStreamFailure:
		return "stream_failure"
	case CloseTooSlow:
		return "too_slow"
	case ClosePingTimeout:
		return "ping_timeout"
	case CloseRevoked:
		return "revoked"
	case CloseStreamTooSlow:
		return "stream_too_slow"
	}
	return "other"
}
