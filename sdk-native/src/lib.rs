//! # seqsync — the native tokio client
//!
//! Subscribes to sequenced streams on a seqsync server and hands the
//! application every message exactly once, in order — or an explicit
//! `Reset` when the server no longer has what is missing. Reconnects with
//! backoff and jitter, fails over across endpoints, resumes after the last
//! contiguous seq, and fetches exactly the missing ranges.
//!
//! One background task owns the socket and the core's `seqsync_core::Session`
//! (the connection policy above the `Sequencer`); this crate only carries
//! out what the session asks and translates: every decision — sequencing,
//! reconnecting, failover, dead peers, publish retries — is the core's.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use seqsync::{Client, ClientConfig, SubscriptionEvent};
//!
//! # async fn demo() -> Result<(), seqsync::ClientError> {
//! let client = Client::connect(ClientConfig::new("ws://127.0.0.1:8080/ws")).await?;
//! let mut room = client.subscribe("room:42").await?;
//! let seq = client.publish("room:42", serde_json::json!({"text": "hi"})).await?;
//! println!("published as {seq}");
//! while let Some(event) = room.next().await {
//!     match event {
//!         SubscriptionEvent::Snapshot { seq, state, .. } => println!("state at {seq}: {state}"),
//!         SubscriptionEvent::Message { seq, data, .. } => println!("{seq}: {data}"),
//!         SubscriptionEvent::Reset { reason, .. } => println!("reset: {}", reason.as_str()),
//!         _ => {}
//!     }
//! }
//! client.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! The connection can be stopped and started again: `Client::disconnect`
//! and `Client::reconnect`, any number of times. A client whose first
//! connection does not come in time is `ConnectionState::Failed`, not
//! closed (`Client::spawn` returns such a client instead of an error);
//! subscriptions stay and resume, pending publishes wait each on its own
//! timeout. `Client::close_now` ends at once, failing pending publishes
//! with `ClientError::PublishUnconfirmed` (they may have been stored).
#![forbid(unsafe_code)]

pub mod adapter;
mod client;
mod config;
mod driver;
mod error;
mod event;
mod mailbox;
mod ordered;
mod payload;
mod positions;
mod tls;

pub use client::{Client, Subscription};
pub use config::{AdapterSource, ClientConfig};
pub use error::ClientError;
pub use event::{ClientStats, ConnectionState, SubscriptionEvent};
pub use ordered::{Processed, process_ordered};
pub use payload::Payload;
pub use positions::{FilePositionStore, Position, PositionStore, Positions};
/// The TLS library `wss://` connections use, for building a
/// [`rustls::ClientConfig`] of your own ([`ClientConfig::tls_config`]).
pub use rustls;
pub use seqsync_core::protocol::ErrorCode;
pub use seqsync_core::{
    DeliveryMode, Epoch, LimitSide, ResetReason, Seq, SeqRange, SessionConfig, StalledRequest,
    StartAt, StreamPhase, StreamStats, SubscribeOptions,
};
pub use tls::{TlsOptions, TokenFuture, TokenProvider, TokenSource};
