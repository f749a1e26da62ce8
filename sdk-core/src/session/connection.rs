//! The connection policy: which endpoint next and when (backoff with full
//! jitter), when an attempt or a peer is dead, what a new connection starts
//! with, and how the session ends.

use super::events::{CloseReason, ConnId, PublishError, SessionEvent, StopReason, Transmit};
use super::{Session, Timers};
use crate::prelude::*;
use crate::protocol::encode;
use crate::types::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LinkState {
    /// Waiting out the backoff before the next attempt.
    Waiting {
        until: Millis,
    },
    /// An attempt is under way.
    Connecting {
        conn: ConnId,
        endpoint: usize,
        deadline: Millis,
    },
    /// Connected. `check_at` is when the dead-peer check looks at
    /// `last_rx` next (moved only when it fires, not per frame).
    Open {
        conn: ConnId,
        endpoint: usize,
        opened: Millis,
        last_rx: Millis,
        check_at: Millis,
    },
    /// No connection and none wanted until [`Session::connect`]: the
    /// application called [`Session::disconnect`], or the first connection
    /// never came within `initial_connect_timeout_ms`.
    Stopped,
    Closed,
}

/// The connection policy's state: which attempt, which endpoint next, how
/// many failures in a row.
#[derive(Debug)]
pub(super) struct Link {
    pub(super) state: LinkState,
    pub(super) next_conn: u64,
    /// The endpoint the next attempt uses.
    pub(super) cursor: usize,
    /// Failures in a row: attempts that did not open and connections that
    /// ended before `stable_after_ms`.
    pub(super) failures: u32,
    pub(super) ever_connected: bool,
    pub(super) started: Millis,
}

impl<P> Session<P> {
    /// The socket of attempt `conn` is open. Every stream subscribes (again),
    /// then every pending publish is sent again with its id: a message
    /// stored after its stream is registered reaches this client live.
    pub fn handle_opened(&mut self, now: Millis, conn: ConnId) {
        let LinkState::Connecting {
            conn: current,
            endpoint,
            ..
        } = self.link.state
        else {
            return;
        };
        if current != conn {
            return;
        }
        self.link.state = LinkState::Open {
            conn,
            endpoint,
            opened: now,
            last_rx: now,
            check_at: now.plus(self.config.heartbeat_timeout_ms),
        };
        self.link.ever_connected = true;
        self.stats.connects += 1;
        self.events.push_back(SessionEvent::Connected { endpoint });
        if self.config.silence_timeout_ms > 0 {
            self.timers.silence = Some(now.plus(self.config.silence_timeout_ms));
        }
        self.seq.handle_connected(now);
        self.flush_requests(now);
        if self.is_foreign() {
            // Publishes go over HTTP, independent of the socket.
            self.foreign_opened(now);
            self.after(now);
            return;
        }
        self.publishes.clear_retries();
        let frames: Vec<String> = self
            .publishes
            .sendable()
            .map(|(_, p)| String::from(&*p.frame))
            .collect();
        for text in frames {
            self.send(text);
        }
        self.after(now);
    }

    /// The socket of `conn` closed or failed (or the attempt failed). The
    /// next attempt is scheduled with backoff; news of an attempt the
    /// session already left is ignored.
    pub fn handle_closed(&mut self, now: Millis, conn: ConnId, reason: &str) {
        match self.link.state {
            LinkState::Connecting { conn: current, .. } if current == conn => {
                self.stats.connect_failures += 1;
                self.failed(now, reason.to_string());
            }
            LinkState::Open { conn: current, .. } if current == conn => {
                self.lost(now, reason.to_string());
            }
            _ => {}
        }
        self.after(now);
    }

    pub(super) fn is_open(&self) -> bool {
        matches!(self.link.state, LinkState::Open { .. })
    }

    /// Whether the session waits for frames: a subscription, or a publish
    /// waiting for its ack. A connection with neither may be quiet.
    pub(super) fn expects_traffic(&self) -> bool {
        match self.plan() {
            // Publishes go over HTTP; without heartbeats a quiet stream is
            // just quiet.
            Some(plan) => plan.heartbeats && !self.seq.is_empty(),
            None => !self.seq.is_empty() || !self.publishes.is_empty(),
        }
    }

    /// Starts the dead-peer clock when work arrives on a connection that
    /// had none: its quiet past does not count.
    pub(super) fn expect_traffic(&mut self, now: Millis) {
        let idle = !self.expects_traffic();
        if let (LinkState::Open { last_rx, .. }, true) = (&mut self.link.state, idle) {
            *last_rx = now;
        }
    }

    pub(super) fn start_attempt(&mut self, now: Millis) {
        let endpoint = self.link.cursor;
        self.link.cursor = (endpoint + 1) % self.config.endpoints.len();
        let conn = ConnId(self.link.next_conn);
        self.link.next_conn += 1;
        // An attempt never outlives the first connection's deadline.
        let deadline = now.plus(self.config.connect_timeout_ms);
        self.link.state = LinkState::Connecting {
            conn,
            endpoint,
            deadline: self.give_up_at().map_or(deadline, |at| at.min(deadline)),
        };
        let url = encode::connect_url(
            &self.config.endpoints[endpoint],
            self.config.token.as_deref(),
        );
        self.transmits.push_back(Transmit::Connect {
            conn,
            endpoint,
            url,
        });
        self.events.push_back(SessionEvent::Connecting {
            endpoint,
            attempt: self.link.failures,
        });
    }

    pub(super) fn tick_link(&mut self, now: Millis) {
        match self.link.state {
            LinkState::Waiting { until } if until <= now => self.start_attempt(now),
            LinkState::Connecting { conn, deadline, .. } if deadline <= now => {
                self.transmits.push_back(Transmit::Disconnect {
                    conn,
                    code: 1000,
                    reason: "connect timed out",
                });
                self.stats.connect_failures += 1;
                self.failed(now, "connect timed out".to_string());
            }
            LinkState::Open {
                conn,
                last_rx,
                check_at,
                ..
            } if check_at <= now => {
                let due = last_rx.plus(self.config.heartbeat_timeout_ms);
                if due > now {
                    self.set_check_at(due);
                } else if self.expects_traffic() {
                    self.transmits.push_back(Transmit::Disconnect {
                        conn,
                        code: 4000,
                        reason: "no frame within the heartbeat timeout",
                    });
                    self.lost(now, "no frame within the heartbeat timeout".to_string());
                } else {
                    // Nothing expected, so silence proves nothing: start over.
                    self.expect_traffic(now);
                    self.set_check_at(now.plus(self.config.heartbeat_timeout_ms));
                }
            }
            _ => {}
        }
    }

    /// When the first connection must have opened
    /// (`initial_connect_timeout_ms`), while none has.
    pub(super) fn give_up_at(&self) -> Option<Millis> {
        (!self.link.ever_connected && self.config.initial_connect_timeout_ms > 0).then(|| {
            self.link
                .started
                .plus(self.config.initial_connect_timeout_ms)
        })
    }

    pub(super) fn set_check_at(&mut self, at: Millis) {
        if let LinkState::Open { check_at, .. } = &mut self.link.state {
            *check_at = at;
        }
    }

    /// The open connection ended.
    pub(super) fn lost(&mut self, now: Millis, reason: String) {
        if self.end_open(now) {
            self.failed(now, reason);
        }
    }

    /// Bookkeeping for the end of the open connection, if one is open:
    /// false when none was.
    pub(super) fn end_open(&mut self, now: Millis) -> bool {
        let LinkState::Open { opened, .. } = self.link.state else {
            return false;
        };
        self.stats.disconnects += 1;
        if now.0.saturating_sub(opened.0) >= self.config.stable_after_ms {
            self.link.failures = 0;
        }
        self.timers.silence = None;
        // Frames queued for the dead socket are void; the sequencer asks
        // again on the next connection.
        self.transmits
            .retain(|t| !matches!(t, Transmit::Send { .. }));
        self.foreign_lost();
        self.seq.handle_disconnected(now);
        while self.seq.poll_request().is_some() {}
        true
    }

    /// An attempt failed or a connection ended: wait, then try the next
    /// endpoint, unless the session is done.
    pub(super) fn failed(&mut self, now: Millis, reason: String) {
        if self.closing && self.publishes.is_empty() {
            self.finish(CloseReason::Closed);
            return;
        }
        let bound = self.config.reconnect_bound(self.link.failures);
        let wait = self.rng.up_to(bound);
        // No attempt that starts at or after the first connection's
        // deadline can meet it: give up now rather than wait for it.
        if self.give_up_at().is_some_and(|at| now.plus(wait) >= at) {
            if self.closing {
                // Nothing more can deliver what is pending.
                self.fail_pending();
                self.finish(CloseReason::Closed);
            } else {
                self.stop(StopReason::GaveUp { reason });
            }
            return;
        }
        self.link.failures = self.link.failures.saturating_add(1);
        self.link.state = LinkState::Waiting {
            until: now.plus(wait),
        };
        self.events.push_back(SessionEvent::Disconnected {
            reason,
            retry_in_ms: wait,
        });
        if wait == 0 {
            // Drawn from the jitter: the next attempt is due now.
            self.start_attempt(now);
        }
    }

    /// Stops trying: no connection until [`Session::connect`]. Streams stay
    /// registered and publishes pending, each on its own clock.
    pub(super) fn stop(&mut self, reason: StopReason) {
        self.link.state = LinkState::Stopped;
        self.events.push_back(SessionEvent::Stopped { reason });
    }

    /// Fails every pending publish as [`PublishError::Closed`]: each may
    /// have been stored.
    pub(super) fn fail_pending(&mut self) {
        for (publish, _) in self.publishes.drain() {
            self.publish_failed(publish, PublishError::Closed);
        }
    }

    pub(super) fn finish_close_if_drained(&mut self) {
        if self.closing && self.publishes.is_empty() && !self.is_closed() {
            self.finish(CloseReason::Closed);
        }
    }

    pub(super) fn finish(&mut self, reason: CloseReason) {
        match self.link.state {
            LinkState::Open { conn, .. } | LinkState::Connecting { conn, .. } => {
                self.transmits.push_back(Transmit::Disconnect {
                    conn,
                    code: 1000,
                    reason: "client closed",
                });
            }
            LinkState::Waiting { .. } | LinkState::Stopped | LinkState::Closed => {}
        }
        self.link.state = LinkState::Closed;
        self.timers = Timers::default();
        self.events.push_back(SessionEvent::Closed { reason });
    }
}
