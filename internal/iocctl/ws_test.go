package iocctl

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestTailWSResumes follows a fake /v1/streams over WebSocket that closes
// the first connection with 4004 (too slow) after 5 events: tail resumes
// with since=seq:5 and prints 1..12 once each; a 4003 close ends it.
func TestTailWSResumes(t *testing.T) {
	reconnectWait = 10 * time.Millisecond
	var (
		mu     sync.Mutex
		sinces []string
		conns  int
	)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer iocid_k" {
			http.Error(w, `{"detail":"no"}`, http.StatusUnauthorized)
			return
		}
		mu.Lock()
		conns++
		conn := conns
		sinces = append(sinces, r.URL.Query().Get("since"))
		mu.Unlock()
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		from := uint64(1)
		if s, ok := strings.CutPrefix(r.URL.Query().Get("since"), "seq:"); ok {
			n, _ := strconv.ParseUint(s, 10, 64)
			from = n + 1
		}
		for seq := from; seq <= 12; seq++ {
			ev := fmt.Sprintf(`{"specversion":"1.0","id":"e%d","source":"s","type":"t","iocseq":%d,"iocsubject":"ioc.feed.01.u.air","data":{}}`, seq, seq)
			if err := ws.WriteMessage(websocket.TextMessage, []byte(ev)); err != nil {
				return
			}
			if conn == 1 && seq == 5 {
				_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4004, "too slow"))
				return
			}
			if r.URL.Query().Get("subject") == "ioc.feed.79.>" && seq == 2 {
				_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(closeRevoked, "revoked"))
				return
			}
		}
		_, _, _ = ws.ReadMessage() // until the client goes
	}))
	defer srv.Close()
	out, errOut, err := run(t, Env{}, "tail", "ioc.feed.01.>", "--transport", "ws", "--url", srv.URL, "--key", "iocid_k", "--limit", "12", "--since", "seq:0")
	if err != nil {
		t.Fatalf("tail: %v\n%s", err, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 12 {
		t.Fatalf("%d events; want 12:\n%s", len(lines), out)
	}
	for i, l := range lines {
		if !strings.Contains(l, fmt.Sprintf(`"iocseq":%d,`, i+1)) {
			t.Fatalf("event %d = %s: a gap or a duplicate", i+1, l)
		}
	}
	mu.Lock()
	got := strings.Join(sinces, " ")
	mu.Unlock()
	if got != "seq:0 seq:5" {
		t.Errorf("since per connection %q; want seq:0 seq:5", got)
	}
	if _, _, err := run(t, Env{}, "tail", "ioc.feed.79.>", "--transport", "ws", "--url", srv.URL, "--key", "iocid_k"); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("revoked: %v", err)
	}
	if _, _, err := run(t, Env{}, "tail", "ioc.feed.01.>", "--transport", "ws", "--url", srv.URL, "--key", "iocid_bad"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("refused: %v", err)
	}
}

// TestTailWaitsOutTooManyRequests: a 429 (the identity opens streams too
// fast) is retried after its Retry-After, over SSE and WebSocket, not taken
// as a refusal that ends the tail; a 403 still ends it at once.
func TestTailWaitsOutTooManyRequests(t *testing.T) {
	reconnectWait = 10 * time.Millisecond
	var (
		mu    sync.Mutex
		calls int
		at    []time.Time
	)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		at = append(at, time.Now())
		mu.Unlock()
		if r.URL.Query().Get("subject") == "ioc.feed.79.>" {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"detail":"province 79 is not yours"}`))
			return
		}
		if n%2 == 1 { // every first attempt of a tail
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"detail":"identity k opens live views and event streams faster than 2 per second"}`))
			return
		}
		ev := func(seq int) string {
			return fmt.Sprintf(`{"specversion":"1.0","id":"e%d","source":"s","type":"t","iocseq":%d,"iocsubject":"ioc.feed.01.u.air","data":{}}`, seq, seq)
		}
		if websocket.IsWebSocketUpgrade(r) {
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer ws.Close()
			for seq := 1; seq <= 2; seq++ {
				_ = ws.WriteMessage(websocket.TextMessage, []byte(ev(seq)))
			}
			_, _, _ = ws.ReadMessage()
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for seq := 1; seq <= 2; seq++ {
			fmt.Fprintf(w, "id: %d\ndata: %s\n\n", seq, ev(seq))
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	for _, transport := range []string{"sse", "ws"} {
		out, errOut, err := run(t, Env{}, "tail", "ioc.feed.01.>", "--transport", transport, "--url", srv.URL, "--key", "iocid_k", "--limit", "2")
		if err != nil {
			t.Fatalf("%s tail after a 429: %v\n%s", transport, err, errOut)
		}
		if got := strings.Count(out, `"iocseq":`); got != 2 {
			t.Errorf("%s tail printed %d events; want 2:\n%s", transport, got, out)
		}
		if !strings.Contains(errOut, "faster than 2 per second") || !strings.Contains(errOut, "in 1s") {
			t.Errorf("%s tail's stderr %q; want the 429 told and its Retry-After waited", transport, errOut)
		}
		mu.Lock()
		waited := at[len(at)-1].Sub(at[len(at)-2])
		mu.Unlock()
		if waited < time.Second {
			t.Errorf("%s tail came back %s after the 429; want at least its Retry-After, 1s", transport, waited)
		}
	}
	if _, _, err := run(t, Env{}, "tail", "ioc.feed.79.>", "--url", srv.URL, "--key", "iocid_k"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("tail refused with 403: %v; want it ended with the refusal", err)
	}
}

// TestTailResumesWhereTheHubEndedIt: a tail from now (--since new) whose
// stream the hub ends before its first event (a restart: SSE event
// shutdown, WebSocket close 1001, each saying where the stream stood)
// resumes from there, not from what is new when it reconnects: an event
// published in between is not lost. The stream stood at 0 (empty) on
// WebSocket, at 7 on SSE.
func TestTailResumesWhereTheHubEndedIt(t *testing.T) {
	reconnectWait = 10 * time.Millisecond
	event := func(seq int) string {
		return fmt.Sprintf(`{"specversion":"1.0","id":"e%d","source":"s","type":"t","iocseq":%d,"iocsubject":"ioc.feed.01.u.air","data":{}}`, seq, seq)
	}
	var (
		mu    sync.Mutex
		asked []string // since= (WebSocket) or Last-Event-ID (SSE) per connection
	)
	record := func(v string) int {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, v)
		return len(asked)
	}
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			conn := record("since=" + r.URL.Query().Get("since"))
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer ws.Close()
			if conn == 1 {
				_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "gateway shutting down; resume with since=seq:0"))
				return
			}
			if r.URL.Query().Get("since") == "seq:0" { // the event published while tail reconnected
				_ = ws.WriteMessage(websocket.TextMessage, []byte(event(1)))
			}
			_ = ws.WriteMessage(websocket.TextMessage, []byte(event(2)))
			return
		}
		conn := record("Last-Event-ID=" + r.Header.Get("Last-Event-ID"))
		w.Header().Set("Content-Type", "text/event-stream")
		if conn == 1 {
			fmt.Fprint(w, ": iochub event stream\n\nevent: shutdown\ndata: {\"code\":1001,\"reason\":\"gateway shutting down; resume with since=seq:7\",\"lastSequence\":7,\"resume\":\"since=seq:7\"}\n\n")
			return
		}
		if r.Header.Get("Last-Event-ID") == "7" {
			fmt.Fprintf(w, "id: 8\ndata: %s\n\n", event(8))
		}
		fmt.Fprintf(w, "id: 9\ndata: %s\n\n", event(9))
	}))
	defer srv.Close()

	for _, tc := range []struct {
		transport string
		want      []string
		first     int
	}{
		{"ws", []string{"since=new", "since=seq:0"}, 1},
		{"sse", []string{"Last-Event-ID=", "Last-Event-ID=7"}, 8},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			mu.Lock()
			asked = nil
			mu.Unlock()
			out, errOut, err := run(t, Env{}, "tail", "ioc.feed.01.>", "--url", srv.URL, "--key", "iocid_k", "--transport", tc.transport, "--limit", "2")
			if err != nil {
				t.Fatalf("tail: %v\n%s", err, errOut)
			}
			mu.Lock()
			got := append([]string(nil), asked...)
			mu.Unlock()
			if len(got) != 2 || got[0] != tc.want[0] || got[1] != tc.want[1] {
				t.Errorf("connections asked %q; want %q", got, tc.want)
			}
			if !strings.Contains(out, fmt.Sprintf(`"iocseq":%d,`, tc.first)) {
				t.Errorf("printed %s; want the event %d published while tail reconnected", out, tc.first)
			}
		})
	}
}
