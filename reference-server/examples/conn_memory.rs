//! Memory per idle subscribed connection: opens N WebSocket connections to
//! a server in another process, each subscribed to one of a few streams and
//! then idle (heartbeats only), and reports the server's resident memory
//! per connection, against a raw tokio-tungstenite server (default
//! configuration) holding the same connections, in the same run: it reads
//! each subscribe, answers it with a snapshot-shaped frame, and waits for
//! the next frame.
//!
//! ```text
//! cargo run --release -p seqsync-server --example conn_memory
//! cargo run --release -p seqsync-server --example conn_memory -- --connections 10000 --streams 100
//! # any reference server already running (for example an older build):
//! cargo run --release -p seqsync-server --example conn_memory -- --external ws://127.0.0.1:8080/ws --pid 12345
//! ```
//!
//! Each process needs a file descriptor per connection: with the default
//! 10,000 connections, `ulimit -n` must be above 10,100 in the shell that
//! runs it (the benchmark checks and says so).
//!
//! The memory is the server process's `VmRSS` (`/proc/<pid>/status`) with
//! every connection open and subscribed, minus the same before the first
//! connection, divided by the number of connections. Connections read and
//! drop what they receive (the heartbeats), so nothing piles up in socket
//! buffers on the server's side.

#[allow(dead_code)]
mod bench_common;

use std::time::Duration;

use bench_common::process::{Kind, open_files_limit, rss_kib, settle, spawn_server};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Connections opened at once.
const BATCH: usize = 250;

struct Args {
    connections: usize,
    streams: usize,
    external: Option<(String, u32)>,
}

fn args() -> Args {
    let external = match (
        bench_common::flag::<String>("--external"),
        bench_common::flag::<String>("--pid"),
    ) {
        (Some(url), Some(pid)) => Some((url, pid.parse().expect("--pid"))),
        _ => None,
    };
    Args {
        connections: bench_common::flag("--connections").unwrap_or(10_000),
        streams: bench_common::flag("--streams").unwrap_or(100),
        external,
    }
}

/// What one server measured.
struct Measured {
    name: String,
    before_kib: u64,
    after_kib: u64,
    open: usize,
}

impl Measured {
    fn per_connection(&self) -> f64 {
        (self.after_kib.saturating_sub(self.before_kib) * 1024) as f64 / self.open.max(1) as f64
    }
}

/// Opens `n` connections to `url`, subscribing each (when `subscribe`) to
/// one of `streams` streams and waiting for its snapshot; each is then
/// read by a task of its own until `stop`.
async fn open_idle(
    url: &str,
    n: usize,
    streams: usize,
    subscribe: bool,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    // The clients' own buffers are kept small: they share the machine.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let mut tasks = Vec::with_capacity(n);
    for start in (0..n).step_by(BATCH) {
        let batch: Vec<_> = (start..(start + BATCH).min(n))
            .map(|i| {
                let url = url.to_string();
                async move {
                    let (mut ws, _) =
                        tokio_tungstenite::connect_async_with_config(url, Some(config), false)
                            .await
                            .expect("connect");
                    if subscribe {
                        let frame =
                            format!(r#"{{"type":"subscribe","stream":"room-{}"}}"#, i % streams);
                        ws.send(Message::Text(frame.into())).await.expect("send");
                        while let Some(Ok(m)) = ws.next().await {
                            if m.to_text().is_ok_and(|t| t.contains("\"snapshot\"")) {
                                break;
                            }
                        }
                    }
                    ws
                }
            })
            .collect();
        for mut ws in futures_util::future::join_all(batch).await {
            let mut stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.changed() => break,
                        next = ws.next() => if !matches!(next, Some(Ok(_))) { break },
                    }
                }
            }));
        }
    }
    tasks
}

async fn measure(name: &str, url: &str, pid: u32, subscribe: bool, a: &Args) -> Measured {
    settle(Duration::from_millis(500)).await;
    let before_kib = rss_kib(&pid.to_string());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let tasks = open_idle(url, a.connections, a.streams, subscribe, &stop_rx).await;
    // A few heartbeat intervals with every connection idle.
    settle(Duration::from_secs(3)).await;
    let after_kib = rss_kib(&pid.to_string());
    let open = tasks.iter().filter(|t| !t.is_finished()).count();
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    Measured {
        name: name.to_string(),
        before_kib,
        after_kib,
        open,
    }
}

fn main() {
    if bench_common::process::serve_if_asked() {
        return;
    }
    let a = args();
    if let Some(limit) = open_files_limit() {
        if limit < a.connections as u64 + 100 {
            eprintln!(
                "this needs a file descriptor per connection: raise the limit (ulimit -n {}) or pass --connections {}",
                a.connections + 100,
                limit.saturating_sub(100)
            );
            std::process::exit(2);
        }
    }
    println!(
        "{} idle connections, subscribed to {} streams (seqsync); load average {}",
        a.connections,
        a.streams,
        bench_common::load_average()
    );
    let results = bench_common::runtime().block_on(async {
        let mut results = Vec::new();
        if let Some((url, pid)) = &a.external {
            results.push(measure("external server", url, *pid, true, &a).await);
            return results;
        }
        let baseline = spawn_server(Kind::Baseline, 1024);
        results.push(
            measure(
                "baseline (raw tungstenite)",
                &baseline.sub_url,
                baseline.pid,
                false,
                &a,
            )
            .await,
        );
        drop(baseline);
        let server = spawn_server(Kind::Seqsync, 1024);
        results.push(measure("seqsync-server", &server.sub_url, server.pid, true, &a).await);
        drop(server);
        results
    });
    println!();
    println!(
        "| server | connections open | RSS before | RSS with connections | bytes per connection |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for r in &results {
        println!(
            "| {} | {} | {:.1} MiB | {:.1} MiB | {:.0} |",
            r.name,
            r.open,
            r.before_kib as f64 / 1024.0,
            r.after_kib as f64 / 1024.0,
            r.per_connection()
        );
    }
    if let [base, ours] = results.as_slice() {
        println!(
            "ratio seqsync-server / baseline per connection: {:.2}x",
            ours.per_connection() / base.per_connection().max(1.0)
        );
    }
}
