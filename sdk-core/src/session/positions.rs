//! Resume positions: given by the application, reported as streams move
//! (coalesced per `persist_interval_ms`), voided by a reset.

use super::Session;
use super::events::SessionEvent;
use crate::prelude::*;
use crate::types::{DeliveryMode, Epoch, Millis, Seq, StreamId, StreamName};

impl<P> Session<P> {
    /// Resume positions the application kept from an earlier run: a later
    /// [`subscribe`](Self::subscribe) of one of these streams resumes after
    /// its seq instead of asking for a snapshot. Calling it (with any
    /// positions, none included) says the shell keeps the positions the
    /// session reports: from then on a stream subscribed again resumes
    /// from its last reported position too.
    pub fn resume_from(&mut self, positions: impl IntoIterator<Item = (StreamName, Seq, Epoch)>) {
        self.keeps_positions = true;
        for (stream, seq, epoch) in positions {
            self.positions.insert(stream, (seq, epoch));
        }
    }

    /// Reports every stream's position that changed since it was last
    /// reported, now (for example before a page unloads).
    pub fn checkpoint(&mut self, _now: Millis) {
        self.report_positions();
    }

    pub(super) fn arm_persist(&mut self, now: Millis) {
        if self.config.persist_interval_ms > 0 && self.timers.persist.is_none() {
            self.timers.persist = Some(now.plus(self.config.persist_interval_ms));
        }
    }

    /// After an in-order delivery the shell makes itself: reports the
    /// positions now if the persist deadline has passed, arms it otherwise.
    pub(super) fn persist_due(&mut self, now: Millis) {
        if !self.persist_if_due(now) {
            self.arm_persist(now);
        }
    }

    /// Reports the positions if the persist deadline has passed, and says
    /// whether it did. A timer can fire late (a busy page runs its timers
    /// after the frames waiting for it), and positions reported only when it
    /// fires would then lag by more than `persist_interval_ms`: the first
    /// frame after the deadline reports them. Called before a frame is read,
    /// so that what it reports was handed out already (the shell polls every
    /// event after each input), or after an in-order message the shell
    /// delivers itself (it delivers it before polling).
    pub(super) fn persist_if_due(&mut self, now: Millis) -> bool {
        let due = self.timers.persist.is_some_and(|at| at <= now);
        if due {
            self.timers.persist = None;
            self.report_positions();
        }
        due
    }

    pub(super) fn report_positions(&mut self) {
        let streams: Vec<StreamId> = self.seq.streams().map(|(id, _)| id).collect();
        for id in streams {
            self.report_position(id);
        }
    }

    /// Reports the stream's position if it has one (an `Ordered` stream with
    /// a known epoch) that differs from the last reported.
    pub(super) fn report_position(&mut self, id: StreamId) {
        if self.seq.delivery_mode(id) != Some(DeliveryMode::Ordered) {
            return;
        }
        let (Some(name), Some(stats)) = (self.seq.stream_name(id), self.seq.stats(id)) else {
            return;
        };
        let Some(epoch) = stats.epoch else {
            // The stream reset and waits for a snapshot: the position kept
            // for it is void, and a later subscribe must not resume from it.
            let name = name.clone();
            self.positions.remove(&name);
            return;
        };
        let position = (stats.last_seq, epoch);
        if self.positions.get(name) == Some(&position) {
            return;
        }
        let name = name.clone();
        self.positions.insert(name.clone(), position);
        self.events.push_back(SessionEvent::Position {
            stream: name,
            seq: position.0,
            epoch,
        });
    }
}
