//! Server instances over one Redis, at the protocol level: heartbeats on
//! every instance name the head Redis holds, and the command's `--redis`
//! flag selects the Redis log. Needs `redis-server` on PATH
//! (`scripts/redis.sh`); each test starts its own.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use seqsync_server::Storage;
use seqsync_test_support::{Read, RedisServer, Running, TestServer, WAIT, WsClient, eventually};
use serde_json::json;
use tokio::time::Instant;

/// Two instances over `redis`.
async fn two_instances(redis: &RedisServer) -> (Running, Running) {
    let on = || TestServer::new().storage(Storage::Redis(redis.url()));
    (on().start().await, on().start().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_and_messages_on_another_instance_follow_redis() {
    let redis = RedisServer::start();
    let (a, b) = two_instances(&redis).await;
    let mut reader = b.ws().await;
    let snapshot = reader.subscribe("hb").await;
    assert_eq!(snapshot["seq"], 0);
    let epoch = snapshot["epoch"].clone();
    let mut writer = a.ws().await;
    let seqs = writer.publish_many("hb", "w", 5).await;
    assert_eq!(seqs, [1, 2, 3, 4, 5]);

    // B sends every message once, in order, and heartbeats that reach the
    // head A's publishes left in Redis, in the same epoch (the one B's
    // subscriber was given before anything was published).
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    let mut head_seen = false;
    while got.len() < 5 || !head_seen {
        assert!(
            Instant::now() < deadline,
            "got {got:?}, head seen: {head_seen}"
        );
        let Read::Frame(frame) = reader.read().await else {
            panic!("connection closed");
        };
        match frame["type"].as_str() {
            Some("msg") => {
                assert_eq!(frame["epoch"], epoch);
                got.push(frame["seq"].as_u64().expect("seq"));
            }
            Some("head") => {
                let entry = &frame["heads"]["hb"];
                assert_eq!(entry["epoch"], epoch, "{frame}");
                head_seen = entry["seq"] == 5;
            }
            _ => {}
        }
    }
    assert_eq!(got, [1, 2, 3, 4, 5]);
    assert_eq!(b.metrics().publishes, 0, "B only followed");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_follows_only_the_streams_its_clients_subscribe_to() {
    let redis = RedisServer::start();
    let (a, b) = two_instances(&redis).await;
    let mut writer = a.ws().await;
    for stream in ["x", "y", "z"] {
        writer.publish(stream, "1", json!(1)).await;
    }
    let mut reader = b.ws().await;
    reader.subscribe("x").await;
    // Reading other streams does not make B follow them.
    reader
        .send(json!({"type": "history", "stream": "y", "from": 1, "to": 1}))
        .await;
    reader.next_of("history").await;
    reader
        .send(json!({"type": "snapshot", "stream": "z"}))
        .await;
    reader.next_of("snapshot").await;
    eventually("B follows x", || b.metrics().followed_streams == 1).await;
    assert_eq!(b.metrics().followed_streams, 1, "only x");
    reader
        .send(json!({"type": "unsubscribe", "stream": "x"}))
        .await;
    eventually("B follows nothing", || b.metrics().followed_streams == 0).await;
    a.stop().await;
    b.stop().await;
}

/// Kills the child on drop.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_command_keeps_its_log_in_redis_with_the_redis_flag() {
    let redis = RedisServer::start();
    let child = Command::new(env!("CARGO_BIN_EXE_seqsync-server"))
        .args(["--redis", &redis.url(), "--bind", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server command starts");
    let mut server = KillOnDrop(child);
    let stderr = server.0.stderr.take().expect("stderr");
    // The address is logged once listening; read it off the log.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.split_whitespace().find_map(|w| w.strip_prefix("url=")) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(url.to_string());
                }
            }
        }
    });
    let url = tokio::time::timeout(WAIT, rx)
        .await
        .expect("the server says where it listens")
        .expect("log line");
    let mut client = WsClient::connect(&url).await;
    assert_eq!(client.publish("cli", "p1", json!({"x": 1})).await, 1);
    assert_eq!(
        redis.command(&["HGET", "seqsync:{cli}:meta", "head"]),
        "$1\r\n1\r\n",
        "the head is kept in Redis"
    );
    assert_eq!(
        redis.command(&["XLEN", "seqsync:{cli}:log"]),
        ":1\r\n",
        "the message is an entry of the stream's Redis stream"
    );
    drop(client);
    drop(server);
}
