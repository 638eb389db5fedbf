//! llm-chat's server: a REST + Server-Sent Events API over LLM backends, and
//! the server-rendered chat UI. `main.rs` only wires this together; tests use
//! [`Application`] directly.

pub mod application;
pub mod backend;
pub mod config;
pub mod error;
pub mod extract;
pub mod generations;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod registry;
pub mod routes;
pub mod shutdown;
pub mod sse;
pub mod ssr;
pub mod state;
pub mod telemetry;
pub mod validation;

pub use application::{Application, StartError};
pub use config::Config;
