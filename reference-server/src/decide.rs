//! What the server answers, as pure functions of the log's state: the
//! resume decision of a `subscribe` with `since` (section 4.1), the page a
//! `history` request gets (section 4.3), and the messages a snapshot's
//! state holds. No IO, no clock: the connection reads the log, then asks
//! these.

use seqsync_core::protocol::{HistoryMessage, WireRange};
use seqsync_core::{Epoch, ResetReason, Seq, SeqRange};
use serde_json::value::RawValue;

use crate::log::{StoredMessage, StreamInfo};

/// Bytes counted for one history or snapshot entry besides its payload
/// (`{"seq":...,"data":}` and a comma).
pub(crate) const ENTRY_OVERHEAD: usize = 32;

/// The answer to a `subscribe` that resumes after `since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// `subscribed` with the stream's epoch and head.
    Subscribed,
    /// `reset` with this reason (and `earliest` for `history_unavailable`).
    Reset {
        /// Why the position cannot be continued.
        reason: ResetReason,
        /// The first seq still held, sent with `history_unavailable`.
        earliest: Option<Seq>,
    },
}

/// Section 4.1, step 5, for a subscribe with `since` (and `epoch` when the
/// client knows one). A `since` above the head in the same epoch is
/// answered `subscribed`: the client sees the head below its position and
/// resets itself (`server_behind`).
pub(crate) fn resume(since: Seq, epoch: Option<Epoch>, info: &StreamInfo) -> Resume {
    if epoch.is_some_and(|e| e != info.epoch) {
        return Resume::Reset {
            reason: ResetReason::EpochChanged,
            earliest: None,
        };
    }
    if since < info.head && since.get() + 1 < info.earliest.get() {
        return Resume::Reset {
            reason: ResetReason::HistoryUnavailable,
            earliest: Some(info.earliest),
        };
    }
    Resume::Subscribed
}

/// The answer to a `history` request.
#[derive(Debug, Clone)]
pub(crate) enum History<'a> {
    /// `from` is above the head: `error range_beyond_head`.
    BeyondHead {
        /// The head.
        head: Seq,
    },
    /// `from` is below the earliest retained seq: `reset
    /// history_unavailable`.
    Gone {
        /// The first retained seq.
        earliest: Seq,
    },
    /// A `history` frame covering `covered`.
    Page {
        /// The seqs the page answers for: from the requested `from` up to
        /// at most the head, the page size, and what fits the byte budget.
        covered: SeqRange,
        /// The stored messages of `covered`, ascending.
        messages: Vec<HistoryMessage<&'a RawValue>>,
        /// The seqs of `covered` not in `messages`.
        skipped: Vec<WireRange>,
    },
}

/// How big a history page may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageLimits {
    /// Most seqs covered.
    pub(crate) seqs: u64,
    /// Most payload bytes (at least one message is always sent).
    pub(crate) bytes: usize,
}

/// Section 4.3 for `range`, given the stream's state and the stored
/// messages the log returned for it (ascending, at most `limits.seqs`).
/// A page never covers a seq whose fate it has not seen: when the byte
/// budget cuts it short, it covers only up to the last message it holds.
pub(crate) fn history<'a>(
    range: SeqRange,
    info: &StreamInfo,
    stored: &'a [StoredMessage],
    limits: PageLimits,
) -> History<'a> {
    let from = range.start();
    if from > info.head {
        return History::BeyondHead { head: info.head };
    }
    if from < info.earliest {
        return History::Gone {
            earliest: info.earliest,
        };
    }
    let mut covered_to = range
        .end()
        .get()
        .min(info.head.get())
        .min(from.get().saturating_add(limits.seqs.max(1) - 1));
    let mut bytes = 0usize;
    let mut skipped = Vec::new();
    let mut expect = from.get();
    let mut messages = Vec::with_capacity(stored.len());
    for m in stored {
        let s = m.seq.get();
        if s < expect {
            continue;
        }
        if s > covered_to {
            break;
        }
        bytes += m.data.get().len() + ENTRY_OVERHEAD;
        if bytes > limits.bytes && !messages.is_empty() {
            covered_to = expect - 1;
            break;
        }
        push_range(&mut skipped, expect, s - 1);
        expect = s + 1;
        messages.push(HistoryMessage {
            seq: m.seq,
            data: &*m.data,
        });
    }
    push_range(&mut skipped, expect, covered_to);
    match SeqRange::from_u64(from.get(), covered_to) {
        Ok(covered) => History::Page {
            covered,
            messages,
            skipped,
        },
        // `covered_to >= from` holds: `from <= head`, `from <= to` and the
        // page holds at least `from` itself.
        Err(_) => History::BeyondHead { head: info.head },
    }
}

fn push_range(ranges: &mut Vec<WireRange>, from: u64, to: u64) {
    if let Ok(r) = SeqRange::from_u64(from, to) {
        ranges.push(WireRange(r));
    }
}

/// The messages a snapshot's state holds: the latest of `latest`
/// (ascending) whose payloads fit in `max_bytes`, newest first kept; the
/// newest one always.
pub(crate) fn snapshot_messages(latest: &[StoredMessage], max_bytes: usize) -> &[StoredMessage] {
    let mut bytes = 0usize;
    let mut keep = 0;
    for m in latest.iter().rev() {
        bytes += m.data.get().len() + ENTRY_OVERHEAD;
        if bytes > max_bytes && keep > 0 {
            break;
        }
        keep += 1;
    }
    &latest[latest.len() - keep..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(n: u64) -> Seq {
        Seq::new(n).unwrap_or(Seq::ZERO)
    }

    fn info(epoch: u64, earliest: u64, head: u64) -> StreamInfo {
        StreamInfo {
            epoch: Epoch(epoch),
            head: seq(head),
            earliest: seq(earliest),
        }
    }

    fn stored(seqs: &[u64], payload: &str) -> Vec<StoredMessage> {
        seqs.iter()
            .map(|&s| StoredMessage {
                seq: seq(s),
                data: RawValue::from_string(payload.to_string()).unwrap_or_default(),
            })
            .collect()
    }

    fn range(from: u64, to: u64) -> SeqRange {
        SeqRange::from_u64(from, to).unwrap_or_else(|e| panic!("{e}"))
    }

    const WIDE: PageLimits = PageLimits {
        seqs: 1000,
        bytes: 1 << 20,
    };

    fn page(answer: &History<'_>) -> (u64, u64, Vec<u64>, Vec<(u64, u64)>) {
        let History::Page {
            covered,
            messages,
            skipped,
        } = answer
        else {
            panic!("not a page: {answer:?}");
        };
        (
            covered.start().get(),
            covered.end().get(),
            messages.iter().map(|m| m.seq.get()).collect(),
            skipped
                .iter()
                .map(|r| (r.0.start().get(), r.0.end().get()))
                .collect(),
        )
    }

    const SUBSCRIBED: Resume = Resume::Subscribed;
    const EPOCH_CHANGED: Resume = Resume::Reset {
        reason: ResetReason::EpochChanged,
        earliest: None,
    };

    fn gone(earliest: u64) -> Resume {
        Resume::Reset {
            reason: ResetReason::HistoryUnavailable,
            earliest: Some(seq(earliest)),
        }
    }

    #[test]
    fn resume_follows_section_4_1() {
        let cases = [
            // Same epoch, within retention: subscribed.
            (5, Some(7), info(7, 1, 9), SUBSCRIBED),
            (0, None, info(7, 1, 0), SUBSCRIBED),
            // Another epoch: reset, the log is another one.
            (5, Some(8), info(7, 1, 9), EPOCH_CHANGED),
            // Before retention: reset with the earliest seq held; the seq
            // just before earliest is the edge.
            (3, None, info(7, 8, 12), gone(8)),
            (7, None, info(7, 8, 12), SUBSCRIBED),
            // Beyond the head: subscribed, the client sees the head and
            // resets itself (server_behind); also when retention emptied
            // the log and the client has it all.
            (50, Some(7), info(7, 1, 9), SUBSCRIBED),
            (12, None, info(7, 13, 12), SUBSCRIBED),
        ];
        for (since, epoch, info, answer) in cases {
            assert_eq!(
                resume(seq(since), epoch.map(Epoch), &info),
                answer,
                "since {since}, epoch {epoch:?}, {info:?}"
            );
        }
    }

    #[test]
    fn history_above_the_head_or_below_earliest_is_no_page() {
        let msgs = stored(&[], "1");
        assert!(matches!(
            history(range(10, 12), &info(1, 1, 9), &msgs, WIDE),
            History::BeyondHead { head } if head == seq(9)
        ));
        assert!(matches!(
            history(range(2, 12), &info(1, 8, 12), &msgs, WIDE),
            History::Gone { earliest } if earliest == seq(8)
        ));
    }

    #[test]
    fn history_page_stops_at_head_and_page_size() {
        let msgs = stored(&[2, 3, 4, 5], "1");
        let limits = PageLimits {
            seqs: 4,
            bytes: 1 << 20,
        };
        assert_eq!(
            page(&history(range(2, 100), &info(1, 1, 10), &msgs, limits)),
            (2, 5, vec![2, 3, 4, 5], vec![])
        );
        let tail = stored(&[9, 10], "1");
        assert_eq!(
            page(&history(range(9, 100), &info(1, 1, 10), &tail, WIDE)),
            (9, 10, vec![9, 10], vec![])
        );
    }

    #[test]
    fn history_lists_missing_seqs_as_skipped() {
        let msgs = stored(&[121, 122, 125], "1");
        assert_eq!(
            page(&history(range(121, 126), &info(1, 1, 126), &msgs, WIDE)),
            (121, 126, vec![121, 122, 125], vec![(123, 124), (126, 126)])
        );
    }

    #[test]
    fn history_cut_by_bytes_covers_only_what_it_holds() {
        let msgs = stored(&[1, 2, 3, 4, 5], &format!("\"{}\"", "y".repeat(100)));
        let limits = PageLimits {
            seqs: 1000,
            bytes: 300,
        };
        assert_eq!(
            page(&history(range(1, 5), &info(1, 1, 5), &msgs, limits)),
            (1, 2, vec![1, 2], vec![])
        );
        // One message bigger than the budget still goes out alone.
        let tiny = PageLimits {
            seqs: 1000,
            bytes: 1,
        };
        assert_eq!(
            page(&history(range(3, 5), &info(1, 1, 5), &msgs[2..], tiny)),
            (3, 3, vec![3], vec![])
        );
    }

    #[test]
    fn a_huge_range_is_answered_with_one_page() {
        let msgs = stored(&[1], "1");
        let (from, to, _, skipped) = page(&history(
            range(1, seqsync_core::MAX_SEQ),
            &info(1, 1, 5000),
            &msgs,
            WIDE,
        ));
        assert_eq!((from, to), (1, 1000));
        assert_eq!(skipped, vec![(2, 1000)]);
    }

    #[test]
    fn snapshot_keeps_the_newest_messages_that_fit() {
        let msgs = stored(&[1, 2, 3, 4], &format!("\"{}\"", "z".repeat(68)));
        let kept: Vec<u64> = snapshot_messages(&msgs, 250)
            .iter()
            .map(|m| m.seq.get())
            .collect();
        assert_eq!(kept, [3, 4]);
        let one: Vec<u64> = snapshot_messages(&msgs, 1)
            .iter()
            .map(|m| m.seq.get())
            .collect();
        assert_eq!(one, [4], "the newest message always");
        assert!(snapshot_messages(&[], 10).is_empty());
    }
}
