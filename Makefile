# semcached: the two commands are `make run` and `make test`; see README.md.
# Every target installs what it needs first (scripts/deps.sh, scripts/redis8.sh).

BUILD      ?= build
BUILD_TYPE ?= Release
JOBS       ?= $(shell nproc)
DATA_DIR   ?= .data
HOST       ?= 127.0.0.1
PORT       ?= 8080
CTEST_ARGS ?=

CMAKE_FLAGS = -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

.PHONY: all deps npm-deps redis8 build run test unit bench asan tsan format clean

all: build

deps:
	@bash scripts/deps.sh
	@bash scripts/hiredis.sh

redis8: deps
	@bash scripts/redis8.sh

npm-deps:
	@bash scripts/npm_deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

# Builds Release and serves on the embedded store: no Redis needed.
run: build
	mkdir -p $(DATA_DIR)
	./$(BUILD)/src/semcached serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

# Every CTest suite: unit, e2e, and redis (against the private Redis 8).
test: redis8 npm-deps build
	ctest --test-dir $(BUILD) --output-on-failure -j2 $(CTEST_ARGS)

unit: build
	ctest --test-dir $(BUILD) --output-on-failure -j2 -L unit

bench: redis8 build
	bash bench/run.sh $(BUILD) $(BENCH_MODE)

# Unit, fuzz and Redis tests (the client under faults included) under AddressSanitizer +
# UndefinedBehaviorSanitizer.
asan: redis8
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSEMCACHED_SANITIZE=address,undefined -DSEMCACHED_BUILD_BENCH=OFF
	cmake --build build-asan -j$(JOBS) --target unit_tests fuzz_tests redis_tests
	ctest --test-dir build-asan --output-on-failure -j2 -L 'unit|fuzz|redis' 

# Unit tests, and the multi-threaded Redis client and caches against a real Redis 8, under
# ThreadSanitizer. GCC 12's TSan cannot map its shadow memory with the high ASLR entropy of
# recent kernels, so the tests run with randomization off (setarch -R).
TSAN_REDIS_TESTS = 'RedisClient|Resp/|RedisCache\.|RedisResilience|Redis/StoreConformance'
tsan: redis8
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DSEMCACHED_SANITIZE=thread -DSEMCACHED_BUILD_BENCH=OFF
	cmake --build build-tsan -j$(JOBS) --target unit_tests redis_tests
	setarch $$(uname -m) -R ctest --test-dir build-tsan --output-on-failure -j2 -L unit
	setarch $$(uname -m) -R ctest --test-dir build-tsan --output-on-failure -j2 -L redis -R $(TSAN_REDIS_TESTS)

format:
	find src tests bench -name '*.cpp' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) build-asan build-tsan
