//! The in-memory log: for tests, demos and benchmarks. Lost on restart,
//! so every start gives each stream a new epoch.
//!
//! Like an SQLite file, the log draws one epoch when it is created: a
//! stream with nothing in it is in that epoch, and so is its first message
//! (the server creates each stream in the epoch [`Log::reserve`] named).
//! A server restarted over the same `MemoryLog` (see
//! [`Server::start_with_log`](crate::Server::start_with_log)) names it again.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use seqsync_core::{Epoch, StreamName};

use super::{
    Appended, Batch, IdWindow, Log, LogError, LogResult, Page, Payload, ReadResult, Retention,
    StoredMessage, StreamInfo, seq,
};

struct Entry {
    seq: u64,
    ts_ms: u64,
    data: Payload,
}

/// A remembered publish id, in the order ids were stored.
struct IdEntry {
    id: Box<str>,
    seq: u64,
    ts_ms: u64,
}

struct MemStream {
    epoch: Epoch,
    head: u64,
    /// Retained messages, contiguous, ascending.
    messages: VecDeque<Entry>,
    /// Publish id -> (seq, time stored), for the ids in `id_order`.
    ids: HashMap<Box<str>, (u64, u64)>,
    /// The remembered ids, oldest first: what falls out of the window is
    /// forgotten from the front, so the map never outgrows the window.
    id_order: VecDeque<IdEntry>,
}

impl MemStream {
    fn info(&self, name: &StreamName) -> Result<StreamInfo, LogError> {
        let earliest = self.messages.front().map_or(self.head + 1, |e| e.seq);
        Ok(StreamInfo {
            epoch: self.epoch,
            head: seq(self.head, name)?,
            earliest: seq(earliest, name)?,
        })
    }

    fn forget_ids(&mut self, window: &IdWindow, now_ms: u64) {
        while let Some(front) = self.id_order.front() {
            if window.remembers(front.seq, front.ts_ms, self.head, now_ms) {
                break;
            }
            if self
                .ids
                .get(&front.id)
                .is_some_and(|&(s, _)| s == front.seq)
            {
                self.ids.remove(&front.id);
            }
            self.id_order.pop_front();
        }
    }
}

/// A [`Log`] kept in memory.
pub struct MemoryLog {
    /// The epoch of streams with nothing appended yet: the log's own.
    epoch: Epoch,
    retention: Retention,
    ids: IdWindow,
    streams: Mutex<HashMap<StreamName, MemStream>>,
}

impl MemoryLog {
    /// An empty log with the given retention and the default [`IdWindow`].
    pub fn new(retention: Retention) -> MemoryLog {
        MemoryLog {
            epoch: super::random_epoch(),
            retention,
            ids: IdWindow::default(),
            streams: Mutex::new(HashMap::new()),
        }
    }

    /// The same log, remembering publish ids within `ids`.
    pub fn with_id_window(mut self, ids: IdWindow) -> MemoryLog {
        self.ids = ids;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StreamName, MemStream>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn view<R>(
        &self,
        stream: &StreamName,
        f: impl FnOnce(&MemStream) -> Result<R, LogError>,
    ) -> Result<Option<R>, LogError> {
        self.lock().get(stream).map(f).transpose()
    }
}

impl std::fmt::Debug for MemoryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (streams, retention, ids) = (self.lock().len(), self.retention, self.ids);
        write!(
            f,
            "MemoryLog {{ streams: {streams}, retention: {retention:?}, ids: {ids:?} }}"
        )
    }
}

impl Log for MemoryLog {
    fn info(&self, stream: &StreamName) -> LogResult<Option<StreamInfo>> {
        self.view(stream, |s| s.info(stream))
    }

    fn reserve(&self, stream: &StreamName) -> LogResult<StreamInfo> {
        Ok(self.info(stream)?.unwrap_or(StreamInfo::empty(self.epoch)))
    }

    fn append(&self, stream: &StreamName, batch: &Batch<'_>) -> LogResult<Vec<Appended>> {
        let (window, now_ms) = (self.ids, batch.now_ms);
        let mut streams = self.lock();
        let s = streams.entry(stream.clone()).or_insert_with(|| MemStream {
            epoch: batch.epoch,
            head: 0,
            messages: VecDeque::new(),
            ids: HashMap::new(),
            id_order: VecDeque::new(),
        });
        let mut out = Vec::with_capacity(batch.messages.len());
        for m in batch.messages {
            s.forget_ids(&window, now_ms);
            if let Some(&(known, _)) = s.ids.get(m.id.as_str()) {
                out.push(Appended::known(seq(known, stream)?));
                continue;
            }
            let next = seq(s.head + 1, stream)?;
            s.head = next.get();
            let id: Box<str> = m.id.as_str().into();
            s.ids.insert(id.clone(), (s.head, now_ms));
            s.id_order.push_back(IdEntry {
                id,
                seq: s.head,
                ts_ms: now_ms,
            });
            s.messages.push_back(Entry {
                seq: s.head,
                ts_ms: now_ms,
                data: m.data.clone(),
            });
            out.push(Appended::stored(next));
        }
        if let Some(max) = self.retention.max_count {
            while s.messages.len() as u64 > max {
                s.messages.pop_front();
            }
        }
        Ok(out)
    }

    fn read(&self, stream: &StreamName, page: Page) -> LogResult<Option<ReadResult>> {
        let max = page.max;
        self.view(stream, |s| {
            let info = s.info(stream)?;
            let start = page.range.start().get().max(info.earliest.get());
            let end = page.range.end().get().min(s.head);
            let mut messages = Vec::new();
            if start <= end {
                let offset = (start - info.earliest.get()) as usize;
                for e in s.messages.iter().skip(offset).take(max as usize) {
                    if e.seq > end {
                        break;
                    }
                    messages.push(StoredMessage {
                        seq: seq(e.seq, stream)?,
                        data: e.data.clone(),
                    });
                }
            }
            Ok(ReadResult { info, messages })
        })
    }

    fn last(&self, stream: &StreamName, count: usize) -> LogResult<Option<ReadResult>> {
        self.view(stream, |s| {
            let info = s.info(stream)?;
            let skip = s.messages.len().saturating_sub(count);
            let mut messages = Vec::with_capacity(count.min(s.messages.len()));
            for e in s.messages.iter().skip(skip) {
                messages.push(StoredMessage {
                    seq: seq(e.seq, stream)?,
                    data: e.data.clone(),
                });
            }
            Ok(ReadResult { info, messages })
        })
    }

    fn trim(&self, now_ms: u64) -> LogResult<u64> {
        let window = self.ids;
        let cutoff = self
            .retention
            .max_age_ms
            .map(|max_age| now_ms.saturating_sub(max_age));
        let mut streams = self.lock();
        let mut removed = 0;
        for s in streams.values_mut() {
            s.forget_ids(&window, now_ms);
            let Some(cutoff) = cutoff else { continue };
            while s.messages.front().is_some_and(|e| e.ts_ms < cutoff) {
                s.messages.pop_front();
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn is_blocking(&self) -> bool {
        false
    }
}
