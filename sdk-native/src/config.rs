//! Client configuration: the core's [`SessionConfig`] (the whole connection
//! policy, with its defaults) plus what only this client has.

use std::sync::Arc;
use std::time::Duration;

use seqsync_core::SessionConfig;

use crate::adapter::{Adapter, Described, Description};
use crate::error::ClientError;
use crate::positions::PositionStore;
use crate::tls::{TlsOptions, TokenProvider, TokenSource};

/// How a [`Client`](crate::Client) connects and recovers.
///
/// The connection policy's settings are the fields of
/// [`SessionConfig`] (endpoints, token, backoff, timeouts, publish limits,
/// the sequencer's `core` tuning), reachable directly on a `ClientConfig`:
///
/// ```
/// use seqsync::ClientConfig;
/// let mut config = ClientConfig::new("ws://127.0.0.1:8080/ws")
///     .endpoint("ws://127.0.0.1:8081/ws")
///     .gap_timeout(std::time::Duration::from_millis(50));
/// config.publish_timeout_ms = 5_000;
/// assert_eq!(config.endpoints.len(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The connection policy, carried out by the core's `Session`.
    pub session: SessionConfig,
    /// Events buffered per subscription before the client stops reading the
    /// socket (backpressure instead of unbounded memory).
    pub subscription_buffer: usize,
    /// Where resume positions are kept across runs: loaded at connect,
    /// saved as they change (every `persist_interval_ms` while messages
    /// flow, and on unsubscribe and close). `None`: every run starts from
    /// snapshots, unless a subscription names its own resume point.
    pub position_store: Option<Arc<dyn PositionStore>>,
    /// TLS for `wss://` endpoints.
    pub tls: TlsOptions,
    /// Fetches a fresh token before every connection attempt; when set, it
    /// is used instead of `token`.
    pub token_provider: Option<TokenSource>,
    /// A server that does not speak the seqsync protocol, and how to use
    /// it (docs/protocol.md section 12). `None`: a seqsync server.
    pub adapter: Option<AdapterSource>,
    /// How long an HTTP request to a foreign server may take, answer
    /// included, before it counts as failed.
    pub fetch_timeout: Duration,
    /// The largest HTTP answer read from a foreign server; a larger one
    /// counts as failed.
    pub max_answer_bytes: usize,
}

/// A shared [`Adapter`].
#[derive(Clone)]
pub struct AdapterSource(pub(crate) Arc<dyn Adapter>);

impl std::fmt::Debug for AdapterSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdapterSource(..)")
    }
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            session: SessionConfig {
                persist_interval_ms: 1_000,
                ..SessionConfig::default()
            },
            subscription_buffer: 4_096,
            position_store: None,
            tls: TlsOptions::default(),
            token_provider: None,
            adapter: None,
            fetch_timeout: Duration::from_secs(10),
            max_answer_bytes: 32 << 20,
        }
    }
}

impl std::ops::Deref for ClientConfig {
    type Target = SessionConfig;
    fn deref(&self) -> &SessionConfig {
        &self.session
    }
}

impl std::ops::DerefMut for ClientConfig {
    fn deref_mut(&mut self) -> &mut SessionConfig {
        &mut self.session
    }
}

impl ClientConfig {
    /// Defaults with one endpoint.
    pub fn new(endpoint: impl Into<String>) -> ClientConfig {
        let mut config = ClientConfig::default();
        config.session.endpoints.push(endpoint.into());
        config
    }

    /// Defaults with these endpoints, tried in turn.
    pub fn with_endpoints<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> ClientConfig {
        let mut config = ClientConfig::default();
        config.session.endpoints = endpoints.into_iter().map(Into::into).collect();
        config
    }

    /// Defaults for a server that does not speak the seqsync protocol,
    /// described by `description`, at `endpoint` (its WebSocket URL).
    ///
    /// ```
    /// use seqsync::ClientConfig;
    /// let config = ClientConfig::foreign("ws://127.0.0.1:9000/ws", serde_json::from_str(r#"{
    ///   "message": {"stream": {"path": "room"}, "seq": "sequence_id"},
    ///   "subscribe": "{\"action\":\"join\",\"room\":\"{stream}\"}",
    ///   "history": {"url": "http://127.0.0.1:9000/rooms/{stream}/messages?since={since}", "messages": "messages"}
    /// }"#)?)?;
    /// assert!(config.adapter.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ClientError::InvalidDescription`] when the description misses
    /// something it needs.
    pub fn foreign(
        endpoint: impl Into<String>,
        description: Description,
    ) -> Result<ClientConfig, ClientError> {
        Ok(ClientConfig::new(endpoint).adapter(Described::new(description)?))
    }

    /// Uses `adapter` for a server that does not speak the seqsync
    /// protocol.
    pub fn adapter(mut self, adapter: impl Adapter) -> ClientConfig {
        self.adapter = Some(AdapterSource(Arc::new(adapter)));
        self
    }

    /// Adds a failover endpoint.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> ClientConfig {
        self.endpoints.push(endpoint.into());
        self
    }

    /// Sets the access token, sent on every connection attempt as it is. A
    /// token that expires makes every later attempt fail (HTTP 401, shown in
    /// the `Disconnected` state's reason) until the client gives up or is
    /// closed: for tokens that expire, use
    /// [`token_provider`](Self::token_provider).
    pub fn token(mut self, token: impl Into<String>) -> ClientConfig {
        self.session.token = Some(token.into());
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

    /// Fetches the token before every connection attempt from `provider`
    /// (tokens expire: a reconnect must not reuse a stale one; a server
    /// closes a connection whose token expired, and the next attempt gets a
    /// fresh one).
    ///
    /// ```
    /// use seqsync::ClientConfig;
    /// let config = ClientConfig::new("wss://example.net/ws")
    ///     .token_provider(|| async { Ok::<_, std::io::Error>("eyJyZWFk...".to_string()) });
    /// # let _ = config;
    /// ```
    pub fn token_provider(mut self, provider: impl TokenProvider) -> ClientConfig {
        self.token_provider = Some(TokenSource(Arc::new(provider)));
        self
    }

    /// Also trusts `certificate` (DER) as a root for `wss://` servers: a
    /// private CA, or a self-signed server's own certificate. rustls refuses
    /// a server certificate marked as a CA (`CA:TRUE`, as `openssl req -x509`
    /// makes by default): give a self-signed server an end-entity
    /// certificate, or sign its certificate with a private CA and trust that.
    pub fn tls_root_certificate(
        mut self,
        certificate: rustls::pki_types::CertificateDer<'static>,
    ) -> ClientConfig {
        self.tls.extra_roots.push(certificate);
        self
    }

    /// Also trusts the platform's root certificates (feature `native-roots`).
    /// Without that feature, `Client::connect` fails with
    /// [`ClientError::Tls`](crate::ClientError::Tls), whatever the endpoints.
    pub fn tls_native_roots(mut self) -> ClientConfig {
        self.tls.native_roots = true;
        self
    }

    /// Uses `config` for every `wss://` connection, as it is.
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> ClientConfig {
        self.tls.config = Some(config);
        self
    }

    /// Keeps resume positions in `store` (for example a
    /// [`FilePositionStore`](crate::FilePositionStore)).
    pub fn position_store(mut self, store: impl PositionStore) -> ClientConfig {
        self.position_store = Some(Arc::new(store));
        self
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
