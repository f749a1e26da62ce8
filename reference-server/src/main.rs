//! `seqsync-server`: the reference server as a command.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use seqsync_server::auth::{self, Claims};
use seqsync_server::faults::FaultSpec;
use seqsync_server::{IdWindow, Limits, Retention, Server, ServerConfig, Storage, TlsConfig};

/// Reference server for seqsync: exact sequenced streams over WebSocket.
///
/// Clients connect to ws://BIND/ws (optional query parameters: token=..., faults=...).
/// Also served: /healthz, /metrics (Prometheus text) and the static directory at /.
#[derive(Debug, Parser)]
#[command(name = "seqsync-server", version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "SEQSYNC_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,

    /// SQLite file holding the log (created when missing).
    #[arg(long, env = "SEQSYNC_DB", default_value = "./seqsync.db")]
    db: PathBuf,

    /// Keep the log in memory instead of SQLite (lost on exit).
    #[arg(long, env = "SEQSYNC_MEMORY", conflicts_with_all = ["redis", "redis_cluster"])]
    memory: bool,

    /// Keep the log in Redis Streams at this URL (e.g. redis://127.0.0.1:6379) instead of
    /// SQLite: every server instance started with the same Redis serves the same streams.
    #[arg(long, env = "SEQSYNC_REDIS", conflicts_with = "redis_cluster")]
    redis: Option<String>,

    /// Keep the log in a Redis Cluster: the URLs of one or more of its nodes, comma separated
    /// (e.g. redis://10.0.0.1:6379,redis://10.0.0.2:6379).
    #[arg(long, env = "SEQSYNC_REDIS_CLUSTER", value_delimiter = ',')]
    redis_cluster: Vec<String>,

    /// Keep at most this many latest messages per stream.
    #[arg(long, env = "SEQSYNC_RETENTION_COUNT")]
    retention_count: Option<u64>,

    /// Remove messages older than this many seconds.
    #[arg(long, env = "SEQSYNC_RETENTION_AGE_SECS")]
    retention_age_secs: Option<u64>,

    /// Interval of `head` heartbeats, in milliseconds.
    #[arg(long, env = "SEQSYNC_HEARTBEAT_MS", default_value_t = 1000)]
    heartbeat_ms: u64,

    /// Secret for HMAC-SHA256 tokens. When set, clients pass `?token=` on /ws and may
    /// only use the streams their token names (others get `unauthorized`).
    #[arg(
        long,
        env = "SEQSYNC_TOKEN_SECRET",
        hide_env_values = true,
        global = true
    )]
    token_secret: Option<String>,

    /// Fault injection for every connection, e.g.
    /// `seed=42,drop=0.05,dup=0.05,reorder=0.2,window=10,delay_ms=0..20,cut_every_frames=5000,cut_every_ms=2000`.
    /// Applies to live msg frames only (cuts end the connection).
    #[arg(long, env = "SEQSYNC_FAULTS")]
    faults: Option<FaultSpec>,

    /// Refuse `?faults=` on /ws (clients may otherwise ask for faults on their own connection).
    #[arg(long, env = "SEQSYNC_NO_CLIENT_FAULTS")]
    no_client_faults: bool,

    /// Serve wss:// with this certificate chain (PEM; the server's first).
    #[arg(long, env = "SEQSYNC_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "SEQSYNC_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Directory served at / (default: examples/chat-web when it exists).
    #[arg(long, env = "SEQSYNC_STATIC_DIR")]
    static_dir: Option<PathBuf>,

    /// Largest client frame handled, in bytes; larger ones get `frame_too_large`.
    #[arg(long, env = "SEQSYNC_MAX_FRAME_BYTES", default_value_t = 65_536)]
    max_frame_bytes: usize,

    /// Frames above this many bytes close the connection (code 1009).
    #[arg(long, env = "SEQSYNC_HARD_FRAME_BYTES", default_value_t = 1 << 20)]
    hard_frame_bytes: usize,

    /// Most subscriptions per connection.
    #[arg(long, env = "SEQSYNC_MAX_SUBSCRIPTIONS", default_value_t = 1000)]
    max_subscriptions: usize,

    /// Most messages per history answer.
    #[arg(long, env = "SEQSYNC_HISTORY_PAGE", default_value_t = 1000)]
    history_page: u64,

    /// Largest history answer in bytes: each message's payload plus 32 for its entry (a page holds at least one message).
    #[arg(long, env = "SEQSYNC_HISTORY_MAX_BYTES", default_value_t = 1 << 20)]
    history_max_bytes: usize,

    /// Publishes allowed per connection per second.
    #[arg(long, env = "SEQSYNC_PUBLISH_RATE", default_value_t = 10_000)]
    publish_rate: u32,

    /// Live frames queued per connection before new ones are dropped for that reader.
    #[arg(long, env = "SEQSYNC_LIVE_QUEUE", default_value_t = 1024)]
    live_queue: usize,

    /// Most streams live at once, server-wide: subscribed, being published to, or used in the
    /// last --stream-idle-ms (idle ones are let go first; beyond it a new stream gets
    /// `too_many_streams`).
    #[arg(long, env = "SEQSYNC_MAX_STREAMS", default_value_t = 100_000)]
    max_streams: usize,

    /// Most live streams the connections of one address (IPv6: one /64) may hold open; beyond
    /// it that address's new streams get `too_many_streams`. At most half of --max-streams
    /// counts, so that other hosts always find room.
    #[arg(long, env = "SEQSYNC_MAX_STREAMS_PER_IP", default_value_t = 10_000)]
    max_streams_per_ip: usize,

    /// How long a stream nobody subscribes to stays live after its last use, in milliseconds.
    #[arg(long, env = "SEQSYNC_STREAM_IDLE_MS", default_value_t = 30_000)]
    stream_idle_ms: u64,

    /// Error frames per second after which a connection is closed as a flood (code 1008).
    #[arg(long, env = "SEQSYNC_MAX_ERRORS_PER_SEC", default_value_t = 1_000)]
    max_errors_per_sec: u32,

    /// Most TCP connections at once (beyond: HTTP 503). Keep it below `ulimit -n`.
    #[arg(long, env = "SEQSYNC_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,

    /// Most TCP connections at once from one address, IPv6 per /64 (beyond: HTTP 429). Behind a
    /// reverse proxy every client has the proxy's address: raise it there.
    #[arg(long, env = "SEQSYNC_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    max_connections_per_ip: usize,

    /// How long a client may take to send its HTTP upgrade request, in milliseconds.
    #[arg(long, env = "SEQSYNC_HANDSHAKE_TIMEOUT_MS", default_value_t = 10_000)]
    handshake_timeout_ms: u64,

    /// How many latest messages a snapshot holds (K).
    #[arg(long, env = "SEQSYNC_SNAPSHOT_MESSAGES", default_value_t = 100)]
    snapshot_messages: usize,

    /// Most bytes in a snapshot: each message's payload plus 32 for its entry (older messages of the K are left out past it).
    #[arg(long, env = "SEQSYNC_SNAPSHOT_MAX_BYTES", default_value_t = 512 * 1024)]
    snapshot_max_bytes: usize,

    /// How long a publish id is remembered, in seconds: a retry within it gets the first seq.
    #[arg(long, env = "SEQSYNC_ID_TTL_SECS", default_value_t = 3_600)]
    id_ttl_secs: u64,

    /// For how many of a stream's latest messages publish ids are remembered.
    #[arg(long, env = "SEQSYNC_ID_WINDOW", default_value_t = 100_000)]
    id_window: u64,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a token signed with --token-secret.
    Token {
        /// Stream patterns the token may read (`name`, `prefix*` or `*`); repeatable.
        #[arg(long)]
        read: Vec<String>,
        /// Stream patterns the token may publish to; repeatable.
        #[arg(long)]
        write: Vec<String>,
        /// Validity in seconds from now (default: no expiry).
        #[arg(long)]
        ttl_secs: Option<u64>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Token {
        read,
        write,
        ttl_secs,
    }) = &cli.command
    {
        let Some(secret) = &cli.token_secret else {
            eprintln!("error: `token` needs --token-secret (or SEQSYNC_TOKEN_SECRET)");
            return std::process::ExitCode::from(2);
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = Claims {
            read: read.clone(),
            write: write.clone(),
            exp: ttl_secs.map(|t| now + t),
        };
        println!("{}", auth::sign(secret.as_bytes(), &claims));
        return std::process::ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(cli: Cli) -> Result<(), seqsync_server::ServerError> {
    let static_dir = cli.static_dir.clone().or_else(|| {
        let default = PathBuf::from("examples/chat-web");
        default.is_dir().then_some(default)
    });
    let config = ServerConfig {
        bind: cli.bind,
        storage: match (&cli.redis, cli.redis_cluster.is_empty(), cli.memory) {
            (Some(url), _, _) => Storage::Redis(url.clone()),
            (None, false, _) => Storage::RedisCluster(cli.redis_cluster.clone()),
            (None, true, true) => Storage::Memory,
            (None, true, false) => Storage::Sqlite(cli.db.clone()),
        },
        retention: Retention {
            max_count: cli.retention_count,
            max_age_ms: cli.retention_age_secs.map(|s| s.saturating_mul(1000)),
        },
        heartbeat_ms: cli.heartbeat_ms,
        token_secret: cli.token_secret.clone(),
        faults: cli.faults.clone(),
        allow_client_faults: !cli.no_client_faults,
        static_dir,
        limits: Limits {
            max_frame_bytes: cli.max_frame_bytes,
            hard_frame_bytes: cli.hard_frame_bytes,
            max_subscriptions: cli.max_subscriptions,
            history_page: cli.history_page,
            history_max_bytes: cli.history_max_bytes,
            publish_rate: cli.publish_rate,
            live_queue: cli.live_queue,
            max_streams: cli.max_streams,
            max_streams_per_ip: cli.max_streams_per_ip,
            max_errors_per_sec: cli.max_errors_per_sec,
            max_connections: cli.max_connections,
            max_connections_per_ip: cli.max_connections_per_ip,
            handshake_timeout_ms: cli.handshake_timeout_ms,
            ..Limits::default()
        },
        snapshot_messages: cli.snapshot_messages,
        snapshot_max_bytes: cli.snapshot_max_bytes,
        id_window: IdWindow {
            ttl_ms: cli.id_ttl_secs.saturating_mul(1000),
            max_count: cli.id_window,
        },
        stream_idle_ms: cli.stream_idle_ms,
        tls: match (&cli.tls_cert, &cli.tls_key) {
            (Some(cert), Some(key)) => Some(
                TlsConfig::load(cert, key)
                    .map_err(|e| seqsync_server::ServerError::Io(std::io::Error::other(e)))?,
            ),
            _ => None,
        },
        ..ServerConfig::default()
    };
    let server = Server::start(config).await?;
    tracing::info!(url = %server.ws_url(), "ready");
    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
