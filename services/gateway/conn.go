package gateway

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// wsConn is the transport under a client's gorilla Conn. The client's writer
// sends its data frames through writeFrames: frames built once per state
// (RFC 6455 §5.2 server frames: unmasked, one fragment), concatenated once
// per tick and group and shared by every client of the group, written in
// one write(2) (writev(2) with the first frames). Everything gorilla writes
// itself (the handshake, pings, pongs, close frames, its protocol-error
// closes) goes through Write. The mutex keeps every frame whole and in order.
type wsConn struct {
	net.Conn
	mu sync.Mutex
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.Write(p)
}

// writeFrames writes complete frames with one deadline for all. frames is
// consumed (its elements are resliced) and must not be reused before clearing.
func (c *wsConn) writeFrames(frames [][]byte, deadline time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.SetWriteDeadline(deadline); err != nil {
		return fmt.Errorf("setting write deadline: %w", err)
	}
	if len(frames) == 1 { // the usual case: what one tick has for the client
		if _, err := c.Conn.Write(frames[0]); err != nil {
			return fmt.Errorf("writing frames: %w", err)
		}
		return nil
	}
	bufs := net.Buffers(frames)
	if _, err := bufs.WriteTo(c.Conn); err != nil {
		return fmt.Errorf("writing frames: %w", err)
	}
	return nil
}

// hijackWriter hands gorilla's Upgrader a wsConn when it hijacks the connection.
type hijackWriter struct {
	http.ResponseWriter
	conn *wsConn
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("hijacking the connection: %T is not an http.Hijacker", w.ResponseWriter)
	}
	c, rw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &wsConn{Conn: c}
	return w.conn, rw, nil
}

// textFrame returns payload as one complete, unmasked server text frame.
func textFrame(payload []byte) []byte {
	b := appendTextHeader(make([]byte, 0, textHeaderLen(len(payload))+len(payload)), len(payload))
	return append(b, payload...)
}

// textHeaderLen is the length of the header of a server frame of n payload bytes.
func textHeaderLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xFFFF:
		return 4
	}
	return 10
}

// appendTextHeader appends to b the header of an unmasked, final server
// text frame of n payload bytes.
func appendTextHeader(b []byte, n int) []byte {
	const finText = 0x80 | 0x1 // FIN, text
	switch {
	case n < 126:
		return append(b, finText, byte(n))
	case n <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(b, finText, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, finText, 127), uint64(n))
	}
}

// framePayload is the payload of f, one complete frame built by textFrame.
func framePayload(f []byte) []byte {
	switch f[1] & 0x7F {
	case 126:
		return f[4:]
	case 127:
		return f[10:]
	}
	return f[2:]
}
