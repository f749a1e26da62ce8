//! Counters exposed at `/metrics` in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use seqsync_core::protocol::ErrorCode;

/// Error frames counted per code, in the order of [`ErrorCode::ALL`].
const CODES: usize = ErrorCode::ALL.len();

/// The server's counters. Cheap to bump from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    pub(crate) connections: AtomicU64,
    pub(crate) connections_total: AtomicU64,
    pub(crate) publishes: AtomicU64,
    pub(crate) publish_duplicates: AtomicU64,
    pub(crate) deliveries: AtomicU64,
    pub(crate) history_requests: AtomicU64,
    pub(crate) snapshot_requests: AtomicU64,
    pub(crate) live_dropped: AtomicU64,
    pub(crate) fault_dropped: AtomicU64,
    pub(crate) cuts: AtomicU64,
    pub(crate) queue_depth: AtomicU64,
    pub(crate) queue_depth_max: AtomicU64,
    pub(crate) resets: AtomicU64,
    pub(crate) trimmed: AtomicU64,
    pub(crate) streams: AtomicU64,
    pub(crate) streams_evicted: AtomicU64,
    pub(crate) followed_streams: AtomicU64,
    pub(crate) tcp_connections: AtomicU64,
    pub(crate) refused_busy: AtomicU64,
    pub(crate) refused_per_address: AtomicU64,
    pub(crate) handshake_timeouts: AtomicU64,
    pub(crate) tokens_expired: AtomicU64,
    pub(crate) errors: [AtomicU64; CODES],
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Open WebSocket connections.
    pub connections: u64,
    /// WebSocket connections accepted since start.
    pub connections_total: u64,
    /// Messages appended (retries of a known id not counted).
    pub publishes: u64,
    /// Publishes answered with the seq of an earlier one with the same id.
    pub publish_duplicates: u64,
    /// Live `msg` frames written to sockets.
    pub deliveries: u64,
    /// `history` requests served.
    pub history_requests: u64,
    /// `snapshot` frames sent.
    pub snapshot_requests: u64,
    /// Live frames dropped because a reader's queue was full.
    pub live_dropped: u64,
    /// Live frames dropped by fault injection.
    pub fault_dropped: u64,
    /// Connections cut by fault injection.
    pub cuts: u64,
    /// Frames waiting in outbound queues now (summed when the counters are read).
    pub queue_depth: u64,
    /// Largest live queue seen on any connection.
    pub queue_depth_max: u64,
    /// `reset` frames sent.
    pub resets: u64,
    /// Messages removed by retention.
    pub trimmed: u64,
    /// Streams live now (subscribed, being published to, or recently used).
    pub streams: u64,
    /// Live streams let go of because nobody used them.
    pub streams_evicted: u64,
    /// Streams this instance reads from a shared log (Redis) now: those
    /// with subscribers here.
    pub followed_streams: u64,
    /// TCP connections open now (HTTP and WebSocket).
    pub tcp_connections: u64,
    /// Connections refused because the server held its limit (HTTP 503).
    pub refused_busy: u64,
    /// Connections refused because their address held its limit (HTTP 429).
    pub refused_per_address: u64,
    /// Connections closed because their request head was too slow.
    pub handshake_timeouts: u64,
    /// Connections closed because their token expired.
    pub tokens_expired: u64,
    /// `error` frames sent, per code (in the order of [`ErrorCode::ALL`]).
    pub errors: [u64; CODES],
}

impl MetricsSnapshot {
    /// Error frames sent with `code`.
    pub fn errors_with(&self, code: ErrorCode) -> u64 {
        self.errors.get(code.index()).copied().unwrap_or(0)
    }
}

impl Metrics {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn set(gauge: &AtomicU64, value: u64) {
        gauge.store(value, Ordering::Relaxed);
    }

    /// Counts one `error` frame sent with `code`.
    pub(crate) fn error(&self, code: ErrorCode) {
        if let Some(counter) = self.errors.get(code.index()) {
            Metrics::inc(counter);
        }
    }

    pub(crate) fn observe_depth(&self, depth: u64) {
        self.queue_depth_max.fetch_max(depth, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            connections: get(&self.connections),
            connections_total: get(&self.connections_total),
            publishes: get(&self.publishes),
            publish_duplicates: get(&self.publish_duplicates),
            deliveries: get(&self.deliveries),
            history_requests: get(&self.history_requests),
            snapshot_requests: get(&self.snapshot_requests),
            live_dropped: get(&self.live_dropped),
            fault_dropped: get(&self.fault_dropped),
            cuts: get(&self.cuts),
            queue_depth: get(&self.queue_depth),
            queue_depth_max: get(&self.queue_depth_max),
            resets: get(&self.resets),
            trimmed: get(&self.trimmed),
            streams: get(&self.streams),
            streams_evicted: get(&self.streams_evicted),
            followed_streams: get(&self.followed_streams),
            tcp_connections: get(&self.tcp_connections),
            refused_busy: get(&self.refused_busy),
            refused_per_address: get(&self.refused_per_address),
            handshake_timeouts: get(&self.handshake_timeouts),
            tokens_expired: get(&self.tokens_expired),
            errors: std::array::from_fn(|i| get(&self.errors[i])),
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let s = self.snapshot();
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        };
        metric(
            "seqsync_connections",
            "gauge",
            "Open WebSocket connections.",
            s.connections,
        );
        metric(
            "seqsync_connections_total",
            "counter",
            "WebSocket connections accepted.",
            s.connections_total,
        );
        metric(
            "seqsync_publishes_total",
            "counter",
            "Messages appended to the log.",
            s.publishes,
        );
        metric(
            "seqsync_publish_duplicates_total",
            "counter",
            "Publishes answered with the seq of an earlier publish with the same id.",
            s.publish_duplicates,
        );
        metric(
            "seqsync_deliveries_total",
            "counter",
            "Live msg frames written to sockets.",
            s.deliveries,
        );
        metric(
            "seqsync_history_requests_total",
            "counter",
            "History requests served.",
            s.history_requests,
        );
        metric(
            "seqsync_snapshots_total",
            "counter",
            "Snapshot frames sent.",
            s.snapshot_requests,
        );
        metric(
            "seqsync_live_dropped_total",
            "counter",
            "Live frames dropped because a reader's outbound queue was full.",
            s.live_dropped,
        );
        metric(
            "seqsync_fault_dropped_total",
            "counter",
            "Live frames dropped by fault injection.",
            s.fault_dropped,
        );
        metric(
            "seqsync_fault_cuts_total",
            "counter",
            "Connections cut by fault injection.",
            s.cuts,
        );
        metric(
            "seqsync_queue_depth",
            "gauge",
            "Frames waiting in outbound queues.",
            s.queue_depth,
        );
        metric(
            "seqsync_queue_depth_max",
            "gauge",
            "Largest live outbound queue seen on one connection.",
            s.queue_depth_max,
        );
        metric(
            "seqsync_resets_total",
            "counter",
            "Reset frames sent.",
            s.resets,
        );
        metric(
            "seqsync_trimmed_total",
            "counter",
            "Messages removed by retention.",
            s.trimmed,
        );
        metric(
            "seqsync_streams",
            "gauge",
            "Streams live now: subscribed, being published to, or recently used.",
            s.streams,
        );
        metric(
            "seqsync_streams_evicted_total",
            "counter",
            "Live streams let go of because nobody used them.",
            s.streams_evicted,
        );
        metric(
            "seqsync_followed_streams",
            "gauge",
            "Streams read from the shared log for subscribers on this instance.",
            s.followed_streams,
        );
        metric(
            "seqsync_tcp_connections",
            "gauge",
            "TCP connections open, HTTP and WebSocket.",
            s.tcp_connections,
        );
        metric(
            "seqsync_refused_busy_total",
            "counter",
            "Connections refused with 503: the server held its limit.",
            s.refused_busy,
        );
        metric(
            "seqsync_refused_per_address_total",
            "counter",
            "Connections refused with 429: their address held its limit.",
            s.refused_per_address,
        );
        metric(
            "seqsync_handshake_timeouts_total",
            "counter",
            "Connections closed because their request head came too slowly.",
            s.handshake_timeouts,
        );
        metric(
            "seqsync_tokens_expired_total",
            "counter",
            "Connections closed because their token expired.",
            s.tokens_expired,
        );
        let _ = writeln!(
            out,
            "# HELP seqsync_errors_total Error frames sent, by code."
        );
        let _ = writeln!(out, "# TYPE seqsync_errors_total counter");
        for (code, value) in ErrorCode::ALL.iter().zip(s.errors) {
            let _ = writeln!(out, "seqsync_errors_total{{code=\"{code}\"}} {value}");
        }
        out
    }
}
