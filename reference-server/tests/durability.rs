//! SQLite durability: every acknowledged publish is there after a restart,
//! with the same seq and epoch.

use std::collections::HashMap;

use seqsync_server::Storage;
use seqsync_test_support::{Read, TempDir, TestServer};
use serde_json::{Value, json};

fn sqlite(dir: &TempDir) -> TestServer {
    TestServer::new().storage(Storage::Sqlite(dir.join("log.db")))
}

#[tokio::test]
async fn acked_publishes_survive_a_restart_with_the_same_seq_and_epoch() {
    let dir = TempDir::new("restart");
    let server = sqlite(&dir).start().await;
    let mut client = server.ws().await;
    let epoch = client.subscribe("d").await["epoch"].clone();
    let seqs = client.publish_many("d", "id", 300).await;
    assert_eq!(seqs, (1..=300).collect::<Vec<u64>>());
    drop(client);
    let server = server.restart().await;

    let mut client = server.ws().await;
    let snap = client.subscribe("d").await;
    assert_eq!(snap["epoch"], epoch, "the epoch is kept across restarts");
    assert_eq!(snap["seq"], 300);
    let got = client.history("d", 1, 300).await;
    let want: Vec<(u64, Value)> = (1..=300).map(|s| (s, json!({"i": s - 1}))).collect();
    assert_eq!(got, want);
    // Idempotency ids are durable too; new publishes continue the seqs.
    assert_eq!(client.publish("d", "id7", json!("retry")).await, 8);
    assert_eq!(client.publish("d", "new", json!("next")).await, 301);
}

#[tokio::test]
async fn a_stream_subscribed_while_empty_keeps_its_epoch_across_a_restart() {
    // An empty stream has no row; its epoch is the file's, so a client that
    // resumes it from 0 after a restart is answered `subscribed`, not reset.
    let dir = TempDir::new("empty-epoch");
    let server = sqlite(&dir).start().await;
    let mut client = server.ws().await;
    let snap = client.subscribe("quiet").await;
    assert_eq!(snap["seq"], 0);
    let epoch = snap["epoch"].clone();
    drop(client);
    let server = server.restart().await;

    let mut client = server.ws().await;
    client
        .send(json!({"type": "subscribe", "stream": "quiet", "since": 0, "epoch": epoch}))
        .await;
    let answer = client.next_of("subscribed").await;
    assert_eq!(answer["epoch"], epoch, "{answer}");
    assert_eq!(answer["head"], 0);
    // Its first message is stored in that epoch.
    assert_eq!(client.publish("quiet", "q1", json!(1)).await, 1);
    drop(client);
    let server = server.restart().await;
    let mut client = server.ws().await;
    assert_eq!(client.subscribe("quiet").await["epoch"], epoch);
}

#[tokio::test]
async fn shutdown_during_a_publish_burst_loses_no_acked_message() {
    let dir = TempDir::new("burst");
    let server = sqlite(&dir).start().await;
    let addr = server.local_addr();
    let mut client = server.ws().await;
    for i in 0..2000 {
        client
            .send(
                json!({"type": "publish", "stream": "b", "id": format!("b{i}"), "data": {"i": i}}),
            )
            .await;
    }
    let mut acked: HashMap<u64, Value> = HashMap::new();
    let mut record = |ack: &Value| {
        let i: u64 = ack["id"]
            .as_str()
            .and_then(|id| id.strip_prefix('b'))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("ack of an unknown id: {ack}"));
        acked.insert(ack["seq"].as_u64().unwrap_or(0), json!({ "i": i }));
    };
    record(&client.next_of("ack").await);
    let stop = tokio::spawn(server.stop());
    loop {
        match client.read().await {
            Read::Frame(f) if f["type"] == "ack" => record(&f),
            Read::Frame(_) => {}
            Read::Closed(_) => break,
        }
    }
    stop.await.expect("join");
    assert!(!acked.is_empty());

    let server = sqlite(&dir).start_on(addr).await;
    let mut client = server.ws().await;
    let head = client.subscribe("b").await["seq"].as_u64().unwrap_or(0);
    let max_acked = acked.keys().copied().max().unwrap_or(0);
    assert!(
        head >= max_acked,
        "head {head} below an acked seq {max_acked}"
    );
    let got: HashMap<u64, Value> = client.history("b", 1, head).await.into_iter().collect();
    for (seq, data) in &acked {
        assert_eq!(got.get(seq), Some(data), "acked seq {seq} lost");
    }
}

#[tokio::test]
async fn a_new_log_file_is_a_new_epoch() {
    let (one, two) = (TempDir::new("epoch1"), TempDir::new("epoch2"));
    let a = sqlite(&one).start().await;
    let b = sqlite(&two).start().await;
    let ea = a.ws().await.subscribe("s").await["epoch"].clone();
    let eb = b.ws().await.subscribe("s").await["epoch"].clone();
    assert_ne!(ea, eb);
    a.stop().await;
    b.stop().await;
}
