//! Publishes over the server's frame size limit, natively: refused before
//! sending once the server announced its limit; refused by a server that
//! did not announce one (`frame_too_large`, or a close with 1009), failed
//! at once and never sent again. The connection stays usable.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use seqsync::{ClientError, LimitSide};
use seqsync_core::protocol::ErrorCode;
use seqsync_test_support::{TestServer, client_config, connect, ws_server};
use serde_json::{Value, json};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A guard against a test that hangs: a publish that loops would end only
/// at its timeout, set far beyond this.
const LIMIT: Duration = Duration::from_secs(30);

/// A payload whose publish frame is over `bytes` bytes.
fn payload(bytes: usize) -> Value {
    json!({ "text": "x".repeat(bytes) })
}

#[tokio::test]
async fn a_publish_over_the_announced_limit_is_refused_before_sending_and_the_client_stays_usable()
{
    let server = TestServer::new()
        .limits(|l| l.max_frame_bytes = 4_096)
        .start()
        .await;
    let mut config = client_config(&server.ws_url());
    config.max_publish_bytes = 1 << 20;
    config.publish_timeout_ms = 600_000;
    let client = connect(config).await;
    // A round trip: the server's first frame, its `head`, came before the
    // answer.
    let first = timeout(LIMIT, client.publish("s", json!(1))).await;
    assert!(matches!(first, Ok(Ok(_))), "{first:?}");

    let refused = timeout(LIMIT, client.publish("s", payload(10_000)))
        .await
        .expect("at once, not at the publish timeout");
    let Err(error) = refused else {
        panic!("the large publish was stored")
    };
    let ClientError::PublishTooLarge { len, limit, side } = &error else {
        panic!("not refused as too large: {error}")
    };
    assert!(*len > 10_000, "the frame's size, {len}");
    assert_eq!((*limit, *side), (Some(4_096), LimitSide::Server));
    assert_eq!(
        error.to_string(),
        format!("publish of {len} bytes is over the server's limit of 4096 bytes")
    );

    let after = timeout(LIMIT, client.publish("s", json!(2))).await;
    assert!(matches!(after, Ok(Ok(_))), "still usable: {after:?}");
    let metrics = server.metrics();
    assert_eq!(
        metrics.errors_with(ErrorCode::FrameTooLarge),
        0,
        "nothing too large reached the server"
    );
    assert_eq!(metrics.connections_total, 1, "no reconnect");
    assert_eq!(metrics.publishes, 2);
    client.close().await;
}

/// How a server that announces no limit refuses a publish frame over
/// 8192 bytes.
#[derive(Clone, Copy)]
enum Refusal {
    /// `error {code: "frame_too_large"}` without `ref`; the connection stays.
    FrameTooLarge,
    /// A close with 1009.
    Close1009,
}

/// A server that speaks just enough of the protocol for publishes: it acks
/// every small one and refuses large ones as `refusal` says, counting them.
async fn old_server(refusal: Refusal, large: Arc<AtomicUsize>) -> String {
    let seq = Arc::new(AtomicUsize::new(0));
    let addr = ws_server(8, move |mut ws| {
        let (large, seq) = (large.clone(), seq.clone());
        async move {
            while let Some(Ok(message)) = ws.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                if text.len() > 8_192 {
                    large.fetch_add(1, Ordering::SeqCst);
                    match refusal {
                        Refusal::FrameTooLarge => {
                            let error = json!({"type": "error", "code": "frame_too_large", "message": "too large"});
                            let _ = ws.send(Message::text(error.to_string())).await;
                            continue;
                        }
                        Refusal::Close1009 => {
                            let frame = CloseFrame {
                                code: CloseCode::Size,
                                reason: "frame too large".into(),
                            };
                            let _ = ws.close(Some(frame)).await;
                            return;
                        }
                    }
                }
                let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                if frame["type"] == "publish" {
                    let n = seq.fetch_add(1, Ordering::SeqCst) + 1;
                    let ack = json!({"type": "ack", "id": frame["id"], "stream": frame["stream"], "seq": n});
                    let _ = ws.send(Message::text(ack.to_string())).await;
                }
            }
        }
    })
    .await;
    format!("ws://{addr}/ws")
}

/// Publishes a large payload to a server of `refusal`'s kind: it fails as
/// too large, once, and a small publish after it is stored.
async fn large_publish_fails_once(refusal: Refusal) {
    let large = Arc::new(AtomicUsize::new(0));
    let url = old_server(refusal, large.clone()).await;
    let mut config = client_config(&url);
    config.max_publish_bytes = 1 << 20;
    config.publish_timeout_ms = 600_000;
    let client = connect(config).await;
    let refused = timeout(LIMIT, client.publish("s", payload(100_000)))
        .await
        .expect("at once, not at the publish timeout");
    assert!(
        matches!(
            refused,
            Err(ClientError::PublishTooLarge {
                limit: None,
                side: LimitSide::Server,
                ..
            })
        ),
        "{refused:?}"
    );
    let after = timeout(LIMIT, client.publish("s", json!("small"))).await;
    assert!(matches!(after, Ok(Ok(_))), "still usable: {after:?}");
    assert_eq!(large.load(Ordering::SeqCst), 1, "the large frame came once");
    client.close().await;
}

#[tokio::test]
async fn frame_too_large_from_a_server_that_announces_no_limit_fails_the_publish_once() {
    large_publish_fails_once(Refusal::FrameTooLarge).await;
}

#[tokio::test]
async fn a_close_with_1009_after_a_publish_fails_it_once() {
    large_publish_fails_once(Refusal::Close1009).await;
}
