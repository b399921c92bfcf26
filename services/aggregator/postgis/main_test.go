package postgis_test

import (
	"fmt"
	"testing"

	"github.com/iochub/iochub/internal/testenv"
)

// TestMain stops the test process's private PostgreSQL cluster at the end.
// It is the only TestMain of this directory's test binary.
func TestMain(m *testing.M) { testenv.Main(m) }

// square is a closed counter-clockwise ring of half-side d around lon, lat.
func square(lon, lat, d float64) string {
	return fmt.Sprintf(`[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]`,
		lon-d, lat-d, lon+d, lat-d, lon+d, lat+d, lon-d, lat+d, lon-d, lat-d)
}
