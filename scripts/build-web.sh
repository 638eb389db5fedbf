#!/usr/bin/env bash
# The page's web assets (WASM, its glue, CSS) into target/site, for
# `make build` and the Dockerfile alike; `build-web.sh install` installs the
# toolchain it needs (idempotent, under a second when there).
#
# The WASM is built by a pinned nightly, so that it can rebuild the standard
# library for size and abort on a panic without formatting it: the first
# load's WASM 281 -> 256 KB gzip, measured when it came in. It loses its
# panic messages (a panic traps at once). The server is built by the stable
# toolchain of rust-toolchain.toml.
set -euo pipefail

toolchain=nightly-2026-10-10

if [ "${1:-}" = install ]; then
  args=(--profile minimal --component rust-src --target wasm32-unknown-unknown)
  rustup toolchain install "$toolchain" "${args[@]}" >/dev/null 2>&1 ||
    rustup toolchain install "$toolchain" "${args[@]}"
  exit
fi

# wasm-opt from npm and wasm-bindgen-cli from cargo, as `make setup` installs
# them: cargo-leptos would otherwise try to download them.
repo=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$repo/end2end/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export RUSTUP_TOOLCHAIN=$toolchain
# The standard library rebuilt for size, with the panic strategy below.
export CARGO_UNSTABLE_BUILD_STD=std,panic_abort
export CARGO_UNSTABLE_BUILD_STD_FEATURES=optimize_for_size
export CARGO_UNSTABLE_PANIC_IMMEDIATE_ABORT=true
export CARGO_PROFILE_WASM_RELEASE_PANIC=immediate-abort
# No file and line in the panic locations nobody reads, and derived Debug
# printing only the type's name. `--cfg erase_components` again, because
# target rustflags replace the build rustflags of .cargo/config.toml.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="--cfg erase_components -Zlocation-detail=none -Zfmt-debug=shallow"

# --precompress writes .br and .gz beside each file once, at build time,
# instead of compressing them again on every request; zopfli then remakes the
# .gz copies smaller (seconds). --split puts each `#[lazy]` function of the
# page (the answers' renderer, the settings and Models panels) in a WASM file
# of its own.
cargo leptos build --release --precompress --split --frontend-only
"$repo/scripts/recompress-gzip.sh" target/site
