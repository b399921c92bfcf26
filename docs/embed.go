// Package docs embeds the documents the hub serves itself: the OpenAPI
// description of every HTTP endpoint (openapi.yaml, served at GET /api).
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml, the OpenAPI 3.1 description of the hub's
// HTTP API; CI validates it (make api-check) and a test compares its paths
// with the routes the hub registers.
//
//go:embed openapi.yaml
var OpenAPI []byte
