//! The native client over `wss://` against the reference server with a
//! certificate made here, and tokens fetched before every connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use seqsync::rustls::pki_types::CertificateDer;
use seqsync::{ClientError, ConnectionState};
use seqsync_server::auth::{Claims, sign};
use seqsync_server::{Storage, TlsConfig};
use seqsync_test_support::{
    StreamCheck, TempDir, TestServer, client_config, connect, read_to, read_until_snapshot,
};
use serde_json::json;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(30);

/// A self-signed certificate for 127.0.0.1 and localhost: the server's TLS
/// configuration and the certificate a client must trust.
fn certificate() -> (TlsConfig, CertificateDer<'static>) {
    let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let made = rcgen::generate_simple_self_signed(names).expect("certificate");
    let tls = TlsConfig::from_pem(
        made.cert.pem().as_bytes(),
        made.key_pair.serialize_pem().as_bytes(),
    )
    .expect("server TLS configuration");
    (tls, made.cert.der().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_subscribe_publish_and_resume_across_a_restart() {
    let (tls, root) = certificate();
    let dir = TempDir::new("wss");
    let server = TestServer::new()
        .storage(Storage::Sqlite(dir.join("log.db")))
        .config(|c| c.tls = Some(tls))
        .start()
        .await;
    let url = server.ws_url();
    assert!(url.starts_with("wss://"), "{url}");
    let trusted = || client_config(&url).tls_root_certificate(root.clone());
    let reader = connect(trusted()).await;
    let writer = connect(trusted()).await;
    let mut sub = reader.subscribe("secure").await.expect("subscribe");
    let mut check = StreamCheck::recording();
    // The snapshot first, so that it is the empty stream's (seq 0): a
    // publish on the other connection could otherwise be stored first.
    assert!(read_until_snapshot(&mut sub, &mut check, Duration::from_secs(30)).await);
    for i in 1..=10u64 {
        writer.publish("secure", json!(i)).await.expect("publish");
    }
    read_to(&mut sub, &mut check, 10).await;

    // The server goes away and comes back on the same address, same log:
    // the reader reconnects over TLS and resumes, without a snapshot.
    let server = server.restart().await;
    for i in 11..=20u64 {
        writer
            .publish("secure", json!(i))
            .await
            .expect("publish after restart");
    }
    read_to(&mut sub, &mut check, 20).await;
    assert_eq!(
        check.snapshots,
        [0],
        "one snapshot, the first: resumed after"
    );
    assert_eq!(check.resets, 0);
    check.assert_exact("secure", 20, |n| json!(n));
    assert!(reader.stats().await.expect("stats").connects >= 2);
    drop(sub);
    reader.close().await;
    writer.close().await;
    server.stop().await;
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_clear_connect_failure() {
    let (tls, _) = certificate();
    let server = TestServer::new()
        .config(|c| c.tls = Some(tls))
        .start()
        .await;
    let mut config = client_config(&server.ws_url());
    config.initial_connect_timeout_ms = 500;
    match seqsync::Client::connect(config).await {
        Err(ClientError::ConnectFailed { reason, .. }) => {
            assert!(reason.contains("certificate"), "says why: {reason}");
        }
        other => panic!("expected a refused certificate, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_token_is_fetched_for_every_connection() {
    let secret = "tls-secret";
    let server = TestServer::new()
        .config(|c| c.token_secret = Some(secret.into()))
        .start()
        .await;
    // Each token lives two seconds: the server closes the connection when
    // it expires (1008), and the next attempt must come with a new one.
    let fetched = Arc::new(AtomicU64::new(0));
    let provider = {
        let fetched = fetched.clone();
        move || {
            let fetched = fetched.clone();
            async move {
                fetched.fetch_add(1, Ordering::SeqCst);
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_err(|e| e.to_string())?
                    .as_secs();
                let claims = Claims {
                    read: vec!["*".into()],
                    write: vec!["*".into()],
                    exp: Some(now + 2),
                };
                Ok::<_, String>(sign(secret.as_bytes(), &claims))
            }
        }
    };
    let client = connect(client_config(&server.ws_url()).token_provider(provider)).await;
    let mut sub = client.subscribe("fresh").await.expect("subscribe");
    let mut check = StreamCheck::default();
    client.publish("fresh", json!(1)).await.expect("publish");
    read_to(&mut sub, &mut check, 1).await;
    let mut state = client.connection_state();
    let lost = timeout(
        LIMIT,
        state.wait_for(|s| matches!(s, ConnectionState::Disconnected { .. })),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    assert!(
        lost,
        "the server ends the connection when its token expires"
    );
    let back = timeout(
        LIMIT,
        state.wait_for(|s| matches!(s, ConnectionState::Connected { .. })),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    assert!(back, "reconnected with a new token");
    assert!(
        fetched.load(Ordering::SeqCst) >= 2,
        "a token per connection"
    );
    client.publish("fresh", json!(2)).await.expect("publish");
    read_to(&mut sub, &mut check, 2).await;
    assert_eq!(check.resets, 0, "the stream went on across the new token");
    drop(sub);
    client.close().await;
    server.stop().await;
}
