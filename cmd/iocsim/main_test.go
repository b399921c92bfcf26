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
		{"water and weather default to the simulator's", nil, nil, func(c config) bool {
			sc := c.sim(nil)
			return c.Water == 4 && c.Weather == 4 && sc.Water == 4 && sc.Weather == 4
		}, "water 4, weather 4"},
		{"water and weather from env", nil, map[string]string{"IOCSIM_WATER": "2", "IOCSIM_WEATHER": "-1"}, func(c config) bool {
			sc := c.sim(nil)
			return c.Water == 2 && c.Weather == -1 && sc.Water == 2 && sc.Weather == -1
		}, "water 2, weather -1 (none)"},
		{"water and weather flags over env", []string{"--water", "0", "--weather", "9"}, map[string]string{"IOCSIM_WATER": "7", "IOCSIM_WEATHER": "-1"},
			func(c config) bool {
				sc := c.sim(nil)
				return c.Water == 0 && c.Weather == 9 && sc.Water == 0 && sc.Weather == 9
			}, "water 0 (the simulator's default), weather 9, from the flags"},
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
		{"bad env water", nil, map[string]string{"IOCSIM_WATER": "some"}, "IOCSIM_WATER"},
		{"bad env weather", nil, map[string]string{"IOCSIM_WEATHER": "4.5"}, "IOCSIM_WEATHER"},
		{"bad water flag", []string{"--water", "x"}, nil, "-water"},
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
	err := run(context.Background(), []string{"--check-config", "--token", "secret", "--seed", "9", "--water", "-1"},
		envOf(map[string]string{"IOCSIM_WEATHER": "6"}), &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "seed=9") || !strings.Contains(got, "water=-1 weather=6") || strings.Contains(got, "secret") {
		t.Errorf("check-config printed %q; want seed=9, water=-1 weather=6 and no token", got)
	}
}

// TestRunWaterWeather counts the water and weather items one round sends:
// none for a negative count, the default for 0.
func TestRunWaterWeather(t *testing.T) {
	tests := []struct {
		name          string
		args          []string
		env           map[string]string
		water, weathr int
	}{
		{"flags", []string{"--water", "-1", "--weather", "2"}, nil, 0, 2},
		{"env", nil, map[string]string{"IOCSIM_WATER": "3", "IOCSIM_WEATHER": "-5"}, 3, 0},
		{"zero is the default", []string{"--water", "0"}, map[string]string{"IOCSIM_WEATHER": "0"}, 4, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu    sync.Mutex
				items = map[string]int{}
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var got []json.RawMessage
				if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
					t.Errorf("%s: %v", r.URL.Path, err)
				}
				mu.Lock()
				items[r.URL.Path] += len(got)
				mu.Unlock()
				w.WriteHeader(http.StatusAccepted)
				_, _ = io.WriteString(w, `{"results":[]}`)
			}))
			defer srv.Close()
			args := append([]string{"--once", "--url", srv.URL, "--token", "t", "--stations", "1", "--segments", "1"}, tt.args...)
			if err := run(context.Background(), args, envOf(tt.env), io.Discard, io.Discard); err != nil {
				t.Fatal(err)
			}
			if got := items["/v1/feeds/water"]; got != tt.water {
				t.Errorf("water items: got %d; want %d", got, tt.water)
			}
			if got := items["/v1/feeds/weather"]; got != tt.weathr {
				t.Errorf("weather items: got %d; want %d", got, tt.weathr)
			}
		})
	}
}
