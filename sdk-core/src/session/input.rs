//! The one inbound path: what arrives from the transport and the clock, as
//! typed [`Input`], and what each server frame means, decided here and
//! nowhere else. A shell turns bytes into an [`InboundFrame`] (natively
//! with the borrowing parser, in the browser with `JSON.parse` and one
//! crossing carrying the members) and hands it over; it never looks at a
//! frame's `type` to pick a method.

use super::Session;
use super::connection::LinkState;
use super::events::{ConnId, SessionEvent};
use crate::error::Error;
use crate::event::ResetReason;
use crate::prelude::*;
use crate::protocol::{ErrorCode, InboundFrame, StreamKey, parse_stream_ref};
use crate::types::{Epoch, Millis, Seq, SeqRange, StreamId};

/// The close code of a connection the server closed because a frame was
/// over its hard size limit.
const CLOSE_TOO_LARGE: u16 = 1009;

/// What a shell hands [`Session::handle_input`].
#[derive(Debug)]
pub enum Input<'a, P> {
    /// The socket of attempt `conn` is open.
    Opened {
        /// The attempt, as [`Transmit::Connect`](crate::Transmit::Connect)
        /// named it.
        conn: ConnId,
    },
    /// The socket of `conn` closed or failed, or the attempt failed.
    Closed {
        /// The attempt or connection.
        conn: ConnId,
        /// The close code the server sent, when it sent one (1009: a frame
        /// over its hard size limit, which fails the publish that caused
        /// it, protocol section 8.9).
        code: Option<u16>,
        /// Why, in words.
        reason: &'a str,
    },
    /// The time [`Session::poll_timeout`] asked for came.
    Timeout,
    /// A frame arrived on the open connection: `bytes` long, and what the
    /// shell read from it, or why it could not (not text, too large, not
    /// JSON, a member missing or of the wrong type).
    Frame {
        /// Its size as the shell counts it (bytes of UTF-8 natively).
        bytes: usize,
        /// The frame, or why it is not one.
        frame: Result<InboundFrame<'a, P>, Error>,
    },
}

impl<P> Session<P> {
    /// The one entry for what arrives: the session routes it. A frame is
    /// counted (`frames`, `bytes`; a `history` answer also in the history
    /// counters, whichever stream it names), proves the peer alive, and
    /// goes to the stream it names; frames for streams not subscribed
    /// (late after an `unsubscribe`) are otherwise ignored. An `error`
    /// frame whose code this version does not know is reported with
    /// [`ErrorCode::Unknown`] and the code as the server wrote it in front
    /// of the message (`"<code>: <message>"`, see
    /// [`split_unknown_code`](crate::protocol::split_unknown_code)).
    ///
    /// ```
    /// use seqsync_core::protocol::parse_server_frame_raw;
    /// use seqsync_core::{Input, Millis, Session, SessionConfig, SessionEvent, Transmit};
    ///
    /// let mut session = Session::<String>::new(SessionConfig::new("ws://h/ws"), [3; 32], Millis(0))?;
    /// session.subscribe(Millis(0), "room", Default::default())?;
    /// let Some(Transmit::Connect { conn, .. }) = session.poll_transmit() else { unreachable!() };
    /// session.handle_input(Millis(1), Input::Opened { conn })?;
    /// let text = r#"{"type":"snapshot","stream":"room","seq":4,"epoch":1,"state":"s","ref":"0.0"}"#;
    /// let frame = parse_server_frame_raw(text, 1 << 20).map(|f| f.map(|raw| raw.get().to_string()));
    /// session.handle_input(Millis(2), Input::Frame { bytes: text.len(), frame })?;
    /// assert!(std::iter::from_fn(|| session.poll_event()).any(|e| matches!(e, SessionEvent::Stream(_))));
    /// # Ok::<(), seqsync_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// A frame that could not be read or that the sequencer refused, as
    /// the error it caused; it is counted in `bad_frames` and the session
    /// is otherwise unchanged. Other inputs never fail.
    pub fn handle_input(&mut self, now: Millis, input: Input<'_, P>) -> Result<(), Error> {
        match input {
            Input::Opened { conn } => self.handle_opened(now, conn),
            Input::Closed { conn, code, reason } => {
                if code == Some(CLOSE_TOO_LARGE) && self.connection() == Some(conn) {
                    self.refused_as_too_large();
                }
                self.handle_closed(now, conn, reason);
            }
            Input::Timeout => self.handle_timeout(now),
            Input::Frame { bytes, frame } => {
                self.persist_if_due(now);
                self.handle_received(now, bytes);
                let result = frame.and_then(|frame| self.route(now, bytes, frame));
                if result.is_err() {
                    self.handle_bad_frame(now);
                }
                return result;
            }
        }
        Ok(())
    }

    /// What a frame means: the `handle_*` method of its kind, for the
    /// stream it names.
    #[inline(never)]
    pub(super) fn route(
        &mut self,
        now: Millis,
        bytes: usize,
        frame: InboundFrame<'_, P>,
    ) -> Result<(), Error> {
        match frame {
            InboundFrame::Msg {
                stream,
                seq,
                epoch,
                data,
            } => match self.resolve(&stream) {
                Some(id) => self.handle_message(now, id, seq, epoch, data),
                None => Ok(()),
            },
            InboundFrame::Snapshot {
                stream,
                seq,
                epoch,
                state,
                reference,
            } => match self.resolve(&stream) {
                Some(id) => self.handle_snapshot(now, id, seq, epoch, state, reference.as_deref()),
                None => Ok(()),
            },
            InboundFrame::Subscribed {
                stream,
                epoch,
                head,
                reference,
            } => match self.resolve(&stream) {
                Some(id) => self.handle_subscribed(now, id, epoch, head, reference.as_deref()),
                None => Ok(()),
            },
            InboundFrame::History {
                stream,
                range,
                epoch,
                messages,
                reference,
            } => {
                self.stats.history_bytes += bytes as u64;
                match self.resolve(&stream) {
                    Some(id) => {
                        self.handle_history(now, id, range, epoch, messages, reference.as_deref())
                    }
                    None => {
                        // Recovery traffic all the same: counted, as an
                        // answer to an earlier subscription of a stream
                        // still subscribed is.
                        self.count_history(messages.len());
                        Ok(())
                    }
                }
            }
            InboundFrame::Head { heads, frame_limit } => {
                if let Some(limit) = frame_limit {
                    self.server_frame_limit = Some(usize::try_from(limit).unwrap_or(usize::MAX));
                }
                let mut result = Ok(());
                for (stream, head, epoch) in heads {
                    if let Some(id) = self.named(&stream) {
                        result = result.and(self.handle_head(now, id, head, Some(epoch)));
                    }
                }
                result
            }
            InboundFrame::Reset {
                stream,
                reason,
                earliest,
                reference,
            } => match self.resolve(&stream) {
                Some(id) => {
                    let reason = ResetReason::from_wire(&reason);
                    self.handle_reset(now, id, reason, earliest, reference.as_deref())
                }
                None => Ok(()),
            },
            InboundFrame::Ack { id, stream, seq } => {
                let name = match stream {
                    StreamKey::Name(name) => name,
                    // Acks are rare: the name is copied rather than borrowed
                    // from the session that `handle_ack` changes.
                    StreamKey::Id(key) => match self.seq.stream_name(key) {
                        Some(name) => String::from(name.as_str()).into(),
                        None => return Ok(()),
                    },
                };
                self.handle_ack(now, &id, &name, seq);
                Ok(())
            }
            InboundFrame::Error {
                code,
                message,
                reference,
            } => {
                let known = ErrorCode::from_wire(&code);
                let message = match known {
                    ErrorCode::Unknown => crate::protocol::join_unknown_code(&code, &message),
                    _ => message.into_owned(),
                };
                self.handle_error(now, known, &message, reference.as_deref());
                Ok(())
            }
        }
    }

    /// The handle of the stream a frame names. Out of line: the lookup
    /// hashes the name, and one copy of that is enough (bytes in the
    /// browser build).
    #[inline(never)]
    pub(super) fn named(&self, stream: &str) -> Option<StreamId> {
        self.seq.stream_id(stream)
    }

    /// The stream a frame is about, when the session follows it: by name,
    /// or by a handle the shell looked up (checked: the stream may have
    /// been unsubscribed since).
    #[inline(never)]
    pub(super) fn resolve(&self, stream: &StreamKey<'_>) -> Option<StreamId> {
        match stream {
            StreamKey::Name(name) => self.named(name),
            StreamKey::Id(id) => self.seq.stream_name(*id).map(|_| *id),
        }
    }

    /// Counts a `history` answer of `messages` messages.
    pub(super) fn count_history(&mut self, messages: usize) {
        self.stats.history_frames += 1;
        self.stats.history_messages += messages as u64;
    }
}

/// What each frame does, once routed; public for tests and for shells
/// with a path of their own (the browser's in-order fast path and its
/// routing, a foreign server's adapter).
impl<P> Session<P> {
    /// A frame of `bytes` bytes arrived on the open connection: counted, and
    /// the peer is alive. [`handle_input`](Self::handle_input) does this for
    /// every frame it is given; call it only for a frame that takes another
    /// path (the browser's, a foreign server's adapter).
    #[inline]
    pub fn handle_received(&mut self, now: Millis, bytes: usize) {
        self.stats.frames += 1;
        self.stats.bytes += bytes as u64;
        if let LinkState::Open { last_rx, .. } = &mut self.link.state {
            *last_rx = now;
        }
    }

    /// A frame that could not be used (unparseable, too large, a rejected
    /// value): counted, and otherwise ignored.
    pub fn handle_bad_frame(&mut self, _now: Millis) {
        self.stats.bad_frames += 1;
    }

    /// A live message.
    ///
    /// # Errors
    /// As [`Sequencer::handle_message`](crate::Sequencer::handle_message); the session is unchanged.
    pub fn handle_message(
        &mut self,
        now: Millis,
        stream: StreamId,
        seq: Seq,
        epoch: Option<Epoch>,
        payload: P,
    ) -> Result<(), Error> {
        let result = self.seq.handle_message(now, stream, seq, epoch, payload);
        self.arm_persist(now);
        self.after(now);
        result
    }

    /// The hot path: as [`Sequencer::handle_message_direct`](crate::Sequencer::handle_message_direct), an in-order
    /// message with nothing queued comes straight back as `Ok(Some(payload))`
    /// to be delivered now as `seq`.
    ///
    /// # Errors
    /// As [`Sequencer::handle_message`](crate::Sequencer::handle_message).
    #[inline]
    pub fn handle_message_direct(
        &mut self,
        now: Millis,
        stream: StreamId,
        seq: Seq,
        epoch: Option<Epoch>,
        payload: P,
    ) -> Result<Option<P>, Error> {
        let result = self
            .seq
            .handle_message_direct(now, stream, seq, epoch, payload);
        self.persist_due(now);
        if !matches!(result, Ok(Some(_))) {
            self.after(now);
        }
        result
    }

    /// As [`Sequencer::handle_message_in_order`](crate::Sequencer::handle_message_in_order): `Ok(true)` when `seq` is
    /// delivered now with the payload the caller kept; `Ok(false)` when
    /// nothing happened and the message goes to
    /// [`handle_message`](Self::handle_message).
    ///
    /// # Errors
    /// As [`Sequencer::handle_message`](crate::Sequencer::handle_message).
    #[inline]
    pub fn handle_message_in_order(
        &mut self,
        now: Millis,
        stream: StreamId,
        seq: Seq,
        epoch: Option<Epoch>,
    ) -> Result<bool, Error> {
        let taken = self.seq.handle_message_in_order(now, stream, seq, epoch)?;
        if taken {
            self.persist_due(now);
        }
        Ok(taken)
    }

    /// A `snapshot` answer. `reference` is its `ref`: an answer to an
    /// earlier subscription of the stream is dropped.
    ///
    /// # Errors
    /// As [`Sequencer::handle_snapshot`](crate::Sequencer::handle_snapshot).
    pub fn handle_snapshot(
        &mut self,
        now: Millis,
        stream: StreamId,
        seq: Seq,
        epoch: Epoch,
        state: P,
        reference: Option<&str>,
    ) -> Result<(), Error> {
        if !self.answers(stream, reference) {
            return Ok(());
        }
        let result = self.seq.handle_snapshot(now, stream, seq, epoch, state);
        self.arm_persist(now);
        self.after(now);
        result
    }

    /// A `subscribed` answer.
    ///
    /// # Errors
    /// As [`Sequencer::handle_subscribed`](crate::Sequencer::handle_subscribed).
    pub fn handle_subscribed(
        &mut self,
        now: Millis,
        stream: StreamId,
        epoch: Epoch,
        head: Seq,
        reference: Option<&str>,
    ) -> Result<(), Error> {
        if !self.answers(stream, reference) {
            return Ok(());
        }
        let result = self.seq.handle_subscribed(now, stream, epoch, head);
        self.after(now);
        result
    }

    /// A `history` answer covering `range`, counted in the history counters
    /// (its bytes only when it comes through
    /// [`handle_input`](Self::handle_input), which knows them).
    ///
    /// # Errors
    /// As [`Sequencer::handle_history`](crate::Sequencer::handle_history).
    pub fn handle_history(
        &mut self,
        now: Millis,
        stream: StreamId,
        range: SeqRange,
        epoch: Option<Epoch>,
        messages: Vec<(Seq, P)>,
        reference: Option<&str>,
    ) -> Result<(), Error> {
        self.count_history(messages.len());
        if !self.answers(stream, reference) {
            return Ok(());
        }
        let before = self.seq.stats(stream).map_or(0, |s| s.duplicates);
        let result = self.seq.handle_history(now, stream, range, epoch, messages);
        let after = self.seq.stats(stream).map_or(0, |s| s.duplicates);
        self.stats.history_duplicates += after.saturating_sub(before);
        self.arm_persist(now);
        self.after(now);
        result
    }

    /// One stream's entry of a `head` heartbeat.
    ///
    /// # Errors
    /// As [`Sequencer::handle_head`](crate::Sequencer::handle_head).
    pub fn handle_head(
        &mut self,
        now: Millis,
        stream: StreamId,
        head: Seq,
        epoch: Option<Epoch>,
    ) -> Result<(), Error> {
        let result = self.seq.handle_head(now, stream, head, epoch);
        self.after(now);
        result
    }

    /// A `reset` frame.
    ///
    /// # Errors
    /// As [`Sequencer::handle_reset`](crate::Sequencer::handle_reset).
    pub fn handle_reset(
        &mut self,
        now: Millis,
        stream: StreamId,
        reason: ResetReason,
        earliest: Option<Seq>,
        reference: Option<&str>,
    ) -> Result<(), Error> {
        if !self.answers(stream, reference) {
            return Ok(());
        }
        let result = self.seq.handle_reset(now, stream, reason, earliest);
        self.after(now);
        result
    }

    /// An `error` frame. Its `ref` says what it is about: a request of a
    /// stream's current subscription (reported as
    /// [`SessionEvent::Refused`]; the request is retried on its timeout), a
    /// pending publish (`rate_limited` and `internal` are sent again with
    /// the same id after a backoff; other codes fail it), or a stream by
    /// name (a server that does not echo `ref`). A `frame_too_large`
    /// without `ref` fails the largest publish in flight over the server's
    /// announced limit (protocol section 8.9). Anything else is reported
    /// as [`SessionEvent::ServerError`].
    pub fn handle_error(
        &mut self,
        now: Millis,
        code: ErrorCode,
        message: &str,
        reference: Option<&str>,
    ) {
        if self.is_closed() {
            return;
        }
        let Some(reference) = reference else {
            if code != ErrorCode::FrameTooLarge || !self.refused_as_too_large() {
                self.events.push_back(SessionEvent::ServerError {
                    code,
                    message: message.to_string(),
                });
            }
            return;
        };
        if let Some(id) = parse_stream_ref(reference) {
            if self.seq.stream_name(id).is_some() {
                self.refused(id, code, message);
            } else {
                self.stats.stale_answers += 1;
            }
        } else if let Some(publish) = self.publishes.find(reference) {
            self.publish_refused(now, publish, code, message);
        } else if let Some(id) = self.seq.stream_id(reference) {
            self.refused(id, code, message);
        } else {
            self.events.push_back(SessionEvent::ServerError {
                code,
                message: message.to_string(),
            });
        }
        self.after(now);
    }

    /// Whether an answer with `reference` belongs to the stream's current
    /// subscription. Answers without one are matched by stream alone.
    pub(super) fn answers(&mut self, stream: StreamId, reference: Option<&str>) -> bool {
        match reference {
            None => true,
            Some(text) if parse_stream_ref(text) == Some(stream) => true,
            Some(_) => {
                self.stats.stale_answers += 1;
                false
            }
        }
    }

    pub(super) fn refused(&mut self, stream: StreamId, code: ErrorCode, message: &str) {
        self.stats.refused_requests += 1;
        self.events.push_back(SessionEvent::Refused {
            stream,
            code,
            message: message.to_string(),
        });
    }
}
