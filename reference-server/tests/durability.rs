//! SQLite durability: every acknowledged publish is there after a restart,
//! with the same seq and epoch.

mod common;

use std::collections::HashMap;

use common::*;
use seqsync_server::Storage;
use serde_json::{Value, json};

fn sqlite(dir: &TempDir) -> ServerConfig {
    ServerConfig {
        storage: Storage::Sqlite(dir.0.join("log.db")),
        ..config()
    }
}

async fn read_all(client: &mut Client, stream: &str, to: u64) -> HashMap<u64, Value> {
    let mut got = HashMap::new();
    let mut from = 1;
    while from <= to {
        client
            .send(json!({"type": "history", "stream": stream, "from": from, "to": to}))
            .await;
        let page = client.next_of("history").await;
        for m in page["messages"].as_array().expect("messages") {
            got.insert(m["seq"].as_u64().unwrap_or(0), m["data"].clone());
        }
        from = page["to"].as_u64().expect("to") + 1;
    }
    got
}

#[tokio::test]
async fn acked_publishes_survive_a_restart_with_the_same_seq_and_epoch() {
    let dir = TempDir::new("restart");
    let server = start(sqlite(&dir)).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let epoch = client.subscribe("d").await["epoch"].clone();
    let seqs = client.publish_many("d", "id", 300).await;
    assert_eq!(seqs, (1..=300).collect::<Vec<u64>>());
    drop(client);
    server.shutdown().await.expect("shutdown");

    let server = start(sqlite(&dir)).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let snap = client.subscribe("d").await;
    assert_eq!(snap["epoch"], epoch, "the epoch is kept across restarts");
    assert_eq!(snap["seq"], 300);
    let got = read_all(&mut client, "d", 300).await;
    assert_eq!(got.len(), 300);
    for seq in 1..=300u64 {
        assert_eq!(got[&seq], json!({"i": seq - 1}));
    }
    // Idempotency ids are durable too; new publishes continue the seqs.
    assert_eq!(client.publish("d", "id7", json!("retry")).await, 8);
    assert_eq!(client.publish("d", "new", json!("next")).await, 301);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn shutdown_during_a_publish_burst_loses_no_acked_message() {
    let dir = TempDir::new("burst");
    let server = start(sqlite(&dir)).await;
    let mut client = Client::connect(&server.ws_url()).await;
    for i in 0..2000 {
        client
            .send(
                json!({"type": "publish", "stream": "b", "id": format!("b{i}"), "data": {"i": i}}),
            )
            .await;
    }
    let mut acked: HashMap<u64, u64> = HashMap::new();
    let first = client.next_of("ack").await;
    acked.insert(
        first["seq"].as_u64().unwrap_or(0),
        first["id"]
            .as_str()
            .unwrap_or("b")
            .trim_start_matches('b')
            .parse()
            .unwrap_or(0),
    );
    let stop = tokio::spawn(server.shutdown());
    loop {
        match client.read().await {
            Read::Frame(f) if f["type"] == "ack" => {
                let i: u64 = f["id"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches('b')
                    .parse()
                    .unwrap_or(u64::MAX);
                acked.insert(f["seq"].as_u64().unwrap_or(0), i);
            }
            Read::Frame(_) => {}
            Read::Closed(_) => break,
        }
    }
    stop.await.expect("join").expect("shutdown");
    assert!(!acked.is_empty());

    let server = start(sqlite(&dir)).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let head = client.subscribe("b").await["seq"].as_u64().unwrap_or(0);
    let max_acked = acked.keys().copied().max().unwrap_or(0);
    assert!(
        head >= max_acked,
        "head {head} below an acked seq {max_acked}"
    );
    let got = read_all(&mut client, "b", head).await;
    for (seq, i) in &acked {
        assert_eq!(got.get(seq), Some(&json!({"i": i})), "acked seq {seq} lost");
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_new_log_file_is_a_new_epoch() {
    let (one, two) = (TempDir::new("epoch1"), TempDir::new("epoch2"));
    let a = start(sqlite(&one)).await;
    let b = start(sqlite(&two)).await;
    let mut ca = Client::connect(&a.ws_url()).await;
    let mut cb = Client::connect(&b.ws_url()).await;
    let ea = ca.subscribe("s").await["epoch"].clone();
    let eb = cb.subscribe("s").await["epoch"].clone();
    assert_ne!(ea, eb);
    a.shutdown().await.expect("shutdown");
    b.shutdown().await.expect("shutdown");
}
