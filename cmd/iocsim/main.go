// Command iocsim sends realistic live feeds for Hà Nội's wards — air-quality
// stations, road segments, water and weather stations, an occasional alert —
// to an iochub ingest over
// HTTP, as FIWARE keyValues batches. It is the demo feed and the load
// generator (--once, or --rounds N with a short --interval).
//
//	iocsim --url http://127.0.0.1:8080 --token TOKEN [--stations 30] [--segments 60]
//	       [--water 4] [--weather 4] [--interval 5s] [--alert-every 2m] [--seed 1] [--once | --rounds N] [--max-batch 5000]
//
// Flags take precedence over IOCSIM_* environment variables (IOCSIM_URL,
// IOCSIM_TOKEN, IOCSIM_STATIONS, ...), which take precedence over defaults.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/iochub/iochub/internal/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "iocsim:", err)
		os.Exit(1)
	}
}

// config is every setting; precedence flag, then IOCSIM_<NAME>, then defaults().
type config struct {
	URL        string        // ingest base URL
	Token      string        // bearer token of the source
	Stations   int           // air-quality stations; negative = none
	Segments   int           // road segments; negative = none
	Water      int           // water stations; 0 = sim.DefaultWater, negative = none
	Weather    int           // weather stations; 0 = sim.DefaultWeather, negative = none
	Interval   time.Duration // time between rounds
	AlertEvery time.Duration // simulated time between alerts; 0 = never
	Seed       int64         // same seed, same entities
	Once       bool          // send one round and exit
	Rounds     int           // rounds before exit; 0 = until interrupted
	MaxBatch   int           // most items per POST
	LogLevel   string        // debug, info, warn, error
	LogFormat  string        // text or json
	Check      bool          // validate, print the configuration and exit
}

func defaults() config {
	return config{
		URL:        "http://127.0.0.1:8080",
		Stations:   sim.DefaultStations,
		Segments:   sim.DefaultSegments,
		Water:      sim.DefaultWater,
		Weather:    sim.DefaultWeather,
		Interval:   sim.DefaultInterval,
		AlertEvery: sim.DefaultAlertEvery,
		Seed:       1,
		MaxBatch:   sim.DefaultMaxBatch,
		LogLevel:   "info",
		LogFormat:  "text",
	}
}

// envValues reads IOCSIM_* over the defaults; a malformed value is an error
// naming the variable, not a silent fallback.
func envValues(getenv func(string) string) (config, error) {
	c := defaults()
	var errs []error
	str := func(name string, dst *string) {
		if v := getenv("IOCSIM_" + name); v != "" {
			*dst = v
		}
	}
	num := func(name string, dst *int) {
		if v := getenv("IOCSIM_" + name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("IOCSIM_%s=%q: want an integer", name, v))
				return
			}
			*dst = n
		}
	}
	dur := func(name string, dst *time.Duration) {
		if v := getenv("IOCSIM_" + name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("IOCSIM_%s=%q: want a duration such as 5s", name, v))
				return
			}
			*dst = d
		}
	}
	str("URL", &c.URL)
	str("TOKEN", &c.Token)
	num("STATIONS", &c.Stations)
	num("SEGMENTS", &c.Segments)
	num("WATER", &c.Water)
	num("WEATHER", &c.Weather)
	dur("INTERVAL", &c.Interval)
	dur("ALERT_EVERY", &c.AlertEvery)
	if v := getenv("IOCSIM_SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("IOCSIM_SEED=%q: want an integer", v))
		}
		c.Seed = n
	}
	num("ROUNDS", &c.Rounds)
	num("MAX_BATCH", &c.MaxBatch)
	str("LOG_LEVEL", &c.LogLevel)
	str("LOG_FORMAT", &c.LogFormat)
	return c, errors.Join(errs...)
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	c, err := envValues(getenv)
	if err != nil {
		return c, err
	}
	fs := flag.NewFlagSet("iocsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.URL, "url", c.URL, "ingest base URL (IOCSIM_URL)")
	fs.StringVar(&c.Token, "token", c.Token, "bearer token of the source (IOCSIM_TOKEN)")
	fs.IntVar(&c.Stations, "stations", c.Stations, fmt.Sprintf("air-quality stations; 0 for the default %d, negative for none (IOCSIM_STATIONS)", sim.DefaultStations))
	fs.IntVar(&c.Segments, "segments", c.Segments, fmt.Sprintf("road segments; 0 for the default %d, negative for none (IOCSIM_SEGMENTS)", sim.DefaultSegments))
	fs.IntVar(&c.Water, "water", c.Water, fmt.Sprintf("water-level stations (with alarm levels); 0 for the default %d, negative for none (IOCSIM_WATER)", sim.DefaultWater))
	fs.IntVar(&c.Weather, "weather", c.Weather, fmt.Sprintf("weather stations; 0 for the default %d, negative for none (IOCSIM_WEATHER)", sim.DefaultWeather))
	fs.DurationVar(&c.Interval, "interval", c.Interval, "time between rounds; 0 means back to back (IOCSIM_INTERVAL)")
	fs.DurationVar(&c.AlertEvery, "alert-every", c.AlertEvery, "time between alerts; 0 for none (IOCSIM_ALERT_EVERY)")
	fs.Int64Var(&c.Seed, "seed", c.Seed, "random seed: the same seed places the same stations and segments (IOCSIM_SEED)")
	fs.BoolVar(&c.Once, "once", false, "send one round and exit")
	fs.IntVar(&c.Rounds, "rounds", c.Rounds, "rounds to send before exiting; 0 until interrupted (IOCSIM_ROUNDS)")
	fs.IntVar(&c.MaxBatch, "max-batch", c.MaxBatch, "most items in one POST; larger kinds are split (IOCSIM_MAX_BATCH)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (IOCSIM_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json (IOCSIM_LOG_FORMAT)")
	fs.BoolVar(&c.Check, "check-config", false, "validate the configuration, print it and exit")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.Once {
		if c.Rounds > 1 {
			return c, errors.New("--once and --rounds > 1 contradict each other")
		}
		c.Rounds = 1
	}
	if c.MaxBatch <= 0 {
		return c, fmt.Errorf("--max-batch %d: want at least 1", c.MaxBatch)
	}
	if c.Interval <= 0 {
		// A ticker needs a positive period; 1ms is as fast as a load generator needs.
		c.Interval = time.Millisecond
	}
	return c, nil
}

func (c config) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(c.LogFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	}
}

func (c config) sim(log *slog.Logger) sim.Config {
	return sim.Config{
		BaseURL:    c.URL,
		Token:      c.Token,
		Stations:   c.Stations,
		Segments:   c.Segments,
		Water:      c.Water,
		Weather:    c.Weather,
		Interval:   c.Interval,
		AlertEvery: alertEvery(c.AlertEvery),
		Rounds:     c.Rounds,
		Seed:       c.Seed,
		MaxBatch:   c.MaxBatch,
		Logger:     log,
	}
}

// alertEvery maps the flag (0 = no alerts) to sim.Config (0 = default, negative = never).
func alertEvery(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	sc := c.sim(log)
	if err := sc.Validate(); err != nil {
		return err
	}
	if c.Check {
		tok := "(none)"
		if c.Token != "" {
			tok = "(set)"
		}
		fmt.Fprintf(stdout, "url=%s token=%s stations=%d segments=%d water=%d weather=%d interval=%s alert-every=%s seed=%d rounds=%d\n",
			c.URL, tok, c.Stations, c.Segments, c.Water, c.Weather, c.Interval, c.AlertEvery, c.Seed, c.Rounds)
		return nil
	}
	s, err := sim.New(sc)
	if err != nil {
		return fmt.Errorf("starting simulator: %w", err)
	}
	runErr := s.Run(ctx)
	st := s.Stats()
	log.Info("simulator stopped", "rounds", st.Rounds, "batches", st.Batches, "failed", st.Failed,
		"retries", st.Retries, "items", st.Items, "accepted", st.Accepted, "duplicate", st.Duplicate,
		"rejected", st.Rejected)
	return runErr
}
