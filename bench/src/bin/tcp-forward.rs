//! A bare TCP forwarder: the floor of any relay on this machine.
//!
//! It copies bytes between each client connection and a connection of its
//! own to the upstream, parsing nothing, on the same runtime llm-chat uses
//! (tokio, multi-threaded, `TCP_NODELAY` both ways). What it adds to the time
//! to first token is the cost of one more process on the path (two more
//! socket hops, the wake-ups and copies they take), not of any HTTP work:
//! the benchmark's row for it says how much of llm-chat's added latency
//! any gateway would pay here.

use clap::Parser;
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser)]
#[command(about = "Copies bytes between clients and one upstream, parsing nothing")]
struct Args {
    /// Where clients connect.
    #[arg(long)]
    listen: String,
    /// Where every client connection is forwarded, as host:port.
    #[arg(long)]
    upstream: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(&args.listen).await?;
    loop {
        let (client, _) = listener.accept().await?;
        let upstream = args.upstream.clone();
        tokio::spawn(async move {
            // A connection that cannot be forwarded is closed: the client
            // sees an error, the benchmark counts it.
            let _ = forward(client, &upstream).await;
        });
    }
}

async fn forward(mut client: TcpStream, upstream: &str) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let mut server = TcpStream::connect(upstream).await?;
    server.set_nodelay(true)?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}
