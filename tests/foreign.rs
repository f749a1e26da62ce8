//! The native client against servers that do not speak the seqsync
//! protocol, configured only with a description (docs/protocol.md
//! section 12): the foreign chat server of `tests/foreign/` (Python, two
//! instances over one SQLite file fanning out through Redis pub/sub, no
//! seqsync code) through a fault-injecting proxy, and a hostile server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use seqsync::adapter::Description;
use seqsync::{Client, ClientConfig, ResetReason, Subscription, SubscriptionEvent};
use seqsync_test_support::{
    FaultyWsProxy, ForeignConfig, ForeignServer, WsFaults, eventually, http, ws_server,
};
use serde_json::{Value, json};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

const LIMIT: Duration = Duration::from_secs(30);

/// The foreign chat server, described: messages are the stored rows (the
/// whole frame is the payload), history pages over HTTP, the head for a
/// lost last message, posts for publishing. `http` is the base the client
/// reads from.
fn chat_description(http: &str, poll_ms: u64, start: &str) -> Description {
    description(&format!(
        r#"{{
          "message": {{"stream": {{"path": "room"}}, "seq": "sequence_id", "payload": "$"}},
          "subscribe": "{{\"action\":\"join\",\"room\":\"{{stream}}\"}}",
          "unsubscribe": "{{\"action\":\"leave\",\"room\":\"{{stream}}\"}}",
          "history": {{
            "url": "{http}/rooms/{{stream}}/messages?since={{since}}&until={{to}}&limit={{limit}}",
            "messages": "messages",
            "earliest": "earliest_sequence_id"
          }},
          "head": {{"url": "{http}/rooms/{{stream}}/head", "seq": "sequence_id"}},
          "pollMs": {poll_ms},
          "start": "{start}",
          "publish": {{"url": "{http}/rooms/{{stream}}/messages", "seq": "sequence_id"}}
        }}"#
    ))
}

/// What one subscription delivered, checked as it arrives: every message
/// the next seq after the last (or after a start), never a skip.
#[derive(Debug, Default)]
struct Delivered {
    next: Option<u64>,
    messages: Vec<(u64, Value)>,
    resets: Vec<(ResetReason, Option<u64>)>,
    starts: Vec<u64>,
}

impl Delivered {
    fn from_beginning() -> Delivered {
        Delivered {
            next: Some(1),
            ..Delivered::default()
        }
    }

    fn take(&mut self, room: &str, event: SubscriptionEvent) {
        match event {
            SubscriptionEvent::Message { seq, data, .. } => {
                let want = self
                    .next
                    .unwrap_or_else(|| panic!("{room}: message {seq} before a start"));
                assert_eq!(seq.get(), want, "{room}: out of order or a hole");
                self.next = Some(want + 1);
                self.messages
                    .push((seq.get(), data.to_value().expect("a JSON payload")));
            }
            SubscriptionEvent::Reset {
                reason, earliest, ..
            } => {
                self.resets.push((reason, earliest.map(|e| e.get())));
                self.next = None;
            }
            SubscriptionEvent::Snapshot { seq, .. } => {
                assert!(
                    self.next.is_none(),
                    "{room}: a start at {seq} without a reset"
                );
                self.starts.push(seq.get());
                self.next = Some(seq.get() + 1);
            }
            SubscriptionEvent::Skipped { range, .. } => {
                panic!("{room}: skipped {range} of a gapless log")
            }
            _ => {}
        }
    }

    /// Reads until the message `last` was delivered.
    async fn until(&mut self, room: &str, sub: &mut Subscription, last: u64, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.next.is_none_or(|next| next <= last) {
            match tokio::time::timeout_at(deadline, sub.next()).await {
                Ok(Some(event)) => self.take(room, event),
                Ok(None) => panic!("{room}: the subscription ended"),
                Err(_) => panic!("{room}: stuck before {:?} of {last}", self.next),
            }
        }
    }
}

fn description(json: &str) -> Description {
    serde_json::from_str(json).expect("a valid description")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_frames_are_counted_and_dropped_and_the_stream_stays_exact() {
    let addr = ws_server(1, |mut ws| async move {
        // Wait for the join, then mix garbage with the room's messages.
        let joined = ws.next().await;
        let Some(Ok(Message::Text(join))) = joined else {
            return;
        };
        assert_eq!(join.as_str(), r#"{"action":"join","room":"lobby"}"#);
        let frames = [
            r#"{"room":"lobby","sequence_id":2,"message":"two"}"#,
            "not json at all",
            r#"{"room":"lobby","sequence_id":"3","message":"a string seq"}"#,
            r#"{"room":"lobby","sequence_id":0,"message":"seq zero"}"#,
            r#"{"room":"lobby","sequence_id":9007199254740992,"message":"past 2^53-1"}"#,
            r#"{"room":"lobby","sequence_id":-4,"message":"negative"}"#,
            r#"{"room":7,"sequence_id":3,"message":"a number for a room"}"#,
            r#"{"room":"lobby","sequence_id":3.5,"message":"a fraction"}"#,
            r#"{"event":"presence","user":"u2"}"#,
            r#"{"room":"other","sequence_id":1,"message":"a room not joined"}"#,
            r#"{"room":"lobby","sequence_id":1,"message":"one"}"#,
            r#"{"room":"lobby","sequence_id":2,"message":"two, again"}"#,
            r#"{"room":"lobby","sequence_id":3,"message":"three"}"#,
            r#"[1,2,3]"#,
        ];
        for frame in frames {
            if ws.send(Message::text(frame)).await.is_err() {
                return;
            }
        }
        let _ = ws.send(Message::binary(vec![0u8, 159, 146, 150])).await;
        // Hold the connection open until the client leaves.
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    let config = ClientConfig::foreign(
        format!("ws://{addr}/ws"),
        description(
            r#"{
              "message": {"stream": {"path": "room"}, "seq": "sequence_id", "payload": "message"},
              "subscribe": "{\"action\":\"join\",\"room\":\"{stream}\"}"
            }"#,
        ),
    )
    .expect("config");
    let client = Client::connect(config).await.expect("connect");
    let mut lobby = client.subscribe("lobby").await.expect("subscribe");
    let mut got = Vec::new();
    while got.len() < 3 {
        let event = timeout(LIMIT, lobby.next()).await.expect("in time");
        if let Some(SubscriptionEvent::Message { seq, data, .. }) = event {
            got.push((seq.get(), data.parse::<String>().expect("a string")));
        }
    }
    assert_eq!(
        got,
        [
            (1, "one".to_string()),
            (2, "two".to_string()),
            (3, "three".to_string())
        ]
    );
    let stats = client.stats().await.expect("stats");
    // Not JSON, the string seq, seq 0, 2^53, -4, the number room, 3.5, the
    // binary frame; the presence notice, the array and the other room are
    // not messages.
    assert_eq!(stats.bad_frames, 8, "{stats:?}");
    let lobby_stats = client.stream_stats("lobby").await.expect("stats");
    assert_eq!(lobby_stats.delivered, 3);
    assert_eq!(lobby_stats.duplicates, 1, "the repeat of 2");
    client.close().await;
}

/// Posts `per_room` messages to each of `rooms` through the HTTP API at
/// `addr`, several at a time, counting them in `posted`.
async fn post_all(addr: SocketAddr, rooms: Vec<String>, per_room: u64, posted: Arc<AtomicU64>) {
    let next = Arc::new(AtomicU64::new(0));
    let total = per_room * rooms.len() as u64;
    let workers: Vec<_> = (0..12)
        .map(|_| {
            let (next, posted, rooms) = (next.clone(), posted.clone(), rooms.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return;
                    }
                    let room = &rooms[(i % rooms.len() as u64) as usize];
                    let body = json!({"user_id": "writer", "message": format!("line {i}")});
                    let path = format!("/rooms/{room}/messages");
                    let (status, answer) = http(addr, "POST", &path, Some(&body.to_string())).await;
                    assert_eq!(status, 201, "POST {path}: {answer}");
                    posted.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a poster");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_description_gets_exactly_the_log_through_faults_and_an_instance_restart() {
    const PER_ROOM: u64 = 10_000;
    let rooms = ["north", "south"];
    let mut chat = ForeignServer::start(ForeignConfig::default()).await;
    // The reader is a client of instance 1, through the proxy; the writer
    // posts to instance 0; instance 1 hears it over Redis pub/sub.
    let proxy = FaultyWsProxy::start(
        &chat.ws_base(1),
        WsFaults {
            seed: 7,
            drop_pct: 3,
            duplicate_pct: 3,
            reorder_pct: 5,
            reorder_window: 8,
            reorder_max_ms: 50,
            cut_every: 4_000,
        },
    )
    .await;
    let config = ClientConfig::foreign(
        proxy.url("/ws?user=reader"),
        chat_description(&chat.http_base(1), 500, "beginning"),
    )
    .expect("config")
    .gap_timeout(Duration::from_millis(100));
    let client = Client::connect(config).await.expect("connect");
    let mut subs = Vec::new();
    for room in rooms {
        subs.push(client.subscribe(room).await.expect("subscribe"));
    }
    let posted = Arc::new(AtomicU64::new(0));
    let started = std::time::Instant::now();
    let writer = tokio::spawn(post_all(
        chat.http_addr(0),
        rooms.iter().map(|r| r.to_string()).collect(),
        PER_ROOM,
        posted.clone(),
    ));
    let mut delivered: Vec<Delivered> = rooms.iter().map(|_| Delivered::from_beginning()).collect();
    // Read while the writer works; a third of the way in, the reader's
    // instance restarts: what is posted meanwhile reaches it only through
    // history (pub/sub keeps nothing for a subscriber that is away).
    let third = 2 * PER_ROOM / 3;
    let mut restarted = false;
    while !writer.is_finished() {
        for (i, sub) in subs.iter_mut().enumerate() {
            while let Ok(Some(event)) = timeout(Duration::from_millis(5), sub.next()).await {
                delivered[i].take(rooms[i], event);
            }
        }
        if !restarted && posted.load(Ordering::Relaxed) >= third {
            chat.restart(1).await;
            restarted = true;
        }
    }
    writer.await.expect("the writer");
    assert!(restarted, "the instance restarted while posts went on");
    for (i, sub) in subs.iter_mut().enumerate() {
        delivered[i]
            .until(rooms[i], sub, PER_ROOM, Duration::from_secs(120))
            .await;
    }
    for (i, room) in rooms.iter().enumerate() {
        let log = chat.messages_since(0, room, 0).await;
        assert_eq!(log.len() as u64, PER_ROOM);
        let d = &delivered[i];
        assert!(d.resets.is_empty(), "{room}: {:?}", d.resets);
        assert_eq!(
            d.messages.len() as u64,
            PER_ROOM,
            "{room}: exactly once each"
        );
        for ((seq, data), stored) in d.messages.iter().zip(&log) {
            assert_eq!(Some(*seq), stored["sequence_id"].as_u64());
            assert_eq!(data, stored, "{room}: the stored message, as stored");
        }
    }
    let faults = proxy.stats();
    let stats = client.stats().await.expect("stats");
    assert!(
        faults.dropped > 0 && faults.duplicated > 0 && faults.reordered > 0,
        "{faults:?}"
    );
    assert!(
        faults.cuts > 0 && stats.disconnects >= 2,
        "cuts and the restart: {faults:?} {stats:?}"
    );
    assert!(stats.history_messages > 0, "holes were fetched: {stats:?}");
    let mut duplicates = 0;
    for room in rooms {
        duplicates += client.stream_stats(room).await.expect("stats").duplicates;
    }
    assert!(duplicates > 0, "repeats were dropped");
    eprintln!(
        "{} messages in {:.1} s; proxy {faults:?}; client: {} history requests, {} messages fetched \
         ({} already held), {duplicates} repeats dropped, {} disconnects",
        PER_ROOM * rooms.len() as u64,
        started.elapsed().as_secs_f64(),
        stats.history_frames,
        stats.history_messages,
        stats.history_duplicates,
        stats.disconnects,
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_retention_deleted_is_an_explicit_reset_then_the_stream_goes_on() {
    let chat = ForeignServer::start(ForeignConfig {
        instances: 1,
        retain: 100,
    })
    .await;
    for i in 0..300 {
        chat.post(0, "kept", "writer", &format!("m{i}")).await;
    }
    let config = ClientConfig::foreign(
        format!("{}/ws?user=late", chat.ws_base(0)),
        chat_description(&chat.http_base(0), 0, "beginning"),
    )
    .expect("config");
    let client = Client::connect(config).await.expect("connect");
    let mut sub = client.subscribe("kept").await.expect("subscribe");
    let mut got = Delivered::from_beginning();
    got.until("kept", &mut sub, 300, LIMIT).await;
    assert_eq!(got.resets, [(ResetReason::HistoryUnavailable, Some(201))]);
    assert_eq!(
        got.starts,
        [200],
        "the stream starts again before the earliest kept"
    );
    let seqs: Vec<u64> = got.messages.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (201..=300).collect::<Vec<_>>());
    for i in 0..10 {
        chat.post(0, "kept", "writer", &format!("late {i}")).await;
    }
    got.until("kept", &mut sub, 310, LIMIT).await;
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_start_then_a_publish_through_the_client_comes_back_as_its_seq() {
    let chat = ForeignServer::start(ForeignConfig {
        instances: 1,
        retain: 0,
    })
    .await;
    for i in 0..50 {
        chat.post(0, "lobby", "earlier", &format!("m{i}")).await;
    }
    let config = ClientConfig::foreign(
        format!("{}/ws?user=ada", chat.ws_base(0)),
        chat_description(&chat.http_base(0), 0, "head"),
    )
    .expect("config");
    let client = Client::connect(config).await.expect("connect");
    let mut sub = client.subscribe("lobby").await.expect("subscribe");
    let mut got = Delivered::default();
    // The start: a snapshot event at the head, with no state.
    loop {
        match timeout(LIMIT, sub.next()).await.expect("in time") {
            Some(SubscriptionEvent::Snapshot { seq, state, .. }) => {
                assert_eq!(seq.get(), 50);
                assert_eq!(state.as_str(), "null");
                got.next = Some(51);
                break;
            }
            Some(SubscriptionEvent::Message { seq, .. }) => {
                panic!("message {seq} before the start")
            }
            Some(_) => {}
            None => panic!("the subscription ended"),
        }
    }
    let seq = client
        .publish("lobby", json!({"user_id": "ada", "message": "hello"}))
        .await
        .expect("published");
    assert_eq!(seq.get(), 51, "the seq the server gave it");
    got.until("lobby", &mut sub, 51, LIMIT).await;
    assert_eq!(got.messages[0].1["message"], "hello");
    assert_eq!(got.messages[0].1["user_id"], "ada");
    let refused = client.publish("lobby", json!({"message": 5})).await;
    assert!(
        matches!(
            refused,
            Err(seqsync::ClientError::PublishFailed {
                status: Some(400),
                ..
            })
        ),
        "{refused:?}"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_last_message_is_found_by_polling_the_head() {
    let chat = ForeignServer::start(ForeignConfig {
        instances: 1,
        retain: 0,
    })
    .await;
    // Every live frame is lost: only the polls can find the messages.
    let proxy = FaultyWsProxy::start(
        &chat.ws_base(0),
        WsFaults {
            drop_pct: 100,
            ..WsFaults::default()
        },
    )
    .await;
    let config = ClientConfig::foreign(
        proxy.url("/ws?user=poller"),
        chat_description(&chat.http_base(0), 200, "beginning"),
    )
    .expect("config");
    let client = Client::connect(config).await.expect("connect");
    let mut sub = client.subscribe("quiet").await.expect("subscribe");
    eventually("the reader joined", || proxy.stats().open == 1).await;
    for i in 0..5 {
        chat.post(0, "quiet", "writer", &format!("m{i}")).await;
    }
    let mut got = Delivered::from_beginning();
    got.until("quiet", &mut sub, 5, LIMIT).await;
    assert_eq!(proxy.stats().forwarded, 0, "nothing came live");
    client.close().await;
}

// ---- HTTP limits of docs/protocol.md section 12.3, against a stand-in -------

/// What the HTTP stand-in does with one request.
enum Reply {
    /// Writes this whole response, then closes the connection.
    Raw(Vec<u8>),
    /// Never answers; waits until the client gives up on the connection.
    Never,
}

/// A 200 answer with `body`, with or without a `Content-Length`.
fn ok(body: &[u8], length: bool) -> Reply {
    let mut raw =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n".to_vec();
    if length {
        raw.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(body);
    Reply::Raw(raw)
}

/// An HTTP server on a free loopback port that answers the `n`th request
/// (from 0) as `reply(n)` says; it records each request's head, and counts
/// the connections the client closed while waiting for an answer.
struct HttpStandIn {
    addr: SocketAddr,
    heads: Arc<std::sync::Mutex<Vec<String>>>,
    abandoned: Arc<AtomicU64>,
}

impl HttpStandIn {
    async fn start(reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> HttpStandIn {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local address");
        let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
        let abandoned = Arc::new(AtomicU64::new(0));
        let reply = Arc::new(reply);
        let (h, a) = (heads.clone(), abandoned.clone());
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let (heads, abandoned, reply) = (h.clone(), a.clone(), reply.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let n = {
                        let mut heads = heads.lock().expect("not poisoned");
                        heads.push(String::from_utf8_lossy(&head).into_owned());
                        heads.len() - 1
                    };
                    match reply(n) {
                        Reply::Raw(raw) => {
                            let _ = tcp.write_all(&raw).await;
                            let _ = tcp.shutdown().await;
                        }
                        Reply::Never => {
                            while let Ok(n) = tcp.read(&mut buf).await {
                                if n == 0 {
                                    break;
                                }
                            }
                            abandoned.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        HttpStandIn {
            addr,
            heads,
            abandoned,
        }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("not poisoned").clone()
    }
}

/// A socket that sends nothing and stays open, and a description whose
/// history reads go to `http`: a stream starts from the beginning with a
/// catch-up read of what follows 0.
async fn quiet_socket_and_history(http: SocketAddr, extra: &str) -> ClientConfig {
    let addr = ws_server(1, |mut ws| async move {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    let mut config = ClientConfig::foreign(
        format!("ws://{addr}/ws"),
        description(&format!(
            r#"{{
              "message": {{"stream": {{"fixed": "room"}}, "seq": "seq", "payload": "data"}},
              "history": {{"url": "http://{http}/room/messages?since={{since}}", "messages": "messages"}}
              {extra}
            }}"#
        )),
    )
    .expect("config");
    // Failed reads come back quickly.
    config.session.core.request_timeout_ms = 100;
    config.session.core.max_backoff_ms = 400;
    config
}

/// The first message the subscription delivers, with its payload.
async fn first_message(sub: &mut Subscription) -> (u64, Value) {
    timeout(LIMIT, async {
        loop {
            match sub.next().await {
                Some(SubscriptionEvent::Message { seq, data, .. }) => {
                    break (seq.get(), data.to_value().expect("a JSON payload"));
                }
                Some(_) => {}
                None => panic!("the subscription ended"),
            }
        }
    })
    .await
    .expect("a message in time")
}

#[tokio::test]
async fn an_http_answer_that_never_comes_is_given_up_after_the_fetch_timeout() {
    assert_eq!(
        ClientConfig::default().fetch_timeout,
        Duration::from_secs(10),
        "the default of protocol.md 12.3"
    );
    let http = HttpStandIn::start(|n| match n {
        0 => Reply::Never,
        _ => ok(br#"{"messages":[{"seq":1,"data":"after"}]}"#, true),
    })
    .await;
    let mut config = quiet_socket_and_history(http.addr, "").await;
    config.fetch_timeout = Duration::from_millis(200);
    let client = Client::connect(config).await.expect("connect");
    let mut sub = client.subscribe("room").await.expect("subscribe");
    assert_eq!(first_message(&mut sub).await, (1, json!("after")));
    // The unanswered request was not left hanging: the client closed it.
    let abandoned = http.abandoned.clone();
    eventually("the unanswered request closed", || {
        abandoned.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(http.heads().len() >= 2);
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_answer_over_32_mib_fails_and_one_of_32_mib_is_read() {
    const MAX: usize = 32 << 20;
    assert_eq!(ClientConfig::default().max_answer_bytes, MAX);
    // Valid answers padded with JSON whitespace to `len` bytes.
    let padded = |data: &str, len: usize| {
        let mut body = format!(r#"{{"messages":[{{"seq":1,"data":"{data}"}}]}}"#).into_bytes();
        body.resize(len, b' ');
        body
    };
    let over = padded("over", MAX + 1);
    let at = padded("at the limit", MAX);
    let http = HttpStandIn::start(move |n| match n {
        // Refused from its Content-Length, then while reading a body that
        // names no length.
        0 => ok(&over, true),
        1 => ok(&over, false),
        _ => ok(&at, false),
    })
    .await;
    let config = quiet_socket_and_history(http.addr, "").await;
    let client = Client::connect(config).await.expect("connect");
    let mut sub = client.subscribe("room").await.expect("subscribe");
    assert_eq!(first_message(&mut sub).await, (1, json!("at the limit")));
    assert!(http.heads().len() >= 3, "{} reads", http.heads().len());
    client.close().await;
}

#[tokio::test]
async fn the_description_headers_go_with_every_http_request() {
    let http = HttpStandIn::start(|_| ok(br#"{"messages":[{"seq":1,"data":"one"}]}"#, true)).await;
    let config = quiet_socket_and_history(
        http.addr,
        r#", "headers": {"authorization": "Bearer t-1", "x-room-key": "k 2"}"#,
    )
    .await;
    let client = Client::connect(config).await.expect("connect");
    let mut sub = client.subscribe("room").await.expect("subscribe");
    assert_eq!(first_message(&mut sub).await, (1, json!("one")));
    let heads = http.heads();
    assert!(!heads.is_empty());
    for head in heads {
        let lines: Vec<String> = head.lines().map(str::to_ascii_lowercase).collect();
        assert!(
            lines.iter().any(|l| l == "authorization: bearer t-1"),
            "{head}"
        );
        assert!(lines.iter().any(|l| l == "x-room-key: k 2"), "{head}");
    }
    client.close().await;
}
