package aggregator

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iochub/iochub/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testNATS is an in-process NATS server with FEEDS and STATE.
func testNATS(t *testing.T) *testenv.NATSEnv { return testenv.NATS(t) }

// testDB is a fresh migrated PostGIS database of this test.
func testDB(t *testing.T) *pgxpool.Pool { return testenv.PostGIS(t).Pool }
