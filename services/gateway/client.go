package gateway

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// readLimit bounds a client's data frames: the live socket is one-way, so
// clients have nothing to say beyond control frames. gorilla checks it per
// frame header and answers 1009; input under it is discarded unread, never buffered.
const readLimit = 4096

// closeGrace is how long the writer waits for the client's answer to a close
// frame before dropping the TCP connection (closing first could reset the
// connection and lose the close frame in flight).
const closeGrace = time.Second

// writeBatch is how many frames the writer takes from the queue per lock.
const writeBatch = 64

// codeConnLost marks a connection that broke under us: no close frame is sent.
const codeConnLost = -1

// client is one live WebSocket. Its reader goroutine only reads (control frames,
// discarded data); its writer goroutine is the only one that writes.
type client struct {
	g      *Gateway
	h      *hub
	conn   *websocket.Conn
	wc     *wsConn // conn's transport: the writer sends data frames through it
	params liveParams

	wake     chan struct{} // capacity 1: "look at the queue"
	readDone chan struct{}

	mu        sync.Mutex
	q         *sendQueue[[]byte] // complete WebSocket frames, shared with other clients: never modified
	closeCode int                // non-zero: the writer sends this close and stops
	closeText string
	pong      *string // payload of a ping to answer
}

func newClient(g *Gateway, h *hub, conn *websocket.Conn, wc *wsConn, p liveParams) *client {
	return &client{
		g:        g,
		h:        h,
		conn:     conn,
		wc:       wc,
		params:   p,
		wake:     make(chan struct{}, 1),
		readDone: make(chan struct{}),
		q:        newSendQueue[[]byte](g.cfg.SendQueue),
	}
}

func (c *client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// push queues a frame for key without ever blocking on the network. It reports
// false when the client is closing, including when this push overflowed its queue.
func (c *client) push(key string, frame []byte) bool {
	c.mu.Lock()
	if c.closeCode != 0 {
		c.mu.Unlock()
		return false
	}
	switch c.q.push(key, frame) {
	case pushConflated:
		c.g.m.framesConflate.Inc()
	case pushOverflow:
		c.closeCode, c.closeText = CloseTooSlow, "too slow: send queue overflow"
		c.q.reset()
	}
	ok := c.closeCode == 0
	c.mu.Unlock()
	c.signal()
	return ok
}

// closeWith asks the writer to close with code; the first request wins.
func (c *client) closeWith(code int, text string) {
	c.mu.Lock()
	if c.closeCode == 0 {
		c.closeCode, c.closeText = code, text
		c.q.reset()
	}
	c.mu.Unlock()
	c.signal()
}

// readLoop handles pongs, pings and close frames, and discards anything else.
func (c *client) readLoop() {
	defer close(c.readDone)
	wait := c.g.cfg.PongWait
	c.conn.SetReadLimit(readLimit)
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(wait))
	})
	// Ping and close are answered by the writer, not here (gorilla's default
	// handlers would write from this goroutine).
	c.conn.SetPingHandler(func(data string) error {
		c.mu.Lock()
		c.pong = &data
		c.mu.Unlock()
		c.signal()
		return c.conn.SetReadDeadline(time.Now().Add(wait))
	})
	c.conn.SetCloseHandler(func(int, string) error {
		c.closeWith(CloseNormal, "")
		return nil
	})
	for {
		if _, _, err := c.conn.NextReader(); err != nil {
			c.closeWith(classifyReadError(err))
			return
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	}
}

func classifyReadError(err error) (int, string) {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		return CloseNormal, ""
	case errors.Is(err, websocket.ErrReadLimit):
		return CloseTooBig, "message too big: this socket only sends"
	case errors.As(err, &ne) && ne.Timeout():
		return ClosePingTimeout, "ping timeout"
	}
	return codeConnLost, ""
}

// writeLoop is the only goroutine that writes to the connection: queued
// frames in order, pings, pongs and the final close frame.
func (c *client) writeLoop() {
	reason := "write_error"
	defer func() {
		c.h.remove(c)
		_ = c.conn.Close()
		c.g.active.Add(-1)
		c.g.releaseLive(c.params.Principal.ID)
		c.g.m.clients.Dec()
		c.g.m.dropped.WithLabelValues(reason).Inc()
		c.g.writers.Done()
	}()
	wt := c.g.cfg.WriteTimeout
	ping := time.NewTicker(c.g.cfg.PingInterval)
	defer ping.Stop()
	batch := make([][]byte, 0, writeBatch)
	for {
		select {
		case <-c.wake:
		case <-ping.C:
			if !c.g.deps.Auth.Live(c.params.Principal) {
				reason = c.sendClose(CloseRevoked, "identity revoked; sign in again")
				return
			}
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wt)); err != nil {
				return
			}
			continue
		}
		for {
			c.mu.Lock()
			code, text, pong := c.closeCode, c.closeText, c.pong
			c.pong = nil
			batch = c.q.pop(batch[:0], writeBatch)
			c.mu.Unlock()
			if pong != nil && code == 0 {
				if err := c.conn.WriteControl(websocket.PongMessage, []byte(*pong), time.Now().Add(wt)); err != nil {
					return
				}
			}
			if code != 0 {
				reason = c.sendClose(code, text)
				return
			}
			if len(batch) == 0 {
				break
			}
			// One deadline and one writev(2) per batch.
			n := len(batch)
			if err := c.wc.writeFrames(batch, time.Now().Add(wt)); err != nil {
				return
			}
			c.g.m.framesSent.Add(float64(n))
			clear(batch)
		}
	}
}

// sendClose writes the close frame and waits briefly for the client's reply.
func (c *client) sendClose(code int, text string) (reason string) {
	if code == codeConnLost {
		return "connection_lost"
	}
	err := c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text),
		time.Now().Add(c.g.cfg.WriteTimeout))
	if err == nil && code != CloseNormal {
		t := time.NewTimer(closeGrace)
		defer t.Stop()
		select {
		case <-c.readDone:
		case <-t.C:
		}
	}
	return closeReason(code)
}
