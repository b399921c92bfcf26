package gateway

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sync"
)

// batchFlushAt is the buffered size at which a batch is written out early.
const batchFlushAt = 64 << 10

// batchBufs recycles batch buffers, so an idle connection holds none.
var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// batchConn lets a client's writer send a batch of WebSocket frames in one
// write(2) instead of one per frame: between begin and flush, the frames gorilla
// writes are gathered in a pooled buffer. Outside a batch every write goes
// straight through (the handshake, pings, the close frame, and the close or
// protocol-error frames gorilla writes from the reader goroutine). The mutex
// keeps those concurrent writes whole and in order.
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	buf      *[]byte
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.batching {
		return b.Conn.Write(p)
	}
	if len(*b.buf)+len(p) > batchFlushAt {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > batchFlushAt { // a big snapshot: no point copying it
			return b.Conn.Write(p)
		}
	}
	*b.buf = append(*b.buf, p...)
	return len(p), nil
}

// begin starts gathering writes.
func (b *batchConn) begin() {
	b.mu.Lock()
	b.batching = true
	b.buf = batchBufs.Get().(*[]byte)
	b.mu.Unlock()
}

// flush writes what was gathered (under the write deadline gorilla last set)
// and ends the batch.
func (b *batchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.batching {
		return nil
	}
	err := b.flushLocked()
	b.batching = false
	if cap(*b.buf) <= 4*batchFlushAt {
		batchBufs.Put(b.buf)
	}
	b.buf = nil
	return err
}

func (b *batchConn) flushLocked() error {
	if len(*b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(*b.buf)
	*b.buf = (*b.buf)[:0]
	if err != nil {
		return fmt.Errorf("writing frames: %w", err)
	}
	return nil
}

// batchingWriter hands gorilla's Upgrader a batchConn when it hijacks the connection.
type batchingWriter struct {
	http.ResponseWriter
	conn *batchConn
}

func (w *batchingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("hijacking the connection: %T is not an http.Hijacker", w.ResponseWriter)
	}
	c, rw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &batchConn{Conn: c}
	return w.conn, rw, nil
}
