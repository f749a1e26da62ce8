//! Server configuration: plain structs with documented defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::faults::FaultSpec;
use crate::log::{IdWindow, Retention};

/// Where the log lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// In memory: lost on restart (every start is a new epoch).
    Memory,
    /// One SQLite file, durable across restarts.
    Sqlite(PathBuf),
    /// Redis Streams at this URL (`redis://host:port`), shared by every
    /// server instance that names the same Redis: each instance serves any
    /// stream, and seqs are assigned atomically in Redis.
    Redis(String),
    /// Redis Streams in the Redis Cluster these nodes (URLs) belong to:
    /// as [`Storage::Redis`], with streams spread over the cluster's shards.
    RedisCluster(Vec<String>),
}

/// Limits. Every amount a peer controls is bounded by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest client frame handled; larger ones get `frame_too_large` and
    /// are skipped.
    pub max_frame_bytes: usize,
    /// Frames above this are not even read: the connection is closed with
    /// code 1009. At least `max_frame_bytes`.
    pub hard_frame_bytes: usize,
    /// Most streams one connection may subscribe to.
    pub max_subscriptions: usize,
    /// Most messages in one `history` answer.
    pub history_page: u64,
    /// Largest `history` answer in bytes, each message counted as its
    /// payload plus 32 for its entry (at least one message is always sent);
    /// a page that reaches it covers less than `history_page`.
    pub history_max_bytes: usize,
    /// Publishes allowed per connection per second (burst: one second's worth).
    pub publish_rate: u32,
    /// Live frames queued per connection before new ones are dropped.
    pub live_queue: usize,
    /// Control frames queued per connection before the server stops reading
    /// that connection's requests until the client reads.
    pub control_queue: usize,
    /// Most streams live at once, server-wide: stream names come from
    /// peers, so their number is bounded too. A stream is live while a
    /// connection subscribes to it or a publish to it is under way, and
    /// for [`ServerConfig::stream_idle_ms`] after its last use; when the
    /// limit is reached, idle streams are let go first. Beyond it, a
    /// subscribe or publish naming another stream gets `too_many_streams`.
    /// Reading (`history`, `snapshot`) never makes a stream live.
    pub max_streams: usize,
    /// Most live streams one client address (IPv6: one /64) may hold
    /// open: the streams its connections made live count against it until
    /// they are let go. Beyond it, a subscribe or publish from that address
    /// naming another stream gets `too_many_streams`. At most half of
    /// [`Limits::max_streams`] counts, whatever is set here, so that one
    /// host can never take the table from the others.
    pub max_streams_per_ip: usize,
    /// Error frames per second (any code, `rate_limited` included) after
    /// which a connection is closed as a flood (code 1008).
    pub max_errors_per_sec: u32,
    /// Most TCP connections open at once (HTTP and WebSocket); beyond it a
    /// new connection gets HTTP 503. Each one holds a file descriptor: keep
    /// it below the process's limit (`ulimit -n`).
    pub max_connections: usize,
    /// Most TCP connections open at once from one address (IPv6: one /64);
    /// beyond it a new one gets HTTP 429. Behind a reverse proxy every
    /// client has the proxy's address: raise it there.
    pub max_connections_per_ip: usize,
    /// How long a connection may take to send its HTTP request head (the
    /// WebSocket upgrade), in milliseconds; a slower one is closed.
    pub handshake_timeout_ms: u64,
}

impl Limits {
    /// The live streams one address may hold: [`Limits::max_streams_per_ip`],
    /// but never more than half of [`Limits::max_streams`] (and at least
    /// one).
    ///
    /// ```
    /// use seqsync_server::Limits;
    /// let limits = Limits { max_streams: 100, max_streams_per_ip: 80, ..Limits::default() };
    /// assert_eq!(limits.streams_per_address(), 50);
    /// ```
    pub fn streams_per_address(&self) -> usize {
        self.max_streams_per_ip.min(self.max_streams / 2).max(1)
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame_bytes: 65_536,
            hard_frame_bytes: 1 << 20,
            max_subscriptions: 1_000,
            history_page: 1_000,
            history_max_bytes: 1 << 20,
            publish_rate: 10_000,
            live_queue: 1_024,
            control_queue: 256,
            max_errors_per_sec: 1_000,
            max_streams: 100_000,
            max_streams_per_ip: 10_000,
            max_connections: 10_000,
            max_connections_per_ip: 256,
            handshake_timeout_ms: 10_000,
        }
    }
}

/// Everything [`crate::Server::start`] needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (port 0: any free port).
    pub bind: SocketAddr,
    /// The log backend.
    pub storage: Storage,
    /// Retention per stream.
    pub retention: Retention,
    /// Interval of `head` heartbeats, in milliseconds.
    pub heartbeat_ms: u64,
    /// Secret of HMAC tokens; `None`: every stream is readable and writable.
    pub token_secret: Option<String>,
    /// Faults applied to every connection (each with its own derived seed).
    pub faults: Option<FaultSpec>,
    /// Whether clients may ask for faults with `?faults=` on `/ws`.
    pub allow_client_faults: bool,
    /// Directory of static files served at `/`.
    pub static_dir: Option<PathBuf>,
    /// Limits.
    pub limits: Limits,
    /// How many latest messages a snapshot's state holds.
    pub snapshot_messages: usize,
    /// Most bytes in a snapshot's state, each message counted as its
    /// payload plus 32 for its entry: the oldest of the latest messages are
    /// left out past it (the newest one is always in).
    pub snapshot_max_bytes: usize,
    /// How long and for how many messages publish ids are remembered.
    pub id_window: IdWindow,
    /// How long a stream stays live after its last use, in milliseconds
    /// (see [`Limits::max_streams`]).
    pub stream_idle_ms: u64,
    /// How often age retention runs, in milliseconds.
    pub retention_interval_ms: u64,
    /// How long shutdown waits for connections to flush and close, in
    /// milliseconds.
    pub shutdown_grace_ms: u64,
    /// Serve `wss://` (TLS) instead of `ws://`.
    pub tls: Option<crate::tls::TlsConfig>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            storage: Storage::Sqlite(PathBuf::from("seqsync.db")),
            retention: Retention::default(),
            heartbeat_ms: 1_000,
            token_secret: None,
            faults: None,
            allow_client_faults: true,
            static_dir: None,
            limits: Limits::default(),
            snapshot_messages: 100,
            snapshot_max_bytes: 512 * 1024,
            id_window: IdWindow::default(),
            stream_idle_ms: 30_000,
            retention_interval_ms: 1_000,
            shutdown_grace_ms: 5_000,
            tls: None,
        }
    }
}

impl ServerConfig {
    /// An in-memory server on `127.0.0.1:0`: what tests use.
    pub fn for_tests() -> ServerConfig {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            storage: Storage::Memory,
            ..ServerConfig::default()
        }
    }
}
