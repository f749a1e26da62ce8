//! A loopback TCP proxy in front of a server, to make outages on demand.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

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
