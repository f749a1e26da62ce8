//! The fixtures for servers that do not speak seqsync, checked with raw
//! WebSocket and HTTP only: the foreign chat server of `tests/foreign/`
//! (several instances over one SQLite file and Redis pub/sub) and the
//! frame-level fault proxy.
//!
//! Every test starts its own Redis and instances on free loopback ports;
//! the Python environment comes from `scripts/foreign.sh`.

use std::collections::BTreeSet;
use std::sync::Arc;

use seqsync_test_support::{
    FaultyWsProxy, ForeignConfig, ForeignServer, Read, WsClient, WsFaults, WsProxyStats, eventually,
};
use serde_json::{Value, json};

async fn chat(instances: usize) -> ForeignServer {
    ForeignServer::start(ForeignConfig {
        instances,
        ..ForeignConfig::default()
    })
    .await
}

fn seq(message: &Value) -> u64 {
    message["sequence_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no sequence_id in {message}"))
}

fn seqs(messages: &[Value]) -> Vec<u64> {
    messages.iter().map(seq).collect()
}

/// The next frame, which must be a message of `room`.
async fn message_of(ws: &mut WsClient, room: &str) -> Value {
    match ws.read().await {
        Read::Frame(frame) if frame["room"] == room && frame.get("event").is_none() => frame,
        Read::Frame(frame) => panic!("expected a message of {room}, got {frame}"),
        Read::Closed(code) => panic!("closed ({code:?}) while waiting for a message of {room}"),
    }
}

/// The next frame, which must be the `sent` event of `client_id`; returns
/// the stored message it carries.
async fn sent(ws: &mut WsClient, client_id: &str) -> Value {
    match ws.read().await {
        Read::Frame(frame) if frame["event"] == "sent" && frame["client_id"] == client_id => {
            frame["stored"].clone()
        }
        Read::Frame(frame) => panic!("expected the sent event of {client_id}, got {frame}"),
        Read::Closed(code) => panic!("closed ({code:?}) while waiting for {client_id}"),
    }
}

/// `GET /rooms/ROOM/messages?QUERY` that must answer 200; the messages'
/// sequence ids.
async fn page(chat: &ForeignServer, i: usize, room: &str, query: &str) -> Vec<u64> {
    let (status, body) = chat.messages(i, room, query).await;
    assert_eq!(status, 200, "{query}: {body}");
    seqs(
        body["messages"]
            .as_array()
            .map_or(&[][..], |m| m.as_slice()),
    )
}

fn is_utc_second(timestamp: &str) -> bool {
    let b = timestamp.as_bytes();
    b.len() == 20
        && (b[4], b[7], b[10], b[13], b[16], b[19]) == (b'-', b'-', b'T', b':', b':', b'Z')
        && b.iter()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16, 19].contains(&i) || c.is_ascii_digit())
}

#[tokio::test]
async fn messages_posted_to_either_instance_reach_clients_of_both_in_order() {
    let chat = chat(2).await;
    let mut on_a = WsClient::connect(&chat.ws_url(0, "lobby", "ann")).await;
    let mut on_b = WsClient::connect(&chat.ws_url(1, "lobby", "bob")).await;
    for n in 1..=20u64 {
        let stored = chat
            .post((n % 2) as usize, "lobby", "carl", &format!("hello {n}"))
            .await;
        assert_eq!(seq(&stored), n, "{stored}");
    }
    for client in [&mut on_a, &mut on_b] {
        for n in 1..=20u64 {
            let m = message_of(client, "lobby").await;
            assert_eq!(seq(&m), n, "{m}");
            assert_eq!(m["user_id"], "carl");
            assert_eq!(m["message"], format!("hello {n}"));
            assert!(is_utc_second(m["timestamp"].as_str().unwrap_or("")), "{m}");
        }
    }
}

#[tokio::test]
async fn concurrent_posts_to_both_instances_get_unique_gapless_sequence_ids() {
    let chat = Arc::new(chat(2).await);
    let writers = (0..4usize).map(|w| {
        let chat = chat.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            for n in 0..25 {
                let stored = chat.post(w % 2, "busy", "w", &format!("{w}-{n}")).await;
                got.push(seq(&stored));
            }
            got
        })
    });
    let mut all = Vec::new();
    for writer in writers {
        let got = writer.await.unwrap_or_else(|e| panic!("writer: {e}"));
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "one writer's ids rise: {got:?}"
        );
        all.extend(got);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=100).collect::<Vec<u64>>());
    let history = chat.messages_since(1, "busy", 0).await;
    assert_eq!(seqs(&history), all);
    assert_eq!(chat.head(0, "busy").await, 100);
}

#[tokio::test]
async fn history_answers_the_messages_after_since_a_page_at_a_time() {
    let chat = chat(1).await;
    // Sent over one socket without waiting: 503 messages quickly.
    let mut ws = WsClient::connect(&chat.ws_url(0, "other", "pat")).await;
    for n in 0..503 {
        ws.send(json!({"action": "send", "room": "log", "message": format!("m{n}"), "client_id": format!("c{n}")}))
            .await;
    }
    for n in 0..503u64 {
        assert_eq!(seq(&sent(&mut ws, &format!("c{n}")).await), n + 1);
    }
    assert_eq!(
        page(&chat, 0, "log", "since=3&limit=5").await,
        (4..=8).collect::<Vec<_>>()
    );
    assert_eq!(
        page(&chat, 0, "log", "since=3&until=6").await,
        (4..=6).collect::<Vec<_>>()
    );
    assert_eq!(
        page(&chat, 0, "log", "since=0").await,
        (1..=500).collect::<Vec<_>>(),
        "the default page is 500"
    );
    assert_eq!(
        page(&chat, 0, "log", "since=500&limit=9999").await,
        (501..=503).collect::<Vec<_>>()
    );
    assert_eq!(page(&chat, 0, "log", "since=503").await, Vec::<u64>::new());
    assert_eq!(
        page(&chat, 0, "nobody-here", "since=0").await,
        Vec::<u64>::new()
    );
    let (status, _) = chat.messages(0, "log", "since=-1").await;
    assert_eq!(status, 400);
    let history = chat.messages_since(0, "log", 497).await;
    assert_eq!(seqs(&history), (498..=503).collect::<Vec<_>>());
    assert_eq!(history[5]["message"], "m502");
    assert_eq!(history[5]["user_id"], "pat");
}

#[tokio::test]
async fn one_socket_follows_the_rooms_it_joins_and_leaves() {
    let chat = chat(2).await;
    let mut ws = WsClient::connect(&format!("{}/ws?user=dee", chat.ws_base(0))).await;
    ws.send(json!({"action": "join", "room": "x"})).await;
    ws.send(json!({"action": "join", "room": "y"})).await;
    // Frames of one socket are handled in order: once this is stored, the
    // joins above took effect.
    ws.send(json!({"action": "send", "room": "x", "message": "to x", "client_id": "1"}))
        .await;
    assert_eq!(seq(&sent(&mut ws, "1").await), 1);
    let posted = chat.post(1, "y", "eve", "to y").await;
    let x = message_of(&mut ws, "x").await;
    assert_eq!(
        (seq(&x), &x["message"], &x["user_id"]),
        (1, &json!("to x"), &json!("dee"))
    );
    let y = message_of(&mut ws, "y").await;
    assert_eq!(y, posted);

    ws.send(json!({"action": "leave", "room": "x"})).await;
    ws.send(json!({"action": "send", "room": "x", "message": "unheard", "client_id": "2"}))
        .await;
    assert_eq!(seq(&sent(&mut ws, "2").await), 2);
    chat.post(1, "y", "eve", "heard").await;
    // Both went through the same Redis subscription, x first: the next
    // message being y's shows x's never came.
    let next = message_of(&mut ws, "y").await;
    assert_eq!((seq(&next), &next["message"]), (2, &json!("heard")));

    ws.send_text("not json").await;
    match ws.read().await {
        Read::Frame(frame) => assert_eq!(frame["event"], "error", "{frame}"),
        Read::Closed(code) => panic!("closed ({code:?}) on a bad frame"),
    }
}

#[tokio::test]
async fn messages_published_while_an_instance_is_cut_off_redis_are_only_in_history() {
    let chat = chat(2).await;
    let mut on_a = WsClient::connect(&chat.ws_url(0, "ops", "ann")).await;
    let mut on_b = WsClient::connect(&chat.ws_url(1, "ops", "bob")).await;
    chat.post(0, "ops", "ann", "before").await;
    assert_eq!(seq(&message_of(&mut on_b, "ops").await), 1);

    chat.cut_redis(1);
    for text in ["lost 2", "lost 3", "lost 4"] {
        chat.post(0, "ops", "ann", text).await;
    }
    // They were published: instance A's client has them.
    for n in 1..=4 {
        assert_eq!(seq(&message_of(&mut on_a, "ops").await), n);
    }
    chat.heal_redis(1).await;
    chat.post(0, "ops", "ann", "after").await;

    let next = message_of(&mut on_b, "ops").await;
    assert_eq!(seq(&next), 5, "B's client skips what B missed: {next}");
    assert_eq!(page(&chat, 1, "ops", "since=1").await, vec![2, 3, 4, 5]);
}

#[tokio::test]
async fn a_restarted_instance_does_not_replay_what_its_clients_missed() {
    let mut chat = chat(2).await;
    let mut on_b = WsClient::connect(&chat.ws_url(1, "news", "bob")).await;
    chat.post(0, "news", "ann", "one").await;
    assert_eq!(seq(&message_of(&mut on_b, "news").await), 1);

    chat.kill(1);
    assert_eq!(
        on_b.read().await.closed_code(),
        Some(None),
        "a crash sends no close frame"
    );
    chat.post(0, "news", "ann", "two").await;
    chat.post(0, "news", "ann", "three").await;
    chat.revive(1).await;
    let mut again = WsClient::connect(&chat.ws_url(1, "news", "bob")).await;
    chat.post(0, "news", "ann", "four").await;
    assert_eq!(seq(&message_of(&mut again, "news").await), 4);
    assert_eq!(page(&chat, 1, "news", "since=1").await, vec![2, 3, 4]);
}

#[tokio::test]
async fn sigterm_closes_clients_going_away_and_exits_cleanly() {
    let mut chat = chat(1).await;
    let mut ws = WsClient::connect(&chat.ws_url(0, "bye", "ann")).await;
    chat.post(0, "bye", "ann", "hi").await;
    assert_eq!(seq(&message_of(&mut ws, "bye").await), 1);
    let status = chat.terminate(0).await;
    assert!(status.success(), "exit: {status:?}\n{}", chat.output(0));
    assert_eq!(ws.closed().await, Some(1001));
}

#[tokio::test]
async fn with_retention_since_below_the_kept_messages_is_gone() {
    let chat = ForeignServer::start(ForeignConfig {
        instances: 1,
        retain: 5,
    })
    .await;
    for n in 1..=8 {
        chat.post(0, "short", "ann", &format!("m{n}")).await;
    }
    assert_eq!(chat.head(0, "short").await, 8);
    assert_eq!(
        page(&chat, 0, "short", "since=3").await,
        vec![4, 5, 6, 7, 8]
    );
    let (status, body) = chat.messages(0, "short", "since=2").await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["earliest_sequence_id"], 4);
    assert_eq!(page(&chat, 0, "short", "since=8").await, Vec::<u64>::new());
}

/// A client of instance 1 through a proxy with `faults`, while `n`
/// messages are posted to instance 0; once every frame reached the proxy,
/// the held ones are let go. Returns the sequence ids the client read, in
/// order, and the proxy's counters.
async fn through_faults(
    chat: &ForeignServer,
    room: &str,
    faults: WsFaults,
    n: u64,
) -> (Vec<u64>, WsProxyStats) {
    let proxy = FaultyWsProxy::start(&chat.ws_base(1), faults).await;
    let mut ws = WsClient::connect(&proxy.url(&format!("/ws?room={room}&user=fay"))).await;
    eventually("the proxy connected upstream", || proxy.stats().open == 1).await;
    for i in 0..n {
        chat.post(0, room, "gus", &format!("m{i}")).await;
    }
    eventually("every frame reached the proxy", || {
        proxy.stats().received == n
    })
    .await;
    proxy.release_held();
    eventually("no frame held", || proxy.stats().held == 0).await;
    let stats = proxy.stats();
    let mut seen = Vec::new();
    while (seen.len() as u64) < stats.forwarded {
        seen.push(seq(&message_of(&mut ws, room).await));
    }
    (seen, stats)
}

const FAULTS: WsFaults = WsFaults {
    seed: 42,
    drop_pct: 15,
    duplicate_pct: 15,
    reorder_pct: 20,
    reorder_window: 3,
    // Held frames go out by count or on release, never by the clock: the
    // outcome does not depend on timing.
    reorder_max_ms: 600_000,
    cut_every: 0,
};

#[tokio::test]
async fn fault_proxy_counters_match_what_the_client_saw() {
    let chat = chat(2).await;
    let n = 200;
    let (seen, stats) = through_faults(&chat, "lossy", FAULTS, n).await;

    assert!(
        stats.dropped > 0 && stats.duplicated > 0 && stats.reordered > 0,
        "{stats:?}"
    );
    assert_eq!(stats.received, n);
    assert_eq!(
        stats.forwarded,
        n - stats.dropped + stats.duplicated,
        "{stats:?}"
    );
    assert_eq!((stats.held, stats.discarded, stats.cuts), (0, 0, 0));
    let distinct: BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(
        distinct.len() as u64,
        n - stats.dropped,
        "missing ones are the dropped"
    );
    assert_eq!(
        seen.len() - distinct.len(),
        stats.duplicated as usize,
        "extra copies"
    );
    assert!(distinct.iter().all(|s| (1..=n).contains(s)));
    // A frame arriving after a higher one: reordered or a late copy.
    let mut highest = 0;
    let mut late = 0;
    for &s in &seen {
        if s < highest {
            late += 1;
        }
        highest = highest.max(s);
    }
    assert!(late > 0, "some frames come late: {seen:?}");
    assert!(
        late <= stats.reordered + stats.duplicated,
        "{late} late, {stats:?}"
    );
}

#[tokio::test]
async fn fault_proxy_repeats_its_faults_for_a_seed() {
    let chat = chat(2).await;
    let (first, first_stats) = through_faults(&chat, "r1", FAULTS, 80).await;
    let (second, second_stats) = through_faults(&chat, "r2", FAULTS, 80).await;
    let other = WsFaults { seed: 43, ..FAULTS };
    let (third, _) = through_faults(&chat, "r3", other, 80).await;
    assert_eq!(first, second);
    assert_eq!(first_stats, second_stats);
    assert_ne!(first, third, "another seed, other faults");
}

#[tokio::test]
async fn fault_proxy_lets_a_held_frame_go_when_no_later_one_comes() {
    let chat = chat(1).await;
    let faults = WsFaults {
        reorder_pct: 100,
        reorder_window: 4,
        reorder_max_ms: 20,
        ..WsFaults::default()
    };
    let proxy = FaultyWsProxy::start(&chat.ws_base(0), faults).await;
    let mut ws = WsClient::connect(&proxy.url("/ws?room=tail&user=kim")).await;
    eventually("the proxy connected upstream", || proxy.stats().open == 1).await;
    chat.post(0, "tail", "ann", "last").await;
    assert_eq!(seq(&message_of(&mut ws, "tail").await), 1);
    let stats = proxy.stats();
    assert_eq!((stats.reordered, stats.forwarded, stats.held), (1, 1, 0));
}

#[tokio::test]
async fn fault_proxy_cuts_a_connection_after_every_k_frames() {
    let chat = chat(2).await;
    let faults = WsFaults {
        cut_every: 4,
        ..WsFaults::default()
    };
    let proxy = FaultyWsProxy::start(&chat.ws_base(1), faults).await;
    let url = proxy.url("/ws?room=cut&user=hal");
    let mut ws = WsClient::connect(&url).await;
    eventually("the proxy connected upstream", || proxy.stats().open == 1).await;
    for i in 1..=6 {
        chat.post(0, "cut", "ann", &format!("m{i}")).await;
    }
    for n in 1..=4 {
        assert_eq!(seq(&message_of(&mut ws, "cut").await), n);
    }
    assert_eq!(
        ws.read().await.closed_code(),
        Some(None),
        "cut without a close frame"
    );
    eventually("the cut is counted", || proxy.stats().cuts == 1).await;
    assert_eq!(proxy.stats().forwarded, 4);

    let mut again = WsClient::connect(&url).await;
    eventually("the proxy connected upstream again", || {
        proxy.stats().open == 1
    })
    .await;
    chat.post(0, "cut", "ann", "m7").await;
    assert_eq!(seq(&message_of(&mut again, "cut").await), 7);
}

#[tokio::test]
async fn fault_proxy_cuts_on_demand_and_refuses_while_down() {
    let chat = chat(1).await;
    let proxy = FaultyWsProxy::start(&chat.ws_base(0), WsFaults::default()).await;
    let url = proxy.url("/ws?room=down&user=ivy");
    let mut ws = WsClient::connect(&url).await;
    eventually("the proxy connected upstream", || proxy.stats().open == 1).await;
    proxy.cut_all();
    assert_eq!(ws.read().await.closed_code(), Some(None));
    eventually("the cut is counted", || proxy.stats().cuts == 1).await;

    proxy.set_down(true);
    let refused = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(refused.is_err(), "connected while down");
    assert_eq!(proxy.stats().refused, 1);

    proxy.set_down(false);
    let mut ws = WsClient::connect(&url).await;
    eventually("the proxy connected upstream", || proxy.stats().open == 1).await;
    chat.post(0, "down", "ann", "back").await;
    assert_eq!(seq(&message_of(&mut ws, "down").await), 1);
}

#[tokio::test]
async fn fault_proxy_passes_client_frames_and_survives_bad_peers() {
    let mut chat = chat(1).await;
    let proxy = FaultyWsProxy::start(&chat.ws_base(0), WsFaults::default()).await;

    // Not a WebSocket handshake at all.
    {
        use tokio::io::AsyncWriteExt;
        let mut raw = tokio::net::TcpStream::connect(proxy.addr())
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let _ = raw.write_all(b"\x16\x03\x01garbage\r\n\r\n").await;
    }
    eventually("the bad handshake is refused", || {
        proxy.stats().refused == 1
    })
    .await;

    let mut ws = WsClient::connect(&proxy.url("/rooms/pass/ws?user=joe")).await;
    ws.send(json!({"action": "send", "room": "pass", "message": "via proxy", "client_id": "p"}))
        .await;
    let stored = sent(&mut ws, "p").await;
    assert_eq!((seq(&stored), &stored["user_id"]), (1, &json!("joe")));
    assert_eq!(message_of(&mut ws, "pass").await, stored);
    assert_eq!(page(&chat, 0, "pass", "since=0").await, vec![1]);

    chat.kill(0);
    assert_eq!(ws.read().await.closed_code(), Some(None));
    let mut orphan = WsClient::connect(&proxy.url("/ws?room=pass")).await;
    assert_eq!(orphan.closed().await, Some(1013), "try again later");
    assert_eq!(proxy.stats().refused, 2);
}

/// How a read ended, for reads that must end the connection.
trait ClosedCode {
    /// `Some(code)` when the read saw the connection close (`code` is
    /// `None` without a close frame); `None` when a frame came instead.
    fn closed_code(self) -> Option<Option<u16>>;
}

impl ClosedCode for Read {
    fn closed_code(self) -> Option<Option<u16>> {
        match self {
            Read::Closed(code) => Some(code),
            Read::Frame(_) => None,
        }
    }
}
