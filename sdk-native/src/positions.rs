//! Resume positions kept across runs: a small trait, and a file-backed
//! implementation.
//!
//! The core's `Session` reports, per stream, the last seq it handed to the
//! application and the epoch it belongs to; a client given a store loads
//! them at connect and resumes each stream after its position instead of
//! starting from a snapshot. What was handed over is what counts: messages
//! still queued in a `Subscription` when the process dies are not delivered
//! again, so read them before relying on the position.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use seqsync_core::{Epoch, Seq};
use serde_json::Value;

/// One stream's resume position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Everything up to this seq was handed to the application.
    pub seq: Seq,
    /// The log incarnation the seq belongs to.
    pub epoch: Epoch,
}

/// Every stream's position, by stream name.
pub type Positions = BTreeMap<String, Position>;

/// Where a client keeps resume positions. Called from a blocking context:
/// an implementation may do plain file or database IO.
pub trait PositionStore: Send + Sync + std::fmt::Debug + 'static {
    /// Every position kept. A store that has none yet returns an empty map.
    ///
    /// # Errors
    /// Any IO error; the client then starts from snapshots.
    fn load(&self) -> io::Result<Positions>;

    /// Replaces what is kept with `positions` (every stream's, not only
    /// those that changed).
    ///
    /// # Errors
    /// Any IO error; the client logs it and tries again at the next change.
    fn save(&self, positions: &Positions) -> io::Result<()>;
}

/// Positions in one JSON file, `{"stream": {"seq": 120, "epoch": 7}, ...}`,
/// replaced atomically (written beside it, then renamed over it).
///
/// ```
/// use seqsync::{FilePositionStore, Position, PositionStore, Positions};
/// let path = std::env::temp_dir().join(format!("seqsync-doc-{}.json", std::process::id()));
/// let store = FilePositionStore::new(&path);
/// let mut positions = Positions::new();
/// positions.insert("room".into(), Position { seq: seqsync::Seq::new(9)?, epoch: seqsync::Epoch(7) });
/// store.save(&positions)?;
/// assert_eq!(store.load()?, positions);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct FilePositionStore {
    path: PathBuf,
}

impl FilePositionStore {
    /// A store in the file at `path` (created on the first save).
    pub fn new(path: impl AsRef<Path>) -> FilePositionStore {
        FilePositionStore {
            path: path.as_ref().to_path_buf(),
        }
    }
}

impl PositionStore for FilePositionStore {
    fn load(&self) -> io::Result<Positions> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Positions::new()),
            Err(e) => return Err(e),
        };
        let value: Value = serde_json::from_str(&text).map_err(io::Error::other)?;
        let Value::Object(map) = value else {
            return Err(io::Error::other("positions file is not a JSON object"));
        };
        let mut positions = Positions::new();
        for (stream, entry) in map {
            let seq = entry.get("seq").and_then(Value::as_u64);
            let epoch = entry.get("epoch").and_then(Value::as_u64);
            // Entries that are not positions are skipped: that stream starts
            // from a snapshot.
            if let (Some(Ok(seq)), Some(epoch)) = (seq.map(Seq::new), epoch) {
                positions.insert(
                    stream,
                    Position {
                        seq,
                        epoch: Epoch(epoch),
                    },
                );
            }
        }
        Ok(positions)
    }

    fn save(&self, positions: &Positions) -> io::Result<()> {
        let map: serde_json::Map<String, Value> = positions
            .iter()
            .map(|(stream, p)| {
                let entry = serde_json::json!({ "seq": p.seq.get(), "epoch": p.epoch.0 });
                (stream.clone(), entry)
            })
            .collect();
        let text = serde_json::to_string(&map).map_err(io::Error::other)?;
        let mut temp = self.path.clone().into_os_string();
        temp.push(".tmp");
        std::fs::write(&temp, text)?;
        std::fs::rename(&temp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_no_positions_and_bad_entries_are_skipped() {
        let path =
            std::env::temp_dir().join(format!("seqsync-positions-{}.json", std::process::id()));
        let store = FilePositionStore::new(&path);
        let _ = std::fs::remove_file(&path);
        assert!(store.load().map(|p| p.is_empty()).unwrap_or(false));
        std::fs::write(
            &path,
            r#"{"a":{"seq":3,"epoch":1},"b":{"seq":-1,"epoch":1},"c":"x"}"#,
        )
        .unwrap_or_default();
        let loaded = store.load().unwrap_or_default();
        assert_eq!(loaded.keys().collect::<Vec<_>>(), ["a"]);
        std::fs::write(&path, "[1]").unwrap_or_default();
        assert!(store.load().is_err());
        let _ = std::fs::remove_file(&path);
    }
}
