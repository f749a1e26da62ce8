//! The one inbound path: what arrives from the transport and the clock, as
//! typed [`Input`], and what each server frame means, decided here and
//! nowhere else. A shell turns bytes into an [`InboundFrame`] (natively
//! with the borrowing parser, in the browser with `JSON.parse` and one
//! crossing carrying the members) and hands it over; it never looks at a
//! frame's `type` to pick a method.

use super::Session;
use crate::error::Error;
use crate::event::{ConnId, ResetReason};
use crate::protocol::{ErrorCode, InboundFrame};
use crate::types::Millis;

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
            Input::Closed { conn, reason } => self.handle_closed(now, conn, reason),
            Input::Timeout => self.handle_timeout(now),
            Input::Frame { bytes, frame } => {
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
    fn route(
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
            } => match self.seq.stream_id(&stream) {
                Some(id) => self.handle_message(now, id, seq, epoch, data),
                None => Ok(()),
            },
            InboundFrame::Snapshot {
                stream,
                seq,
                epoch,
                state,
                reference,
            } => match self.seq.stream_id(&stream) {
                Some(id) => self.handle_snapshot(now, id, seq, epoch, state, reference.as_deref()),
                None => Ok(()),
            },
            InboundFrame::Subscribed {
                stream,
                epoch,
                head,
                reference,
            } => match self.seq.stream_id(&stream) {
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
                match self.seq.stream_id(&stream) {
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
            InboundFrame::Head { heads } => {
                let mut result = Ok(());
                for (stream, head, epoch) in heads {
                    if let Some(id) = self.seq.stream_id(&stream) {
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
            } => match self.seq.stream_id(&stream) {
                Some(id) => {
                    let reason = ResetReason::from_wire(&reason);
                    self.handle_reset(now, id, reason, earliest, reference.as_deref())
                }
                None => Ok(()),
            },
            InboundFrame::Ack { id, stream, seq } => {
                self.handle_ack(now, &id, &stream, seq);
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

    /// Counts a `history` answer of `messages` messages.
    pub(super) fn count_history(&mut self, messages: usize) {
        self.stats.history_frames += 1;
        self.stats.history_messages += messages as u64;
    }
}
