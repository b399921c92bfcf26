package aggregator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// Stop-gap until internal/testenv lands: an in-process NATS server with the
// streams, and a fresh migrated database on the machine's PostgreSQL.

type natsEnv struct {
	URL  string
	Conn *nats.Conn
	JS   jetstream.JetStream
}

func testNATS(t *testing.T) *natsEnv {
	t.Helper()
	srv, err := natsx.StartEmbedded(natsx.EmbeddedConfig{StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatalf("starting NATS: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := natsx.Connect(srv.ClientURL(), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := natsx.EnsureStreams(ctx, js, natsx.StreamOptions{}); err != nil {
		t.Fatalf("creating streams: %v", err)
	}
	return &natsEnv{URL: srv.ClientURL(), Conn: nc, JS: js}
}

func testDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	admin := os.Getenv("IOCHUB_TEST_PG")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("connecting to PostgreSQL at %s: %v", admin, err)
		}
		t.Skipf("no PostgreSQL at %s: %v", admin, err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "iochub_aggregator_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			t.Errorf("dropping database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	if err := postgis.Migrate(ctx, url); err != nil {
		t.Fatalf("migrating %s: %v", name, err)
	}
	pool, err := postgis.Open(ctx, url)
	if err != nil {
		t.Fatalf("opening %s: %v", name, err)
	}
	t.Cleanup(pool.Close)
	return pool
}
