//! Native client benchmarks, each against a baseline in the same run.
//!
//! 1. Receive throughput: a WebSocket source sends the same pre-encoded `msg`
//!    frames as fast as it can to (a) a raw tokio-tungstenite client that
//!    reads each frame and parses it into a `serde_json::Value`, and (b) the
//!    seqsync client, which also sequences each message and hands it to the
//!    application: as the raw payload (the application parses what it
//!    needs), or decoded into the application's struct (`subscribe_as`).
//!    Rounds alternate; medians are reported with their ratios (target:
//!    seqsync >= 1.0x raw). A counting allocator gives the heap allocations
//!    per message of each round, next to a client that only reads frames.
//! 2. Recovery: a reader behind a proxy misses K messages during an outage;
//!    time from the proxy coming back to the reader holding all of them, and
//!    history bytes fetched vs the bytes of the missed `msg` frames.
//!
//! `cargo bench -p seqsync-e2e --bench client_throughput`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use seqsync::{Client, ClientConfig, ConnectionState, SubscriptionEvent};
use seqsync_core::protocol::{ServerFrame, parse_server_frame};
use seqsync_test_support::{Proxy, ProxyMode, StreamCheck, TestServer, ws_server};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const FRAMES: u64 = 200_000;
const ROUNDS: usize = 5;

/// Counts every heap allocation of the process.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One round's time and the allocations made during it, per frame.
#[derive(Clone, Copy)]
struct Round {
    time: Duration,
    allocations: f64,
}

async fn counted(round: impl std::future::Future<Output = Duration>) -> Round {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let time = round.await;
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    Round {
        time,
        allocations: (after - before) as f64 / FRAMES as f64,
    }
}

/// The payload of every bench message, as an application would decode it.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Chat {
    user: String,
    text: String,
    n: u64,
}

/// How the seqsync client is read.
#[derive(Clone, Copy)]
enum Consumer {
    /// Raw payloads, one event per wake-up.
    Raw,
    /// Raw payloads, many events per wake-up (`next_batch`).
    RawBatched,
    /// Every payload decoded into `Chat` (`subscribe_as`, `next_batch`).
    Typed,
}

/// Serves one connection per accept: waits for the first client frame, then
/// sends a snapshot at 0 and `FRAMES` msg frames.
async fn source(frames: std::sync::Arc<Vec<String>>) -> std::net::SocketAddr {
    ws_server(usize::MAX, move |mut ws| {
        let frames = frames.clone();
        async move {
            // The first frame is the client's subscribe.
            let _ = ws.next().await;
            let snapshot = r#"{"type":"snapshot","stream":"bench","seq":0,"epoch":1,"state":null}"#;
            if ws.feed(Message::text(snapshot)).await.is_err() {
                return;
            }
            for frame in frames.iter() {
                if ws.feed(Message::text(frame.as_str())).await.is_err() {
                    return;
                }
            }
            let _ = ws.flush().await;
            // Keep the socket open until the client goes.
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await
}

async fn raw_round(url: &str) -> Duration {
    // Both rounds are timed from before the connection is opened.
    let started = Instant::now();
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("raw connect");
    ws.send(Message::text(r#"{"type":"subscribe","stream":"bench"}"#))
        .await
        .expect("send");
    let mut seen = 0u64;
    while seen < FRAMES {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                if let Ok(ServerFrame::Msg { .. }) =
                    parse_server_frame::<Value>(text.as_str(), 1 << 20)
                {
                    seen += 1;
                }
            }
            Some(Ok(_)) => {}
            _ => panic!("raw client lost the source at {seen}"),
        }
    }
    let elapsed = started.elapsed();
    let _ = ws.close(None).await;
    elapsed
}

/// Reads the frames and does nothing with them: what the source and the
/// socket cost alone.
async fn drain_round(url: &str) -> Duration {
    let started = Instant::now();
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    ws.send(Message::text(r#"{"type":"subscribe","stream":"bench"}"#))
        .await
        .expect("send");
    let mut seen = 0u64;
    while seen <= FRAMES {
        match ws.next().await {
            Some(Ok(Message::Text(_))) => seen += 1,
            Some(Ok(_)) => {}
            _ => panic!("lost the source at {seen}"),
        }
    }
    let elapsed = started.elapsed();
    let _ = ws.close(None).await;
    elapsed
}

async fn seqsync_round(url: &str, consumer: Consumer) -> Duration {
    let started = Instant::now();
    let client = Client::connect(ClientConfig::new(url))
        .await
        .expect("connect");
    let mut last = 0u64;
    match consumer {
        Consumer::Raw => {
            let mut sub = client.subscribe("bench").await.expect("subscribe");
            while last < FRAMES {
                match sub.next().await {
                    Some(SubscriptionEvent::Message { seq, .. }) => last = seq.get(),
                    Some(_) => {}
                    None => panic!("seqsync client ended at {last}"),
                }
            }
        }
        Consumer::RawBatched => {
            let mut sub = client.subscribe("bench").await.expect("subscribe");
            let mut batch = Vec::with_capacity(256);
            while last < FRAMES {
                assert!(sub.next_batch(&mut batch, 256).await > 0, "ended at {last}");
                for event in batch.drain(..) {
                    if let SubscriptionEvent::Message { seq, .. } = event {
                        last = seq.get();
                    }
                }
            }
        }
        Consumer::Typed => {
            let mut sub = client
                .subscribe_as::<Chat>("bench")
                .await
                .expect("subscribe");
            let mut batch = Vec::with_capacity(256);
            while last < FRAMES {
                assert!(sub.next_batch(&mut batch, 256).await > 0, "ended at {last}");
                for event in batch.drain(..) {
                    match event {
                        SubscriptionEvent::Message { seq, data, .. } => {
                            assert_eq!(data.n, seq.get(), "decoded payload of {seq}");
                            last = seq.get();
                        }
                        SubscriptionEvent::Undecodable { seq, error, .. } => {
                            panic!("{seq}: {error}")
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    let elapsed = started.elapsed();
    client.close().await;
    elapsed
}

fn median(mut values: Vec<Round>) -> Round {
    values.sort_by_key(|r| r.time);
    values[values.len() / 2]
}

async fn throughput() {
    let frames: Vec<String> = (1..=FRAMES)
        .map(|seq| {
            json!({"type":"msg","stream":"bench","seq":seq,"epoch":1,
                   "data":{"user":"ada","text":"hello, world","n":seq}})
            .to_string()
        })
        .collect();
    let bytes: usize = frames.iter().map(String::len).sum();
    let addr = source(std::sync::Arc::new(frames)).await;
    let url = format!("ws://{addr}/ws");
    // One warm-up of each, then alternating rounds.
    drain_round(&url).await;
    raw_round(&url).await;
    for consumer in [Consumer::Raw, Consumer::RawBatched, Consumer::Typed] {
        seqsync_round(&url, consumer).await;
    }
    let mut rounds: [Vec<Round>; 5] = Default::default();
    for _ in 0..ROUNDS {
        // The baselines read in a task of the runtime, as the seqsync
        // client's background task does, not on the thread that waits.
        let url_drain = url.clone();
        rounds[0].push(
            counted(async move {
                tokio::spawn(async move { drain_round(&url_drain).await })
                    .await
                    .expect("drain round")
            })
            .await,
        );
        let url_raw = url.clone();
        rounds[1].push(
            counted(async move {
                tokio::spawn(async move { raw_round(&url_raw).await })
                    .await
                    .expect("raw round")
            })
            .await,
        );
        for (i, consumer) in [Consumer::Raw, Consumer::RawBatched, Consumer::Typed]
            .into_iter()
            .enumerate()
        {
            rounds[2 + i].push(counted(seqsync_round(&url, consumer)).await);
        }
    }
    let [drain, raw, ours, batched, typed] = rounds.map(median);
    let rate = |r: Round| FRAMES as f64 / r.time.as_secs_f64();
    let ns = |r: Round| r.time.as_nanos() as f64 / FRAMES as f64;
    println!(
        "receive throughput: {FRAMES} msg frames ({bytes} bytes) per round, median of {ROUNDS}"
    );
    println!("| client | msgs/s | ns/msg | allocations/msg | vs raw |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, r) in [
        ("read only (no parse: the source and the socket)", drain),
        ("raw tokio-tungstenite read + parse into `Value`", raw),
        ("seqsync, raw payloads, `next()`", ours),
        ("seqsync, raw payloads, `next_batch`", batched),
        (
            "seqsync, decoded into a struct (`subscribe_as`, `next_batch`)",
            typed,
        ),
    ] {
        println!(
            "| {name} | {:.0} | {:.0} | {:.2} | {:.2}x |",
            rate(r),
            ns(r),
            r.allocations,
            rate(r) / rate(raw)
        );
    }
    println!(
        "seqsync's own allocations per message (over the read-only client): raw payloads {:.2}, next_batch {:.2}, decoded {:.2}",
        ours.allocations - drain.allocations,
        batched.allocations - drain.allocations,
        typed.allocations - drain.allocations
    );
}

async fn recovery(missed: u64) {
    let server = TestServer::new().start().await;
    let proxy = Proxy::start(server.local_addr()).await;
    let config = ClientConfig::new(proxy.ws_url())
        .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(20));
    let reader = Client::connect(config).await.expect("reader");
    let writer = Client::connect(ClientConfig::new(server.ws_url()))
        .await
        .expect("writer");
    let mut sub = reader.subscribe("rec").await.expect("subscribe");
    let mut check = StreamCheck::default();
    writer
        .publish("rec", json!({"n": 0}))
        .await
        .expect("publish");
    while check.last < 1 {
        check.apply("rec", sub.next().await.expect("event"));
    }
    proxy.set(ProxyMode::Down);
    let mut state = reader.connection_state();
    let _ = state
        .wait_for(|s| matches!(s, ConnectionState::Disconnected { .. }))
        .await;
    let mut missed_bytes = 0usize;
    let burst: Vec<_> = (1..=missed)
        .map(|n| {
            let writer = writer.clone();
            async move {
                writer
                    .publish("rec", json!({"user":"ada","text":"hello, world","n": n}))
                    .await
            }
        })
        .collect();
    let acked: Vec<_> = futures_util::stream::iter(burst)
        .buffer_unordered(256)
        .collect()
        .await;
    for seq in acked {
        let seq = seq.expect("acked").get();
        // What the live path would have sent for this message.
        missed_bytes += json!({"type":"msg","stream":"rec","seq":seq,"epoch":1,
                               "data":{"user":"ada","text":"hello, world","n": seq - 1}})
        .to_string()
        .len();
    }
    let before = reader.stats().await.expect("stats");
    let started = Instant::now();
    proxy.set(ProxyMode::Forward);
    while check.last < missed + 1 {
        check.apply("rec", sub.next().await.expect("event"));
    }
    let caught_up = started.elapsed();
    let after = reader.stats().await.expect("stats");
    let fetched = after.history_bytes - before.history_bytes;
    println!(
        "| {missed} | {:.1} ms | {} | {} | {:.3} |",
        caught_up.as_secs_f64() * 1e3,
        fetched,
        missed_bytes,
        fetched as f64 / missed_bytes as f64
    );
    drop(sub);
    reader.close().await;
    writer.close().await;
    server.stop().await;
}

fn main() {
    // SEQSYNC_BENCH_RUNTIME=current runs everything on one thread (no
    // cross-thread wake-ups or frees); the default is 2 worker threads.
    let current = std::env::var("SEQSYNC_BENCH_RUNTIME").is_ok_and(|v| v == "current");
    let runtime = if current {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    }
    .expect("runtime");
    // SEQSYNC_BENCH_ONLY=throughput or =recovery runs one part.
    let only = std::env::var("SEQSYNC_BENCH_ONLY").unwrap_or_default();
    runtime.block_on(async {
        if only != "recovery" {
            throughput().await;
        }
        if only == "throughput" {
            return;
        }
        println!();
        println!("recovery after an outage (reference server, in-memory log, loopback proxy):");
        println!("| messages missed | reconnect to caught up | history bytes fetched | bytes missed (as msg frames) | fetched / missed |");
        println!("| ---: | ---: | ---: | ---: | ---: |");
        for missed in [1_000, 10_000, 50_000] {
            recovery(missed).await;
        }
    });
}
