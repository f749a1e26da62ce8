//! The native client's lifecycle against the reference server: stop and
//! start again, give up and start again, close at once.

use std::time::Duration;

use seqsync::{Client, ClientError, ConnectionState, SubscriptionEvent};
use seqsync_test_support::{
    Proxy, ProxyMode, StreamCheck, TestServer, client_config, publish_numbers, read_to,
    read_until_snapshot, wait_state,
};
use serde_json::json;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn disconnect_then_reconnect_resumes_without_loss_or_duplicate() {
    let server = TestServer::new().start().await;
    let reader = seqsync_test_support::connect(client_config(&server.ws_url())).await;
    let writer = server.client().await;
    let mut sub = reader.subscribe("log").await.expect("subscribe");
    let mut check = StreamCheck::default();
    assert!(read_until_snapshot(&mut sub, &mut check, LIMIT).await);
    publish_numbers(&writer, "log", 1..=10).await;
    read_to(&mut sub, &mut check, 10).await;

    reader.disconnect().expect("disconnect");
    wait_state(&reader, |s| matches!(s, ConnectionState::Stopped)).await;
    publish_numbers(&writer, "log", 11..=60).await;
    // Stopped means stopped: no message arrives (the phase change does),
    // and no attempt is made.
    let connects = reader.stats().await.expect("stats").connects;
    while let Ok(event) = timeout(Duration::from_millis(200), sub.next_event()).await {
        assert!(
            matches!(event, Some(SubscriptionEvent::Phase(_))),
            "{event:?} while disconnected"
        );
    }
    assert_eq!(reader.stats().await.expect("stats").connects, connects);

    timeout(LIMIT, reader.reconnect())
        .await
        .expect("in time")
        .expect("connected again");
    read_to(&mut sub, &mut check, 60).await;
    check.assert_exact("log", 60, |seq| json!(seq));
    assert_eq!(check.snapshots, [0], "resumed, not re-snapshotted");

    // Again: restartable any number of times.
    reader.disconnect().expect("disconnect");
    wait_state(&reader, |s| matches!(s, ConnectionState::Stopped)).await;
    publish_numbers(&writer, "log", 61..=70).await;
    reader.reconnect().await.expect("connected again");
    read_to(&mut sub, &mut check, 70).await;
    check.assert_exact("log", 70, |seq| json!(seq));
    reader.close().await;
    writer.close().await;
}

#[tokio::test]
async fn a_client_that_gave_up_connects_when_told_and_keeps_its_work() {
    let server = TestServer::new().start().await;
    let proxy = Proxy::start(server.local_addr()).await;
    proxy.set(ProxyMode::Down);
    let mut config = client_config(&proxy.ws_url());
    config.initial_connect_timeout_ms = 300;
    let client = Client::spawn(config).expect("client");
    let mut sub = client.subscribe("room").await.expect("subscribe");
    wait_state(&client, |s| matches!(s, ConnectionState::Failed { .. })).await;
    // A publish made while failed waits; so does a subscription.
    let published = tokio::spawn({
        let client = client.clone();
        async move { client.publish("room", json!(1)).await }
    });
    let mut late = client.subscribe("late").await.expect("subscribe");
    // Another attempt while the server is still unreachable fails again.
    match timeout(LIMIT, client.reconnect()).await.expect("in time") {
        Err(ClientError::ConnectFailed { endpoint, .. }) => {
            assert_eq!(endpoint, proxy.ws_url())
        }
        other => panic!("expected ConnectFailed, got {other:?}"),
    }

    proxy.set(ProxyMode::Forward);
    timeout(LIMIT, client.reconnect())
        .await
        .expect("in time")
        .expect("connected");
    let seq = published.await.expect("task").expect("stored once");
    assert_eq!(seq.get(), 1);
    let mut check = StreamCheck::default();
    read_to(&mut sub, &mut check, 1).await;
    check.assert_exact("room", 1, |seq| json!(seq));
    let writer = server.client().await;
    publish_numbers(&writer, "late", 1..=3).await;
    let mut late_check = StreamCheck::default();
    read_to(&mut late, &mut late_check, 3).await;
    late_check.assert_exact("late", 3, |seq| json!(seq));
    client.close().await;
    writer.close().await;
}

#[tokio::test]
async fn close_now_fails_pending_publishes_as_unconfirmed_at_once() {
    let server = TestServer::new().start().await;
    let (proxy, client) = server
        .client_behind_proxy(|c| {
            // Far longer than the test's limit: only an immediate failure passes.
            c.publish_timeout_ms = 600_000;
        })
        .await;
    proxy.set(ProxyMode::Down);
    wait_state(&client, |s| {
        matches!(s, ConnectionState::Disconnected { .. })
    })
    .await;
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.publish("s", json!("x")).await }
    });
    // The publish is taken before the close: it is pending, not refused.
    while client.stats().await.expect("stats").pending_publishes == 0 {
        tokio::task::yield_now().await;
    }
    timeout(LIMIT, client.clone().close_now())
        .await
        .expect("closed at once");
    match timeout(LIMIT, pending)
        .await
        .expect("settled")
        .expect("task")
    {
        Err(ClientError::PublishUnconfirmed { id }) => assert_eq!(id.len(), 36),
        other => panic!("expected PublishUnconfirmed, got {other:?}"),
    }
    assert!(matches!(
        *client.connection_state().borrow(),
        ConnectionState::Closed
    ));
    assert_eq!(client.reconnect().await, Err(ClientError::Closed));
}
