package pgcluster

import "errors"

// InstallHint tells the user how to get the PostgreSQL and PostGIS binaries.
const InstallHint = "install them with `apt-get install postgresql-15 postgresql-15-postgis-3` or `make deps`"

// ErrNoPostgres is returned when the PostgreSQL server binaries (initdb,
// pg_ctl, postgres) cannot be found on this machine.
var ErrNoPostgres = errors.New("PostgreSQL server binaries not found; " + InstallHint)

// ErrNoPostGIS is returned when PostgreSQL is installed but the PostGIS
// extension is not (no postgis.control in the extension directory).
var ErrNoPostGIS = errors.New("PostGIS extension not found; " + InstallHint)

// ErrNotTraversable is returned when, running as root, the cluster's directory
// lies under a directory the postgres system user cannot enter.
var ErrNotTraversable = errors.New("directory not accessible to the postgres user")
