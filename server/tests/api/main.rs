//! HTTP tests of the server: real loopback HTTP, a real fake Ollama.
//! One test binary (modules below) so the release build links once.

mod chat;
mod conversations;
mod embedded;
mod embeddings;
mod errors;
mod generate;
mod generations;
mod health;
mod helpers;
mod models;
mod ollama;
mod openai;
mod openapi;
mod page;
mod pool;
mod process;
mod reasoning;
mod shutdown;
mod streaming;
mod upstreams;
