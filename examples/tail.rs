//! `tail`: prints one stream's messages in order, with a live status line.
//!
//! ```sh
//! cargo run -p seqsync-examples --bin tail -- --stream room:42
//! ```

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use seqsync::{Client, ClientConfig, SubscriptionEvent};

/// Print a seqsync stream's messages in order.
#[derive(Parser, Debug)]
struct Args {
    /// Server WebSocket URL (repeat for failover).
    #[arg(
        long = "url",
        env = "SEQSYNC_URL",
        default_value = "ws://127.0.0.1:8080/ws"
    )]
    urls: Vec<String>,
    /// The stream to follow.
    #[arg(long)]
    stream: String,
    /// Access token.
    #[arg(long, env = "SEQSYNC_TOKEN")]
    token: Option<String>,
    /// Exit after this many messages.
    #[arg(long)]
    count: Option<u64>,
    /// Print no status line.
    #[arg(long)]
    quiet: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut config = ClientConfig::with_endpoints(args.urls.clone());
    if let Some(token) = &args.token {
        config = config.token(token);
    }
    let client = Client::connect(config).await?;
    let mut events = client.subscribe(&args.stream).await?;
    let mut status = tokio::time::interval(Duration::from_secs(1));
    let mut received = 0u64;
    let mut window_start = (Instant::now(), 0u64);
    let stdout = std::io::stdout();
    loop {
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else { break };
                let mut out = stdout.lock();
                match event {
                    SubscriptionEvent::Message { seq, data, .. } => {
                        received += 1;
                        writeln!(out, "{seq}\t{data}")?;
                    }
                    SubscriptionEvent::Snapshot { seq, epoch, .. } => {
                        writeln!(out, "# snapshot at {seq} (epoch {epoch})")?;
                    }
                    SubscriptionEvent::Reset { reason, earliest } => {
                        writeln!(out, "# reset: {} (earliest {:?})", reason.as_str(), earliest.map(|s| s.get()))?;
                    }
                    SubscriptionEvent::Skipped { range } => writeln!(out, "# skipped {range}")?,
                    _ => {}
                }
                if args.count.is_some_and(|count| received >= count) {
                    break;
                }
            }
            _ = status.tick(), if !args.quiet => {
                let Some(stats) = client.stream_stats(&args.stream).await else { continue };
                let elapsed = window_start.0.elapsed().as_secs_f64().max(0.001);
                let rate = (stats.delivered - window_start.1) as f64 / elapsed;
                window_start = (Instant::now(), stats.delivered);
                eprint!(
                    "\r\x1b[2K{} msg/s | seq {} | lag {} | gaps healed {} | resyncs {} | resets {} | dups {}",
                    rate.round(), stats.last_seq, stats.lag, stats.gaps_healed, stats.resyncs, stats.resets, stats.duplicates
                );
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    eprintln!();
    drop(events);
    client.close().await;
    Ok(())
}
