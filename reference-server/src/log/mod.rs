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
//! - seqs are assigned atomically, contiguous from 1, in the order of
//!   [`Log::append`] calls (the caller serializes appends of one stream);
//! - a publish id seen before (while its message is retained) gets its old
//!   seq back and stores nothing;
//! - retained messages are exactly `earliest..=head`: retention removes a
//!   prefix, never a seq in the middle;
//! - each read ([`Log::read`], [`Log::last`]) sees one consistent state, so
//!   `info` and `messages` always agree.

mod memory;
pub(crate) mod redis;
mod sqlite;

pub use memory::MemoryLog;
pub use redis::{RedisLog, RedisOptions};
pub use sqlite::SqliteLog;

use seqsync_core::{Epoch, MAX_SEQ, Seq, StreamName};
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

/// The outcome of one appended message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The seq of the message.
    pub seq: Seq,
    /// True when the id was known: `seq` is the earlier message's and nothing
    /// was stored.
    pub duplicate: bool,
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
    /// The stream's state, creating its log (with a fresh epoch) when it has
    /// none yet.
    fn open(&self, stream: &StreamName) -> Result<StreamInfo, LogError>;

    /// Appends `batch` in order, in one atomic step; `now_ms` is wall-clock
    /// Unix milliseconds (for age retention). Returns one outcome per message.
    fn append(
        &self,
        stream: &StreamName,
        batch: &[NewMessage],
        now_ms: u64,
    ) -> Result<Vec<Appended>, LogError>;

    /// The retained messages with seq in `from..=to`, at most `max` of them
    /// (the first `max`), with the stream's state in the same view.
    fn read(
        &self,
        stream: &StreamName,
        from: Seq,
        to: Seq,
        max: u64,
    ) -> Result<ReadResult, LogError>;

    /// The latest `count` retained messages, with the stream's state.
    fn last(&self, stream: &StreamName, count: usize) -> Result<ReadResult, LogError>;

    /// Applies age retention as of `now_ms` (Unix milliseconds) to every
    /// stream; returns how many messages were removed.
    fn trim(&self, now_ms: u64) -> Result<u64, LogError>;

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

#[cfg(test)]
mod tests {
    //! The same behaviour checks run against both backends.
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

    fn backends(retention: Retention) -> Vec<(Box<dyn Log>, Option<std::path::PathBuf>)> {
        let dir = std::env::temp_dir().join(format!(
            "seqsync-log-test-{}-{}",
            std::process::id(),
            random_epoch().0
        ));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("log.db");
        let sqlite = SqliteLog::open(&path, retention).map(|l| Box::new(l) as Box<dyn Log>);
        vec![
            (Box::new(MemoryLog::new(retention)) as Box<dyn Log>, None),
            (
                sqlite.unwrap_or_else(|e| panic!("open sqlite: {e}")),
                Some(dir),
            ),
        ]
    }

    fn cleanup(dir: Option<std::path::PathBuf>) {
        if let Some(dir) = dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    #[test]
    fn seqs_are_contiguous_from_one_and_ids_are_idempotent() -> Result<(), LogError> {
        for (log, dir) in backends(Retention::default()) {
            let s = name("a");
            let info = log.open(&s)?;
            assert_eq!((info.head.get(), info.earliest.get()), (0, 1));
            let out = log.append(&s, &[msg("x", 1), msg("y", 2), msg("x", 3)], 0)?;
            let seqs: Vec<(u64, bool)> = out.iter().map(|a| (a.seq.get(), a.duplicate)).collect();
            assert_eq!(seqs, [(1, false), (2, false), (1, true)]);
            let again = log.append(&s, &[msg("y", 9), msg("z", 4)], 0)?;
            assert_eq!(
                again[0],
                Appended {
                    seq: at(2),
                    duplicate: true
                }
            );
            assert_eq!(again[1].seq.get(), 3);
            let read = log.read(&s, at(1), at(10), 100)?;
            assert_eq!(read.info.head.get(), 3);
            assert_eq!(read.info.epoch, info.epoch);
            let got: Vec<u64> = read.messages.iter().map(|m| m.seq.get()).collect();
            assert_eq!(got, [1, 2, 3]);
            assert_eq!(read.messages[1].data.get(), "{\"n\":2}");
            let paged = log.read(&s, at(2), at(10), 1)?;
            assert_eq!(paged.messages.len(), 1);
            assert_eq!(paged.messages[0].seq.get(), 2);
            cleanup(dir);
        }
        Ok(())
    }

    #[test]
    fn streams_have_their_own_seqs_and_epochs() -> Result<(), LogError> {
        for (log, dir) in backends(Retention::default()) {
            let (a, b) = (name("a"), name("b"));
            log.append(&a, &[msg("1", 1), msg("2", 2)], 0)?;
            let out = log.append(&b, &[msg("1", 1)], 0)?;
            assert_eq!(out[0].seq.get(), 1);
            assert_ne!(log.open(&a)?.epoch, log.open(&b)?.epoch);
            cleanup(dir);
        }
        Ok(())
    }

    #[test]
    fn count_retention_trims_a_prefix() -> Result<(), LogError> {
        let retention = Retention {
            max_count: Some(3),
            max_age_ms: None,
        };
        for (log, dir) in backends(retention) {
            let s = name("r");
            let batch: Vec<NewMessage> = (1..=10).map(|i| msg(&i.to_string(), i)).collect();
            log.append(&s, &batch, 0)?;
            let info = log.open(&s)?;
            assert_eq!((info.earliest.get(), info.head.get()), (8, 10));
            let last = log.last(&s, 100)?;
            let got: Vec<u64> = last.messages.iter().map(|m| m.seq.get()).collect();
            assert_eq!(got, [8, 9, 10]);
            cleanup(dir);
        }
        Ok(())
    }

    #[test]
    fn age_retention_trims_old_messages_and_can_empty_a_stream() -> Result<(), LogError> {
        let retention = Retention {
            max_count: None,
            max_age_ms: Some(1_000),
        };
        for (log, dir) in backends(retention) {
            let s = name("age");
            log.append(&s, &[msg("1", 1), msg("2", 2)], 10_000)?;
            log.append(&s, &[msg("3", 3)], 10_500)?;
            assert_eq!(log.trim(11_200)?, 2);
            let info = log.open(&s)?;
            assert_eq!((info.earliest.get(), info.head.get()), (3, 3));
            assert_eq!(log.trim(20_000)?, 1);
            let info = log.open(&s)?;
            assert_eq!((info.earliest.get(), info.head.get()), (4, 3));
            let out = log.append(&s, &[msg("4", 4)], 20_000)?;
            assert_eq!(out[0].seq.get(), 4);
            cleanup(dir);
        }
        Ok(())
    }

    #[test]
    fn last_returns_the_latest_messages() -> Result<(), LogError> {
        for (log, dir) in backends(Retention::default()) {
            let s = name("l");
            let batch: Vec<NewMessage> = (1..=5).map(|i| msg(&i.to_string(), i)).collect();
            log.append(&s, &batch, 0)?;
            let last = log.last(&s, 2)?;
            let got: Vec<u64> = last.messages.iter().map(|m| m.seq.get()).collect();
            assert_eq!(got, [4, 5]);
            assert_eq!(last.info.head.get(), 5);
            assert!(log.last(&s, 0)?.messages.is_empty());
            cleanup(dir);
        }
        Ok(())
    }
}
