# Gantry — the two commands of the quick start are `make run` and `make test`.
SWIFT ?= swift
JOBS ?= 2
SPEC_DIR ?= Manifests/examples
STATE_DIR ?= .gantry-state
RUN_ARGS ?=
BENCH_N ?= 100000
# The churn soak's length (issue 12 measured 600).
CHURN_SECONDS ?= 180
FUZZ_SECONDS ?= 60
FUZZ_FLAGS ?=
FUZZ_AVOID ?=

.PHONY: deps build release run test bench bench-kube bench-api clean fuzz fuzz-replay sanitize

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build -j $(JOBS)

# The Swift runtime and Foundation linked in statically, as in the image: a CLI command then
# starts without loading and relocating a dozen Swift libraries (about 10 ms less each).
release: deps
	$(SWIFT) build -c release --static-swift-stdlib -j $(JOBS)

run: release
	@echo "gantry binary: $$($(SWIFT) build -c release --show-bin-path)/gantry"
	$$($(SWIFT) build -c release --show-bin-path)/gantry run --spec-dir $(SPEC_DIR) --state-dir $(STATE_DIR) $(RUN_ARGS)

test: deps
	$(SWIFT) build -j $(JOBS) --build-tests
	GANTRY_BIN=$$($(SWIFT) build --show-bin-path)/gantry $(SWIFT) test -j $(JOBS) --skip-build
	bash scripts/schemathesis.sh $$($(SWIFT) build --show-bin-path)/gantry

bench: release
	$$($(SWIFT) build -c release --show-bin-path)/gantry-bench --n $(BENCH_N) --gantry $$($(SWIFT) build -c release --show-bin-path)/gantry
	$$($(SWIFT) build -c release --show-bin-path)/gantry-bench --churn --churn-seconds $(CHURN_SECONDS) --gantry $$($(SWIFT) build -c release --show-bin-path)/gantry

# Kube mode against the in-process test API server: admission throughput, API requests per
# workload, leader failover, controller RSS (README, Performance, Kube mode).
bench-kube: release
	$$($(SWIFT) build -c release --show-bin-path)/gantry-bench --kube --gantry $$($(SWIFT) build -c release --show-bin-path)/gantry

# The HTTP API against the release daemon (gantry run --listen): list latency and requests/s
# (wrk, Debian package wrk) over BENCH_N workloads, create -> status, log follow at 10,000
# lines/s, daemon RSS (README, Performance, HTTP API).
bench-api: release
	$$($(SWIFT) build -c release --show-bin-path)/gantry-bench --api --n $(BENCH_N) --gantry $$($(SWIFT) build -c release --show-bin-path)/gantry

# Coverage-guided fuzzing (libFuzzer + AddressSanitizer, release build in .build-fuzz):
# manifest decoding and a scheduler operation sequence, FUZZ_SECONDS each.
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_FLAGS="$(FUZZ_FLAGS)" FUZZ_AVOID=$(FUZZ_AVOID) JOBS=$(JOBS) SWIFT=$(SWIFT) scripts/fuzz.sh

# The committed seed corpus through the same checks, in a plain debug build.
fuzz-replay: deps
	$(SWIFT) build -j $(JOBS) --product fuzz-manifest
	$(SWIFT) build -j $(JOBS) --product fuzz-scheduler
	$$($(SWIFT) build --show-bin-path)/fuzz-manifest Fuzz/corpus/manifest
	$$($(SWIFT) build --show-bin-path)/fuzz-scheduler Fuzz/corpus/scheduler

# The test suite under ThreadSanitizer (.build-tsan), then AddressSanitizer (.build-asan).
sanitize: deps
	JOBS=$(JOBS) SWIFT=$(SWIFT) scripts/sanitize.sh thread; t=$$?; \
	JOBS=$(JOBS) SWIFT=$(SWIFT) scripts/sanitize.sh address; a=$$?; \
	echo "sanitize: thread exit $$t, address exit $$a"; [ $$t -eq 0 ] && [ $$a -eq 0 ]

clean:
	rm -rf .build .build-fuzz .build-tsan .build-asan
