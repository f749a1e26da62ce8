//! The native client against the reference server: one behaviour per test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use seqsync::{Client, ClientConfig, ClientError, ConnectionState, SubscriptionEvent};
use seqsync_test_support::{
    ProxyMode, StreamCheck, TestServer, client_config, publish_numbers, read_to,
    read_until_snapshot, wait_state, ws_server,
};
use serde_json::json;
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn subscribe_gets_snapshot_then_messages_in_order() {
    let server = TestServer::new().start().await;
    let client = server.client().await;
    let mut sub = client.subscribe("room").await.expect("subscribe");
    match timeout(LIMIT, sub.next()).await.expect("in time") {
        Some(SubscriptionEvent::Phase(_)) => {}
        other => panic!("expected a phase change first, got {other:?}"),
    }
    let mut check = StreamCheck::default();
    for i in 1..=50u64 {
        let seq = client
            .publish("room", json!({ "i": i }))
            .await
            .expect("publish");
        assert_eq!(seq.get(), i);
    }
    read_to(&mut sub, &mut check, 50).await;
    assert_eq!(check.snapshots, [0]);
    for i in 1..=50u64 {
        assert_eq!(check.delivered[&i], json!({ "i": i }));
    }
    client.close().await;
}

#[tokio::test]
async fn snapshot_of_existing_stream_then_only_newer_messages() {
    let server = TestServer::new().start().await;
    let client = server.client().await;
    publish_numbers(&client, "feed", 1..=5).await;
    let mut sub = client.subscribe("feed").await.expect("subscribe");
    let mut check = StreamCheck::default();
    read_to(&mut sub, &mut check, 5).await;
    assert_eq!(
        check.snapshots,
        [5],
        "state arrives as a snapshot at the head"
    );
    client.publish("feed", json!(6)).await.expect("publish");
    read_to(&mut sub, &mut check, 6).await;
    assert_eq!(check.delivered.len(), 1);
    client.close().await;
}

/// A loopback port that refuses every connection for as long as the socket
/// lives: bound, so that nothing else is given the port, but not listening.
fn refusing_port() -> (TcpSocket, SocketAddr) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind");
    let addr = socket.local_addr().expect("addr");
    (socket, addr)
}

#[tokio::test]
async fn connect_fails_clearly_when_no_server_answers() {
    let (_held, addr) = refusing_port();
    let mut config = client_config(&format!("ws://{addr}/ws"));
    config.initial_connect_timeout_ms = 300;
    match Client::connect(config).await {
        Err(ClientError::ConnectFailed { endpoint, .. }) => {
            assert!(endpoint.contains(&addr.to_string()))
        }
        other => panic!("expected ConnectFailed, got {other:?}"),
    }
    assert_eq!(
        Client::connect(ClientConfig::default()).await.err(),
        Some(ClientError::NoEndpoints)
    );
}

#[tokio::test]
async fn fails_over_to_the_next_endpoint() {
    let server = TestServer::new().start().await;
    let (_held, dead) = refusing_port();
    let config = client_config(&format!("ws://{dead}/ws")).endpoint(server.ws_url());
    let client = Client::connect(config)
        .await
        .expect("second endpoint answers");
    let seq = client.publish("s", json!("x")).await.expect("publish");
    assert_eq!(seq.get(), 1);
    client.close().await;
}

#[tokio::test]
async fn resume_after_outage_fetches_only_what_is_missing() {
    let server = TestServer::new().start().await;
    let (proxy, reader) = server.client_behind_proxy(|_| {}).await;
    let writer = server.client().await;
    let mut sub = reader.subscribe("log").await.expect("subscribe");
    let mut check = StreamCheck::default();
    // The empty stream's snapshot first: the writer's connection could
    // otherwise store a message before the reader's subscribe is read.
    assert!(read_until_snapshot(&mut sub, &mut check, LIMIT).await);
    publish_numbers(&writer, "log", 1..=10).await;
    read_to(&mut sub, &mut check, 10).await;

    proxy.set(ProxyMode::Down);
    wait_state(&reader, |s| {
        matches!(s, ConnectionState::Disconnected { .. })
    })
    .await;
    publish_numbers(&writer, "log", 11..=210).await;
    proxy.set(ProxyMode::Forward);
    read_to(&mut sub, &mut check, 210).await;

    assert_eq!(check.resets, 0);
    assert_eq!(check.snapshots, [0], "resumed, not re-snapshotted");
    for i in 1..=210u64 {
        assert_eq!(check.delivered[&i], json!(i));
    }
    let stats = reader.stats().await.expect("stats");
    assert_eq!(
        stats.history_messages, 200,
        "exactly the missing messages were fetched"
    );
    assert_eq!(stats.history_duplicates, 0);
    assert!(stats.connects >= 2);
    reader.close().await;
    writer.close().await;
}

#[tokio::test]
async fn dead_peer_is_detected_and_replaced() {
    let server = TestServer::new().start().await;
    let (proxy, reader) = server
        .client_behind_proxy(|c| c.heartbeat_timeout_ms = 600)
        .await;
    let writer = server.client().await;
    let mut sub = reader.subscribe("beat").await.expect("subscribe");
    let mut check = StreamCheck::default();
    writer.publish("beat", json!(1)).await.expect("publish");
    read_to(&mut sub, &mut check, 1).await;

    // The connection stays open but nothing flows: only the heartbeat
    // timeout can notice.
    proxy.set(ProxyMode::Stall);
    wait_state(&reader, |s| {
        matches!(s, ConnectionState::Disconnected { .. })
    })
    .await;
    writer.publish("beat", json!(2)).await.expect("publish");
    proxy.set(ProxyMode::Forward);
    read_to(&mut sub, &mut check, 2).await;
    assert_eq!(check.delivered[&2], json!(2));
    assert!(reader.stats().await.expect("stats").disconnects >= 1);
    reader.close().await;
    writer.close().await;
}

#[tokio::test]
async fn publish_during_outage_is_sent_once_after_reconnect() {
    let server = TestServer::new().start().await;
    let (proxy, writer) = server.client_behind_proxy(|_| {}).await;
    writer
        .publish("once", json!("first"))
        .await
        .expect("publish");
    proxy.set(ProxyMode::Down);
    wait_state(&writer, |s| {
        matches!(s, ConnectionState::Disconnected { .. })
    })
    .await;
    let pending = {
        let writer = writer.clone();
        tokio::spawn(async move { writer.publish("once", json!("second")).await })
    };
    proxy.set(ProxyMode::Forward);
    let seq = timeout(LIMIT, pending)
        .await
        .expect("in time")
        .expect("task")
        .expect("acked");
    assert_eq!(seq.get(), 2);

    let reader = server.client().await;
    let mut sub = reader.subscribe("once").await.expect("subscribe");
    let mut check = StreamCheck::default();
    read_to(&mut sub, &mut check, 2).await;
    assert_eq!(check.snapshots, [2], "exactly two messages in the log");
    reader.close().await;
    writer.close().await;
}

#[tokio::test]
async fn publish_waiting_for_a_server_times_out() {
    let server = TestServer::new().start().await;
    let (proxy, writer) = server
        .client_behind_proxy(|c| c.publish_timeout_ms = 200)
        .await;
    proxy.set(ProxyMode::Down);
    wait_state(&writer, |s| {
        matches!(s, ConnectionState::Disconnected { .. })
    })
    .await;
    match writer.publish("t", json!(1)).await {
        Err(ClientError::PublishTimeout { .. }) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    writer.close().await;
}

#[tokio::test]
async fn invalid_stream_name_is_a_typed_error() {
    let server = TestServer::new().start().await;
    let client = server.client().await;
    assert!(matches!(
        client.subscribe("").await,
        Err(ClientError::Core(
            seqsync_core::Error::InvalidStreamName { .. }
        ))
    ));
    assert!(matches!(
        client.publish("bad\nname", json!(1)).await,
        Err(ClientError::Core(
            seqsync_core::Error::InvalidStreamName { .. }
        ))
    ));
    let _first = client.subscribe("dup").await.expect("first");
    assert!(matches!(
        client.subscribe("dup").await,
        Err(ClientError::Core(
            seqsync_core::Error::AlreadySubscribed { .. }
        ))
    ));
    client.close().await;
}

#[tokio::test]
async fn close_ends_subscriptions_and_rejects_new_work() {
    let server = TestServer::new().start().await;
    let client = server.client().await;
    let mut sub = client.subscribe("c").await.expect("subscribe");
    let other = client.clone();
    client.close().await;
    let ended = timeout(LIMIT, async { while sub.next().await.is_some() {} }).await;
    assert!(ended.is_ok(), "subscription ends after close");
    assert_eq!(
        other.publish("c", json!(1)).await.err(),
        Some(ClientError::Closed)
    );
}

#[tokio::test]
async fn ordered_processing_completes_in_seq_order() {
    let server = TestServer::new().start().await;
    let client = server.client().await;
    let sub = client
        .subscribe_as::<serde_json::Value>("work")
        .await
        .expect("subscribe");
    for i in 1..=20u64 {
        client.publish("work", json!(i)).await.expect("publish");
    }
    // The handler of each odd seq finishes only after the next seq's has, so
    // handlers finish out of seq order (and only if they run at once); seq 7
    // never finishes and must time out without blocking the rest.
    let (finish, finished) = watch::channel(Vec::<u64>::new());
    let finish = Arc::new(finish);
    let results = seqsync::process_ordered(sub, 8, Duration::from_secs(2), {
        let finished = finished.clone();
        move |seq, data| {
            let (finish, mut finished) = (finish.clone(), finished.clone());
            async move {
                let n = seq.get();
                if n == 7 {
                    std::future::pending::<()>().await;
                }
                if n % 2 == 1 {
                    let _ = finished.wait_for(|done| done.contains(&(n + 1))).await;
                }
                finish.send_modify(|done| done.push(n));
                data
            }
        }
    });
    let outcomes: Vec<_> = timeout(
        LIMIT,
        results
            .filter_map(|p| async move {
                match p {
                    seqsync::Processed::Done { seq, output } => Some(Ok((seq.get(), output))),
                    seqsync::Processed::TimedOut { seq } => Some(Err(seq.get())),
                    seqsync::Processed::Event(_) => None,
                }
            })
            .take(20)
            .collect(),
    )
    .await
    .expect("in time");
    let expected: Vec<Result<(u64, serde_json::Value), u64>> = (1..=20u64)
        .map(|n| if n == 7 { Err(7) } else { Ok((n, json!(n))) })
        .collect();
    assert_eq!(outcomes, expected);
    // The order above was restored: the handlers did finish out of it.
    let finished = finished.borrow().clone();
    let mut each = finished.clone();
    each.sort_unstable();
    let but_seven: Vec<u64> = (1..=20).filter(|&n| n != 7).collect();
    assert_eq!(each, but_seven, "every handler but 7's finished once");
    let at = |n: u64| finished.iter().position(|&m| m == n);
    for n in (1..20u64).step_by(2).filter(|&n| n != 7) {
        assert!(
            at(n + 1) < at(n),
            "{n} finished before {}: {finished:?}",
            n + 1
        );
    }
    client.close().await;
}

#[tokio::test]
async fn lost_tail_is_recovered_through_heartbeats() {
    let server = TestServer::new().start().await;
    // Every live frame to the reader is dropped: only `head` heartbeats and
    // history can bring the messages.
    let lossy = format!("{}?faults=seed=1,drop=1.0", server.ws_url());
    let reader = Client::connect(client_config(&lossy))
        .await
        .expect("reader");
    let writer = server.client().await;
    let mut sub = reader.subscribe("tail").await.expect("subscribe");
    let mut check = StreamCheck::default();
    read_to(&mut sub, &mut check, 0).await;
    publish_numbers(&writer, "tail", 1..=3).await;
    read_to(&mut sub, &mut check, 3).await;
    assert_eq!(check.delivered[&3], json!(3));
    let stats = reader.stats().await.expect("stats");
    assert!(stats.history_messages >= 3, "the tail came from history");
    reader.close().await;
    writer.close().await;
}

#[tokio::test]
async fn latest_mode_delivers_only_newer_and_never_fetches() {
    let server = TestServer::new().start().await;
    let lossy = format!(
        "{}?faults=seed=3,drop=0.2,dup=0.2,reorder=0.5,window=8",
        server.ws_url()
    );
    let reader = Client::connect(client_config(&lossy))
        .await
        .expect("reader");
    let writer = server.client().await;
    let options = seqsync::SubscribeOptions {
        mode: seqsync::DeliveryMode::Latest,
        ..seqsync::SubscribeOptions::default()
    };
    let mut sub = reader
        .subscribe_with("cursor", options)
        .await
        .expect("subscribe");
    publish_numbers(&writer, "cursor", 1..=500).await;
    let mut last = 0u64;
    let reached = timeout(LIMIT, async {
        while last < 400 {
            match sub.next().await {
                Some(SubscriptionEvent::Message { seq, data, .. }) => {
                    assert!(seq.get() > last, "{seq} after {last}");
                    assert_eq!(data, json!(seq.get()));
                    last = seq.get();
                }
                Some(SubscriptionEvent::Snapshot { seq, .. }) => last = last.max(seq.get()),
                Some(_) => {}
                None => panic!("ended"),
            }
        }
    })
    .await;
    assert!(reached.is_ok(), "latest value reached");
    let stats = reader.stats().await.expect("stats");
    assert_eq!(stats.history_frames, 0, "latest mode never fetches history");
    // The faults reached the stream: repeats and messages that came after a
    // newer one were dropped as not newer (Latest counts both as dropped),
    // and what was lost or overtaken was never waited for.
    let stream = reader.stream_stats("cursor").await.expect("stream stats");
    assert!(
        stream.dropped > 0,
        "repeats and older after newer came and were dropped: {stream:?}"
    );
    assert!(
        stream.delivered < last,
        "lost and overtaken messages were never waited for: {stream:?}"
    );
    reader.close().await;
    writer.close().await;
}

/// A server that answers the subscribe with garbage, an oversized frame and
/// frames with hostile seqs before one good snapshot and message.
async fn hostile_server() -> std::net::SocketAddr {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    ws_server(1, |mut ws| async move {
        let _ = ws.next().await;
        // Everything the client must survive, then what it must still take.
        // The oversized frame comes last: the socket refuses it and the
        // connection is dropped.
        let frames = [
            "not json".to_string(),
            r#"{"type":"bogus"}"#.to_string(),
            r#"{"type":"msg","stream":"h","seq":-1,"data":1}"#.to_string(),
            r#"{"type":"msg","stream":"h","seq":9007199254740992,"data":1}"#.to_string(),
            r#"{"type":"msg","stream":"h","seq":0,"data":1}"#.to_string(),
            r#"{"type":"snapshot","stream":"h","seq":0,"epoch":1,"state":null}"#.to_string(),
            r#"{"type":"msg","stream":"h","seq":1,"epoch":1,"data":"ok"}"#.to_string(),
            format!(
                r#"{{"type":"msg","stream":"h","seq":2,"data":"{}"}}"#,
                "x".repeat(4096)
            ),
        ];
        for frame in frames {
            if ws.send(Message::text(frame)).await.is_err() {
                return;
            }
        }
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await
}

#[tokio::test]
async fn hostile_frames_are_counted_and_dropped_without_harm() {
    let addr = hostile_server().await;
    let mut config = client_config(&format!("ws://{addr}/ws"));
    config.max_frame_bytes = 1024;
    let client = Client::connect(config).await.expect("connect");
    let mut sub = client.subscribe("h").await.expect("subscribe");
    let mut check = StreamCheck::default();
    read_to(&mut sub, &mut check, 1).await;
    assert_eq!(check.delivered[&1], json!("ok"));
    wait_state(&client, |s| {
        matches!(s, ConnectionState::Disconnected { .. })
    })
    .await;
    let stats = client.stats().await.expect("stats");
    assert_eq!(
        stats.bad_frames, 5,
        "garbage, unknown type, -1, 2^53, seq 0"
    );
    assert_eq!(
        stats.disconnects, 1,
        "the oversized frame ended the connection"
    );
    assert_eq!(check.last, 1, "nothing was delivered out of the bad frames");
    client.close().await;
}

/// A source that answers the subscribe with a snapshot and then sends
/// `count` messages as fast as the socket takes them, and nothing else (no
/// heartbeats, no history).
async fn burst_source(count: u64) -> std::net::SocketAddr {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    ws_server(1, move |mut ws| async move {
        let _ = ws.next().await;
        let snapshot = r#"{"type":"snapshot","stream":"burst","seq":0,"epoch":1,"state":null}"#;
        if ws.feed(Message::text(snapshot)).await.is_err() {
            return;
        }
        for seq in 1..=count {
            let frame =
                format!(r#"{{"type":"msg","stream":"burst","seq":{seq},"epoch":1,"data":{seq}}}"#);
            if ws.feed(Message::text(frame)).await.is_err() {
                return;
            }
        }
        let _ = ws.flush().await;
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_of_a_fast_burst_is_taken_in_order() {
    let addr = burst_source(20_000).await;
    let client = Client::connect(client_config(&format!("ws://{addr}/ws")))
        .await
        .expect("connect");
    let mut sub = client.subscribe("burst").await.expect("subscribe");
    let mut gaps = 0;
    let mut last = 0u64;
    let done = timeout(LIMIT, async {
        while last < 20_000 {
            match sub.next().await {
                Some(SubscriptionEvent::Message { seq, data, .. }) => {
                    assert_eq!(seq.get(), last + 1);
                    assert_eq!(data, json!(seq.get()));
                    last = seq.get();
                }
                Some(SubscriptionEvent::GapDetected { .. }) => gaps += 1,
                Some(_) => {}
                None => panic!("ended at {last}"),
            }
        }
    })
    .await;
    assert!(done.is_ok(), "stuck at {last}");
    assert_eq!(gaps, 0, "no frame of the burst was lost on the way in");
    let stats = client.stats().await.expect("stats");
    assert_eq!(stats.frames, 20_001);
    assert_eq!(stats.history_frames, 0);
    client.close().await;
}

/// The README's "Quiet": a resync that keeps failing is reported. A stand-in
/// server answers the subscribe with a snapshot at 0, sends seq 3, and never
/// answers the history request for 1..=2: after the configured number of
/// attempts the subscription gets `Stalled`, and the requests go on.
#[tokio::test]
async fn a_history_request_never_answered_reaches_the_application_as_stalled() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::SinkExt;
    use seqsync::{SeqRange, StalledRequest};
    use tokio_tungstenite::tungstenite::Message;

    let asked = Arc::new(AtomicUsize::new(0));
    let seen = asked.clone();
    let addr = ws_server(1, move |mut ws| {
        let asked = seen.clone();
        async move {
            while let Some(Ok(message)) = ws.next().await {
                let Ok(text) = message.to_text() else {
                    continue;
                };
                let frame: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
                let answer = match frame["type"].as_str() {
                    Some("subscribe") => vec![
                        r#"{"type":"snapshot","stream":"q","seq":0,"epoch":1,"state":null}"#,
                        r#"{"type":"msg","stream":"q","seq":3,"epoch":1,"data":3}"#,
                    ],
                    Some("history") => {
                        if frame["from"] == 1 && frame["to"] == 2 {
                            asked.fetch_add(1, Ordering::SeqCst);
                        }
                        Vec::new()
                    }
                    _ => Vec::new(),
                };
                for text in answer {
                    if ws.send(Message::text(text)).await.is_err() {
                        return;
                    }
                }
            }
        }
    })
    .await;
    let mut config = client_config(&format!("ws://{addr}/ws"));
    // Nothing else may end the wait: no dead peer, no silence check.
    config.session.heartbeat_timeout_ms = 600_000;
    config.session.silence_timeout_ms = 0;
    config.session.core.request_timeout_ms = 50;
    config.session.core.max_backoff_ms = 200;
    config.session.core.stall_after_attempts = 3;
    let client = Client::connect(config).await.expect("connect");
    let mut sub = client.subscribe("q").await.expect("subscribe");
    let stalled = timeout(LIMIT, async {
        loop {
            match sub.next().await {
                Some(SubscriptionEvent::Stalled { request, attempts }) => {
                    break (request, attempts);
                }
                Some(SubscriptionEvent::Message { seq, .. }) => {
                    panic!("{seq} delivered across an unanswered hole")
                }
                Some(_) => {}
                None => panic!("the subscription ended"),
            }
        }
    })
    .await
    .expect("Stalled in time");
    let hole = SeqRange::from_u64(1, 2).expect("a range");
    assert_eq!(stalled, (StalledRequest::History(hole), 3));
    // Retries go on after the report: a fourth attempt reaches the server.
    seqsync_test_support::eventually("a retry after Stalled", || {
        asked.load(Ordering::SeqCst) >= 4
    })
    .await;
    client.close().await;
}

/// A server that starts the stream in epoch 7, delivers 1 in order, 3
/// before 2, then a message of epoch 9 (its log changed), and answers the
/// request for a snapshot that follows the reset with one of epoch 9.
async fn epoch_changing_server() -> std::net::SocketAddr {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    ws_server(1, |mut ws| async move {
        while let Some(Ok(message)) = ws.next().await {
            let Ok(text) = message.to_text() else {
                continue;
            };
            let frame: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
            let answer: &[&str] = match frame["type"].as_str() {
                Some("subscribe") => &[
                    r#"{"type":"snapshot","stream":"e","seq":0,"epoch":7,"state":null}"#,
                    r#"{"type":"msg","stream":"e","seq":1,"epoch":7,"data":1}"#,
                    r#"{"type":"msg","stream":"e","seq":3,"epoch":7,"data":3}"#,
                    r#"{"type":"msg","stream":"e","seq":2,"epoch":7,"data":2}"#,
                    r#"{"type":"msg","stream":"e","seq":4,"epoch":9,"data":4}"#,
                ],
                Some("snapshot") => &[
                    r#"{"type":"snapshot","stream":"e","seq":3,"epoch":9,"state":null}"#,
                    r#"{"type":"msg","stream":"e","seq":4,"epoch":9,"data":4}"#,
                ],
                _ => &[],
            };
            for text in answer {
                if ws.send(Message::text(*text)).await.is_err() {
                    return;
                }
            }
        }
    })
    .await
}

#[tokio::test]
async fn every_message_carries_the_epoch_it_belongs_to() {
    use seqsync::{Epoch, ResetReason};
    let addr = epoch_changing_server().await;
    let client = Client::connect(client_config(&format!("ws://{addr}/ws")))
        .await
        .expect("connect");
    let mut sub = client.subscribe("e").await.expect("subscribe");
    let mut seen = Vec::new();
    let collected = timeout(LIMIT, async {
        while seen.len() < 6 {
            match sub.next().await {
                Some(SubscriptionEvent::Message { seq, epoch, .. }) => {
                    seen.push(format!("m{seq}@{}", epoch.map_or(-1, |e| e.0 as i64)));
                }
                Some(SubscriptionEvent::Snapshot { seq, epoch, .. }) => {
                    seen.push(format!("s{seq}@{}", epoch.0));
                }
                Some(SubscriptionEvent::Reset { reason, .. }) => {
                    assert_eq!(reason, ResetReason::EpochChanged);
                    seen.push("reset".to_string());
                }
                Some(_) => {}
                None => panic!("the subscription ended after {seen:?}"),
            }
        }
    })
    .await;
    assert!(collected.is_ok(), "in time, got {seen:?}");
    // 2 released from the buffer after the hole, in its epoch; after the
    // log changed, the new one.
    assert_eq!(seen, ["s0@7", "m1@7", "m2@7", "m3@7", "reset", "s3@9"]);
    let next = timeout(LIMIT, async {
        loop {
            if let Some(SubscriptionEvent::Message { seq, epoch, .. }) = sub.next().await {
                break (seq.get(), epoch);
            }
        }
    })
    .await
    .expect("the message after the new snapshot");
    assert_eq!(next, (4, Some(Epoch(9))));
    client.close().await;
}
