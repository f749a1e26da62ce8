//! Publishes: the reply each handle waits for, given when the session
//! says the publish ended.

use super::*;
use seqsync_core::LimitSide;

impl Driver {
    pub(super) fn publish_failed(&mut self, publish: PublishId, error: PublishError) {
        let Some((id, reply)) = self.publishes.remove(&publish.to_raw()) else {
            return;
        };
        let error = match error {
            PublishError::Refused { code, message } => {
                ClientError::PublishRejected { code, message }
            }
            PublishError::TimedOut => ClientError::PublishTimeout { id },
            PublishError::Closed => ClientError::PublishUnconfirmed { id },
            PublishError::Failed { reason, status } => {
                ClientError::PublishFailed { reason, status }
            }
            PublishError::TooLarge { len, limit } => ClientError::PublishTooLarge {
                len,
                limit,
                side: LimitSide::Server,
            },
        };
        let _ = reply.send(Err(error));
    }
}
