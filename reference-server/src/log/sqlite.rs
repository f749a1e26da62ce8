//! The SQLite log: one file, WAL mode, `synchronous=FULL`, so a publish
//! acknowledged after [`Log::append`] returns survives a crash or restart.
//!
//! Each stream's epoch is drawn at random when its log is created and kept
//! in the `streams` table forever: a restart keeps the epoch, a new file
//! (or a wiped one) gives every stream a new epoch, which is what makes
//! clients reset instead of trusting seqs of another log.
//!
//! A stream gets its row when its first message is appended: reads of a
//! stream that has none answer `None` and write nothing. Until then its
//! epoch is the file's own, drawn once when the file is created (table
//! `meta`), so a stream subscribed while empty keeps its epoch across
//! restarts, and its first message is stored in that epoch.
//!
//! Publish ids are kept with their messages; an id counts as known only
//! within the [`IdWindow`] (the lookup checks the stored seq and time), and
//! the index on them is not unique, so an id past its window can be used
//! again.
//!
//! Writes go through one connection (SQLite has one writer anyway); reads
//! use their own connections so they run beside writes (WAL) and each read
//! runs in one transaction, a consistent view of the stream.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use seqsync_core::{Epoch, StreamName};
use serde_json::value::RawValue;

use super::{
    Appended, Batch, IdWindow, Log, LogError, LogResult, Page, ReadResult, Retention,
    StoredMessage, StreamInfo, seq,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS streams (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    epoch    INTEGER NOT NULL,
    head     INTEGER NOT NULL,
    earliest INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    stream_id INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    pub_id    TEXT NOT NULL,
    ts_ms     INTEGER NOT NULL,
    data      TEXT NOT NULL,
    PRIMARY KEY (stream_id, seq)
) WITHOUT ROWID;
DROP INDEX IF EXISTS messages_pub_id;
CREATE INDEX IF NOT EXISTS messages_pub_id_seq ON messages (stream_id, pub_id, seq);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

/// The latest message stored with a publish id. Named index: without
/// statistics SQLite would walk the stream's primary key for the ORDER BY,
/// a scan of the whole stream per publish.
const FIND_ID: &str = "SELECT seq, ts_ms FROM messages INDEXED BY messages_pub_id_seq \
     WHERE stream_id = ?1 AND pub_id = ?2 ORDER BY seq DESC LIMIT 1";

const READERS: usize = 2;

/// A [`Log`] in one SQLite file.
pub struct SqliteLog {
    retention: Retention,
    /// The epoch of streams with no row yet: the file's.
    epoch: Epoch,
    ids: IdWindow,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

impl std::fmt::Debug for SqliteLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLog")
            .field("retention", &self.retention)
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
struct Row {
    id: i64,
    epoch: u64,
    head: u64,
    earliest: u64,
}

fn connect(path: &Path) -> Result<Connection, LogError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

fn load(conn: &Connection, name: &StreamName) -> Result<Option<Row>, LogError> {
    let row = conn
        .prepare_cached("SELECT id, epoch, head, earliest FROM streams WHERE name = ?1")?
        .query_row(params![name.as_str()], |r| {
            Ok(Row {
                id: r.get(0)?,
                epoch: r.get::<_, i64>(1)? as u64,
                head: r.get::<_, i64>(2)? as u64,
                earliest: r.get::<_, i64>(3)? as u64,
            })
        })
        .optional()?;
    Ok(row)
}

fn load_or_create(conn: &Connection, name: &StreamName, epoch: Epoch) -> Result<Row, LogError> {
    if let Some(row) = load(conn, name)? {
        return Ok(row);
    }
    conn.prepare_cached(
        "INSERT OR IGNORE INTO streams (name, epoch, head, earliest) VALUES (?1, ?2, 0, 1)",
    )?
    .execute(params![name.as_str(), epoch.0 as i64])?;
    load(conn, name)?.ok_or_else(|| LogError::Corrupt {
        stream: name.to_string(),
        reason: "stream row missing after insert".into(),
    })
}

impl Row {
    fn info(self, name: &StreamName) -> Result<StreamInfo, LogError> {
        Ok(StreamInfo {
            epoch: Epoch(self.epoch),
            head: seq(self.head, name)?,
            earliest: seq(self.earliest, name)?,
        })
    }
}

fn stored(name: &StreamName, s: i64, data: String) -> Result<StoredMessage, LogError> {
    let data = RawValue::from_string(data).map_err(|e| LogError::Corrupt {
        stream: name.to_string(),
        reason: format!("payload of seq {s}: {e}"),
    })?;
    Ok(StoredMessage {
        seq: seq(s as u64, name)?,
        data,
    })
}

impl SqliteLog {
    /// Opens (or creates) the log at `path`.
    ///
    /// # Errors
    /// [`LogError::Sqlite`] when the file cannot be opened or migrated.
    pub fn open(path: impl AsRef<Path>, retention: Retention) -> Result<SqliteLog, LogError> {
        let path = path.as_ref();
        let writer = connect(path)?;
        writer.execute_batch(SCHEMA)?;
        writer.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?1)",
            params![super::random_epoch().0 as i64],
        )?;
        let epoch: i64 =
            writer.query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| {
                r.get(0)
            })?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(Mutex::new(connect(path)?));
        }
        Ok(SqliteLog {
            retention,
            epoch: Epoch(epoch as u64),
            ids: IdWindow::default(),
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    /// The same log, remembering publish ids within `ids`.
    pub fn with_id_window(mut self, ids: IdWindow) -> SqliteLog {
        self.ids = ids;
        self
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        self.readers[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads in one transaction; `None` when the stream has no row.
    fn read_view<R>(
        &self,
        name: &StreamName,
        f: impl FnOnce(&Connection, Row) -> Result<R, LogError>,
    ) -> Result<Option<R>, LogError> {
        let mut conn = self.reader();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let Some(row) = load(&tx, name)? else {
            return Ok(None);
        };
        let out = f(&tx, row)?;
        tx.commit()?;
        Ok(Some(out))
    }
}

impl Log for SqliteLog {
    fn info(&self, stream: &StreamName) -> LogResult<Option<StreamInfo>> {
        load(&self.reader(), stream)?
            .map(|row| row.info(stream))
            .transpose()
    }

    /// A stream with no row is empty in the file's epoch: the same after a
    /// restart.
    fn reserve(&self, stream: &StreamName) -> LogResult<StreamInfo> {
        Ok(self.info(stream)?.unwrap_or(StreamInfo::empty(self.epoch)))
    }

    fn append(&self, stream: &StreamName, batch: &Batch<'_>) -> LogResult<Vec<Appended>> {
        let now_ms = batch.now_ms;
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut row = load_or_create(&tx, stream, batch.epoch)?;
        let mut out = Vec::with_capacity(batch.messages.len());
        let mut in_batch: HashMap<&str, u64> = HashMap::new();
        {
            let mut find = tx.prepare_cached(FIND_ID)?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO messages (stream_id, seq, pub_id, ts_ms, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for m in batch.messages {
                let known = match in_batch.get(m.id.as_str()) {
                    Some(&s) => Some(s),
                    None => find
                        .query_row(params![row.id, m.id], |r| {
                            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
                        })
                        .optional()?
                        .filter(|&(s, ts)| self.ids.remembers(s, ts, row.head, now_ms))
                        .map(|(s, _)| s),
                };
                if let Some(s) = known {
                    out.push(Appended::known(seq(s, stream)?));
                    continue;
                }
                let next = seq(row.head + 1, stream)?;
                row.head = next.get();
                insert.execute(params![
                    row.id,
                    row.head as i64,
                    m.id,
                    now_ms as i64,
                    m.data.get()
                ])?;
                in_batch.insert(m.id.as_str(), row.head);
                out.push(Appended::stored(next));
            }
        }
        if let Some(max) = self.retention.max_count {
            let keep_from = row.head.saturating_sub(max) + 1;
            if keep_from > row.earliest {
                tx.prepare_cached("DELETE FROM messages WHERE stream_id = ?1 AND seq < ?2")?
                    .execute(params![row.id, keep_from as i64])?;
                row.earliest = keep_from;
            }
        }
        tx.prepare_cached("UPDATE streams SET head = ?2, earliest = ?3 WHERE id = ?1")?
            .execute(params![row.id, row.head as i64, row.earliest as i64])?;
        tx.commit()?;
        Ok(out)
    }

    fn read(&self, stream: &StreamName, page: Page) -> LogResult<Option<ReadResult>> {
        let (from, to, max) = (page.range.start(), page.range.end(), page.max);
        self.read_view(stream, |conn, row| {
            let info = row.info(stream)?;
            let mut stmt = conn.prepare_cached(
                "SELECT seq, data FROM messages WHERE stream_id = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq LIMIT ?4",
            )?;
            let rows = stmt.query_map(
                params![
                    row.id,
                    from.get() as i64,
                    to.get() as i64,
                    max.min(i64::MAX as u64) as i64
                ],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )?;
            let mut messages = Vec::new();
            for r in rows {
                let (s, data) = r?;
                messages.push(stored(stream, s, data)?);
            }
            Ok(ReadResult { info, messages })
        })
    }

    fn last(&self, stream: &StreamName, count: usize) -> LogResult<Option<ReadResult>> {
        self.read_view(stream, |conn, row| {
            let info = row.info(stream)?;
            let from = row.head.saturating_sub(count as u64) + 1;
            let mut stmt = conn.prepare_cached(
                "SELECT seq, data FROM messages WHERE stream_id = ?1 AND seq >= ?2 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![row.id, from as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut messages = Vec::new();
            if count > 0 {
                for r in rows {
                    let (s, data) = r?;
                    messages.push(stored(stream, s, data)?);
                }
            }
            Ok(ReadResult { info, messages })
        })
    }

    fn trim(&self, now_ms: u64) -> LogResult<u64> {
        let Some(max_age) = self.retention.max_age_ms else {
            return Ok(0);
        };
        let cutoff = now_ms.saturating_sub(max_age) as i64;
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let streams: Vec<(i64, u64, u64)> = {
            let mut stmt = tx.prepare_cached("SELECT id, head, earliest FROM streams")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                ))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut removed = 0u64;
        for (id, head, earliest) in streams {
            if earliest > head {
                continue;
            }
            // Retained messages are a contiguous run ordered by seq and (as
            // appended) by time: the expired ones are a prefix. Walk it from
            // the front instead of scanning the whole stream.
            let mut last_expired: Option<u64> = None;
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT seq, ts_ms FROM messages WHERE stream_id = ?1 AND seq >= ?2 ORDER BY seq LIMIT 1024",
                )?;
                let mut from = earliest;
                'walk: loop {
                    let rows: Vec<(i64, i64)> = stmt
                        .query_map(params![id, from as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<Result<_, _>>()?;
                    if rows.is_empty() {
                        break;
                    }
                    for (s, ts) in &rows {
                        if *ts >= cutoff {
                            break 'walk;
                        }
                        last_expired = Some(*s as u64);
                    }
                    from = last_expired.map_or(from, |s| s + 1);
                }
            }
            let Some(upto) = last_expired else {
                continue;
            };
            let n = tx
                .prepare_cached("DELETE FROM messages WHERE stream_id = ?1 AND seq <= ?2")?
                .execute(params![id, upto as i64])?;
            removed += n as u64;
            tx.prepare_cached("UPDATE streams SET earliest = ?2 WHERE id = ?1")?
                .execute(params![id, (upto + 1) as i64])?;
        }
        tx.commit()?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_id_is_found_through_its_index_not_by_a_scan() -> Result<(), LogError> {
        let dir = std::env::temp_dir().join(format!(
            "seqsync-sqlite-plan-{}-{}",
            std::process::id(),
            super::super::random_epoch().0
        ));
        let _ = std::fs::create_dir_all(&dir);
        let log = SqliteLog::open(dir.join("log.db"), Retention::default())?;
        let plan: Vec<String> = {
            let conn = log.writer();
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {FIND_ID}"))?;
            let rows = stmt.query_map(params![1, "x"], |r| r.get::<_, String>(3))?;
            rows.collect::<Result<_, _>>()?
        };
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            plan,
            ["SEARCH messages USING INDEX messages_pub_id_seq (stream_id=? AND pub_id=?)"]
        );
        Ok(())
    }
}
