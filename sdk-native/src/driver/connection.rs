//! The socket: dialing an attempt (TLS, a fresh token), writing the
//! session's frames, closing, and telling the session when it ended.

use super::*;

/// The open socket, split.
pub(super) struct Open {
    pub(super) conn: ConnId,
    pub(super) sink: SplitSink<Socket, Message>,
    pub(super) stream: SplitStream<Socket>,
}

/// What a connection attempt needs besides its URL.
pub(super) struct Dialer {
    pub(super) tls: Arc<rustls::ClientConfig>,
    pub(super) tokens: Option<TokenSource>,
    pub(super) max_frame_bytes: usize,
}

impl Dialer {
    /// Opens a WebSocket to `endpoint`: to `url` (the session's, with the
    /// configured token), or with a token fetched now when there is a
    /// provider. A failure says why in words.
    pub(super) async fn dial(
        self: Arc<Self>,
        endpoint: String,
        url: String,
    ) -> Result<Socket, String> {
        let url = match &self.tokens {
            Some(tokens) => {
                let token = tokens
                    .0
                    .token()
                    .await
                    .map_err(|e| format!("no token: {e}"))?;
                encode::connect_url(&endpoint, Some(&token))
            }
            None => url,
        };
        // The socket refuses frames above the limit before buffering them.
        let limits = WebSocketConfig::default()
            .max_message_size(Some(self.max_frame_bytes))
            .max_frame_size(Some(self.max_frame_bytes));
        let connector = Connector::Rustls(self.tls.clone());
        match tokio_tungstenite::connect_async_tls_with_config(
            url,
            Some(limits),
            true,
            Some(connector),
        )
        .await
        {
            Ok((socket, _)) => Ok(socket),
            Err(error) => Err(error.to_string()),
        }
    }
}

pub(super) async fn close(sink: &mut SplitSink<Socket, Message>, code: u16, reason: &'static str) {
    let frame = tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: code.into(),
        reason: reason.into(),
    };
    // Best effort: a dead peer does not get to hold the task.
    let _ = timeout(
        Duration::from_millis(500),
        sink.send(Message::Close(Some(frame))),
    )
    .await;
}

pub(super) async fn next_frame(
    stream: Option<&mut SplitStream<Socket>>,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match stream {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

pub(super) async fn attempt(
    connecting: Option<&mut (ConnId, Connecting)>,
) -> (ConnId, Result<Socket, String>) {
    match connecting {
        Some((conn, future)) => (*conn, future.await),
        None => std::future::pending().await,
    }
}

impl Driver {
    /// Writes the outbox to the open socket; false when that ended the
    /// connection. A write that fails, or blocks longer than the heartbeat
    /// timeout, ends it.
    pub(super) async fn flush(&mut self) -> bool {
        if self.outbox.is_empty() {
            return true;
        }
        let frames = std::mem::take(&mut self.outbox);
        let limit = Duration::from_millis(self.session.config().heartbeat_timeout_ms.max(1));
        let Some(open) = self.open.as_mut() else {
            return true;
        };
        let send = async {
            for text in frames {
                open.sink.feed(Message::text(text)).await?;
            }
            open.sink.flush().await
        };
        let failure = match timeout(limit, send).await {
            Ok(Ok(())) => return true,
            Ok(Err(error)) => error.to_string(),
            Err(_) => "send blocked longer than the heartbeat timeout".to_string(),
        };
        let conn = open.conn;
        self.open = None;
        let now = self.now();
        self.closed(now, conn, None, &failure);
        false
    }

    /// Tells the session that the socket or attempt `conn` ended, with the
    /// close code the server sent, if any.
    pub(super) fn closed(&mut self, now: Millis, conn: ConnId, code: Option<u16>, reason: &str) {
        let _ = self
            .session
            .handle_input(now, Input::Closed { conn, code, reason });
    }
}
