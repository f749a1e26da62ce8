//! Publishes: ids, the pending table, acks, retries after `rate_limited` and
//! `internal`, the frame size limit (the client's and the one the server
//! announced), and failures.

use super::Session;
use super::events::{PublishError, SessionEvent};
use crate::error::{Error, LimitSide};
use crate::prelude::*;
use crate::protocol::{ErrorCode, encode};
use crate::publish::{Pending, PublishId};
use crate::types::{Millis, Seq, StreamName};

impl<P> Session<P> {
    /// Publishes `data`, the payload as JSON text (it goes into the frame
    /// as it is), to `stream`. The publish gets a random id, is sent now
    /// if connected, is sent again with the same id after every reconnect
    /// and after `rate_limited`/`internal` refusals, and ends with exactly
    /// one [`SessionEvent::PublishAcked`] or [`SessionEvent::PublishFailed`].
    ///
    /// A frame over the effective limit (the smaller of
    /// `max_publish_bytes` and the limit the server announced, see
    /// [`server_frame_limit`](Self::server_frame_limit)) is refused here,
    /// before anything is sent.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::InvalidStreamName`],
    /// [`Error::TooManyPendingPublishes`], [`Error::PublishTooLarge`];
    /// nothing is sent then.
    pub fn publish(&mut self, now: Millis, stream: &str, data: &str) -> Result<PublishId, Error> {
        if self.closing || self.is_closed() {
            return Err(Error::Closed);
        }
        let name = StreamName::new(stream)?;
        if self.publishes.len() >= self.config.max_pending_publishes {
            return Err(Error::TooManyPendingPublishes {
                limit: self.config.max_pending_publishes,
            });
        }
        let foreign = self.plan().map(|p| p.publish);
        if foreign == Some(false) {
            return Err(Error::Unsupported {
                what: "publishing: the server's description has no publish request",
            });
        }
        let wire_id = self.rng.uuid();
        // To a foreign server the payload goes as it is, into its request.
        let frame = match foreign {
            Some(_) => data.to_string(),
            None => encode::publish(stream, &wire_id, data),
        };
        let (max, side) = self.publish_limit();
        if frame.len() > max {
            return Err(Error::PublishTooLarge {
                len: frame.len(),
                max,
                side,
            });
        }
        self.expect_traffic(now);
        if self.is_open() && foreign.is_none() {
            self.send(frame.clone());
        }
        let publish = self.publishes.insert(Pending {
            wire_id: wire_id.into_boxed_str(),
            stream: name,
            frame: frame.into_boxed_str(),
            deadline: now.plus(self.config.publish_timeout_ms),
            retries: 0,
            retry_at: None,
        });
        if foreign.is_some() {
            self.foreign_publish(publish);
        }
        self.after(now);
        Ok(publish)
    }

    /// An `ack`: the publish with wire id `id` is stored as `seq`. An ack
    /// that matches no pending publish of `stream` is ignored (the answer to
    /// a retry of a publish already acknowledged).
    pub fn handle_ack(&mut self, now: Millis, id: &str, stream: &str, seq: Seq) {
        let Some(publish) = self.publishes.find(id) else {
            return;
        };
        if self
            .publishes
            .get(publish)
            .is_some_and(|p| p.stream.as_str() != stream)
        {
            return;
        }
        self.publishes.remove(publish);
        self.stats.published += 1;
        self.events
            .push_back(SessionEvent::PublishAcked { publish, seq });
        self.finish_close_if_drained();
        self.after(now);
    }

    pub(super) fn publish_refused(
        &mut self,
        now: Millis,
        publish: PublishId,
        code: ErrorCode,
        message: &str,
    ) {
        if code == ErrorCode::FrameTooLarge {
            self.failed_too_large(publish);
            self.finish_close_if_drained();
            return;
        }
        if code.is_retryable() {
            let retries = self.publishes.get(publish).map_or(0, |p| p.retries);
            let wait = self.rng.up_to(self.config.reconnect_bound(retries));
            self.publishes.retry_at(publish, now.plus(wait));
            self.stats.publish_retries += 1;
            return;
        }
        self.publishes.remove(publish);
        self.publish_failed(
            publish,
            PublishError::Refused {
                code,
                message: message.to_string(),
            },
        );
        self.finish_close_if_drained();
    }

    /// The largest frame a publish may have, and which side set it: the
    /// smaller of `max_publish_bytes` and the server's announced limit.
    fn publish_limit(&self) -> (usize, LimitSide) {
        match self.server_frame_limit {
            Some(server) if server < self.config.max_publish_bytes => (server, LimitSide::Server),
            _ => (self.config.max_publish_bytes, LimitSide::Client),
        }
    }

    /// The server refused a frame as too large without naming it
    /// (`frame_too_large` without `ref`, or a close with 1009): the
    /// publish it refused is the largest one in flight on the open
    /// connection whose frame is over the limit the server announced (any
    /// size when it announced none). It fails, and is not sent again.
    /// Returns false when no publish can be the one.
    ///
    /// In flight means sent on this connection and not answered: while a
    /// connection is open, every pending publish not held back by a
    /// retryable refusal was sent on it (on open, or when made or due).
    #[cold]
    #[inline(never)]
    pub(super) fn refused_as_too_large(&mut self) -> bool {
        if !self.is_open() || self.is_foreign() {
            return false;
        }
        let above = self.server_frame_limit.unwrap_or(0);
        let Some(publish) = self.publishes.largest_in_flight(above) else {
            return false;
        };
        self.failed_too_large(publish);
        self.finish_close_if_drained();
        self.timers.publishes = self.publishes.next_deadline();
        true
    }

    /// Ends a publish the server refused as too large.
    fn failed_too_large(&mut self, publish: PublishId) {
        let Some(pending) = self.publishes.remove(publish) else {
            return;
        };
        let error = PublishError::TooLarge {
            len: pending.frame.len(),
            limit: self.server_frame_limit,
        };
        self.publish_failed(publish, error);
    }

    /// A publish ended without an ack: rare, kept out of line.
    #[cold]
    #[inline(never)]
    pub(super) fn publish_failed(&mut self, publish: PublishId, error: PublishError) {
        self.stats.publish_failures += 1;
        self.events
            .push_back(SessionEvent::PublishFailed { publish, error });
    }
}
