//! Fault injection: deterministic from its seed, and the native client turns
//! a faulty connection back into the exact log.

use std::time::Duration;

use seqsync::Client;
use seqsync_test_support::{
    Running, StreamCheck, TestServer, WsClient, client_config, connect, eventually, read_until,
    read_until_snapshot,
};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(60);

async fn live_seqs(client: &mut WsClient, count: usize) -> Vec<u64> {
    let mut seqs = Vec::with_capacity(count);
    while seqs.len() < count {
        let msg = client.next_of("msg").await;
        seqs.push(msg["seq"].as_u64().unwrap_or(0));
    }
    seqs
}

#[tokio::test]
async fn same_seed_gives_the_same_pattern() {
    let server = TestServer::with_config(|c| c.heartbeat_ms = 5_000).await;
    let spec = "faults=seed=5,drop=0.1,dup=0.1,reorder=0.3,window=6";
    let mut a = WsClient::connect(&server.url_with(spec)).await;
    let mut b = WsClient::connect(&server.url_with(spec)).await;
    let other = "faults=seed=6,drop=0.1,dup=0.1,reorder=0.3,window=6";
    let mut c = WsClient::connect(&server.url_with(other)).await;
    for client in [&mut a, &mut b, &mut c] {
        client.subscribe("f").await;
    }
    server.ws().await.publish_many("f", "p", 400).await;
    let (sa, sb, sc) = (
        live_seqs(&mut a, 300).await,
        live_seqs(&mut b, 300).await,
        live_seqs(&mut c, 300).await,
    );
    assert_eq!(sa, sb, "same seed, same pattern");
    assert_ne!(sa, sc, "another seed, another pattern");
    assert_ne!(
        sa,
        (1..=300).collect::<Vec<u64>>(),
        "faults changed the flow"
    );
    assert!(server.metrics().fault_dropped > 0);
}

/// Publishes `{"i": 0..n}` to `stream` while a native client reads it
/// through the faults of `query` (from its first snapshot on); checks that
/// the client got exactly the log, and returns it for more checks.
async fn read_through_faults(server: &Running, query: &str, stream: &str, n: u64) -> Client {
    let reader = connect(client_config(&server.url_with(query))).await;
    let mut sub = reader.subscribe(stream).await.expect("subscribe");
    let mut check = StreamCheck::default();
    assert!(
        read_until_snapshot(&mut sub, &mut check, LIMIT).await,
        "a snapshot"
    );
    server
        .ws()
        .await
        .publish_many(stream, "p", n as usize)
        .await;
    let read = read_until(&mut sub, &mut check, n, LIMIT).await;
    assert!(read, "{stream}: at {} of {n}", check.last);
    check.assert_exact(stream, n, |seq| json!({ "i": seq - 1 }));
    reader
}

#[tokio::test]
async fn the_client_gets_the_exact_log_through_drop_dup_reorder() {
    let server = TestServer::new().start().await;
    let faults = "faults=seed=42,drop=0.05,dup=0.05,reorder=0.2,window=10,delay_ms=0..3";
    let reader = read_through_faults(&server, faults, "exact", 2000).await;
    assert!(server.metrics().fault_dropped > 0);
    reader.close().await;
}

#[tokio::test]
async fn the_client_gets_the_exact_log_across_cut_connections() {
    let server = TestServer::new().start().await;
    let faults = "faults=seed=3,drop=0.05,dup=0.05,reorder=0.2,window=8,cut_every_frames=400";
    let reader = read_through_faults(&server, faults, "cuts", 1500).await;
    let stats = reader.stats().await.expect("stats");
    assert!(stats.connects >= 2, "the connection was cut at least once");
    assert!(server.metrics().cuts >= 1);
    reader.close().await;
}

#[tokio::test]
async fn server_wide_faults_apply_to_every_connection() {
    let server =
        TestServer::with_config(|c| c.faults = Some("seed=1,drop=0.5".parse().expect("spec")))
            .await;
    let mut reader = server.ws().await;
    reader.subscribe("w").await;
    server.ws().await.publish_many("w", "p", 200).await;
    eventually("half of the live frames dropped", || {
        server.metrics().fault_dropped >= 50
    })
    .await;
    assert!(server.metrics().fault_dropped < 200);
}

#[tokio::test]
async fn cut_every_ms_drops_the_connection_without_a_close_frame() {
    let server = TestServer::new().start().await;
    let mut client = WsClient::connect(&server.url_with("faults=cut_every_ms=150")).await;
    client.subscribe("t").await;
    assert_eq!(
        client.closed().await,
        None,
        "a cut is abrupt, not a close handshake"
    );
    eventually("the cut is counted", || server.metrics().cuts == 1).await;
}
