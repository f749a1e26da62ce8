//! What every part of a running server shares: its configuration, the live
//! streams, the counters, the shutdown signal and the open connections.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, watch};

use crate::admission::Admission;
use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::outbound::Outbound;
use crate::stream_hub::Hubs;

/// The state of one running server.
pub(crate) struct AppState {
    /// The configuration it was started with.
    pub(crate) config: ServerConfig,
    /// The live streams.
    pub(crate) hubs: Hubs,
    /// The counters.
    pub(crate) metrics: Arc<Metrics>,
    /// Turns true when the server shuts down.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// TCP connections against the limits.
    pub(crate) admission: Admission,
    next_conn: AtomicU64,
    /// Every open WebSocket connection's outbound queue, for the
    /// queue-depth gauge.
    queues: Mutex<HashMap<u64, Arc<Outbound>>>,
    closed: Notify,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// The state of a server about to start.
    pub(crate) fn new(
        config: ServerConfig,
        hubs: Hubs,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
    ) -> AppState {
        let admission = Admission::new(
            config.limits.max_connections,
            config.limits.max_connections_per_ip,
        );
        AppState {
            config,
            hubs,
            metrics,
            shutdown,
            admission,
            next_conn: AtomicU64::new(0),
            queues: Mutex::new(HashMap::new()),
            closed: Notify::new(),
        }
    }

    fn queues(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Outbound>>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A number for a new connection.
    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// The counters, with the gauges summed over the open connections and
    /// live streams now (kept off the hot path).
    pub(crate) fn metrics_now(&self) -> &Metrics {
        let depth: usize = self.queues().values().map(|q| q.depth()).sum();
        Metrics::set(&self.metrics.queue_depth, depth as u64);
        Metrics::set(&self.metrics.streams, self.hubs.live() as u64);
        Metrics::set(&self.metrics.followed_streams, self.hubs.followed() as u64);
        Metrics::set(&self.metrics.tcp_connections, self.admission.open() as u64);
        &self.metrics
    }

    /// A WebSocket connection opened with outbound queue `out`.
    pub(crate) fn connection_opened(&self, out: &Arc<Outbound>) {
        Metrics::inc(&self.metrics.connections);
        Metrics::inc(&self.metrics.connections_total);
        self.queues().insert(out.id, out.clone());
    }

    /// The WebSocket connection `id` ended.
    pub(crate) fn connection_closed(&self, id: u64) {
        self.queues().remove(&id);
        self.metrics.connections.fetch_sub(1, Ordering::SeqCst);
        self.closed.notify_waiters();
    }

    /// Waits until no WebSocket connection is open.
    pub(crate) async fn wait_connections_closed(&self) {
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
