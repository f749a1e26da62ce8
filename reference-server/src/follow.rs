//! Following a log that other server instances append to (Redis).
//!
//! With a shared log, a stream's messages come from every instance, so no
//! instance's own appends tell it the whole order. Each instance therefore
//! runs one follower: a thread with its own Redis connection that reads
//! every stream this instance has open with one blocking `XREAD` and hands
//! what it finds to the stream's hub, which fans it out. Live messages thus
//! take a single path, in seq order, and an instance's own appends reach
//! its subscribers once, through the follower, like everybody else's. The
//! hub's head is what the follower last read: what Redis holds.
//!
//! Each entry carries its epoch. A Redis restarted without persistence
//! breaks the follower's connection; after reconnecting, the follower reads
//! every stream's meta again (creating it with a fresh epoch when it is
//! gone) and moves hubs whose epoch changed to the new epoch and head:
//! their `head` heartbeats then name the new epoch and clients reset.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use redis::{Connection, Script, Value};
use seqsync_core::protocol::ServerFrame;
use seqsync_core::{Epoch, Seq};
use serde_json::value::RawValue;

use crate::hub::{StreamHub, text};
use crate::log::redis::{Keys, connect, open_meta, open_script, parse_entry};

/// How long one `XREAD` blocks before the follower looks at new streams
/// and its stop flag (new streams also interrupt it at once).
const BLOCK_MS: u64 = 1_000;
/// Entries read per stream per `XREAD`: bounds the follower's memory.
const COUNT: usize = 1_024;
/// Longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

struct Followed {
    hub: Arc<StreamHub>,
    key: String,
    /// The seq of the last entry read.
    last: u64,
}

struct Shared {
    client: redis::Client,
    /// Streams to start following, with the seq to follow from.
    pending: Mutex<Vec<(Arc<StreamHub>, Seq)>>,
    changed: Condvar,
    stop: AtomicBool,
    /// Redis client id of the follower's connection while it may block.
    blocked_id: AtomicI64,
    /// A second connection, to interrupt the blocking read.
    control: Mutex<Option<Connection>>,
}

/// One instance's follower of a shared Redis log.
pub(crate) struct Follower {
    shared: Arc<Shared>,
}

impl Follower {
    /// Starts the follower's thread.
    pub(crate) fn start(client: redis::Client) -> std::io::Result<Follower> {
        let shared = Arc::new(Shared {
            client,
            pending: Mutex::new(Vec::new()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            blocked_id: AtomicI64::new(0),
            control: Mutex::new(None),
        });
        let run = shared.clone();
        std::thread::Builder::new()
            .name("seqsync-follow".into())
            .spawn(move || follow_loop(&run))?;
        Ok(Follower { shared })
    }

    /// Follows `hub`'s stream from the entry after `from` on.
    pub(crate) fn follow(&self, hub: Arc<StreamHub>, from: Seq) {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((hub, from));
        self.wake();
    }

    /// Stops the thread (it ends within one blocking read).
    pub(crate) fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.wake();
    }

    fn wake(&self) {
        self.shared.changed.notify_all();
        if self.shared.blocked_id.load(Ordering::SeqCst) == 0 {
            return;
        }
        let shared = self.shared.clone();
        let unblock = move || shared.unblock();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(unblock);
            }
            Err(_) => unblock(),
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
    }
}

impl Shared {
    /// Interrupts the follower's blocking `XREAD` (it answers as if timed
    /// out), so that new streams are read at once.
    fn unblock(&self) {
        let id = self.blocked_id.load(Ordering::SeqCst);
        if id == 0 {
            return;
        }
        let mut control = self.control.lock().unwrap_or_else(|p| p.into_inner());
        if control.is_none() {
            *control = connect(&self.client).ok();
        }
        if let Some(conn) = control.as_mut() {
            let done: redis::RedisResult<i64> =
                redis::cmd("CLIENT").arg("UNBLOCK").arg(id).query(conn);
            if done.is_err() {
                *control = None;
            }
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

fn follow_loop(shared: &Shared) {
    let open = open_script();
    let mut streams: Vec<Followed> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut conn: Option<Connection> = None;
    let mut resync = false;
    let mut backoff = Duration::from_millis(50);
    while !shared.stopped() {
        if conn.is_none() {
            match connect_follower(&shared.client) {
                Ok((c, id)) => {
                    shared.blocked_id.store(id, Ordering::SeqCst);
                    conn = Some(c);
                    backoff = Duration::from_millis(50);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "follower cannot reach redis; retrying");
                    wait(shared, backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else {
            continue;
        };
        let added: Vec<(Arc<StreamHub>, Seq)> =
            std::mem::take(&mut *shared.pending.lock().unwrap_or_else(|p| p.into_inner()));
        for (hub, from) in added {
            let key = Keys::of(&hub.name).log;
            if by_key.contains_key(&key) {
                continue;
            }
            by_key.insert(key.clone(), streams.len());
            streams.push(Followed {
                hub,
                key,
                last: from.get(),
            });
        }
        if resync {
            if let Err(e) = rebase_all(c, &open, &mut streams) {
                tracing::warn!(error = %e, "follower cannot read stream state");
                conn = None;
                continue;
            }
            resync = false;
        }
        if streams.is_empty() {
            wait(shared, Duration::from_millis(BLOCK_MS));
            continue;
        }
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(COUNT).arg("BLOCK").arg(BLOCK_MS);
        cmd.arg("STREAMS");
        for f in &streams {
            cmd.arg(&f.key);
        }
        for f in &streams {
            cmd.arg(format!("{}-0", f.last));
        }
        match cmd.query::<Value>(c) {
            Ok(reply) => {
                if let Err(e) = dispatch(c, &open, reply, &mut streams, &by_key) {
                    tracing::warn!(error = %e, "follower lost redis");
                    conn = None;
                    resync = true;
                }
            }
            Err(e) => {
                if !shared.stopped() {
                    tracing::warn!(error = %e, "follower lost redis");
                }
                shared.blocked_id.store(0, Ordering::SeqCst);
                conn = None;
                resync = true;
            }
        }
    }
}

/// Waits until `timeout` passes or the follower is woken.
fn wait(shared: &Shared, timeout: Duration) {
    let pending = shared.pending.lock().unwrap_or_else(|p| p.into_inner());
    if !pending.is_empty() || shared.stopped() {
        return;
    }
    let _ = shared.changed.wait_timeout(pending, timeout);
}

fn connect_follower(client: &redis::Client) -> redis::RedisResult<(Connection, i64)> {
    let mut conn = connect(client)?;
    conn.set_read_timeout(Some(
        Duration::from_millis(BLOCK_MS) + Duration::from_secs(5),
    ))?;
    let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut conn)?;
    Ok((conn, id))
}

/// Reads every followed stream's state again and moves the hubs whose log
/// has a new epoch.
fn rebase_all(
    conn: &mut Connection,
    open: &Script,
    streams: &mut [Followed],
) -> Result<(), crate::log::LogError> {
    for f in streams {
        rebase(conn, open, f)?;
    }
    Ok(())
}

/// Reads a followed stream's state again; whether the hub moved to a new
/// epoch.
fn rebase(
    conn: &mut Connection,
    open: &Script,
    f: &mut Followed,
) -> Result<bool, crate::log::LogError> {
    let info = open_meta(conn, open, &f.hub.name)?;
    if info.epoch == f.hub.epoch() {
        return Ok(false);
    }
    tracing::warn!(
        stream = %f.hub.name,
        old = f.hub.epoch().0,
        new = info.epoch.0,
        "stream log has a new epoch"
    );
    f.hub.rebase(info.epoch, info.head);
    f.last = info.head.get();
    Ok(true)
}

/// Fans out what one `XREAD` returned.
fn dispatch(
    conn: &mut Connection,
    open: &Script,
    reply: Value,
    streams: &mut [Followed],
    by_key: &HashMap<String, usize>,
) -> Result<(), crate::log::LogError> {
    let per_stream = match reply {
        Value::Nil => return Ok(()),
        Value::Array(items) => items
            .into_iter()
            .filter_map(|item| match item {
                Value::Array(pair) => {
                    let mut pair = pair.into_iter();
                    Some((pair.next()?, pair.next()?))
                }
                _ => None,
            })
            .collect::<Vec<_>>(),
        Value::Map(items) => items,
        _ => return Ok(()),
    };
    for (key, entries) in per_stream {
        let key = match &key {
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            Value::SimpleString(s) => s.clone(),
            _ => continue,
        };
        let Some(&i) = by_key.get(&key) else {
            continue;
        };
        let Value::Array(entries) = entries else {
            continue;
        };
        let f = &mut streams[i];
        let epoch = f.hub.epoch();
        let mut frames: Vec<Utf8Bytes> = Vec::with_capacity(entries.len());
        let mut top = None;
        let mut foreign = None;
        for e in &entries {
            let Some(entry) = parse_entry(e) else {
                tracing::warn!(stream = %f.hub.name, "unreadable stream entry skipped");
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
            let Some(data) = entry.data.and_then(|d| RawValue::from_string(d).ok()) else {
                tracing::warn!(stream = %f.hub.name, seq = entry.seq, "entry without a valid payload");
                continue;
            };
            frames.push(text(&ServerFrame::<&RawValue>::Msg {
                stream: f.hub.name.clone(),
                seq,
                epoch: Some(Epoch(epoch.0)),
                data: &data,
            }));
        }
        if let Some(top) = top {
            f.hub.deliver(&frames, top);
        }
        if let Some(seq) = foreign {
            if !rebase(conn, open, f)? {
                // The log's epoch is the hub's: the entry itself is wrong.
                tracing::warn!(stream = %f.hub.name, seq, "entry of another epoch skipped");
                f.last = seq;
            }
        }
    }
    Ok(())
}
