package gateway

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/testenv"
)

// TestOGCSlowReaderFreesItsConnection: a client that asks for a large page
// of units and does not read it holds a connection of the read pool only
// until FeaturesWriteTimeout; the other reads of the gateway (here on a
// pool of one connection) go on after it. Without the write deadline the
// page's query stays blocked on its send, past every statement_timeout, and
// the second read waits for ever.
func TestOGCSlowReaderFreesItsConnection(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	seedOGC(t, ctx, db)
	// 60 units of 8,000 vertices: some 17 MB of GeoJSON, more than the
	// socket buffers of loopback take.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from)
		SELECT 'big-' || i, 'commune', '01', 'Lớn ' || i,
		       ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(105.4 + i * 0.01, 21.0), 4326), 0.004, 'quad_segs=2000')), '2025-07-01'
		FROM generate_series(1, 60) i`); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	l := &fakeLoader{}
	a := testAuth(t, l)
	g, err := New(Config{FeaturesWriteTimeout: time.Second}, Deps{JS: testenv.NATS(t).JS, Pool: pool, Metrics: prometheus.NewRegistry(), Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveGateway(t, g, withTestToken, ValidURL)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}

	// The slow reader: asks, reads the status line, then nothing.
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := fmt.Fprintf(conn, "GET /ogc/collections/units/items?limit=1000 HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", u.Host, testToken); err != nil {
		t.Fatal(err)
	}
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || status != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("the large page's status line: %q, %v", status, err)
	}

	// Another read, on the pool's one connection.
	client := &http.Client{Timeout: 30 * time.Second}
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/ogc/collections/units/items?limit=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("a read while a client does not read its page: %v; want it answered once the page's write times out", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a read while a client does not read its page: HTTP %d; want 200", resp.StatusCode)
	}
}
