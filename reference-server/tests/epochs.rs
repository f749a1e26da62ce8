//! The epoch of an empty stream (section 3.4), per backend: reads name the
//! epoch its first message will be stored in, the same every time, and the
//! same after a restart wherever the log survives it. The Redis tests need
//! `redis-server` on PATH; each starts its own.

use std::future::Future;
use std::sync::Arc;

use seqsync_server::log::{Log, MemoryLog};
use seqsync_server::{RunningServer, Server, ServerConfig, Storage};
use seqsync_test_support::{RedisCluster, RedisServer, TempDir, TestServer, WsClient};
use serde_json::{Value, json};

/// The snapshot of `stream` as a new connection to `url` reads it.
async fn snapshot(url: &str, stream: &str) -> Value {
    let mut client = WsClient::connect(url).await;
    client
        .send(json!({"type": "snapshot", "stream": stream}))
        .await;
    client.next_of("snapshot").await
}

/// Reads the empty stream `y` twice (with a publish to another stream in
/// between), restarts the server with `restart`, reads `y` again, publishes
/// to it and reads it once more, and asserts that every read named one
/// epoch, the one the message was stored in. Returns that epoch.
async fn one_epoch_throughout<S, F, Fut>(server: S, url: impl Fn(&S) -> String, restart: F) -> Value
where
    F: FnOnce(S) -> Fut,
    Fut: Future<Output = S>,
{
    let first = snapshot(&url(&server), "y").await;
    assert_eq!(first["seq"], 0, "{first}");
    let epoch = first["epoch"].clone();
    assert!(epoch.is_u64(), "{first}");
    assert_eq!(
        snapshot(&url(&server), "y").await["epoch"],
        epoch,
        "read again"
    );
    let mut writer = WsClient::connect(&url(&server)).await;
    assert_eq!(writer.publish("a", "a1", json!(1)).await, 1);
    drop(writer);
    assert_eq!(
        snapshot(&url(&server), "y").await["epoch"],
        epoch,
        "read after another stream was published to"
    );

    let server = restart(server).await;
    let after = snapshot(&url(&server), "y").await;
    assert_eq!(
        (after["epoch"].clone(), after["seq"].clone()),
        (epoch.clone(), json!(0)),
        "read after the restart"
    );
    let mut client = WsClient::connect(&url(&server)).await;
    assert_eq!(client.publish("y", "y1", json!("first")).await, 1);
    let last = snapshot(&url(&server), "y").await;
    assert_eq!(last["seq"], 1, "{last}");
    assert_eq!(
        last["epoch"], epoch,
        "the first message is stored in the epoch the reads named"
    );
    // A subscriber that read the empty stream resumes it without a reset.
    client
        .send(json!({"type": "subscribe", "stream": "y", "since": 0, "epoch": epoch}))
        .await;
    let answer = client.next_of("subscribed").await;
    assert_eq!(answer["epoch"], epoch, "{answer}");
    epoch
}

#[tokio::test]
async fn sqlite_an_empty_stream_has_the_files_epoch_across_reads_and_restarts() {
    let dir = TempDir::new("empty-epoch-reads");
    let server = TestServer::new()
        .storage(Storage::Sqlite(dir.join("log.db")))
        .start()
        .await;
    let epoch = one_epoch_throughout(server, |s| s.ws_url(), |s| s.restart()).await;
    let server = TestServer::new()
        .storage(Storage::Sqlite(dir.join("log.db")))
        .start()
        .await;
    assert_eq!(
        snapshot(&server.ws_url(), "a").await["epoch"],
        epoch,
        "the file's epoch, which the other stream got too"
    );
}

/// A server over `log`, on loopback.
async fn over(log: &Arc<MemoryLog>) -> RunningServer {
    let log: Arc<dyn Log> = log.clone();
    match Server::start_with_log(ServerConfig::for_tests(), log).await {
        Ok(server) => server,
        Err(e) => panic!("server failed to start: {e}"),
    }
}

#[tokio::test]
async fn memory_an_empty_stream_has_the_logs_epoch_across_reads_and_a_restart_over_the_same_log() {
    // A memory log does not survive the process; what is restarted here is
    // the server, over the same `MemoryLog`, which keeps its epoch.
    let log = Arc::new(MemoryLog::new(Default::default()));
    let server = over(&log).await;
    let restart = |server: RunningServer| {
        let log = log.clone();
        async move {
            if let Err(e) = server.shutdown().await {
                panic!("shutdown failed: {e}");
            }
            over(&log).await
        }
    };
    let epoch = one_epoch_throughout(server, |s| s.ws_url(), restart).await;
    let server = over(&log).await;
    assert_eq!(snapshot(&server.ws_url(), "a").await["epoch"], epoch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_an_empty_stream_has_one_epoch_across_reads_and_restarts() {
    let redis = RedisServer::start();
    let server = TestServer::new()
        .storage(Storage::Redis(redis.url()))
        .start()
        .await;
    one_epoch_throughout(server, |s| s.ws_url(), |s| s.restart()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_an_empty_stream_has_one_epoch_across_reads_and_restarts() {
    let cluster = RedisCluster::start();
    let server = TestServer::new()
        .storage(Storage::RedisCluster(cluster.urls()))
        .start()
        .await;
    one_epoch_throughout(server, |s| s.ws_url(), |s| s.restart()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_instances_name_one_epoch_for_an_empty_stream_only_read() {
    let redis = RedisServer::start();
    let on = || TestServer::new().storage(Storage::Redis(redis.url()));
    let (a, b) = (on().start().await, on().start().await);
    let epoch = snapshot(&a.ws_url(), "y").await["epoch"].clone();
    assert_eq!(snapshot(&b.ws_url(), "y").await["epoch"], epoch);
    let mut client = b.ws().await;
    assert_eq!(client.publish("y", "y1", json!(1)).await, 1);
    assert_eq!(snapshot(&a.ws_url(), "y").await["epoch"], epoch);
}
