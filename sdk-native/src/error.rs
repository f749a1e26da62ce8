//! The one error type of the native client.

/// What can go wrong for a caller of the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The configuration names no endpoint.
    #[error("no endpoint configured")]
    NoEndpoints,
    /// `Client::connect` could not reach any endpoint in time.
    #[error("could not connect to any endpoint (last: {endpoint}: {reason})")]
    ConnectFailed {
        /// The endpoint tried last.
        endpoint: String,
        /// Why that attempt failed.
        reason: String,
    },
    /// The client was closed (or its background task ended).
    #[error("the client is closed")]
    Closed,
    /// A publish got no ack within `publish_timeout_ms`. It may still have
    /// been stored: publishing again with the same id is safe.
    #[error("publish {id} was not acknowledged in time")]
    PublishTimeout {
        /// The publish's idempotency id.
        id: String,
    },
    /// The server refused a publish.
    #[error("publish rejected: {code}: {message}")]
    PublishRejected {
        /// The server's error code (`unauthorized`, `rate_limited`, ...).
        code: String,
        /// The server's explanation.
        message: String,
    },
    /// Too many publishes wait for an ack already.
    #[error("too many publishes in flight (limit {limit})")]
    TooManyPendingPublishes {
        /// The configured limit.
        limit: usize,
    },
    /// The input was invalid for the core (stream name, already subscribed, ...).
    #[error(transparent)]
    Core(#[from] seqsync_core::Error),
}
