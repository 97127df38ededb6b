# Streamboard: `make run` builds and serves the app; `make test` runs every check.
# Both run scripts/setup.sh first, which installs missing tools and skips present ones.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
LISTEN ?= 127.0.0.1:3000
DATA_DIR ?= ./data

.PHONY: run test soak setup setup-test lint unit site e2e release bench-put-to-screen bench-tail clean

run: setup release
	$(TARGET_DIR)/release/streamboard serve --listen $(LISTEN) --data-dir $(DATA_DIR)

test: setup-test lint unit site e2e
	@echo "make test: all checks passed"

setup:
	scripts/setup.sh

setup-test:
	scripts/setup.sh --test

lint:
	cargo fmt --all -- --check
	scripts/layers.sh
	cargo clippy --locked --all-targets -- -D warnings

unit:
	cargo test --locked
	# The consumer and the whole data path again, against kinesis-local (the reference peer).
	STREAMBOARD_TEST_PEER=kinesis-local cargo test --locked --test consumer --test pipeline --test produce --test alerts --test tail

# The site is built first and the server after it, so the binary embeds the fresh site.
# `--split` puts each lazy route's code in its own wasm chunk; stale chunks are removed first
# because the server embeds every file under target/site.
site:
	rm -rf target/site/pkg
	cargo leptos build --frontend-only --split
	cargo build --locked -p streamboard

release:
	rm -rf target/site/pkg
	cargo leptos build --release --frontend-only --split
	cargo build --locked --release -p streamboard

e2e:
	cd end2end && STREAMBOARD_BIN=$(abspath $(TARGET_DIR))/debug/streamboard \
	  E2E_PORT=$$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') \
	  npx playwright test

# The reliability suite's long versions (docs/operations.md#soak): property tests with many more
# cases, 10 min of Kinesis faults at 2,000 records/s, 20 kill -9, 10,000 WebSockets, then the
# 1-hour run at 5,000 records/s (SOAK_DURATION_S, SOAK_RATE) charted into target/soak-long/.
SOAK_CASES ?= 20000
SOAK_DURATION_S ?= 3600
SOAK_RATE ?= 5000
soak: setup-test site
	PROPTEST_CASES=$(SOAK_CASES) cargo test --locked --test properties
	STREAMBOARD_SOAK=1 cargo test --locked --test faults --test crash --test disk_full --test ws_abuse
	cargo build --locked --release -p streamboard
	DURATION_S=$(SOAK_DURATION_S) RATE=$(SOAK_RATE) STREAMBOARD_BIN=$(abspath $(TARGET_DIR))/release/streamboard \
	  scripts/soak-long.sh
	@echo "make soak: all checks passed"

# Record put -> page DOM latency under a 20,000 records/s load, in Chromium (a benchmark).
bench-put-to-screen: setup-test release
	STREAMBOARD_BIN=$(abspath $(TARGET_DIR))/release/streamboard node end2end/bench/put-to-screen.mjs

# One viewer tailing a 20,000 records/s stream: the server's CPU and memory, and the Records
# page's frame time and heap in Chromium (a benchmark; RATE, FRAMES_S, MEMORY_S).
bench-tail: setup-test release
	STREAMBOARD_BIN=$(abspath $(TARGET_DIR))/release/streamboard node end2end/bench/tail.mjs

clean:
	cargo clean
	rm -rf target/site
