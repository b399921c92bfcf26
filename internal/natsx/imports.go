package natsx

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Buckets of map imports through the admin API (POST /v1/admin/units/imports):
// the gateway stores the uploaded GeoJSON in the object store
// BucketUnitImportFiles under the import's id and its first progress record
// in the key-value bucket BucketUnitImports under the same id; the
// aggregator's unit.import action reads the file and updates the record.
const (
	BucketUnitImportFiles = "unit_import_files"
	BucketUnitImports     = "unit_imports"
	// UnitImportMaxBytes bounds one uploaded map.
	UnitImportMaxBytes = 256 << 20
	// unitImportsTTL is how long files and progress records are kept.
	unitImportsTTL = 7 * 24 * time.Hour
	// unitImportFilesMaxBytes bounds the object store (a few maps at a time).
	unitImportFilesMaxBytes = 4 * UnitImportMaxBytes
)

// UnitImport is the progress record of one map import, stored as JSON in
// BucketUnitImports and answered by GET /v1/admin/units/imports/{id}.
type UnitImport struct {
	ID string `json:"id"`
	// State is queued, running, done or failed.
	State     string    `json:"state"`
	ValidFrom time.Time `json:"validFrom"`
	// Bytes is the size of the uploaded file.
	Bytes int64 `json:"bytes"`
	// Read is the number of features read so far; Written the number of
	// new versions stored (new or changed units), Unchanged those left alone.
	Read      int `json:"read"`
	Written   int `json:"written"`
	Unchanged int `json:"unchanged"`
	Closed    int `json:"closed"`
	// Replace says the file is the whole map (schema.ImportOptions.Replace);
	// Retired counts the current units it retired for not holding them.
	Replace   bool      `json:"replace,omitempty"`
	Retired   int       `json:"retired"`
	Error     string    `json:"error,omitempty"`
	Actor     string    `json:"actor,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Progress states of a UnitImport.
const (
	ImportQueued  = "queued"
	ImportRunning = "running"
	ImportDone    = "done"
	ImportFailed  = "failed"
)

// EnsureImportBuckets creates or updates the buckets of map imports.
func EnsureImportBuckets(ctx context.Context, js jetstream.JetStream, o StreamOptions) error {
	o, storage, err := o.prepared()
	if err != nil {
		return err
	}
	// A JetStream not ready yet is waited for, as by EnsureStreams.
	if err := untilReady(ctx, func() error {
		_, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: BucketUnitImportFiles, Description: "Maps uploaded for import (GeoJSON), by import id",
			TTL: unitImportsTTL, MaxBytes: unitImportFilesMaxBytes, Storage: storage, Replicas: o.Replicas,
		})
		return err
	}); err != nil {
		return fmt.Errorf("creating object store %s: %w", BucketUnitImportFiles, err)
	}
	if err := untilReady(ctx, func() error {
		_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: BucketUnitImports, Description: "Progress of map imports, by import id",
			TTL: unitImportsTTL, Storage: storage, Replicas: o.Replicas,
		})
		return err
	}); err != nil {
		return fmt.Errorf("creating key-value bucket %s: %w", BucketUnitImports, err)
	}
	return nil
}
