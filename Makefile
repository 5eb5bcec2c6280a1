# Flowmeter's single entry point. `make run` starts everything locally; `make test` runs
# every test against a throwaway PostgreSQL.

.PHONY: run test lint fmt db-up db-down build dashboard bench bench-fold bench-api deps

run:
	scripts/run

test:
	scripts/test

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --features flowmeter-worker/test-hooks -- -D warnings

fmt:
	cargo fmt --all

build: dashboard
	cargo build --workspace --bins

# The web dashboard (services/dashboard/dist, embedded into flowmeter-api) when stale.
dashboard:
	scripts/build-dashboard

db-up:
	scripts/pg-local start

db-down:
	scripts/pg-local stop

# Fold, ingest, summary under load, freshness and peak RSS in one table (docs/BENCHMARKS.md).
bench:
	scripts/bench all

# Ten projects of ~100 000 events, then one project of ~100 000 (each reports fold ÷ COPY).
bench-fold:
	scripts/bench fold --projects 10 --tasks 9000 --days 90 --seed 1
	scripts/bench fold --projects 1 --tasks 9000 --days 90 --seed 1

bench-api:
	scripts/bench api --projects 3 --tasks 3000 --days 90

# What run and test install when missing (both call it themselves).
deps:
	scripts/install-deps
