//! Ordered completion for expensive handlers: run up to N at once, complete
//! in seq order, and never let one stuck handler block the stream forever.

use std::future::Future;
use std::time::Duration;

use futures_core::Stream;
use futures_util::StreamExt;
use futures_util::future::{Either, ready};
use seqsync_core::Seq;

use crate::event::SubscriptionEvent;

/// What [`process_ordered`] yields, in the subscription's order.
#[derive(Debug, Clone, PartialEq)]
pub enum Processed<T, D = crate::Payload> {
    /// The handler finished for message `seq`.
    Done {
        /// The message's seq.
        seq: Seq,
        /// What the handler returned.
        output: T,
    },
    /// The handler for message `seq` ran past the timeout and was dropped.
    TimedOut {
        /// The message's seq.
        seq: Seq,
    },
    /// Any other event, passed through in place.
    Event(SubscriptionEvent<D>),
}

/// Runs `handler` on up to `concurrency` messages at once while keeping the
/// results in seq order; each handler gets at most `timeout`.
///
/// ```no_run
/// # async fn demo(subscription: seqsync::Subscription) {
/// use futures_util::StreamExt;
/// use seqsync::{process_ordered, Processed};
/// use std::time::Duration;
///
/// let mut results = Box::pin(process_ordered(subscription, 8, Duration::from_secs(5), |seq, data| async move {
///     // e.g. write to a database; completes in any order...
///     (seq, data.to_string().len())
/// }));
/// while let Some(result) = results.next().await {
///     // ...but arrives here in seq order.
///     if let Processed::TimedOut { seq } = result {
///         eprintln!("handler for {seq} timed out");
///     }
/// }
/// # }
/// ```
pub fn process_ordered<S, F, Fut, T, D>(
    events: S,
    concurrency: usize,
    timeout: Duration,
    mut handler: F,
) -> impl Stream<Item = Processed<T, D>>
where
    S: Stream<Item = SubscriptionEvent<D>>,
    F: FnMut(Seq, D) -> Fut,
    Fut: Future<Output = T>,
{
    events
        .map(move |event| match event {
            SubscriptionEvent::Message { seq, data, .. } => {
                let work = tokio::time::timeout(timeout, handler(seq, data));
                Either::Left(async move {
                    match work.await {
                        Ok(output) => Processed::Done { seq, output },
                        Err(_) => Processed::TimedOut { seq },
                    }
                })
            }
            other => Either::Right(ready(Processed::Event(other))),
        })
        .buffered(concurrency.max(1))
}
