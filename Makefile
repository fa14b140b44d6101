# The two commands a user needs: `make run` and `make test`.
BUILD_DIR  ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS       ?= $(shell nproc)
LISTEN     ?= 127.0.0.1:8000
DATA_DIR   ?= ./data

.PHONY: all deps build run test package asan bench fuzz clean format

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

# Swagger UI (compiled into the binary) and the OpenAPI validator, exactly as the lock file pins.
web/node_modules/.package-lock.json: web/package-lock.json
	cd web && npm ci --no-audit --no-fund

# The generated-client test's generator and compiler (openapi-typescript, tsc), as its lock pins.
tests/client/node_modules/.package-lock.json: tests/client/package-lock.json
	cd tests/client && npm ci --no-audit --no-fund

build: deps web/node_modules/.package-lock.json $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/creatord serve --listen $(LISTEN) --data-dir $(DATA_DIR) --demo

test: build tests/client/node_modules/.package-lock.json
	@bash scripts/install-deps.sh test
	export CREATORD_TEST_POSTGRES_URL="$$(bash scripts/test-postgres.sh start)" && \
	  pooler="$$(bash scripts/test-pooler.sh start)" && eval "$$pooler" && \
	  cd $(BUILD_DIR) && ctest --output-on-failure -j 2 --timeout 300

# The Debian package (build/creatord_VERSION_ARCH.deb): the binary, the systemd unit, the
# conffile, the man page, the maintainer scripts (deploy/debian/). Not part of `make build`.
package: build
	@bash scripts/install-deps.sh package
	cd $(BUILD_DIR) && cpack -G DEB

# The unit and integration suites built with ASan and UBSan in their own folder; slow, so not
# part of `make test`. ASAN_PG=1 adds the PostgreSQL pass of the integration suite.
ASAN_DIR ?= build-asan
ASAN_PG  ?= 0
asan: deps web/node_modules/.package-lock.json
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCREATORD_SANITIZE=ON
	cmake --build $(ASAN_DIR) -j $(JOBS) --target creatord unit_tests integration_tests
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 && \
	  cd $(ASAN_DIR) && ./unit_tests && ./integration_tests && \
	  if [ "$(ASAN_PG)" = 1 ]; then \
	    export CREATORD_TEST_POSTGRES_URL="$$(bash ../scripts/test-postgres.sh start)" && \
	    CREATORD_TEST_STORE=postgres ./integration_tests; \
	  fi

bench: build
	@bash scripts/install-deps.sh bench
	bash bench/list_bench.sh
	bash bench/mix_bench.sh
	bash bench/metrics_cost.sh
	bash bench/scale_bench.sh
	bash bench/isolation_bench.sh
	bash bench/queue_bench.sh
	bash bench/rss.sh
	bash bench/email_bench.sh
	bash bench/steps_bench.sh

# Coverage-guided fuzzing (clang 14 + libFuzzer, ASan and UBSan on), FUZZ_SECONDS per target.
# New inputs land in build-fuzz/corpus/<target>, crashes in build-fuzz/artifacts/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= request json_body image template pipelines cursor mime
fuzz: deps web/node_modules/.package-lock.json
	@bash scripts/install-deps.sh fuzz
	test -f build-fuzz/build.ninja || CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCREATORD_FUZZ=ON -DCREATORD_TESTS=OFF
	cmake --build build-fuzz -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	bash fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) web/node_modules
