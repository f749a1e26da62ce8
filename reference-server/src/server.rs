//! The HTTP side: routes, upgrade checks, static files, start and shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State, WebSocketUpgrade};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::auth::{self, Claims};
use crate::config::{ServerConfig, Storage};
use crate::faults::FaultSpec;
use crate::follow::Follower;
use crate::hub::{Hub, call};
use crate::log::{Log, LogError, MemoryLog, RedisLog, RedisOptions, SqliteLog};
use crate::metrics::{Metrics, MetricsSnapshot};

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

pub(crate) struct AppState {
    pub(crate) config: ServerConfig,
    pub(crate) hub: Hub,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) next_conn: AtomicU64,
    /// Every open connection's outbound queue, for the queue-depth gauge.
    pub(crate) queues: std::sync::Mutex<HashMap<u64, Arc<crate::outbound::Outbound>>>,
    closed: Notify,
}

impl AppState {
    /// The counters, with the queue-depth gauge summed over the open
    /// connections now (kept off the hot path).
    pub(crate) fn metrics_now(&self) -> &Metrics {
        let depth: usize = self
            .queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|q| q.depth())
            .sum();
        self.metrics
            .queue_depth
            .store(depth as u64, Ordering::Relaxed);
        &self.metrics
    }

    pub(crate) fn connection_closed(&self) {
        self.metrics.connections.fetch_sub(1, Ordering::SeqCst);
        self.closed.notify_waiters();
    }

    async fn wait_connections_closed(&self) {
        loop {
            let notified = self.closed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.metrics.connections.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
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
            Storage::Memory => Arc::new(MemoryLog::new(config.retention)),
            Storage::Sqlite(path) => {
                let path = path.clone();
                let retention = config.retention;
                let log = tokio::task::spawn_blocking(move || SqliteLog::open(path, retention))
                    .await
                    .map_err(|e| LogError::Aborted(e.to_string()))??;
                Arc::new(log)
            }
            Storage::Redis(url) => {
                let url = url.clone();
                let options = RedisOptions {
                    retention: config.retention,
                    ..RedisOptions::default()
                };
                let log = tokio::task::spawn_blocking(move || RedisLog::open(&url, options))
                    .await
                    .map_err(|e| LogError::Aborted(e.to_string()))??;
                let follower = Follower::start(log.client().clone())?;
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
        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        let local_addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let metrics = Arc::new(Metrics::default());
        let mut hub = Hub::new(log.clone(), metrics.clone(), config.limits.max_streams);
        if let Some(follower) = follower {
            hub = hub.with_follower(follower);
        }
        let state = Arc::new(AppState {
            hub,
            metrics,
            shutdown: shutdown_rx.clone(),
            next_conn: AtomicU64::new(0),
            queues: std::sync::Mutex::new(HashMap::new()),
            closed: Notify::new(),
            config,
        });
        let app = Router::new()
            .route("/ws", get(ws_handler))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/metrics", get(metrics_handler))
            .fallback(static_handler)
            .with_state(state.clone());
        let mut stop = shutdown_rx.clone();
        let serve = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        });
        let sweeper = tokio::spawn(sweep(
            log,
            state.metrics.clone(),
            state.config.retention_interval_ms,
            shutdown_rx,
        ));
        tracing::info!(addr = %local_addr, "seqsync-server listening");
        Ok(RunningServer {
            local_addr,
            state,
            shutdown_tx,
            serve,
            sweeper,
        })
    }
}

/// A server that is running; stop it with [`RunningServer::shutdown`].
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    state: Arc<AppState>,
    shutdown_tx: watch::Sender<bool>,
    serve: JoinHandle<std::io::Result<()>>,
    sweeper: JoinHandle<()>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `ws://addr/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.local_addr)
    }

    /// The server's counters now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.state.metrics_now().snapshot()
    }

    /// Stops accepting, closes every connection (after sending what it has
    /// queued, with close code 1001), lets every stream's sequencing point
    /// finish the publishes it holds, and closes the log. A publish that was
    /// acknowledged is in the log; one that was not may or may not be.
    ///
    /// # Errors
    /// [`ServerError::Io`] when the HTTP server failed.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        let _ = self.shutdown_tx.send(true);
        let grace = Duration::from_millis(self.state.config.shutdown_grace_ms);
        let served = self.serve.await;
        let _ = tokio::time::timeout(grace, self.state.wait_connections_closed()).await;
        self.state.hub.stop().await;
        let _ = self.sweeper.await;
        tracing::info!("seqsync-server stopped");
        match served {
            Ok(result) => result.map_err(ServerError::Io),
            Err(e) => Err(ServerError::Io(std::io::Error::other(e))),
        }
    }
}

async fn sweep(
    log: Arc<dyn Log>,
    metrics: Arc<Metrics>,
    interval_ms: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    let period = Duration::from_millis(interval_ms.max(10));
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        match call(&log, move |log| log.trim(now)).await {
            Ok(n) => Metrics::add(&metrics.trimmed, n),
            Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
        }
    }
}

async fn ws_handler(
    State(state): State<Arc<AppState>>,
    Query(params): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    if *state.shutdown.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let claims = match (&state.config.token_secret, params.get("token")) {
        (None, _) => Claims::allow_all(),
        (Some(_), None) => Claims::default(),
        (Some(secret), Some(token)) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            match auth::verify(secret.as_bytes(), token, now) {
                Ok(claims) => claims,
                Err(e) => return (StatusCode::UNAUTHORIZED, format!("{e}\n")).into_response(),
            }
        }
    };
    let conn_no = state.next_conn.load(Ordering::Relaxed);
    let faults = match params.get("faults") {
        Some(_) if !state.config.allow_client_faults => {
            return (
                StatusCode::FORBIDDEN,
                "client fault injection is disabled on this server\n",
            )
                .into_response();
        }
        Some(spec) => match spec.parse::<FaultSpec>() {
            Ok(spec) => Some(spec),
            Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
        },
        None => state.config.faults.as_ref().map(|f| f.derive(conn_no)),
    };
    let hard = state
        .config
        .limits
        .hard_frame_bytes
        .max(state.config.limits.max_frame_bytes);
    ws.max_message_size(hard)
        .max_frame_size(hard)
        .on_upgrade(move |socket| crate::conn::run(socket, state, claims, faults))
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
