package postgis

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultLateness is the Lateness of a zero StoreConfig.
const DefaultLateness = 2 * time.Hour

// Rollup is one roll-up row as a batch left it: the mergeable parts of the
// figures of a unit's layer in one window (migration 00017, docs/rollups.md).
type Rollup struct {
	UnitCode    string    `json:"unit_code"`
	Layer       string    `json:"layer"`
	Window      string    `json:"win"`
	WindowStart time.Time `json:"window_start"`
	Province    string    `json:"province"`
	N           int64     `json:"n"`
	Late        int64     `json:"late"`
	// Air.
	AQIN     int64   `json:"aqi_n"`
	AQISum   float64 `json:"aqi_sum"`
	AQIMax   *int    `json:"aqi_max"`
	BandMax  *int    `json:"band_max"`
	Dominant *string `json:"dominant"`
	// Traffic.
	SpeedW         float64   `json:"speed_w"`
	SpeedWSum      float64   `json:"speed_wsum"`
	CongestedN     int64     `json:"congested_n"`
	CongestedKnown int64     `json:"congested_known"`
	Vehicles       float64   `json:"vehicles"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Key is the roll-up's identity: unit, layer, window and its start.
func (r Rollup) Key() string {
	return fmt.Sprintf("%s|%s|%s|%s", r.UnitCode, r.Layer, r.Window, r.WindowStart.UTC().Format(time.RFC3339))
}

// collectInsertedRollups reads the rows of a statement of sqlRollupInsert:
// the keys of the inserted rows (recorded like collectInserted, key may be
// nil) and the roll-ups written, appended to out.
func collectInsertedRollups(n *int, idx *[]int, key func(source, event string) (int, bool), out *[]Rollup) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		for rows.Next() {
			var src, ev *string
			var js []byte
			if err := rows.Scan(&src, &ev, &js); err != nil {
				return err
			}
			if js != nil {
				var r Rollup
				if err := json.Unmarshal(js, &r); err != nil {
					return fmt.Errorf("reading a roll-up: %w", err)
				}
				*out = append(*out, r)
				continue
			}
			*n++
			if key != nil && src != nil && ev != nil {
				if i, ok := key(*src, *ev); ok {
					*idx = append(*idx, i)
				}
			}
		}
		return rows.Err()
	}
}

// rollupOptions are what the kinds' roll-up statements need of the store.
type rollupOptions struct {
	// on says whether the kinds add roll-up contributions.
	on bool
	// lateness is the lateness as a PostgreSQL interval ("7200000 milliseconds").
	lateness string
}
