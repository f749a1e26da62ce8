//! Every frame type and flow of protocol v1 against a live server.

use seqsync_server::Retention;
use seqsync_test_support::{
    TempDir, TestServer, WAIT, WsClient, eventually, http_get, message_seqs, served,
};
use serde_json::{Value, json};

#[tokio::test]
async fn subscribe_without_since_answers_snapshot_of_last_k_messages() {
    let server = TestServer::with_config(|c| c.snapshot_messages = 3).await;
    let mut publisher = server.ws().await;
    publisher.publish_many("room", "p", 5).await;
    let mut reader = server.ws().await;
    let snap = reader.subscribe("room").await;
    assert_eq!(snap["stream"], "room");
    assert_eq!(snap["seq"], 5);
    assert!(snap["epoch"].as_u64().is_some_and(|e| e > 0));
    let seqs = message_seqs(&snap["state"]);
    assert_eq!(seqs, [3, 4, 5]);
    assert_eq!(snap["state"]["messages"][2]["data"], json!({"i": 4}));
}

#[tokio::test]
async fn publish_is_acked_and_fanned_out_live_with_epoch() {
    let server = TestServer::new().start().await;
    let mut a = server.ws().await;
    let mut b = server.ws().await;
    let snap_a = a.subscribe("chat").await;
    b.subscribe("chat").await;
    let mut publisher = server.ws().await;
    let seq = publisher.publish("chat", "m1", json!({"text": "hi"})).await;
    assert_eq!(seq, 1);
    for client in [&mut a, &mut b] {
        let msg = client.next_of("msg").await;
        assert_eq!(msg["stream"], "chat");
        assert_eq!(msg["seq"], 1);
        assert_eq!(msg["epoch"], snap_a["epoch"]);
        assert_eq!(msg["data"], json!({"text": "hi"}));
    }
    assert_eq!(server.metrics().publishes, 1);
}

#[tokio::test]
async fn retried_publish_id_gets_the_same_seq_and_no_second_message() {
    let server = TestServer::new().start().await;
    let mut reader = server.ws().await;
    reader.subscribe("s").await;
    let mut publisher = server.ws().await;
    let first = publisher.publish("s", "same", json!(1)).await;
    let again = publisher.publish("s", "same", json!(2)).await;
    let other = publisher.publish("s", "other", json!(3)).await;
    assert_eq!((first, again, other), (1, 1, 2));
    let m1 = reader.next_of("msg").await;
    let m2 = reader.next_of("msg").await;
    assert_eq!((m1["seq"].as_u64(), m2["seq"].as_u64()), (Some(1), Some(2)));
    assert_eq!(m1["data"], json!(1));
    let snapshot = server.metrics();
    assert_eq!((snapshot.publishes, snapshot.publish_duplicates), (2, 1));
}

#[tokio::test]
async fn subscribe_with_since_answers_subscribed_with_head_then_live() {
    let server = TestServer::new().start().await;
    let mut publisher = server.ws().await;
    publisher.publish_many("s", "p", 4).await;
    let mut probe = server.ws().await;
    let epoch = probe.subscribe("s").await["epoch"].clone();
    let mut client = server.ws().await;
    client
        .send(json!({"type": "subscribe", "stream": "s", "since": 2, "epoch": epoch}))
        .await;
    let sub = client.next().await;
    assert_eq!(sub["type"], "subscribed", "{sub}");
    assert_eq!(sub["head"], 4);
    assert_eq!(sub["epoch"], epoch);
    publisher.publish("s", "p-next", json!("five")).await;
    let msg = client.next_of("msg").await;
    assert_eq!(msg["seq"], 5);
}

#[tokio::test]
async fn subscribe_with_another_epoch_is_reset_epoch_changed() {
    let (_server, mut client) = served(|_| {}).await;
    let epoch = client.subscribe("s").await["epoch"].as_u64().unwrap_or(0);
    client
        .send(json!({"type": "subscribe", "stream": "s", "since": 0, "epoch": epoch ^ 1}))
        .await;
    let reset = client.next().await;
    assert_eq!(reset["type"], "reset");
    assert_eq!(reset["reason"], "epoch_changed");
    assert_eq!(reset["stream"], "s");
}

#[tokio::test]
async fn resubscribing_is_idempotent() {
    let (server, mut client) = served(|_| {}).await;
    client.subscribe("s").await;
    client.subscribe("s").await;
    let mut publisher = server.ws().await;
    publisher.publish("s", "x", json!(null)).await;
    publisher.publish("s", "y", json!(null)).await;
    let first = client.next_of("msg").await;
    let second = client.next_of("msg").await;
    // One registration: the second message follows the first, no copy between.
    assert_eq!(
        (first["seq"].as_u64(), second["seq"].as_u64()),
        (Some(1), Some(2))
    );
}

#[tokio::test]
async fn history_covers_pages_and_stops_at_head() {
    let (server, mut client) = served(|c| c.limits.history_page = 4).await;
    client.publish_many("h", "p", 10).await;
    client
        .send(json!({"type": "history", "stream": "h", "from": 2, "to": 100}))
        .await;
    let page = client.next().await;
    assert_eq!(page["type"], "history");
    assert_eq!(
        (page["from"].as_u64(), page["to"].as_u64()),
        (Some(2), Some(5))
    );
    let seqs = message_seqs(&page);
    assert_eq!(seqs, [2, 3, 4, 5]);
    assert_eq!(page["messages"][0]["data"], json!({"i": 1}));
    assert!(
        page.get("skipped")
            .is_none_or(|s| s.as_array().is_some_and(Vec::is_empty))
    );
    assert!(page["epoch"].as_u64().is_some());
    client
        .send(json!({"type": "history", "stream": "h", "from": 9, "to": 100}))
        .await;
    let tail = client.next().await;
    assert_eq!(
        (tail["from"].as_u64(), tail["to"].as_u64()),
        (Some(9), Some(10))
    );
    assert_eq!(server.metrics().history_requests, 2);
}

#[tokio::test]
async fn history_pages_are_bounded_in_bytes_and_cover_only_what_they_hold() {
    let (_server, mut client) = served(|c| c.limits.history_max_bytes = 400).await;
    for i in 0..10 {
        client
            .publish("big", &format!("b{i}"), json!("y".repeat(100)))
            .await;
    }
    let mut from = 1;
    let mut pages = 0;
    while from <= 10 {
        client
            .send(json!({"type": "history", "stream": "big", "from": from, "to": 10}))
            .await;
        let page = client.next().await;
        let to = page["to"].as_u64().expect("to");
        let seqs = message_seqs(&page);
        assert_eq!(
            seqs,
            (from..=to).collect::<Vec<u64>>(),
            "a page covers exactly what it holds"
        );
        assert!(
            seqs.len() <= 3,
            "{} messages over the byte budget",
            seqs.len()
        );
        from = to + 1;
        pages += 1;
    }
    assert!(pages >= 4);
}

#[tokio::test]
async fn a_snapshot_holds_the_newest_messages_that_fit_its_byte_limit() {
    let (_server, mut client) = served(|c| c.snapshot_max_bytes = 300).await;
    for i in 0..5 {
        let data = json!(format!("{i}{}", "z".repeat(99)));
        client.publish("fat", &format!("f{i}"), data).await;
    }
    let snap = client.subscribe("fat").await;
    assert_eq!(snap["seq"], 5, "the snapshot is still at the head");
    assert_eq!(
        message_seqs(&snap["state"]),
        [4, 5],
        "two 100-byte payloads fit in 300 bytes"
    );
}

#[tokio::test]
async fn snapshot_request_answers_current_state() {
    let (_server, mut client) = served(|_| {}).await;
    client.publish("snap", "a", json!("x")).await;
    client
        .send(json!({"type": "snapshot", "stream": "snap"}))
        .await;
    let snap = client.next().await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["seq"], 1);
    assert_eq!(snap["state"]["messages"][0]["data"], "x");
}

/// Reads heartbeats until `wanted` holds for one, and returns it; fails
/// when none does within [`WAIT`] in all.
async fn heartbeat_until(client: &mut WsClient, mut wanted: impl FnMut(&Value) -> bool) -> Value {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let head = client.next_of("head").await;
            if wanted(&head) {
                return head;
            }
        }
    })
    .await;
    match found {
        Ok(head) => head,
        Err(_) => panic!("no such heartbeat within {WAIT:?}"),
    }
}

#[tokio::test]
async fn heartbeat_names_every_subscribed_stream() {
    let (_server, mut client) = served(|_| {}).await;
    let epoch = client.subscribe("a").await["epoch"].clone();
    client.subscribe("b").await;
    client.publish("a", "1", json!(1)).await;
    client.publish("a", "2", json!(2)).await;
    let head = heartbeat_until(&mut client, |head| head["heads"]["a"]["seq"] == 2).await;
    assert_eq!(head["heads"]["a"]["epoch"], epoch);
    assert_eq!(head["heads"]["b"]["seq"], 0);
}

#[tokio::test]
async fn unsubscribe_stops_live_messages() {
    let (_server, mut client) = served(|_| {}).await;
    client.subscribe("u").await;
    client.subscribe("other").await;
    client
        .send(json!({"type": "unsubscribe", "stream": "u"}))
        .await;
    client.publish("u", "1", json!(1)).await;
    client.publish("other", "2", json!(2)).await;
    let msg = client.next_of("msg").await;
    assert_eq!(
        msg["stream"], "other",
        "no msg of an unsubscribed stream: {msg}"
    );
    heartbeat_until(&mut client, |head| {
        assert!(head["heads"].get("u").is_none(), "{head}");
        head["heads"].get("other").is_some()
    })
    .await;
}

#[tokio::test]
async fn count_retention_resets_history_and_resume_before_earliest() {
    let (server, mut client) = served(|c| c.retention.max_count = Some(5)).await;
    client.publish_many("r", "p", 12).await;
    client
        .send(json!({"type": "history", "stream": "r", "from": 2, "to": 12}))
        .await;
    let reset = client.next().await;
    assert_eq!(reset["type"], "reset", "{reset}");
    assert_eq!(reset["reason"], "history_unavailable");
    assert_eq!(reset["earliest"], 8);
    client
        .send(json!({"type": "history", "stream": "r", "from": 8, "to": 12}))
        .await;
    assert_eq!(
        client.next().await["messages"].as_array().map(Vec::len),
        Some(5)
    );
    client
        .send(json!({"type": "subscribe", "stream": "r", "since": 3}))
        .await;
    let reset = client.next().await;
    assert_eq!(
        (reset["type"].as_str(), reset["reason"].as_str()),
        (Some("reset"), Some("history_unavailable"))
    );
    client
        .send(json!({"type": "subscribe", "stream": "r", "since": 7}))
        .await;
    assert_eq!(client.next().await["type"], "subscribed");
    assert!(server.metrics().resets >= 2);
}

#[tokio::test]
async fn age_retention_trims_in_the_background() {
    let server = TestServer::new()
        .config(|c| {
            c.retention = Retention {
                max_count: None,
                max_age_ms: Some(1),
            };
            c.retention_interval_ms = 20;
        })
        .start()
        .await;
    let mut client = server.ws().await;
    client.publish_many("old", "p", 3).await;
    eventually("age retention trimmed 3 messages", || {
        server.metrics().trimmed >= 3
    })
    .await;
    client
        .send(json!({"type": "history", "stream": "old", "from": 1, "to": 3}))
        .await;
    let reset = client.next().await;
    assert_eq!(reset["type"], "reset", "{reset}");
    assert_eq!(reset["earliest"], 4);
}

#[tokio::test]
async fn healthz_metrics_and_static_files() {
    let dir = TempDir::new("static");
    std::fs::write(dir.0.join("index.html"), "<h1>chat</h1>").expect("write");
    let static_dir = dir.0.clone();
    let server = TestServer::with_config(|c| c.static_dir = Some(static_dir)).await;
    let addr = server.local_addr();
    let (status, body) = http_get(addr, "/healthz").await;
    assert_eq!((status, body.trim()), (200, "ok"));
    let mut client = server.ws().await;
    client.publish("m", "1", json!(1)).await;
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "seqsync_connections 1",
        "seqsync_publishes_total 1",
        "seqsync_deliveries_total",
        "seqsync_history_requests_total",
        "seqsync_live_dropped_total",
        "seqsync_queue_depth",
    ] {
        assert!(body.contains(name), "/metrics lacks {name}:\n{body}");
    }
    let (status, body) = http_get(addr, "/").await;
    assert_eq!((status, body.as_str()), (200, "<h1>chat</h1>"));
    let (status, _) = http_get(addr, "/../Cargo.toml").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn shutdown_closes_connections_with_going_away() {
    let (server, mut client) = served(|_| {}).await;
    client.subscribe("s").await;
    let stop = tokio::spawn(server.stop());
    assert_eq!(client.closed().await, Some(1001));
    stop.await.expect("join");
}

#[tokio::test]
async fn request_refs_come_back_on_every_answer_and_on_errors_only() {
    let (_server, mut client) = served(|_| {}).await;
    client.publish_many("r", "p", 3).await;
    client
        .send(json!({"type": "subscribe", "stream": "r", "ref": "1.0"}))
        .await;
    let snap = client.next_of("snapshot").await;
    assert_eq!(snap["ref"], "1.0");
    let epoch = snap["epoch"].as_u64().expect("epoch");
    client
        .send(json!({"type": "subscribe", "stream": "r", "since": 1, "epoch": epoch, "ref": "1.1"}))
        .await;
    assert_eq!(client.next_of("subscribed").await["ref"], "1.1");
    client
        .send(json!({"type": "subscribe", "stream": "r", "since": 1, "epoch": epoch ^ 1, "ref": "r-reset"}))
        .await;
    let reset = client.next_of("reset").await;
    assert_eq!(
        (reset["reason"].as_str(), reset["ref"].as_str()),
        (Some("epoch_changed"), Some("r-reset"))
    );
    client
        .send(json!({"type": "history", "stream": "r", "from": 2, "to": 3, "ref": "h"}))
        .await;
    assert_eq!(client.next_of("history").await["ref"], "h");
    client
        .send(json!({"type": "snapshot", "stream": "r", "ref": "s"}))
        .await;
    assert_eq!(client.next_of("snapshot").await["ref"], "s");
    // A refusal names the request, not the stream.
    let error = client
        .expect_error(
            r#"{"type":"history","stream":"r","from":9,"to":9,"ref":"beyond"}"#,
            "range_beyond_head",
        )
        .await;
    assert_eq!(error["ref"], "beyond");
    let error = client
        .expect_error(
            r#"{"type":"subscribe","stream":"","ref":"bad-name"}"#,
            "invalid_stream",
        )
        .await;
    assert_eq!(error["ref"], "bad-name");
    // A request without ref gets its answers without one; live messages
    // and heartbeats never carry one.
    client
        .send(json!({"type": "history", "stream": "r", "from": 1, "to": 1}))
        .await;
    assert!(client.next_of("history").await.get("ref").is_none());
    client.publish("r", "live", json!("x")).await;
    assert!(client.next_of("msg").await.get("ref").is_none());
    assert!(client.next_of("head").await.get("ref").is_none());
}

#[tokio::test]
async fn heartbeat_goes_out_without_subscriptions_too() {
    let (_server, mut client) = served(|_| {}).await;
    let head = client.next_of("head").await;
    assert_eq!(head["heads"], json!({}));
}

#[tokio::test]
async fn the_first_heartbeat_comes_at_once_and_announces_the_frame_limit() {
    // An interval far longer than the wait: only a heartbeat sent as the
    // connection opens can arrive.
    let (_server, mut client) = served(|c| {
        c.heartbeat_ms = 600_000;
        c.limits.max_frame_bytes = 4_096;
    })
    .await;
    let head = client.next_of("head").await;
    assert_eq!(head["frame_limit"], 4_096);
    assert_eq!(head["heads"], json!({}));
}
