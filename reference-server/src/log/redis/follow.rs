//! Following a Redis log that other server instances append to.
//!
//! With a shared log, a stream's messages come from every instance, so no
//! instance's own appends tell it the whole order. Each instance therefore
//! runs one follower, which reads the streams that have subscribers on this
//! instance (and only those) and hands what it finds to each stream's
//! [`Sink`] (its hub), which fans it out. Live messages thus take a single
//! path, in seq order, and an instance's own appends reach its subscribers
//! once, through the follower, like everybody else's. The sink's head is
//! what the follower last read: what Redis holds.
//!
//! Two threads:
//! - the *listener* holds a Pub/Sub connection subscribed to
//!   [`NOTIFY_CHANNEL`], on which every append names its log key, and marks
//!   those streams to be read;
//! - the *reader* reads every marked stream that is followed, one `XREAD`
//!   per stream (never one over several streams: a cluster refuses keys of
//!   several slots in one command), sent as one pipeline (grouped per node
//!   in a cluster). It also reads every followed stream when following
//!   starts, after the listener (re)subscribes (a notification may have
//!   been missed), and every few seconds as a safety net; and it renews the
//!   epoch reservations of followed streams that are still empty.
//!
//! Each entry carries its epoch. A Redis restarted without persistence
//! breaks the follower's connections; after reconnecting, the reader reads
//! every stream's meta again (reserving a fresh epoch when it is gone) and
//! moves sinks whose epoch changed to the new epoch and head: their `head`
//! heartbeats then name the new epoch and clients reset.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use redis::{ConnectionLike, Script, Value};
use seqsync_core::{Epoch, Seq, StreamName};
use serde_json::value::RawValue;

use super::{
    Conn, Keys, NOTIFY_CHANNEL, RedisLog, Target, connect, parse_entry, reserve_meta,
    reserve_script,
};
use crate::log::{LogError, StoredMessage, StreamInfo, random_epoch};

/// Entries read per stream per `XREAD`: bounds the follower's memory.
const COUNT: usize = 1_024;
/// How often every followed stream is read even without a notification,
/// and empty streams' reservations are renewed.
const POLL: Duration = Duration::from_secs(5);
/// How long the listener blocks on its socket before it looks at the stop
/// flag.
const LISTEN_TIMEOUT: Duration = Duration::from_millis(250);
/// Longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Where a followed stream's messages go: the stream's hub.
pub(crate) trait Sink: Send + Sync + 'static {
    /// The stream.
    fn stream(&self) -> &StreamName;
    /// The epoch the sink is in.
    fn epoch(&self) -> Epoch;
    /// The last seq delivered (or reported by the log).
    fn head(&self) -> Seq;
    /// Messages read from the log, ascending, all in the sink's epoch; the
    /// head is now `head` (also when some entries had no readable payload).
    fn deliver(&self, messages: &[StoredMessage], head: Seq);
    /// The log is a new incarnation: move to its epoch and head.
    fn rebase(&self, info: StreamInfo);
}

struct Followed {
    sink: Arc<dyn Sink>,
    /// The seq of the last entry read.
    last: u64,
}

enum Change {
    Follow(Arc<dyn Sink>, Seq),
    Unfollow(StreamName),
}

#[derive(Default)]
struct Inbox {
    changes: Vec<Change>,
    /// Log keys appended to since the reader last looked.
    dirty: HashSet<String>,
    /// Read every followed stream (a notification may have been missed).
    read_all: bool,
}

struct Shared {
    target: Target,
    reservation_ttl_ms: u64,
    inbox: Mutex<Inbox>,
    changed: Condvar,
    stop: AtomicBool,
    /// Streams followed now.
    followed: AtomicUsize,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn inbox(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn mark(&self, f: impl FnOnce(&mut Inbox)) {
        f(&mut self.inbox());
        self.changed.notify_all();
    }

    /// Waits until `timeout` passes, the follower is stopped, or `ready`
    /// holds for the inbox; returns the inbox lock.
    fn wait(
        &self,
        timeout: Duration,
        ready: impl Fn(&Inbox) -> bool,
    ) -> std::sync::MutexGuard<'_, Inbox> {
        let deadline = Instant::now() + timeout;
        let mut inbox = self.inbox();
        while !self.stopped() && !ready(&inbox) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            inbox = match self.changed.wait_timeout(inbox, deadline - now) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
        inbox
    }
}

/// One instance's follower of a shared Redis log.
pub(crate) struct Follower {
    shared: Arc<Shared>,
}

impl Follower {
    /// Starts the follower's threads for `log`'s Redis.
    pub(crate) fn start(log: &RedisLog) -> std::io::Result<Follower> {
        let shared = Arc::new(Shared {
            target: log.target().clone(),
            reservation_ttl_ms: log.options().reservation_ttl_ms,
            inbox: Mutex::new(Inbox::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            followed: AtomicUsize::new(0),
        });
        let reader = shared.clone();
        std::thread::Builder::new()
            .name("seqsync-follow".into())
            .spawn(move || read_loop(&reader))?;
        let listener = shared.clone();
        std::thread::Builder::new()
            .name("seqsync-listen".into())
            .spawn(move || listen_loop(&listener))?;
        Ok(Follower { shared })
    }

    /// Follows `sink`'s stream from the entry after `from` on (from an
    /// earlier one, if it is already followed from there).
    pub(crate) fn follow(&self, sink: Arc<dyn Sink>, from: Seq) {
        self.shared
            .mark(|inbox| inbox.changes.push(Change::Follow(sink, from)));
    }

    /// Stops following `stream`; the follower lets go of its sink.
    pub(crate) fn unfollow(&self, stream: &StreamName) {
        self.shared
            .mark(|inbox| inbox.changes.push(Change::Unfollow(stream.clone())));
    }

    /// How many streams are followed now.
    pub(crate) fn followed(&self) -> usize {
        self.shared.followed.load(Ordering::Relaxed)
    }

    /// Stops the threads (within one socket timeout).
    pub(crate) fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Holds the Pub/Sub subscription, one node at a time.
fn listen_loop(shared: &Shared) {
    let nodes = shared.target.nodes();
    let mut node = 0;
    let mut backoff = Duration::from_millis(50);
    while !shared.stopped() {
        let Some(client) = nodes.get(node % nodes.len().max(1)) else {
            return;
        };
        node += 1;
        match listen(shared, client) {
            Ok(()) => return,
            Err(e) => {
                if !shared.stopped() {
                    tracing::warn!(error = %e, "follower lost its notifications; reconnecting");
                }
            }
        }
        drop(shared.wait(backoff, |_| false));
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Subscribes on one node and marks notified streams until the follower
/// stops (`Ok`) or the connection fails.
fn listen(shared: &Shared, client: &redis::Client) -> redis::RedisResult<()> {
    let mut conn = connect(client)?;
    conn.set_read_timeout(Some(LISTEN_TIMEOUT))?;
    let mut pubsub = conn.as_pubsub();
    pubsub.subscribe(NOTIFY_CHANNEL)?;
    // Appends while nobody listened were not heard: read everything once.
    shared.mark(|inbox| inbox.read_all = true);
    while !shared.stopped() {
        match pubsub.get_message() {
            Ok(msg) => {
                if let Ok(key) = msg.get_payload::<String>() {
                    shared.mark(|inbox| {
                        inbox.dirty.insert(key);
                    });
                }
            }
            Err(e) if e.is_timeout() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The reader: applies follow changes, reads marked streams, keeps
/// reservations and epochs right.
fn read_loop(shared: &Shared) {
    let script = reserve_script();
    let mut streams: HashMap<String, Followed> = HashMap::new();
    let mut conn: Option<Conn> = None;
    let mut rebase = false;
    let mut backoff = Duration::from_millis(50);
    let mut next_poll = Instant::now() + POLL;
    while !shared.stopped() {
        let (changes, mut dirty, mut read_all) = {
            let mut inbox = shared.wait(next_poll.saturating_duration_since(Instant::now()), |i| {
                !i.changes.is_empty() || !i.dirty.is_empty() || i.read_all
            });
            (
                std::mem::take(&mut inbox.changes),
                std::mem::take(&mut inbox.dirty),
                std::mem::take(&mut inbox.read_all),
            )
        };
        for change in changes {
            match change {
                Change::Follow(sink, from) => {
                    let key = Keys::of(sink.stream()).log;
                    let last = streams
                        .get(&key)
                        .map_or(from.get(), |f| f.last.min(from.get()));
                    streams.insert(key.clone(), Followed { sink, last });
                    dirty.insert(key);
                }
                Change::Unfollow(name) => {
                    streams.remove(&Keys::of(&name).log);
                }
            }
        }
        shared.followed.store(streams.len(), Ordering::Relaxed);
        let poll = Instant::now() >= next_poll;
        if poll {
            next_poll = Instant::now() + POLL;
            read_all = true;
        }
        if conn.is_none() {
            match shared.target.connect() {
                Ok(c) => {
                    conn = Some(c);
                    backoff = Duration::from_millis(50);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "follower cannot reach redis; retrying");
                    shared.mark(|inbox| {
                        inbox.dirty.extend(dirty);
                        inbox.read_all |= read_all;
                    });
                    drop(shared.wait(backoff, |_| false));
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else {
            continue;
        };
        let result = (|| {
            if rebase {
                for f in streams.values_mut() {
                    resync(c, &script, f, shared.reservation_ttl_ms)?;
                }
                rebase = false;
                read_all = true;
            } else if poll {
                // Keep the epoch of followed empty streams reserved.
                for f in streams.values_mut().filter(|f| f.sink.head() == Seq::ZERO) {
                    resync(c, &script, f, shared.reservation_ttl_ms)?;
                }
            }
            let keys: Vec<String> = if read_all {
                streams.keys().cloned().collect()
            } else {
                dirty
                    .into_iter()
                    .filter(|k| streams.contains_key(k))
                    .collect()
            };
            read(c, &script, shared, &keys, &mut streams)
        })();
        if let Err(e) = result {
            if !shared.stopped() {
                tracing::warn!(error = %e, "follower lost redis");
            }
            conn = None;
            rebase = true;
        }
    }
}

/// Reads `keys` (followed streams), one `XREAD` each, in one pipeline, and
/// hands what came to the sinks. Streams that gave a full batch are marked
/// to be read again at once.
fn read(
    conn: &mut Conn,
    script: &Script,
    shared: &Shared,
    keys: &[String],
    streams: &mut HashMap<String, Followed>,
) -> Result<(), LogError> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut commands = Vec::with_capacity(keys.len());
    for key in keys {
        let last = streams.get(key).map_or(0, |f| f.last);
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(COUNT)
            .arg("STREAMS")
            .arg(key)
            .arg(format!("{last}-0"));
        commands.push(cmd);
    }
    let replies: Vec<Value> = match conn {
        Conn::Single(c) => {
            let mut pipe = redis::pipe();
            for cmd in commands {
                pipe.add_command(cmd);
            }
            pipe.query(c)
        }
        Conn::Cluster(c) => {
            let mut pipe = redis::cluster::cluster_pipe();
            for cmd in commands {
                pipe.add_command(cmd);
            }
            pipe.query(c)
        }
    }
    .map_err(|e| LogError::Redis(e.to_string()))?;
    let mut again = Vec::new();
    for (key, reply) in keys.iter().zip(replies) {
        let Some(f) = streams.get_mut(key) else {
            continue;
        };
        let entries = entries_of(reply);
        if entries.len() >= COUNT {
            again.push(key.clone());
        }
        dispatch(conn, script, shared, f, &entries)?;
    }
    if !again.is_empty() {
        shared.mark(|inbox| inbox.dirty.extend(again));
    }
    Ok(())
}

/// The entries of one stream's `XREAD` reply (`[[key, [entry, ...]]]`, or a
/// map in RESP3); none for `nil`.
fn entries_of(reply: Value) -> Vec<Value> {
    let pair = match reply {
        Value::Array(mut streams) if !streams.is_empty() => streams.swap_remove(0),
        Value::Map(mut streams) if !streams.is_empty() => {
            let (_, entries) = streams.swap_remove(0);
            return match entries {
                Value::Array(entries) => entries,
                _ => Vec::new(),
            };
        }
        _ => return Vec::new(),
    };
    match pair {
        Value::Array(mut pair) if pair.len() == 2 => match pair.pop() {
            Some(Value::Array(entries)) => entries,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Hands one stream's new entries to its sink, in order, stopping at an
/// entry of another epoch (the log was re-created: the sink is rebased).
fn dispatch(
    conn: &mut Conn,
    script: &Script,
    shared: &Shared,
    f: &mut Followed,
    entries: &[Value],
) -> Result<(), LogError> {
    let epoch = f.sink.epoch();
    let mut messages = Vec::with_capacity(entries.len());
    let mut top = None;
    let mut foreign = None;
    for e in entries {
        let Some(entry) = parse_entry(e) else {
            tracing::warn!(stream = %f.sink.stream(), "unreadable stream entry skipped");
            continue;
        };
        if entry.seq <= f.last {
            continue;
        }
        if entry.epoch != Some(epoch.0) {
            foreign = Some(entry.seq);
            break;
        }
        f.last = entry.seq;
        let Ok(seq) = Seq::new(entry.seq) else {
            continue;
        };
        top = Some(seq);
        match entry.data.and_then(|d| RawValue::from_string(d).ok()) {
            Some(data) => messages.push(StoredMessage { seq, data }),
            None => {
                tracing::warn!(stream = %f.sink.stream(), seq = entry.seq, "entry without a valid payload");
            }
        }
    }
    if let Some(top) = top {
        f.sink.deliver(&messages, top);
    }
    if let Some(seq) = foreign {
        if !resync(conn, script, f, shared.reservation_ttl_ms)? {
            // The log's epoch is the sink's: the entry itself is wrong.
            tracing::warn!(stream = %f.sink.stream(), seq, "entry of another epoch skipped");
            f.last = seq;
        }
    }
    Ok(())
}

/// Reads a followed stream's meta again (reserving a fresh epoch for it
/// when it has none, renewing a reservation otherwise); moves the sink when
/// the log's epoch is not its own. Whether it moved.
///
/// The candidate is always fresh: a meta that vanished may have belonged
/// to a log with messages this instance never read, and its epoch must not
/// come back with other messages under the same seqs.
fn resync(
    conn: &mut impl ConnectionLike,
    script: &Script,
    f: &mut Followed,
    ttl_ms: u64,
) -> Result<bool, LogError> {
    let info = reserve_meta(conn, script, f.sink.stream(), random_epoch(), ttl_ms)?;
    if info.epoch == f.sink.epoch() {
        return Ok(false);
    }
    tracing::warn!(
        stream = %f.sink.stream(),
        old = f.sink.epoch().0,
        new = info.epoch.0,
        "stream log has a new epoch"
    );
    f.sink.rebase(info);
    f.last = info.head.get();
    Ok(true)
}
