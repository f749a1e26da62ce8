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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use seqsync_server::{Limits, Server, ServerConfig, Storage};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

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
        subscribers: 1000,
        burst: 3000,
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

/// Where the publisher and the subscribers connect, and how.
#[derive(Clone)]
struct Target {
    sub_url: String,
    pub_url: String,
    /// The reference server needs a subscribe frame; the baseline does not.
    subscribe: bool,
    /// The reference server takes publish frames; the baseline forwards
    /// whatever it gets.
    publish_frames: bool,
}

#[derive(Debug, Default)]
struct PhaseResult {
    sent: u64,
    received: u64,
    elapsed: Duration,
    /// CPU time of the whole process (server and clients) while the phase
    /// ran, from the first publish to the last delivery (or the idle end).
    cpu: Duration,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
}

impl PhaseResult {
    fn per_sec(&self) -> f64 {
        self.received as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    fn cpu_ns_per_delivery(&self) -> f64 {
        self.cpu.as_nanos() as f64 / self.received.max(1) as f64
    }
    fn expected(&self, subscribers: usize) -> u64 {
        self.sent * subscribers as u64
    }
}

/// Reads the integer after `"t":` without parsing the whole frame (the
/// clients share the CPU with the server; full JSON parsing would measure
/// the clients).
fn stamp(text: &str) -> Option<u64> {
    let at = text.find("\"t\":")? + 4;
    let digits: &str = &text[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// User + system CPU time of this process so far (Linux; zero elsewhere).
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the parenthesized command name; utime and stime are the
    // 14th and 15th fields overall, in clock ticks (100 per second on Linux).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
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

async fn run_phase(target: &Target, p: &Params, rate: Option<u64>, stream: &str) -> PhaseResult {
    let paced = rate.is_some();
    let rate = rate.unwrap_or(1);
    let shared = Arc::new(Shared {
        origin: Instant::now(),
        received: AtomicU64::new(0),
        last_ns: AtomicU64::new(0),
    });
    let total = if paced { rate * p.secs } else { p.burst };
    // Connect every subscriber first.
    let mut subs = Vec::with_capacity(p.subscribers);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(p.subscribers);
    let (stop_tx, _) = broadcast::channel::<()>(1);
    for chunk in 0..p.subscribers.div_ceil(50) {
        let mut batch = Vec::new();
        for _ in 0..50.min(p.subscribers - chunk * 50) {
            let url = target.sub_url.clone();
            batch.push(tokio::spawn(async move {
                tokio_tungstenite::connect_async(url)
                    .await
                    .map(|(ws, _)| ws)
            }));
        }
        for b in batch {
            let Ok(Ok(mut ws)) = b.await else {
                panic!("a subscriber failed to connect");
            };
            let shared = shared.clone();
            let ready = ready_tx.clone();
            let subscribe = target.subscribe;
            let stream = stream.to_string();
            let mut stop = stop_tx.subscribe();
            subs.push(tokio::spawn(async move {
                if subscribe {
                    let frame = format!(r#"{{"type":"subscribe","stream":"{stream}"}}"#);
                    let _ = ws.send(Message::Text(frame.into())).await;
                    while let Some(Ok(m)) = ws.next().await {
                        if m.to_text().is_ok_and(|t| t.contains("\"snapshot\"")) {
                            break;
                        }
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
                    latencies
                        .push(((now.saturating_sub(t)) / 1000).min(u64::from(u32::MAX)) as u32);
                    shared.received.fetch_add(1, Ordering::Relaxed);
                    shared.last_ns.fetch_max(now, Ordering::Relaxed);
                }
                latencies
            }));
        }
    }
    drop(ready_tx);
    for _ in 0..p.subscribers {
        let _ = ready_rx.recv().await;
    }
    let (mut publisher, _) = tokio_tungstenite::connect_async(target.pub_url.clone())
        .await
        .expect("publisher connects");
    let start_ns = shared.origin.elapsed().as_nanos() as u64;
    let start = Instant::now();
    let cpu_start = cpu_time();
    for k in 0..total {
        if paced {
            let due = start + Duration::from_nanos(k * 1_000_000_000 / rate.max(1));
            tokio::time::sleep_until(due).await;
        }
        let t = shared.origin.elapsed().as_nanos() as u64;
        let frame = if target.publish_frames {
            format!(
                r#"{{"type":"publish","stream":"{stream}","id":"{k}","data":{{"t":{t},"k":{k}}}}}"#
            )
        } else {
            format!(
                r#"{{"type":"msg","stream":"{stream}","seq":{},"data":{{"t":{t},"k":{k}}}}}"#,
                k + 1
            )
        };
        publisher
            .feed(Message::Text(frame.into()))
            .await
            .expect("publish");
        if paced || k % 64 == 63 {
            publisher.flush().await.expect("flush");
        }
    }
    publisher.flush().await.expect("flush");
    // Drain the publisher's acks in the background so they never block it.
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = publisher.next().await {} });
    // Wait until every delivery arrived or nothing arrived for a while.
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
    let cpu = cpu_time().saturating_sub(cpu_start);
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
        cpu,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        max_us: all.last().copied().map_or(0, u64::from),
    }
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

fn row(name: &str, r: &PhaseResult, subscribers: usize) -> String {
    let cpu_share = r.cpu.as_secs_f64() / r.elapsed.as_secs_f64().max(1e-9);
    format!(
        "| {name:<28} | {:>12.0} | {:>10}/{:<10} | {:>8.2} | {:>8.2} | {:>8.2} | {:>8.2} | {:>6.2} |",
        r.per_sec(),
        r.received,
        r.expected(subscribers),
        r.p50_us as f64 / 1000.0,
        r.p99_us as f64 / 1000.0,
        r.max_us as f64 / 1000.0,
        r.cpu_ns_per_delivery() / 1000.0,
        cpu_share
    )
}

fn main() {
    let p = params();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        println!(
            "fan-out: 1 publisher -> {} subscribers; burst {} msgs; paced {:?} msg/s for {} s each; server live queue {}",
            p.subscribers, p.burst, p.rates, p.secs, p.live_queue
        );
        let load_before = load_average();
        let (sub_url, pub_url) = start_baseline().await;
        let baseline = Target {
            sub_url: sub_url.clone(),
            pub_url,
            subscribe: false,
            publish_frames: false,
        };
        let mut base = vec![run_phase(&baseline, &p, None, "bench").await];
        for &rate in &p.rates {
            base.push(run_phase(&baseline, &p, Some(rate), "bench").await);
        }

        let server = Server::start(ServerConfig {
            storage: Storage::Memory,
            limits: Limits {
                publish_rate: 1_000_000,
                live_queue: p.live_queue,
                ..Limits::default()
            },
            ..ServerConfig::for_tests()
        })
        .await
        .expect("server");
        let target = Target {
            sub_url: server.ws_url(),
            pub_url: server.ws_url(),
            subscribe: true,
            publish_frames: true,
        };
        let mut srv = vec![run_phase(&target, &p, None, "burst").await];
        for &rate in &p.rates {
            srv.push(run_phase(&target, &p, Some(rate), &format!("paced{rate}")).await);
        }
        let m = server.metrics();
        let _ = server.shutdown().await;

        println!();
        println!("load average before/after: {load_before} / {}", load_average());
        println!(
            "| {:<28} | {:>12} | {:>21} | {:>8} | {:>8} | {:>8} | {:>8} | {:>6} |",
            "run",
            "deliveries/s",
            "delivered/expected",
            "p50 ms",
            "p99 ms",
            "max ms",
            "CPU µs/d",
            "cores"
        );
        println!(
            "|{}|{}|{}|{}|{}|{}|{}|{}|",
            "-".repeat(30),
            "-".repeat(14),
            "-".repeat(23),
            "-".repeat(10),
            "-".repeat(10),
            "-".repeat(10),
            "-".repeat(10),
            "-".repeat(8)
        );
        let names: Vec<String> = std::iter::once("burst".to_string())
            .chain(p.rates.iter().map(|r| format!("paced {r}/s")))
            .collect();
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
