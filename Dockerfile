# Multi-stage build of llm-chat: a Rust stage with cargo-leptos builds the
# server and its WASM/CSS assets; the runtime image holds only those.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY rust-toolchain.toml ./
RUN rustup toolchain install
RUN apt-get update && apt-get install -y --no-install-recommends \
        nodejs npm cmake clang libclang-dev python3-pip zopfli \
    && rm -rf /var/lib/apt/lists/*
COPY . .
# The same pinned tools as `make setup` (wasm-bindgen-cli matches Cargo.lock).
RUN cargo install cargo-leptos --version 0.3.11 --locked \
    && cargo install wasm-bindgen-cli --version "$(sed -n '/^name = "wasm-bindgen"$/{n;s/^version = "\(.*\)"$/\1/p;}' Cargo.lock)" \
    && cd end2end && npm ci --no-audit --no-fund
ENV PATH="/src/end2end/node_modules/.bin:${PATH}"
RUN cd end2end && node build-highlighter.mjs
# The web assets by the WASM's own toolchain (see the script), then the server.
RUN scripts/build-web.sh install && scripts/build-web.sh \
    && cargo leptos build --release --server-only
# The embedded models, so the image chats even without Ollama.
RUN LLM_CHAT_MODELS_DIR=/src/models scripts/fetch-model.sh

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /app llm-chat
WORKDIR /app
COPY --from=build /src/target/release/llm-chat /app/llm-chat
# The bundle's hashed file names; the server reads them beside its binary.
COPY --from=build /src/target/release/hash.txt /app/hash.txt
COPY --from=build /src/target/site /app/site
COPY --from=build /src/models /app/models
ENV LEPTOS_SITE_ROOT=/app/site \
    LLM_CHAT_MODELS_DIR=/app/models \
    LLM_CHAT_ADDR=0.0.0.0:3000 \
    LOG_FORMAT=json
USER llm-chat
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:3000/healthz || exit 1
ENTRYPOINT ["/app/llm-chat"]
