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
