//! Native client benchmarks, each against a baseline in the same run.
//!
//! 1. Receive throughput: a WebSocket source sends the same pre-encoded `msg`
//!    frames as fast as it can to (a) a raw tokio-tungstenite client that
//!    only reads and parses them and (b) the seqsync client, which also
//!    sequences them and hands them to the application. Rounds alternate;
//!    medians are reported with their ratio (target: seqsync >= 0.9x raw).
//! 2. Recovery: a reader behind a proxy misses K messages during an outage;
//!    time from the proxy coming back to the reader holding all of them, and
//!    history bytes fetched vs the bytes of the missed `msg` frames.
//!
//! `cargo bench -p seqsync-e2e --bench client_throughput`

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use seqsync::{Client, ClientConfig, ConnectionState, SubscriptionEvent};
use seqsync_core::protocol::{ServerFrame, parse_server_frame};
use seqsync_test_support::{Proxy, ProxyMode, StreamCheck, TestServer, ws_server};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const FRAMES: u64 = 200_000;
const ROUNDS: usize = 5;

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

async fn seqsync_round(url: &str, batched: bool) -> Duration {
    let started = Instant::now();
    let client = Client::connect(ClientConfig::new(url))
        .await
        .expect("connect");
    let mut sub = client.subscribe("bench").await.expect("subscribe");
    let mut last = 0u64;
    let mut batch = Vec::with_capacity(256);
    while last < FRAMES {
        if batched {
            if sub.next_batch(&mut batch, 256).await == 0 {
                panic!("seqsync client ended at {last}");
            }
            for event in batch.drain(..) {
                if let SubscriptionEvent::Message { seq, .. } = event {
                    last = seq.get();
                }
            }
            continue;
        }
        match sub.next().await {
            Some(SubscriptionEvent::Message { seq, .. }) => last = seq.get(),
            Some(_) => {}
            None => panic!("seqsync client ended at {last}"),
        }
    }
    let elapsed = started.elapsed();
    drop(sub);
    client.close().await;
    elapsed
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
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
    let (mut raw, mut ours, mut batched) = (Vec::new(), Vec::new(), Vec::new());
    // One warm-up of each, then alternating rounds.
    raw_round(&url).await;
    seqsync_round(&url, false).await;
    seqsync_round(&url, true).await;
    for _ in 0..ROUNDS {
        // The raw client reads in a task of the runtime, as the seqsync
        // client's background task does, not on the thread that waits.
        let task = tokio::spawn({
            let url = url.clone();
            async move { raw_round(&url).await }
        });
        raw.push(task.await.expect("raw round"));
        ours.push(seqsync_round(&url, false).await);
        batched.push(seqsync_round(&url, true).await);
    }
    let (raw, ours, batched) = (median(raw), median(ours), median(batched));
    let rate = |d: Duration| FRAMES as f64 / d.as_secs_f64();
    println!(
        "receive throughput: {FRAMES} msg frames ({} bytes) per round, median of {ROUNDS}",
        bytes
    );
    println!("| client | msgs/s | ns/msg |");
    println!("| --- | ---: | ---: |");
    println!(
        "| raw tokio-tungstenite read + parse | {:.0} | {:.0} |",
        rate(raw),
        raw.as_nanos() as f64 / FRAMES as f64
    );
    println!(
        "| seqsync client (parse + sequence + deliver) | {:.0} | {:.0} |",
        rate(ours),
        ours.as_nanos() as f64 / FRAMES as f64
    );
    println!(
        "| seqsync client, read with `next_batch` | {:.0} | {:.0} |",
        rate(batched),
        batched.as_nanos() as f64 / FRAMES as f64
    );
    println!(
        "ratio seqsync / raw throughput: {:.2}x; with next_batch: {:.2}x",
        rate(ours) / rate(raw),
        rate(batched) / rate(raw)
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
    runtime.block_on(async {
        throughput().await;
        println!();
        println!("recovery after an outage (reference server, in-memory log, loopback proxy):");
        println!("| messages missed | reconnect to caught up | history bytes fetched | bytes missed (as msg frames) | fetched / missed |");
        println!("| ---: | ---: | ---: | ---: | ---: |");
        for missed in [1_000, 10_000, 50_000] {
            recovery(missed).await;
        }
    });
}
