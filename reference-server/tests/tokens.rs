//! Tokens (section 10): what they allow, refusal at the upgrade, expiry.

use seqsync_server::auth::{Claims, sign};
use seqsync_test_support::{TestServer, WsClient, upgrade_refusal};
use serde_json::json;

const SECRET: &str = "s3cret";

fn token(read: &[&str], write: &[&str], exp: Option<u64>) -> String {
    let claims = Claims {
        read: read.iter().map(|p| p.to_string()).collect(),
        write: write.iter().map(|p| p.to_string()).collect(),
        exp,
    };
    sign(SECRET.as_bytes(), &claims)
}

fn with_tokens() -> TestServer {
    TestServer::new().config(|c| c.token_secret = Some(SECRET.into()))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[tokio::test]
async fn unauthorized_streams_get_unauthorized_and_allowed_ones_work() {
    let server = with_tokens().start().await;
    let url = server.url_with(&format!("token={}", token(&["room:*"], &["room:1"], None)));
    let mut client = WsClient::connect(&url).await;
    client.subscribe("room:9").await;
    assert_eq!(client.publish("room:1", "ok", json!(1)).await, 1);
    let err = client
        .expect_error(r#"{"type":"subscribe","stream":"lobby"}"#, "unauthorized")
        .await;
    assert_eq!(err["ref"], "lobby");
    let err = client
        .expect_error(
            r#"{"type":"publish","stream":"room:9","id":"w","data":1}"#,
            "unauthorized",
        )
        .await;
    assert_eq!(err["ref"], "w");
    client
        .expect_error(
            r#"{"type":"history","stream":"lobby","from":1,"to":1}"#,
            "unauthorized",
        )
        .await;
    client
        .expect_error(r#"{"type":"snapshot","stream":"lobby"}"#, "unauthorized")
        .await;
}

#[tokio::test]
async fn an_upgrade_without_a_valid_token_is_refused_with_401() {
    let server = with_tokens().start().await;
    assert_eq!(
        upgrade_refusal(&server.ws_url()).await,
        Some(401),
        "no token"
    );
    let forged = sign(b"other", &Claims::allow_all());
    assert_eq!(
        upgrade_refusal(&server.url_with(&format!("token={forged}"))).await,
        Some(401),
        "another secret"
    );
    let expired = token(&["*"], &[], Some(now_secs().saturating_sub(1)));
    assert_eq!(
        upgrade_refusal(&server.url_with(&format!("token={expired}"))).await,
        Some(401),
        "expired"
    );
}

#[tokio::test]
async fn an_upgrade_whose_signed_claims_are_not_an_object_is_refused_with_401() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use hmac::{Hmac, Mac};

    let server = with_tokens().start().await;
    for claims in ["[]", r#"[["*"],["*"]]"#, "null"] {
        let body = URL_SAFE_NO_PAD.encode(claims);
        let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()) else {
            panic!("HMAC takes any key");
        };
        mac.update(body.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert_eq!(
            upgrade_refusal(&server.url_with(&format!("token={body}.{tag}"))).await,
            Some(401),
            "claims {claims}"
        );
    }
}

#[tokio::test]
async fn a_padded_token_is_accepted() {
    let server = with_tokens().start().await;
    // An HMAC-SHA256 tag is 32 bytes: padded base64url ends in one `=`.
    let padded = format!("{}=", token(&["*"], &[], None));
    assert_eq!(
        upgrade_refusal(&server.url_with(&format!("token={padded}"))).await,
        None
    );
}

#[tokio::test]
async fn a_connection_is_closed_with_1008_when_its_token_expires() {
    let server = with_tokens().start().await;
    let exp = now_secs() + 2;
    let url = server.url_with(&format!("token={}", token(&["*"], &["*"], Some(exp))));
    let mut client = WsClient::connect(&url).await;
    // Served while valid...
    client.subscribe("room").await;
    // ...and closed at expiry, with the reason, whatever the client does.
    let close = client.close_frame().await;
    assert_eq!(close, Some((1008, "token expired".to_string())));
    assert!(now_secs() >= exp, "not before the expiry");
    assert_eq!(server.metrics().tokens_expired, 1);
}

#[tokio::test]
async fn a_token_that_expires_beyond_the_clock_is_served() {
    let server = with_tokens().start().await;
    let url = server.url_with(&format!("token={}", token(&["*"], &["*"], Some(u64::MAX))));
    let mut client = WsClient::connect(&url).await;
    assert_eq!(client.subscribe("far").await["seq"], 0);
    assert_eq!(client.publish("far", "p", json!(1)).await, 1);
}
