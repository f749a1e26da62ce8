//! The connection policy of the core's `Session`, end to end through the
//! native client against the reference server: publish retries, closing
//! through an outage, refused requests, resume positions across runs.

use std::collections::HashSet;
use std::pin::pin;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use seqsync::{ConnectionState, ErrorCode, FilePositionStore, PositionStore, SubscriptionEvent};
use seqsync_server::auth::{Claims, sign};
use seqsync_test_support::{
    ProxyMode, StreamCheck, TempDir, TestServer, client_config, connect, read_to,
};
use serde_json::json;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_publishes_are_sent_again_until_each_is_stored_once() {
    let server = TestServer::new()
        .limits(|l| l.publish_rate = 20)
        .start()
        .await;
    let writer = server.client().await;
    let publishes: Vec<_> = (0..100)
        .map(|i| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.publish("limited", json!({ "i": i })).await })
        })
        .collect();
    let mut seqs = HashSet::new();
    for publish in publishes {
        let seq = timeout(LIMIT, publish)
            .await
            .expect("in time")
            .expect("task")
            .expect("every publish ends acked, none refused");
        seqs.insert(seq.get());
    }
    assert_eq!(seqs, (1..=100).collect::<HashSet<u64>>(), "one seq each");
    let stats = writer.stats().await.expect("stats");
    assert!(
        stats.publish_retries > 0,
        "the rate limit was hit: {stats:?}"
    );
    assert_eq!(stats.publish_failures, 0);

    let reader = server.client().await;
    let mut sub = reader.subscribe("limited").await.expect("subscribe");
    let mut check = StreamCheck::default();
    read_to(&mut sub, &mut check, 100).await;
    assert_eq!(check.snapshots, [100], "exactly 100 messages in the log");
    reader.close().await;
    writer.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_during_an_outage_waits_for_the_pending_publish() {
    let server = TestServer::new().start().await;
    let (proxy, writer) = server.client_behind_proxy(|_| {}).await;
    proxy.set(ProxyMode::Down);
    let mut state = writer.connection_state();
    // The guard `wait_for` returns is dropped at once: holding it would
    // stop the client from publishing its next state.
    let down = timeout(
        LIMIT,
        state.wait_for(|s| matches!(s, ConnectionState::Disconnected { .. })),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    assert!(down, "the outage is seen");
    // Both futures are polled by hand: the first poll of each hands its
    // command to the client, the publish's before the close's.
    let mut publish = pin!(writer.publish("drain", json!("kept")));
    assert!(
        publish.as_mut().now_or_never().is_none(),
        "no ack in an outage"
    );
    let mut closing = pin!(writer.clone().close());
    assert!(closing.as_mut().now_or_never().is_none(), "close waits");
    // The client answers in the order it was asked: these counters come
    // after close() ran, and the attempts they count come after it too.
    let after_close = writer.stats().await.expect("stats");
    assert_eq!(after_close.pending_publishes, 1, "close kept the publish");
    let retried = timeout(LIMIT, async {
        loop {
            let now = writer.stats().await.expect("stats");
            if now.connect_failures >= after_close.connect_failures + 2 {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("attempts to reconnect after close()");
    assert_eq!(retried.pending_publishes, 1);
    assert!(
        closing.as_mut().now_or_never().is_none(),
        "close still waits"
    );
    assert!(publish.as_mut().now_or_never().is_none(), "still no ack");
    assert!(!matches!(
        *writer.connection_state().borrow(),
        ConnectionState::Closed
    ));

    // The outage ends: close() finishes only once the publish is acked.
    proxy.set(ProxyMode::Forward);
    timeout(LIMIT, closing).await.expect("close finishes");
    // The ack was handed over before close() returned.
    let seq = publish
        .now_or_never()
        .expect("acked by the time close() returned")
        .expect("the publish was acked, not failed by close");
    assert_eq!(seq.get(), 1);

    let reader = server.client().await;
    let mut sub = reader.subscribe("drain").await.expect("subscribe");
    let mut check = StreamCheck::default();
    read_to(&mut sub, &mut check, 1).await;
    assert_eq!(check.snapshots, [1], "stored exactly once");
    reader.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_refused_subscription_says_why() {
    let secret = "policy-secret";
    let server = TestServer::new()
        .config(|c| c.token_secret = Some(secret.into()))
        .start()
        .await;
    let token = sign(
        secret.as_bytes(),
        &Claims {
            read: vec!["open:*".into()],
            write: vec![],
            exp: None,
        },
    );
    let client = connect(client_config(&server.ws_url()).token(token)).await;
    let mut sub = client.subscribe("closed:1").await.expect("subscribe");
    let refused = timeout(LIMIT, async {
        loop {
            match sub.next().await {
                Some(SubscriptionEvent::Refused { code, .. }) => return code,
                Some(_) => {}
                None => panic!("subscription ended"),
            }
        }
    })
    .await
    .expect("a refusal arrives");
    assert_eq!(refused, ErrorCode::Unauthorized);
    assert!(client.stats().await.expect("stats").refused_requests >= 1);
    client.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_client_resumes_where_the_last_one_stopped() {
    let server = TestServer::new().start().await;
    let writer = server.client().await;
    for i in 1..=10 {
        writer.publish("kept", json!(i)).await.expect("publish");
    }
    let dir = TempDir::new("positions");
    let store = FilePositionStore::new(dir.join("positions.json"));

    let first = connect(client_config(&server.ws_url()).position_store(store.clone())).await;
    let mut sub = first.subscribe("kept").await.expect("subscribe");
    let mut check = StreamCheck::default();
    read_to(&mut sub, &mut check, 10).await;
    drop(sub);
    first.close().await;
    let saved = store.load().expect("positions saved");
    assert_eq!(saved.get("kept").map(|p| p.seq.get()), Some(10));

    for i in 11..=15 {
        writer.publish("kept", json!(i)).await.expect("publish");
    }
    let second = connect(client_config(&server.ws_url()).position_store(store.clone())).await;
    let mut sub = second.subscribe("kept").await.expect("subscribe");
    let mut check = StreamCheck::resuming_after(10);
    read_to(&mut sub, &mut check, 15).await;
    assert!(check.snapshots.is_empty(), "resumed, not a snapshot");
    let delivered: Vec<u64> = check
        .events()
        .iter()
        .filter_map(|e| match e {
            SubscriptionEvent::Message { seq, .. } => Some(seq.get()),
            _ => None,
        })
        .collect();
    assert_eq!(
        delivered,
        [11, 12, 13, 14, 15],
        "nothing repeated, nothing missed"
    );
    second.close().await;
    writer.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_typed_subscription_reports_a_payload_that_does_not_fit_and_goes_on() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Line {
        from: String,
        text: String,
    }
    let server = TestServer::new().start().await;
    let client = server.client().await;
    let mut room = client
        .subscribe_as::<Line>("typed")
        .await
        .expect("subscribe");
    client
        .publish("typed", json!({"from": "ada", "text": "hi"}))
        .await
        .expect("publish");
    client
        .publish("typed", json!({"from": "bob", "text": 42}))
        .await
        .expect("publish");
    client
        .publish("typed", json!({"from": "cy", "text": "bye"}))
        .await
        .expect("publish");
    let mut seen = Vec::new();
    let done = timeout(LIMIT, async {
        while seen.len() < 3 {
            match room.next().await {
                Some(SubscriptionEvent::Message { seq, data, .. }) => {
                    seen.push((seq.get(), Ok(data)));
                }
                Some(SubscriptionEvent::Undecodable {
                    seq, data, error, ..
                }) => {
                    assert_eq!(data, json!({"from": "bob", "text": 42}), "the raw payload");
                    assert!(!error.is_empty());
                    seen.push((seq.get(), Err(())));
                }
                Some(_) => {}
                None => panic!("subscription ended"),
            }
        }
    })
    .await;
    assert!(done.is_ok(), "three messages in time: {seen:?}");
    let line = |from: &str, text: &str| Line {
        from: from.into(),
        text: text.into(),
    };
    assert_eq!(
        seen,
        [
            (1, Ok(line("ada", "hi"))),
            (2, Err(())),
            (3, Ok(line("cy", "bye")))
        ],
        "in order, the misfit reported in its place"
    );
    drop(room);
    client.close().await;
    server.stop().await;
}
