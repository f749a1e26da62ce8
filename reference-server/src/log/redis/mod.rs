//! The Redis log: one Redis, or a Redis Cluster, shared by any number of
//! server instances.
//!
//! Per stream, three kinds of keys, all with the stream's name as the hash
//! tag so that they live in one cluster slot and one script may touch them
//! all:
//!
//! - `seqsync:{<stream>}:log`: a Redis Stream; the message of seq `n` is the
//!   entry with id `n-0` and fields `e` (epoch), `t` (append time, Unix
//!   milliseconds) and `d` (payload JSON);
//! - `seqsync:{<stream>}:meta`: a hash with `epoch`, `head` and `earliest`;
//! - `seqsync:{<stream>}:id:<publish id>`: `<epoch>:<seq>` of a publish id,
//!   expiring after [`IdWindow::ttl_ms`].
//!
//! Seqs are assigned by one Lua script per batch, which checks each publish
//! id, increments the head and appends with an explicit entry id: Redis runs
//! scripts one at a time (per shard), so two instances can never hand out
//! the same seq. The epoch is drawn at random by whoever first finds the
//! stream without one. A Redis that restarts without persistence has lost
//! every key: the next use draws a new epoch, so clients are reset rather
//! than shown seqs of another log.
//!
//! Reading creates no log. A subscriber of an empty stream, or a snapshot
//! of one, *reserves* its epoch: the meta is written with an expiry
//! ([`RedisOptions::reservation_ttl_ms`]), renewed while some instance
//! follows the stream, and made permanent by the first append; so every
//! instance names the same epoch for it, on every read, and names nobody
//! published to vanish on their own.
//!
//! After each append the script publishes the log key on the channel
//! [`NOTIFY_CHANNEL`]; each instance's [`follow::Follower`] reads the
//! streams it follows when told, one `XREAD` per stream, grouped per node
//! (a cluster refuses one `XREAD` over keys of several slots).
//!
//! In a stream name, `%` and `}` are written `%25` and `%7D` so that the
//! hash tag ends where the name ends and no two streams share a key.

pub(crate) mod follow;

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{Connection, ConnectionLike, Script, Value};
use seqsync_core::{Epoch, MAX_SEQ, StreamName};
use serde_json::value::RawValue;

use super::{
    Appended, Batch, IdWindow, Log, LogError, LogResult, Page, ReadResult, Retention,
    StoredMessage, StreamInfo, random_epoch, seq,
};

/// Connections kept per log (calls beyond it wait for one).
const POOL: usize = 4;
/// Entries read per step while walking a stream for age retention.
const TRIM_STEP: usize = 1024;
/// How long connecting and each command may take before the call fails.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The Pub/Sub channel on which every append names the log key it wrote.
pub const NOTIFY_CHANNEL: &str = "seqsync:appended";

/// KEYS: log, meta. ARGV: candidate epoch, reservation ttl (ms).
/// The stream's meta, reserving it (with an expiry) in the candidate epoch
/// when it has none, and renewing a reservation not yet appended to.
/// Answers epoch, head, earliest.
const RESERVE: &str = r"
if redis.call('HSETNX', KEYS[2], 'epoch', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], 'head', '0', 'earliest', '1')
  redis.call('DEL', KEYS[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
elseif redis.call('PTTL', KEYS[2]) > 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return redis.call('HMGET', KEYS[2], 'epoch', 'head', 'earliest')
";

/// KEYS: log, meta, one id key per message. ARGV: candidate epoch, now_ms,
/// id ttl (ms), id window (count), max count (0: none), then one payload
/// per message. Answers one integer per message: its seq, negated when the
/// id was known. An id key holds `<epoch>:<seq>`: ids of an older
/// incarnation count as unknown, and so do ids more than the window's
/// count behind the head.
const APPEND: &str = r"
local log, meta = KEYS[1], KEYS[2]
if redis.call('HSETNX', meta, 'epoch', ARGV[1]) == 1 then
  redis.call('HSET', meta, 'head', '0', 'earliest', '1')
  redis.call('DEL', log)
end
redis.call('PERSIST', meta)
local m = redis.call('HMGET', meta, 'epoch', 'head', 'earliest')
local epoch, head, earliest = m[1], tonumber(m[2]), tonumber(m[3])
if not head or not earliest then
  return redis.error_reply('ERR seqsync: stream meta is corrupt')
end
local n = #ARGV - 5
if head + n > 9007199254740991 then
  return redis.error_reply('ERR seqsync: seq limit reached')
end
local window = tonumber(ARGV[4])
local out = {}
for i = 1, n do
  local idkey = KEYS[2 + i]
  local known = redis.call('GET', idkey)
  local known_epoch, known_seq = nil, nil
  if known then
    known_epoch, known_seq = string.match(known, '^(%d+):(%d+)$')
  end
  if known_epoch == epoch and known_seq and tonumber(known_seq) + window > head then
    out[i] = -tonumber(known_seq)
  else
    head = head + 1
    local s = string.format('%d', head)
    redis.call('XADD', log, s .. '-0', 'e', epoch, 't', ARGV[2], 'd', ARGV[5 + i])
    redis.call('SET', idkey, epoch .. ':' .. s, 'PX', ARGV[3])
    out[i] = head
  end
end
local max = tonumber(ARGV[5])
if max > 0 and head - max + 1 > earliest then
  earliest = head - max + 1
  redis.call('XTRIM', log, 'MINID', string.format('%d-0', earliest))
end
redis.call('HSET', meta, 'head', string.format('%d', head), 'earliest', string.format('%d', earliest))
redis.call('PUBLISH', 'seqsync:appended', log)
return out
";

/// KEYS: log, meta. ARGV: the last expired seq. Removes the prefix up to it.
const TRIM_TO: &str = r"
local earliest = tonumber(redis.call('HGET', KEYS[2], 'earliest'))
local keep = tonumber(ARGV[1]) + 1
if not earliest or keep <= earliest then
  return 0
end
redis.call('HSET', KEYS[2], 'earliest', string.format('%d', keep))
return redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-0', keep))
";

/// Where the log's Redis is: one server, or the nodes of a cluster.
#[derive(Clone)]
pub(crate) enum Target {
    /// One Redis server.
    Single(redis::Client),
    /// A Redis Cluster, with the nodes to start from.
    Cluster {
        /// The cluster's client.
        client: ClusterClient,
        /// The node URLs given, for connections that must name one node.
        nodes: Vec<redis::Client>,
    },
}

impl Target {
    fn open(urls: &[&str]) -> redis::RedisResult<Target> {
        match urls {
            [url] => Ok(Target::Single(redis::Client::open(*url)?)),
            _ => Ok(Target::Cluster {
                client: ClusterClient::builder(urls.iter().copied())
                    .connection_timeout(IO_TIMEOUT)
                    .response_timeout(IO_TIMEOUT)
                    .build()?,
                nodes: urls
                    .iter()
                    .map(|u| redis::Client::open(*u))
                    .collect::<Result<_, _>>()?,
            }),
        }
    }

    /// A connection for commands (routed by key in a cluster).
    pub(crate) fn connect(&self) -> redis::RedisResult<Conn> {
        match self {
            Target::Single(client) => connect(client).map(Conn::Single),
            Target::Cluster { client, .. } => {
                let conn = client.get_connection()?;
                conn.set_read_timeout(Some(IO_TIMEOUT))?;
                conn.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(Conn::Cluster(Box::new(conn)))
            }
        }
    }

    /// The single servers a Pub/Sub connection may use, in order of
    /// preference (in a cluster, a message published on any node reaches
    /// subscribers on every node).
    pub(crate) fn nodes(&self) -> Vec<redis::Client> {
        match self {
            Target::Single(client) => vec![client.clone()],
            Target::Cluster { nodes, .. } => nodes.clone(),
        }
    }

    fn is_cluster(&self) -> bool {
        matches!(self, Target::Cluster { .. })
    }
}

/// A connection to one Redis or to a cluster.
pub(crate) enum Conn {
    /// To one server.
    Single(Connection),
    /// To a cluster.
    Cluster(Box<ClusterConnection>),
}

impl ConnectionLike for Conn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Conn::Single(c) => c.check_connection(),
            Conn::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Conn::Single(c) => c.is_open(),
            Conn::Cluster(c) => c.is_open(),
        }
    }
}

/// Settings of a [`RedisLog`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// Retention per stream.
    pub retention: Retention,
    /// How long and for how many messages a publish id is remembered: a
    /// retry within both gets the first seq back.
    pub ids: IdWindow,
    /// How long the epoch of an empty stream stays reserved after the last
    /// instance that follows it renewed it, in milliseconds.
    pub reservation_ttl_ms: u64,
}

impl Default for RedisOptions {
    fn default() -> RedisOptions {
        RedisOptions {
            retention: Retention::default(),
            ids: IdWindow::default(),
            reservation_ttl_ms: 600_000,
        }
    }
}

/// A [`Log`] in Redis Streams, shared by every server instance that uses the
/// same Redis (or Redis Cluster).
pub struct RedisLog {
    target: Target,
    options: RedisOptions,
    pool: Vec<Mutex<Option<Conn>>>,
    next: AtomicUsize,
    /// Streams this instance has appended to or reserved: the ones its age
    /// retention sweeps.
    touched: Mutex<HashSet<StreamName>>,
    reserve_script: Script,
    append: Script,
    trim_to: Script,
}

impl std::fmt::Debug for RedisLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLog")
            .field("cluster", &self.target.is_cluster())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The keys of one stream.
pub(crate) struct Keys {
    pub(crate) log: String,
    pub(crate) meta: String,
    prefix: String,
}

impl Keys {
    pub(crate) fn of(stream: &StreamName) -> Keys {
        let mut tag = String::with_capacity(stream.as_str().len());
        for c in stream.as_str().chars() {
            match c {
                '%' => tag.push_str("%25"),
                '}' => tag.push_str("%7D"),
                c => tag.push(c),
            }
        }
        let prefix = format!("seqsync:{{{tag}}}:");
        Keys {
            log: format!("{prefix}log"),
            meta: format!("{prefix}meta"),
            prefix,
        }
    }

    fn id(&self, id: &str) -> String {
        format!("{}id:{id}", self.prefix)
    }
}

fn redis_err(e: redis::RedisError) -> LogError {
    LogError::Redis(e.to_string())
}

fn corrupt(stream: &StreamName, reason: impl Into<String>) -> LogError {
    LogError::Corrupt {
        stream: stream.to_string(),
        reason: reason.into(),
    }
}

fn as_text(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => as_text(other).and_then(|s| s.parse().ok()),
    }
}

/// A stream entry as the log stores it.
pub(crate) struct Entry {
    pub(crate) seq: u64,
    pub(crate) epoch: Option<u64>,
    pub(crate) ts_ms: Option<u64>,
    pub(crate) data: Option<String>,
}

/// Parses one `[id, [field, value, ...]]` entry.
pub(crate) fn parse_entry(v: &Value) -> Option<Entry> {
    let Value::Array(parts) = v else {
        return None;
    };
    let [id, Value::Array(fields)] = parts.as_slice() else {
        return None;
    };
    let seq = as_text(id)?.strip_suffix("-0")?.parse().ok()?;
    let mut entry = Entry {
        seq,
        epoch: None,
        ts_ms: None,
        data: None,
    };
    for pair in fields.chunks_exact(2) {
        match as_text(&pair[0]) {
            Some("e") => entry.epoch = as_u64(&pair[1]),
            Some("t") => entry.ts_ms = as_u64(&pair[1]),
            Some("d") => entry.data = as_text(&pair[1]).map(str::to_string),
            _ => {}
        }
    }
    Some(entry)
}

/// Parses `[epoch, head, earliest]`; `None` when the stream has no meta.
fn parse_meta(stream: &StreamName, v: &Value) -> Result<Option<StreamInfo>, LogError> {
    let Value::Array(parts) = v else {
        return Err(corrupt(stream, "meta is not an array"));
    };
    let [epoch, head, earliest] = parts.as_slice() else {
        return Err(corrupt(stream, "meta has the wrong length"));
    };
    if matches!(epoch, Value::Nil) {
        return Ok(None);
    }
    let (Some(epoch), Some(head), Some(earliest)) = (as_u64(epoch), as_u64(head), as_u64(earliest))
    else {
        return Err(corrupt(stream, "meta fields are not integers"));
    };
    if epoch > MAX_SEQ {
        return Err(corrupt(stream, "epoch out of range"));
    }
    Ok(Some(StreamInfo {
        epoch: Epoch(epoch),
        head: seq(head, stream)?,
        earliest: seq(earliest, stream)?,
    }))
}

fn stored(stream: &StreamName, v: &Value) -> Result<StoredMessage, LogError> {
    let entry = parse_entry(v).ok_or_else(|| corrupt(stream, "unreadable stream entry"))?;
    let data = entry
        .data
        .ok_or_else(|| corrupt(stream, format!("entry {} has no payload", entry.seq)))?;
    let data = RawValue::from_string(data)
        .map_err(|e| corrupt(stream, format!("payload of seq {}: {e}", entry.seq)))?;
    Ok(StoredMessage {
        seq: seq(entry.seq, stream)?,
        data,
    })
}

impl RedisLog {
    /// Connects to the Redis at `url` (`redis://host:port[/db]`) and checks
    /// that it answers.
    ///
    /// Redis must not evict keys (`maxmemory-policy noeviction`): an evicted
    /// entry would be a silent gap.
    ///
    /// # Errors
    /// [`LogError::Redis`] when the URL is invalid or Redis does not answer.
    pub fn open(url: &str, options: RedisOptions) -> Result<RedisLog, LogError> {
        RedisLog::with_target(Target::open(&[url]).map_err(redis_err)?, options)
    }

    /// Connects to the Redis Cluster that `nodes` (one URL per node, at
    /// least one) belong to, and checks that it answers.
    ///
    /// # Errors
    /// [`LogError::Redis`] when a URL is invalid or the cluster does not
    /// answer.
    pub fn open_cluster(nodes: &[String], options: RedisOptions) -> Result<RedisLog, LogError> {
        let urls: Vec<&str> = nodes.iter().map(String::as_str).collect();
        let target = match urls.as_slice() {
            [] => return Err(LogError::Redis("a cluster needs at least one node".into())),
            // One seed node is still a cluster: route by slot all the same.
            [one] => Target::open(&[one, one]),
            _ => Target::open(&urls),
        };
        RedisLog::with_target(target.map_err(redis_err)?, options)
    }

    fn with_target(target: Target, options: RedisOptions) -> Result<RedisLog, LogError> {
        let log = RedisLog {
            target,
            options,
            pool: (0..POOL).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            touched: Mutex::new(HashSet::new()),
            reserve_script: Script::new(RESERVE),
            append: Script::new(APPEND),
            trim_to: Script::new(TRIM_TO),
        };
        log.with(|conn| redis::cmd("PING").query::<String>(conn))?;
        Ok(log)
    }

    /// Where this log's Redis is (for followers).
    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// The settings.
    pub(crate) fn options(&self) -> &RedisOptions {
        &self.options
    }

    /// Runs `f` on a pooled connection. A connection that failed is dropped
    /// and `f` runs once more on a new one: after a Redis restart every
    /// pooled connection is dead. Running a call twice is safe: reads have
    /// no effect and appends carry their publish ids.
    fn with<T>(
        &self,
        mut f: impl FnMut(&mut Conn) -> redis::RedisResult<T>,
    ) -> Result<T, LogError> {
        match self.with_once(&mut f) {
            Err((e, true)) => {
                tracing::debug!(error = %e, "redis connection lost; retrying on a new one");
                self.with_once(&mut f).map_err(|(e, _)| e)
            }
            other => other.map_err(|(e, _)| e),
        }
    }

    /// One attempt; on failure, also whether the connection was lost.
    fn with_once<T>(
        &self,
        f: &mut impl FnMut(&mut Conn) -> redis::RedisResult<T>,
    ) -> Result<T, (LogError, bool)> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = (0..self.pool.len())
            .map(|i| &self.pool[(start + i) % self.pool.len()])
            .find_map(|m| m.try_lock().ok())
            .unwrap_or_else(|| {
                self.pool[start % self.pool.len()]
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
            });
        let mut slot = slot;
        if slot.is_none() {
            *slot = Some(self.target.connect().map_err(|e| (redis_err(e), false))?);
        }
        let Some(conn) = slot.as_mut() else {
            return Err((LogError::Redis("no connection".into()), false));
        };
        match f(conn) {
            Ok(v) => Ok(v),
            Err(e) => {
                let lost = e.is_io_error() || e.is_connection_dropped() || e.is_timeout();
                if lost {
                    *slot = None;
                }
                Err((redis_err(e), lost))
            }
        }
    }

    fn touch(&self, stream: &StreamName) {
        let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        if !touched.contains(stream) {
            touched.insert(stream.clone());
        }
    }

    /// Reads the meta and runs `query` in one MULTI/EXEC (one slot: the
    /// stream's); `None` when the stream has no meta.
    fn view(
        &self,
        stream: &StreamName,
        query: impl Fn(&mut redis::Pipeline, &Keys),
    ) -> Result<Option<(StreamInfo, Value)>, LogError> {
        let keys = Keys::of(stream);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HMGET")
            .arg(&keys.meta)
            .arg("epoch")
            .arg("head")
            .arg("earliest");
        query(&mut pipe, &keys);
        let reply: Vec<Value> = self.with(|conn| pipe.query(conn))?;
        let [meta, rest] = <[Value; 2]>::try_from(reply)
            .map_err(|_| corrupt(stream, "unexpected transaction reply"))?;
        Ok(parse_meta(stream, &meta)?.map(|info| (info, rest)))
    }
}

pub(crate) fn connect(client: &redis::Client) -> redis::RedisResult<Connection> {
    let conn = client.get_connection_with_timeout(IO_TIMEOUT)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(conn)
}

/// Runs the reserve script: the stream's state, reserving `epoch` for it
/// for `ttl_ms` when it has none.
pub(crate) fn reserve_meta(
    conn: &mut impl ConnectionLike,
    script: &Script,
    stream: &StreamName,
    epoch: Epoch,
    ttl_ms: u64,
) -> Result<StreamInfo, LogError> {
    let keys = Keys::of(stream);
    let reply: Value = script
        .key(&keys.log)
        .key(&keys.meta)
        .arg(epoch.0)
        .arg(ttl_ms.max(1))
        .invoke(conn)
        .map_err(redis_err)?;
    parse_meta(stream, &reply)?.ok_or_else(|| corrupt(stream, "stream meta missing"))
}

/// The reserve script, for followers that renew reservations and re-create
/// lost streams.
pub(crate) fn reserve_script() -> Script {
    Script::new(RESERVE)
}

impl Log for RedisLog {
    fn info(&self, stream: &StreamName) -> LogResult<Option<StreamInfo>> {
        let keys = Keys::of(stream);
        let reply: Value = self.with(|conn| {
            redis::cmd("HMGET")
                .arg(&keys.meta)
                .arg("epoch")
                .arg("head")
                .arg("earliest")
                .query(conn)
        })?;
        parse_meta(stream, &reply)
    }

    /// Reserves an epoch of its own drawing, never the caller's: a meta
    /// that vanished may have belonged to a log with messages, and its epoch
    /// must not come back with other messages under the same seqs.
    fn reserve(&self, stream: &StreamName) -> LogResult<StreamInfo> {
        self.touch(stream);
        let keys = Keys::of(stream);
        let reply: Value = self.with(|conn| {
            self.reserve_script
                .key(&keys.log)
                .key(&keys.meta)
                .arg(random_epoch().0)
                .arg(self.options.reservation_ttl_ms.max(1))
                .invoke(conn)
        })?;
        parse_meta(stream, &reply)?.ok_or_else(|| corrupt(stream, "stream meta missing"))
    }

    fn append(&self, stream: &StreamName, batch: &Batch<'_>) -> LogResult<Vec<Appended>> {
        let (messages, now_ms) = (batch.messages, batch.now_ms);
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        self.touch(stream);
        let keys = Keys::of(stream);
        let mut call = self.append.key(&keys.log);
        call.key(&keys.meta);
        for m in messages {
            call.key(keys.id(&m.id));
        }
        // A fresh epoch, never the caller's: when the meta is gone (a Redis
        // that lost its data), the log that starts here is a new
        // incarnation and must not reuse the epoch clients already hold.
        call.arg(random_epoch().0)
            .arg(now_ms)
            .arg(self.options.ids.ttl_ms.max(1))
            .arg(self.options.ids.max_count)
            .arg(self.options.retention.max_count.unwrap_or(0));
        for m in messages {
            call.arg(m.data.get());
        }
        let reply: Vec<i64> = self.with(|conn| call.invoke(conn))?;
        if reply.len() != messages.len() {
            return Err(corrupt(stream, "append answered the wrong count"));
        }
        reply
            .into_iter()
            .map(|n| {
                Ok(Appended {
                    seq: seq(n.unsigned_abs(), stream)?,
                    duplicate: n < 0,
                })
            })
            .collect()
    }

    fn read(&self, stream: &StreamName, page: Page) -> LogResult<Option<ReadResult>> {
        let Some((info, reply)) = self.view(stream, |pipe, keys| {
            pipe.cmd("XRANGE")
                .arg(&keys.log)
                .arg(format!("{}-0", page.range.start()))
                .arg(format!("{}-0", page.range.end()))
                .arg("COUNT")
                .arg(page.max.max(1));
        })?
        else {
            return Ok(None);
        };
        let Value::Array(entries) = reply else {
            return Err(corrupt(stream, "XRANGE answered no array"));
        };
        let messages = entries
            .iter()
            .map(|e| stored(stream, e))
            .collect::<Result<_, _>>()?;
        Ok(Some(ReadResult { info, messages }))
    }

    fn last(&self, stream: &StreamName, count: usize) -> LogResult<Option<ReadResult>> {
        let Some((info, reply)) = self.view(stream, |pipe, keys| {
            pipe.cmd("XREVRANGE")
                .arg(&keys.log)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(count.max(1));
        })?
        else {
            return Ok(None);
        };
        if count == 0 {
            return Ok(Some(ReadResult {
                info,
                messages: Vec::new(),
            }));
        }
        let Value::Array(entries) = reply else {
            return Err(corrupt(stream, "XREVRANGE answered no array"));
        };
        let mut messages = entries
            .iter()
            .map(|e| stored(stream, e))
            .collect::<Result<Vec<_>, _>>()?;
        messages.reverse();
        Ok(Some(ReadResult { info, messages }))
    }

    fn trim(&self, now_ms: u64) -> LogResult<u64> {
        let Some(max_age) = self.options.retention.max_age_ms else {
            return Ok(0);
        };
        let cutoff = now_ms.saturating_sub(max_age);
        let streams: Vec<StreamName> = self
            .touched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        let mut removed = 0;
        for stream in streams {
            let keys = Keys::of(&stream);
            // Entries are appended in time order: the expired ones are a
            // prefix, walked from the front.
            let mut last_expired = None;
            let mut start = "-".to_string();
            'walk: loop {
                let entries: Vec<Value> = self.with(|conn| {
                    redis::cmd("XRANGE")
                        .arg(&keys.log)
                        .arg(&start)
                        .arg("+")
                        .arg("COUNT")
                        .arg(TRIM_STEP)
                        .query(conn)
                })?;
                if entries.is_empty() {
                    break;
                }
                for e in &entries {
                    let entry = parse_entry(e).ok_or_else(|| corrupt(&stream, "bad entry"))?;
                    if entry.ts_ms.is_none_or(|t| t >= cutoff) {
                        break 'walk;
                    }
                    last_expired = Some(entry.seq);
                }
                match last_expired {
                    Some(s) => start = format!("({s}-0"),
                    None => break,
                }
            }
            if let Some(upto) = last_expired {
                let n: u64 = self.with(|conn| {
                    self.trim_to
                        .key(&keys.log)
                        .key(&keys.meta)
                        .arg(upto)
                        .invoke(conn)
                })?;
                removed += n;
            }
        }
        Ok(removed)
    }
}
