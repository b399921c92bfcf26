package postgis

import (
	"errors"

	"github.com/iochub/iochub/internal/schema"
)

// ErrShortCopy is returned when COPY stores fewer rows than it was given; it
// is the schema package's sentinel, so one errors.Is serves both.
var ErrShortCopy = schema.ErrShortCopy

// ErrStatementTimeout is returned, alongside the *pgconn.PgError of SQLSTATE
// 57014 (query_canceled), when a statement of a write transaction ran longer
// than the store's StatementTimeout: the input it was writing is too costly
// to store (retrying it will time out again), or the database was blocked
// that long. A cancellation through the caller's context is not reported so.
var ErrStatementTimeout = errors.New("statement ran longer than the store's statement timeout")

// ErrConfig is returned by NewStoreWith for an invalid StoreConfig.
var ErrConfig = errors.New("invalid PostGIS store configuration")

// ErrMemberRow is returned when the rows of rollup_member_day a batch read
// or locked are not what its count needs: a row neither found nor created,
// a slot not read, a shared row beside rows of its units (a writer that does
// not know shared rows, such as a release before migration 00035, wrote
// them), or a member in a unit the batch has no roll-up of. The batch is
// retried; nothing of it is stored.
var ErrMemberRow = errors.New("roll-up member rows not as counted")

// ErrFenced is returned when a write transaction runs under a partition's
// fence (WithFence) and another aggregator has taken the partition since:
// nothing of the transaction was stored, and the caller no longer holds the
// partition.
var ErrFenced = errors.New("the aggregator no longer holds the partition")

// ErrInvalidJSON is returned when a row carries JSON (a station's VN_AQI)
// that does not parse: the batch is not written, as the server refused it
// when it parsed the JSON itself.
var ErrInvalidJSON = errors.New("invalid JSON in a row")

// ErrUnencodable is returned when a row holds a value its column's type
// cannot take (an extra that has no JSON, a geometry without a layout),
// found while the store encodes a batch's COPY itself (copyRows): the batch
// is not written, as the server (or pgx, encoding it) refused it before;
// retrying cannot help.
var ErrUnencodable = errors.New("a row's value cannot be encoded for its column")
