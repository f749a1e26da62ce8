//! One stream's state machine: every rule of the delivery contract (the
//! README's "The contract", `docs/protocol.md` section 8) lives here.
//!
//! Invariants of an `Ordered` stream with a base (after a snapshot or a
//! resume point):
//! - `next` is the next seq to deliver; everything below it was delivered
//!   (or skipped) exactly once.
//! - `high` is the highest seq known to exist (seen, or announced by a head).
//! - Every seq in `next..=high` is either held in the ring (a message or a
//!   skip marker) or inside exactly one hole; holes are sorted and disjoint.
//! - The ring covers offsets `0..window` from `next`; seqs beyond it are
//!   never held, only remembered as holes, so memory never follows a seq.
//!
//! The fast path (an in-order message with nothing pending) touches only the
//! fields inline in [`StreamState`]; everything needed for recovery lives in a
//! [`Recovery`] box that exists only while something is pending.

use crate::prelude::*;
use alloc::collections::VecDeque;
use core::num::NonZeroU64;

use crate::config::Config;
use crate::event::{Event, Request, ResetReason, StalledRequest, StreamPhase};
use crate::ring::{Ring, Slot};
use crate::stats::{Counters, StreamStats, bump};
use crate::types::{DeliveryMode, Epoch, Millis, Seq, SeqRange, StartAt, StreamId, StreamName};

/// What a stream method needs from its sequencer.
pub(crate) struct Ctx<'a, P> {
    pub(crate) config: &'a Config,
    pub(crate) window: u64,
    pub(crate) connected: bool,
    /// The stream being handled.
    pub(crate) id: StreamId,
    pub(crate) events: &'a mut VecDeque<Event<P>>,
    pub(crate) requests: &'a mut VecDeque<Request>,
    /// The sequencer's spare recovery box.
    pub(crate) spare: &'a mut Option<Box<Recovery<P>>>,
}

#[derive(Debug, Clone, Copy)]
struct Hole {
    start: u64,
    end: u64,
    /// When the hole is requested: a gap timeout after it was first seen,
    /// or at once when the server said it will not come live.
    due: Millis,
}

#[derive(Debug, Clone, Copy)]
struct Fetch {
    start: u64,
    end: u64,
    deadline: Millis,
    /// Requests sent for (part of) this range so far, at least 1.
    attempts: u32,
}

/// A subscribe or snapshot request waiting for its answer.
#[derive(Debug, Clone, Copy)]
struct Wait {
    deadline: Millis,
    attempts: u32,
    /// For a resuming subscribe: the `since` it carried.
    since: u64,
}

#[derive(Debug)]
struct Pending<P> {
    seq: Seq,
    epoch: Option<Epoch>,
    payload: P,
}

#[derive(Debug)]
pub(crate) struct Recovery<P> {
    ring: Ring<P>,
    holes: Vec<Hole>,
    fetches: Vec<Fetch>,
    /// Live messages that arrived while a snapshot was awaited.
    pending: Vec<Pending<P>>,
    wait: Option<Wait>,
    /// Earliest time `service` has work to do.
    deadline: Option<Millis>,
    /// The last hole closed since the previous drain.
    healed: bool,
    /// A hole reaches past the window, so advancing `next` can make more of
    /// it fetchable.
    window_blocked: bool,
}

impl<P> Recovery<P> {
    fn is_idle(&self) -> bool {
        self.ring.is_empty()
            && self.holes.is_empty()
            && self.fetches.is_empty()
            && self.pending.is_empty()
            && self.wait.is_none()
    }

    /// Forgets the requests in flight and the messages held for a snapshot:
    /// what a lost connection takes with it. Held messages and holes stay.
    fn forget_in_flight(&mut self) {
        self.fetches.clear();
        self.wait = None;
        self.pending.clear();
        self.deadline = None;
    }

    /// Forgets everything: the state of a stream that starts over (a reset,
    /// or a snapshot that replaces it) and of a box going back to the spare.
    fn clear(&mut self) {
        self.forget_in_flight();
        self.ring.clear();
        self.holes.clear();
        self.healed = false;
        self.window_blocked = false;
    }
}

/// An epoch or none, in one word. Epochs are at most 2^53 - 1 (the
/// sequencer refuses others at its inputs), so `epoch + 1` is never 0 and
/// `None` costs no extra word: an idle stream stays small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EpochWord(Option<NonZeroU64>);

impl EpochWord {
    const NONE: EpochWord = EpochWord(None);

    #[inline]
    fn of(epoch: Option<Epoch>) -> EpochWord {
        EpochWord(epoch.and_then(|e| NonZeroU64::new(e.0.wrapping_add(1))))
    }

    #[inline]
    fn get(self) -> Option<Epoch> {
        self.0.map(|word| Epoch(word.get() - 1))
    }
}

/// How a frame's epoch relates to the stream's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EpochCheck {
    /// Same epoch, or none to compare.
    Current,
    /// The epoch the stream was reset away from: a late frame, dropped.
    Stale,
    /// Another epoch: the log changed, the stream must reset.
    Changed,
}

/// One subscribed stream.
#[derive(Debug)]
pub(crate) struct StreamState<P> {
    name: StreamName,
    /// Next seq to deliver.
    next: u64,
    /// Highest seq known to exist.
    high: u64,
    /// The log incarnation `next` and `high` belong to, once known.
    epoch: EpochWord,
    /// The epoch of the last `EpochChanged` reset: late frames of it are
    /// dropped instead of resetting the stream again.
    left_epoch: EpochWord,
    counters: Counters,
    recovery: Option<Box<Recovery<P>>>,
    generation: u32,
    phase: StreamPhase,
    mode: DeliveryMode,
    /// A snapshot was accepted or a resume point given: `next` means
    /// something. Without a base the stream waits for a snapshot.
    has_base: bool,
    /// Something arrived for the stream since the last silence sweep
    /// (`Sequencer::resubscribe_silent`).
    heard: bool,
    /// The epoch was assumed, not told: a start on a foreign server whose
    /// answers carry none. The first frame that names an epoch sets it
    /// instead of resetting the stream.
    epoch_assumed: bool,
}

impl<P> StreamState<P> {
    pub(crate) fn new(
        name: StreamName,
        generation: u32,
        start: StartAt,
        mode: DeliveryMode,
    ) -> Self {
        let mut state = StreamState {
            name,
            next: 1,
            high: 0,
            epoch: EpochWord::NONE,
            left_epoch: EpochWord::NONE,
            counters: Counters::default(),
            recovery: None,
            generation,
            phase: StreamPhase::Disconnected,
            mode,
            has_base: false,
            heard: false,
            epoch_assumed: false,
        };
        if let StartAt::After { seq, epoch } = start {
            state.next = seq.get() + 1;
            state.high = seq.get();
            state.has_base = true;
            state.epoch = EpochWord::of(epoch);
        }
        state
    }

    /// The epoch just given was assumed (see `epoch_assumed`).
    #[cfg(feature = "foreign")]
    pub(crate) fn assume_epoch(&mut self) {
        self.epoch_assumed = self.epoch.get().is_some();
    }

    pub(crate) fn generation(&self) -> u32 {
        self.generation
    }

    pub(crate) fn name(&self) -> &StreamName {
        &self.name
    }

    pub(crate) fn phase(&self) -> StreamPhase {
        self.phase
    }

    pub(crate) fn mode(&self) -> DeliveryMode {
        self.mode
    }

    /// Marks the stream as heard from (any frame about it arrived).
    pub(crate) fn hear(&mut self) {
        self.heard = true;
    }

    /// Whether the stream heard nothing since the last call, which starts a
    /// new period. Only a live stream can be silent: the others wait for an
    /// answer that has its own timeout.
    pub(crate) fn take_silence(&mut self) -> bool {
        let silent = !self.heard && self.phase == StreamPhase::Live;
        self.heard = false;
        silent
    }

    /// Whether a control frame of `epoch` may be applied: a stale epoch is
    /// ignored, another epoch resets the stream.
    fn admit_epoch(&mut self, now: Millis, epoch: Option<Epoch>, ctx: &mut Ctx<'_, P>) -> bool {
        match self.check_epoch(epoch) {
            EpochCheck::Current => true,
            EpochCheck::Stale => false,
            EpochCheck::Changed => {
                self.start_over(now, ResetReason::EpochChanged, None, ctx);
                false
            }
        }
    }

    fn check_epoch(&mut self, epoch: Option<Epoch>) -> EpochCheck {
        match (epoch, self.epoch.get()) {
            (Some(epoch), Some(_)) if self.epoch_assumed => {
                self.epoch = EpochWord::of(Some(epoch));
                self.epoch_assumed = false;
                EpochCheck::Current
            }
            (Some(epoch), Some(known)) if epoch != known => {
                if self.left_epoch.get() == Some(epoch) {
                    EpochCheck::Stale
                } else {
                    EpochCheck::Changed
                }
            }
            _ => EpochCheck::Current,
        }
    }

    pub(crate) fn deadline(&self) -> Option<Millis> {
        self.recovery.as_ref().and_then(|r| r.deadline)
    }

    pub(crate) fn stats(&self) -> StreamStats {
        let buffered = self
            .recovery
            .as_ref()
            .map_or(0, |r| (r.ring.len() + r.pending.len()) as u64);
        StreamStats {
            delivered: self.counters.delivered,
            duplicates: u64::from(self.counters.duplicates),
            dropped: u64::from(self.counters.dropped),
            skipped: u64::from(self.counters.skipped),
            gaps: u64::from(self.counters.gaps),
            gaps_healed: u64::from(self.counters.gaps_healed),
            resyncs: u64::from(self.counters.resyncs),
            resets: u64::from(self.counters.resets),
            resubscribes: u64::from(self.counters.resubscribes),
            buffered,
            last_seq: Seq::from_trusted(self.next - 1),
            head: Seq::from_trusted(self.high.max(self.next - 1)),
            lag: self.high.saturating_sub(self.next - 1),
            epoch: self.epoch.get(),
            phase: self.phase,
        }
    }

    fn set_phase(&mut self, phase: StreamPhase, ctx: &mut Ctx<'_, P>) {
        if self.phase != phase {
            self.phase = phase;
            // A stream that just went live gets a whole silence period.
            self.heard = true;
            ctx.events.push_back(Event::PhaseChanged {
                stream: ctx.id,
                phase,
            });
        }
    }

    // ---- connection --------------------------------------------------------

    /// Sends the subscribe that fits the stream's state: resuming after the
    /// contiguous position when there is one, else asking for a snapshot.
    pub(crate) fn on_connected(&mut self, now: Millis, ctx: &mut Ctx<'_, P>) {
        let resume = self.has_base && self.mode == DeliveryMode::Ordered;
        let since = resume.then(|| Seq::from_trusted(self.next - 1));
        ctx.requests.push_back(Request::Subscribe {
            stream: self.name.clone(),
            since,
            epoch: if resume { self.epoch.get() } else { None },
        });
        let timeout = ctx.config.backoff(0);
        let rec = ensure(&mut self.recovery, ctx.window, ctx.spare);
        rec.wait = Some(Wait {
            deadline: now.plus(timeout),
            attempts: 1,
            since: since.map_or(0, Seq::get),
        });
        rec.pending.clear();
        let phase = if resume {
            StreamPhase::Subscribing
        } else {
            StreamPhase::Snapshotting
        };
        self.set_phase(phase, ctx);
        self.service(now, ctx);
    }

    /// Forgets every request in flight: their answers can no longer arrive.
    pub(crate) fn on_disconnected(&mut self, ctx: &mut Ctx<'_, P>) {
        if let Some(rec) = self.recovery.as_mut() {
            rec.forget_in_flight();
        }
        self.set_phase(StreamPhase::Disconnected, ctx);
        self.release_if_idle(ctx);
    }

    /// The stream went silent while live (the server may not hold its
    /// subscription): subscribes again, as on a new connection.
    pub(crate) fn on_silent(&mut self, now: Millis, ctx: &mut Ctx<'_, P>) {
        bump(&mut self.counters.resubscribes);
        if let Some(rec) = self.recovery.as_mut() {
            rec.forget_in_flight();
        }
        self.on_connected(now, ctx);
    }

    /// Asks the server to stop sending the stream.
    pub(crate) fn on_unsubscribe(&mut self, ctx: &mut Ctx<'_, P>) {
        if ctx.connected {
            ctx.requests.push_back(Request::Unsubscribe {
                stream: self.name.clone(),
            });
        }
    }

    // ---- inputs from the server ----------------------------------------------

    /// The fast path: `seq` is the next one, nothing is pending and the
    /// epoch matches. Counts it as delivered and returns true; the caller
    /// hands the payload to the application. Otherwise changes nothing.
    #[inline]
    pub(crate) fn take_in_order(&mut self, seq: Seq, epoch: Option<Epoch>) -> bool {
        let s = seq.get();
        self.heard = true;
        if s == self.next
            && self.recovery.is_none()
            && self.has_base
            && self.phase != StreamPhase::Snapshotting
            && (epoch.is_none() || EpochWord::of(epoch) == self.epoch)
        {
            self.next = s + 1;
            if s > self.high {
                self.high = s;
            }
            self.counters.delivered += 1;
            return true;
        }
        false
    }

    /// A live message. `seq` is at least 1.
    #[inline]
    pub(crate) fn on_message(
        &mut self,
        now: Millis,
        seq: Seq,
        epoch: Option<Epoch>,
        payload: P,
        ctx: &mut Ctx<'_, P>,
    ) {
        if self.take_in_order(seq, epoch) {
            ctx.events.push_back(Event::Message {
                stream: ctx.id,
                seq,
                epoch: self.epoch.get(),
                payload,
            });
            return;
        }
        self.on_message_slow(now, seq, epoch, payload, ctx);
    }

    pub(crate) fn on_message_slow(
        &mut self,
        now: Millis,
        seq: Seq,
        epoch: Option<Epoch>,
        payload: P,
        ctx: &mut Ctx<'_, P>,
    ) {
        if self.phase == StreamPhase::Snapshotting {
            self.hold_for_snapshot(seq, epoch, payload, ctx);
            return;
        }
        if !self.has_base {
            // No snapshot and no resume point: nothing to sequence against
            // (a frame left over from a connection, fed while disconnected).
            bump(&mut self.counters.dropped);
            return;
        }
        match self.check_epoch(epoch) {
            EpochCheck::Stale => {
                bump(&mut self.counters.dropped);
                return;
            }
            EpochCheck::Changed => {
                self.start_over(now, ResetReason::EpochChanged, None, ctx);
                self.hold_for_snapshot(seq, epoch, payload, ctx);
                return;
            }
            EpochCheck::Current => {
                if self.epoch == EpochWord::NONE {
                    self.epoch = EpochWord::of(epoch);
                }
            }
        }
        match self.mode {
            DeliveryMode::Latest => self.accept_latest(seq, payload, ctx),
            DeliveryMode::Ordered => {
                let next = self.next;
                let gaps = self.counters.gaps;
                self.accept_ordered(now, seq.get(), Slot::Msg(payload), ctx);
                self.drain(ctx);
                if self.needs_service(now, next, gaps, ctx) {
                    self.service(now, ctx);
                }
            }
        }
    }

    /// Whether a message's effect on recovery state needs a full `service`
    /// pass now: the stream may have become idle, a deadline passed, a new
    /// hole cannot be scheduled by a simple deadline update, or the window
    /// moved over a hole it used to cut. A new hole inside the window only
    /// lowers the deadline. Skipping the pass keeps healing reorders cheap.
    fn needs_service(
        &mut self,
        now: Millis,
        next_before: u64,
        gaps_before: u32,
        ctx: &Ctx<'_, P>,
    ) -> bool {
        let window_end = self.next + ctx.window - 1;
        let new_hole = self.counters.gaps != gaps_before;
        let Some(rec) = self.recovery.as_mut() else {
            return false;
        };
        if rec.is_idle() || rec.deadline.is_none_or(|d| d <= now) {
            return true;
        }
        if rec.window_blocked && self.next != next_before {
            return true;
        }
        if new_hole {
            if ctx.config.gap_timeout_ms == 0 || self.high > window_end {
                return true;
            }
            let due = now.plus(ctx.config.gap_timeout_ms);
            rec.deadline = min_deadline(rec.deadline, due);
        }
        false
    }

    fn hold_for_snapshot(
        &mut self,
        seq: Seq,
        epoch: Option<Epoch>,
        payload: P,
        ctx: &mut Ctx<'_, P>,
    ) {
        let window = ctx.window as usize;
        let latest = self.mode == DeliveryMode::Latest;
        let rec = ensure(&mut self.recovery, ctx.window, ctx.spare);
        if latest {
            // Only the newest value matters, and Latest never fetches: keep it.
            match rec.pending.first_mut() {
                Some(held) if held.seq >= seq => bump(&mut self.counters.dropped),
                Some(held) => {
                    *held = Pending {
                        seq,
                        epoch,
                        payload,
                    };
                    bump(&mut self.counters.dropped);
                }
                None => rec.pending.push(Pending {
                    seq,
                    epoch,
                    payload,
                }),
            }
            return;
        }
        if rec.pending.len() >= window {
            // Held messages are re-fetched after the snapshot if still missing.
            bump(&mut self.counters.dropped);
            return;
        }
        rec.pending.push(Pending {
            seq,
            epoch,
            payload,
        });
    }

    fn accept_latest(&mut self, seq: Seq, payload: P, ctx: &mut Ctx<'_, P>) {
        let s = seq.get();
        if s > self.high {
            self.high = s;
        }
        if s < self.next {
            bump(&mut self.counters.dropped);
            return;
        }
        self.next = s + 1;
        self.counters.delivered += 1;
        ctx.events.push_back(Event::Message {
            stream: ctx.id,
            seq,
            epoch: self.epoch.get(),
            payload,
        });
    }

    /// Places a message or a skip marker for seq `s` of an ordered stream.
    fn accept_ordered(&mut self, now: Millis, s: u64, slot: Slot<P>, ctx: &mut Ctx<'_, P>) {
        if s < self.next {
            if matches!(slot, Slot::Msg(_)) {
                bump(&mut self.counters.duplicates);
            }
            return;
        }
        let offset = s - self.next;
        if offset >= ctx.window {
            // Beyond the window: not held, and not taken as proof that the
            // seqs before it exist (one wild seq must not turn every later
            // message into a fetch). If it is real, a `head` reveals it and
            // it is fetched once the window gets there.
            bump(&mut self.counters.dropped);
            return;
        }
        if s > self.high {
            if s > self.high + 1 {
                self.reveal_tail(s - 1, now.plus(ctx.config.gap_timeout_ms), ctx);
            }
            self.high = s;
            ensure(&mut self.recovery, ctx.window, ctx.spare)
                .ring
                .insert(offset as usize, slot);
            return;
        }
        let rec = ensure(&mut self.recovery, ctx.window, ctx.spare);
        if rec.ring.is_occupied(offset as usize) {
            if matches!(slot, Slot::Msg(_)) {
                bump(&mut self.counters.duplicates);
            }
            return;
        }
        rec.ring.insert(offset as usize, slot);
        remove_from_holes(&mut rec.holes, s);
        if rec.holes.is_empty() {
            rec.healed = true;
        }
    }

    /// Delivers everything contiguous from `next` out of the ring.
    fn drain(&mut self, ctx: &mut Ctx<'_, P>) {
        let Some(rec) = self.recovery.as_mut() else {
            return;
        };
        let mut skip_start = 0u64;
        loop {
            match rec.ring.pop_front() {
                Some(Slot::Msg(payload)) => {
                    if skip_start != 0 {
                        push_skipped(ctx, ctx.id, skip_start, self.next - 1);
                        skip_start = 0;
                    }
                    let seq = Seq::from_trusted(self.next);
                    self.next += 1;
                    self.counters.delivered += 1;
                    ctx.events.push_back(Event::Message {
                        stream: ctx.id,
                        seq,
                        epoch: self.epoch.get(),
                        payload,
                    });
                }
                Some(Slot::Skipped) => {
                    if skip_start == 0 {
                        skip_start = self.next;
                    }
                    self.next += 1;
                    bump(&mut self.counters.skipped);
                }
                Some(Slot::Empty) | None => break,
            }
        }
        if skip_start != 0 {
            push_skipped(ctx, ctx.id, skip_start, self.next - 1);
        }
        if rec.healed {
            rec.healed = false;
            bump(&mut self.counters.gaps_healed);
            ctx.events.push_back(Event::GapHealed {
                stream: ctx.id,
                through: Seq::from_trusted(self.next - 1),
            });
        }
    }

    /// A history answer covering `range`: messages in it, everything else in
    /// it that is still missing is skipped.
    pub(crate) fn on_history(
        &mut self,
        now: Millis,
        range: SeqRange,
        epoch: Option<Epoch>,
        messages: Vec<(Seq, P)>,
        ctx: &mut Ctx<'_, P>,
    ) {
        if self.phase != StreamPhase::Live || self.mode != DeliveryMode::Ordered {
            return;
        }
        if !self.admit_epoch(now, epoch, ctx) {
            return;
        }
        let (from, to) = (range.start().get(), range.end().get());
        let Some(rec) = self.recovery.as_mut() else {
            return;
        };
        // Only what was asked for counts as covered: an answer cannot make
        // the stream skip seqs it never requested.
        let mut covered: Vec<(u64, u64)> = Vec::new();
        rec.fetches.retain(|f| {
            if f.end < from || f.start > to {
                return true;
            }
            covered.push((f.start.max(from), f.end.min(to)));
            false
        });
        if covered.is_empty() {
            return;
        }
        for (seq, payload) in messages {
            let s = seq.get();
            if covered.iter().any(|&(a, b)| a <= s && s <= b) {
                self.accept_ordered(now, s, Slot::Msg(payload), ctx);
            }
        }
        for (a, b) in covered {
            self.skip_missing(now, a, b, ctx);
        }
        self.drain(ctx);
        self.service(now, ctx);
    }

    /// Marks every still-missing seq of `a..=b` as skipped.
    fn skip_missing(&mut self, now: Millis, a: u64, b: u64, ctx: &mut Ctx<'_, P>) {
        let Some(rec) = self.recovery.as_ref() else {
            return;
        };
        let missing: Vec<(u64, u64)> = rec
            .holes
            .iter()
            .filter(|h| h.end >= a && h.start <= b)
            .map(|h| (h.start.max(a), h.end.min(b)))
            .collect();
        for (x, y) in missing {
            for s in x..=y {
                self.accept_ordered(now, s, Slot::Skipped, ctx);
            }
        }
    }

    /// A heartbeat: the server's latest seq for the stream.
    pub(crate) fn on_head(
        &mut self,
        now: Millis,
        head: Seq,
        epoch: Option<Epoch>,
        ctx: &mut Ctx<'_, P>,
    ) {
        if self.phase != StreamPhase::Live {
            return;
        }
        if !self.admit_epoch(now, epoch, ctx) {
            return;
        }
        let h = head.get();
        if self.mode == DeliveryMode::Latest || h <= self.high {
            self.high = self.high.max(h);
            return;
        }
        self.reveal_tail(h, now.plus(ctx.config.gap_timeout_ms), ctx);
        self.service(now, ctx);
    }

    /// Records that `high+1..=end` exists and is missing (to be requested
    /// at `due`), and moves `high` to `end`.
    fn reveal_tail(&mut self, end: u64, due: Millis, ctx: &mut Ctx<'_, P>) {
        let start = self.high + 1;
        let rec = ensure(&mut self.recovery, ctx.window, ctx.spare);
        add_hole(&mut rec.holes, start, end, due);
        self.high = end;
        bump(&mut self.counters.gaps);
        ctx.events.push_back(Event::GapDetected {
            stream: ctx.id,
            range: SeqRange::from_trusted(start, end),
        });
    }

    /// The answer to a resuming subscribe: the server's epoch and head at the
    /// moment the subscription started. Everything up to `head` that is
    /// missing will not come live, so it is requested at once.
    pub(crate) fn on_subscribed(
        &mut self,
        now: Millis,
        epoch: Epoch,
        head: Seq,
        ctx: &mut Ctx<'_, P>,
    ) {
        if self.phase != StreamPhase::Subscribing {
            self.on_head(now, head, Some(epoch), ctx);
            return;
        }
        // Messages published after the server registered the resume may
        // already have been delivered, so the head is checked against the
        // `since` the subscribe carried, not against what is delivered now.
        let since = self
            .recovery
            .as_mut()
            .and_then(|rec| rec.wait.take())
            .map_or(self.next - 1, |wait| wait.since);
        match self.epoch.get() {
            Some(known) if known != epoch && !self.epoch_assumed => {
                self.start_over(now, ResetReason::EpochChanged, None, ctx);
                return;
            }
            _ => {
                self.epoch = EpochWord::of(Some(epoch));
                self.epoch_assumed = false;
            }
        }
        if head.get() < since {
            self.start_over(now, ResetReason::ServerBehind, None, ctx);
            return;
        }
        self.set_phase(StreamPhase::Live, ctx);
        if self.mode == DeliveryMode::Ordered && head.get() > self.high {
            self.reveal_tail(head.get(), now, ctx);
        }
        self.drain(ctx);
        self.service(now, ctx);
    }

    /// The awaited answer is arriving in pieces: its deadline restarts.
    pub(crate) fn on_progress(&mut self, now: Millis, ctx: &mut Ctx<'_, P>) {
        let Some(wait) = self.recovery.as_mut().and_then(|rec| rec.wait.as_mut()) else {
            return;
        };
        wait.deadline = now.plus(ctx.config.backoff(wait.attempts.saturating_sub(1)));
        self.service(now, ctx);
    }

    /// A snapshot: accepted only while one is awaited.
    pub(crate) fn on_snapshot(
        &mut self,
        now: Millis,
        seq: Seq,
        epoch: Epoch,
        state: P,
        ctx: &mut Ctx<'_, P>,
    ) {
        if self.phase != StreamPhase::Snapshotting {
            return;
        }
        let s = seq.get();
        let mut pending = match self.recovery.as_mut() {
            Some(rec) => {
                let pending = core::mem::take(&mut rec.pending);
                rec.clear();
                pending
            }
            None => Vec::new(),
        };
        let newer = self.mode == DeliveryMode::Ordered
            || !self.has_base
            || self.epoch.get() != Some(epoch)
            || s >= self.next;
        self.epoch = EpochWord::of(Some(epoch));
        self.has_base = true;
        if newer {
            self.next = s + 1;
            self.high = s;
            ctx.events.push_back(Event::Snapshot {
                stream: ctx.id,
                seq,
                epoch,
                state,
            });
        }
        // After the snapshot: an application that starts work on `Live`
        // (publishing, rendering) has the state it builds on by then.
        self.set_phase(StreamPhase::Live, ctx);
        sort_by_seq(&mut pending);
        for p in pending {
            if p.epoch.is_some_and(|e| e != epoch) {
                bump(&mut self.counters.dropped);
                continue;
            }
            if p.seq.get() <= s {
                bump(&mut self.counters.duplicates);
                continue;
            }
            match self.mode {
                DeliveryMode::Latest => self.accept_latest(p.seq, p.payload, ctx),
                DeliveryMode::Ordered => {
                    self.accept_ordered(now, p.seq.get(), Slot::Msg(p.payload), ctx)
                }
            }
        }
        self.drain(ctx);
        self.service(now, ctx);
    }

    /// A `reset` frame: the server cannot continue the stream from where
    /// the client is.
    pub(crate) fn on_reset(
        &mut self,
        now: Millis,
        reason: ResetReason,
        earliest: Option<Seq>,
        ctx: &mut Ctx<'_, P>,
    ) {
        self.start_over(now, reason, earliest, ctx);
    }

    /// Drops the stream's state and asks for a snapshot: after a `reset`
    /// frame, or when the stream itself finds its position cannot be
    /// continued (another epoch, a server behind what was delivered).
    fn start_over(
        &mut self,
        now: Millis,
        reason: ResetReason,
        earliest: Option<Seq>,
        ctx: &mut Ctx<'_, P>,
    ) {
        if !self.has_base {
            // Nothing to reset: the stream already waits for a snapshot.
            return;
        }
        if reason == ResetReason::EpochChanged && self.epoch != EpochWord::NONE {
            self.left_epoch = self.epoch;
        }
        bump(&mut self.counters.resets);
        ctx.events.push_back(Event::Reset {
            stream: ctx.id,
            reason,
            earliest,
        });
        self.epoch = EpochWord::NONE;
        self.epoch_assumed = false;
        self.has_base = false;
        let timeout = ctx.config.backoff(0);
        let connected = ctx.connected;
        let rec = ensure(&mut self.recovery, ctx.window, ctx.spare);
        rec.clear();
        if connected {
            rec.wait = Some(Wait {
                deadline: now.plus(timeout),
                attempts: 1,
                since: 0,
            });
            ctx.requests.push_back(Request::FetchSnapshot {
                stream: self.name.clone(),
            });
            self.set_phase(StreamPhase::Snapshotting, ctx);
        } else {
            self.set_phase(StreamPhase::Disconnected, ctx);
        }
        self.service(now, ctx);
    }

    // ---- timers ----------------------------------------------------------------

    /// Sends every request that is due, retries what timed out, and computes
    /// the next deadline. Called after every input that touched recovery
    /// state and when the deadline passes.
    pub(crate) fn service(&mut self, now: Millis, ctx: &mut Ctx<'_, P>) {
        if self.recovery.is_none() {
            return;
        }
        let mut deadline = None;
        if ctx.connected {
            deadline = self.retry_wait(now, ctx);
            if self.phase == StreamPhase::Live && self.mode == DeliveryMode::Ordered {
                if let Some(due) = self.schedule_fetches(now, ctx) {
                    deadline = min_deadline(deadline, due);
                }
            }
        }
        if let Some(rec) = self.recovery.as_mut() {
            rec.deadline = deadline;
        }
        self.release_if_idle(ctx);
    }

    /// The subscribe or snapshot request the stream waits on: sent again
    /// when its deadline passed. Returns its deadline.
    fn retry_wait(&mut self, now: Millis, ctx: &mut Ctx<'_, P>) -> Option<Millis> {
        let rec = self.recovery.as_mut()?;
        let wait = rec.wait.as_mut()?;
        if wait.deadline > now {
            return Some(wait.deadline);
        }
        let request = match self.phase {
            StreamPhase::Subscribing => Some((
                Request::Subscribe {
                    stream: self.name.clone(),
                    // The retry resumes from what is delivered now;
                    // `wait.since` keeps the first (lowest) since, which any
                    // answer's head is at least.
                    since: Some(Seq::from_trusted(self.next - 1)),
                    epoch: self.epoch.get(),
                },
                StalledRequest::Subscribe,
            )),
            // A subscribe without `since` both (re)registers the
            // subscription and asks for a snapshot.
            StreamPhase::Snapshotting => Some((
                Request::Subscribe {
                    stream: self.name.clone(),
                    since: None,
                    epoch: None,
                },
                StalledRequest::Snapshot,
            )),
            _ => None,
        };
        if let Some((request, stalled)) = request {
            ctx.requests.push_back(request);
            wait.attempts += 1;
            if wait.attempts == ctx.config.stall_after_attempts {
                ctx.events.push_back(Event::Stalled {
                    stream: ctx.id,
                    request: stalled,
                    attempts: wait.attempts,
                });
            }
        }
        wait.deadline = now.plus(ctx.config.backoff(wait.attempts - 1));
        Some(wait.deadline)
    }

    /// History requests of a live ordered stream: retries of fetches that
    /// timed out, then every hole past its gap timeout that no fetch covers,
    /// in pieces of at most `max_fetch` inside the window. Returns the
    /// earliest time something is due next.
    fn schedule_fetches(&mut self, now: Millis, ctx: &mut Ctx<'_, P>) -> Option<Millis> {
        let rec = self.recovery.as_mut()?;
        let mut deadline = None;
        let window_end = self.next + ctx.window - 1;
        // Retries: expired fetches give their attempt count to whatever part
        // of their range is still missing.
        let mut expired: Vec<Fetch> = Vec::new();
        rec.fetches.retain(|f| {
            if f.deadline <= now {
                expired.push(*f);
                false
            } else {
                true
            }
        });
        // Fetches whose seqs all arrived meanwhile are forgotten; a late
        // answer to one is then ignored.
        let holes = &rec.holes;
        rec.fetches.retain(|f| overlaps(holes, f.start, f.end));
        let max_fetch = u64::from(ctx.config.max_fetch.max(1));
        // A hole cut by the window is asked for in pieces of at least this
        // size, so that a window sliding one seq at a time does not send one
        // request per seq.
        let min_piece = (max_fetch.min(ctx.window) / 2).max(1);
        let mut new_fetches: Vec<Fetch> = Vec::new();
        rec.window_blocked = rec.holes.last().is_some_and(|h| h.end > window_end);
        for hole in &rec.holes {
            if hole.start > window_end {
                break;
            }
            let due = hole.due;
            if due > now {
                deadline = min_deadline(deadline, due);
                continue;
            }
            let mut cursor = hole.start;
            let end = hole.end.min(window_end);
            while cursor <= end {
                // Skip parts already in flight.
                if let Some(f) = rec
                    .fetches
                    .iter()
                    .chain(new_fetches.iter())
                    .find(|f| f.start <= cursor && cursor <= f.end)
                {
                    cursor = f.end + 1;
                    continue;
                }
                let next_busy = rec
                    .fetches
                    .iter()
                    .chain(new_fetches.iter())
                    .filter(|f| f.start > cursor)
                    .map(|f| f.start)
                    .min()
                    .unwrap_or(u64::MAX);
                let piece_end = end.min(next_busy - 1).min(cursor + max_fetch - 1);
                if piece_end == window_end
                    && hole.end > window_end
                    && piece_end - cursor + 1 < min_piece
                {
                    break;
                }
                let attempts = expired
                    .iter()
                    .filter(|f| f.start <= piece_end && cursor <= f.end)
                    .map(|f| f.attempts)
                    .max()
                    .unwrap_or(0)
                    + 1;
                let range = SeqRange::from_trusted(cursor, piece_end);
                ctx.requests.push_back(Request::FetchHistory {
                    stream: self.name.clone(),
                    range,
                });
                bump(&mut self.counters.resyncs);
                if attempts == ctx.config.stall_after_attempts {
                    ctx.events.push_back(Event::Stalled {
                        stream: ctx.id,
                        request: StalledRequest::History(range),
                        attempts,
                    });
                }
                new_fetches.push(Fetch {
                    start: cursor,
                    end: piece_end,
                    deadline: now.plus(ctx.config.backoff(attempts - 1)),
                    attempts,
                });
                cursor = piece_end + 1;
            }
        }
        // Kept sorted by start (fetches are disjoint) by insertion rather
        // than a sort: a second sort instantiation is kilobytes of WASM.
        for fetch in new_fetches {
            let at = rec.fetches.partition_point(|f| f.start < fetch.start);
            rec.fetches.insert(at, fetch);
        }
        for f in &rec.fetches {
            deadline = min_deadline(deadline, f.deadline);
        }
        deadline
    }

    fn release_if_idle(&mut self, ctx: &mut Ctx<'_, P>) {
        if self.phase != StreamPhase::Live && self.phase != StreamPhase::Disconnected {
            return;
        }
        if self.recovery.as_ref().is_some_and(|r| r.is_idle()) {
            if let Some(mut rec) = self.recovery.take() {
                if ctx.spare.is_none() {
                    rec.clear();
                    *ctx.spare = Some(rec);
                }
            }
        }
    }
}

/// Whether any hole holds a seq of `start..=end`.
fn overlaps(holes: &[Hole], start: u64, end: u64) -> bool {
    let index = holes.partition_point(|h| h.end < start);
    holes.get(index).is_some_and(|h| h.start <= end)
}

fn min_deadline(current: Option<Millis>, candidate: Millis) -> Option<Millis> {
    Some(current.map_or(candidate, |c| c.min(candidate)))
}

fn push_skipped<P>(ctx: &mut Ctx<'_, P>, stream: StreamId, start: u64, end: u64) {
    ctx.events.push_back(Event::Skipped {
        stream,
        range: SeqRange::from_trusted(start, end),
    });
}

/// Adds `start..=end` (above every existing hole) to the sorted hole list,
/// merging with the last hole when adjacent.
fn add_hole(holes: &mut Vec<Hole>, start: u64, end: u64, due: Millis) {
    if let Some(last) = holes.last_mut() {
        if last.end + 1 == start {
            last.end = end;
            return;
        }
    }
    holes.push(Hole { start, end, due });
}

/// Removes one seq from the hole that holds it, splitting the hole.
fn remove_from_holes(holes: &mut Vec<Hole>, seq: u64) {
    let index = holes.partition_point(|h| h.end < seq);
    let Some(hole) = holes.get_mut(index) else {
        return;
    };
    if hole.start > seq {
        return;
    }
    match (hole.start == seq, hole.end == seq) {
        (true, true) => {
            holes.remove(index);
        }
        (true, false) => hole.start += 1,
        (false, true) => hole.end -= 1,
        (false, false) => {
            let tail = Hole {
                start: seq + 1,
                end: hole.end,
                due: hole.due,
            };
            hole.end = seq - 1;
            holes.insert(index + 1, tail);
        }
    }
}

/// The stream's recovery state, created on first need (from the spare box
/// when there is one).
fn ensure<'a, P>(
    recovery: &'a mut Option<Box<Recovery<P>>>,
    window: u64,
    spare: &mut Option<Box<Recovery<P>>>,
) -> &'a mut Recovery<P> {
    recovery.get_or_insert_with(|| {
        spare.take().unwrap_or_else(|| {
            Box::new(Recovery {
                ring: Ring::new(window as usize),
                holes: Vec::new(),
                fetches: Vec::new(),
                pending: Vec::new(),
                wait: None,
                deadline: None,
                healed: false,
                window_blocked: false,
            })
        })
    })
}

/// Sorts messages by seq, in place: a heapsort, O(n log n) whatever order a
/// peer sent them in. Written out because the standard library's sort is
/// about 5 KB of the browser build, for this one use.
fn sort_by_seq<P>(items: &mut [Pending<P>]) {
    fn sift<P>(items: &mut [Pending<P>], mut root: usize, end: usize) {
        loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            if child + 1 < end && items[child].seq < items[child + 1].seq {
                child += 1;
            }
            if items[root].seq >= items[child].seq {
                return;
            }
            items.swap(root, child);
            root = child;
        }
    }
    let n = items.len();
    for start in (0..n / 2).rev() {
        sift(items, start, n);
    }
    for end in (1..n).rev() {
        items.swap(0, end);
        sift(items, 0, end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_sorted_by_seq_whatever_order_they_came_in() {
        let mut state = 7u64;
        let orders: [Vec<u64>; 5] = [
            Vec::new(),
            vec![1],
            (1..=200).rev().collect(),
            (1..=200).collect(),
            (0..300)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    1 + (state >> 33) % 50
                })
                .collect(),
        ];
        for order in orders {
            let mut items: Vec<Pending<u64>> = order
                .iter()
                .map(|&s| Pending {
                    seq: Seq::new(s).expect("seq"),
                    epoch: None,
                    payload: s,
                })
                .collect();
            sort_by_seq(&mut items);
            let mut expected = order.clone();
            expected.sort_unstable();
            let got: Vec<u64> = items.iter().map(|p| p.seq.get()).collect();
            assert_eq!(got, expected);
            assert!(
                items.iter().all(|p| p.payload == p.seq.get()),
                "payloads move with their seq"
            );
        }
    }
}
