//! Streams' sequencing points and fan-out.
//!
//! Each stream has one [`StreamHub`] with one task, its sequencing point:
//! publishes of every connection go through its channel; the task takes
//! them in batches, appends each batch to the log in one step, and only
//! then updates the cached head, fans the new messages out to the
//! subscribers' live queues (each frame serialized once, shared by all) and
//! queues the acks. So an `ack` is never sent for a message the log does
//! not hold, and subscribers see messages in seq order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use seqsync_core::protocol::ServerFrame;
use seqsync_core::{Epoch, Seq, StreamName};
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::follow::Follower;
use crate::log::{Log, LogError, NewMessage, Payload};
use crate::metrics::Metrics;
use crate::outbound::Outbound;

/// Most publishes appended in one log call.
const MAX_BATCH: usize = 512;
/// Publishes waiting for a stream's sequencing point before publishers wait.
const CHANNEL: usize = 4096;

pub(crate) struct PublishReq {
    pub(crate) id: String,
    pub(crate) data: Payload,
    pub(crate) reply: Arc<Outbound>,
}

pub(crate) enum ActorMsg {
    Publish(PublishReq),
    Stop,
}

/// One stream: its sequencing point's inbox, cached head and subscribers.
pub(crate) struct StreamHub {
    pub(crate) name: StreamName,
    epoch: AtomicU64,
    head: AtomicU64,
    subscribers: Mutex<HashMap<u64, Arc<Outbound>>>,
    pub(crate) tx: mpsc::Sender<ActorMsg>,
    /// Live messages come from the follower of a shared log, not from
    /// this hub's own appends (see [`crate::follow`]).
    followed: bool,
}

impl StreamHub {
    /// The latest committed seq.
    pub(crate) fn head(&self) -> Seq {
        Seq::new(self.head.load(Ordering::SeqCst)).unwrap_or(Seq::MAX)
    }

    /// The epoch of the stream's log.
    pub(crate) fn epoch(&self) -> Epoch {
        Epoch(self.epoch.load(Ordering::SeqCst))
    }

    /// Advances the head to `head` and queues `frames` (in seq order) on
    /// every subscriber's live queue.
    pub(crate) fn deliver(&self, frames: &[Utf8Bytes], head: Seq) {
        self.head.store(head.get(), Ordering::SeqCst);
        let subscribers: Vec<Arc<Outbound>> = self
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for sub in subscribers {
            sub.push_live(frames);
        }
    }

    /// Moves to a new incarnation of the log (a shared log that was lost and
    /// re-created): heartbeats name the new epoch, so clients reset.
    pub(crate) fn rebase(&self, epoch: Epoch, head: Seq) {
        self.epoch.store(epoch.0, Ordering::SeqCst);
        self.head.store(head.get(), Ordering::SeqCst);
    }

    pub(crate) fn register(&self, out: &Arc<Outbound>) {
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(out.id, out.clone());
    }

    pub(crate) fn unregister(&self, id: u64) {
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }
}

/// Why a stream's hub could not be had.
#[derive(Debug)]
pub(crate) enum HubError {
    /// The log failed.
    Log(LogError),
    /// The server already holds `Limits::max_streams` streams.
    Full(usize),
}

impl From<LogError> for HubError {
    fn from(e: LogError) -> HubError {
        HubError::Log(e)
    }
}

/// Every stream that has been touched since start.
pub(crate) struct Hub {
    log: Arc<dyn Log>,
    metrics: Arc<Metrics>,
    max_streams: usize,
    streams: Mutex<HashMap<StreamName, Arc<StreamHub>>>,
    actors: Mutex<Vec<JoinHandle<()>>>,
    follower: Option<Follower>,
}

/// Runs a log call, off the async threads when the backend may block.
pub(crate) async fn call<T, F>(log: &Arc<dyn Log>, f: F) -> Result<T, LogError>
where
    T: Send + 'static,
    F: FnOnce(&dyn Log) -> Result<T, LogError> + Send + 'static,
{
    if log.is_blocking() {
        let log = log.clone();
        tokio::task::spawn_blocking(move || f(&*log))
            .await
            .map_err(|e| LogError::Aborted(e.to_string()))?
    } else {
        f(&**log)
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Hub {
    pub(crate) fn new(log: Arc<dyn Log>, metrics: Arc<Metrics>, max_streams: usize) -> Hub {
        Hub {
            log,
            metrics,
            max_streams,
            streams: Mutex::new(HashMap::new()),
            actors: Mutex::new(Vec::new()),
            follower: None,
        }
    }

    /// Takes live messages from `follower` (a shared log) instead of from
    /// the hubs' own appends.
    pub(crate) fn with_follower(mut self, follower: Follower) -> Hub {
        self.follower = Some(follower);
        self
    }

    pub(crate) fn log(&self) -> &Arc<dyn Log> {
        &self.log
    }

    /// The stream's hub, opening its log (and starting its sequencing point)
    /// on first use.
    pub(crate) async fn get(&self, name: &StreamName) -> Result<Arc<StreamHub>, HubError> {
        if let Some(hub) = self.lookup(name) {
            return Ok(hub);
        }
        let count = self.streams.lock().unwrap_or_else(|p| p.into_inner()).len();
        if count >= self.max_streams {
            return Err(HubError::Full(self.max_streams));
        }
        let stream = name.clone();
        let info = call(&self.log, move |log| log.open(&stream)).await?;
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hub) = streams.get(name) {
            return Ok(hub.clone());
        }
        let (tx, rx) = mpsc::channel(CHANNEL);
        let hub = Arc::new(StreamHub {
            name: name.clone(),
            epoch: AtomicU64::new(info.epoch.0),
            head: AtomicU64::new(info.head.get()),
            subscribers: Mutex::new(HashMap::new()),
            tx,
            followed: self.follower.is_some(),
        });
        streams.insert(name.clone(), hub.clone());
        if let Some(follower) = &self.follower {
            follower.follow(hub.clone(), info.head);
        }
        let task = tokio::spawn(run(hub.clone(), self.log.clone(), self.metrics.clone(), rx));
        self.actors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
        Ok(hub)
    }

    fn lookup(&self, name: &StreamName) -> Option<Arc<StreamHub>> {
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Lets every sequencing point finish what it was given, then stops it.
    pub(crate) async fn stop(&self) {
        if let Some(follower) = &self.follower {
            follower.stop();
        }
        let hubs: Vec<Arc<StreamHub>> = self
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for hub in hubs {
            let _ = hub.tx.send(ActorMsg::Stop).await;
        }
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.actors.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// The sequencing point of one stream.
async fn run(
    hub: Arc<StreamHub>,
    log: Arc<dyn Log>,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<ActorMsg>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let mut stop = false;
        match rx.recv().await {
            Some(ActorMsg::Publish(req)) => batch.push(req),
            Some(ActorMsg::Stop) | None => break,
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(ActorMsg::Publish(req)) => batch.push(req),
                Ok(ActorMsg::Stop) => {
                    stop = true;
                    break;
                }
                Err(_) => break,
            }
        }
        commit(&hub, &log, &metrics, &mut batch).await;
        if stop {
            break;
        }
    }
}

async fn commit(
    hub: &StreamHub,
    log: &Arc<dyn Log>,
    metrics: &Metrics,
    batch: &mut Vec<PublishReq>,
) {
    let mut messages = Vec::with_capacity(batch.len());
    let mut replies = Vec::with_capacity(batch.len());
    for req in batch.drain(..) {
        // The id goes back in a refusal's `ref`, so the client can retry it.
        replies.push((req.id.clone(), req.reply));
        messages.push(NewMessage {
            id: req.id,
            data: req.data,
        });
    }
    let stream = hub.name.clone();
    let result = call(log, move |log| {
        let appended = log.append(&stream, &messages, now_ms())?;
        Ok((appended, messages))
    })
    .await;
    let (appended, messages) = match result {
        Ok(ok) => ok,
        Err(e) => {
            tracing::error!(stream = %hub.name, error = %e, "append failed");
            for (id, reply) in replies {
                let frame =
                    error_frame("internal", "the log could not store the message", Some(&id));
                metrics.error("internal");
                reply.push_control(frame);
            }
            return;
        }
    };
    let mut frames = Vec::with_capacity(messages.len());
    let mut head = None;
    let mut stored = 0;
    for (m, a) in messages.iter().zip(&appended) {
        if a.duplicate {
            continue;
        }
        stored += 1;
        head = Some(a.seq);
        if hub.followed {
            // The follower fans out what the shared log holds.
            continue;
        }
        let frame = ServerFrame::<&RawValue>::Msg {
            stream: hub.name.clone(),
            seq: a.seq,
            epoch: Some(hub.epoch()),
            data: &m.data,
        };
        frames.push(text(&frame));
    }
    Metrics::add(&metrics.publishes, stored);
    Metrics::add(&metrics.publish_duplicates, appended.len() as u64 - stored);
    if let Some(head) = head.filter(|_| !hub.followed) {
        hub.deliver(&frames, head);
    }
    for (a, (id, reply)) in appended.iter().zip(replies) {
        let ack = ServerFrame::<&RawValue>::Ack {
            id,
            stream: hub.name.clone(),
            seq: a.seq,
        };
        reply.push_control(text(&ack));
    }
}

/// A frame as shared text.
pub(crate) fn text<D: serde::Serialize>(frame: &ServerFrame<D>) -> Utf8Bytes {
    match serde_json::to_string(frame) {
        Ok(s) => Utf8Bytes::from(s),
        Err(_) => error_frame("internal", "a frame could not be encoded", None),
    }
}

/// An `error` frame.
pub(crate) fn error_frame(code: &str, message: &str, reference: Option<&str>) -> Utf8Bytes {
    let frame = ServerFrame::<()>::Error {
        code: code.to_string(),
        message: message.to_string(),
        reference: reference.map(str::to_string),
    };
    serde_json::to_string(&frame)
        .map(Utf8Bytes::from)
        .unwrap_or_else(|_| {
            Utf8Bytes::from_static(
                r#"{"type":"error","code":"internal","message":"encoding failed"}"#,
            )
        })
}
