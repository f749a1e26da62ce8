//! The contract under chaos: many messages over several streams through
//! dropped, duplicated and reordered frames, cut connections and a server
//! restart on SQLite; then history truncated during an outage.
//!
//! `SEQSYNC_CHAOS_MESSAGES` sets the total message count (default 100,000;
//! try 1,000,000 for a long run).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use seqsync::{Client, ConnectionState, SubscriptionEvent};
use seqsync_server::{Retention, Storage};
use seqsync_test_support::{
    ProxyMode, StreamCheck, TempDir, TestServer, client_config, publish_numbers, read_until,
    watch_streams,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::timeout;

const STREAMS: usize = 4;
const READ_LIMIT: Duration = Duration::from_secs(30);

fn messages() -> u64 {
    std::env::var("SEQSYNC_CHAOS_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_delivery_through_faults_cuts_and_a_restart() {
    let total = messages();
    let per_stream = total / STREAMS as u64;
    let dir = TempDir::new("chaos");
    let server = TestServer::new()
        .storage(Storage::Sqlite(dir.join("log.db")))
        .start()
        .await;
    let url = server.ws_url();
    // Readers ask the server to mistreat their connection; the writer does not.
    let faulty =
        format!("{url}?faults=seed=7,drop=0.05,dup=0.05,reorder=0.2,window=10,cut_every_ms=2000");
    let names: Vec<String> = (0..STREAMS).map(|i| format!("chaos-{i}")).collect();

    let reader = Client::connect(client_config(&faulty))
        .await
        .expect("reader");
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    watch_streams(&reader, &names, per_stream, &done_tx).await;
    drop(done_tx);

    let writer = Client::connect(client_config(&url)).await.expect("writer");
    let started = Instant::now();
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<()>();
    let publishers: Vec<_> = names
        .iter()
        .map(|name| {
            let writer = writer.clone();
            let name = name.clone();
            let ack = ack_tx.clone();
            tokio::spawn(async move {
                // Up to 64 publishes in flight per stream; each is retried by
                // the client across the restart with the same id.
                let results: Vec<_> = futures_util::stream::iter(1..=per_stream)
                    .map(|i| {
                        let writer = writer.clone();
                        let name = name.clone();
                        let ack = ack.clone();
                        async move {
                            let result = writer.publish(&name, json!({ "s": name, "i": i })).await;
                            let _ = ack.send(());
                            (i, result)
                        }
                    })
                    .buffer_unordered(64)
                    .collect()
                    .await;
                results
            })
        })
        .collect();

    // Restart the server once, mid-stream, on the same file and address.
    let restart_after = per_stream * STREAMS as u64 / 2;
    drop(ack_tx);
    let wait = timeout(Duration::from_secs(120), async {
        let mut acked = 0;
        while acked < restart_after && ack_rx.recv().await.is_some() {
            acked += 1;
        }
    })
    .await;
    assert!(wait.is_ok(), "publishing stalled before the restart");
    let server = server.restart().await;

    // Every publish is acknowledged exactly once, with distinct contiguous seqs.
    let mut acked: HashMap<String, HashMap<u64, u64>> = HashMap::new();
    for (name, task) in names.iter().zip(publishers) {
        let results = timeout(Duration::from_secs(300), task)
            .await
            .expect("publishers finish")
            .expect("publisher task");
        let seqs = acked.entry(name.clone()).or_default();
        for (i, result) in results {
            let seq = result.unwrap_or_else(|e| panic!("{name} #{i}: {e}"));
            assert!(
                seqs.insert(seq.get(), i).is_none(),
                "{name}: seq {seq} acked twice"
            );
        }
        assert_eq!(seqs.len() as u64, per_stream);
        assert_eq!(
            seqs.keys().max().copied(),
            Some(per_stream),
            "{name}: seqs are contiguous"
        );
    }
    let published_in = started.elapsed();

    let mut checks = HashMap::new();
    let all = timeout(Duration::from_secs(300), async {
        while let Some((name, check)) = done_rx.recv().await {
            checks.insert(name, check);
        }
    })
    .await;
    assert!(all.is_ok(), "readers did not catch up");
    for name in &names {
        let check = checks
            .get(name)
            .unwrap_or_else(|| panic!("{name}: reader ended early"));
        check.assert_exact(
            name,
            per_stream,
            |seq| json!({ "s": name, "i": acked[name][&seq] }),
        );
    }

    let stats = reader.stats().await.expect("stats");
    let useful = stats.history_messages - stats.history_duplicates;
    let ratio = stats.history_messages as f64 / useful.max(1) as f64;
    println!(
        "chaos: {total} messages over {STREAMS} streams in {:.1}s; reader connects {}, \
         history frames {} ({} bytes), history messages {} ({} already held), \
         fetched/missing {:.3}",
        published_in.as_secs_f64(),
        stats.connects,
        stats.history_frames,
        stats.history_bytes,
        stats.history_messages,
        stats.history_duplicates,
        ratio,
    );
    assert!(
        stats.connects >= 3,
        "cuts and the restart forced reconnects"
    );
    assert!(
        stats.history_messages > 0,
        "drops were repaired from history"
    );
    assert!(
        ratio <= 1.1,
        "recovery fetched {ratio:.3}x what was missing"
    );
    reader.close().await;
    writer.close().await;
    server.stop().await;
}

#[tokio::test]
async fn history_truncated_during_outage_gives_reset_then_snapshot() {
    let server = TestServer::new()
        .config(|c| {
            c.retention = Retention {
                max_count: Some(100),
                max_age_ms: None,
            }
        })
        .start()
        .await;
    let (proxy, reader) = server.client_behind_proxy(|_| {}).await;
    let writer = server.client().await;
    let mut sub = reader.subscribe("trim").await.expect("subscribe");
    let mut check = StreamCheck::recording();
    publish_numbers(&writer, "trim", 1..=10).await;
    assert!(
        read_until(&mut sub, &mut check, 10, READ_LIMIT).await,
        "first ten"
    );

    proxy.set(ProxyMode::Down);
    let mut state = reader.connection_state();
    timeout(
        Duration::from_secs(30),
        state.wait_for(|s| matches!(s, ConnectionState::Disconnected { .. })),
    )
    .await
    .expect("outage noticed")
    .expect("state");
    publish_numbers(&writer, "trim", 11..=400).await;
    proxy.set(ProxyMode::Forward);
    assert!(
        read_until(&mut sub, &mut check, 400, READ_LIMIT).await,
        "caught up"
    );

    assert_eq!(check.resets, 1, "the gap could not be filled: one reset");
    let events = check.events();
    let reset_at = events
        .iter()
        .position(|e| matches!(e, SubscriptionEvent::Reset { .. }))
        .expect("reset event");
    let after: Vec<&SubscriptionEvent> = events[reset_at..]
        .iter()
        .filter(|e| !matches!(e, SubscriptionEvent::Phase(_)))
        .collect();
    match after.get(1) {
        Some(SubscriptionEvent::Snapshot { seq, state, .. }) => {
            assert!(
                seq.get() >= 300,
                "snapshot after the trimmed range, got {seq}"
            );
            let held = state
                .to_value()
                .expect("the state is JSON")
                .get("messages")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            assert!(held > 0, "the snapshot carries the retained messages");
        }
        other => panic!("expected a snapshot right after the reset, got {other:?}"),
    }
    // Never silent loss: no message between 11 and the snapshot was delivered
    // as if contiguous.
    assert!((11..=299).all(|seq| !check.delivered.contains_key(&seq)));
    reader.close().await;
    writer.close().await;
}
