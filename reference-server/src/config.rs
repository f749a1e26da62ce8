//! Server configuration: plain structs with documented defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::faults::FaultSpec;
use crate::log::Retention;

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
}

/// Per-connection limits. Every amount a peer controls is bounded by one.
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
    /// Largest `history` answer in payload bytes (at least one message is
    /// always sent); a page that reaches it covers less than `history_page`.
    pub history_max_bytes: usize,
    /// Publishes allowed per connection per second (burst: one second's worth).
    pub publish_rate: u32,
    /// Live frames queued per connection before new ones are dropped.
    pub live_queue: usize,
    /// Control frames queued per connection before the server stops reading
    /// that connection's requests until the client reads.
    pub control_queue: usize,
    /// Most streams the server holds open at once (server-wide): stream
    /// names come from peers, so their number is bounded too. Beyond it,
    /// requests naming a new stream get `invalid_stream`.
    pub max_streams: usize,
    /// Error frames per second after which a connection is closed as a
    /// flood (code 1008). At least `publish_rate`.
    pub max_errors_per_sec: u32,
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
    /// How often age retention runs, in milliseconds.
    pub retention_interval_ms: u64,
    /// How long shutdown waits for connections to flush and close, in
    /// milliseconds.
    pub shutdown_grace_ms: u64,
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
            retention_interval_ms: 1_000,
            shutdown_grace_ms: 5_000,
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
