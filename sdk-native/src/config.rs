//! Client configuration: a plain struct with defaults, plus a small builder.

use std::time::Duration;

/// How a [`Client`](crate::Client) connects and recovers.
///
/// ```
/// use seqsync::ClientConfig;
/// let config = ClientConfig::new("ws://127.0.0.1:8080/ws")
///     .endpoint("ws://127.0.0.1:8081/ws")
///     .gap_timeout(std::time::Duration::from_millis(50));
/// assert_eq!(config.endpoints.len(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// WebSocket URLs of the servers, tried in turn (failover).
    pub endpoints: Vec<String>,
    /// Access token, sent as the `token` query parameter.
    pub token: Option<String>,
    /// The sequencer's tuning (window, gap timeout, request timeouts).
    pub core: seqsync_core::Config,
    /// First wait before reconnecting; doubles up to `reconnect_max_ms`,
    /// each wait drawn uniformly below the bound (full jitter).
    pub reconnect_initial_ms: u64,
    /// Longest wait between reconnect attempts.
    pub reconnect_max_ms: u64,
    /// A connection that receives nothing (not even a heartbeat) for this
    /// long is declared dead and replaced.
    pub heartbeat_timeout_ms: u64,
    /// Longest wait for one connection attempt.
    pub connect_timeout_ms: u64,
    /// How long `Client::connect` keeps trying before giving up.
    pub initial_connect_timeout_ms: u64,
    /// Largest frame accepted from the server.
    pub max_frame_bytes: usize,
    /// How long a publish waits for its ack, across reconnects.
    pub publish_timeout_ms: u64,
    /// Most publishes waiting for an ack at once.
    pub max_pending_publishes: usize,
    /// Events buffered per subscription before the client stops reading the
    /// socket (backpressure instead of unbounded memory).
    pub subscription_buffer: usize,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            endpoints: Vec::new(),
            token: None,
            core: seqsync_core::Config::default(),
            reconnect_initial_ms: 100,
            reconnect_max_ms: 10_000,
            heartbeat_timeout_ms: 5_000,
            connect_timeout_ms: 5_000,
            initial_connect_timeout_ms: 10_000,
            max_frame_bytes: 1 << 20,
            publish_timeout_ms: 30_000,
            max_pending_publishes: 10_000,
            subscription_buffer: 4_096,
        }
    }
}

impl ClientConfig {
    /// Defaults with one endpoint.
    pub fn new(endpoint: impl Into<String>) -> ClientConfig {
        ClientConfig {
            endpoints: vec![endpoint.into()],
            ..ClientConfig::default()
        }
    }

    /// Adds a failover endpoint.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> ClientConfig {
        self.endpoints.push(endpoint.into());
        self
    }

    /// Sets the access token.
    pub fn token(mut self, token: impl Into<String>) -> ClientConfig {
        self.token = Some(token.into());
        self
    }

    /// Sets how long a hole may stay open before it is requested.
    pub fn gap_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.core.gap_timeout_ms = millis(timeout);
        self
    }

    /// Sets the heartbeat timeout.
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.heartbeat_timeout_ms = millis(timeout);
        self
    }

    /// Sets the reconnect backoff bounds.
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> ClientConfig {
        self.reconnect_initial_ms = millis(initial);
        self.reconnect_max_ms = millis(max);
        self
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
