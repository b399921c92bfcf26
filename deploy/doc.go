// Package deploy holds iochub's deployment files — deploy/Dockerfile, the
// repository's docker-compose.yml, and the NATS cluster and leaf-node configs
// in deploy/nats — and, in compose_test.go, the checks that keep them
// consistent with each other and with the binaries (no Docker engine needed).
// It has no Go API.
package deploy
