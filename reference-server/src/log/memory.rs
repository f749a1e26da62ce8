//! The in-memory log: for tests, demos and benchmarks. Lost on restart,
//! so every start gives each stream a new epoch.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use seqsync_core::{Epoch, Seq, StreamName};

use super::{
    Appended, Log, LogError, NewMessage, Payload, ReadResult, Retention, StoredMessage, StreamInfo,
    random_epoch, seq,
};

struct Entry {
    seq: u64,
    ts_ms: u64,
    id: Box<str>,
    data: Payload,
}

struct MemStream {
    epoch: Epoch,
    head: u64,
    /// Retained messages, contiguous, ascending.
    messages: VecDeque<Entry>,
    /// Publish id -> seq, for retained messages.
    ids: HashMap<Box<str>, u64>,
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

    fn pop_front(&mut self) {
        if let Some(e) = self.messages.pop_front() {
            self.ids.remove(&e.id);
        }
    }
}

/// A [`Log`] kept in memory.
pub struct MemoryLog {
    retention: Retention,
    streams: Mutex<HashMap<StreamName, MemStream>>,
}

impl MemoryLog {
    /// An empty log with the given retention.
    pub fn new(retention: Retention) -> MemoryLog {
        MemoryLog {
            retention,
            streams: Mutex::new(HashMap::new()),
        }
    }

    fn with<R>(
        &self,
        stream: &StreamName,
        f: impl FnOnce(&mut MemStream) -> Result<R, LogError>,
    ) -> Result<R, LogError> {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let entry = streams.entry(stream.clone()).or_insert_with(|| MemStream {
            epoch: random_epoch(),
            head: 0,
            messages: VecDeque::new(),
            ids: HashMap::new(),
        });
        f(entry)
    }
}

impl std::fmt::Debug for MemoryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLog")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl Log for MemoryLog {
    fn open(&self, stream: &StreamName) -> Result<StreamInfo, LogError> {
        self.with(stream, |s| s.info(stream))
    }

    fn append(
        &self,
        stream: &StreamName,
        batch: &[NewMessage],
        now_ms: u64,
    ) -> Result<Vec<Appended>, LogError> {
        let max_count = self.retention.max_count;
        self.with(stream, |s| {
            let mut out = Vec::with_capacity(batch.len());
            for m in batch {
                if let Some(&known) = s.ids.get(m.id.as_str()) {
                    out.push(Appended {
                        seq: seq(known, stream)?,
                        duplicate: true,
                    });
                    continue;
                }
                let next = seq(s.head + 1, stream)?;
                s.head = next.get();
                s.ids.insert(m.id.as_str().into(), s.head);
                s.messages.push_back(Entry {
                    seq: s.head,
                    ts_ms: now_ms,
                    id: m.id.as_str().into(),
                    data: m.data.clone(),
                });
                out.push(Appended {
                    seq: next,
                    duplicate: false,
                });
            }
            if let Some(max) = max_count {
                while s.messages.len() as u64 > max {
                    s.pop_front();
                }
            }
            Ok(out)
        })
    }

    fn read(
        &self,
        stream: &StreamName,
        from: Seq,
        to: Seq,
        max: u64,
    ) -> Result<ReadResult, LogError> {
        self.with(stream, |s| {
            let info = s.info(stream)?;
            let start = from.get().max(info.earliest.get());
            let end = to.get().min(s.head);
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

    fn last(&self, stream: &StreamName, count: usize) -> Result<ReadResult, LogError> {
        self.with(stream, |s| {
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

    fn trim(&self, now_ms: u64) -> Result<u64, LogError> {
        let Some(max_age) = self.retention.max_age_ms else {
            return Ok(0);
        };
        let cutoff = now_ms.saturating_sub(max_age);
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let mut removed = 0;
        for s in streams.values_mut() {
            while s.messages.front().is_some_and(|e| e.ts_ms < cutoff) {
                s.pop_front();
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn is_blocking(&self) -> bool {
        false
    }
}
