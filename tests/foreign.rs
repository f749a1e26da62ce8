//! The native client against servers that do not speak the seqsync
//! protocol, configured only with a description (docs/protocol.md
//! section 12).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use seqsync::adapter::Description;
use seqsync::{Client, ClientConfig, SubscriptionEvent};
use seqsync_test_support::ws_server;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

const LIMIT: Duration = Duration::from_secs(30);

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
        if let Some(SubscriptionEvent::Message { seq, data }) = event {
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
