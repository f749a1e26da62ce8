//! A reader that stops reading costs bounded memory: its live queue is
//! capped and overflow is dropped and counted. Once it reads again, the
//! client recovers every message through `head` and `history`.

use std::time::Duration;

use seqsync_test_support::{
    StreamCheck, TestServer, client_config, connect, read_until, read_until_snapshot,
};
use serde_json::json;

#[tokio::test]
async fn slow_reader_is_bounded_then_recovers_everything() {
    const N: u64 = 3000;
    const LIVE_QUEUE: usize = 64;
    const LIMIT: Duration = Duration::from_secs(60);
    let server = TestServer::with_limits(|l| l.live_queue = LIVE_QUEUE).await;
    // A small buffer: once it is full the client stops reading its socket,
    // as an application that stops reading makes it do.
    let mut config = client_config(&server.ws_url());
    config.subscription_buffer = 16;
    let reader = connect(config).await;
    let mut sub = reader.subscribe("slow").await.expect("subscribe");
    let mut check = StreamCheck::default();
    assert!(read_until_snapshot(&mut sub, &mut check, LIMIT).await);

    // The application reads nothing while this is published.
    let mut publisher = server.ws().await;
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

    // It reads again: everything arrives, the dropped part through history.
    assert!(
        read_until(&mut sub, &mut check, N, LIMIT).await,
        "at {}",
        check.last
    );
    check.assert_exact("slow", N, |seq| json!({ "i": seq - 1, "pad": pad }));
    let stats = reader.stats().await.expect("stats");
    assert!(stats.history_frames > 0, "recovery went through history");
    assert!(server.metrics().history_requests > 0);
    reader.close().await;
}
