//! The handles the application holds: [`Client`] and [`Subscription`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::marker::PhantomData;

use seqsync_core::{Seq, StreamId, StreamStats, SubscribeOptions};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::ClientConfig;
use crate::driver::{Command, Driver};
use crate::error::ClientError;
use crate::event::{ClientStats, ConnectionState, SubscriptionEvent};
use crate::mailbox::Inbox;
use crate::payload::Payload;

/// A connection to a seqsync server, kept alive in a background task.
///
/// Cloning is cheap; every clone talks to the same task. The task ends when
/// [`close`](Client::close) or [`close_now`](Client::close_now) is called,
/// or when every `Client` and [`Subscription`] is dropped.
///
/// The connection can be stopped and started again any number of times:
/// [`disconnect`](Client::disconnect) closes the socket and stops
/// reconnecting, [`reconnect`](Client::reconnect) starts again at once.
/// A client whose first connection does not come within
/// `initial_connect_timeout_ms` stops the same way
/// ([`ConnectionState::Failed`]). While stopped, subscriptions stay (made
/// meanwhile too) and resume from their positions on the next connection;
/// pending publishes wait, each on its own `publish_timeout_ms` clock, and
/// are sent again after the subscribes.
#[derive(Clone, Debug)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    state: watch::Receiver<ConnectionState>,
}

impl Client {
    /// Starts the background task and waits for the first connection.
    ///
    /// Later losses are repaired in the background by the core's `Session`:
    /// reconnect with exponential backoff and full jitter across the
    /// endpoints, resume every subscription after its last contiguous seq,
    /// fetch what is missing, resend pending publishes.
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`ClientError::NoEndpoints`]; [`ClientError::InvalidEndpoint`] for an
    /// endpoint that is not a `ws://` or `wss://` URL with a host;
    /// [`ClientError::ConnectFailed`] when no
    /// endpoint answered within `initial_connect_timeout_ms`;
    /// [`ClientError::NoRandomness`].
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let client = Client::spawn(config)?;
        client.reconnect().await?;
        Ok(client)
    }

    /// Starts the background task, which starts connecting, and returns at
    /// once. If the first connection does not come within
    /// `initial_connect_timeout_ms`, the client stops trying
    /// ([`ConnectionState::Failed`]) and stays usable:
    /// [`reconnect`](Client::reconnect) starts again. Subscribes and
    /// publishes are taken meanwhile and go out on connect.
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// As [`connect`](Client::connect), except `ConnectFailed`.
    pub fn spawn(config: ClientConfig) -> Result<Client, ClientError> {
        if config.endpoints.is_empty() {
            return Err(ClientError::NoEndpoints);
        }
        for endpoint in &config.endpoints {
            check_endpoint(endpoint)?;
        }
        let (commands, receiver) = mpsc::unbounded_channel();
        let (state_tx, state) = watch::channel(ConnectionState::Closed);
        let driver = Driver::new(config, receiver, state_tx)?;
        let span = tracing::info_span!("seqsync_client");
        tokio::spawn(tracing::Instrument::instrument(driver.run(), span));
        Ok(Client { commands, state })
    }

    /// Connects again after [`disconnect`](Client::disconnect) or a
    /// give-up: attempts start at once, with the backoff reset, and the
    /// first connection has `initial_connect_timeout_ms` again. While the
    /// client waits out a backoff, the next attempt starts now; while it
    /// is connecting or connected, nothing changes.
    ///
    /// The attempts start when this is called; the future says how it
    /// ended, and may be dropped.
    ///
    /// # Errors
    /// [`ClientError::ConnectFailed`] when the client gives up again (or
    /// `disconnect` is called first); [`ClientError::Closed`].
    pub fn reconnect(&self) -> impl Future<Output = Result<(), ClientError>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let sent = self.send(Command::Connect { reply });
        async move {
            sent?;
            answer.await.map_err(|_| ClientError::Closed)?
        }
    }

    /// Closes the socket (or abandons the attempt under way) and stops
    /// reconnecting until [`reconnect`](Client::reconnect); the state
    /// becomes [`ConnectionState::Stopped`]. Subscriptions stay;
    /// pending publishes wait, each until its timeout.
    ///
    /// # Errors
    /// [`ClientError::Closed`].
    pub fn disconnect(&self) -> Result<(), ClientError> {
        self.send(Command::Disconnect)
    }

    /// Subscribes to `stream`: a snapshot first, then every message in order,
    /// each payload as the raw [`Payload`] it came as (decode it with
    /// [`Payload::parse`] when needed). A stream subscribed again after its
    /// `Subscription` was dropped starts from a snapshot too, unless the
    /// configuration has a position store: then, as after a restart, it
    /// resumes after the last position saved for it.
    ///
    /// # Errors
    /// [`ClientError::Core`] for an invalid name or a stream already
    /// subscribed by this client; [`ClientError::Closed`].
    pub async fn subscribe(&self, stream: &str) -> Result<Subscription, ClientError> {
        self.subscribe_with(stream, SubscribeOptions::default())
            .await
    }

    /// Subscribes to `stream` with every message decoded into `T`. A
    /// message that does not decode comes as
    /// [`SubscriptionEvent::Undecodable`] with its seq and raw payload; the
    /// stream goes on after it.
    ///
    /// ```no_run
    /// # async fn demo(client: seqsync::Client) -> Result<(), seqsync::ClientError> {
    /// use futures_util::StreamExt;
    /// use seqsync::SubscriptionEvent;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Chat { from: String, text: String }
    ///
    /// let mut room = client.subscribe_as::<Chat>("chat:lobby").await?;
    /// while let Some(event) = room.next().await {
    ///     match event {
    ///         SubscriptionEvent::Message { seq, data, .. } => println!("{seq} <{}> {}", data.from, data.text),
    ///         SubscriptionEvent::Undecodable { seq, error, .. } => eprintln!("{seq}: {error}"),
    ///         _ => {}
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`subscribe`](Client::subscribe).
    pub async fn subscribe_as<T: DeserializeOwned>(
        &self,
        stream: &str,
    ) -> Result<Subscription<T>, ClientError> {
        let raw = self.subscribe(stream).await?;
        Ok(raw.typed())
    }

    /// Subscribes with explicit options: resume point, delivery mode.
    ///
    /// # Errors
    /// As [`subscribe`](Client::subscribe).
    pub async fn subscribe_with(
        &self,
        stream: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Subscribe {
            stream: stream.to_string(),
            options,
            reply,
        })?;
        let (id, events) = answer.await.map_err(|_| ClientError::Closed)??;
        Ok(Subscription {
            stream: stream.to_string(),
            id,
            events,
            scratch: Vec::new(),
            commands: self.commands.clone(),
            decode: decode_raw,
            owns: true,
            _type: PhantomData,
        })
    }

    /// Appends `data` to `stream` and returns the seq the server assigned.
    ///
    /// The publish carries a random idempotency id (a UUID) and is sent
    /// again with the same id after a reconnect and after a `rate_limited`
    /// or `internal` refusal, so it is stored exactly once.
    ///
    /// `data` is anything serde can write as JSON (a `serde_json::Value`, a
    /// struct of the application's...); it is encoded here, before it
    /// leaves the caller.
    ///
    /// Dropping the returned future does not cancel the publish: it is sent
    /// (and retried) all the same, and `close()` waits for it.
    ///
    /// # Errors
    /// [`ClientError::PublishRejected`], [`ClientError::PublishTimeout`],
    /// [`ClientError::PublishTooLarge`] (over `max_publish_bytes` or the
    /// server's limit, refused before sending or by the server, never
    /// resent), [`ClientError::TooManyPendingPublishes`],
    /// [`ClientError::InvalidData`], [`ClientError::Core`] (invalid stream
    /// name), [`ClientError::Closed`].
    pub async fn publish(&self, stream: &str, data: impl Serialize) -> Result<Seq, ClientError> {
        let data = serde_json::to_string(&data).map_err(|e| ClientError::InvalidData {
            reason: e.to_string(),
        })?;
        let (reply, answer) = oneshot::channel();
        self.send(Command::Publish {
            stream: stream.to_string(),
            data,
            reply,
        })?;
        answer.await.map_err(|_| ClientError::Closed)?
    }

    /// Counters and position of a subscribed stream.
    pub async fn stream_stats(&self, stream: &str) -> Option<StreamStats> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::StreamStats {
            stream: stream.to_string(),
            reply,
        })
        .ok()?;
        answer.await.ok().flatten()
    }

    /// Client-wide counters (connections, frames, recovery traffic).
    ///
    /// # Errors
    /// [`ClientError::Closed`].
    pub async fn stats(&self) -> Result<ClientStats, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::ClientStats { reply })?;
        answer.await.map_err(|_| ClientError::Closed)
    }

    /// Watches the connection: connecting, connected, disconnected,
    /// stopped, failed, closed.
    pub fn connection_state(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }

    /// Closes cleanly: ends every subscription, then waits for publishes in
    /// flight to be acknowledged (each up to its timeout, reconnecting if the
    /// connection is down meanwhile), then closes the socket. Dropping every
    /// handle instead closes at once and fails what is pending.
    ///
    /// With a position store, the position saved is that of the last event
    /// the client handed to a subscription's queue: events still unread
    /// there when the subscription ends are not delivered again by a later
    /// resume. Read them first (`next_batch`) if they matter.
    ///
    /// A client that is stopped ([`disconnect`](Client::disconnect), or it
    /// gave up) does not connect again for its pending publishes: it closes
    /// at once, as [`close_now`](Client::close_now).
    pub async fn close(self) {
        let (reply, done) = oneshot::channel();
        if self.send(Command::Close { reply }).is_ok() {
            let _ = done.await;
        }
    }

    /// Closes at once: the socket is closed and every pending publish
    /// fails with [`ClientError::PublishUnconfirmed`] (it may have been
    /// stored: it may have been sent). Subscriptions end.
    pub async fn close_now(self) {
        let (reply, done) = oneshot::channel();
        if self.send(Command::Abort { reply }).is_ok() {
            let _ = done.await;
        }
    }

    fn send(&self, command: Command) -> Result<(), ClientError> {
        self.commands.send(command).map_err(|_| ClientError::Closed)
    }
}

/// The events of one subscribed stream: a [`futures_core::Stream`] of
/// [`SubscriptionEvent<T>`] (`T` = [`Payload`] unless made with
/// [`Client::subscribe_as`]). Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription<T = Payload> {
    stream: String,
    id: StreamId,
    events: Inbox,
    /// Reused by `next_batch`.
    scratch: Vec<SubscriptionEvent>,
    commands: mpsc::UnboundedSender<Command>,
    decode: fn(SubscriptionEvent) -> SubscriptionEvent<T>,
    /// False once the subscription moved to a typed handle.
    owns: bool,
    _type: PhantomData<fn() -> T>,
}

fn decode_raw(event: SubscriptionEvent) -> SubscriptionEvent {
    event
}

impl Subscription {
    /// The same subscription with every message decoded into `T`.
    pub fn typed<T: DeserializeOwned>(mut self) -> Subscription<T> {
        // The raw handle goes without unsubscribing: the typed one holds
        // the subscription now.
        self.owns = false;
        Subscription {
            stream: std::mem::take(&mut self.stream),
            id: self.id,
            events: self.events.take(),
            scratch: Vec::new(),
            commands: self.commands.clone(),
            decode: SubscriptionEvent::decode::<T>,
            owns: true,
            _type: PhantomData,
        }
    }
}

impl<T> Subscription<T> {
    /// The stream's name.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The next event; `None` once the client is closed.
    pub async fn next_event(&mut self) -> Option<SubscriptionEvent<T>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<SubscriptionEvent<T>>> {
        let decode = self.decode;
        self.events.poll_next(cx).map(|event| event.map(decode))
    }

    /// Waits for at least one event, then moves every event already waiting
    /// (up to `limit`; a `limit` of 0 counts as 1) into `batch`, in order. Returns how many were added; 0
    /// once the client is closed. The high-throughput way to read: one
    /// wake-up carries many messages.
    ///
    /// ```no_run
    /// # async fn demo(mut room: seqsync::Subscription) {
    /// let mut batch = Vec::with_capacity(256);
    /// while room.next_batch(&mut batch, 256).await > 0 {
    ///     for event in batch.drain(..) {
    ///         println!("{event:?}");
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn next_batch(
        &mut self,
        batch: &mut Vec<SubscriptionEvent<T>>,
        limit: usize,
    ) -> usize {
        let mut raw = std::mem::take(&mut self.scratch);
        let n = self.events.next_batch(&mut raw, limit).await;
        batch.extend(raw.drain(..).map(self.decode));
        self.scratch = raw;
        n
    }
}

impl<T> futures_core::Stream for Subscription<T> {
    type Item = SubscriptionEvent<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_event(cx)
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        if self.owns {
            let _ = self.commands.send(Command::Unsubscribe { id: self.id });
        }
    }
}

/// Whether `endpoint` is a WebSocket URL the client can dial: `ws://` or
/// `wss://`, parseable, with a host.
fn check_endpoint(endpoint: &str) -> Result<(), ClientError> {
    let invalid = |reason: &str| ClientError::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    let uri: tokio_tungstenite::tungstenite::http::Uri =
        endpoint.parse().map_err(|_| invalid("not a URL"))?;
    match uri.scheme_str() {
        Some("ws" | "wss") => {}
        _ => return Err(invalid("the scheme must be ws or wss")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    Ok(())
}

#[cfg(test)]
mod endpoint_tests {
    use super::*;

    #[test]
    fn only_websocket_urls_with_a_host_are_endpoints() {
        for good in [
            "ws://127.0.0.1:8080/ws",
            "wss://example.org/ws?token=a",
            "ws://[::1]:9/",
        ] {
            assert_eq!(check_endpoint(good), Ok(()), "{good}");
        }
        for bad in [
            "not a url",
            "ws://",
            "http://example.org/ws",
            "example.org/ws",
            "",
        ] {
            assert!(
                matches!(
                    check_endpoint(bad),
                    Err(ClientError::InvalidEndpoint { .. })
                ),
                "{bad}"
            );
        }
    }
}
