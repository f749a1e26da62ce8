//! A reference server for tests, and the native client tuned for tests.

use std::net::SocketAddr;
use std::ops::Deref;
use std::time::Duration;

use seqsync::{Client, ClientConfig, ConnectionState};
use seqsync_server::{Limits, RunningServer, Server, ServerConfig, Storage};

use crate::proxy::Proxy;
use crate::ws::WsClient;

/// The native client's configuration for tests at `url`: a short gap
/// timeout, quick reconnects, a heartbeat timeout well above the test
/// server's heartbeat.
pub fn client_config(url: &str) -> ClientConfig {
    ClientConfig::new(url)
        .gap_timeout(Duration::from_millis(30))
        .heartbeat_timeout(Duration::from_millis(2_000))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(300))
}

/// Starts a test server with `change` made to its configuration, and
/// connects a raw JSON client to it: the start of most protocol tests.
///
/// ```no_run
/// # async fn demo() {
/// let (server, mut client) = seqsync_test_support::served(|c| c.limits.history_page = 4).await;
/// # let _ = (server, &mut client);
/// # }
/// ```
pub async fn served(change: impl FnOnce(&mut ServerConfig)) -> (Running, WsClient) {
    TestServer::new().config(change).connected().await
}

/// A server to start: in memory, on a free loopback port, heartbeats every
/// 100 ms, and publish rate and error budget out of the way of tests that
/// publish fast (tests of those limits set them).
///
/// ```no_run
/// # async fn demo() {
/// use seqsync_test_support::TestServer;
/// let server = TestServer::new()
///     .limits(|l| l.max_subscriptions = 2)
///     .config(|c| c.snapshot_messages = 3)
///     .start()
///     .await;
/// server.stop().await;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TestServer {
    config: ServerConfig,
}

impl Default for TestServer {
    fn default() -> TestServer {
        TestServer::new()
    }
}

impl TestServer {
    /// The test defaults.
    pub fn new() -> TestServer {
        let mut config = ServerConfig {
            heartbeat_ms: 100,
            ..ServerConfig::for_tests()
        };
        config.limits.publish_rate = 1_000_000;
        config.limits.max_errors_per_sec = 1_000_000;
        TestServer { config }
    }

    /// Keeps the log in `storage`.
    pub fn storage(mut self, storage: Storage) -> TestServer {
        self.config.storage = storage;
        self
    }

    /// Changes limits.
    pub fn limits(mut self, change: impl FnOnce(&mut Limits)) -> TestServer {
        change(&mut self.config.limits);
        self
    }

    /// Changes anything else.
    pub fn config(mut self, change: impl FnOnce(&mut ServerConfig)) -> TestServer {
        change(&mut self.config);
        self
    }

    /// Starts a test server with `change` made to its limits.
    pub async fn with_limits(change: impl FnOnce(&mut Limits)) -> Running {
        TestServer::new().limits(change).start().await
    }

    /// Starts a test server with `change` made to its configuration.
    pub async fn with_config(change: impl FnOnce(&mut ServerConfig)) -> Running {
        TestServer::new().config(change).start().await
    }

    /// The configuration as it stands.
    pub fn into_config(self) -> ServerConfig {
        self.config
    }

    /// Starts the server; panics, saying why, when it cannot.
    pub async fn start(self) -> Running {
        match Server::start(self.config.clone()).await {
            Ok(server) => Running {
                server,
                config: self.config,
            },
            Err(e) => panic!("server failed to start: {e}"),
        }
    }

    /// Starts the server and connects a raw JSON client to it.
    pub async fn connected(self) -> (Running, WsClient) {
        let server = self.start().await;
        let client = server.ws().await;
        (server, client)
    }

    /// Starts the server on exactly `addr` (after a restart), retrying
    /// while the old socket is being released.
    pub async fn start_on(mut self, addr: SocketAddr) -> Running {
        self.config.bind = addr;
        let mut last = String::new();
        for _ in 0..200 {
            match Server::start(self.config.clone()).await {
                Ok(server) => {
                    return Running {
                        server,
                        config: self.config,
                    };
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("server could not bind {addr} again: {last}");
    }
}

/// A started test server (the [`RunningServer`] it derefs to), with what
/// it was started with. Dropping it shuts the server down (its connections
/// are closed as the shutdown signal goes); [`Running::stop`] also waits
/// for the shutdown to finish and checks that it went well.
#[derive(Debug)]
pub struct Running {
    server: RunningServer,
    config: ServerConfig,
}

impl Deref for Running {
    type Target = RunningServer;

    fn deref(&self) -> &RunningServer {
        &self.server
    }
}

impl Running {
    /// Shuts the server down; panics when that fails.
    pub async fn stop(self) {
        if let Err(e) = self.server.shutdown().await {
            panic!("server failed to shut down: {e}");
        }
    }

    /// Shuts the server down and starts it again on the same address with
    /// the same configuration (and so the same log file, if any).
    pub async fn restart(self) -> Running {
        let addr = self.server.local_addr();
        let again = TestServer {
            config: self.config.clone(),
        };
        self.stop().await;
        again.start_on(addr).await
    }

    /// `ws://addr/ws?query`.
    pub fn url_with(&self, query: &str) -> String {
        format!("{}?{query}", self.server.ws_url())
    }

    /// A raw JSON client connected to the server.
    pub async fn ws(&self) -> WsClient {
        WsClient::connect(&self.server.ws_url()).await
    }

    /// A native client connected to the server, tuned for tests.
    pub async fn client(&self) -> Client {
        connect(client_config(&self.server.ws_url())).await
    }

    /// A loopback proxy in front of the server, and a native client
    /// (the test configuration, with `change` made to it) connected through
    /// it: the proxy can cut it off from the server.
    pub async fn client_behind_proxy(
        &self,
        change: impl FnOnce(&mut ClientConfig),
    ) -> (Proxy, Client) {
        let proxy = Proxy::start(self.server.local_addr()).await;
        let mut config = client_config(&proxy.ws_url());
        change(&mut config);
        (proxy, connect(config).await)
    }
}

/// Publishes `n` as the payload of each `n` in `numbers` to `stream`, one
/// after the other, each waiting for its ack; panics when one fails.
pub async fn publish_numbers(
    client: &Client,
    stream: &str,
    numbers: std::ops::RangeInclusive<u64>,
) {
    for n in numbers {
        if let Err(e) = client.publish(stream, serde_json::json!(n)).await {
            panic!("publish {n} to {stream}: {e}");
        }
    }
}

/// Connects a native client; panics, saying why, when it cannot.
pub async fn connect(config: ClientConfig) -> Client {
    match Client::connect(config).await {
        Ok(client) => client,
        Err(e) => panic!("client failed to connect: {e}"),
    }
}

/// Waits (up to 30 s) until the client's connection state satisfies
/// `wanted`; panics if it never does.
pub async fn wait_state(client: &Client, wanted: impl Fn(&ConnectionState) -> bool) {
    let mut state = client.connection_state();
    let reached =
        tokio::time::timeout(Duration::from_secs(30), state.wait_for(|s| wanted(s))).await;
    assert!(
        matches!(reached, Ok(Ok(_))),
        "connection state never matched"
    );
}
