// Command iocload offers an end-to-end load to a running iochub hub: FIWARE
// AirQualityObserved batches POSTed to /v1/feeds/air, and the POST → frame
// latency read on the hub's live view (/v1/live). It shares no code with the
// hub's ingest or gateway (see internal/loadgen).
//
//	iocload -url http://127.0.0.1:8080 -token $TOKEN -province 01 -rate 20000 -duration 60s
//
// The stations stand on a grid over -bbox, which must lie inside the
// province's units; the token's source must be allowed to post there and
// its ingest limits (--source-rate, --source-concurrency) must let -workers
// requests through.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/iochub/iochub/internal/loadgen"
)

func main() {
	var cfg loadgen.Config
	var bbox string
	asJSON := false
	flag.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "the hub's base URL (ingest and gateway)")
	flag.StringVar(&cfg.Token, "token", os.Getenv("IOCHUB_TOKEN"), "bearer token of a source that may post in the province and read its live view (IOCHUB_TOKEN)")
	flag.StringVar(&cfg.Province, "province", "01", "province whose live view is read")
	flag.IntVar(&cfg.Stations, "stations", 2000, "stations")
	flag.IntVar(&cfg.Batch, "batch", 200, "items per POST")
	flag.Float64Var(&cfg.Rate, "rate", 5000, "events per second offered; 0 means as fast as the hub answers")
	flag.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long to send")
	flag.IntVar(&cfg.Workers, "workers", 4, "POSTs in flight at once")
	flag.DurationVar(&cfg.Drain, "drain", 30*time.Second, "longest wait after the last POST for the live view to catch up")
	flag.StringVar(&bbox, "bbox", "105.80,21.00,105.86,21.05", "west,south,east,north of the stations' grid")
	flag.BoolVar(&asJSON, "json", false, "print the result as JSON")
	flag.Parse()
	box, err := parseBBox(bbox)
	if err != nil {
		fmt.Fprintln(os.Stderr, "iocload: -bbox:", err)
		os.Exit(2)
	}
	cfg.BBox = box
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := loadgen.Run(ctx, cfg)
	if asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
			"offered": res.Offered, "accepted": res.Accepted, "rejected": res.Rejected, "seen": res.Seen,
			"behind": res.Behind, "offeredPerSecond": res.OfferedRate(), "storedPerSecond": res.StoredRate(),
			"p50Ms": ms(res.P50), "p99Ms": ms(res.P99), "maxMs": ms(res.Max), "firstError": res.FirstError,
		})
	} else {
		fmt.Println(res)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "iocload:", err)
		os.Exit(1)
	}
	if res.Behind > 0 || res.Accepted == 0 {
		os.Exit(1)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func parseBBox(s string) ([4]float64, error) {
	var b [4]float64
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		return b, fmt.Errorf("want west,south,east,north; got %q", s)
	}
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return b, err
		}
		b[i] = f
	}
	if b[0] >= b[2] || b[1] >= b[3] {
		return b, fmt.Errorf("west must be below east and south below north: %q", s)
	}
	return b, nil
}
