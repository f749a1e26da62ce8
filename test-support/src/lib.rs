//! # seqsync-test-support
//!
//! The fixtures every test suite of the workspace shares, one of each:
//!
//! - [`TestServer`]: a reference server with the limits and storage a test
//!   asks for, on a free loopback port; [`Running`] stops or restarts it
//!   and opens clients to it;
//! - [`WsClient`]: a raw WebSocket client speaking JSON frames, for tests
//!   of the wire protocol;
//! - [`client_config`]: the native client tuned for tests (short gap
//!   timeout, fast reconnects);
//! - [`StreamCheck`]: the contract checker, fed a subscription's events;
//! - [`Proxy`]: a loopback TCP proxy that cuts or stalls connections;
//! - [`RedisServer`] and [`RedisCluster`]: Redis processes on free ports,
//!   stopped on drop;
//! - [`TempDir`]: a directory removed on drop;
//! - [`ForeignServer`]: the chat server of `tests/foreign/`, which knows
//!   nothing of seqsync, as several instances over one SQLite file and one
//!   Redis;
//! - [`FaultyWsProxy`]: a WebSocket proxy that drops, duplicates, reorders
//!   and cuts a server's frames, decided by a seed.
//!
//! ```no_run
//! # async fn demo() {
//! use seqsync_test_support::TestServer;
//!
//! let server = TestServer::new().limits(|l| l.max_streams = 2).start().await;
//! let mut ws = server.ws().await;
//! assert_eq!(ws.publish("room", "p1", serde_json::json!("hi")).await, 1);
//! server.stop().await;
//! # }
//! ```

mod check;
mod foreign;
mod proxy;
mod redis;
mod server;
mod temp;
mod ws;
mod ws_proxy;

use std::time::Duration;

use tokio::time::Instant;

pub use check::{StreamCheck, read_to, read_until, read_until_snapshot, watch_streams};
pub use foreign::{ForeignConfig, ForeignServer};
pub use proxy::{Proxy, ProxyMode};
pub use redis::{RedisCluster, RedisServer};
pub use server::{
    Running, TestServer, client_config, connect, publish_numbers, served, wait_state,
};
pub use temp::TempDir;
pub use ws::{
    CloseFrame, Read, WsClient, http, http_get, message_seqs, upgrade_refusal, ws_server,
};
pub use ws_proxy::{FaultyWsProxy, WsFaults, WsProxyStats};

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// Polls `check` every few milliseconds until it holds; panics naming
/// `what` when it does not within [`WAIT`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
