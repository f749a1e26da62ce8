//! Fan-out benchmark: 1 publisher -> N subscribers on loopback, the reference
//! server against a raw tokio-tungstenite broadcast baseline, in one run,
//! each server in a process of its own and every client in this one.
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
//!
//! Each server runs in a child process (this executable started with
//! `--serve`), on a 2-worker runtime; the publisher and the subscribers
//! run in this process, on another. CPU is measured per process: the
//! server's, and the load generator's (all clients).

#[allow(dead_code)]
mod bench_common;

use bench_common::process::{ChildServer, Kind, spawn_server};
use bench_common::{Params, PhaseResult, Target, load_average, run_phases};

/// Width of the run name column.
const NAME_WIDTH: usize = 28;

fn params() -> Params {
    Params::parse(Params::with(1000, 3000))
}

fn target(server: &ChildServer, kind: Kind) -> Target {
    Target {
        sub_urls: vec![server.sub_url.clone()],
        pub_url: server.pub_url.clone(),
        subscribe: kind == Kind::Seqsync,
        publish_frames: kind == Kind::Seqsync,
        connect_batch: 50,
        server_pid: Some(server.pid),
    }
}

fn row(name: &str, r: &PhaseResult, subscribers: usize) -> String {
    let cores = |cpu: std::time::Duration| cpu.as_secs_f64() / r.elapsed.as_secs_f64().max(1e-9);
    format!(
        "{} {:>10.2} | {:>12.2} | {:>9.2} |",
        bench_common::row(name, NAME_WIDTH, r, subscribers),
        r.server_cpu.as_nanos() as f64 / r.received.max(1) as f64 / 1000.0,
        cores(r.server_cpu),
        cores(r.cpu),
    )
}

fn main() {
    if bench_common::process::serve_if_asked() {
        return;
    }
    let p = params();
    println!(
        "fan-out: 1 publisher -> {} subscribers (in this process); burst {} msgs; paced {:?} msg/s for {} s each; server live queue {}; each server in its own process",
        p.subscribers, p.burst, p.rates, p.secs, p.live_queue
    );
    let load_before = load_average();
    let baseline = spawn_server(Kind::Baseline, p.live_queue);
    let base = bench_common::runtime().block_on(run_phases(
        &target(&baseline, Kind::Baseline),
        &p,
        |_| "bench".to_string(),
    ));
    drop(baseline);
    let server = spawn_server(Kind::Seqsync, p.live_queue);
    let srv =
        bench_common::runtime().block_on(run_phases(&target(&server, Kind::Seqsync), &p, |rate| {
            match rate {
                None => "burst".to_string(),
                Some(rate) => format!("paced{rate}"),
            }
        }));
    drop(server);

    println!();
    println!(
        "load average before/after: {load_before} / {}",
        load_average()
    );
    println!(
        "{}",
        bench_common::table_head(
            NAME_WIDTH,
            &[("server µs/d", 10), ("server cores", 12), ("gen cores", 9)]
        )
    );
    let names = p.phase_names();
    for ((name, b), s) in names.iter().zip(&base).zip(&srv) {
        println!("{}", row(&format!("baseline {name}"), b, p.subscribers));
        println!(
            "{}",
            row(&format!("seqsync-server {name}"), s, p.subscribers)
        );
    }
    println!();
    for ((name, b), s) in names.iter().zip(&base).zip(&srv) {
        let per_delivery =
            |r: &PhaseResult| r.server_cpu.as_nanos() as f64 / r.received.max(1) as f64;
        println!(
            "ratio server/baseline, {name}: deliveries/s {:.2}x, p50 {:.2}x, p99 {:.2}x, server CPU per delivery {:.2}x",
            s.per_sec() / b.per_sec().max(1e-9),
            s.p50_us as f64 / (b.p50_us.max(1)) as f64,
            s.p99_us as f64 / (b.p99_us.max(1)) as f64,
            per_delivery(s) / per_delivery(b).max(1e-9),
        );
    }
}
