//! Fault injection: deterministic from its seed, and the client core turns a
//! faulty connection back into the exact log.

mod common;

use common::sequencer::{assert_exact, follow};
use common::*;

async fn live_seqs(client: &mut Client, count: usize) -> Vec<u64> {
    let mut seqs = Vec::with_capacity(count);
    while seqs.len() < count {
        let msg = client.next_of("msg").await;
        seqs.push(msg["seq"].as_u64().unwrap_or(0));
    }
    seqs
}

#[tokio::test]
async fn same_seed_gives_the_same_pattern() {
    let server = start(ServerConfig {
        heartbeat_ms: 5_000,
        ..config()
    })
    .await;
    let spec = "seed=5,drop=0.1,dup=0.1,reorder=0.3,window=6";
    let url = |spec: &str| format!("{}?faults={spec}", server.ws_url());
    let mut a = Client::connect(&url(spec)).await;
    let mut b = Client::connect(&url(spec)).await;
    let mut c = Client::connect(&url("seed=6,drop=0.1,dup=0.1,reorder=0.3,window=6")).await;
    for client in [&mut a, &mut b, &mut c] {
        client.subscribe("f").await;
    }
    let mut publisher = Client::connect(&server.ws_url()).await;
    publisher.publish_many("f", "p", 400).await;
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
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn sequencer_gets_the_exact_log_through_drop_dup_reorder() {
    const N: u64 = 2000;
    let server = start(config()).await;
    let url = format!(
        "{}?faults=seed=42,drop=0.05,dup=0.05,reorder=0.2,window=10,delay_ms=0..3",
        server.ws_url()
    );
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let follower =
        tokio::spawn(async move { follow(&url, "exact", N, Some(ready_tx), None).await });
    ready_rx.await.expect("snapshot");
    let mut publisher = Client::connect(&server.ws_url()).await;
    publisher.publish_many("exact", "p", N as usize).await;
    let seen = follower.await.expect("follower");
    assert_exact(&seen, N);
    assert_eq!(seen.resets, 0);
    assert!(server.metrics().fault_dropped > 0);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn sequencer_gets_the_exact_log_across_cut_connections() {
    const N: u64 = 1500;
    let server = start(config()).await;
    let url = format!(
        "{}?faults=seed=3,drop=0.05,dup=0.05,reorder=0.2,window=8,cut_every_frames=400",
        server.ws_url()
    );
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let follower = tokio::spawn(async move { follow(&url, "cuts", N, Some(ready_tx), None).await });
    ready_rx.await.expect("snapshot");
    let mut publisher = Client::connect(&server.ws_url()).await;
    publisher.publish_many("cuts", "p", N as usize).await;
    let seen = follower.await.expect("follower");
    assert_exact(&seen, N);
    assert!(seen.reconnects >= 1, "the connection was cut at least once");
    assert!(server.metrics().cuts >= 1);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn server_wide_faults_apply_to_every_connection() {
    let server = start(ServerConfig {
        faults: Some("seed=1,drop=0.5".parse().expect("spec")),
        ..config()
    })
    .await;
    let mut reader = Client::connect(&server.ws_url()).await;
    reader.subscribe("w").await;
    let mut publisher = Client::connect(&server.ws_url()).await;
    publisher.publish_many("w", "p", 200).await;
    eventually("half of the live frames dropped", || {
        server.metrics().fault_dropped >= 50
    })
    .await;
    let m = server.metrics();
    assert!(m.fault_dropped < 200);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn cut_every_ms_drops_the_connection_without_a_close_frame() {
    let server = start(config()).await;
    let mut client = Client::connect(&format!("{}?faults=cut_every_ms=150", server.ws_url())).await;
    client.subscribe("t").await;
    let code = loop {
        match client.read().await {
            Read::Frame(_) => continue,
            Read::Closed(code) => break code,
        }
    };
    assert_eq!(code, None, "a cut is abrupt, not a close handshake");
    eventually("the cut is counted", || server.metrics().cuts == 1).await;
    server.shutdown().await.expect("shutdown");
}
