// Package postgis writes what the aggregator stores in iochub's PostGIS
// database: feed sources, and the batched writes of observations, state and
// alerts, with their SQL. The schema (migrations, the pool with the geometry
// codec, the import of administrative units) is internal/schema's.
package postgis
