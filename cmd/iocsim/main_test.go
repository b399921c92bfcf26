package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParsePrecedence(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want func(c config) bool
		desc string
	}{
		{"defaults", nil, nil, func(c config) bool {
			return c.URL == "http://127.0.0.1:8080" && c.Stations == 30 && c.Segments == 60 && c.Interval == 5*time.Second && c.Rounds == 0
		}, "the defaults"},
		{"env over default", nil, map[string]string{"IOCSIM_STATIONS": "7", "IOCSIM_URL": "http://ingest:8080", "IOCSIM_INTERVAL": "1s"},
			func(c config) bool {
				return c.Stations == 7 && c.URL == "http://ingest:8080" && c.Interval == time.Second
			},
			"stations 7, url from env, interval 1s"},
		{"flag over env", []string{"--stations", "3", "--token", "flagtok"}, map[string]string{"IOCSIM_STATIONS": "7", "IOCSIM_TOKEN": "envtok"},
			func(c config) bool { return c.Stations == 3 && c.Token == "flagtok" }, "stations 3, token from the flag"},
		{"once is one round", []string{"--once"}, nil, func(c config) bool { return c.Rounds == 1 }, "rounds 1"},
		{"zero interval for load", []string{"--interval", "0s"}, nil, func(c config) bool { return c.Interval == time.Millisecond }, "interval 1ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(tt.args, envOf(tt.env), io.Discard)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !tt.want(c) {
				t.Errorf("got %+v; want %s", c, tt.desc)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad env int", nil, map[string]string{"IOCSIM_STATIONS": "many"}, "IOCSIM_STATIONS"},
		{"bad env duration", nil, map[string]string{"IOCSIM_INTERVAL": "5"}, "IOCSIM_INTERVAL"},
		{"once and rounds", []string{"--once", "--rounds", "3"}, nil, "--once"},
		{"stray argument", []string{"extra"}, nil, "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(tt.args, envOf(tt.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parse error = %v; want one naming %q", err, tt.want)
			}
		})
	}
}

func TestRunNeedsToken(t *testing.T) {
	err := run(context.Background(), []string{"--once"}, envOf(nil), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "Token") {
		t.Errorf("run without a token = %v; want an error naming the token", err)
	}
}

func TestRunOnce(t *testing.T) {
	var (
		mu    sync.Mutex
		paths = map[string]int{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			t.Errorf("Authorization = %q", r.Header.Get("Authorization"))
		}
		var items []json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&items); err != nil {
			t.Errorf("%s: %v", r.URL.Path, err)
		}
		mu.Lock()
		paths[r.URL.Path] += len(items)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"results":[]}`)
	}))
	defer srv.Close()
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"--once", "--stations", "4", "--segments", "5", "--log-format", "json"},
		envOf(map[string]string{"IOCSIM_URL": srv.URL, "IOCSIM_TOKEN": "tok"}), io.Discard, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	want := map[string]int{"/v1/feeds/air": 4, "/v1/feeds/traffic": 5, "/v1/feeds/alert": 1}
	for p, n := range want {
		if paths[p] != n {
			t.Errorf("%s: %d items; want %d", p, paths[p], n)
		}
	}
	if !strings.Contains(stderr.String(), `"msg":"simulator stopped"`) {
		t.Errorf("no closing summary in the log:\n%s", stderr.String())
	}
}

func TestRunNoAlerts(t *testing.T) {
	var alerts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/feeds/alert" {
			alerts++
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"results":[]}`)
	}))
	defer srv.Close()
	err := run(context.Background(), []string{"--once", "--url", srv.URL, "--token", "t", "--stations", "1", "--segments", "1", "--alert-every", "0"},
		envOf(nil), io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if alerts != 0 {
		t.Errorf("%d alert POSTs with --alert-every 0; want none", alerts)
	}
}

func TestCheckConfig(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"--check-config", "--token", "secret", "--seed", "9"}, envOf(nil), &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "seed=9") || strings.Contains(got, "secret") {
		t.Errorf("check-config printed %q; want seed=9 and no token", got)
	}
}
