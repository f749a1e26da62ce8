//! Pieces shared by the benchmarks (`fanout_bench`, `redis_fanout_bench`,
//! `conn_memory`): command-line parameters, the per-phase publish/subscribe
//! measurement, servers in child processes, process CPU and memory
//! figures, and the result table.

pub mod process;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use seqsync_server::{ServerConfig, Storage};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Command-line parameters of a fan-out benchmark.
#[derive(Clone, Debug)]
pub struct Params {
    /// Number of subscriber connections (`--subscribers`).
    pub subscribers: usize,
    /// Messages sent in the burst phase (`--burst`).
    pub burst: u64,
    /// Messages per second of each paced phase (`--rates`, comma separated).
    pub rates: Vec<u64>,
    /// Duration of each paced phase in seconds (`--secs`).
    pub secs: u64,
    /// Server live queue per connection (`--live-queue`).
    pub live_queue: usize,
}

impl Params {
    /// `subscribers` and a burst of `burst` messages, paced phases at 200
    /// and 600 messages/s for 3 s, a live queue of 4096.
    pub fn with(subscribers: usize, burst: u64) -> Params {
        Params {
            subscribers,
            burst,
            rates: vec![200, 600],
            secs: 3,
            live_queue: 4096,
        }
    }

    /// Parses the command line over the given defaults.
    pub fn parse(defaults: Params) -> Params {
        let mut p = defaults;
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut i = 0;
        while i + 1 < args.len() {
            let value: u64 = args[i + 1].parse().unwrap_or(0);
            match args[i].as_str() {
                "--serve" => {}
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

    /// Names of the phases in run order: `burst`, then `paced R/s` for
    /// each rate.
    pub fn phase_names(&self) -> Vec<String> {
        std::iter::once("burst".to_string())
            .chain(self.rates.iter().map(|r| format!("paced {r}/s")))
            .collect()
    }
}

/// The value after `name` on the command line (`--connections 100`),
/// parsed; `None` when the flag is absent or its value does not parse.
pub fn flag<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

/// Server configuration for a benchmark: the given storage, the limits of
/// [`process::bench_server_config`] and the `--live-queue` size.
pub fn server_config(storage: Storage, p: &Params) -> ServerConfig {
    ServerConfig {
        storage,
        ..process::bench_server_config(p.live_queue)
    }
}

/// The tokio runtime every benchmark runs on: 2 workers, as on a 2-core box.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Where the publisher and the subscribers connect, and how.
#[derive(Clone)]
pub struct Target {
    /// Subscribers are spread over these URLs, round robin.
    pub sub_urls: Vec<String>,
    /// The publisher's URL.
    pub pub_url: String,
    /// Whether subscribers send a subscribe frame and wait for the snapshot.
    pub subscribe: bool,
    /// Whether the publisher sends `publish` frames (a seqsync server) or
    /// ready-made `msg` frames (a server that forwards whatever it gets).
    pub publish_frames: bool,
    /// How many subscribers connect at the same time.
    pub connect_batch: usize,
    /// The server's process, when it runs in one of its own (its CPU time
    /// is then measured apart).
    pub server_pid: Option<u32>,
}

/// What one phase measured.
#[derive(Debug, Default)]
pub struct PhaseResult {
    /// Messages published.
    pub sent: u64,
    /// Frames received by all subscribers.
    pub received: u64,
    /// From the first publish to the last delivery.
    pub elapsed: Duration,
    /// CPU time of this process while the phase ran, from the first
    /// publish to the last delivery (or the idle end): the clients, and the
    /// server too when it runs in this process.
    pub cpu: Duration,
    /// CPU time of the server's own process over the same span (zero when
    /// the server runs in this process).
    pub server_cpu: Duration,
    /// Median publish -> deliver latency, in microseconds.
    pub p50_us: u64,
    /// 99th percentile latency, in microseconds.
    pub p99_us: u64,
    /// Largest latency, in microseconds.
    pub max_us: u64,
}

impl PhaseResult {
    /// Deliveries per second.
    pub fn per_sec(&self) -> f64 {
        self.received as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Process CPU time per delivery, in nanoseconds.
    pub fn cpu_ns_per_delivery(&self) -> f64 {
        self.cpu.as_nanos() as f64 / self.received.max(1) as f64
    }

    /// Deliveries expected: every message to every subscriber.
    pub fn expected(&self, subscribers: usize) -> u64 {
        self.sent * subscribers as u64
    }
}

/// Reads the integer after `"t":` without parsing the whole frame (the
/// clients share the CPU with the server; full JSON parsing would measure
/// the clients).
pub fn stamp(text: &str) -> Option<u64> {
    let at = text.find("\"t\":")? + 4;
    let digits: &str = &text[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// User + system CPU time of this process so far (Linux; zero elsewhere).
pub fn cpu_time() -> Duration {
    process::cpu_of("self")
}

/// The 1, 5 and 15 minute load averages (Linux; `unknown` elsewhere).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

struct Shared {
    origin: Instant,
    received: AtomicU64,
    last_ns: AtomicU64,
}

/// Runs the burst phase, then one paced phase per rate, against `target`;
/// `stream` names the stream of each phase from its rate (`None` for the
/// burst).
pub async fn run_phases(
    target: &Target,
    p: &Params,
    stream: impl Fn(Option<u64>) -> String,
) -> Vec<PhaseResult> {
    let mut out = vec![run_phase(target, p, None, &stream(None)).await];
    for &rate in &p.rates {
        out.push(run_phase(target, p, Some(rate), &stream(Some(rate))).await);
    }
    out
}

/// One phase: a burst (`rate` is `None`) or `rate` messages per second for
/// `--secs` seconds, from one publisher to every subscriber.
pub async fn run_phase(
    target: &Target,
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
    // Connect every subscriber first.
    let mut subs = Vec::with_capacity(p.subscribers);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(p.subscribers.max(1));
    let (stop_tx, _) = broadcast::channel::<()>(1);
    let batch_size = target.connect_batch.max(1);
    for chunk in 0..p.subscribers.div_ceil(batch_size) {
        let mut batch = Vec::new();
        for j in 0..batch_size.min(p.subscribers - chunk * batch_size) {
            let n = chunk * batch_size + j;
            let url = target.sub_urls[n % target.sub_urls.len()].clone();
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
    let server_cpu = || {
        target
            .server_pid
            .map_or(Duration::ZERO, |pid| process::cpu_of(&pid.to_string()))
    };
    let cpu_start = cpu_time();
    let server_cpu_start = server_cpu();
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
    // Wait until every delivery arrived or nothing arrived for two seconds.
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
    let server_cpu = server_cpu().saturating_sub(server_cpu_start);
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
        server_cpu,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        max_us: all.last().copied().map_or(0, u64::from),
    }
}

/// Header and separator lines of the result table: the run name column
/// (`name_width` wide), deliveries/s, delivered/expected and the three
/// latencies, then `extra` columns (title, width).
pub fn table_head(name_width: usize, extra: &[(&str, usize)]) -> String {
    let mut head = format!(
        "| {:<name_width$} | {:>12} | {:>21} | {:>8} | {:>8} | {:>8} |",
        "run", "deliveries/s", "delivered/expected", "p50 ms", "p99 ms", "max ms"
    );
    let mut rule = format!(
        "|{}|{}|{}|{}|{}|{}|",
        "-".repeat(name_width + 2),
        "-".repeat(14),
        "-".repeat(23),
        "-".repeat(10),
        "-".repeat(10),
        "-".repeat(10)
    );
    for (title, width) in extra {
        head.push_str(&format!(" {title:>width$} |"));
        rule.push_str(&format!("{}|", "-".repeat(width + 2)));
    }
    format!("{head}\n{rule}")
}

/// One table row with the columns of [`table_head`] before its extras; the
/// caller appends its own extra cells.
pub fn row(name: &str, name_width: usize, r: &PhaseResult, subscribers: usize) -> String {
    format!(
        "| {name:<name_width$} | {:>12.0} | {:>10}/{:<10} | {:>8.2} | {:>8.2} | {:>8.2} |",
        r.per_sec(),
        r.received,
        r.expected(subscribers),
        r.p50_us as f64 / 1000.0,
        r.p99_us as f64 / 1000.0,
        r.max_us as f64 / 1000.0,
    )
}
