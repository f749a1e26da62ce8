//! Helpers shared by the integration tests: a raw WebSocket client, an HTTP
//! getter and a `seqsync_core::Sequencer` driver.
#![allow(dead_code, unused_imports)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use seqsync_server::{Limits, RunningServer, Server, ServerConfig};

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A test client speaking raw JSON frames.
pub struct Client {
    pub ws: Ws,
}

/// What a read returned.
#[derive(Debug)]
pub enum Read {
    Frame(Value),
    Closed(Option<u16>),
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect timed out")
            .expect("connect failed");
        Client { ws }
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send failed");
    }

    /// The next frame (any type) or the close.
    pub async fn read(&mut self) -> Read {
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("no frame within the wait");
            match next {
                Some(Ok(Message::Text(t))) => {
                    return Read::Frame(
                        serde_json::from_str(t.as_str()).expect("server sent bad JSON"),
                    );
                }
                Some(Ok(Message::Close(frame))) => {
                    return Read::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Read::Closed(None),
            }
        }
    }

    /// The next frame that is not a heartbeat.
    pub async fn next(&mut self) -> Value {
        loop {
            match self.read().await {
                Read::Frame(v) if v["type"] == "head" => continue,
                Read::Frame(v) => return v,
                Read::Closed(code) => panic!("connection closed ({code:?})"),
            }
        }
    }

    /// Skips frames until one of type `kind` arrives.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "no {kind} frame within the wait");
            match self.read().await {
                Read::Frame(v) if v["type"] == kind => return v,
                Read::Frame(_) => continue,
                Read::Closed(code) => {
                    panic!("connection closed ({code:?}) while waiting for {kind}")
                }
            }
        }
    }

    /// Sends `frame` and expects an error frame with `code` (heartbeats skipped).
    pub async fn expect_error(&mut self, frame: &str, code: &str) -> Value {
        self.send_text(frame).await;
        let reply = self.next().await;
        assert_eq!(reply["type"], "error", "for {frame}: {reply}");
        assert_eq!(reply["code"], code, "for {frame}: {reply}");
        reply
    }

    pub async fn subscribe(&mut self, stream: &str) -> Value {
        self.send(json!({"type": "subscribe", "stream": stream}))
            .await;
        self.next_of("snapshot").await
    }

    /// Publishes and waits for the ack; returns the seq.
    pub async fn publish(&mut self, stream: &str, id: &str, data: Value) -> u64 {
        self.send(json!({"type": "publish", "stream": stream, "id": id, "data": data}))
            .await;
        let ack = self.next_of("ack").await;
        assert_eq!(ack["id"], id);
        ack["seq"].as_u64().expect("ack without seq")
    }

    /// Publishes `n` messages without waiting, then waits for every ack.
    /// Returns the seqs in ack order.
    pub async fn publish_many(&mut self, stream: &str, prefix: &str, n: usize) -> Vec<u64> {
        for i in 0..n {
            self.send(json!({"type": "publish", "stream": stream, "id": format!("{prefix}{i}"), "data": {"i": i}}))
                .await;
        }
        let mut seqs = Vec::with_capacity(n);
        while seqs.len() < n {
            let ack = self.next_of("ack").await;
            seqs.push(ack["seq"].as_u64().expect("ack without seq"));
        }
        seqs
    }
}

/// A GET over plain HTTP/1.1; returns the status and body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("http timed out")
        .expect("read");
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

/// Polls `check` until it holds or the wait runs out.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn config() -> ServerConfig {
    ServerConfig {
        heartbeat_ms: 100,
        ..ServerConfig::for_tests()
    }
}

pub async fn start(config: ServerConfig) -> RunningServer {
    Server::start(config).await.expect("server failed to start")
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("seqsync-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub mod sequencer {
    //! Drives `seqsync_core::Sequencer` over a real connection, reconnecting
    //! when the connection is cut.

    use super::*;
    use seqsync_core::protocol::{ClientFrame, ServerFrame, parse_server_frame};
    use seqsync_core::{Config, Event, Millis, Sequencer, SubscribeOptions};

    /// What the application saw.
    #[derive(Debug, Default)]
    pub struct Seen {
        pub messages: Vec<(u64, Value)>,
        pub snapshots: Vec<(u64, Value)>,
        pub resets: usize,
        pub reconnects: usize,
        pub history_requests: usize,
    }

    /// Follows `stream` at `url` until the message with seq `until` is
    /// delivered; returns everything delivered.
    /// `ready` fires at the first snapshot; when `gate` is given, the
    /// client then stops reading until it fires (a slow reader).
    pub async fn follow(
        url: &str,
        stream: &str,
        until: u64,
        ready: Option<tokio::sync::oneshot::Sender<()>>,
        gate: Option<tokio::sync::oneshot::Receiver<()>>,
    ) -> Seen {
        let origin = Instant::now();
        let now = || Millis(origin.elapsed().as_millis() as u64);
        let mut core = Sequencer::<Value>::new(Config {
            gap_timeout_ms: 30,
            request_timeout_ms: 500,
            max_backoff_ms: 2_000,
            ..Config::default()
        });
        let id = core
            .subscribe(now(), stream, SubscribeOptions::default())
            .expect("subscribe");
        let mut seen = Seen::default();
        let mut ready = ready;
        let mut gate = gate;
        let deadline = Instant::now() + Duration::from_secs(60);
        'connections: loop {
            assert!(
                Instant::now() < deadline,
                "did not reach seq {until}: {:?}",
                core.stats(id)
            );
            let Ok(Ok((mut ws, _))) =
                tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url)).await
            else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            core.handle_connected(now());
            loop {
                while let Some(request) = core.poll_request() {
                    if matches!(request, seqsync_core::Request::FetchHistory { .. }) {
                        seen.history_requests += 1;
                    }
                    let frame: ClientFrame<Value> = request.into();
                    let text = frame.to_json().expect("encode");
                    if ws.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                while let Some(event) = core.poll_event() {
                    match event {
                        Event::Message { seq, payload, .. } => {
                            seen.messages.push((seq.get(), payload));
                        }
                        Event::Snapshot { seq, state, .. } => {
                            seen.snapshots.push((seq.get(), state));
                            if let Some(tx) = ready.take() {
                                let _ = tx.send(());
                                if let Some(gate) = gate.take() {
                                    let _ = gate.await;
                                }
                            }
                        }
                        Event::Reset { .. } => seen.resets += 1,
                        _ => {}
                    }
                }
                if core.stats(id).is_some_and(|st| st.last_seq.get() >= until) {
                    let _ = ws.close(None).await;
                    return seen;
                }
                assert!(
                    Instant::now() < deadline,
                    "did not reach seq {until}: {:?}",
                    core.stats(id)
                );
                let wake = core.poll_timeout().map_or(Duration::from_millis(200), |t| {
                    Duration::from_millis(t.0.saturating_sub(now().0))
                });
                match tokio::time::timeout(wake, ws.next()).await {
                    Err(_) => core.handle_timeout(now()),
                    Ok(Some(Ok(Message::Text(text)))) => {
                        let frame: ServerFrame<Value> =
                            parse_server_frame(text.as_str(), 1 << 24).expect("server frame");
                        core.handle_frame(now(), frame)
                            .expect("core rejected a server frame");
                        core.handle_timeout(now());
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(Some(Err(_)) | None) => {
                        core.handle_disconnected(now());
                        seen.reconnects += 1;
                        continue 'connections;
                    }
                }
            }
        }
    }

    /// Checks the contract on what was seen for a stream whose messages
    /// are `{"i": n}` with seq n+1 (published in order by one publisher).
    pub fn assert_exact(seen: &Seen, n: u64) {
        let (start, _) = seen.snapshots.first().cloned().expect("a snapshot");
        let seqs: Vec<u64> = seen.messages.iter().map(|(s, _)| *s).collect();
        let want: Vec<u64> = (start + 1..=n).collect();
        assert_eq!(
            seqs,
            want,
            "delivered seqs must be exactly {}..={n}",
            start + 1
        );
        for (seq, payload) in &seen.messages {
            assert_eq!(payload["i"].as_u64(), Some(seq - 1), "payload of seq {seq}");
        }
    }
}
