# dejavu: make demo runs the main job, make test the test suite. Both install
# what they need first (scripts/deps.sh).

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
FUZZTIME ?= 60s
# mke2fs, losetup and friends live in sbin, which a non-root PATH may lack.
export PATH := $(dir $(GO)):$(PATH):/usr/local/sbin:/usr/sbin:/sbin

.PHONY: all build deps test test-race fuzz bench bench-containerd bench-image bench-suite bench-release bench-go demo clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION) -X main.commit=$(shell git rev-parse HEAD 2>/dev/null)" -o bin/dejavu ./cmd/dejavu

deps:
	GO=$(GO) scripts/deps.sh

test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 25m ./...

test-race: deps
	$(GO) test -count=1 -race -timeout 40m ./...

# Runs every fuzz target for FUZZTIME, one after another. Minimising a new
# input is capped at 5 s: layer-sized inputs would otherwise spend the default
# minute per input there instead of fuzzing.
fuzz: deps
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		pkg=./$$(dirname $$f); \
		for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | cut -d' ' -f2); do \
			echo "== $$pkg $$t ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg; \
		done; \
	done

# The startup comparison on a real workload (needs root): see scripts/bench.sh.
bench: deps build bench-image
	scripts/bench.sh

# The same workload started through containerd on the dejavu snapshotter.
bench-containerd: deps build bench-image
	scripts/bench-containerd.sh

# The workload images, built once into out/bench (scripts/workloads.sh),
# and py as an ordinary image of one layer per build step
# (scripts/bench-layers.sh).
bench-image: deps build
	scripts/bench-image.sh
	scripts/bench-layers.sh

# Every workload through every link profile (needs root): see
# scripts/bench-suite.sh; RUNS, WORKLOADS and PROFILES pick less.
bench-suite: deps build bench-image
	scripts/bench-suite.sh

# Release 2 of py, which rebuilt only its top layer, started with the trace
# carried from release 1 and with its own (needs root): see
# scripts/bench-release.sh.
bench-release: deps build bench-image
	scripts/bench-release.sh

# The Go benchmarks: formats, index, device, mounts, recording overhead.
bench-go: deps
	mkdir -p out/bench
	$(GO) test -run '^$$' -bench . -benchmem ./... | tee out/bench/go-bench.txt

demo: deps build
	scripts/demo.sh

clean:
	rm -rf bin out
