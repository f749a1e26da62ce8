//! Counters exposed at `/metrics` in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Error codes of protocol v1, in the order they are counted.
pub const ERROR_CODES: [&str; 12] = [
    "malformed_frame",
    "unknown_type",
    "frame_too_large",
    "seq_out_of_range",
    "invalid_range",
    "invalid_stream",
    "unauthorized",
    "too_many_subscriptions",
    "rate_limited",
    "not_subscribed",
    "range_beyond_head",
    "internal",
];

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
    pub(crate) errors: [AtomicU64; 12],
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
    /// `error` frames sent, per code (same order as [`ERROR_CODES`]).
    pub errors: [u64; 12],
}

impl MetricsSnapshot {
    /// Error frames sent with `code`.
    pub fn errors_with(&self, code: &str) -> u64 {
        ERROR_CODES
            .iter()
            .position(|c| *c == code)
            .map_or(0, |i| self.errors[i])
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

    pub(crate) fn error(&self, code: &str) {
        if let Some(i) = ERROR_CODES.iter().position(|c| *c == code) {
            Metrics::inc(&self.errors[i]);
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
        let _ = writeln!(
            out,
            "# HELP seqsync_errors_total Error frames sent, by code."
        );
        let _ = writeln!(out, "# TYPE seqsync_errors_total counter");
        for (code, value) in ERROR_CODES.iter().zip(s.errors) {
            let _ = writeln!(out, "seqsync_errors_total{{code=\"{code}\"}} {value}");
        }
        out
    }
}
