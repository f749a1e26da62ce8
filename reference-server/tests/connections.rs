//! Connections within limits: a deadline for the upgrade request, at most
//! so many connections, and at most so many from one address, each refused
//! with a clear HTTP status instead of a hang.

use std::time::Duration;

use seqsync_test_support::{TestServer, WAIT, WsClient, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The HTTP status an upgrade to `url` is refused with (`None`: accepted).
async fn refused_with(url: &str) -> Option<u16> {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => None,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Some(response.status().as_u16())
        }
        Err(e) => panic!("upgrade failed otherwise: {e}"),
    }
}

/// Reads until the server closes the connection; what it sent.
async fn until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    match tokio::time::timeout(WAIT, tcp.read_to_end(&mut got)).await {
        Ok(_) => got,
        Err(_) => panic!("the server kept the connection open"),
    }
}

#[tokio::test]
async fn a_stalled_upgrade_request_is_closed_at_the_deadline() {
    let server = TestServer::new()
        .limits(|l| l.handshake_timeout_ms = 200)
        .start()
        .await;
    // Half a request head, then nothing.
    let mut partial = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    partial
        .write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        .await
        .expect("write");
    // Nothing at all.
    let mut silent = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    assert!(
        !until_closed(&mut partial)
            .await
            .starts_with(b"HTTP/1.1 101")
    );
    until_closed(&mut silent).await;
    eventually("both are counted and gone", || {
        let m = server.metrics();
        m.handshake_timeouts == 2 && m.tcp_connections == 0
    })
    .await;
    // The server still takes whoever completes the upgrade in time.
    server.ws().await.subscribe("s").await;
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_server_limit_get_503() {
    let server = TestServer::new()
        .limits(|l| l.max_connections = 2)
        .start()
        .await;
    let first = server.ws().await;
    let _second = server.ws().await;
    assert_eq!(refused_with(&server.ws_url()).await, Some(503));
    assert_eq!(server.metrics().refused_busy, 1);
    drop(first);
    eventually("a place is free again", || {
        server.metrics().tcp_connections < 2
    })
    .await;
    assert_eq!(refused_with(&server.ws_url()).await, None);
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_address_limit_get_429() {
    let server = TestServer::new()
        .limits(|l| {
            l.max_connections = 100;
            l.max_connections_per_ip = 2;
        })
        .start()
        .await;
    let _first = server.ws().await;
    let _second = server.ws().await;
    // A plain HTTP request counts as well: it holds a socket too.
    let mut third = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let answer = String::from_utf8_lossy(&until_closed(&mut third).await).to_string();
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert_eq!(refused_with(&server.ws_url()).await, Some(429));
    assert_eq!(server.metrics().refused_per_address, 2);
    server.stop().await;
}

#[tokio::test]
async fn a_refused_connection_is_answered_promptly() {
    let server = TestServer::new()
        .limits(|l| l.max_connections = 1)
        .start()
        .await;
    let _held: WsClient = server.ws().await;
    let started = tokio::time::Instant::now();
    assert_eq!(refused_with(&server.ws_url()).await, Some(503));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused, not kept waiting"
    );
    server.stop().await;
}
