# Thin wrapper around CMake so that `make` and `make test` work from the top.
#   make            build build/mayak (RelWithDebInfo)
#   make test       unit + integration tests, then the same under ASan+UBSan, plus fuzz corpora
#   make asan       just the sanitizer build in build-asan/
#   make fuzz       build the libFuzzer targets in build-fuzz/
#   make bench      run the benchmarks (see bench/README.md)
JOBS ?= $(shell nproc)
MAKEFLAGS += --no-print-directory
CMAKE ?= cmake

.PHONY: all build test test-fast asan fuzz bench clean run

all: build

build:
	@$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@$(CMAKE) --build build -j $(JOBS)

asan:
	@$(CMAKE) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMAYAK_SANITIZE=ON -DCMAKE_C_COMPILER=clang >/dev/null
	@$(CMAKE) --build build-asan -j $(JOBS)

fuzz:
	@$(CMAKE) -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAYAK_FUZZ=ON -DCMAKE_C_COMPILER=clang >/dev/null
	@$(CMAKE) --build build-fuzz -j $(JOBS) --target fuzz_all

# Every test: the normal build, the ASan+UBSan build, and each fuzz target replaying its corpus.
test: build asan fuzz
	@scripts/run-tests.sh

test-fast: build
	@cd build && ctest --output-on-failure -j $(JOBS)

run: build
	./build/mayak serve

bench: build
	@bench/run-all.sh

clean:
	rm -rf build build-asan build-fuzz
