//! Fan-out over Redis: 1 publisher -> N subscribers on loopback, with one
//! and with three server instances sharing one Redis, against a single
//! instance on SQLite in the same run.
//!
//! ```text
//! cargo run --release -p seqsync-server --example redis_fanout_bench
//! cargo run --release -p seqsync-server --example redis_fanout_bench -- --subscribers 300 --burst 2000 --rates 200,600 --secs 3
//! ```
//!
//! Needs `redis-server` on PATH (`source scripts/redis.sh && ensure_redis`);
//! it starts its own on a free loopback port, without persistence.
//!
//! Setups:
//! - **sqlite x1**: one instance, SQLite log (the default backend): the
//!   baseline.
//! - **redis x1**: one instance on Redis: every publish batch is one Lua
//!   script call, and live messages reach subscribers through the
//!   instance's follower (a blocking `XREAD`).
//! - **redis x3**: three instances on one Redis; the publisher is on the
//!   first, the subscribers are spread over all three, so two thirds of the
//!   deliveries cross from one instance to another through Redis.
//!
//! Phases, as in `fanout_bench`: **burst** (publish as fast as possible;
//! deliveries/s = frames received / (last receive - first send)) and
//! **paced** (each of `--rates` messages/s for `--secs` s; latency publish
//! -> deliver on every delivery, the timestamp travels in the payload).
//! Every instance and every client run in this process on one 2-worker
//! tokio runtime, with Redis beside it: the figures show what the shared log
//! costs per delivery, not what more machines would add.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use seqsync_server::{Limits, RunningServer, Server, ServerConfig, Storage};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

#[allow(dead_code)]
#[path = "../../tests/redis_server.rs"]
mod redis_server;

#[derive(Clone, Debug)]
struct Params {
    subscribers: usize,
    burst: u64,
    rates: Vec<u64>,
    secs: u64,
    live_queue: usize,
}

fn params() -> Params {
    let mut p = Params {
        subscribers: 300,
        burst: 2000,
        rates: vec![200, 600],
        secs: 3,
        live_queue: 4096,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i + 1 < args.len() {
        let value: u64 = args[i + 1].parse().unwrap_or(0);
        match args[i].as_str() {
            "--subscribers" => p.subscribers = value as usize,
            "--burst" => p.burst = value,
            "--rates" => {
                p.rates = args[i + 1]
                    .split(',')
                    .filter_map(|r| r.trim().parse().ok())
                    .collect();
            }
            "--secs" => p.secs = value,
            "--live-queue" => p.live_queue = value as usize,
            other => eprintln!("ignoring unknown argument {other}"),
        }
        i += 2;
    }
    p
}

#[derive(Debug, Default)]
struct PhaseResult {
    sent: u64,
    received: u64,
    elapsed: Duration,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
}

impl PhaseResult {
    fn per_sec(&self) -> f64 {
        self.received as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The integer after `"t":`, without parsing the whole frame.
fn stamp(text: &str) -> Option<u64> {
    let at = text.find("\"t\":")? + 4;
    let digits: &str = &text[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

struct Shared {
    origin: Instant,
    received: AtomicU64,
    last_ns: AtomicU64,
}

/// One phase: subscribers spread over `sub_urls` (round robin), the
/// publisher on `pub_url`.
async fn run_phase(
    sub_urls: &[String],
    pub_url: &str,
    p: &Params,
    rate: Option<u64>,
    stream: &str,
) -> PhaseResult {
    let paced = rate.is_some();
    let rate = rate.unwrap_or(1);
    let shared = Arc::new(Shared {
        origin: Instant::now(),
        received: AtomicU64::new(0),
        last_ns: AtomicU64::new(0),
    });
    let total = if paced { rate * p.secs } else { p.burst };
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(p.subscribers.max(1));
    let (stop_tx, _) = broadcast::channel::<()>(1);
    let mut subs = Vec::with_capacity(p.subscribers);
    for n in 0..p.subscribers {
        let url = sub_urls[n % sub_urls.len()].clone();
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await else {
            panic!("a subscriber failed to connect");
        };
        let shared = shared.clone();
        let ready = ready_tx.clone();
        let stream = stream.to_string();
        let mut stop = stop_tx.subscribe();
        subs.push(tokio::spawn(async move {
            let frame = format!(r#"{{"type":"subscribe","stream":"{stream}"}}"#);
            let _ = ws.send(Message::Text(frame.into())).await;
            while let Some(Ok(m)) = ws.next().await {
                if m.to_text().is_ok_and(|t| t.contains("\"snapshot\"")) {
                    break;
                }
            }
            let _ = ready.send(()).await;
            let mut latencies: Vec<u32> = Vec::new();
            loop {
                let next = tokio::select! {
                    _ = stop.recv() => break,
                    next = ws.next() => next,
                };
                let Some(Ok(Message::Text(text))) = next else {
                    if matches!(next, Some(Ok(_))) {
                        continue;
                    }
                    break;
                };
                let Some(t) = stamp(text.as_str()) else {
                    continue;
                };
                let now = shared.origin.elapsed().as_nanos() as u64;
                latencies.push(((now.saturating_sub(t)) / 1000).min(u64::from(u32::MAX)) as u32);
                shared.received.fetch_add(1, Ordering::Relaxed);
                shared.last_ns.fetch_max(now, Ordering::Relaxed);
            }
            latencies
        }));
    }
    drop(ready_tx);
    for _ in 0..p.subscribers {
        let _ = ready_rx.recv().await;
    }
    let (mut publisher, _) = tokio_tungstenite::connect_async(pub_url.to_string())
        .await
        .expect("publisher connects");
    let start_ns = shared.origin.elapsed().as_nanos() as u64;
    let start = Instant::now();
    for k in 0..total {
        if paced {
            let due = start + Duration::from_nanos(k * 1_000_000_000 / rate.max(1));
            tokio::time::sleep_until(due).await;
        }
        let t = shared.origin.elapsed().as_nanos() as u64;
        let frame = format!(
            r#"{{"type":"publish","stream":"{stream}","id":"{k}","data":{{"t":{t},"k":{k}}}}}"#
        );
        publisher
            .feed(Message::Text(frame.into()))
            .await
            .expect("publish");
        if paced || k % 64 == 63 {
            publisher.flush().await.expect("flush");
        }
    }
    publisher.flush().await.expect("flush");
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = publisher.next().await {} });
    // Until every delivery arrived or nothing arrived for two seconds.
    let expected = total * p.subscribers as u64;
    let mut last = shared.received.load(Ordering::Relaxed);
    let mut idle_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = shared.received.load(Ordering::Relaxed);
        if now >= expected {
            break;
        }
        if now != last {
            last = now;
            idle_since = Instant::now();
        } else if idle_since.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    let _ = stop_tx.send(());
    let mut all: Vec<u32> = Vec::with_capacity(expected as usize);
    for s in subs {
        if let Ok(l) = s.await {
            all.extend(l);
        }
    }
    drain.abort();
    all.sort_unstable();
    let pct = |q: f64| -> u64 {
        if all.is_empty() {
            0
        } else {
            u64::from(all[((all.len() - 1) as f64 * q) as usize])
        }
    };
    let end_ns = shared.last_ns.load(Ordering::Relaxed).max(start_ns + 1);
    PhaseResult {
        sent: total,
        received: shared.received.load(Ordering::Relaxed),
        elapsed: Duration::from_nanos(end_ns - start_ns),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        max_us: all.last().copied().map_or(0, u64::from),
    }
}

fn config(storage: Storage, p: &Params) -> ServerConfig {
    ServerConfig {
        storage,
        limits: Limits {
            publish_rate: 1_000_000,
            live_queue: p.live_queue,
            ..Limits::default()
        },
        ..ServerConfig::for_tests()
    }
}

/// Runs every phase against `servers` (publisher on the first).
async fn run_setup(name: &str, servers: &[RunningServer], p: &Params) -> Vec<PhaseResult> {
    let urls: Vec<String> = servers.iter().map(RunningServer::ws_url).collect();
    let mut out = vec![run_phase(&urls, &urls[0], p, None, &format!("{name}-burst")).await];
    for &rate in &p.rates {
        out.push(
            run_phase(
                &urls,
                &urls[0],
                p,
                Some(rate),
                &format!("{name}-paced{rate}"),
            )
            .await,
        );
    }
    out
}

fn row(name: &str, r: &PhaseResult, subscribers: usize) -> String {
    format!(
        "| {name:<24} | {:>12.0} | {:>10}/{:<10} | {:>8.2} | {:>8.2} | {:>8.2} |",
        r.per_sec(),
        r.received,
        r.sent * subscribers as u64,
        r.p50_us as f64 / 1000.0,
        r.p99_us as f64 / 1000.0,
        r.max_us as f64 / 1000.0,
    )
}

fn main() {
    let p = params();
    let redis = redis_server::RedisServer::start();
    let db = std::env::temp_dir().join(format!("seqsync-redis-bench-{}.db", std::process::id()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let url = redis.url();
    let db_path = db.clone();
    runtime.block_on(async move {
        println!(
            "fan-out over Redis: 1 publisher -> {} subscribers; burst {} msgs; paced {:?} msg/s for {} s each; live queue {}",
            p.subscribers, p.burst, p.rates, p.secs, p.live_queue
        );
        let load_before = load_average();
        let mut results = Vec::new();

        let sqlite = Server::start(config(Storage::Sqlite(db_path), &p))
            .await
            .expect("sqlite server");
        results.push(("sqlite x1", run_setup("sqlite", std::slice::from_ref(&sqlite), &p).await));
        let _ = sqlite.shutdown().await;

        let one = Server::start(config(Storage::Redis(url.clone()), &p))
            .await
            .expect("redis server");
        results.push(("redis x1", run_setup("one", std::slice::from_ref(&one), &p).await));
        let _ = one.shutdown().await;

        let mut three = Vec::new();
        for _ in 0..3 {
            three.push(
                Server::start(config(Storage::Redis(url.clone()), &p))
                    .await
                    .expect("redis server"),
            );
        }
        results.push(("redis x3", run_setup("three", &three, &p).await));
        let cross: u64 = three[1..].iter().map(|s| s.metrics().deliveries).sum();
        for s in three {
            let _ = s.shutdown().await;
        }

        println!();
        println!("load average before/after: {load_before} / {}", load_average());
        println!(
            "| {:<24} | {:>12} | {:>21} | {:>8} | {:>8} | {:>8} |",
            "run", "deliveries/s", "delivered/expected", "p50 ms", "p99 ms", "max ms"
        );
        println!(
            "|{}|{}|{}|{}|{}|{}|",
            "-".repeat(26),
            "-".repeat(14),
            "-".repeat(23),
            "-".repeat(10),
            "-".repeat(10),
            "-".repeat(10)
        );
        let phases: Vec<String> = std::iter::once("burst".to_string())
            .chain(p.rates.iter().map(|r| format!("paced {r}/s")))
            .collect();
        for (i, phase) in phases.iter().enumerate() {
            for (setup, r) in &results {
                println!("{}", row(&format!("{setup} {phase}"), &r[i], p.subscribers));
            }
        }
        println!();
        let base = &results[0].1;
        for (setup, r) in &results[1..] {
            for (i, phase) in phases.iter().enumerate() {
                println!(
                    "ratio {setup}/sqlite x1, {phase}: deliveries/s {:.2}x, p99 {:.2}x",
                    r[i].per_sec() / base[i].per_sec().max(1e-9),
                    r[i].p99_us as f64 / base[i].p99_us.max(1) as f64,
                );
            }
        }
        println!("redis x3: {cross} deliveries made by the two instances without the publisher");
    });
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.clone().into_os_string();
        name.push(suffix);
        let _ = std::fs::remove_file(name);
    }
}
