//! A reader that stops reading costs bounded memory: its live queue is
//! capped and overflow is dropped and counted. Once it reads again, the
//! client core recovers every message through `head` and `history`.

mod common;

use common::sequencer::{assert_exact, follow};
use common::*;
use serde_json::json;

#[tokio::test]
async fn slow_reader_is_bounded_then_recovers_everything() {
    const N: u64 = 3000;
    const LIVE_QUEUE: usize = 64;
    let server = start(ServerConfig {
        limits: Limits {
            live_queue: LIVE_QUEUE,
            ..Limits::default()
        },
        ..config()
    })
    .await;
    let url = server.ws_url();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (gate_tx, gate_rx) = tokio::sync::oneshot::channel();
    let follower =
        tokio::spawn(async move { follow(&url, "slow", N, Some(ready_tx), Some(gate_rx)).await });
    ready_rx.await.expect("follower got its snapshot");

    let mut publisher = Client::connect(&server.ws_url()).await;
    let pad = "x".repeat(8 * 1024);
    for i in 0..N {
        publisher
            .send(json!({"type": "publish", "stream": "slow", "id": format!("p{i}"), "data": {"i": i, "pad": pad}}))
            .await;
    }
    for _ in 0..N {
        publisher.next_of("ack").await;
    }
    let m = server.metrics();
    assert!(
        m.live_dropped > 0,
        "the stalled reader must have lost live frames: {m:?}"
    );
    assert_eq!(
        m.queue_depth_max, LIVE_QUEUE as u64,
        "the live queue filled up to its cap and no further"
    );
    assert!(
        m.queue_depth <= LIVE_QUEUE as u64,
        "{} frames queued while the reader is stalled (cap {LIVE_QUEUE})",
        m.queue_depth
    );

    gate_tx.send(()).expect("release the reader");
    let seen = follower.await.expect("follower");
    assert_exact(&seen, N);
    assert!(seen.history_requests > 0, "recovery went through history");
    assert!(server.metrics().history_requests > 0);
    server.shutdown().await.expect("shutdown");
}
