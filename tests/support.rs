//! Shared pieces of the end-to-end suites: a server that can be restarted on
//! the same address, a loopback proxy that can cut or stall connections, and
//! a checker of the delivery contract.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use seqsync::SubscriptionEvent;
use seqsync_server::{RunningServer, Server, ServerConfig, Storage};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A fresh SQLite path under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDb(pub PathBuf);

impl TempDb {
    /// A unique path for this process and call.
    pub fn new(tag: &str) -> TempDb {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("seqsync-e2e-{tag}-{}-{n}.db", std::process::id()));
        let db = TempDb(path);
        db.remove();
        db
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = self.0.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(name));
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A server config for tests: loopback, any port, fast heartbeats, no publish
/// rate limit that a test could hit.
pub fn test_config(storage: Storage) -> ServerConfig {
    let mut config = ServerConfig::for_tests();
    config.storage = storage;
    config.heartbeat_ms = 200;
    config.limits.publish_rate = 1_000_000;
    config.limits.max_errors_per_sec = 1_000_000;
    config
}

/// Starts a server, panicking with the reason when it cannot.
pub async fn start(config: ServerConfig) -> RunningServer {
    match Server::start(config).await {
        Ok(server) => server,
        Err(error) => panic!("server failed to start: {error}"),
    }
}

/// Starts a server on exactly `addr` (after a restart), retrying while the
/// old socket is being released.
pub async fn start_on(mut config: ServerConfig, addr: SocketAddr) -> RunningServer {
    config.bind = addr;
    let mut last = String::new();
    for _ in 0..200 {
        match Server::start(config.clone()).await {
            Ok(server) => return server,
            Err(error) => last = error.to_string(),
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("server could not bind {addr} again: {last}");
}

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward both ways.
    Forward,
    /// Close every connection and refuse new ones (an outage).
    Down,
    /// Keep connections open but forward nothing (a dead peer).
    Stall,
}

/// A loopback TCP proxy in front of a server, to make outages on demand.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    mode: watch::Sender<ProxyMode>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let (mode, watcher) = watch::channel(ProxyMode::Forward);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if *watcher.borrow() != ProxyMode::Forward {
                    drop(client);
                    continue;
                }
                tokio::spawn(pipe(client, upstream, watcher.clone()));
            }
        });
        Proxy { addr, mode, task }
    }

    /// `ws://proxy/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Switches what the proxy does; existing connections follow at once.
    pub fn set(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(mut client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<ProxyMode>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    // As a real proxy does: small frames are not held back waiting for
    // acknowledgements (Nagle), which would add tens of ms per round trip.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    loop {
        let current = *mode.borrow_and_update();
        match current {
            ProxyMode::Down => return,
            ProxyMode::Stall => {
                if mode.changed().await.is_err() {
                    return;
                }
            }
            ProxyMode::Forward => {
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
                    changed = mode.changed() => if changed.is_err() { return },
                }
            }
        }
    }
}

/// Checks the contract on one stream's events and keeps what was delivered.
#[derive(Debug, Default)]
pub struct StreamCheck {
    /// Last contiguous seq the application holds.
    pub last: u64,
    /// Payloads delivered by seq (those after the last reset/snapshot).
    pub delivered: HashMap<u64, Value>,
    /// Resets seen.
    pub resets: u64,
    /// Snapshots seen, with their seq.
    pub snapshots: Vec<u64>,
    /// Seqs skipped.
    pub skipped: u64,
    /// Every event applied, in order, when made with [`StreamCheck::recording`].
    pub events: Option<Vec<SubscriptionEvent>>,
    reset_pending: bool,
}

impl StreamCheck {
    /// A checker that also keeps every event it applies.
    pub fn recording() -> StreamCheck {
        StreamCheck {
            events: Some(Vec::new()),
            ..StreamCheck::default()
        }
    }

    /// The events applied so far (empty unless recording).
    pub fn events(&self) -> &[SubscriptionEvent] {
        self.events.as_deref().unwrap_or_default()
    }

    /// Applies one event; panics on any breach of the contract.
    pub fn apply(&mut self, stream: &str, event: SubscriptionEvent) {
        if let Some(events) = self.events.as_mut() {
            events.push(event.clone());
        }
        match event {
            SubscriptionEvent::Message { seq, data } => {
                assert!(
                    !self.reset_pending,
                    "{stream}: message {seq} between reset and snapshot"
                );
                assert_eq!(
                    seq.get(),
                    self.last + 1,
                    "{stream}: expected seq {} next, got {seq}",
                    self.last + 1
                );
                self.last = seq.get();
                self.delivered
                    .insert(seq.get(), data.to_value().unwrap_or_default());
            }
            SubscriptionEvent::Snapshot { seq, .. } => {
                self.reset_pending = false;
                self.last = seq.get();
                self.snapshots.push(seq.get());
            }
            SubscriptionEvent::Reset { .. } => {
                self.resets += 1;
                self.reset_pending = true;
            }
            SubscriptionEvent::Skipped { range } => {
                assert_eq!(
                    range.start().get(),
                    self.last + 1,
                    "{stream}: skip not contiguous"
                );
                self.skipped += range.len();
                self.last = range.end().get();
            }
            _ => {}
        }
    }
}

/// Applies `sub`'s events to `check` until it holds `last`; false when that
/// takes longer than `limit` (the subscription ending is a panic).
pub async fn read_until(
    sub: &mut seqsync::Subscription,
    check: &mut StreamCheck,
    last: u64,
    limit: std::time::Duration,
) -> bool {
    let stream = sub.stream().to_string();
    let read = async {
        while check.last < last {
            match futures_util::StreamExt::next(sub).await {
                Some(event) => check.apply(&stream, event),
                None => panic!("{stream}: subscription ended at {}", check.last),
            }
        }
    };
    tokio::time::timeout(limit, read).await.is_ok()
}
