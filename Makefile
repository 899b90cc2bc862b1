# The two commands of the README's quick start, plus helpers. Every target installs what is missing
# first (scripts/install-deps.sh is idempotent), so a fresh Debian 12 machine needs nothing else.
BUILD ?= build
JOBS ?= $(shell nproc)
CTEST_ARGS ?=

.PHONY: all deps build test test-all test-sanitize sanitize-build fuzz fuzz-build demo bench format clean

all: build

deps:
	./scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j$(JOBS)

# make test (CI's run) is every test but the labels in SLOW_LABELS, which take long and add nothing
# the rest does not cover but size; make test-all runs those too:
#   scale  e2e_sec_scale: 4,096 endpoints on one network, ~13 minutes on 2 cores. What it passes
#          through is tested in make test in seconds: the 1,024th endpoint routed once the bridge
#          is full (e2e_bridge_full), routed endpoints (e2e_routed_endpoints), a full endpoint map
#          (e2e_sec_map_full); only the scale test has thousands of real endpoints at once.
# The fuzz build first: both run every fuzz target briefly (the fuzz_smoke test).
SLOW_LABELS ?= scale
test: build fuzz-build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -LE '$(SLOW_LABELS)' $(CTEST_ARGS)

test-all: build fuzz-build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

# libFuzzer targets (tests/fuzz) built with clang, ASan and UBSan in $(FUZZ_BUILD); `make fuzz`
# runs each for FUZZ_SECONDS (default 300). -O1 with line tables, as libFuzzer's documentation
# builds: the instrumentation finds the same inputs, reports keep file:line, and the build (which
# CI makes from scratch) takes far less than at -O2 -g.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 300
fuzz-build: deps
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_C_FLAGS_DEBUG="-O1 -gline-tables-only" -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" -DBPFNET_FUZZ=ON
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz_targets

fuzz: fuzz-build
	./scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The same tests against an ASan + UBSan build (build-sanitize/): every report fails the test.
# Docker, bench and scale tests are left out: they measure or drive other programs or the kernel's
# limits, not bpfnet's code paths beyond what the rest covers, and would double CI time under the
# sanitizers.
SANITIZE_BUILD ?= build-sanitize
sanitize-build: deps
	cmake -S . -B $(SANITIZE_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O0 -g1" -DBPFNET_SANITIZE=ON
	cmake --build $(SANITIZE_BUILD) -j$(JOBS)

test-sanitize: sanitize-build
	cd $(SANITIZE_BUILD) && \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ctest --output-on-failure -j$(JOBS) -LE 'docker|bench|fuzz|scale' $(CTEST_ARGS)

demo: build
	./scripts/demo.sh $(BUILD)

bench: build
	./bench/run

format:
	find userspace tools tests bpf include -name '*.cpp' -o -name '*.h' -o -name '*.c' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(SANITIZE_BUILD) $(FUZZ_BUILD)
