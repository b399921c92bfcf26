// Package deploy holds iochub's deployment files — deploy/Dockerfile, the
// repository's docker-compose.yml (one NATS node, the demo),
// deploy/compose/cluster.yml (a 3-node NATS cluster), the NATS cluster and
// leaf-node configs in deploy/nats and the Kubernetes manifests in
// deploy/k8s — and the tests that keep them valid and consistent with each
// other and with the binaries: compose files loaded by the compose-spec Go
// loader, manifests decoded strictly into the Kubernetes API types, NATS
// configs read by nats-server's own parser, and a 3-node cluster started in
// process from hub.conf (no Docker engine or Kubernetes cluster needed). It is a module of its own, so that those libraries stay out of
// iochub's go.mod; `make deploy-check` runs its tests. It uses the hub's own
// packages (internal/ops, internal/natsx) through a replace of the main
// module, so a dependency bump in the root go.mod needs `go mod tidy` here
// too. TestMain builds cmd/iochub (after `make web`, like every build) to
// read its flags. It has no Go API.
package deploy
