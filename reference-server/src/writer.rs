//! A connection's writer: drains its outbound queue (control frames before
//! live ones), sends a `head` heartbeat as the connection opens and then
//! every interval, each announcing the frame size limit, applies fault
//! injection to live frames, and ends the connection as it is asked to.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use seqsync_core::StreamName;
use seqsync_core::protocol::{HeadEntry, ServerFrame};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::faults::{DelayLine, FaultInjector, FaultSpec};
use crate::frame::text;
use crate::metrics::Metrics;
use crate::outbound::{Closing, Outbound, Queues};
use crate::stream_hub::Subscriptions;

/// Most live frames held in the fault-injection delay line per connection.
const MAX_DELAYED: usize = 4096;

/// What ended a step of the writer.
enum End {
    /// Keep going.
    No,
    /// Stop, dropping the socket without a close frame.
    Cut,
    /// Stop (the socket failed or the connection was closed).
    Done,
}

/// How the writer runs.
pub(crate) struct WriterConfig {
    /// Interval of `head` frames.
    pub(crate) heartbeat: Duration,
    /// How long closing may take to send what is queued.
    pub(crate) grace: Duration,
    /// The frame size limit every `head` announces (`frame_limit`).
    pub(crate) frame_limit: usize,
}

/// The writing half of one connection.
pub(crate) struct Writer {
    sink: SplitSink<WebSocket, Message>,
    out: Arc<Outbound>,
    subs: Subscriptions,
    metrics: Arc<Metrics>,
    injector: Option<FaultInjector<Utf8Bytes>>,
    delayed: DelayLine<Utf8Bytes>,
    sent: u64,
    /// Live frames written since the last update of the shared counter.
    delivered: u64,
    live_since_tick: bool,
}

impl Writer {
    /// A writer for the socket half `sink`, fed by `out`, naming `subs` in
    /// its heartbeats.
    pub(crate) fn new(
        sink: SplitSink<WebSocket, Message>,
        out: Arc<Outbound>,
        subs: Subscriptions,
        metrics: Arc<Metrics>,
        faults: Option<FaultSpec>,
    ) -> Writer {
        Writer {
            sink,
            out,
            subs,
            metrics,
            injector: faults.filter(FaultSpec::is_active).map(FaultInjector::new),
            delayed: DelayLine::new(MAX_DELAYED),
            sent: 0,
            delivered: 0,
            live_since_tick: false,
        }
    }

    /// Writes until the connection ends, is cut, or the server stops.
    pub(crate) async fn run(mut self, config: WriterConfig, mut shutdown: watch::Receiver<bool>) {
        let heartbeat = config.heartbeat.max(Duration::from_millis(1));
        let mut tick = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let cut_ms = self.injector.as_ref().map_or(0, |i| i.spec().cut_every_ms);
        let cut_at = (cut_ms > 0).then(|| Instant::now() + Duration::from_millis(cut_ms));
        let mut queues = Queues::default();
        // The connection's first frame, before any answer: it tells the
        // client the frame size limit before it has sent much.
        let first = self.heads(config.frame_limit).await;
        if !matches!(first, End::No) || self.sink.flush().await.is_err() {
            self.out.shut();
            return;
        }
        // One shutdown watch for the whole run: a new one per wake-up would
        // register with (and leave) the watch shared by every connection
        // each time.
        let stop = shutdown.changed();
        tokio::pin!(stop);
        let end = loop {
            let next_delay = self.delayed.next_due().map(Instant::from_std);
            let mut heads = false;
            tokio::select! {
                biased;
                _ = &mut stop => {
                    break self.finish(&mut queues, 1001, "server shutting down", config.grace).await;
                }
                () = sleep_until(cut_at) => break End::Cut,
                () = self.out.wake.notified() => {}
                _ = tick.tick() => heads = true,
                () = sleep_until(next_delay) => {}
            }
            let closing = self.out.take(&mut queues);
            let mut end = End::No;
            if heads {
                end = self.heads(config.frame_limit).await;
            }
            if matches!(end, End::No) {
                end = self.drain(&mut queues).await;
            }
            queues.trim();
            if matches!(end, End::No) {
                match closing {
                    Some(Closing::With(code, reason)) => {
                        break self.finish(&mut queues, code, reason, config.grace).await;
                    }
                    Some(Closing::Quietly) => {
                        let _ = tokio::time::timeout(config.grace, self.sink.flush()).await;
                        break End::Done;
                    }
                    None => {
                        if self.sink.flush().await.is_err() {
                            break End::Done;
                        }
                    }
                }
            }
            if self.delivered > 0 {
                Metrics::add(
                    &self.metrics.deliveries,
                    std::mem::take(&mut self.delivered),
                );
            }
            if !matches!(end, End::No) {
                break end;
            }
        };
        Metrics::add(&self.metrics.deliveries, self.delivered);
        if matches!(end, End::Cut) {
            Metrics::inc(&self.metrics.cuts);
            tracing::debug!(conn = self.out.id, "connection cut by fault injection");
        }
        self.out.shut();
    }

    /// Sends what is queued, then a close frame.
    async fn finish(
        &mut self,
        queues: &mut Queues,
        code: u16,
        reason: &'static str,
        grace: Duration,
    ) -> End {
        let _ = tokio::time::timeout(grace, async {
            self.out.take(queues);
            for f in queues.control.drain(..) {
                if self.sink.feed(Message::Text(f)).await.is_err() {
                    return;
                }
            }
            let _ = self
                .sink
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: Utf8Bytes::from_static(reason),
                })))
                .await;
        })
        .await;
        End::Done
    }

    async fn feed(&mut self, frame: Utf8Bytes, live: bool) -> End {
        if self.sink.feed(Message::Text(frame)).await.is_err() {
            return End::Done;
        }
        if live {
            self.delivered += 1;
        }
        self.sent += 1;
        let cut_every = self
            .injector
            .as_ref()
            .map_or(0, |i| i.spec().cut_every_frames);
        if cut_every > 0 && self.sent >= cut_every {
            let _ = self.sink.flush().await;
            return End::Cut;
        }
        End::No
    }

    async fn heads(&mut self, frame_limit: usize) -> End {
        if let Some(injector) = self.injector.as_mut() {
            // Frames held for reordering are released once the stream has
            // been idle for a whole heartbeat interval.
            if !self.live_since_tick && injector.has_held() {
                let mut out = Vec::new();
                injector.flush(&mut out);
                for f in out {
                    let end = self.feed(f, true).await;
                    if !matches!(end, End::No) {
                        return end;
                    }
                }
            }
        }
        self.live_since_tick = false;
        let heads: BTreeMap<StreamName, HeadEntry> = self
            .subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(name, hub)| {
                (
                    name.clone(),
                    HeadEntry {
                        seq: hub.head(),
                        epoch: hub.epoch(),
                    },
                )
            })
            .collect();
        // Sent also without subscriptions: a client that only publishes
        // learns from it that the connection is alive (section 5.5).
        let frame = ServerFrame::<()>::Head {
            heads,
            frame_limit: Some(frame_limit as u64),
        };
        self.feed(text(&frame), false).await
    }

    async fn drain(&mut self, queues: &mut Queues) -> End {
        while let Some(f) = queues.control.pop_front() {
            let end = self.feed(f, false).await;
            if !matches!(end, End::No) {
                return end;
            }
        }
        if !queues.live.is_empty() {
            self.live_since_tick = true;
        }
        if self.injector.is_none() {
            // Every frame is fed now and flushed once by the caller: one
            // write for all that queued since the last wake-up, and no
            // frame waits for another.
            while let Some(f) = queues.live.pop_front() {
                let end = self.feed(f, true).await;
                if !matches!(end, End::No) {
                    return end;
                }
            }
            return End::No;
        }
        let now = std::time::Instant::now();
        let mut ready = Vec::with_capacity(queues.live.len());
        match self.injector.as_mut() {
            None => ready.extend(queues.live.drain(..)),
            Some(injector) => {
                let before = injector.dropped();
                let mut out = Vec::new();
                for f in queues.live.drain(..) {
                    injector.push(f, &mut out);
                }
                Metrics::add(&self.metrics.fault_dropped, injector.dropped() - before);
                for f in out {
                    let delay = injector.delay_ms();
                    self.delayed.push(now, delay, f, &mut ready);
                }
            }
        }
        self.delayed.pop_due(now, &mut ready);
        for f in ready {
            let end = self.feed(f, true).await;
            if !matches!(end, End::No) {
                return end;
            }
        }
        End::No
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
