# iochub — see README.md. `make run` starts the demo, `make test` runs every test.
GO      ?= go
PROTOC  ?= protoc
FUZZTIME ?= 5s

.PHONY: run test deps build web vendor-check proto proto-check vet lint api-check asyncapi-check test-go deploy-check test-web bench-smoke fuzz bench clean

## run: install what is missing, build, and start every role with the simulator and the wall screen
run: deps build
	bin/iochub dev --data-dir .data

## test: everything CI checks
test: deps web vendor-check proto-check vet lint api-check asyncapi-check test-go deploy-check bench-smoke fuzz test-web

## deps: Debian packages the build, demo and tests need (PostGIS, protoc, Chromium); idempotent
deps:
	scripts/install-deps.sh --browser

## web: copy the wall screen's npm packages (MapLibre, uPlot), as package-lock.json pins them, into web/app/vendor
web:
	web/scripts/vendor.sh

## vendor-check: fail when the committed web/app/vendor (what `go build` embeds for the wall screen) differs from
## the npm packages package-lock.json pins, which `make web` copies there
vendor-check: web
	@git diff --exit-code --stat -- web/app/vendor || { echo "web/app/vendor: differs from the pinned npm packages; run make web and commit" >&2; exit 1; }
	@test -z "$$(git ls-files --others --exclude-standard -- web/app/vendor)" || { echo "web/app/vendor: untracked files; run make web and commit" >&2; exit 1; }

build: web
	$(GO) build -o bin/iochub ./cmd/iochub
	$(GO) build -o bin/iocsim ./cmd/iocsim
	$(GO) build -o bin/iocctl ./cmd/iocctl
	$(GO) build -o bin/iocload ./cmd/iocload

## proto: regenerate proto/ioc/v1/*.pb.go with protoc and the pinned protoc-gen-go tool
proto:
	$(GO) build -o bin/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	$(PROTOC) -I proto -I /usr/include --plugin=protoc-gen-go=bin/protoc-gen-go \
		--go_out=proto --go_opt=paths=source_relative proto/ioc/v1/*.proto

## proto-check: fail when the committed generated code differs from a fresh generation
proto-check: proto
	@git diff --exit-code --stat -- proto/ || { echo "proto/: generated code is stale; run make proto and commit" >&2; exit 1; }
	@test -z "$$(git ls-files --others --exclude-standard -- proto/)" || { echo "proto/: untracked generated files; run make proto and commit" >&2; exit 1; }

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$'))" || { gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$'); echo "gofmt needed" >&2; exit 1; }
	$(GO) vet ./...

## lint: golangci-lint v2 with the linters of .golangci.yml, pinned in tools/go.mod (its own module, so its
## dependencies never mix with iochub's)
lint:
	$(GO) tool -modfile=tools/go.mod golangci-lint run ./...

## asyncapi-check: validate docs/asyncapi.yaml with @asyncapi/parser (npm, pinned in tools/asyncapi)
asyncapi-check:
	scripts/asyncapi-check.sh

## api-check: validate docs/openapi.yaml (OpenAPI 3.1) with Redocly CLI, installed by the script with npm ci
api-check:
	scripts/api-check.sh

## test-go: every Go test; the packages whose goroutines share state (the aggregator's pipeline and member rows'
## memory, the gateway's hub, natsx, the ingest's publisher and reused request memory) run under the race detector
## instead (the ingest's tests take about 100 s under it, 20 s without)
RACE_PKGS = ./services/aggregator/... ./services/gateway/ ./internal/natsx/ ./services/ingest/
test-go:
	$(GO) test -count=1 -timeout 15m $$($(GO) list ./... | grep -v -e '/services/aggregator' -e '/services/gateway$$' -e '/internal/natsx$$' -e '/services/ingest$$')
	$(GO) test -race -count=1 -timeout 15m $(RACE_PKGS)

## deploy-check: the deploy/ module (its own go.mod, so compose-go and the Kubernetes API types stay out of
## iochub's): compose files through the compose-spec loader, manifests decoded strictly into the Kubernetes types,
## NATS configs through nats-server's parser. `go test ./...` and `golangci-lint run ./...` at the root do not
## enter a nested module, so this target does (gofmt is in vet, which lists every tracked .go file)
deploy-check:
	cd deploy && $(GO) vet ./... && $(GO) test -count=1 ./...
	cd deploy && $(GO) tool -modfile=../tools/go.mod golangci-lint run --config ../.golangci.yml ./...

## fuzz: run every fuzz target briefly (FUZZTIME each); longer by hand: make fuzz FUZZTIME=10m
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

## test-web: start iochub dev with the simulator and drive the wall screen in Debian's Chromium
test-web: build
	scripts/test-web.sh

## bench: the benchmarks of docs/benchmarks.md, each beside its baseline
bench:
	scripts/bench.sh

## bench-smoke: every benchmark once, so a benchmark the code has broken fails make test (no figures)
bench-smoke:
	BENCH_SMOKE=1 BENCHTIME=1x LATENCY_N=5 E2E_DURATION=2s E2E_RATE=2000 DRAIN_EVENTS=1000 DRAIN_ITERATIONS=1 FANOUT_LOAD_SECONDS=2 scripts/bench.sh

clean:
	rm -rf bin web/test-results
