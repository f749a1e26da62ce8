//! The one error type of the native client.

use seqsync_core::LimitSide;
use seqsync_core::protocol::ErrorCode;

/// What can go wrong for a caller of the client, and when.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// `Client::connect` with a configuration that names no endpoint.
    #[error("no endpoint configured")]
    NoEndpoints,
    /// `Client::connect` with an endpoint that is not a `ws://` or `wss://`
    /// URL with a host.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `Client::connect` or `Client::reconnect`: no endpoint could be
    /// reached within `initial_connect_timeout_ms` (the attempts went round
    /// every endpoint with backoff meanwhile), or `disconnect()` was called
    /// before a connection opened. The client stays usable:
    /// `Client::reconnect` tries again.
    #[error("could not connect to any endpoint (last: {endpoint}: {reason})")]
    ConnectFailed {
        /// The endpoint tried last.
        endpoint: String,
        /// Why that attempt failed.
        reason: String,
    },
    /// `Client::connect`: the TLS settings cannot be used (a root
    /// certificate rustls refuses, platform roots without the
    /// `native-roots` feature). A server whose certificate is not trusted
    /// is not this error: that attempt fails like any connection failure
    /// (retried with backoff; `ConnectFailed` if it never succeeds).
    #[error("TLS settings: {reason}")]
    Tls {
        /// What was wrong.
        reason: String,
    },
    /// `Client::connect`: the operating system could not provide the random
    /// seed that publish ids are drawn from.
    #[error("no randomness available: {reason}")]
    NoRandomness {
        /// What the platform said.
        reason: String,
    },
    /// Any call after `close()` (or after the background task ended); a
    /// publish still pending when the background task ended without
    /// saying more.
    #[error("the client is closed")]
    Closed,
    /// `publish`: no ack within `publish_timeout_ms`, across reconnects and
    /// retries. It may still have been stored: the server did not say.
    #[error("publish {id} was not acknowledged in time")]
    PublishTimeout {
        /// The publish's idempotency id (as sent).
        id: String,
    },
    /// `publish`: the client was closed at once (`Client::close_now`, or
    /// `close()` while stopped) before the ack came. The message may have
    /// been stored: it may have been sent.
    #[error("publish {id} was not confirmed before the client closed: it may have been stored")]
    PublishUnconfirmed {
        /// The publish's idempotency id (as sent).
        id: String,
    },
    /// `publish`: the server refused it with a code a retry cannot fix
    /// (`unauthorized`, `invalid_stream`, `malformed_frame`, ...).
    /// `rate_limited` and `internal` never end here: those are sent again
    /// with the same id until the ack or the timeout.
    #[error("publish rejected: {code}: {message}")]
    PublishRejected {
        /// The server's error code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// A server description that misses something it needs.
    #[error("invalid server description: {reason}")]
    InvalidDescription {
        /// What is missing.
        reason: String,
    },
    /// `publish` through a foreign server: its publish request failed or
    /// was answered with an error status (`429` and `503` are retried
    /// instead). It may have been stored if the request reached the server.
    #[error("publish failed: {reason}")]
    PublishFailed {
        /// Why, in words.
        reason: String,
        /// The HTTP status, when there was one.
        status: Option<u16>,
    },
    /// `publish`: `max_pending_publishes` publishes wait for an ack already.
    #[error("too many publishes in flight (limit {limit})")]
    TooManyPendingPublishes {
        /// The configured limit.
        limit: usize,
    },
    /// `publish`: the frame is over a size limit, and is never sent (again).
    /// Refused before sending when it is over the client's
    /// `max_publish_bytes` or the frame size limit the server announced
    /// (`limit` is that limit, `side` says whose); or refused by the server
    /// after sending (`frame_too_large`, or the connection closed with
    /// 1009 after it): `side` is then the server, and `limit` its announced
    /// limit when it announced one. Nothing was stored.
    #[error("publish of {len} bytes is over the {side} limit{}", limit_text(*limit))]
    PublishTooLarge {
        /// Size of the publish frame, in bytes.
        len: usize,
        /// The limit it is over, when known.
        limit: Option<usize>,
        /// Which side set the limit.
        side: LimitSide,
    },
    /// `publish`: the payload cannot be written as JSON.
    #[error("payload cannot be encoded as JSON: {reason}")]
    InvalidData {
        /// What the encoder said.
        reason: String,
    },
    /// Input the core refused: an invalid stream name, a stream already
    /// subscribed by this client, too many streams.
    #[error(transparent)]
    Core(seqsync_core::Error),
}

impl From<seqsync_core::Error> for ClientError {
    fn from(error: seqsync_core::Error) -> ClientError {
        match error {
            seqsync_core::Error::Closed => ClientError::Closed,
            seqsync_core::Error::NoEndpoints => ClientError::NoEndpoints,
            seqsync_core::Error::TooManyPendingPublishes { limit } => {
                ClientError::TooManyPendingPublishes { limit }
            }
            seqsync_core::Error::PublishTooLarge { len, max, side } => {
                ClientError::PublishTooLarge {
                    len,
                    limit: Some(max),
                    side,
                }
            }
            other => ClientError::Core(other),
        }
    }
}

/// The end of a [`ClientError::PublishTooLarge`] message: the limit, when
/// known.
fn limit_text(limit: Option<usize>) -> String {
    limit.map_or_else(String::new, |limit| format!(" of {limit} bytes"))
}
