# earlyext: the commands behind the README.
#   make check   install what is missing, build, run every test (unit, privileged, boot)
#   make demo    boot a demo VM whose initrd merges sample extensions, and show the result
SHELL := /bin/bash
SWIFT ?= swift
RELEASE_FLAGS := -c release --static-swift-stdlib -Xswiftc -Osize
BIN := .build/release/earlyext

.PHONY: all deps build release size test check demo bench clean

all: build

deps:
	@bash scripts/install-deps.sh

build:
	$(SWIFT) build

release:
	$(SWIFT) build $(RELEASE_FLAGS)

size: release
	@strip -o .build/earlyext.stripped $(BIN)
	@bytes=$$(stat -c %s .build/earlyext.stripped); \
	  printf 'earlyext stripped: %d bytes (%.2f MiB), budget 8388608 bytes (8 MiB)\n' $$bytes $$(echo "$$bytes/1048576" | bc -l); \
	  test $$bytes -le 8388608
	@# Foundation and the regex runtime (_StringProcessing: String.contains(String), replacing, …)
	@# each cost megabytes. Fail loudly if either is linked.
	@! nm $(BIN) | grep -qE '10Foundation|17_StringProcessing' || \
	  { echo "size: Foundation or _StringProcessing is linked in; see which object: nm -u .build/release/EarlyextCore.build/*.o" >&2; exit 1; }

# The privileged tests run the built binary, so build it first. The kernel-module tests take real
# .ko files from the boot suite's kernel package (downloaded, never installed; cached).
test: deps
	$(SWIFT) build
	@if [ "$$(id -u)" = 0 ]; then \
	  kernel=$$(bash boot/build-kernel.sh) && \
	  echo "EARLYEXT_TEST_KERNEL_MODULES=$$kernel/lib/modules/$$(cat $$kernel/kver)" > .build/test-env; \
	else : > .build/test-env; fi
	env $$(cat .build/test-env) $(SWIFT) test

check: deps size test boot-test

# boot-test, demo and the VM image builds live in boot/boot.mk.
-include boot/boot.mk

clean:
	rm -rf .build

# Benchmarks, as ratios measured in one run; writes docs/benchmarks.md and docs/merge-time.svg.
bench: release
	@command -v gnuplot >/dev/null || apt-get install -y -qq --no-install-recommends gnuplot-nox time >/dev/null
	bash bench/all.sh
