//! Builds without the `foreign` feature (the browser package's default
//! module): a session is never over a foreign server, and these are the
//! no-ops the connection policy calls, so that none of that code is linked.

use super::Session;
use crate::adapter::Plan;
use crate::event::Request;
use crate::publish::PublishId;
use crate::types::{Millis, StreamName};

impl<P> Session<P> {
    /// The plan of a session over a foreign server: never, in this build.
    pub fn plan(&self) -> Option<&Plan> {
        None
    }

    pub(super) fn is_foreign(&self) -> bool {
        false
    }

    pub(super) fn foreign_poll_at(&self) -> Option<Millis> {
        None
    }

    pub(super) fn foreign_request(&mut self, _now: Millis, _request: Request) {}

    pub(super) fn foreign_lost(&mut self) {}

    pub(super) fn foreign_opened(&mut self, _now: Millis) {}

    pub(super) fn foreign_poll(&mut self, _now: Millis) {}

    pub(super) fn foreign_publish(&mut self, _publish: PublishId) {}

    pub(super) fn foreign_forget(&mut self, _name: &StreamName) {}
}
