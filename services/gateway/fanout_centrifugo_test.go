package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/testkit"
)

// centrifugoEnv names the Centrifugo binary BenchmarkFanoutLoad compares
// the hub with. scripts/bench.sh builds it from tools/centrifugo/go.mod (the
// Centrifugo version pinned there) and sets it; without it the comparison is
// not in the run (it says so).
const centrifugoEnv = "CENTRIFUGO_BIN"

// startCentrifugoServer runs Centrifugo as a process of its own on
// loopback, as issue 12 compared it: the memory engine, no history, every
// client anonymous and subscribed to one channel (insecure mode: no token
// to check), its defaults otherwise (queue, write batching, slow-client
// limit). The publisher posts each update to its HTTP API with the bytes the
// hub sends as a state (decoded and encoded once, as for the bare gorilla
// server), one request at a time in order on one kept-alive connection, off
// the schedule's loop (an update that waits for the one before is late, and
// its lateness counts against the server). Its clients send connect and
// subscribe commands and count as ready at the subscribe's reply. Server
// cores are Centrifugo's CPU plus this process's (the publisher); the idle
// memory is Centrifugo's resident set (idle_rss_B/conn), since its heap is
// not this process's.
func startCentrifugoServer(b *testing.B, cfg loadConfig) loadServer {
	bin := os.Getenv(centrifugoEnv)
	port := loopbackPort(b)
	conf, err := json.Marshal(map[string]any{
		"http_server": map[string]any{"address": "127.0.0.1", "port": port},
		"log":         map[string]any{"level": "error"},
		"client": map[string]any{
			"insecure":        true,
			"allowed_origins": []string{"*"},
			// Longer than the run: the load's clients do not answer
			// pings, and the first dialed waits for the last.
			"ping_interval": "600s",
			"pong_timeout":  "60s",
		},
		"http_api": map[string]any{"insecure": true},
		"health":   map[string]any{"enabled": true},
	})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		b.Fatal(err)
	}
	logs := testkit.LockedBuffer{Limit: 1 << 20} // its log at level error: the first MiB
	cmd := exec.Command(bin, "--config", path)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting Centrifugo (%s=%s): %v", centrifugoEnv, bin, err)
	}
	pid := cmd.Process.Pid
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Timeout: 10 * time.Second}

	// The publisher: one request at a time, in order.
	pubs := make(chan []byte, cfg.Rate*cfg.Seconds)
	published := make(chan struct{})
	var pubErr error
	go func() {
		defer close(published)
		for body := range pubs {
			if err := centrifugoCall(client, base+"/api/publish", body, nil); err != nil && pubErr == nil {
				pubErr = err
			}
		}
	}()
	b.Cleanup(func() {
		close(pubs)
		<-published
		if pubErr != nil {
			b.Errorf("publishing to Centrifugo: %v", pubErr)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if b.Failed() {
			b.Logf("Centrifugo's log:\n%s", logs.String())
		}
	})

	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := client.Get(base + "/health")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("Centrifugo not healthy within a minute: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling its health endpoint
	}

	states := loadStates(b, cfg)
	return loadServer{
		url:   "ws://127.0.0.1:" + strconv.Itoa(port) + "/connection/websocket",
		hello: `{"id":1,"connect":{}}` + "\n" + `{"id":2,"subscribe":{"channel":"01"}}`,
		ready: `"id":2`,
		connected: func() int {
			var info struct {
				Result struct {
					Nodes []struct {
						NumClients int `json:"num_clients"`
						NumSubs    int `json:"num_subs"`
					} `json:"nodes"`
				} `json:"result"`
			}
			if err := centrifugoCall(client, base+"/api/info", []byte(`{}`), &info); err != nil || len(info.Result.Nodes) == 0 {
				return 0
			}
			return min(info.Result.Nodes[0].NumClients, info.Result.Nodes[0].NumSubs)
		},
		publish: func(k int) {
			f, ok := loadFeature(b, states, k)
			if !ok {
				return
			}
			body := make([]byte, 0, len(f)+32)
			body = append(body, `{"channel":"01","data":`...)
			body = append(body, f...)
			body = append(body, '}')
			pubs <- body
		},
		cpu: func() time.Duration { return processCPU(b, pid) + cpuTime() },
		rss: func() int64 { return processRSS(b, pid) },
	}
}

// centrifugoCall posts body to one of Centrifugo's API methods and decodes
// its answer into out (when not nil); an answer with an error is one.
func centrifugoCall(c *http.Client, url string, body []byte, out any) error {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, data)
	}
	var answer struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &answer); err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	if answer.Error != nil {
		return fmt.Errorf("%s: error %d: %s", url, answer.Error.Code, answer.Error.Message)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// loopbackPort is a TCP port free on loopback a moment ago.
func loopbackPort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// processCPU is the CPU time (user and system) of process pid so far.
func processCPU(tb testing.TB, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// The fields after the command's name, which ends at the last ')':
	// state is the first, utime the 12th, stime the 13th.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(fields) < 13 {
		tb.Fatalf("/proc/%d/stat: %d fields after the name", pid, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			tb.Fatal(err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// clockTicks is the kernel's USER_HZ, the unit of /proc's CPU times: 100 on
// every Linux architecture Go builds for.
const clockTicks = 100

// processRSS is the resident set of process pid, in bytes.
func processRSS(tb testing.TB, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatalf("/proc/%d/status has no VmRSS", pid)
	return 0
}
