package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/iochub/iochub/internal/testenv"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// BenchmarkFanout delivers state frames to N clients three ways, in one run:
//
//   - gateway: STATE message published on JetStream → hub (decode, encode the
//     Feature once) → every client's conflating queue → its writer → socket;
//   - hub: the same minus NATS (the Feature is encoded and fanned out in process);
//   - gorilla: the baseline, a bare gorilla/websocket server with one writer
//     goroutine per connection writing the same frame bytes (no NATS, no queue).
//
// Each op is one state delivered to all N clients; frames/s counts frames
// received by clients. Every state is a distinct entity, so nothing conflates
// and every client receives every frame.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("gateway/clients=%d", n), func(b *testing.B) { benchGateway(b, n, true) })
		b.Run(fmt.Sprintf("hub/clients=%d", n), func(b *testing.B) { benchGateway(b, n, false) })
		b.Run(fmt.Sprintf("gorilla/clients=%d", n), func(b *testing.B) { benchGorilla(b, n) })
	}
}

// counter reads frames off n connections until each has seen want frames.
type counter struct {
	wg   sync.WaitGroup
	want atomic.Int64
	errs chan error
}

func (c *counter) read(conn *websocket.Conn) {
	defer c.wg.Done()
	for got := int64(0); got < c.want.Load(); got++ {
		_, r, err := conn.NextReader()
		if err != nil {
			c.errs <- err
			return
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			c.errs <- err
			return
		}
	}
}

func (c *counter) wait(b *testing.B) {
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case err := <-c.errs:
		b.Fatalf("client: %v", err)
	case <-time.After(5 * time.Minute):
		b.Fatal("clients did not receive every frame")
	}
}

func benchStates(b *testing.B) []*iocv1.EntityState {
	sts := make([]*iocv1.EntityState, b.N)
	for i := range sts {
		sts[i] = airState(b, fmt.Sprintf("bench-%d", i), 0, float64(i%500))
	}
	return sts
}

func benchGateway(b *testing.B, n int, viaNATS bool) {
	env := testenv.NATS(b)
	// Every client signs in as the same test identity: lift its limit of live views.
	g, err := New(Config{SendQueue: 1 << 22, WriteTimeout: time.Minute, MaxClientsPerIdentity: n + 1, OpenRate: -1}, Deps{JS: env.JS, Auth: testAuth(b, nil)})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	g.Register(mux)
	srv := httptest.NewServer(withTestToken(mux))
	defer srv.Close()
	defer g.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/live?province=01"

	c := &counter{errs: make(chan error, n)}
	c.want.Store(int64(b.N))
	for i := 0; i < n; i++ {
		conn, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		if _, _, err := conn.ReadMessage(); err != nil { // the snapshot
			b.Fatal(err)
		}
		c.wg.Add(1)
		go c.read(conn)
	}
	sts := benchStates(b)
	msgs := make([]*nats.Msg, len(sts))
	for i, st := range sts {
		msgs[i] = stateMsg(b, st)
	}
	g.mu.Lock()
	h := g.hubs["01"]
	g.mu.Unlock()

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if viaNATS {
		for i, m := range msgs {
			if _, err := env.JS.PublishMsgAsync(m); err != nil {
				b.Fatal(err)
			}
			if i%1000 == 999 {
				<-env.JS.PublishAsyncComplete()
			}
		}
	} else {
		for _, st := range sts {
			f, err := encodeFeature(st, "")
			if err != nil {
				b.Fatal(err)
			}
			h.publish(f)
		}
	}
	c.wait(b)
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "frames/s")
}

func benchGorilla(b *testing.B, n int) {
	st := airState(b, "bench", 0, 1)
	f, err := encodeFeature(st, "")
	if err != nil {
		b.Fatal(err)
	}
	frameBytes := stateFrame(f.json)

	var mu sync.Mutex
	var queues []chan []byte
	connected := make(chan struct{}, n)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		q := make(chan []byte, 1024)
		mu.Lock()
		queues = append(queues, q)
		mu.Unlock()
		connected <- struct{}{}
		go func() {
			defer conn.Close()
			for m := range q {
				if err := conn.WriteMessage(websocket.TextMessage, m); err != nil {
					return
				}
			}
		}()
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	c := &counter{errs: make(chan error, n)}
	c.want.Store(int64(b.N))
	for i := 0; i < n; i++ {
		conn, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		<-connected
		c.wg.Add(1)
		go c.read(conn)
	}
	defer func() {
		for _, q := range queues {
			close(q)
		}
	}()

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for _, q := range queues {
			q <- frameBytes
		}
	}
	c.wait(b)
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "frames/s")
}
