# Entry points. Every target installs what it needs on first use (the Python
# virtualenv with libtorch, helm) and reuses it afterwards.
#
#   make demo    start the real juniper-cascor server and two Rust workers, train two spirals
#   make test    build everything and run every test
#   make bench   trainer throughput and memory against the Python reference
#   make lint    rustfmt and clippy

SHELL := /bin/bash
WITH_ENV := scripts/with-env.sh
CARGO := $(WITH_ENV) cargo

.PHONY: all build release test lint fmt bench demo crds clean-venv

all: build

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release -p juniper-cascor-worker -p cascor-operator

test:
	$(CARGO) test --workspace --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# Regenerates the CascorWorkerPool CRD from the Rust types (operator/src/crd.rs).
crds:
	mkdir -p crds
	$(CARGO) run --quiet -p cascor-operator --bin crdgen > crds/cascorworkerpools.cascor.juniper.dev.yaml

# Builds the release worker, then starts the server and the workers; scripts/demo.py --help
# lists the options (DEMO_WORKERS, DEMO_POINTS_PER_SPIRAL, DEMO_POOL_SIZE, ...).
demo:
	$(CARGO) build --release -p juniper-cascor-worker
	$(WITH_ENV) python scripts/demo.py

# Release builds of both measured binaries, then the comparison; BENCH_QUICK=1 for a smoke run.
bench:
	$(CARGO) build --release -p cascor-bench -p juniper-cascor-worker
	$(WITH_ENV) python scripts/bench.py
