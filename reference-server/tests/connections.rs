//! Connections within limits: a deadline for the upgrade request, at most
//! so many connections, and at most so many from one address, each refused
//! with a clear HTTP status instead of a hang.

use seqsync_server::Limits;
use seqsync_test_support::{Running, TestServer, WAIT, WsClient, eventually, upgrade_refusal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A plain TCP connection to `server` that has sent `head`.
async fn raw(server: &Running, head: &[u8]) -> TcpStream {
    let mut tcp = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    tcp.write_all(head).await.expect("write");
    tcp
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
    let server = TestServer::with_limits(|l| l.handshake_timeout_ms = 200).await;
    // Half a request head, then nothing; and nothing at all.
    let mut partial = raw(
        &server,
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n",
    )
    .await;
    let mut silent = raw(&server, b"").await;
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
}

#[tokio::test]
async fn connections_over_the_server_limit_get_503() {
    let server = TestServer::with_limits(|l| l.max_connections = 2).await;
    let first = server.ws().await;
    let _second = server.ws().await;
    assert_eq!(upgrade_refusal(&server.ws_url()).await, Some(503));
    assert_eq!(server.metrics().refused_busy, 1);
    drop(first);
    eventually("a place is free again", || {
        server.metrics().tcp_connections < 2
    })
    .await;
    assert_eq!(upgrade_refusal(&server.ws_url()).await, None);
}

#[tokio::test]
async fn connections_over_the_address_limit_get_429() {
    let limits = |l: &mut Limits| (l.max_connections, l.max_connections_per_ip) = (100, 2);
    let server = TestServer::with_limits(limits).await;
    let _first = server.ws().await;
    let _second = server.ws().await;
    // A plain HTTP request counts as well: it holds a socket too.
    let mut third = raw(&server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let answer = String::from_utf8_lossy(&until_closed(&mut third).await).to_string();
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert_eq!(upgrade_refusal(&server.ws_url()).await, Some(429));
    assert_eq!(server.metrics().refused_per_address, 2);
}

#[tokio::test]
async fn a_refused_connection_is_answered_while_the_place_is_still_taken() {
    let server = TestServer::with_limits(|l| l.max_connections = 1).await;
    let mut held: WsClient = server.ws().await;
    // The place is never freed while the refusal is awaited: a server that
    // queued the request until one frees would leave it unanswered, and
    // `upgrade_refusal` fails after its deadline.
    assert_eq!(upgrade_refusal(&server.ws_url()).await, Some(503));
    assert_eq!(server.metrics().refused_busy, 1);
    // The connection holding the place was not cut to answer.
    held.subscribe("s").await;
}
