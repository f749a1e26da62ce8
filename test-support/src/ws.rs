//! A raw WebSocket client speaking JSON frames, and a plain HTTP getter.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::WAIT;

/// A test client speaking raw JSON frames.
#[derive(Debug)]
pub struct WsClient {
    /// The socket, for tests that send what the helpers do not.
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What a read returned.
#[derive(Debug)]
pub enum Read {
    /// A frame, parsed.
    Frame(Value),
    /// The connection closed, with the close code when there was one.
    Closed(Option<u16>),
}

/// A close frame's code and reason.
pub type CloseFrame = (u16, String);

impl WsClient {
    /// Connects to `url`; panics when that fails within [`WAIT`].
    pub async fn connect(url: &str) -> WsClient {
        match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url)).await {
            Ok(Ok((ws, _))) => WsClient { ws },
            Ok(Err(e)) => panic!("connect to {url} failed: {e}"),
            Err(_) => panic!("connect to {url} timed out"),
        }
    }

    /// Connects to `url` (`ws://host:port/...`) from the local address
    /// `from` (on loopback, any of 127.0.0.0/8 works on Linux: a second
    /// client host); panics when that fails within [`WAIT`].
    pub async fn connect_from(url: &str, from: std::net::IpAddr) -> WsClient {
        let connect = async {
            let authority = url
                .strip_prefix("ws://")
                .and_then(|rest| rest.split('/').next())
                .unwrap_or_else(|| panic!("not a ws:// url: {url}"));
            let server: std::net::SocketAddr = authority
                .parse()
                .unwrap_or_else(|e| panic!("not an address: {authority}: {e}"));
            let socket = match from {
                std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
                std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
            }
            .unwrap_or_else(|e| panic!("socket: {e}"));
            socket
                .bind(std::net::SocketAddr::new(from, 0))
                .unwrap_or_else(|e| panic!("bind {from}: {e}"));
            let tcp = socket
                .connect(server)
                .await
                .unwrap_or_else(|e| panic!("connect to {server} from {from}: {e}"));
            tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
                .await
                .unwrap_or_else(|e| panic!("upgrade at {url} from {from}: {e}"))
                .0
        };
        match tokio::time::timeout(WAIT, connect).await {
            Ok(ws) => WsClient { ws },
            Err(_) => panic!("connect to {url} from {from} timed out"),
        }
    }

    /// Sends a frame.
    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    /// Sends text as it is.
    pub async fn send_text(&mut self, text: &str) {
        if let Err(e) = self.ws.send(Message::Text(text.into())).await {
            panic!("send failed: {e}");
        }
    }

    /// The next frame (any type) or the close.
    pub async fn read(&mut self) -> Read {
        match self.read_full().await {
            Ok(frame) => Read::Frame(frame),
            Err(close) => Read::Closed(close.map(|(code, _)| code)),
        }
    }

    /// Reads past every frame until the connection closes; its close frame
    /// (`None` when it ended without one).
    pub async fn close_frame(&mut self) -> Option<CloseFrame> {
        loop {
            if let Err(close) = self.read_full().await {
                return close;
            }
        }
    }

    /// The next frame, or how the connection closed.
    async fn read_full(&mut self) -> Result<Value, Option<CloseFrame>> {
        loop {
            let Ok(next) = tokio::time::timeout(WAIT, self.ws.next()).await else {
                panic!("no frame within {WAIT:?}");
            };
            match next {
                Some(Ok(Message::Text(t))) => match serde_json::from_str(t.as_str()) {
                    Ok(v) => return Ok(v),
                    Err(e) => panic!("server sent bad JSON ({e}): {t}"),
                },
                Some(Ok(Message::Close(frame))) => {
                    // Sends the answer to the close frame at once, as a
                    // client that keeps running would.
                    let _ = self.ws.flush().await;
                    return Err(frame.map(|f| (u16::from(f.code), f.reason.to_string())));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    /// Reads past every frame until the connection closes; its close code.
    pub async fn closed(&mut self) -> Option<u16> {
        self.close_frame().await.map(|(code, _)| code)
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

    /// Sends `frame` and expects an error frame with `code` (heartbeats
    /// skipped); returns it.
    pub async fn expect_error(&mut self, frame: &str, code: &str) -> Value {
        self.send_text(frame).await;
        let reply = self.next().await;
        assert_eq!(reply["type"], "error", "for {frame}: {reply}");
        assert_eq!(reply["code"], code, "for {frame}: {reply}");
        reply
    }

    /// Subscribes without `since`; returns the snapshot.
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
        seq_of(&ack)
    }

    /// Publishes `{"i": 0..n}` with ids `prefix0..`, without waiting, then
    /// waits for every ack. Returns the seqs in ack order.
    pub async fn publish_many(&mut self, stream: &str, prefix: &str, n: usize) -> Vec<u64> {
        for i in 0..n {
            self.send(json!({"type": "publish", "stream": stream, "id": format!("{prefix}{i}"), "data": {"i": i}}))
                .await;
        }
        let mut seqs = Vec::with_capacity(n);
        while seqs.len() < n {
            seqs.push(seq_of(&self.next_of("ack").await));
        }
        seqs
    }

    /// Reads `history` from `from` to `to`, page after page; the messages
    /// as (seq, data).
    pub async fn history(&mut self, stream: &str, from: u64, to: u64) -> Vec<(u64, Value)> {
        let mut got = Vec::new();
        let mut from = from;
        while from <= to {
            self.send(json!({"type": "history", "stream": stream, "from": from, "to": to}))
                .await;
            let page = self.next_of("history").await;
            for m in page["messages"].as_array().into_iter().flatten() {
                got.push((seq_of(m), m["data"].clone()));
            }
            from = page["to"].as_u64().unwrap_or(to) + 1;
        }
        got
    }
}

/// The seqs of the messages in a `history` frame or a snapshot's state
/// (`{"messages": [{"seq": .., "data": ..}, ..]}`), in their order.
pub fn message_seqs(holder: &Value) -> Vec<u64> {
    holder["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(seq_of)
        .collect()
}

fn seq_of(frame: &Value) -> u64 {
    frame["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no seq in {frame}"))
}

/// A WebSocket server on a free loopback port that hands each of the first
/// `accept` connections to `serve`, in a task of its own (later ones are
/// refused: the port closes). Returns its address.
pub async fn ws_server<F, Fut>(accept: usize, serve: F) -> std::net::SocketAddr
where
    F: Fn(WebSocketStream<TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(e) => panic!("bind: {e}"),
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => panic!("local address: {e}"),
    };
    let serve = std::sync::Arc::new(serve);
    tokio::spawn(async move {
        for _ in 0..accept {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let serve = serve.clone();
            tokio::spawn(async move {
                if let Ok(ws) = tokio_tungstenite::accept_async(tcp).await {
                    serve(ws).await;
                }
            });
        }
    });
    addr
}

/// The HTTP status a WebSocket upgrade to `url` is refused with; `None`
/// when it is accepted. Panics on any other failure.
pub async fn upgrade_refusal(url: &str) -> Option<u16> {
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url)).await {
        Ok(Ok(_)) => None,
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
            Some(response.status().as_u16())
        }
        Ok(Err(e)) => panic!("upgrade to {url} failed otherwise: {e}"),
        Err(_) => panic!("upgrade to {url} timed out"),
    }
}

/// A GET over plain HTTP/1.1; returns the status and body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    http(addr, "GET", path, None).await
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`), with
/// a JSON body if any; returns the status and the body. Panics on a
/// network failure or after [`WAIT`].
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String) {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or(""));
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = match tokio::time::timeout(WAIT, exchange).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => panic!("{method} {path} on {addr}: {e}"),
        Err(_) => panic!("{method} {path} on {addr} timed out"),
    };
    let text = String::from_utf8_lossy(&response);
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
