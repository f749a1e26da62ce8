//! Fan-out benchmark: 1 publisher -> N subscribers on loopback, the reference
//! server against a raw tokio-tungstenite broadcast baseline, in one run.
//!
//! ```text
//! cargo run --release -p seqsync-server --example fanout_bench
//! cargo run --release -p seqsync-server --example fanout_bench -- --subscribers 1000 --burst 3000 --rates 200,600 --secs 3 --live-queue 4096
//! ```
//!
//! Two phases per server:
//! - **burst**: the publisher sends `--burst` messages as fast as it can;
//!   deliveries/s = frames received by all subscribers / (last receive -
//!   first send).
//! - **paced**: for each of `--rates`, that many messages per second for
//!   `--secs` seconds (offered deliveries/s = rate x subscribers); latency
//!   publish -> deliver is measured on every delivery.
//!
//! The server runs with `--live-queue` (default 4096) so that the burst fits
//! in every subscriber's live queue: a burst larger than the queue is
//! dropped for readers that fall behind (by design), which would make the
//! server's figure cover less work than the baseline's.
//!
//! The baseline is the least a WebSocket fan-out can do: every frame the
//! publisher sends is forwarded as is to every subscriber socket (a tokio
//! broadcast channel, one task per socket). The reference server does more:
//! it parses the publish, appends it to the (memory) log, assigns the seq,
//! serializes a `msg` frame, queues it per connection and acks.
//! Clients and servers share the same 2-worker runtime, as on a 2-core box.

mod bench_common;

use bench_common::{Params, Target, load_average, run_phases, server_config};
use futures_util::{SinkExt, StreamExt};
use seqsync_server::{Server, Storage};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

/// Width of the run name column.
const NAME_WIDTH: usize = 28;

fn params() -> Params {
    Params::parse(Params {
        subscribers: 1000,
        burst: 3000,
        rates: vec![200, 600],
        secs: 3,
        live_queue: 4096,
    })
}

/// The baseline: forwards every frame from the publisher to every subscriber.
async fn start_baseline() -> (String, String) {
    let subs = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let pubs = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sub_url = format!("ws://{}/", subs.local_addr().expect("addr"));
    let pub_url = format!("ws://{}/", pubs.local_addr().expect("addr"));
    let (tx, _) = broadcast::channel::<Message>(65_536);
    let tx2 = tx.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = subs.accept().await {
            let mut rx = tx.subscribe();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                loop {
                    let Ok(m) = rx.recv().await else { break };
                    if ws.feed(m).await.is_err() {
                        break;
                    }
                    while let Ok(m) = rx.try_recv() {
                        if ws.feed(m).await.is_err() {
                            return;
                        }
                    }
                    if ws.flush().await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    tokio::spawn(async move {
        while let Ok((tcp, _)) = pubs.accept().await {
            let tx = tx2.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if m.is_text() {
                        let _ = tx.send(m);
                    }
                }
            });
        }
    });
    (sub_url, pub_url)
}

fn row(name: &str, r: &bench_common::PhaseResult, subscribers: usize) -> String {
    let cpu_share = r.cpu.as_secs_f64() / r.elapsed.as_secs_f64().max(1e-9);
    format!(
        "{} {:>8.2} | {:>6.2} |",
        bench_common::row(name, NAME_WIDTH, r, subscribers),
        r.cpu_ns_per_delivery() / 1000.0,
        cpu_share
    )
}

fn main() {
    let p = params();
    bench_common::runtime().block_on(async move {
        println!(
            "fan-out: 1 publisher -> {} subscribers; burst {} msgs; paced {:?} msg/s for {} s each; server live queue {}",
            p.subscribers, p.burst, p.rates, p.secs, p.live_queue
        );
        let load_before = load_average();
        let (sub_url, pub_url) = start_baseline().await;
        let baseline = Target {
            sub_urls: vec![sub_url],
            pub_url,
            subscribe: false,
            publish_frames: false,
            connect_batch: 50,
        };
        let base = run_phases(&baseline, &p, |_| "bench".to_string()).await;

        let server = Server::start(server_config(Storage::Memory, &p))
            .await
            .expect("server");
        let target = Target {
            sub_urls: vec![server.ws_url()],
            pub_url: server.ws_url(),
            subscribe: true,
            publish_frames: true,
            connect_batch: 50,
        };
        let srv = run_phases(&target, &p, |rate| match rate {
            None => "burst".to_string(),
            Some(rate) => format!("paced{rate}"),
        })
        .await;
        let m = server.metrics();
        let _ = server.shutdown().await;

        println!();
        println!("load average before/after: {load_before} / {}", load_average());
        println!(
            "{}",
            bench_common::table_head(NAME_WIDTH, &[("CPU µs/d", 8), ("cores", 6)])
        );
        let names = p.phase_names();
        for ((name, b), s) in names.iter().zip(&base).zip(&srv) {
            println!("{}", row(&format!("baseline {name}"), b, p.subscribers));
            println!("{}", row(&format!("seqsync-server {name}"), s, p.subscribers));
        }
        println!();
        for ((name, b), s) in names.iter().zip(&base).zip(&srv) {
            println!(
                "ratio server/baseline, {name}: deliveries/s {:.2}x, p50 {:.2}x, p99 {:.2}x, CPU per delivery {:.2}x",
                s.per_sec() / b.per_sec().max(1e-9),
                s.p50_us as f64 / (b.p50_us.max(1)) as f64,
                s.p99_us as f64 / (b.p99_us.max(1)) as f64,
                s.cpu_ns_per_delivery() / b.cpu_ns_per_delivery().max(1e-9),
            );
        }
        println!(
            "server counters: live frames dropped for slow readers {}, max live queue depth {}",
            m.live_dropped, m.queue_depth_max
        );
    });
}
