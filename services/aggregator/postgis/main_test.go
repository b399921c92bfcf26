package postgis_test

import (
	"testing"

	"github.com/iochub/iochub/internal/testenv"
)

// TestMain stops the test process's private PostgreSQL cluster at the end.
// It is the only TestMain of this directory's test binary.
func TestMain(m *testing.M) { testenv.Main(m) }
