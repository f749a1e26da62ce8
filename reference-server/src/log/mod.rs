//! The stream log: where seqs are assigned and messages kept.
//!
//! [`Log`] is a synchronous trait. The backends here are synchronous by
//! nature (a map behind a mutex, SQLite through rusqlite, Redis through the
//! `redis` crate's blocking connections), and the server
//! calls a blocking backend through `tokio::task::spawn_blocking`, once per
//! *batch* of publishes (the sequencing point of each stream batches them),
//! so the thread hop is amortized.
//! A backend that is cheap and never blocks (the memory log) says so with
//! [`Log::is_blocking`] and is called inline.
//!
//! Every backend guarantees, per stream:
//! - reading never creates a log: a stream that was never appended to
//!   has none ([`Log::info`], [`Log::read`] and [`Log::last`] answer
//!   `None`), so names that are only read cost no storage (a shared log
//!   keeps an expiring reservation of the epoch, see [`Log::reserve`]);
//! - an empty stream has one epoch, the one its first message is stored
//!   in, named alike by every [`Log::reserve`] for as long as the log
//!   lives (the memory log's lifetime, the SQLite file's, a Redis
//!   reservation's);
//! - seqs are assigned atomically, contiguous from 1, in the order of
//!   [`Log::append`] calls (the caller serializes appends of one stream);
//! - a publish id seen within the [`IdWindow`] gets its old seq back and
//!   stores nothing; an older one is a new publish;
//! - retained messages are exactly `earliest..=head`: retention removes a
//!   prefix, never a seq in the middle;
//! - each read ([`Log::read`], [`Log::last`]) sees one consistent state, so
//!   `info` and `messages` always agree.

mod memory;
pub mod redis;
mod sqlite;

pub use memory::MemoryLog;
pub use redis::{RedisLog, RedisOptions};
pub use sqlite::SqliteLog;

use seqsync_core::{Epoch, MAX_SEQ, Seq, SeqRange, StreamName};
use serde_json::value::RawValue;

use crate::faults::SplitMix64;

/// A message payload: JSON text, validated once when it was published.
pub type Payload = Box<RawValue>;

/// A message to append.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The publisher's idempotency id.
    pub id: String,
    /// The payload.
    pub data: Payload,
}

/// Messages to append to one stream in one atomic step, with what the
/// append needs to know.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// The epoch the stream's log gets if this append creates it (a shared
    /// log may draw its own).
    pub epoch: Epoch,
    /// Wall-clock Unix milliseconds: the messages' time, for age retention
    /// and the [`IdWindow`].
    pub now_ms: u64,
    /// The messages, in order.
    pub messages: &'a [NewMessage],
}

/// What a read asks for: the retained messages of `range`, at most `max`
/// of them (the first ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// The seqs wanted.
    pub range: SeqRange,
    /// Most messages returned.
    pub max: u64,
}

/// What a log call gives, or why it failed.
pub type LogResult<T> = Result<T, LogError>;

/// The outcome of one appended message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The seq of the message.
    pub seq: Seq,
    /// True when the id was known: `seq` is the earlier message's and nothing
    /// was stored.
    pub duplicate: bool,
}

impl Appended {
    /// A message stored with `seq`.
    pub const fn stored(seq: Seq) -> Appended {
        Appended {
            seq,
            duplicate: false,
        }
    }

    /// A publish whose id was known: its message has `seq` already.
    pub const fn known(seq: Seq) -> Appended {
        Appended {
            seq,
            duplicate: true,
        }
    }
}

/// Where a stream's log stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamInfo {
    /// The log's incarnation.
    pub epoch: Epoch,
    /// The latest seq (0 when nothing was ever appended).
    pub head: Seq,
    /// The first retained seq; `head + 1` when nothing is retained.
    pub earliest: Seq,
}

impl<'a> Batch<'a> {
    /// `messages` appended at `now_ms`, creating the log in `epoch` if
    /// needed.
    pub const fn new(epoch: Epoch, now_ms: u64, messages: &'a [NewMessage]) -> Batch<'a> {
        Batch {
            epoch,
            now_ms,
            messages,
        }
    }
}

impl Page {
    /// At most `max` messages of `from..=to`.
    ///
    /// # Errors
    /// As [`SeqRange::from_u64`].
    pub fn new(from: u64, to: u64, max: u64) -> Result<Page, seqsync_core::Error> {
        Ok(Page {
            range: SeqRange::from_u64(from, to)?,
            max,
        })
    }
}

impl StreamInfo {
    /// A log with nothing in it yet, in `epoch`.
    pub const fn empty(epoch: Epoch) -> StreamInfo {
        StreamInfo {
            epoch,
            head: Seq::ZERO,
            earliest: Seq::ZERO.next(),
        }
    }
}

/// A stored message.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// Its seq.
    pub seq: Seq,
    /// Its payload.
    pub data: Payload,
}

/// The result of a read: the stream's state and the messages, from one
/// consistent view of the log.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// The stream's state at the time of the read.
    pub info: StreamInfo,
    /// The messages found, ascending.
    pub messages: Vec<StoredMessage>,
}

/// How long messages are kept, per stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many latest messages.
    pub max_count: Option<u64>,
    /// Remove messages older than this, in milliseconds.
    pub max_age_ms: Option<u64>,
}

/// How long a publish id is remembered (section 7.5): a retry with the same
/// id within both bounds gets the first seq back and stores nothing.
///
/// ```
/// use seqsync_server::log::IdWindow;
/// let window = IdWindow { ttl_ms: 1_000, max_count: 10 };
/// assert!(window.remembers(95, 5_000, 100, 5_500));
/// assert!(!window.remembers(90, 5_000, 100, 5_500), "ten messages ago");
/// assert!(!window.remembers(95, 5_000, 100, 6_000), "a second ago");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdWindow {
    /// How long after its message was stored, in milliseconds.
    pub ttl_ms: u64,
    /// For how many of the stream's latest messages.
    pub max_count: u64,
}

impl Default for IdWindow {
    fn default() -> IdWindow {
        IdWindow {
            ttl_ms: 3_600_000,
            max_count: 100_000,
        }
    }
}

impl IdWindow {
    /// Whether the id of the message stored with `seq` at `stored_ms` still
    /// counts when the head is `head` and the time `now_ms`.
    pub fn remembers(&self, seq: u64, stored_ms: u64, head: u64, now_ms: u64) -> bool {
        seq.saturating_add(self.max_count) > head && stored_ms.saturating_add(self.ttl_ms) > now_ms
    }
}

/// What went wrong in a log backend.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// SQLite refused an operation.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Redis refused an operation or could not be reached.
    #[error("redis: {0}")]
    Redis(String),
    /// Stored data that cannot be read back.
    #[error("corrupt log data in stream {stream}: {reason}")]
    Corrupt {
        /// The stream.
        stream: String,
        /// What is wrong.
        reason: String,
    },
    /// A stream's seqs would pass 2^53-1.
    #[error("stream {stream} is full (seq limit reached)")]
    SeqExhausted {
        /// The stream.
        stream: String,
    },
    /// A blocking call could not be run (the runtime is shutting down).
    #[error("log call aborted: {0}")]
    Aborted(String),
}

/// A log of sequenced messages, one per stream.
pub trait Log: Send + Sync + 'static {
    /// The stream's state; `None` when the stream has no log (nothing was
    /// ever appended to it). Creates nothing.
    fn info(&self, stream: &StreamName) -> LogResult<Option<StreamInfo>>;

    /// The stream's state, or, when it has no log, the state it will have:
    /// empty, in the epoch its first message will be stored in. Every call
    /// names the same epoch for an empty stream while the log lives: the
    /// local logs name their own (the SQLite file's, the memory log's) and
    /// record nothing; a log shared by several servers (Redis) records the
    /// epoch for a while, so that every server names the same one.
    fn reserve(&self, stream: &StreamName) -> LogResult<StreamInfo>;

    /// Appends the batch's messages in order, in one atomic step, creating
    /// the stream's log when it has none. Returns one outcome per message.
    fn append(&self, stream: &StreamName, batch: &Batch<'_>) -> LogResult<Vec<Appended>>;

    /// The retained messages of the page, with the stream's state in the
    /// same view; `None` when the stream has no log.
    fn read(&self, stream: &StreamName, page: Page) -> LogResult<Option<ReadResult>>;

    /// The latest `count` retained messages, with the stream's state; `None`
    /// when the stream has no log.
    fn last(&self, stream: &StreamName, count: usize) -> LogResult<Option<ReadResult>>;

    /// Applies age retention as of `now_ms` (Unix milliseconds) to every
    /// stream; returns how many messages were removed.
    fn trim(&self, now_ms: u64) -> LogResult<u64>;

    /// Whether calls may block on IO (the server then calls them through
    /// `spawn_blocking`).
    fn is_blocking(&self) -> bool {
        true
    }
}

/// A fresh random epoch in `1..=2^53-1`.
pub(crate) fn random_epoch() -> Epoch {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let local = 0u8;
    let addr = &local as *const u8 as u64;
    let mut rng = SplitMix64::new(
        nanos ^ addr.rotate_left(32) ^ (COUNTER.fetch_add(1, Ordering::Relaxed) << 48),
    );
    let mut value = rng.next_u64() & MAX_SEQ;
    if value == 0 {
        value = 1;
    }
    Epoch(value)
}

pub(crate) fn seq(value: u64, stream: &StreamName) -> Result<Seq, LogError> {
    Seq::new(value).map_err(|_| LogError::SeqExhausted {
        stream: stream.to_string(),
    })
}

/// Runs a log call, off the async threads when the backend may block.
pub(crate) async fn call<T, F>(log: &std::sync::Arc<dyn Log>, f: F) -> Result<T, LogError>
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

/// Wall-clock Unix milliseconds.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    //! The same behaviour checks run against the memory and SQLite logs
    //! (the Redis log runs them in the end-to-end suite, against a real
    //! Redis).
    use super::*;

    fn raw(text: &str) -> Payload {
        RawValue::from_string(text.to_string()).unwrap_or_else(|_| Default::default())
    }

    fn msg(id: &str, n: u64) -> NewMessage {
        NewMessage {
            id: id.to_string(),
            data: raw(&format!("{{\"n\":{n}}}")),
        }
    }

    fn at(n: u64) -> Seq {
        Seq::new(n).unwrap_or(Seq::ZERO)
    }

    fn name(s: &str) -> StreamName {
        StreamName::new(s).unwrap_or_else(|_| unreachable!())
    }

    const E: Epoch = Epoch(77);

    /// `messages` appended at `now_ms`, creating logs in epoch `E`.
    fn batch(now_ms: u64, messages: &[NewMessage]) -> Batch<'_> {
        Batch::new(E, now_ms, messages)
    }

    fn page(from: u64, to: u64, max: u64) -> Page {
        Page::new(from, to, max).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `check` on a memory log and on an SQLite log in a fresh file.
    fn each_backend(
        retention: Retention,
        ids: IdWindow,
        check: impl Fn(&dyn Log) -> Result<(), LogError>,
    ) -> Result<(), LogError> {
        check(&MemoryLog::new(retention).with_id_window(ids))?;
        let dir = std::env::temp_dir().join(format!(
            "seqsync-log-test-{}-{}",
            std::process::id(),
            random_epoch().0
        ));
        let _ = std::fs::create_dir_all(&dir);
        let result = SqliteLog::open(dir.join("log.db"), retention)
            .and_then(|l| check(&l.with_id_window(ids)));
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    fn seqs(out: &[Appended]) -> Vec<(u64, bool)> {
        out.iter().map(|a| (a.seq.get(), a.duplicate)).collect()
    }

    #[test]
    fn reading_a_stream_never_appended_to_creates_nothing() -> Result<(), LogError> {
        each_backend(Retention::default(), IdWindow::default(), |log| {
            let s = name("ghost");
            assert_eq!(log.info(&s)?, None);
            assert!(log.read(&s, page(1, 9, 10))?.is_none());
            assert!(log.last(&s, 10)?.is_none());
            // Empty, in the log's own epoch (the memory log's, the file's).
            let reserved = log.reserve(&s)?;
            assert_eq!(reserved, StreamInfo::empty(reserved.epoch));
            assert_eq!(log.info(&s)?, None, "a local log keeps no reservation");
            assert_eq!(log.reserve(&s)?, reserved, "the same epoch every time");
            assert_eq!(log.reserve(&name("other"))?, reserved);
            Ok(())
        })
    }

    #[test]
    fn seqs_are_contiguous_from_one_and_ids_are_idempotent() -> Result<(), LogError> {
        each_backend(Retention::default(), IdWindow::default(), |log| {
            let s = name("a");
            let out = log.append(&s, &batch(0, &[msg("x", 1), msg("y", 2), msg("x", 3)]))?;
            assert_eq!(seqs(&out), [(1, false), (2, false), (1, true)]);
            let info = log.info(&s)?.unwrap_or(StreamInfo::empty(Epoch(0)));
            assert_eq!(
                info,
                StreamInfo {
                    epoch: E,
                    head: at(2),
                    earliest: at(1)
                }
            );
            // Another epoch for a log that exists changes nothing.
            let more = [msg("y", 9), msg("z", 4)];
            let mut later = batch(0, &more);
            later.epoch = Epoch(5);
            let again = log.append(&s, &later)?;
            assert_eq!(seqs(&again), [(2, true), (3, false)]);
            let read = log
                .read(&s, page(1, 10, 100))?
                .map(|r| (r.info, r.messages));
            let (info, messages) = read.unwrap_or((StreamInfo::empty(Epoch(0)), Vec::new()));
            assert_eq!(
                (info.head.get(), info.epoch),
                (3, E),
                "the first epoch stays"
            );
            let got: Vec<u64> = messages.iter().map(|m| m.seq.get()).collect();
            assert_eq!(got, [1, 2, 3]);
            assert_eq!(messages[1].data.get(), "{\"n\":2}");
            let paged = log.read(&s, page(2, 10, 1))?.map(|r| r.messages);
            let paged: Vec<u64> = paged
                .unwrap_or_default()
                .iter()
                .map(|m| m.seq.get())
                .collect();
            assert_eq!(paged, [2]);
            Ok(())
        })
    }

    #[test]
    fn publish_ids_are_forgotten_past_their_count_or_age() -> Result<(), LogError> {
        let window = IdWindow {
            ttl_ms: 1_000,
            max_count: 3,
        };
        each_backend(Retention::default(), window, |log| {
            let s = name("ids");
            log.append(&s, &batch(10_000, &[msg("a", 1), msg("b", 2)]))?;
            // Within both bounds: the first seq comes back.
            assert_eq!(
                seqs(&log.append(&s, &batch(10_500, &[msg("a", 9)]))?),
                [(1, true)]
            );
            // Three messages later, "a" is out of the count window.
            log.append(&s, &batch(10_500, &[msg("c", 3), msg("d", 4)]))?;
            assert_eq!(
                seqs(&log.append(&s, &batch(10_600, &[msg("a", 9)]))?),
                [(5, false)]
            );
            // "d" is recent by count, but a second old.
            assert_eq!(
                seqs(&log.append(&s, &batch(11_500, &[msg("d", 9)]))?),
                [(6, false)]
            );
            // The new "a" is remembered in its turn.
            assert_eq!(
                seqs(&log.append(&s, &batch(11_550, &[msg("a", 0)]))?),
                [(5, true)]
            );
            Ok(())
        })
    }

    #[test]
    fn streams_have_their_own_seqs_and_epochs() -> Result<(), LogError> {
        each_backend(Retention::default(), IdWindow::default(), |log| {
            let (a, b) = (name("a"), name("b"));
            let (one, two) = ([msg("1", 1), msg("2", 2)], [msg("1", 1)]);
            let (mut first, mut second) = (batch(0, &one), batch(0, &two));
            (first.epoch, second.epoch) = (Epoch(1), Epoch(2));
            log.append(&a, &first)?;
            let out = log.append(&b, &second)?;
            assert_eq!(out[0].seq.get(), 1);
            assert_eq!(log.info(&a)?.map(|i| i.epoch), Some(Epoch(1)));
            assert_eq!(log.info(&b)?.map(|i| i.epoch), Some(Epoch(2)));
            Ok(())
        })
    }

    #[test]
    fn count_retention_trims_a_prefix() -> Result<(), LogError> {
        let retention = Retention {
            max_count: Some(3),
            max_age_ms: None,
        };
        each_backend(retention, IdWindow::default(), |log| {
            let s = name("r");
            let messages: Vec<NewMessage> = (1..=10).map(|i| msg(&i.to_string(), i)).collect();
            log.append(&s, &batch(0, &messages))?;
            let info = log.info(&s)?.map(|i| (i.earliest.get(), i.head.get()));
            assert_eq!(info, Some((8, 10)));
            let last = log.last(&s, 100)?.map(|r| r.messages).unwrap_or_default();
            let got: Vec<u64> = last.iter().map(|m| m.seq.get()).collect();
            assert_eq!(got, [8, 9, 10]);
            Ok(())
        })
    }

    #[test]
    fn age_retention_trims_old_messages_and_can_empty_a_stream() -> Result<(), LogError> {
        let retention = Retention {
            max_count: None,
            max_age_ms: Some(1_000),
        };
        each_backend(retention, IdWindow::default(), |log| {
            let s = name("age");
            log.append(&s, &batch(10_000, &[msg("1", 1), msg("2", 2)]))?;
            log.append(&s, &batch(10_500, &[msg("3", 3)]))?;
            assert_eq!(log.trim(11_200)?, 2);
            let bounds = |log: &dyn Log| -> Result<_, LogError> {
                Ok(log.info(&s)?.map(|i| (i.earliest.get(), i.head.get())))
            };
            assert_eq!(bounds(log)?, Some((3, 3)));
            assert_eq!(log.trim(20_000)?, 1);
            assert_eq!(bounds(log)?, Some((4, 3)));
            let out = log.append(&s, &batch(20_000, &[msg("4", 4)]))?;
            assert_eq!(out[0].seq.get(), 4);
            Ok(())
        })
    }

    #[test]
    fn last_returns_the_latest_messages() -> Result<(), LogError> {
        each_backend(Retention::default(), IdWindow::default(), |log| {
            let s = name("l");
            let messages: Vec<NewMessage> = (1..=5).map(|i| msg(&i.to_string(), i)).collect();
            log.append(&s, &batch(0, &messages))?;
            let last = log.last(&s, 2)?.map(|r| (r.info.head.get(), r.messages));
            let (head, messages) = last.unwrap_or((0, Vec::new()));
            let got: Vec<u64> = messages.iter().map(|m| m.seq.get()).collect();
            assert_eq!((head, got), (5, vec![4, 5]));
            assert!(log.last(&s, 0)?.is_some_and(|r| r.messages.is_empty()));
            Ok(())
        })
    }
}
