//! The HTTP side: accepting connections within the limits, routes, upgrade
//! checks, static files, start and shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Extension, Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admission::{Refusal, Ticket};
use crate::auth::{self, Claims};
use crate::config::{ServerConfig, Storage};
use crate::faults::FaultSpec;
use crate::log::redis::follow::Follower;
use crate::log::{Log, LogError, MemoryLog, RedisLog, RedisOptions, SqliteLog, call, now_ms};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::state::AppState;
use crate::stream_hub::Hubs;

/// Bytes a WebSocket connection reads from its socket at a time, and the
/// room it keeps for that; a frame larger than this grows the buffer while
/// it is read. Small, because every idle connection holds it.
const WS_READ_BUFFER: usize = 4 * 1024;
/// Bytes a WebSocket connection gathers before it writes to its socket.
const WS_WRITE_BUFFER: usize = 16 * 1024;
/// Connections being refused at once; past this a refused connection is
/// closed without an answer.
const MAX_REFUSING: usize = 256;
/// How long a refused connection may take to send its request.
const REFUSE_WITHIN: Duration = Duration::from_secs(1);

/// What can stop the server from starting or stopping cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The log could not be opened.
    #[error("log: {0}")]
    Log(#[from] LogError),
    /// The address could not be bound or the server failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Starts servers.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Opens the configured log, binds `config.bind` and serves until
    /// [`RunningServer::shutdown`].
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), seqsync_server::ServerError> {
    /// use seqsync_server::{Server, ServerConfig};
    /// let server = Server::start(ServerConfig::for_tests()).await?;
    /// let url = format!("ws://{}/ws", server.local_addr());
    /// # let _ = url;
    /// server.shutdown().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ServerError`] when the log cannot be opened or the address bound.
    pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
        let log: Arc<dyn Log> = match &config.storage {
            Storage::Memory => {
                Arc::new(MemoryLog::new(config.retention).with_id_window(config.id_window))
            }
            Storage::Sqlite(path) => {
                let path = path.clone();
                let (retention, ids) = (config.retention, config.id_window);
                let log = tokio::task::spawn_blocking(move || {
                    SqliteLog::open(path, retention).map(|l| l.with_id_window(ids))
                })
                .await
                .map_err(|e| LogError::Aborted(e.to_string()))??;
                Arc::new(log)
            }
            Storage::Redis(_) | Storage::RedisCluster(_) => {
                let storage = config.storage.clone();
                let options = RedisOptions {
                    retention: config.retention,
                    ids: config.id_window,
                    ..RedisOptions::default()
                };
                let log = tokio::task::spawn_blocking(move || match storage {
                    Storage::RedisCluster(nodes) => RedisLog::open_cluster(&nodes, options),
                    Storage::Redis(url) => RedisLog::open(&url, options),
                    _ => Err(LogError::Redis("not a Redis storage".into())),
                })
                .await
                .map_err(|e| LogError::Aborted(e.to_string()))??;
                let follower = Follower::start(&log)?;
                return Server::serve(config, Arc::new(log), Some(follower)).await;
            }
        };
        Server::start_with_log(config, log).await
    }

    /// As [`Server::start`], with a log backend of the caller's (the
    /// configured storage is ignored).
    ///
    /// # Errors
    /// [`ServerError::Io`] when the address cannot be bound.
    pub async fn start_with_log(
        config: ServerConfig,
        log: Arc<dyn Log>,
    ) -> Result<RunningServer, ServerError> {
        Server::serve(config, log, None).await
    }

    async fn serve(
        config: ServerConfig,
        log: Arc<dyn Log>,
        follower: Option<Follower>,
    ) -> Result<RunningServer, ServerError> {
        let listener = TcpListener::bind(config.bind).await?;
        let local_addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let metrics = Arc::new(Metrics::default());
        let hubs = Hubs::new(
            log,
            metrics.clone(),
            config.limits.max_streams,
            config.limits.streams_per_address(),
            config.stream_idle_ms,
            follower,
        );
        let state = Arc::new(AppState::new(config, hubs, metrics, shutdown_rx.clone()));
        let app = Router::new()
            .route("/ws", get(ws_handler))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/metrics", get(metrics_handler))
            .fallback(static_handler)
            .with_state(state.clone());
        let serve = tokio::spawn(accept_loop(listener, app, state.clone()));
        let upkeep = tokio::spawn(upkeep(state.clone()));
        tracing::info!(addr = %local_addr, "seqsync-server listening");
        Ok(RunningServer {
            local_addr,
            state,
            shutdown_tx,
            serve,
            upkeep,
        })
    }
}

/// A server that is running; stop it with [`RunningServer::shutdown`].
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    state: Arc<AppState>,
    shutdown_tx: watch::Sender<bool>,
    serve: JoinHandle<()>,
    upkeep: JoinHandle<()>,
}

impl RunningServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `ws://addr/ws`, or `wss://addr/ws` with TLS.
    pub fn ws_url(&self) -> String {
        let scheme = if self.state.config.tls.is_some() {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{}/ws", self.local_addr)
    }

    /// The server's counters now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.state.metrics_now().snapshot()
    }

    /// Stops accepting, closes every connection (after sending what it has
    /// queued, with close code 1001), lets every stream's sequencing point
    /// commit the publishes it holds, and closes the log. A publish that was
    /// acknowledged is in the log; one that was not may or may not be.
    ///
    /// # Errors
    /// [`ServerError::Io`] when the HTTP server failed.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        let _ = self.shutdown_tx.send(true);
        let grace = Duration::from_millis(self.state.config.shutdown_grace_ms);
        let served = self.serve.await;
        let _ = tokio::time::timeout(grace, self.state.wait_connections_closed()).await;
        self.state.hubs.stop(grace).await;
        let _ = self.upkeep.await;
        tracing::info!("seqsync-server stopped");
        served.map_err(|e| ServerError::Io(std::io::Error::other(e)))
    }
}

/// Accepts connections until shutdown: each within the limits is served
/// over HTTP/1.1 with a deadline for its request head; the others get a
/// short refusal.
async fn accept_loop(listener: TcpListener, app: Router, state: Arc<AppState>) {
    let mut stop = state.shutdown.clone();
    let refusing = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            () = stopped(&mut stop) => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(ok) => ok,
            Err(e) => {
                // Out of file descriptors, typically: wait for some to close.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        match state.admission.admit(peer.ip()) {
            Ok(ticket) => {
                tokio::spawn(serve_connection(
                    tcp,
                    Arc::new(ticket),
                    app.clone(),
                    state.clone(),
                ));
            }
            Err(refusal) => {
                match refusal {
                    Refusal::Busy => Metrics::inc(&state.metrics.refused_busy),
                    Refusal::PerAddress => Metrics::inc(&state.metrics.refused_per_address),
                }
                if refusing.fetch_add(1, Ordering::SeqCst) < MAX_REFUSING {
                    let refusing = refusing.clone();
                    tokio::spawn(async move {
                        refuse(tcp, refusal).await;
                        refusing.fetch_sub(1, Ordering::SeqCst);
                    });
                } else {
                    refusing.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
    }
}

/// Serves one admitted connection: TLS first when the server has a
/// certificate, then HTTP. The TLS handshake and the request head must both
/// arrive within [`Limits::handshake_timeout_ms`](crate::Limits::handshake_timeout_ms);
/// an upgraded connection carries its ticket into the WebSocket session.
async fn serve_connection(tcp: TcpStream, ticket: Arc<Ticket>, app: Router, state: Arc<AppState>) {
    let _ = tcp.set_nodelay(true);
    let timeout = Duration::from_millis(state.config.limits.handshake_timeout_ms.max(1));
    let Some(tls) = state.config.tls.clone() else {
        serve_http(tcp, ticket, app, state, timeout).await;
        return;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.0);
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => serve_http(stream, ticket, app, state, timeout).await,
        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
        Err(_) => {
            Metrics::inc(&state.metrics.handshake_timeouts);
            tracing::debug!("TLS handshake timed out");
        }
    }
}

/// HTTP/1.1 on an accepted connection (plain or TLS), upgrades included.
async fn serve_http<IO>(
    io: IO,
    ticket: Arc<Ticket>,
    app: Router,
    state: Arc<AppState>,
    timeout: Duration,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = WithTicket { app, ticket };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .keep_alive(true);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut stop = state.shutdown.clone();
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                if e.is_timeout() {
                    Metrics::inc(&state.metrics.handshake_timeouts);
                }
                tracing::debug!(error = %e, "http connection ended");
            }
        }
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        }
    }
}

/// The routes, with the connection's ticket in every request (the
/// WebSocket session takes it over).
#[derive(Clone)]
struct WithTicket {
    app: Router,
    ticket: Arc<Ticket>,
}

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for WithTicket {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = axum::routing::future::RouteFuture<std::convert::Infallible>;

    fn call(&self, mut request: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        request.extensions_mut().insert(self.ticket.clone());
        tower_service::Service::call(&mut self.app.clone(), request)
    }
}

/// Answers a connection over the limits with 503 (server full) or 429 (its
/// address holds its share), after reading its request head for a moment,
/// so that the client sees the answer rather than a reset.
async fn refuse(mut tcp: TcpStream, refusal: Refusal) {
    let (status, body) = match refusal {
        Refusal::Busy => (
            "503 Service Unavailable",
            "the server holds its limit of connections\n",
        ),
        Refusal::PerAddress => (
            "429 Too Many Requests",
            "this address holds its limit of connections\n",
        ),
    };
    let _ = tokio::time::timeout(REFUSE_WITHIN, async {
        let mut head = Vec::with_capacity(1024);
        let mut buf = [0u8; 1024];
        while head.len() < 8 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tcp.write_all(response.as_bytes()).await;
        let _ = tcp.shutdown().await;
    })
    .await;
}

/// Resolves once the server is shutting down.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Periodic work: age retention and letting go of idle streams.
async fn upkeep(state: Arc<AppState>) {
    let mut shutdown = state.shutdown.clone();
    let period = Duration::from_millis(
        state
            .config
            .retention_interval_ms
            .min(state.config.stream_idle_ms / 2)
            .max(10),
    );
    let mut tick = tokio::time::interval(period);
    let mut last_trim = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => return,
            _ = tick.tick() => {}
        }
        state.hubs.sweep();
        if last_trim.elapsed() < Duration::from_millis(state.config.retention_interval_ms) {
            continue;
        }
        last_trim = tokio::time::Instant::now();
        let now = now_ms();
        match call(state.hubs.log(), move |log| log.trim(now)).await {
            Ok(n) => Metrics::add(&state.metrics.trimmed, n),
            Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
        }
    }
}

async fn ws_handler(
    State(state): State<Arc<AppState>>,
    Query(params): Query<HashMap<String, String>>,
    ticket: Option<Extension<Arc<Ticket>>>,
    ws: WebSocketUpgrade,
) -> Response {
    if *state.shutdown.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let claims = match (&state.config.token_secret, params.get("token")) {
        (None, _) => Claims::allow_all(),
        (Some(_), None) => {
            return (
                StatusCode::UNAUTHORIZED,
                "this server needs a token: /ws?token=...\n",
            )
                .into_response();
        }
        (Some(secret), Some(token)) => {
            match auth::verify(secret.as_bytes(), token, now_ms() / 1000) {
                Ok(claims) => claims,
                Err(e) => return (StatusCode::UNAUTHORIZED, format!("{e}\n")).into_response(),
            }
        }
    };
    let faults = match params.get("faults") {
        Some(_) if !state.config.allow_client_faults => {
            return (
                StatusCode::BAD_REQUEST,
                "client fault injection is disabled on this server\n",
            )
                .into_response();
        }
        Some(spec) => match spec.parse::<FaultSpec>() {
            Ok(spec) => Some(spec),
            Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
        },
        None => state
            .config
            .faults
            .as_ref()
            .map(|f| f.derive(state.metrics.connections_total.load(Ordering::Relaxed))),
    };
    let limits = &state.config.limits;
    let hard = limits.hard_frame_bytes.max(limits.max_frame_bytes);
    let ticket = ticket.map(|Extension(t)| t);
    ws.max_message_size(hard)
        .max_frame_size(hard)
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(WS_WRITE_BUFFER)
        .on_upgrade(move |socket| crate::conn::run(socket, state, claims, faults, ticket))
}

async fn metrics_handler(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics_now().render(),
    )
        .into_response()
}

async fn static_handler(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    let Some(dir) = state.config.static_dir.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(path) = resolve(dir, uri.path()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match tokio::fs::read(&path).await {
        Ok(body) => ([(header::CONTENT_TYPE, content_type(&path))], body).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Maps a URL path into `dir`, refusing anything that could leave it.
fn resolve(dir: &Path, url_path: &str) -> Option<PathBuf> {
    let relative = url_path.trim_start_matches('/');
    let mut path = dir.to_path_buf();
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if relative.is_empty() || relative.ends_with('/') || path.is_dir() {
        path.push("index.html");
    }
    Some(path)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_paths_stay_inside_the_directory() {
        let dir = Path::new("/srv/site");
        assert_eq!(
            resolve(dir, "/"),
            Some(PathBuf::from("/srv/site/index.html"))
        );
        assert_eq!(
            resolve(dir, "/app.js"),
            Some(PathBuf::from("/srv/site/app.js"))
        );
        assert_eq!(resolve(dir, "/../etc/passwd"), None);
        assert_eq!(resolve(dir, "/a/../../x"), None);
    }
}
