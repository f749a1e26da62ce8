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

use bench_common::{Params, PhaseResult, Target, load_average, run_phases, server_config};
use seqsync_server::{RunningServer, Server, Storage};

#[allow(dead_code)]
mod bench_common;

/// Width of the run name column.
const NAME_WIDTH: usize = 24;

fn params() -> Params {
    Params::parse(Params::with(300, 2000))
}

/// Runs every phase against `servers`: the publisher on the first, the
/// subscribers spread over all of them (round robin).
async fn run_setup(name: &str, servers: &[RunningServer], p: &Params) -> Vec<PhaseResult> {
    let urls: Vec<String> = servers.iter().map(RunningServer::ws_url).collect();
    let target = Target {
        pub_url: urls[0].clone(),
        sub_urls: urls,
        subscribe: true,
        publish_frames: true,
        connect_batch: 1,
        server_pid: None,
    };
    run_phases(&target, p, |rate| match rate {
        None => format!("{name}-burst"),
        Some(rate) => format!("{name}-paced{rate}"),
    })
    .await
}

fn main() {
    let p = params();
    let redis = seqsync_test_support::RedisServer::start();
    let db = std::env::temp_dir().join(format!("seqsync-redis-bench-{}.db", std::process::id()));
    let runtime = bench_common::runtime();
    let url = redis.url();
    let db_path = db.clone();
    runtime.block_on(async move {
        println!(
            "fan-out over Redis: 1 publisher -> {} subscribers; burst {} msgs; paced {:?} msg/s for {} s each; live queue {}",
            p.subscribers, p.burst, p.rates, p.secs, p.live_queue
        );
        let load_before = load_average();
        let mut results = Vec::new();

        let sqlite = Server::start(server_config(Storage::Sqlite(db_path), &p))
            .await
            .expect("sqlite server");
        results.push(("sqlite x1", run_setup("sqlite", std::slice::from_ref(&sqlite), &p).await));
        let _ = sqlite.shutdown().await;

        let one = Server::start(server_config(Storage::Redis(url.clone()), &p))
            .await
            .expect("redis server");
        results.push(("redis x1", run_setup("one", std::slice::from_ref(&one), &p).await));
        let _ = one.shutdown().await;

        let mut three = Vec::new();
        for _ in 0..3 {
            three.push(
                Server::start(server_config(Storage::Redis(url.clone()), &p))
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
        println!("{}", bench_common::table_head(NAME_WIDTH, &[]));
        let phases = p.phase_names();
        for (i, phase) in phases.iter().enumerate() {
            for (setup, r) in &results {
                println!(
                    "{}",
                    bench_common::row(&format!("{setup} {phase}"), NAME_WIDTH, &r[i], p.subscribers)
                );
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
