//! Live streams: each one's hub (its sequencing point and its subscribers)
//! and the table that holds the hubs while they are in use.
//!
//! A [`StreamHub`] exists while a stream is live: while some connection
//! subscribes to it, a publish is on its way, or it was used recently. Its
//! sequencing point takes publishes of every connection in batches, appends
//! each batch to the log in one step, and only then updates the cached
//! head, fans the new messages out to the subscribers' live queues (each
//! frame serialized once, shared by all) and queues the acks. So an `ack`
//! is never sent for a message the log does not hold, and subscribers see
//! messages in seq order. A batch is committed by a task that runs only
//! while publishes wait: an idle stream costs no task.
//!
//! Only subscribing and publishing make a stream live; `history` and
//! `snapshot` read the log (and a live hub's epoch) without creating
//! anything. [`Hubs`] counts live streams against
//! [`Limits::max_streams`](crate::Limits::max_streams), and against the
//! budget of the address whose connection made each one live
//! ([`Limits::streams_per_address`](crate::Limits::streams_per_address),
//! at most half the table, so one host never takes it all). It lets go of
//! a hub nobody holds once it has been idle for
//! [`ServerConfig::stream_idle_ms`](crate::ServerConfig::stream_idle_ms),
//! or at once when the table (or the address's budget) is full; a stream
//! read again later gets a new hub from the log's state. A table that
//! emptied gives its memory back.
//!
//! With a shared log (Redis), live messages come from the log's follower
//! (a hub is its [`Sink`]) and not from the hub's own appends; a stream is
//! followed while it has subscribers here.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use seqsync_core::protocol::{ErrorCode, ServerFrame};
use seqsync_core::{Epoch, Seq, StreamName};
use serde_json::value::RawValue;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::frame::{error_frame, text};
use crate::log::redis::follow::{Follower, Sink};
use crate::log::{
    Batch, Log, LogError, NewMessage, Payload, StoredMessage, StreamInfo, call, now_ms,
};
use crate::metrics::Metrics;
use crate::outbound::Outbound;

/// Most publishes appended in one log call.
const MAX_BATCH: usize = 512;
/// Publishes waiting for a stream's sequencing point before publishers wait.
const QUEUE: usize = 4096;
/// How long a full table in which every stream is held is taken as full
/// without another search, in milliseconds.
const FULL_RETRY_MS: u64 = 100;

/// The streams one connection subscribes to, with their hubs.
pub(crate) type Subscriptions = Arc<Mutex<HashMap<StreamName, Arc<StreamHub>>>>;

/// A publish on its way to the log.
pub(crate) struct PublishReq {
    /// Its idempotency id.
    pub(crate) id: String,
    /// Its payload.
    pub(crate) data: Payload,
    /// Where its `ack` (or refusal) goes.
    pub(crate) reply: Arc<Outbound>,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<PublishReq>,
    /// A task is committing this queue.
    committing: bool,
}

/// One live stream: its sequencing point's queue, cached epoch and head,
/// and subscribers.
pub(crate) struct StreamHub {
    name: StreamName,
    /// The address whose connection made the stream live: its budget pays
    /// for the hub until the hub is let go.
    owner: Option<IpAddr>,
    epoch: AtomicU64,
    head: AtomicU64,
    subscribers: Mutex<HashMap<u64, Arc<Outbound>>>,
    queue: Mutex<Queue>,
    /// Wakes publishers waiting for room in `queue`.
    space: Notify,
    /// When it was last used, in milliseconds of [`Hubs`]' clock.
    used_ms: AtomicU64,
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

    /// Queues `frames` (in seq order) on every subscriber's live queue; the
    /// head is now at least `head`.
    fn fan_out(&self, frames: &[Utf8Bytes], head: Seq) {
        self.head.fetch_max(head.get(), Ordering::SeqCst);
        // Under the subscribers' lock, without a copy of the list per
        // batch: a queue push takes only its connection's own lock, which
        // is never held while this one is wanted.
        let subscribers = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        for sub in subscribers.values() {
            sub.push_live(frames);
        }
    }

    fn msg_frame(&self, seq: Seq, data: &RawValue) -> Utf8Bytes {
        text(&ServerFrame::<&RawValue>::Msg {
            stream: self.name.clone(),
            seq,
            epoch: Some(self.epoch()),
            data,
        })
    }

    /// Registers a subscriber: from now on every message fanned out reaches
    /// its live queue.
    pub(crate) fn register(&self, out: &Arc<Outbound>) {
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(out.id, out.clone());
    }
}

impl Sink for StreamHub {
    fn stream(&self) -> &StreamName {
        &self.name
    }

    fn epoch(&self) -> Epoch {
        StreamHub::epoch(self)
    }

    fn head(&self) -> Seq {
        StreamHub::head(self)
    }

    fn deliver(&self, messages: &[StoredMessage], head: Seq) {
        let frames: Vec<Utf8Bytes> = messages
            .iter()
            .map(|m| self.msg_frame(m.seq, &m.data))
            .collect();
        self.fan_out(&frames, head);
    }

    fn rebase(&self, info: StreamInfo) {
        self.epoch.store(info.epoch.0, Ordering::SeqCst);
        self.head.store(info.head.get(), Ordering::SeqCst);
    }
}

/// Why a stream's hub could not be had.
#[derive(Debug)]
pub(crate) enum HubError {
    /// The log failed.
    Log(LogError),
    /// The server holds `Limits::max_streams` live streams already.
    Full(usize),
    /// The client's address holds its budget of live streams already.
    AddressFull(usize),
    /// The server is shutting down.
    Stopping,
}

impl From<LogError> for HubError {
    fn from(e: LogError) -> HubError {
        HubError::Log(e)
    }
}

impl HubError {
    /// The `error` code and message a request refused with this gets.
    pub(crate) fn answer(&self) -> (ErrorCode, String) {
        match self {
            HubError::Log(e) => {
                tracing::error!(error = %e, "log error");
                (ErrorCode::Internal, "the log failed to answer".into())
            }
            HubError::Full(limit) => (
                ErrorCode::TooManyStreams,
                format!(
                    "the server holds its limit of {limit} live streams; no other stream can be opened now"
                ),
            ),
            HubError::AddressFull(limit) => (
                ErrorCode::TooManyStreams,
                format!(
                    "this address holds its limit of {limit} live streams; unsubscribe from some first"
                ),
            ),
            HubError::Stopping => (ErrorCode::Internal, "the server is shutting down".into()),
        }
    }
}

/// Counts the commit tasks running, so that shutdown can wait for them.
#[derive(Default)]
struct Commits {
    running: AtomicUsize,
    done: Notify,
}

struct Running(Arc<Commits>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.done.notify_waiters();
        }
    }
}

/// What one address holds of the table.
#[derive(Default)]
struct Held {
    /// Live streams its connections made live.
    streams: usize,
    /// Until when (on the hubs' clock) its full budget is taken as full
    /// without another search, because the last search freed nothing.
    full_until_ms: u64,
}

/// The live streams, and how many of them each address made live.
#[derive(Default)]
struct Table {
    hubs: HashMap<StreamName, Arc<StreamHub>>,
    by_address: HashMap<IpAddr, Held>,
}

impl Table {
    /// Live streams `owner` holds.
    fn held(&self, owner: Option<IpAddr>) -> usize {
        owner
            .and_then(|a| self.by_address.get(&a))
            .map_or(0, |h| h.streams)
    }

    fn insert(&mut self, hub: Arc<StreamHub>) {
        if let Some(owner) = hub.owner {
            self.by_address.entry(owner).or_default().streams += 1;
        }
        self.hubs.insert(hub.name.clone(), hub);
    }

    /// Lets go of the hubs `gone` picks; returns how many.
    fn remove_where(&mut self, mut gone: impl FnMut(&Arc<StreamHub>) -> bool) -> usize {
        let before = self.hubs.len();
        let by_address = &mut self.by_address;
        self.hubs.retain(|_, hub| {
            if !gone(hub) {
                return true;
            }
            if let Some(owner) = hub.owner {
                if let Some(held) = by_address.get_mut(&owner) {
                    held.streams = held.streams.saturating_sub(1);
                    if held.streams == 0 {
                        by_address.remove(&owner);
                    }
                }
            }
            false
        });
        let removed = before - self.hubs.len();
        if removed > 0 {
            shrink(&mut self.hubs);
            shrink(&mut self.by_address);
        }
        removed
    }
}

/// Gives back the room of a map that holds less than a quarter of it: a
/// flood of streams must not keep its table's memory once it is gone.
fn shrink<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 64 && map.len() < map.capacity() / 4 {
        map.shrink_to(map.len() * 2);
    }
}

/// The live streams.
pub(crate) struct Hubs {
    log: Arc<dyn Log>,
    metrics: Arc<Metrics>,
    max_streams: usize,
    per_address: usize,
    idle_ms: u64,
    streams: Mutex<Table>,
    follower: Option<Follower>,
    clock: Instant,
    /// Until when (on `clock`) a full table is not searched again for
    /// streams to let go, because the last search found none.
    full_until_ms: AtomicU64,
    commits: Arc<Commits>,
    stopping: AtomicBool,
}

impl Hubs {
    /// No live stream yet; at most `max_streams` at once, `per_address` of
    /// them made live by one address, each let go after `idle_ms` unused.
    /// With a `follower`, live messages come from it.
    pub(crate) fn new(
        log: Arc<dyn Log>,
        metrics: Arc<Metrics>,
        max_streams: usize,
        per_address: usize,
        idle_ms: u64,
        follower: Option<Follower>,
    ) -> Hubs {
        Hubs {
            log,
            metrics,
            max_streams: max_streams.max(1),
            per_address: per_address.max(1),
            idle_ms,
            streams: Mutex::new(Table::default()),
            follower,
            clock: Instant::now(),
            full_until_ms: AtomicU64::new(0),
            commits: Arc::new(Commits::default()),
            stopping: AtomicBool::new(false),
        }
    }

    /// The log.
    pub(crate) fn log(&self) -> &Arc<dyn Log> {
        &self.log
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    /// The hub of `name` when the stream is live; creates nothing.
    pub(crate) fn find(&self, name: &StreamName) -> Option<Arc<StreamHub>> {
        let hub = self.lock().hubs.get(name).cloned()?;
        hub.used_ms.store(self.now_ms(), Ordering::Relaxed);
        Some(hub)
    }

    /// Live streams now.
    pub(crate) fn live(&self) -> usize {
        self.lock().hubs.len()
    }

    /// Streams a shared log's follower reads now.
    pub(crate) fn followed(&self) -> usize {
        self.follower.as_ref().map_or(0, Follower::followed)
    }

    /// The hub of `name`, making the stream live (with the log's state, or
    /// the epoch reserved for it when it has no log yet) on the budget of
    /// `owner`, the address of the connection that asks.
    pub(crate) async fn open(
        &self,
        name: &StreamName,
        owner: Option<IpAddr>,
    ) -> Result<Arc<StreamHub>, HubError> {
        if let Some(hub) = self.find(name) {
            return Ok(hub);
        }
        if self.stopping.load(Ordering::SeqCst) {
            return Err(HubError::Stopping);
        }
        if let Some(owner) = owner {
            if !self.address_has_room(owner) {
                return Err(HubError::AddressFull(self.per_address));
            }
        }
        if self.live() >= self.max_streams && !self.make_room() {
            return Err(HubError::Full(self.max_streams));
        }
        let stream = name.clone();
        let info = call(&self.log, move |log| log.reserve(&stream)).await?;
        let mut table = self.lock();
        if let Some(hub) = table.hubs.get(name) {
            return Ok(hub.clone());
        }
        if table.hubs.len() >= self.max_streams {
            return Err(HubError::Full(self.max_streams));
        }
        if table.held(owner) >= self.per_address {
            return Err(HubError::AddressFull(self.per_address));
        }
        let hub = Arc::new(StreamHub {
            name: name.clone(),
            owner,
            epoch: AtomicU64::new(info.epoch.0),
            head: AtomicU64::new(info.head.get()),
            subscribers: Mutex::new(HashMap::new()),
            queue: Mutex::new(Queue::default()),
            space: Notify::new(),
            used_ms: AtomicU64::new(self.now_ms()),
        });
        table.insert(hub.clone());
        Metrics::set(&self.metrics.streams, table.hubs.len() as u64);
        Ok(hub)
    }

    /// Whether `owner` may make one more stream live: under its budget, or
    /// at it with streams nobody holds any more, which are let go at once.
    /// As for the whole table, a search that frees nothing is not repeated
    /// for a while.
    fn address_has_room(&self, owner: IpAddr) -> bool {
        let now = self.now_ms();
        let mut table = self.lock();
        match table.by_address.get(&owner) {
            None => return true,
            Some(held) if held.streams < self.per_address => return true,
            Some(held) if now < held.full_until_ms => return false,
            Some(_) => {}
        }
        let freed =
            table.remove_where(|hub| hub.owner == Some(owner) && Arc::strong_count(hub) == 1);
        Metrics::set(&self.metrics.streams, table.hubs.len() as u64);
        Metrics::add(&self.metrics.streams_evicted, freed as u64);
        if freed > 0 {
            return true;
        }
        if let Some(held) = table.by_address.get_mut(&owner) {
            held.full_until_ms = now + FULL_RETRY_MS;
        }
        false
    }

    /// Lets go of every hub nobody holds, to make room in a full table.
    /// A search that finds none is not repeated for a while: with every
    /// stream held, requests for new ones are refused without a scan each.
    fn make_room(&self) -> bool {
        let now = self.now_ms();
        if now < self.full_until_ms.load(Ordering::Relaxed) {
            return false;
        }
        if self.evict(0) > 0 {
            return true;
        }
        self.full_until_ms
            .store(now + FULL_RETRY_MS, Ordering::Relaxed);
        false
    }

    /// Lets go of the hubs nobody holds (no subscriber, no request or
    /// commit under way, not followed) that were last used at least
    /// `min_idle_ms` ago; returns how many.
    pub(crate) fn evict(&self, min_idle_ms: u64) -> usize {
        let now = self.now_ms();
        let mut table = self.lock();
        // The table's own reference is the only one: no connection, task
        // or follower can reach the hub, and a new one can only be had
        // through this lock.
        let evicted = table.remove_where(|hub| {
            Arc::strong_count(hub) == 1
                && now.saturating_sub(hub.used_ms.load(Ordering::Relaxed)) >= min_idle_ms
        });
        Metrics::set(&self.metrics.streams, table.hubs.len() as u64);
        Metrics::add(&self.metrics.streams_evicted, evicted as u64);
        drop(table);
        if evicted >= crate::memory::RELEASE_AFTER {
            crate::memory::release_free_memory();
        }
        evicted
    }

    /// Lets go of the hubs idle for the configured time.
    pub(crate) fn sweep(&self) -> usize {
        self.evict(self.idle_ms)
    }

    /// After `out` registered with `hub` and read the log's state (`head`):
    /// makes sure a shared log's follower delivers everything after `head`.
    pub(crate) fn follow(&self, hub: &Arc<StreamHub>, out: &Arc<Outbound>, head: Seq) {
        let Some(follower) = &self.follower else {
            return;
        };
        // Under the subscribers' lock, so that follow and unfollow reach
        // the follower in the order the subscribers came and went.
        let subscribers = hub.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        if subscribers.contains_key(&out.id) {
            hub.head.fetch_max(head.get(), Ordering::SeqCst);
            follower.follow(hub.clone(), head);
        }
    }

    /// Removes subscriber `id` from `hub`; the last one out stops the
    /// follower's reading of the stream.
    pub(crate) fn unregister(&self, hub: &StreamHub, id: u64) {
        let mut subscribers = hub.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        if subscribers.remove(&id).is_some() && subscribers.is_empty() {
            if let Some(follower) = &self.follower {
                follower.unfollow(&hub.name);
            }
        }
        hub.used_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Queues a publish on `hub`'s sequencing point, waiting while its
    /// queue is full.
    pub(crate) async fn publish(
        &self,
        hub: &Arc<StreamHub>,
        req: PublishReq,
    ) -> Result<(), HubError> {
        let mut req = Some(req);
        loop {
            let space = hub.space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            {
                if self.stopping.load(Ordering::SeqCst) {
                    return Err(HubError::Stopping);
                }
                let mut queue = hub.queue.lock().unwrap_or_else(|p| p.into_inner());
                if queue.pending.len() < QUEUE {
                    if let Some(req) = req.take() {
                        queue.pending.push_back(req);
                    }
                    if !queue.committing {
                        queue.committing = true;
                        self.commits.running.fetch_add(1, Ordering::SeqCst);
                        let running = Running(self.commits.clone());
                        let followed = self.follower.is_some();
                        tokio::spawn(commit_loop(
                            hub.clone(),
                            self.log.clone(),
                            self.metrics.clone(),
                            followed,
                            running,
                        ));
                    }
                    return Ok(());
                }
            }
            space.await;
        }
    }

    /// Refuses new publishes, lets every queued one be committed, and stops
    /// the follower.
    pub(crate) async fn stop(&self, grace: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        let drained = async {
            loop {
                let done = self.commits.done.notified();
                tokio::pin!(done);
                done.as_mut().enable();
                if self.commits.running.load(Ordering::SeqCst) == 0 {
                    return;
                }
                done.await;
            }
        };
        let _ = tokio::time::timeout(grace, drained).await;
        if let Some(follower) = &self.follower {
            follower.stop();
        }
    }
}

/// Commits `hub`'s queued publishes, a batch at a time, until none wait.
async fn commit_loop(
    hub: Arc<StreamHub>,
    log: Arc<dyn Log>,
    metrics: Arc<Metrics>,
    followed: bool,
    _running: Running,
) {
    loop {
        let batch: Vec<PublishReq> = {
            let mut queue = hub.queue.lock().unwrap_or_else(|p| p.into_inner());
            if queue.pending.is_empty() {
                queue.committing = false;
                queue.pending.shrink_to(0);
                return;
            }
            let n = queue.pending.len().min(MAX_BATCH);
            queue.pending.drain(..n).collect()
        };
        hub.space.notify_waiters();
        commit(&hub, &log, &metrics, followed, batch).await;
    }
}

async fn commit(
    hub: &StreamHub,
    log: &Arc<dyn Log>,
    metrics: &Metrics,
    followed: bool,
    batch: Vec<PublishReq>,
) {
    let mut messages = Vec::with_capacity(batch.len());
    let mut replies = Vec::with_capacity(batch.len());
    for req in batch {
        // The id goes back in a refusal's `ref`, so the client can retry it.
        replies.push((req.id.clone(), req.reply));
        messages.push(NewMessage {
            id: req.id,
            data: req.data,
        });
    }
    let stream = hub.name.clone();
    let epoch = hub.epoch();
    let result = call(log, move |log| {
        let batch = Batch {
            epoch,
            now_ms: now_ms(),
            messages: &messages,
        };
        let appended = log.append(&stream, &batch)?;
        Ok((appended, messages))
    })
    .await;
    let (appended, messages) = match result {
        Ok(ok) => ok,
        Err(e) => {
            tracing::error!(stream = %hub.name, error = %e, "append failed");
            for (id, reply) in replies {
                metrics.error(ErrorCode::Internal);
                reply.push_control(error_frame(
                    ErrorCode::Internal,
                    "the log could not store the message",
                    Some(&id),
                ));
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
        if !followed {
            frames.push(hub.msg_frame(a.seq, &m.data));
        }
    }
    Metrics::add(&metrics.publishes, stored);
    Metrics::add(&metrics.publish_duplicates, appended.len() as u64 - stored);
    // With a shared log, the follower fans out what the log holds.
    if let Some(head) = head.filter(|_| !followed) {
        hub.fan_out(&frames, head);
    }
    for (a, (id, reply)) in appended.iter().zip(replies) {
        let ack = ServerFrame::<()>::Ack {
            id,
            stream: hub.name.clone(),
            seq: a.seq,
        };
        reply.push_control(text(&ack));
    }
}
