//! Bad input gets an `error` frame with its code and the connection goes on;
//! only an oversized frame past the hard limit and a flood close it.

mod common;

use common::*;
use seqsync_server::auth::{Claims, sign};
use serde_json::json;

/// (frame, expected error code). Each row is sent on one connection in turn;
/// after the whole table the same connection must still work.
const TABLE: &[(&str, &str)] = &[
    // Not JSON, not an object, no type.
    ("{not json", "malformed_frame"),
    ("[1,2,3]", "malformed_frame"),
    (r#"{"stream":"s"}"#, "malformed_frame"),
    (r#"{"type":7}"#, "malformed_frame"),
    // A type this protocol does not know.
    (r#"{"type":"teleport","stream":"s"}"#, "unknown_type"),
    // Missing or mistyped fields.
    (r#"{"type":"subscribe"}"#, "malformed_frame"),
    (
        r#"{"type":"publish","stream":"s","data":1}"#,
        "malformed_frame",
    ),
    (r#"{"type":"subscribe","stream":5}"#, "malformed_frame"),
    // Stream names: empty, too long, control characters.
    (r#"{"type":"subscribe","stream":""}"#, "invalid_stream"),
    (
        r#"{"type":"subscribe","stream":"a\u0001b"}"#,
        "invalid_stream",
    ),
    // Seqs that are not integers in 0..=2^53-1.
    (
        r#"{"type":"history","stream":"s","from":-1,"to":3}"#,
        "seq_out_of_range",
    ),
    (
        r#"{"type":"history","stream":"s","from":1,"to":9007199254740992}"#,
        "seq_out_of_range",
    ),
    (
        r#"{"type":"history","stream":"s","from":18446744073709551615,"to":18446744073709551615}"#,
        "seq_out_of_range",
    ),
    (
        r#"{"type":"history","stream":"s","from":1.5,"to":3}"#,
        "seq_out_of_range",
    ),
    (
        r#"{"type":"subscribe","stream":"s","since":-4}"#,
        "seq_out_of_range",
    ),
    (
        r#"{"type":"subscribe","stream":"s","since":9007199254740992}"#,
        "seq_out_of_range",
    ),
    // Ranges: seq 0 (messages start at 1) and inverted.
    (
        r#"{"type":"history","stream":"s","from":0,"to":3}"#,
        "invalid_range",
    ),
    (
        r#"{"type":"history","stream":"s","from":5,"to":2}"#,
        "invalid_range",
    ),
    // Beyond the head (the stream has 3 messages).
    (
        r#"{"type":"history","stream":"s","from":4,"to":9}"#,
        "range_beyond_head",
    ),
    // Unsubscribing what is not subscribed.
    (
        r#"{"type":"unsubscribe","stream":"never"}"#,
        "not_subscribed",
    ),
    // Publish ids: empty.
    (
        r#"{"type":"publish","stream":"s","id":"","data":1}"#,
        "malformed_frame",
    ),
    // Request references: empty, not a string, longer than 64 bytes.
    (
        r#"{"type":"subscribe","stream":"s","ref":""}"#,
        "malformed_frame",
    ),
    (
        r#"{"type":"snapshot","stream":"s","ref":7}"#,
        "malformed_frame",
    ),
    (
        r#"{"type":"history","stream":"s","from":1,"to":2,"ref":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
        "malformed_frame",
    ),
];

#[tokio::test]
async fn every_bad_frame_gets_its_error_code_and_the_connection_survives() {
    let server = start(config()).await;
    let mut client = Client::connect(&server.ws_url()).await;
    client.publish_many("s", "seed", 3).await;
    for (frame, code) in TABLE {
        client.expect_error(frame, code).await;
    }
    let long_name = format!(r#"{{"type":"subscribe","stream":"{}"}}"#, "x".repeat(257));
    client.expect_error(&long_name, "invalid_stream").await;
    let long_id = format!(
        r#"{{"type":"publish","stream":"s","id":"{}","data":1}}"#,
        "i".repeat(129)
    );
    client.expect_error(&long_id, "malformed_frame").await;
    client
        .ws
        .send(tokio_tungstenite::tungstenite::Message::Binary(
            vec![1, 2, 3].into(),
        ))
        .await
        .expect("send binary");
    let reply = client.next().await;
    assert_eq!(reply["code"], "malformed_frame");
    // Still serving.
    assert_eq!(client.publish("s", "after", json!("ok")).await, 4);
    let errors = server.metrics();
    assert!(errors.errors_with("malformed_frame") >= 10);
    assert!(errors.errors_with("seq_out_of_range") >= 6);
    server.shutdown().await.expect("shutdown");
}

use futures_util::SinkExt;

#[tokio::test]
async fn frame_over_the_limit_is_refused_and_the_connection_survives() {
    let server = start(ServerConfig {
        limits: Limits {
            max_frame_bytes: 1024,
            hard_frame_bytes: 64 * 1024,
            ..Limits::default()
        },
        ..config()
    })
    .await;
    let mut client = Client::connect(&server.ws_url()).await;
    let big = json!({"type": "publish", "stream": "s", "id": "big", "data": "x".repeat(2000)});
    client
        .expect_error(&big.to_string(), "frame_too_large")
        .await;
    assert_eq!(client.publish("s", "small", json!("ok")).await, 1);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn frame_over_the_hard_limit_closes_with_1009() {
    let server = start(ServerConfig {
        limits: Limits {
            max_frame_bytes: 1024,
            hard_frame_bytes: 8 * 1024,
            ..Limits::default()
        },
        ..config()
    })
    .await;
    let mut client = Client::connect(&server.ws_url()).await;
    let huge = json!({"type": "publish", "stream": "s", "id": "huge", "data": "x".repeat(20_000)});
    client.send_text(&huge.to_string()).await;
    loop {
        match client.read().await {
            Read::Frame(_) => continue,
            Read::Closed(code) => {
                assert_eq!(code, Some(1009));
                break;
            }
        }
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn too_many_subscriptions_are_refused() {
    let server = start(ServerConfig {
        limits: Limits {
            max_subscriptions: 2,
            ..Limits::default()
        },
        ..config()
    })
    .await;
    let mut client = Client::connect(&server.ws_url()).await;
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
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn new_streams_beyond_the_server_limit_are_refused() {
    let server = start(ServerConfig {
        limits: Limits {
            max_streams: 2,
            ..Limits::default()
        },
        ..config()
    })
    .await;
    let mut client = Client::connect(&server.ws_url()).await;
    client.publish("one", "a", json!(1)).await;
    client.subscribe("two").await;
    let err = client
        .expect_error(
            r#"{"type":"publish","stream":"three","id":"x","data":1}"#,
            "invalid_stream",
        )
        .await;
    // A refused publish is named by its id (section 4.5), so the client
    // can tell which publish failed.
    assert_eq!(err["ref"], "x");
    // Streams already open go on working.
    assert_eq!(client.publish("one", "b", json!(2)).await, 2);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn publish_beyond_the_rate_is_refused_then_allowed_again() {
    let server = start(ServerConfig {
        limits: Limits {
            publish_rate: 5,
            ..Limits::default()
        },
        ..config()
    })
    .await;
    let mut client = Client::connect(&server.ws_url()).await;
    for i in 0..8 {
        client
            .send(json!({"type": "publish", "stream": "s", "id": format!("r{i}"), "data": i}))
            .await;
    }
    let (mut acks, mut limited) = (0, 0);
    while acks + limited < 8 {
        let frame = client.next().await;
        match (frame["type"].as_str(), frame["code"].as_str()) {
            (Some("ack"), _) => acks += 1,
            (Some("error"), Some("rate_limited")) => limited += 1,
            _ => panic!("unexpected {frame}"),
        }
    }
    assert_eq!((acks, limited), (5, 3));
    // The bucket refills: a publish goes through again.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut i = 0;
    loop {
        i += 1;
        client
            .send(json!({"type": "publish", "stream": "s", "id": format!("later{i}"), "data": 0}))
            .await;
        let frame = client.next().await;
        if frame["type"] == "ack" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rate limit never lifted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_flood_of_bad_frames_closes_with_1008() {
    let server = start(ServerConfig {
        limits: Limits {
            max_errors_per_sec: 50,
            publish_rate: 10,
            ..Limits::default()
        },
        ..config()
    })
    .await;
    let mut client = Client::connect(&server.ws_url()).await;
    for _ in 0..500 {
        if client.ws.send("{bad".into()).await.is_err() {
            break;
        }
    }
    let mut errors = 0;
    let closed = loop {
        match client.read().await {
            Read::Frame(f) => {
                assert_eq!(f["code"], "malformed_frame");
                errors += 1;
            }
            Read::Closed(code) => break code,
        }
    };
    assert_eq!(closed, Some(1008));
    assert!(errors <= 51, "{errors} error frames before the close");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn unauthorized_streams_get_unauthorized_and_allowed_ones_work() {
    let secret = "s3cret";
    let server = start(ServerConfig {
        token_secret: Some(secret.into()),
        ..config()
    })
    .await;
    let token = sign(
        secret.as_bytes(),
        &Claims {
            read: vec!["room:*".into()],
            write: vec!["room:1".into()],
            exp: None,
        },
    );
    let url = format!("{}?token={token}", server.ws_url());
    let mut client = Client::connect(&url).await;
    client.subscribe("room:9").await;
    assert_eq!(client.publish("room:1", "ok", json!(1)).await, 1);
    let err = client
        .expect_error(r#"{"type":"subscribe","stream":"lobby"}"#, "unauthorized")
        .await;
    assert_eq!(err["ref"], "lobby");
    client
        .expect_error(
            r#"{"type":"publish","stream":"room:9","id":"w","data":1}"#,
            "unauthorized",
        )
        .await;
    client
        .expect_error(
            r#"{"type":"history","stream":"lobby","from":1,"to":1}"#,
            "unauthorized",
        )
        .await;
    client
        .expect_error(r#"{"type":"snapshot","stream":"lobby"}"#, "unauthorized")
        .await;
    // No token: nothing is allowed, but the connection stands.
    let mut anonymous = Client::connect(&server.ws_url()).await;
    anonymous
        .expect_error(r#"{"type":"subscribe","stream":"room:1"}"#, "unauthorized")
        .await;
    // A forged or foreign token is refused at the upgrade.
    let forged = sign(b"other", &Claims::allow_all());
    let refused =
        tokio_tungstenite::connect_async(format!("{}?token={forged}", server.ws_url())).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401);
        }
        other => panic!("expected HTTP 401, got {other:?}"),
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn client_faults_can_be_refused_and_bad_specs_are_rejected() {
    let server = start(ServerConfig {
        allow_client_faults: false,
        ..config()
    })
    .await;
    let refused =
        tokio_tungstenite::connect_async(format!("{}?faults=drop=0.5", server.ws_url())).await;
    assert!(
        matches!(refused, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 403),
        "{refused:?}"
    );
    server.shutdown().await.expect("shutdown");
    let server = start(config()).await;
    let bad = tokio_tungstenite::connect_async(format!("{}?faults=drop=7", server.ws_url())).await;
    assert!(
        matches!(bad, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 400),
        "{bad:?}"
    );
    server.shutdown().await.expect("shutdown");
}
