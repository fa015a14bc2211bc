# The shop backend. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo

.PHONY: help test test-workspace test-compose lint fmt bench-rpc

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

test: test-workspace ## Run every test against the local RabbitMQ and PostgreSQL

test-workspace: ## Unit and integration tests of every crate (parallel, isolated)
	$(CARGO) test --workspace --locked

lint: ## rustfmt and clippy, as CI runs them
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

bench-rpc: ## RPC echo round trips: proto-msgs vs a bare lapin pair (figures, not a test)
	$(CARGO) bench -p proto-msgs --bench rpc_echo --locked
