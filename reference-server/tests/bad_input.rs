//! Bad input gets an `error` frame with its code and the connection goes on;
//! only a frame past the hard limit (1009), text that is not UTF-8 (1007)
//! and a flood of refused frames (1008) close it.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::SinkExt;
use seqsync_server::{ErrorCode, Limits};
use seqsync_test_support::{Read, TestServer, WAIT, WsClient, served};
use serde_json::json;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// One bad frame a line, then `=>` and the error code it gets (lines
/// starting with `--` say what follows). Each is sent on one connection in
/// turn; after the whole table the same connection must still work.
const TABLE: &str = r#"
-- Not JSON, not an object, no type, a repeated member.
{not json} => malformed_frame
[1,2,3] => malformed_frame
{"stream":"s"} => malformed_frame
{"type":7} => malformed_frame
{"type":"subscribe","stream":"s","stream":"t"} => malformed_frame
-- A type this protocol does not know.
{"type":"teleport","stream":"s"} => unknown_type
-- Missing or mistyped members.
{"type":"subscribe"} => malformed_frame
{"type":"publish","stream":"s","data":1} => malformed_frame
{"type":"subscribe","stream":5} => malformed_frame
{"type":"subscribe","stream":"s","since":"3"} => malformed_frame
-- Stream names: empty, control characters.
{"type":"subscribe","stream":""} => invalid_stream
{"type":"subscribe","stream":"a\u0001b"} => invalid_stream
-- Negative, fractional or exponent seqs are malformed (sections 3.1, 6).
{"type":"history","stream":"s","from":-1,"to":3} => malformed_frame
{"type":"history","stream":"s","from":1.5,"to":3} => malformed_frame
{"type":"subscribe","stream":"s","since":-4} => malformed_frame
{"type":"subscribe","stream":"s","since":1.5} => malformed_frame
{"type":"subscribe","stream":"s","since":1e3} => malformed_frame
-- Epochs that are not integers in 0..=2^53-1.
{"type":"subscribe","stream":"s","since":0,"epoch":-1} => malformed_frame
{"type":"subscribe","stream":"s","since":0,"epoch":9007199254740992} => malformed_frame
-- Seqs above 2^53-1, history bounds included, are out of range.
{"type":"history","stream":"s","from":1,"to":9007199254740992} => seq_out_of_range
{"type":"history","stream":"s","from":18446744073709551615,"to":18446744073709551615} => seq_out_of_range
{"type":"history","stream":"s","from":9007199254740992,"to":3} => seq_out_of_range
{"type":"subscribe","stream":"s","since":9007199254740992} => seq_out_of_range
-- Ranges: seq 0 (messages start at 1) and inverted.
{"type":"history","stream":"s","from":0,"to":3} => invalid_range
{"type":"history","stream":"s","from":5,"to":2} => invalid_range
-- Beyond the head (the stream has 3 messages; "never" has none).
{"type":"history","stream":"s","from":4,"to":9} => range_beyond_head
{"type":"history","stream":"never","from":1,"to":9} => range_beyond_head
-- Unsubscribing what is not subscribed.
{"type":"unsubscribe","stream":"never"} => not_subscribed
-- Publish ids: empty.
{"type":"publish","stream":"s","id":"","data":1} => malformed_frame
-- Request references: empty, not a string, longer than 64 bytes.
{"type":"subscribe","stream":"s","ref":""} => malformed_frame
{"type":"snapshot","stream":"s","ref":7} => malformed_frame
{"type":"history","stream":"s","from":1,"to":2,"ref":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"} => malformed_frame
"#;

/// The rows of [`TABLE`].
fn table() -> impl Iterator<Item = (String, ErrorCode)> {
    TABLE
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with("--"))
        .map(|line| {
            let (frame, code) = line.rsplit_once(" => ").expect("frame => code");
            (frame.to_string(), ErrorCode::from_wire(code))
        })
}

#[tokio::test]
async fn every_bad_frame_gets_its_error_code_and_the_connection_survives() {
    let (server, mut client) = served(|_| {}).await;
    client.publish_many("s", "seed", 3).await;
    let built = [
        (
            format!(r#"{{"type":"subscribe","stream":"{}"}}"#, "x".repeat(257)),
            ErrorCode::InvalidStream,
        ),
        (
            format!(
                r#"{{"type":"publish","stream":"s","id":"{}","data":1}}"#,
                "i".repeat(129)
            ),
            ErrorCode::MalformedFrame,
        ),
        // A `since` of thousands of digits is a number too large, not a
        // number that failed to parse.
        (
            format!(
                r#"{{"type":"subscribe","stream":"s","since":{}}}"#,
                "9".repeat(5000)
            ),
            ErrorCode::SeqOutOfRange,
        ),
        (
            format!(
                r#"{{"type":"publish","stream":"s","id":"deep","data":{}{}}}"#,
                "[".repeat(1000),
                "]".repeat(1000)
            ),
            ErrorCode::MalformedFrame,
        ),
    ];
    let rows: Vec<(String, ErrorCode)> = table().chain(built).collect();
    assert!(rows.iter().all(|(_, code)| *code != ErrorCode::Unknown));
    for (frame, code) in &rows {
        client.expect_error(frame, code.as_str()).await;
    }
    client
        .ws
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .expect("send binary");
    assert_eq!(client.next().await["code"], "malformed_frame");
    // Still serving.
    assert_eq!(client.publish("s", "after", json!("ok")).await, 4);
    // Every refusal is counted under its code (the binary frame too).
    let metrics = server.metrics();
    for code in ErrorCode::ALL {
        let sent = rows.iter().filter(|(_, c)| *c == code).count()
            + usize::from(code == ErrorCode::MalformedFrame);
        assert_eq!(metrics.errors_with(code), sent as u64, "{code} counted");
    }
}

#[tokio::test]
async fn frame_over_the_limit_is_refused_and_the_connection_survives() {
    let limits = |l: &mut Limits| (l.max_frame_bytes, l.hard_frame_bytes) = (1024, 64 * 1024);
    let (_server, mut client) = served(|c| limits(&mut c.limits)).await;
    let big = json!({"type": "publish", "stream": "s", "id": "big", "data": "x".repeat(2000)});
    client
        .expect_error(&big.to_string(), "frame_too_large")
        .await;
    assert_eq!(client.publish("s", "small", json!("ok")).await, 1);
}

#[tokio::test]
async fn frame_over_the_hard_limit_closes_with_1009() {
    let limits = |l: &mut Limits| (l.max_frame_bytes, l.hard_frame_bytes) = (1024, 8 * 1024);
    let (_server, mut client) = served(|c| limits(&mut c.limits)).await;
    let huge = json!({"type": "publish", "stream": "s", "id": "huge", "data": "x".repeat(20_000)});
    client.send_text(&huge.to_string()).await;
    assert_eq!(client.closed().await, Some(1009));
}

#[tokio::test]
async fn text_that_is_not_utf8_closes_with_1007_at_once() {
    let (_server, mut client) = served(|c| c.shutdown_grace_ms = 60_000).await;
    client.subscribe("s").await;
    let bad = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    client.ws.send(Message::Frame(bad)).await.expect("send");
    // Well within the shutdown grace the server would otherwise wait.
    assert_eq!(client.closed().await, Some(1007));
}

#[tokio::test]
async fn too_many_subscriptions_are_refused() {
    let (_server, mut client) = served(|c| c.limits.max_subscriptions = 2).await;
    client.subscribe("a").await;
    client.subscribe("b").await;
    let err = client
        .expect_error(
            r#"{"type":"subscribe","stream":"c"}"#,
            "too_many_subscriptions",
        )
        .await;
    assert_eq!(err["ref"], "c");
    // Resubscribing a stream already held is not a new subscription.
    client.subscribe("a").await;
}

/// Sends a publish to `s` for each of `ids` without waiting, then reads one
/// answer for each: `Some(seq)` when it was acked, `None` when it was
/// refused as rate limited. Any other answer, or a second one, fails.
async fn publish_burst(client: &mut WsClient, ids: &[String]) -> BTreeMap<String, Option<u64>> {
    for id in ids {
        client
            .send(json!({"type": "publish", "stream": "s", "id": id, "data": id}))
            .await;
    }
    let mut answers = BTreeMap::new();
    while answers.len() < ids.len() {
        let frame = client.next().await;
        let (id, answer) = match (frame["type"].as_str(), frame["code"].as_str()) {
            (Some("ack"), _) => (&frame["id"], Some(frame["seq"].as_u64().expect("a seq"))),
            (Some("error"), Some("rate_limited")) => (&frame["ref"], None),
            _ => panic!("unexpected {frame}"),
        };
        let id = id.as_str().expect("the publish id").to_string();
        assert!(
            ids.contains(&id),
            "an answer to no publish of this burst: {frame}"
        );
        assert!(
            answers.insert(id, answer).is_none(),
            "a second answer: {frame}"
        );
    }
    answers
}

#[tokio::test]
async fn publish_beyond_the_rate_is_refused_then_allowed_again() {
    const RATE: usize = 5;
    let (_server, mut client) = served(|c| c.limits.publish_rate = RATE as u32).await;
    let mut seqs = Vec::new();
    // Bursts of twice the bucket until one meets the limit: however slow
    // the machine, the bucket cannot refill as fast as frames are read.
    let deadline = Instant::now() + WAIT;
    for round in 0.. {
        let ids: Vec<String> = (0..2 * RATE).map(|i| format!("r{round}-{i}")).collect();
        let answers = publish_burst(&mut client, &ids).await;
        if round == 0 {
            // The bucket starts full: the first second's worth always passes.
            for id in &ids[..RATE] {
                assert!(answers[id].is_some(), "{id} refused from a full bucket");
            }
        }
        seqs.extend(answers.values().flatten());
        if answers.values().any(Option::is_none) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no publish was ever rate limited"
        );
    }
    // The bucket refills: a publish goes through again.
    let deadline = Instant::now() + WAIT;
    for i in 0.. {
        let id = format!("later{i}");
        if let Some(seq) = publish_burst(&mut client, std::slice::from_ref(&id)).await[&id] {
            seqs.push(seq);
            break;
        }
        assert!(Instant::now() < deadline, "rate limit never lifted");
        // Spaces the retries: every refusal counts against the error budget.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every acked publish is stored once, and no refused one is.
    seqs.sort_unstable();
    let stored = seqs.len() as u64;
    assert_eq!(seqs, (1..=stored).collect::<Vec<_>>());
    assert_eq!(client.subscribe("s").await["seq"], stored);
}

/// Sends `count` bad frames at once and reads until the close: the close
/// code and the error frames before it.
async fn flood(client: &mut WsClient, count: usize) -> (Option<u16>, usize) {
    for _ in 0..count {
        if client.ws.feed("{bad".into()).await.is_err() {
            break;
        }
    }
    let _ = client.ws.flush().await;
    let mut errors = 0;
    loop {
        match client.read().await {
            Read::Frame(f) if f["type"] == "head" => {}
            Read::Frame(f) => {
                assert_eq!(f["code"], "malformed_frame");
                errors += 1;
            }
            Read::Closed(code) => return (code, errors),
        }
    }
}

#[tokio::test]
async fn a_flood_of_bad_frames_closes_with_1008() {
    let (_server, mut client) = served(|c| c.limits.max_errors_per_sec = 50).await;
    let (closed, errors) = flood(&mut client, 500).await;
    assert_eq!(closed, Some(1008));
    assert!(errors <= 51, "{errors} error frames before the close");
}

#[tokio::test]
async fn the_default_error_budget_closes_a_flood_even_with_a_high_publish_rate() {
    // The defaults: 1,000 errors a second, 10,000 publishes a second. The
    // error budget is its own; the publish rate does not widen it.
    let (_server, mut client) = served(|c| c.limits = Limits::default()).await;
    let (closed, errors) = flood(&mut client, 3_000).await;
    assert_eq!(closed, Some(1008));
    assert!(errors <= 1_001, "{errors} error frames before the close");
}

#[tokio::test]
async fn client_faults_can_be_refused_and_bad_specs_are_rejected() {
    let server = TestServer::with_config(|c| c.allow_client_faults = false).await;
    let refused = tokio_tungstenite::connect_async(server.url_with("faults=drop=0.5")).await;
    assert!(
        matches!(refused, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 400),
        "{refused:?}"
    );
    server.stop().await;
    let server = TestServer::new().start().await;
    let bad = tokio_tungstenite::connect_async(server.url_with("faults=drop=7")).await;
    assert!(
        matches!(bad, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 400),
        "{bad:?}"
    );
}
