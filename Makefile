# The two set-up commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/escrow
export NATS_URL ?= nats://127.0.0.1:4222
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
CARGO ?= cargo

.PHONY: run test services build bench check-read-tables clean-test-dbs fmt lint

services:
	@bash scripts/services.sh

build:
	$(CARGO) build --release -p gateway

## Starts PostgreSQL and NATS when they are down, creates the database, migrates and serves on :8080.
run: services
	$(CARGO) run --release -p gateway -- serve

## Unit tests, then every system test against real PostgreSQL and NATS (each test gets its own database).
test: services clean-test-dbs
	$(CARGO) build --tests --workspace
	DATABASE_URL=$(TEST_DATABASE_URL) $(CARGO) test --workspace --no-fail-fast -- --test-threads=4
	@$(MAKE) --no-print-directory clean-test-dbs

## Drops databases that tests left behind (a test that fails keeps its database until then).
clean-test-dbs:
	@for db in $$(psql "$(TEST_DATABASE_URL)" -Atc "select datname from pg_database where datname like 'estest\_%'"); do \
		psql "$(TEST_DATABASE_URL)" -qc "drop database if exists $$db with (force)" >/dev/null; done

bench: services
	$(CARGO) run --release -p gateway -- bench

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
