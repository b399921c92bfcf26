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

// writeBatch is how many events an event stream's writer takes from its queue
// per lock (handler_streams.go).
const writeBatch = 64

// codeConnLost marks a connection that broke under us: no close frame is sent.
const codeConnLost = -1

// client is one live WebSocket. Its reader goroutine only reads (control frames,
// discarded data). Its writer goroutine is the only one that writes; it runs
// only while there is something to write (a tick, a ping, a pong, the close),
// so an idle client holds no writer, no stack and no buffer beyond its reader's.
type client struct {
	g      *Gateway
	h      *hub
	conn   *websocket.Conn
	wc     *wsConn // conn's transport: the writer sends data frames through it
	params liveParams

	readDone chan struct{}

	// Guarded by the hub's mutex: the client's group, the hub's tick it has
	// taken (written or being written), and the frames it gets first (the
	// snapshot and the roll-ups).
	grp   *group
	seq   uint64
	first [][]byte
	// building: its snapshot is being built outside the hub's lock (hub.add);
	// its writer takes nothing until it is first in first.
	building bool

	mu        sync.Mutex
	running   bool // a writer goroutine runs
	finished  bool // the writer has closed the connection: none runs again
	dirty     bool // woken since the writer last looked
	pingDue   bool // the writer is to ping (and check the identity)
	closeCode int  // non-zero: the writer sends this close and stops
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
		readDone: make(chan struct{}),
	}
}

// wake tells the writer to look at the hub, starting one if none runs.
func (c *client) wake() {
	c.mu.Lock()
	c.dirty = true
	c.startLocked()
	c.mu.Unlock()
}

// ping asks the writer for a ping.
func (c *client) ping() {
	c.mu.Lock()
	c.pingDue = true
	c.startLocked()
	c.mu.Unlock()
}

func (c *client) startLocked() {
	if c.running || c.finished {
		return
	}
	c.running = true
	go c.writeLoop()
}

// closeWith asks the writer to close with code; the first request wins.
func (c *client) closeWith(code int, text string) {
	c.mu.Lock()
	if c.closeCode == 0 {
		c.closeCode, c.closeText = code, text
	}
	c.startLocked()
	c.mu.Unlock()
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
		c.startLocked()
		c.mu.Unlock()
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

// writeLoop is the only goroutine that writes to the connection: what the hub
// has for it, pings, pongs and the final close frame. It returns when there is
// nothing left to write, and is started again by the next wake, ping, pong or close.
func (c *client) writeLoop() {
	var bufs [][]byte
	wt := c.g.cfg.WriteTimeout
	for {
		c.mu.Lock()
		c.dirty = false
		code, text, pong, ping := c.closeCode, c.closeText, c.pong, c.pingDue
		c.pong, c.pingDue = nil, false
		c.mu.Unlock()
		if code != 0 {
			c.finish(c.sendClose(code, text))
			return
		}
		if pong != nil {
			if err := c.conn.WriteControl(websocket.PongMessage, []byte(*pong), time.Now().Add(wt)); err != nil {
				c.finish("write_error")
				return
			}
		}
		if ping {
			if !c.g.deps.Auth.Live(c.params.Principal) {
				c.finish(c.sendClose(CloseRevoked, "identity revoked; sign in again"))
				return
			}
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wt)); err != nil {
				c.finish("write_error")
				return
			}
		}
		c.h.mu.Lock()
		bufs, frames, conflated := c.h.takeLocked(c, bufs[:0])
		c.h.mu.Unlock()
		if conflated > 0 {
			c.g.m.framesConflate.Add(float64(conflated))
		}
		if len(bufs) > 0 {
			// One deadline and one write for everything the hub has for us.
			if err := c.wc.writeFrames(bufs, time.Now().Add(wt)); err != nil {
				c.finish("write_error")
				return
			}
			c.g.m.framesSent.Add(float64(frames))
			clear(bufs)
		}
		c.mu.Lock()
		if !c.dirty && c.closeCode == 0 && c.pong == nil && !c.pingDue {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// finish ends the client after its writer's last write.
func (c *client) finish(reason string) {
	c.mu.Lock()
	c.finished = true
	c.mu.Unlock()
	c.h.remove(c)
	_ = c.conn.Close()
	c.g.active.Add(-1)
	c.g.releaseLive(c.params.Principal.ID)
	c.g.m.clients.Dec()
	c.g.m.dropped.WithLabelValues(reason).Inc()
	c.g.writers.Done()
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
