//! Publishes: ids, the pending table, acks, retries after `rate_limited` and
//! `internal`, and failures.

use super::Session;
use super::events::{PublishError, SessionEvent};
use crate::error::Error;
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
        if frame.len() > self.config.max_publish_bytes {
            return Err(Error::PublishTooLarge {
                len: frame.len(),
                max: self.config.max_publish_bytes,
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

    /// A publish ended without an ack: rare, kept out of line.
    #[cold]
    #[inline(never)]
    pub(super) fn publish_failed(&mut self, publish: PublishId, error: PublishError) {
        self.stats.publish_failures += 1;
        self.events
            .push_back(SessionEvent::PublishFailed { publish, error });
    }
}
