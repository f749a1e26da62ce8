//! Servers in child processes, so that a benchmark's clients do not share
//! the server's process, and what `/proc` says about a process.
//!
//! A benchmark starts a server by running its own executable again with
//! `--serve <kind> [--live-queue N]`; [`serve_if_asked`] at the top of its
//! `main` turns that run into the server. The child prints one line,
//! `READY <subscriber url> <publisher url>`, and serves until its standard
//! input closes (the parent ended or dropped it).

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use seqsync_server::{Limits, Server, ServerConfig, Storage};
use seqsync_test_support::ws_server;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

/// What a child process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The reference server, memory log.
    Seqsync,
    /// A raw tokio-tungstenite server that forwards every frame from its
    /// publisher port to every connection on its subscriber port.
    Baseline,
    /// A raw tokio-tungstenite server that answers every frame with a
    /// snapshot-shaped frame and holds the connection until the client
    /// goes: the least a server of idle subscribed connections does.
    Holder,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Seqsync => "seqsync",
            Kind::Baseline => "baseline",
            Kind::Holder => "holder",
        }
    }
}

/// A server running in a child process; killed when dropped.
pub struct ChildServer {
    child: Child,
    /// Held so that the child sees its standard input close when this
    /// process ends, however it ends.
    _stdin: ChildStdin,
    /// The child's process id.
    pub pid: u32,
    /// Where subscribers connect.
    pub sub_url: String,
    /// Where the publisher connects.
    pub pub_url: String,
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `kind` in a child process (this executable with `--serve`), with
/// the live queue `live_queue` for the reference server, and waits until
/// it listens.
pub fn spawn_server(kind: Kind, live_queue: usize) -> ChildServer {
    spawn_server_with(kind, live_queue, &[])
}

/// As [`spawn_server`], with more arguments for the child (those
/// [`serve_if_asked`] reads: `--stream-idle-ms N`).
pub fn spawn_server_with(kind: Kind, live_queue: usize, extra: &[&str]) -> ChildServer {
    let exe = std::env::current_exe().expect("own executable");
    let mut child = Command::new(exe)
        .args([
            "--serve",
            kind.name(),
            "--live-queue",
            &live_queue.to_string(),
        ])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the server process starts");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the server process says where it listens");
    let mut words = line.split_whitespace().skip(1);
    let (Some(sub_url), Some(pub_url)) = (words.next(), words.next()) else {
        panic!("unexpected first line from the server process: {line:?}");
    };
    ChildServer {
        pid: child.id(),
        sub_url: sub_url.to_string(),
        pub_url: pub_url.to_string(),
        child,
        _stdin: stdin,
    }
}

/// When this process was started with `--serve <kind>`, serves that until
/// standard input closes and returns true; otherwise returns false at once.
pub fn serve_if_asked() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let Some(at) = args.iter().position(|a| a == "--serve") else {
        return false;
    };
    let kind = match args.get(at + 1).map(String::as_str) {
        Some("seqsync") => Kind::Seqsync,
        Some("baseline") => Kind::Baseline,
        Some("holder") => Kind::Holder,
        other => panic!("--serve takes seqsync, baseline or holder, not {other:?}"),
    };
    let live_queue = super::flag("--live-queue").unwrap_or(4096);
    let idle_ms: Option<u64> = super::flag("--stream-idle-ms");
    super::runtime().block_on(async move {
        let (sub_url, pub_url, server) = match kind {
            Kind::Seqsync => {
                let mut config = bench_server_config(live_queue);
                if let Some(idle_ms) = idle_ms {
                    config.stream_idle_ms = idle_ms;
                }
                let server = Server::start(config).await.expect("server");
                (server.ws_url(), server.ws_url(), Some(server))
            }
            Kind::Baseline => {
                let (sub, publish) = start_baseline().await;
                (sub, publish, None)
            }
            Kind::Holder => {
                let url = start_holder().await;
                (url.clone(), url, None)
            }
        };
        println!("READY {sub_url} {pub_url}");
        // Serve until the parent closes our standard input.
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        })
        .await;
        if let Some(server) = server {
            let _ = server.shutdown().await;
        }
    });
    true
}

/// The reference server as the benchmarks run it: memory log, on a free
/// loopback port, limits out of the way of 10,000 connections from one
/// address and of a fast publisher.
pub fn bench_server_config(live_queue: usize) -> ServerConfig {
    ServerConfig {
        storage: Storage::Memory,
        limits: Limits {
            publish_rate: 1_000_000,
            live_queue,
            max_connections: 100_000,
            max_connections_per_ip: 100_000,
            ..Limits::default()
        },
        ..ServerConfig::for_tests()
    }
}

/// The baseline: forwards every frame from the publisher to every
/// subscriber (a tokio broadcast channel, one task per socket that writes
/// whatever is ready, then flushes). Returns the subscriber and publisher
/// URLs.
pub async fn start_baseline() -> (String, String) {
    let (tx, _) = broadcast::channel::<Message>(65_536);
    let subscribers = tx.clone();
    let sub_addr = ws_server(usize::MAX, move |mut ws| {
        let mut rx = subscribers.subscribe();
        async move {
            while let Ok(m) = rx.recv().await {
                if ws.feed(m).await.is_err() {
                    return;
                }
                while let Ok(m) = rx.try_recv() {
                    if ws.feed(m).await.is_err() {
                        return;
                    }
                }
                if ws.flush().await.is_err() {
                    return;
                }
            }
        }
    })
    .await;
    let pub_addr = ws_server(usize::MAX, move |mut ws| {
        let tx = tx.clone();
        async move {
            while let Some(Ok(m)) = ws.next().await {
                if m.is_text() {
                    let _ = tx.send(m);
                }
            }
        }
    })
    .await;
    (format!("ws://{sub_addr}/"), format!("ws://{pub_addr}/"))
}

/// The holder: answers each frame with a snapshot-shaped frame, holds
/// every connection until its client goes. Returns its URL.
pub async fn start_holder() -> String {
    let addr = ws_server(usize::MAX, |mut ws| async move {
        let snapshot =
            r#"{"type":"snapshot","stream":"s","seq":0,"epoch":1,"state":{"messages":[]}}"#;
        while let Some(Ok(m)) = ws.next().await {
            if m.is_text() && ws.send(Message::text(snapshot)).await.is_err() {
                return;
            }
        }
    })
    .await;
    format!("ws://{addr}/")
}

/// User + system CPU time of process `pid` (`"self"` for this one) so far
/// (Linux; zero elsewhere).
pub fn cpu_of(pid: &str) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
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

/// Resident memory of process `pid` (`"self"` for this one), in KiB
/// (`VmRSS` in `/proc/<pid>/status`; zero elsewhere).
pub fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|kb| kb.parse().ok())
        })
        .unwrap_or(0)
}

/// The soft limit on open files of this process (`ulimit -n`), from
/// `/proc/self/limits`.
pub fn open_files_limit() -> Option<u64> {
    std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

/// Waits `d` (for benchmarks' settle times).
pub async fn settle(d: Duration) {
    tokio::time::sleep(d).await;
}
