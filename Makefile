# The shop backend. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo

.PHONY: bench bench-login-flood bench-soak help test-chaos up up-observability down logs ps status test test-workspace test-compose lint fmt bench-rpc

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

up: ## Start the whole system in the background and wait until it is ready
	@scripts/system.sh up

down: ## Stop what `make up` started (and nothing else)
	@scripts/system.sh down

logs: ## Follow the logs of every process
	@scripts/system.sh logs

up-observability: ## make up, plus Jaeger, Prometheus and Grafana (needs a Docker engine)
	@COMPOSE_PROFILES=observability OTEL_EXPORTER_OTLP_ENDPOINT=$${OTEL_EXPORTER_OTLP_ENDPOINT:-http://jaeger:4318} scripts/system.sh up

ps status: ## Show what runs and whether the gateway is ready
	@scripts/system.sh ps

test: test-workspace test-compose test-chaos ## Run every test against the local RabbitMQ and PostgreSQL

test-workspace: ## Unit and integration tests of every crate (parallel, isolated)
	@# Binaries first, with the exact command `make up` uses, so the system tests that
	@# start them (make up, faults) find them built and nothing is compiled twice.
	$(CARGO) build --workspace --bins --locked
	$(CARGO) test --workspace --locked

test-chaos: ## Broker restart under load (stops the shared RabbitMQ: runs alone, after the rest)
	@# The same selection of crates and targets as `make test-workspace`, so the same
	@# features and nothing compiled twice; `--ignored` then runs only the chaos tests
	@# (system-tests/tests/chaos.rs: the only #[ignore] tests, keep it that way).
	$(CARGO) test --workspace --locked --tests -- --ignored --test-threads=1

test-compose: ## Validate docker-compose.yml, with and without the observability profile
	docker-compose -f docker-compose.yml config -q
	COMPOSE_PROFILES=observability docker-compose -f docker-compose.yml config -q
	COMPOSE_PROFILES=observability docker-compose -f docker-compose.yml config --services | grep -qx jaeger
	python3 -c 'import json,sys; [json.load(open(f)) for f in sys.argv[1:]]' deploy/grafana/dashboards/*.json deploy/rabbitmq/definitions.json
	@echo "docker-compose.yml (both profiles), dashboards and broker definitions are valid"

lint: ## rustfmt and clippy, as CI runs them
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

bench: ## Benchmark the whole system over HTTP (release build on its own port; figures, not a test)
	@scripts/bench.sh

bench-soak: ## `make bench` plus a 5-minute soak reporting each process's memory
	@BENCH_SOAK_SECS=$${BENCH_SOAK_SECS:-300} scripts/bench.sh

bench-login-flood: ## users.me latency idle vs during a login flood (user-svc in process, bcrypt cost 12; figures, not a test)
	$(CARGO) run --release --locked -q -p user-svc --example login_flood

bench-rpc: ## RPC echo round trips: proto-msgs vs a bare lapin pair, same message (figures, not a test)
	$(CARGO) run --release --locked -q -p system-tests --bin shop-bench -- rpc
