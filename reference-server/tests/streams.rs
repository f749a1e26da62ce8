//! Stream names come from peers: reading one creates nothing, and what a
//! live stream costs is given back when nobody uses it, so no client can
//! fill the server's table of streams for everyone else.

use seqsync_core::StreamName;
use seqsync_server::Storage;
use seqsync_server::log::{Log, SqliteLog};
use seqsync_test_support::{TempDir, TestServer, eventually};
use serde_json::json;

#[tokio::test]
async fn reading_streams_that_do_not_exist_creates_nothing() {
    let dir = TempDir::new("ghosts");
    let db = dir.join("log.db");
    let server = TestServer::new()
        .storage(Storage::Sqlite(db.clone()))
        .start()
        .await;
    let mut client = server.ws().await;
    for i in 0..500 {
        client
            .send(json!({"type": "snapshot", "stream": format!("ghost-{i}")}))
            .await;
        let snapshot = client.next_of("snapshot").await;
        assert_eq!(snapshot["seq"], 0, "an unknown stream is empty");
        client
            .expect_error(
                &json!({"type": "history", "stream": format!("ghost-{i}"), "from": 1, "to": 5})
                    .to_string(),
                "range_beyond_head",
            )
            .await;
    }
    assert_eq!(server.metrics().streams, 0, "no stream was made live");
    server.stop().await;
    let log = SqliteLog::open(&db, Default::default()).expect("open the log");
    for i in [0, 250, 499] {
        let name = StreamName::new(&format!("ghost-{i}")).expect("name");
        assert_eq!(log.info(&name).expect("read"), None, "ghost-{i} has no row");
    }
}

#[tokio::test]
async fn streams_nobody_uses_are_let_go_and_new_ones_open_again() {
    let server =
        TestServer::with_config(|c| (c.limits.max_streams, c.stream_idle_ms) = (3, 50)).await;
    let mut first = server.ws().await;
    for stream in ["a", "b", "c"] {
        first.subscribe(stream).await;
    }
    // Three subscribed streams are live: a fourth cannot open now.
    first
        .expect_error(r#"{"type":"subscribe","stream":"d"}"#, "invalid_stream")
        .await;
    drop(first);
    eventually("the idle streams are let go", || {
        let m = server.metrics();
        m.streams == 0 && m.streams_evicted == 3
    })
    .await;
    let mut second = server.ws().await;
    assert_eq!(second.subscribe("d").await["seq"], 0);
}

#[tokio::test]
async fn a_full_table_lets_go_of_unused_streams_at_once() {
    // Idle streams are not let go by time here: only for want of room.
    let server =
        TestServer::with_config(|c| (c.limits.max_streams, c.stream_idle_ms) = (2, 1 << 40)).await;
    let mut client = server.ws().await;
    // Streams that were published to and are no longer used do not hold
    // the table, however recent.
    for (i, stream) in ["p1", "p2", "p3", "p4"].iter().enumerate() {
        assert_eq!(client.publish(stream, &format!("x{i}"), json!(i)).await, 1);
    }
    // Subscribed streams do hold it; a publish refused for want of room is
    // named by its id (section 4.5).
    client.subscribe("s1").await;
    client.subscribe("s2").await;
    let err = client
        .expect_error(
            r#"{"type":"publish","stream":"three","id":"x","data":1}"#,
            "invalid_stream",
        )
        .await;
    assert_eq!(err["ref"], "x");
    // Streams already live go on working, reading others too.
    assert_eq!(client.publish("s1", "b", json!(2)).await, 1);
    client
        .send(json!({"type": "history", "stream": "p1", "from": 1, "to": 1}))
        .await;
    assert_eq!(client.next_of("history").await["messages"][0]["data"], 0);
}

#[tokio::test]
async fn an_empty_stream_keeps_its_epoch_while_it_is_subscribed() {
    let server = TestServer::new().start().await;
    let mut reader = server.ws().await;
    let epoch = reader.subscribe("quiet").await["epoch"].clone();
    let mut writer = server.ws().await;
    writer.publish("quiet", "first", json!("hello")).await;
    let msg = reader.next_of("msg").await;
    assert_eq!(
        msg["epoch"], epoch,
        "the first message comes in the epoch the snapshot named"
    );
}
