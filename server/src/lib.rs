//! llm-chat's server: a REST + Server-Sent Events API over LLM backends, and
//! the server-rendered chat UI. `main.rs` only wires this together; tests use
//! [`Application`] directly.
//!
//! The layers, top to bottom: `routes` (HTTP, with the OpenAPI document) →
//! `dialect` (each API's parser and encoder) → `registry` (which backend
//! serves a model) → `backend` (Ollama, embedded), all over the one
//! `inference` request and the `stream` of its answer; `generations` keeps
//! answers that outlive their request.

mod application;
mod assets;
pub mod backend;
pub mod config;
mod conversations;
mod dialect;
mod error;
mod extract;
mod generations;
pub mod inference;
mod metrics;
mod middleware;
pub mod openapi;
pub mod registry;
mod routes;
pub mod shutdown;
mod ssr;
mod state;
mod stream;
pub mod telemetry;
pub mod upstreams;

pub use application::{Application, StartError};
pub use config::Config;
pub use state::AppState;

#[cfg(test)]
mod build_checks {
    /// The tests run on the release build; the workspace turns overflow
    /// checks on for our crates so that they can catch an overflow.
    #[test]
    #[should_panic(expected = "overflow")]
    fn arithmetic_overflow_panics_in_this_build() {
        let max = std::hint::black_box(u64::MAX);
        let _ = std::hint::black_box(max + 1);
    }
}
