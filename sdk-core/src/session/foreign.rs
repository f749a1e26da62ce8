//! A session over a server that does not speak the seqsync protocol. The
//! sequencer's requests become [`ForeignRequest`]s (which the shell's
//! adapter turns into that server's frames and HTTP requests), and the
//! answers the adapter reads back become the sequencer's inputs:
//!
//! - a resuming subscribe reads the head (when the server has one: the
//!   sequencer then fetches exactly the missing range) or catches up page
//!   by page from the position (when it has only history); without either,
//!   the stream goes live at its position;
//! - a stream without a position starts from a snapshot, from the head, or
//!   from its first message (`Plan::start`); after a reset it starts from a
//!   snapshot, else the head, else the earliest seq the server named;
//! - a history answer covers the part of the hole its messages reach (a
//!   short page is paged on at once by the sequencer); an answer that starts
//!   past the first seq asked for, an `earliest` past it, or a "gone"
//!   status resets the stream;
//! - heads are polled (or, without a head source, history after the
//!   position) every `poll_ms`, the only way to notice a lost last message
//!   on a server without heartbeats.

use super::Session;
use super::connection::LinkState;
use super::events::{PublishError, SessionEvent, Transmit};
use crate::adapter::{FetchAnswer, FetchId, ForeignRequest, Plan, Start};
use crate::error::Error;
use crate::event::{Request, ResetReason};
use crate::map::VecMap;
use crate::prelude::*;
use crate::publish::PublishId;
use crate::types::{Epoch, Millis, Seq, SeqRange, StreamId, StreamName};

/// Requests in flight at most; beyond, a request is dropped (the sequencer
/// asks again on its timeout).
const MAX_IN_FLIGHT: usize = 4096;

/// The foreign server's side of a session.
pub(super) struct Foreign<P> {
    pub(super) plan: Plan,
    empty: fn() -> P,
    next_id: u64,
    in_flight: VecMap<FetchId, Fetching>,
    /// The epoch each stream's messages carried last (servers with epochs).
    epochs: VecMap<StreamName, Epoch>,
    /// The earliest seq a "gone" answer named, per stream: where a stream
    /// without snapshot or head starts again.
    earliest: VecMap<StreamName, Seq>,
    pub(super) poll_at: Option<Millis>,
}

impl<P> Foreign<P> {
    pub(super) fn new(plan: Plan, empty: fn() -> P) -> Foreign<P> {
        Foreign {
            plan,
            empty,
            next_id: 0,
            in_flight: VecMap::new(),
            epochs: VecMap::new(),
            earliest: VecMap::new(),
            poll_at: None,
        }
    }
}

/// What an answer in flight is for.
#[derive(Debug, Clone, Copy)]
enum Fetching {
    /// Messages after `since`, fed as live; a full page asks for the next.
    /// While `subscribing`, the last page ends the subscribe.
    CatchUp {
        stream: StreamId,
        since: u64,
        subscribing: bool,
    },
    /// A hole the sequencer asked for.
    History {
        stream: StreamId,
        from: u64,
        to: u64,
        limit: u32,
    },
    /// The state a stream starts from.
    Snapshot { stream: StreamId },
    /// The head, for one of three uses.
    Head { stream: StreamId, purpose: HeadFor },
    /// A publish.
    Publish { publish: PublishId },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeadFor {
    /// Where a stream without a position starts.
    Start,
    /// Where a resuming subscribe's catch-up ends.
    Subscribe,
    /// A poll for a lost last message.
    Poll,
}

impl Fetching {
    fn stream(self) -> Option<StreamId> {
        match self {
            Fetching::CatchUp { stream, .. }
            | Fetching::History { stream, .. }
            | Fetching::Snapshot { stream }
            | Fetching::Head { stream, .. } => Some(stream),
            Fetching::Publish { .. } => None,
        }
    }

    /// Whether this read answers a stream's subscribe: with a position
    /// (`resuming`), its catch-up or head read; without one, the read of
    /// its start.
    fn answers_subscribe(self, resuming: bool) -> bool {
        match self {
            Fetching::CatchUp {
                subscribing: true, ..
            }
            | Fetching::Head {
                purpose: HeadFor::Subscribe,
                ..
            } => resuming,
            Fetching::Snapshot { .. }
            | Fetching::Head {
                purpose: HeadFor::Start,
                ..
            } => !resuming,
            _ => false,
        }
    }

    /// Whether this read answers a stream's subscribe, of either kind.
    fn answers_a_subscribe(self) -> bool {
        self.answers_subscribe(true) || self.answers_subscribe(false)
    }
}

impl<P> Session<P> {
    /// A session over a server that does not speak the seqsync protocol:
    /// `plan` says what its adapter can do (see
    /// [`Description::plan`](crate::adapter::Description::plan)), `empty`
    /// makes the state of a stream that starts without a snapshot. Frames
    /// arrive through [`handle_foreign_message`](Self::handle_foreign_message)
    /// and [`handle_foreign_head`](Self::handle_foreign_head); requests go out
    /// as [`Transmit::Foreign`] and their answers come back through
    /// [`handle_fetched`](Self::handle_fetched).
    ///
    /// # Errors
    /// [`Error::NoEndpoints`] when `config.endpoints` is empty.
    pub fn foreign(
        config: crate::config::SessionConfig,
        plan: Plan,
        empty: fn() -> P,
        seed: [u8; 32],
        now: Millis,
    ) -> Result<Session<P>, Error> {
        let mut session = Session::new(config, seed, now)?;
        session.foreign = Some(Box::new(Foreign::new(plan, empty)));
        Ok(session)
    }

    /// The plan of a session over a foreign server.
    pub fn plan(&self) -> Option<&Plan> {
        self.foreign.as_deref().map(|f| &f.plan)
    }

    /// Whether the session is over a foreign server.
    pub(super) fn is_foreign(&self) -> bool {
        self.foreign.is_some()
    }

    /// When the next poll is due.
    pub(super) fn foreign_poll_at(&self) -> Option<Millis> {
        self.foreign.as_deref().and_then(|f| f.poll_at)
    }

    /// A message from a foreign server, as its adapter read it: stream by
    /// name, seq, epoch when the server has them. Messages of streams not
    /// subscribed are ignored.
    ///
    /// # Errors
    /// As [`Sequencer::handle_message`](crate::Sequencer::handle_message).
    pub fn handle_foreign_message(
        &mut self,
        now: Millis,
        stream: &str,
        seq: Seq,
        epoch: Option<Epoch>,
        payload: P,
    ) -> Result<(), Error> {
        let Some(id) = self.seq.stream_id(stream) else {
            return Ok(());
        };
        self.learn_epoch(id, epoch);
        self.handle_message(now, id, seq, epoch, payload)
    }

    /// A heartbeat of a foreign server: the stream's latest seq.
    ///
    /// # Errors
    /// As [`Sequencer::handle_head`](crate::Sequencer::handle_head).
    pub fn handle_foreign_head(
        &mut self,
        now: Millis,
        stream: &str,
        seq: Seq,
        epoch: Option<Epoch>,
    ) -> Result<(), Error> {
        let Some(id) = self.seq.stream_id(stream) else {
            return Ok(());
        };
        self.learn_epoch(id, epoch);
        if seq == Seq::ZERO {
            return Ok(());
        }
        self.handle_head(now, id, seq, epoch)
    }

    /// The answer to the request `id` ([`Transmit::Foreign`]), `bytes` long.
    /// Answers to requests the session no longer waits for (a stream
    /// unsubscribed, a connection lost) are ignored; an answer of the wrong
    /// kind counts as a bad frame.
    pub fn handle_fetched(
        &mut self,
        now: Millis,
        id: FetchId,
        bytes: usize,
        answer: FetchAnswer<P>,
    ) {
        let Some(foreign) = self.foreign.as_deref_mut() else {
            return;
        };
        let Some(fetching) = foreign.in_flight.remove(&id) else {
            self.stats.stale_answers += 1;
            return;
        };
        if fetching
            .stream()
            .is_some_and(|s| self.seq.stream_name(s).is_none())
        {
            self.stats.stale_answers += 1;
            return;
        }
        let subscribe_of = fetching
            .answers_a_subscribe()
            .then(|| fetching.stream())
            .flatten();
        match (fetching, answer) {
            (Fetching::Publish { publish }, answer) => self.published(now, publish, answer),
            (
                Fetching::CatchUp {
                    stream,
                    since,
                    subscribing: true,
                },
                FetchAnswer::Sent,
            ) => {
                // Asked as a frame: what follows `since` comes as ordinary
                // messages, so the subscribe ends now.
                self.subscribed_at(now, stream, Seq::from_trusted(since));
            }
            (_, FetchAnswer::Failed { .. } | FetchAnswer::Sent) => {
                // Nothing arrived (or it arrives as frames): the sequencer's
                // timeout asks again, with backoff.
            }
            (fetching, FetchAnswer::Gone { earliest }) => {
                let first = match fetching {
                    Fetching::History { from, .. } => from,
                    Fetching::CatchUp { since, .. } => since + 1,
                    _ => 1,
                };
                if let Some(stream) = fetching.stream() {
                    self.gone(now, stream, first, earliest);
                }
            }
            (
                Fetching::History {
                    stream,
                    from,
                    to,
                    limit,
                },
                FetchAnswer::Messages {
                    messages,
                    earliest,
                    epoch,
                },
            ) => {
                self.messages_received(stream, bytes, epoch);
                self.history_answer(now, stream, (from, to, limit), (messages, epoch), earliest);
            }
            (
                Fetching::CatchUp {
                    stream,
                    since,
                    subscribing,
                },
                FetchAnswer::Messages {
                    messages,
                    earliest,
                    epoch,
                },
            ) => {
                self.messages_received(stream, bytes, epoch);
                self.catch_up_answer(now, stream, since, subscribing, (messages, epoch), earliest);
            }
            (Fetching::Snapshot { stream }, FetchAnswer::Snapshot { seq, state }) => {
                self.start_at(now, stream, seq, state);
            }
            (Fetching::Head { stream, purpose }, FetchAnswer::Head { seq }) => match purpose {
                HeadFor::Start => {
                    if let Some(state) = self.empty() {
                        self.start_at(now, stream, seq, state);
                    }
                }
                HeadFor::Subscribe => self.subscribed_at(now, stream, seq),
                HeadFor::Poll if seq > Seq::ZERO => {
                    let _ = self.seq.handle_head(now, stream, seq, None);
                }
                HeadFor::Poll => {}
            },
            _ => self.stats.bad_frames += 1,
        }
        if let Some(stream) = subscribe_of {
            if self.seq.phase(stream) == Some(crate::event::StreamPhase::Live) {
                self.forget_subscribe_reads(stream);
            }
        }
        self.arm_persist(now);
        self.after(now);
    }

    // ---- requests -----------------------------------------------------------------

    /// One sequencer request, in the foreign server's terms.
    pub(super) fn foreign_request(&mut self, now: Millis, request: Request) {
        let Some(plan) = self.foreign.as_deref().map(|f| f.plan) else {
            return;
        };
        match request {
            Request::Subscribe { stream, since, .. } => {
                let Some(id) = self.seq.stream_id(stream.as_str()) else {
                    return;
                };
                self.forget_fetches_of(id, since.is_some());
                self.emit(
                    None,
                    ForeignRequest::Subscribe {
                        stream: stream.clone(),
                        since: since.unwrap_or(Seq::ZERO),
                    },
                );
                match since {
                    Some(_) if plan.head => self.fetch(
                        Fetching::Head {
                            stream: id,
                            purpose: HeadFor::Subscribe,
                        },
                        ForeignRequest::Head { stream },
                    ),
                    Some(since) if plan.history => self.catch_up(id, stream, since.get(), true),
                    Some(since) => self.subscribed_at(now, id, since),
                    None => self.start(now, id, stream),
                }
            }
            Request::FetchSnapshot { stream } => {
                if let Some(id) = self.seq.stream_id(stream.as_str()) {
                    self.start(now, id, stream);
                }
            }
            Request::Unsubscribe { stream } => {
                self.emit(None, ForeignRequest::Unsubscribe { stream });
            }
            Request::FetchHistory { stream, range } => {
                if !plan.history {
                    return;
                }
                let Some(id) = self.seq.stream_id(stream.as_str()) else {
                    return;
                };
                let (from, to) = (range.start().get(), range.end().get());
                let limit = plan
                    .limit
                    .min(u32::try_from(to - from + 1).unwrap_or(u32::MAX));
                self.fetch(
                    Fetching::History {
                        stream: id,
                        from,
                        to,
                        limit,
                    },
                    ForeignRequest::History {
                        stream,
                        since: Seq::from_trusted(from - 1),
                        to: Some(range.end()),
                        limit,
                    },
                );
            }
        }
    }

    /// Where a stream without a position starts: a snapshot, the head, the
    /// earliest seq the server named, or before its first message.
    fn start(&mut self, now: Millis, id: StreamId, stream: StreamName) {
        let Some(foreign) = self.foreign.as_deref() else {
            return;
        };
        let plan = foreign.plan;
        let earliest = foreign.earliest.get(&stream).copied();
        if plan.snapshot {
            self.fetch(
                Fetching::Snapshot { stream: id },
                ForeignRequest::Snapshot { stream },
            );
        } else if plan.head
            && (plan.start == Start::Head || earliest.is_none() && self.restarted(id))
        {
            self.fetch(
                Fetching::Head {
                    stream: id,
                    purpose: HeadFor::Start,
                },
                ForeignRequest::Head { stream },
            );
        } else {
            let base = earliest.map_or(Seq::ZERO, |e| Seq::from_trusted(e.get().saturating_sub(1)));
            if let Some(state) = self.empty() {
                self.start_at(now, id, base, state);
            }
        }
    }

    /// Whether the stream has reset before (so starting from its first
    /// message again would likely meet the same "gone").
    fn restarted(&self, id: StreamId) -> bool {
        self.seq.stats(id).is_some_and(|s| s.resets > 0)
    }

    /// The stream starts at `seq` with `state`, then catches up on what
    /// followed (the start and the subscription raced).
    fn start_at(&mut self, now: Millis, id: StreamId, seq: Seq, state: P) {
        let (epoch, assumed) = self.epoch_for(id);
        if self
            .seq
            .handle_snapshot(now, id, seq, epoch, state)
            .is_err()
        {
            return;
        }
        if assumed {
            self.seq.assume_epoch(id);
        }
        let plan = self.foreign.as_deref().map(|f| f.plan);
        if plan.is_some_and(|p| p.history) {
            if let Some(name) = self.seq.stream_name(id).cloned() {
                self.catch_up(id, name, seq.get(), false);
            }
        }
    }

    fn catch_up(&mut self, id: StreamId, stream: StreamName, since: u64, subscribing: bool) {
        let limit = self.foreign.as_deref().map_or(1, |f| f.plan.limit);
        self.fetch(
            Fetching::CatchUp {
                stream: id,
                since,
                subscribing,
            },
            ForeignRequest::History {
                stream,
                since: Seq::from_trusted(since),
                to: None,
                limit,
            },
        );
    }

    fn fetch(&mut self, fetching: Fetching, request: ForeignRequest) {
        let Some(foreign) = self.foreign.as_deref_mut() else {
            return;
        };
        if foreign.in_flight.len() >= MAX_IN_FLIGHT {
            return;
        }
        let id = FetchId(foreign.next_id);
        foreign.next_id += 1;
        foreign.in_flight.insert(id, fetching);
        self.emit(Some(id), request);
    }

    fn emit(&mut self, id: Option<FetchId>, request: ForeignRequest) {
        self.stats.frames_sent += 1;
        self.transmits.push_back(Transmit::Foreign { id, request });
    }

    /// Drops what was in flight for a stream that subscribes again, except
    /// the reads that answer earlier attempts of the same subscribe (a
    /// retry after the wait ran out): an answer to any attempt completes
    /// it (protocol.md 8.12), and dropping them on every retry would keep
    /// a stream whose reads take longer than the retry wait from ever going
    /// live. The first answer that completes the subscribe drops the others.
    fn forget_fetches_of(&mut self, id: StreamId, resuming: bool) {
        if let Some(foreign) = self.foreign.as_deref_mut() {
            foreign
                .in_flight
                .retain(|_, f| f.stream() != Some(id) || f.answers_subscribe(resuming));
        }
    }

    /// The stream's subscribe is complete: reads of its other attempts no
    /// longer count.
    fn forget_subscribe_reads(&mut self, id: StreamId) {
        if let Some(foreign) = self.foreign.as_deref_mut() {
            foreign
                .in_flight
                .retain(|_, f| f.stream() != Some(id) || !f.answers_a_subscribe());
        }
    }

    /// The connection ended: answers to what was asked on it no longer
    /// count (publishes go on over HTTP).
    pub(super) fn foreign_lost(&mut self) {
        if let Some(foreign) = self.foreign.as_deref_mut() {
            foreign
                .in_flight
                .retain(|_, f| matches!(f, Fetching::Publish { .. }));
            foreign.poll_at = None;
        }
        self.transmits.retain(|t| {
            !matches!(
                t,
                Transmit::Foreign { request, .. } if !matches!(request, ForeignRequest::Publish { .. })
            )
        });
    }

    /// The connection opened: polling starts.
    pub(super) fn foreign_opened(&mut self, now: Millis) {
        if let Some(foreign) = self.foreign.as_deref_mut() {
            if foreign.plan.poll_ms > 0 {
                foreign.poll_at = Some(now.plus(foreign.plan.poll_ms));
            }
        }
    }

    /// The poll timer fired: every live stream with nothing in flight reads
    /// its head (or what follows its position).
    pub(super) fn foreign_poll(&mut self, now: Millis) {
        let Some(foreign) = self.foreign.as_deref_mut() else {
            return;
        };
        if foreign.poll_at.is_none_or(|at| at > now) {
            return;
        }
        let plan = foreign.plan;
        foreign.poll_at = Some(now.plus(plan.poll_ms));
        if !matches!(self.link.state, LinkState::Open { .. }) {
            return;
        }
        let busy: Vec<StreamId> = foreign
            .in_flight
            .values()
            .filter_map(|f| f.stream())
            .collect();
        let live: Vec<(StreamId, StreamName, u64)> = self
            .seq
            .streams()
            .filter(|(id, _)| !busy.contains(id))
            .filter_map(|(id, name)| {
                let stats = self.seq.stats(id)?;
                (stats.phase == crate::event::StreamPhase::Live)
                    .then(|| (id, name.clone(), stats.last_seq.get()))
            })
            .collect();
        for (id, name, last) in live {
            if plan.head {
                self.fetch(
                    Fetching::Head {
                        stream: id,
                        purpose: HeadFor::Poll,
                    },
                    ForeignRequest::Head { stream: name },
                );
            } else if plan.history {
                self.catch_up(id, name, last, false);
            }
        }
    }

    // ---- answers ------------------------------------------------------------------

    /// A hole's answer: the part of `from..=to` its messages reach is
    /// covered (what is missing in it is skipped), messages past `to` are
    /// fed as live. An answer that starts past `from` means the server no
    /// longer has `from` (unless its seqs have holes).
    fn history_answer(
        &mut self,
        now: Millis,
        id: StreamId,
        (from, to, limit): (u64, u64, u32),
        (messages, epoch): (Vec<(Seq, P)>, Option<Epoch>),
        earliest: Option<Seq>,
    ) {
        let holes = self.foreign.as_deref().is_some_and(|f| f.plan.holes);
        if earliest.is_some_and(|e| e.get() > from) {
            self.gone(now, id, from, earliest);
            return;
        }
        let mut messages = sorted_after(messages, from - 1);
        self.stats.history_messages += messages.len() as u64;
        let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
            // Nothing after `from - 1` yet: asked again on the timeout.
            return;
        };
        let (first, last) = (first.0.get(), last.0.get());
        if first > from && !holes {
            self.gone(now, id, from, Some(Seq::from_trusted(first)));
            return;
        }
        let full = messages.len() >= limit as usize;
        // A full page reaches `last`; a short one reaches `to` if its last
        // message does (else the server has not stored the rest yet).
        let end = last.min(to);
        let beyond = messages.split_off(messages.partition_point(|(s, _)| s.get() <= to));
        let _ = full;
        let before = self.seq.stats(id).map_or(0, |s| s.duplicates);
        let range = SeqRange::from_trusted(from, end);
        let _ = self.seq.handle_history(now, id, range, epoch, messages);
        for (seq, payload) in beyond {
            let _ = self.seq.handle_message(now, id, seq, epoch, payload);
        }
        let after = self.seq.stats(id).map_or(0, |s| s.duplicates);
        self.stats.history_duplicates += after.saturating_sub(before);
    }

    /// A catch-up page: its messages are fed as live; a full page asks for
    /// the next; the last page of a subscribe ends it.
    fn catch_up_answer(
        &mut self,
        now: Millis,
        id: StreamId,
        since: u64,
        subscribing: bool,
        (messages, epoch): (Vec<(Seq, P)>, Option<Epoch>),
        earliest: Option<Seq>,
    ) {
        let Some(plan) = self.foreign.as_deref().map(|f| f.plan) else {
            return;
        };
        if earliest.is_some_and(|e| e.get() > since + 1) {
            self.gone(now, id, since + 1, earliest);
            return;
        }
        let count = messages.len();
        let messages = sorted_after(messages, since);
        self.stats.history_messages += messages.len() as u64;
        if let Some((first, _)) = messages.first() {
            if first.get() > since + 1 && !plan.holes {
                let first = *first;
                self.gone(now, id, since + 1, Some(first));
                return;
            }
        }
        let last = messages.last().map_or(since, |(s, _)| s.get());
        let before = self.seq.stats(id).map_or(0, |s| s.duplicates);
        for (seq, payload) in messages {
            let _ = self.seq.handle_message(now, id, seq, epoch, payload);
        }
        let after = self.seq.stats(id).map_or(0, |s| s.duplicates);
        self.stats.history_duplicates += after.saturating_sub(before);
        if count >= plan.limit as usize && last > since {
            if subscribing {
                let _ = self.seq.handle_progress(now, id);
            }
            if let Some(name) = self.seq.stream_name(id).cloned() {
                self.catch_up(id, name, last, subscribing);
            }
        } else if subscribing {
            self.subscribed_at(now, id, Seq::from_trusted(last));
        }
    }

    /// What was asked for from `first` on is gone: the stream resets, and
    /// starts again from the earliest seq the server named when it has no
    /// other start. An answer the stream has outrun (what it still needs
    /// is at or past `earliest`, or past `first` when the server named
    /// none) changes nothing.
    fn gone(&mut self, now: Millis, id: StreamId, first: u64, earliest: Option<Seq>) {
        let Some(stats) = self.seq.stats(id) else {
            return;
        };
        let next = stats.last_seq.get() + 1;
        let outrun = match earliest {
            Some(e) => next >= e.get(),
            None => next > first,
        };
        if outrun && stats.phase != crate::event::StreamPhase::Snapshotting {
            self.stats.stale_answers += 1;
            return;
        }
        if let (Some(foreign), Some(name), Some(e)) = (
            self.foreign.as_deref_mut(),
            self.seq.stream_name(id),
            earliest,
        ) {
            foreign.earliest.insert(name.clone(), e);
        }
        let _ = self
            .seq
            .handle_reset(now, id, ResetReason::HistoryUnavailable, earliest);
    }

    fn published(&mut self, now: Millis, publish: PublishId, answer: FetchAnswer<P>) {
        if self.publishes.get(publish).is_none() {
            return;
        }
        match answer {
            FetchAnswer::Published { seq } => {
                self.publishes.remove(publish);
                self.stats.published += 1;
                self.events.push_back(SessionEvent::PublishAcked {
                    publish,
                    seq: seq.unwrap_or(Seq::ZERO),
                });
                self.finish_close_if_drained();
            }
            FetchAnswer::Failed {
                status: Some(429 | 503),
                ..
            } => {
                let retries = self.publishes.get(publish).map_or(0, |p| p.retries);
                let wait = self.rng.up_to(self.config.reconnect_bound(retries));
                self.publishes.retry_at(publish, now.plus(wait));
                self.stats.publish_retries += 1;
            }
            FetchAnswer::Failed { reason, status } => {
                self.publishes.remove(publish);
                self.publish_failed(publish, PublishError::Failed { reason, status });
                self.finish_close_if_drained();
            }
            _ => {
                self.publishes.remove(publish);
                self.stats.bad_frames += 1;
                self.publish_failed(
                    publish,
                    PublishError::Failed {
                        reason: "the answer was not a publish's".into(),
                        status: None,
                    },
                );
                self.finish_close_if_drained();
            }
        }
    }

    /// Sends a publish over the foreign server's publish request.
    pub(super) fn foreign_publish(&mut self, publish: PublishId) {
        let Some(p) = self.publishes.get(publish) else {
            return;
        };
        let request = ForeignRequest::Publish {
            stream: p.stream.clone(),
            data: p.frame.to_string(),
            id: p.wire_id.to_string(),
        };
        self.fetch(Fetching::Publish { publish }, request);
    }

    // ---- epochs -------------------------------------------------------------------

    /// An answer of messages for `id`, `bytes` long, naming `epoch`: counted
    /// as history, and its epoch learned, before its messages are used.
    fn messages_received(&mut self, id: StreamId, bytes: usize, epoch: Option<Epoch>) {
        self.stats.history_frames += 1;
        self.stats.history_bytes += bytes as u64;
        self.learn_epoch(id, epoch);
    }

    fn learn_epoch(&mut self, id: StreamId, epoch: Option<Epoch>) {
        if let (Some(foreign), Some(epoch), Some(name)) =
            (self.foreign.as_deref_mut(), epoch, self.seq.stream_name(id))
        {
            if let Some(before) = foreign.epochs.insert(name.clone(), epoch) {
                if before != epoch {
                    // A new log: the earliest seq the old one named is void.
                    foreign.earliest.remove(name);
                }
            }
        }
    }

    /// The epoch an answer without one belongs to: the last one the
    /// stream's messages carried, else the stream's own; else 0, assumed
    /// (`true`): the first message that names an epoch sets it.
    fn epoch_for(&self, id: StreamId) -> (Epoch, bool) {
        let learned = self.foreign.as_deref().and_then(|f| {
            self.seq
                .stream_name(id)
                .and_then(|name| f.epochs.get(name).copied())
        });
        match learned.or_else(|| self.seq.stats(id).and_then(|s| s.epoch)) {
            Some(epoch) => (epoch, false),
            None => (Epoch(0), true),
        }
    }

    /// The stream's subscription holds from `head` on, in the epoch
    /// [`epoch_for`](Self::epoch_for) names.
    fn subscribed_at(&mut self, now: Millis, id: StreamId, head: Seq) {
        let (epoch, assumed) = self.epoch_for(id);
        let _ = self.seq.handle_subscribed(now, id, epoch, head);
        if assumed {
            self.seq.assume_epoch(id);
        }
    }

    fn empty(&self) -> Option<P> {
        self.foreign.as_deref().map(|f| (f.empty)())
    }

    /// Forgets what a stream kept (it is unsubscribed).
    pub(super) fn foreign_forget(&mut self, name: &StreamName) {
        if let Some(foreign) = self.foreign.as_deref_mut() {
            foreign.epochs.remove(name);
            foreign.earliest.remove(name);
        }
    }
}

/// `messages` after `since`, sorted, without repeats.
fn sorted_after<P>(mut messages: Vec<(Seq, P)>, since: u64) -> Vec<(Seq, P)> {
    messages.retain(|(s, _)| s.get() > since);
    // Repeats are dropped next, so their order does not matter.
    messages.sort_unstable_by_key(|(s, _)| *s);
    messages.dedup_by_key(|(s, _)| *s);
    messages
}
