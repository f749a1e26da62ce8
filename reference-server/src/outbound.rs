//! A connection's outbound queue: control frames before live frames, and a
//! live part that drops instead of growing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;

use crate::metrics::Metrics;

/// Bytes of queued control frames past which the reader stops reading the
/// connection's requests (history answers can be large).
const CONTROL_BYTES: usize = 4 << 20;

/// Frames queued past which a drained queue gives its memory back (an
/// idle connection should not keep the room a burst needed).
const KEEP_QUEUED: usize = 16;

#[derive(Default)]
pub(crate) struct Queues {
    pub(crate) control: VecDeque<Utf8Bytes>,
    pub(crate) live: VecDeque<Utf8Bytes>,
}

impl Queues {
    /// Gives back the memory of queues that grew in a burst and are empty.
    pub(crate) fn trim(&mut self) {
        for queue in [&mut self.control, &mut self.live] {
            if queue.is_empty() && queue.capacity() > KEEP_QUEUED {
                *queue = VecDeque::new();
            }
        }
    }
}

/// How the writer is to end the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closing {
    /// Send what is queued, then a close frame with this code and reason.
    With(u16, &'static str),
    /// The peer closed or is gone: flush what the socket still owes (the
    /// answer to the peer's close frame) and stop.
    Quietly,
}

struct Inner {
    queues: Queues,
    /// Bytes of the frames in `queues.control`.
    control_bytes: usize,
    /// Longest the live queue has been (reported to the shared gauge only
    /// when it grows, so the hot path touches no shared counter).
    max_live: usize,
    closed: bool,
    close: Option<Closing>,
}

/// One connection's outbound frames, shared by the tasks that produce them
/// (the connection's reader, stream sequencing points) and its writer.
pub(crate) struct Outbound {
    pub(crate) id: u64,
    inner: Mutex<Inner>,
    /// Wakes the writer.
    pub(crate) wake: Notify,
    /// Wakes a reader waiting for room in the control queue.
    space: Notify,
    live_cap: usize,
    control_cap: usize,
    metrics: Arc<Metrics>,
}

impl Outbound {
    pub(crate) fn new(
        id: u64,
        live_cap: usize,
        control_cap: usize,
        metrics: Arc<Metrics>,
    ) -> Outbound {
        Outbound {
            id,
            inner: Mutex::new(Inner {
                queues: Queues::default(),
                control_bytes: 0,
                max_live: 0,
                closed: false,
                close: None,
            }),
            wake: Notify::new(),
            space: Notify::new(),
            live_cap: live_cap.max(1),
            control_cap: control_cap.max(1),
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a control frame. Control frames are bounded by their producers:
    /// the reader waits for room before handling the next request.
    pub(crate) fn push_control(&self, frame: Utf8Bytes) {
        {
            let mut inner = self.lock();
            if inner.closed {
                return;
            }
            inner.control_bytes += frame.len();
            inner.queues.control.push_back(frame);
        }
        self.wake.notify_one();
    }

    /// Queues live frames; those that find the live queue full are dropped
    /// and counted (the client recovers them through `head` and history).
    pub(crate) fn push_live(&self, frames: &[Utf8Bytes]) {
        let (wake, dropped, new_max) = {
            let mut inner = self.lock();
            if inner.closed {
                return;
            }
            // A queue that held frames already has its writer woken (the
            // writer takes the whole queue after each wake-up): only the
            // first frame of a wake-up wakes it.
            let was_empty = inner.queues.live.is_empty();
            let room = self.live_cap.saturating_sub(inner.queues.live.len());
            let take = room.min(frames.len());
            inner.queues.live.extend(frames[..take].iter().cloned());
            let len = inner.queues.live.len();
            let new_max = (len > inner.max_live).then(|| {
                inner.max_live = len;
                len
            });
            (was_empty && take > 0, frames.len() - take, new_max)
        };
        Metrics::add(&self.metrics.live_dropped, dropped as u64);
        if let Some(depth) = new_max {
            self.metrics.observe_depth(depth as u64);
        }
        if wake {
            self.wake.notify_one();
        }
    }

    /// Takes everything queued, for the writer, with how to end if the
    /// connection is ending.
    pub(crate) fn take(&self, into: &mut Queues) -> Option<Closing> {
        let close;
        {
            let mut inner = self.lock();
            std::mem::swap(&mut inner.queues.control, &mut into.control);
            inner.control_bytes = 0;
            std::mem::swap(&mut inner.queues.live, &mut into.live);
            close = inner.close;
        }
        // A reader waits only for a full control queue.
        if !into.control.is_empty() {
            self.space.notify_waiters();
        }
        close
    }

    /// Asks the writer to send a close frame with `code` and stop.
    pub(crate) fn close_with(&self, code: u16, reason: &'static str) {
        self.end(Closing::With(code, reason));
    }

    /// Asks the writer to stop: the reader saw the peer close or go.
    pub(crate) fn finish(&self) {
        self.end(Closing::Quietly);
    }

    fn end(&self, how: Closing) {
        {
            let mut inner = self.lock();
            if inner.close.is_none() {
                inner.close = Some(how);
            }
        }
        self.wake.notify_one();
    }

    /// Stops accepting frames and forgets those still queued.
    pub(crate) fn shut(&self) {
        {
            let mut inner = self.lock();
            inner.closed = true;
            inner.queues = Queues::default();
            inner.control_bytes = 0;
        }
        self.space.notify_waiters();
    }

    /// Frames queued now.
    pub(crate) fn depth(&self) -> usize {
        let inner = self.lock();
        inner.queues.control.len() + inner.queues.live.len()
    }

    /// Waits until the control queue has room.
    pub(crate) async fn wait_control_space(&self) {
        loop {
            let notified = self.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let inner = self.lock();
                if inner.closed
                    || (inner.queues.control.len() < self.control_cap
                        && inner.control_bytes < CONTROL_BYTES)
                {
                    return;
                }
            }
            notified.await;
        }
    }
}
