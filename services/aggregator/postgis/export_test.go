package postgis

// MigrationsFS is the directory of embedded migrations, for tests that
// migrate a database down and up again.
var MigrationsFS = mustSub(migrations, "migrations")
