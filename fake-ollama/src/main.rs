//! `fake-ollama`: serve the stand-in Ollama API on a port, for e2e runs,
//! benchmarks and trying llm-chat without a real Ollama.

use std::net::SocketAddr;

use clap::Parser;
use fake_ollama::{Behavior, FakeModel, FakeOllama, FakeState, default_models};
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "FAKE_OLLAMA_ADDR", default_value = "127.0.0.1:11434")]
    addr: SocketAddr,
    /// A model to offer, e.g. `llama3.2:latest`; repeat for several.
    /// Without any, the fake offers llama3.2:latest and qwen2.5:0.5b.
    #[arg(long = "model")]
    models: Vec<String>,
    /// Tokens per answer (ignored with --reply).
    #[arg(long, default_value_t = 8)]
    tokens: usize,
    /// The exact answer text, streamed word by word.
    #[arg(long)]
    reply: Option<String>,
    /// Pause before each token, in milliseconds.
    #[arg(long, default_value_t = 0)]
    token_delay_ms: u64,
    /// Pause before the response headers, in milliseconds.
    #[arg(long, default_value_t = 0)]
    headers_delay_ms: u64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let models = if args.models.is_empty() {
        default_models()
    } else {
        args.models
            .iter()
            .map(|name| FakeModel::named(name))
            .collect()
    };
    let behavior = Behavior {
        tokens: args.tokens,
        reply: args.reply,
        token_delay_ms: args.token_delay_ms,
        headers_delay_ms: args.headers_delay_ms,
        ..Behavior::default()
    };
    let listener = TcpListener::bind(args.addr).await?;
    let fake = FakeOllama::serve(listener, FakeState::new(models, behavior))?;
    tracing::info!("fake-ollama listening on {}", fake.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
