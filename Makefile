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

# The privileged tests run the built binary, so build it first.
test: deps
	$(SWIFT) build
	$(SWIFT) test

check: deps size test boot-test

# boot-test, demo and the VM image builds live in boot/boot.mk.
-include boot/boot.mk

clean:
	rm -rf .build

bench: release
	bash bench/merge.sh 1 16 64 128 256
