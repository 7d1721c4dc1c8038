# Gantry — the two commands of the quick start are `make run` and `make test`.
SWIFT ?= swift
JOBS ?= 2
SPEC_DIR ?= Manifests/examples
STATE_DIR ?= .gantry-state
RUN_ARGS ?=
BENCH_N ?= 100000

.PHONY: deps build release run test bench clean

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build -j $(JOBS)

release: deps
	$(SWIFT) build -c release -j $(JOBS)

run: release
	@echo "gantry binary: $$($(SWIFT) build -c release --show-bin-path)/gantry"
	$$($(SWIFT) build -c release --show-bin-path)/gantry run --spec-dir $(SPEC_DIR) --state-dir $(STATE_DIR) $(RUN_ARGS)

test: deps
	$(SWIFT) build -j $(JOBS) --build-tests
	GANTRY_BIN=$$($(SWIFT) build --show-bin-path)/gantry $(SWIFT) test -j $(JOBS) --skip-build

bench: release
	$$($(SWIFT) build -c release --show-bin-path)/gantry-bench --n $(BENCH_N) --gantry $$($(SWIFT) build -c release --show-bin-path)/gantry

clean:
	rm -rf .build
