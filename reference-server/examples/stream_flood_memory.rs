//! Memory of a flood of live streams, and what is given back after it: a
//! server in another process (memory log, default limits: 100,000 live
//! streams, 10,000 per address) is flooded by `--addresses` client hosts
//! (127.0.0.1, 127.0.0.2, ... on loopback), each with `--connections`
//! connections that subscribe to `--names` distinct new streams each.
//! Each host is held to its budget; the rest is refused with
//! `too_many_streams`. Then a host that took no part opens a stream, the
//! flood's connections close, the streams are let go (after
//! `--stream-idle-ms`, 1000 here), and the server's resident memory is
//! compared with its baseline.
//!
//! ```text
//! cargo run --release -p seqsync-server --example stream_flood_memory
//! # the whole table, from ten hosts:
//! cargo run --release -p seqsync-server --example stream_flood_memory -- --addresses 10 --connections 10 --names 1000
//! ```
//!
//! Memory is the server process's `VmRSS` (`/proc/<pid>/status`): before
//! the first connection (baseline), with every stream held (peak), and
//! once the streams are let go (after).

#[allow(dead_code)]
mod bench_common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bench_common::process::{Kind, rss_kib, settle, spawn_server_with};
use futures_util::{SinkExt, StreamExt};
use seqsync_test_support::WsClient;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

struct Args {
    addresses: u8,
    connections: usize,
    names: usize,
}

fn args() -> Args {
    Args {
        addresses: bench_common::flag("--addresses").unwrap_or(1),
        connections: bench_common::flag("--connections").unwrap_or(100),
        names: bench_common::flag("--names").unwrap_or(1000),
    }
}

/// Subscribes to every name (pipelined), then reads one answer per name;
/// returns (opened, refused with `too_many_streams`).
async fn subscribe_all(ws: &mut Ws, names: &[String]) -> (usize, usize) {
    for name in names {
        let frame = format!(r#"{{"type":"subscribe","stream":"{name}"}}"#);
        ws.feed(Message::Text(frame.into())).await.expect("send");
    }
    ws.flush().await.expect("flush");
    let (mut opened, mut refused) = (0, 0);
    while opened + refused < names.len() {
        let Some(Ok(Message::Text(text))) = ws.next().await else {
            panic!("the server closed the connection");
        };
        if text.contains(r#""type":"snapshot""#) {
            opened += 1;
        } else if text.contains("too_many_streams") {
            refused += 1;
        } else if text.contains(r#""type":"error""#) {
            panic!("unexpected refusal: {text}");
        }
    }
    (opened, refused)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    if bench_common::process::serve_if_asked() {
        return;
    }
    let a = args();
    let server = spawn_server_with(Kind::Seqsync, 1024, &["--stream-idle-ms", "1000"]);
    let pid = server.pid.to_string();
    let url = server.sub_url.clone();
    bench_common::runtime().block_on(async move {
        settle(Duration::from_secs(1)).await;
        let baseline = rss_kib(&pid);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for host in 0..a.addresses {
            let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, host + 1));
            for c in 0..a.connections {
                let url = url.clone();
                let names: Vec<String> = (0..a.names)
                    .map(|n| format!("flood-{host}-{c}-{n}"))
                    .collect();
                tasks.push(tokio::spawn(async move {
                    let mut ws = WsClient::connect_from(&url, from).await.ws;
                    let counts = subscribe_all(&mut ws, &names).await;
                    (ws, counts)
                }));
            }
        }
        let mut held = Vec::new();
        let (mut opened, mut refused) = (0, 0);
        for t in tasks {
            let (ws, (o, r)) = t.await.expect("flood task");
            opened += o;
            refused += r;
            held.push(ws);
        }
        let flood_secs = started.elapsed().as_secs_f64();
        settle(Duration::from_millis(500)).await;
        let peak = rss_kib(&pid);
        let outsider = IpAddr::V4(Ipv4Addr::new(127, 0, 0, a.addresses + 1));
        let mut other = WsClient::connect_from(&url, outsider).await.ws;
        let (other_opened, _) = subscribe_all(&mut other, &["outsider".to_string()]).await;
        drop(other);
        for mut ws in held {
            let _ = ws.close(None).await;
        }
        // Idle streams go after 1 s (swept every 500 ms): wait until the
        // server reports none live, then until the memory stops falling.
        let addr: SocketAddr = url
            .strip_prefix("ws://")
            .and_then(|r| r.split('/').next())
            .and_then(|a| a.parse().ok())
            .expect("the server's address");
        let deadline = Instant::now() + Duration::from_secs(60);
        let live = loop {
            let (_, text) = seqsync_test_support::http_get(addr, "/metrics").await;
            let live: Option<u64> = text
                .lines()
                .find_map(|l| l.strip_prefix("seqsync_streams "))
                .and_then(|v| v.trim().parse().ok());
            if live == Some(0) || Instant::now() > deadline {
                break live;
            }
            settle(Duration::from_millis(200)).await;
        };
        let mut after = rss_kib(&pid);
        for _ in 0..10 {
            settle(Duration::from_millis(500)).await;
            let now = rss_kib(&pid);
            let falling = now < after;
            after = now;
            if !falling {
                break;
            }
        }
        println!("live streams once the flood left: {live:?}");
        println!(
            "stream flood: {} address(es) x {} connections x {} new names each, memory log, default limits",
            a.addresses, a.connections, a.names
        );
        println!(
            "streams opened {opened}, refused too_many_streams {refused} (in {flood_secs:.1} s); a host outside the flood opened {other_opened} of 1"
        );
        println!("| server RSS | MiB |");
        println!("|---|---:|");
        println!("| baseline | {:.1} |", mib(baseline));
        println!("| every stream held | {:.1} |", mib(peak));
        println!("| after the flood left | {:.1} |", mib(after));
        println!(
            "after / baseline: {:.2}x",
            after as f64 / baseline.max(1) as f64
        );
    });
}
