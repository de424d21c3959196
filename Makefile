# Inlet — make targets anyone can guess. `make help` lists them.
SHELL := /bin/bash
GO ?= go
BIN := bin/inlet
STATE ?= $(CURDIR)/.state
export INLET_STATE_DIR := $(STATE)

.DEFAULT_GOAL := help

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

OBS := github.com/inlet-dev/inlet/internal/obs
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X $(OBS).Version=$(VERSION) -X $(OBS).Commit=$(COMMIT)

build: ## build bin/inlet, static (inlet version reports the git version and commit; flags as the image's, so they share the build cache)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/inlet

image: ## build the container image inlet:VERSION with buildah, no daemon or registry (IMAGE_OUT=oci-archive:FILE also exports it)
	deploy/local/install buildah
	VERSION='$(VERSION)' COMMIT='$(COMMIT)' GO='$(GO)' deploy/image/build $(if $(IMAGE_OUT),-o '$(IMAGE_OUT)')

up: build ## install (if missing) and start Kafka, ClickHouse and PostgreSQL, then migrate
	deploy/local/up
	$(BIN) migrate

chart-files: ## copy the Grafana dashboards and the alert rules into the Helm chart (Helm reads only files inside it)
	rm -f deploy/helm/inlet/files/dashboards/*.json
	cp deploy/grafana/dashboards/*.json deploy/helm/inlet/files/dashboards/
	cp deploy/prometheus/alerts.yml deploy/helm/inlet/files/alerts.yml

tools: ## install (if missing) the tools the tests use besides the services: buildah for the image test, promtool for the alert rules and dashboards
	deploy/local/install buildah
	deploy/local/promtool >/dev/null

down: ## stop the Inlet processes and the local services started by `make up`/`make run`
	-deploy/local/inlet stop
	deploy/local/down

status: ## show what is running
	deploy/local/status; deploy/local/inlet status

run: up ## bring up the services and every Inlet process, seed the demo project, print how to use it
	deploy/local/inlet start

test: up tools ## the chaos stage (tests that stop a service, one package at a time), then the whole suite
	INLET_CHAOS=1 $(GO) test -count=1 -timeout 20m -p 1 -run Chaos ./...
	$(GO) test -count=1 -timeout 20m ./...

test-unit: ## tests that need no service
	$(GO) test -count=1 -short ./...

test-integration: up tools ## the whole suite without the chaos stage (integration tests are part of it)
	$(GO) test -count=1 -timeout 20m ./...

cluster-up: build ## start the local cluster (3 Kafka brokers, ZooKeeper, 2 ClickHouse replicas, HAProxy, 2 ingestors, 2 pipelines, admin, PostgreSQL; docs/cluster.md)
	deploy/cluster/up

cluster-down: ## stop the local cluster (deploy/cluster/down --purge also deletes .state-cluster)
	deploy/cluster/down

cluster-test: build ## on the local cluster: the replicated-ClickHouse tests, then the fault matrix → docs/cluster-report.md (MATRIX_FLAGS="-cases pipeline-kill")
	deploy/cluster/up
	$(MAKE) cluster-test-go
	deploy/cluster/matrix $(MATRIX_FLAGS)

cluster-test-go: ## the replicated-ClickHouse tests alone, on the cluster's services (what CI runs of the cluster; starts them when needed)
	deploy/cluster/up services
	deploy/cluster/with-env $(GO) test -count=1 -timeout 20m -p 1 -run 'TestCluster|TestAwaitOnEveryReplica|TestClaim' ./pipeline ./internal/chstore

bench: up build ## the bench suite: max, latency, ceiling and peer ratios, correctness → bench/results/latest/REPORT.md (BENCH_FLAGS="-scale 2 -run seed")
	bench/peer/build-telegraf >/dev/null
	$(GO) build -o bin/bench ./cmd/bench
	bin/bench $(BENCH_FLAGS)

bench-go: up ## Go benchmarks of the hot paths (go test -bench)
	$(GO) test -run '^$$' -bench . -benchmem ./...

lint: ## gofmt, go vet and staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

check-config: build ## validate deploy/inlet.example.yaml
	$(BIN) -config deploy/inlet.example.yaml -check-config

.PHONY: help build image up tools down status run test test-unit test-integration bench bench-go lint check-config chart-files cluster-up cluster-down cluster-test cluster-test-go
