package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/services/aggregator"
)

// TestPartitionedAggregators runs `serve --target=ingest` and two
// `serve --target=aggregator --partitioned` on one NATS and one database:
// the two share the 34 provinces (17 each), items of Hà Nội and Hồ Chí Minh
// City are stored once, and each answers /readyz with its partitions' check.
func TestPartitionedAggregators(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	in := startHubTB(t, "ingest", n, db)
	aggs := map[string]*hub{}
	for _, name := range []string{"agg-a", "agg-b"} {
		aggs[name] = startHubTB(t, "aggregator", n, db, func(c *config) {
			c.Aggregator.Partition = aggregator.PartitionConfig{Enabled: true, Instance: name, LeaseTTL: aggregator.MinLeaseTTL}
		})
	}
	kv, err := n.JS.KeyValue(context.Background(), aggregator.DefaultLeaseBucket)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, time.Minute, "17 provinces leased by each aggregator", func() (bool, string) {
		by := map[string]int{}
		kl, err := kv.ListKeysFiltered(context.Background(), "partitions.>")
		if err != nil {
			return false, err.Error()
		}
		for k := range kl.Keys() {
			if e, err := kv.Get(context.Background(), k); err == nil {
				by[string(e.Value())]++
			}
		}
		return by["agg-a"] == 17 && by["agg-b"] == 17, fmt.Sprintf("%v", by)
	})

	at := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	var items []any
	for i := range 20 {
		lon, lat := 105.8342, 21.0278 // Hà Nội
		if i%2 == 1 {
			lon, lat = 106.7009, 10.7769 // Hồ Chí Minh City
		}
		items = append(items, airItem(t, fmt.Sprintf("part-%d", i), fmt.Sprintf("part-st-%d", i%4), lon, lat, at.Add(time.Duration(i)*time.Second)))
	}
	if code, res, raw := post(t, in.url+"/v1/feeds/air", devToken, items); code != http.StatusAccepted || res.Accepted != len(items) {
		t.Fatalf("POST = %d %s", code, raw)
	}
	testkit.Eventually(t, time.Minute, "20 rows in two provinces", func() (bool, string) {
		var rows, provinces int
		if err := db.Pool.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT province) FROM air_observation").Scan(&rows, &provinces); err != nil {
			t.Fatal(err)
		}
		return rows == 20 && provinces == 2, fmt.Sprintf("%d rows in %d provinces", rows, provinces)
	})
	for name, h := range aggs {
		resp, err := http.Get(h.url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"aggregator":"ok"`) {
			t.Errorf("%s /readyz = %d %s; want 200 with the aggregator's check", name, resp.StatusCode, body)
		}
	}
}
