//! A WebSocket proxy that drops, duplicates, reorders and cuts what a
//! server sends, frame by frame, decided by a seed.
//!
//! Unlike [`Proxy`](crate::Proxy), which works on TCP bytes, this proxy
//! ends the WebSocket on both sides and so can fault single messages: the
//! losses a client meets behind a load balancer, a flaky mobile link or a
//! server that fans out over a lossy bus.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::WAIT;

/// The most frames a connection holds back, whatever
/// [`WsFaults::reorder_window`] says.
const MAX_WINDOW: usize = 1024;
/// The largest message either side may send through the proxy.
const MAX_MESSAGE_BYTES: usize = 4 << 20;
/// A held frame's wait when `reorder_max_ms` is beyond the clock's range.
const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);
/// How long a closing side has to answer the close handshake.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);

/// What the proxy does to the text frames a server sends to its clients.
/// Frames from clients to the server, binary frames and close frames pass
/// untouched.
///
/// Every decision is drawn from a splitmix64 generator seeded with `seed`
/// and the connection's number (0 for the first accepted, then 1, ...), the
/// same number of draws for every frame: the same seed and the same frames
/// make the same faults. Percentages are read at each frame, so
/// [`FaultyWsProxy::set_faults`] changes them for open connections too; the
/// seed is taken when a connection opens.
///
/// ```
/// use seqsync_test_support::WsFaults;
/// let faults = WsFaults { seed: 7, drop_pct: 5, duplicate_pct: 5, reorder_pct: 10, ..WsFaults::default() };
/// assert_eq!(faults.cut_every, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsFaults {
    /// Seed of every decision.
    pub seed: u64,
    /// Percent (0 to 100) of text frames dropped.
    pub drop_pct: u8,
    /// Percent of text frames sent twice. The copy is held back like a
    /// reordered frame when `reorder_window` is not 0 (a late duplicate),
    /// and follows the original at once otherwise.
    pub duplicate_pct: u8,
    /// Percent of text frames held back and sent after later ones.
    pub reorder_pct: u8,
    /// A held frame waits until 1 to `reorder_window` later frames (drawn
    /// per frame) went out before it; at most this many frames are held
    /// (the oldest goes out when one more must be held). 0 turns reordering
    /// off. Capped at 1024.
    pub reorder_window: usize,
    /// The longest a held frame waits when no later frame comes, in ms.
    pub reorder_max_ms: u64,
    /// Cuts a connection (both sockets closed, no close frame) once it sent
    /// its client this many text frames; 0 never does.
    pub cut_every: u64,
}

impl Default for WsFaults {
    /// No faults: every frame passes in order.
    fn default() -> WsFaults {
        WsFaults {
            seed: 0,
            drop_pct: 0,
            duplicate_pct: 0,
            reorder_pct: 0,
            reorder_window: 4,
            reorder_max_ms: 50,
            cut_every: 0,
        }
    }
}

/// What the proxy did, over every connection since it started.
///
/// Text frames add up: `received - dropped + duplicated == forwarded +
/// discarded + held`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WsProxyStats {
    /// Clients connected through to the server.
    pub connections: u64,
    /// Of those, how many are open now.
    pub open: u64,
    /// Clients turned away: the proxy was down, the server could not be
    /// reached, or the handshake failed.
    pub refused: u64,
    /// Text frames the server sent.
    pub received: u64,
    /// Text frames written to clients, copies included.
    pub forwarded: u64,
    /// Text frames dropped.
    pub dropped: u64,
    /// Extra copies made of text frames.
    pub duplicated: u64,
    /// Text frames held back to be sent after later ones.
    pub reordered: u64,
    /// Frames held back right now (copies included).
    pub held: u64,
    /// Held frames lost because their connection ended first.
    pub discarded: u64,
    /// Connections cut by the proxy: every `cut_every` frames, by
    /// [`FaultyWsProxy::cut_all`] or by going down.
    pub cuts: u64,
}

/// Orders the open connections follow at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Control {
    down: bool,
    /// Bumped by `cut_all`.
    cuts: u64,
    /// Bumped by `release_held`.
    releases: u64,
}

#[derive(Debug)]
struct Shared {
    upstream: String,
    faults: watch::Sender<WsFaults>,
    control: watch::Sender<Control>,
    stats: Mutex<WsProxyStats>,
    next_connection: AtomicU64,
}

impl Shared {
    fn count(&self, change: impl FnOnce(&mut WsProxyStats)) {
        change(&mut self.stats.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// A WebSocket proxy on a free loopback port in front of a server, that
/// faults the server's text frames on the way to each client (see
/// [`WsFaults`]). Each client is connected to the upstream URL with the
/// same path and query it asked for (headers are not passed on); when the
/// upstream cannot be reached, the client's connection is closed with 1013
/// (try again later). Pings are answered on each side rather than passed
/// through. Stops on drop, and its connections with it.
///
/// ```no_run
/// # async fn demo() {
/// use seqsync_test_support::{FaultyWsProxy, WsFaults};
/// let proxy = FaultyWsProxy::start("ws://127.0.0.1:8080", WsFaults { seed: 1, drop_pct: 10, ..WsFaults::default() }).await;
/// let url = proxy.url("/ws?room=lobby"); // ws://127.0.0.1:PORT/ws?room=lobby
/// proxy.cut_all();
/// assert_eq!(proxy.stats().dropped, 0);
/// # let _ = url;
/// # }
/// ```
#[derive(Debug)]
pub struct FaultyWsProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FaultyWsProxy {
    /// Listens on a free loopback port and forwards to `upstream`, a
    /// `ws://host:port` base (a trailing `/` is ignored).
    pub async fn start(upstream: &str, faults: WsFaults) -> FaultyWsProxy {
        let listener = match TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(e) => panic!("the WebSocket proxy cannot bind: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(e) => panic!("the WebSocket proxy has no address: {e}"),
        };
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            faults: watch::Sender::new(faults),
            control: watch::Sender::new(Control::default()),
            stats: Mutex::new(WsProxyStats::default()),
            next_connection: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        FaultyWsProxy { addr, shared, task }
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:PORT` followed by `path_and_query` (which starts
    /// with `/`).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("ws://{}{path_and_query}", self.addr)
    }

    /// The faults in force.
    pub fn faults(&self) -> WsFaults {
        *self.shared.faults.borrow()
    }

    /// Changes the faults; open connections apply the new percentages from
    /// their next frame.
    pub fn set_faults(&self, faults: WsFaults) {
        self.shared.faults.send_replace(faults);
    }

    /// What the proxy did so far.
    pub fn stats(&self) -> WsProxyStats {
        *self
            .shared
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Cuts every open connection (no close frame; held frames are lost).
    pub fn cut_all(&self) {
        self.shared.control.send_modify(|c| c.cuts += 1);
    }

    /// Down: cuts every open connection and refuses new ones (their TCP
    /// connection is closed at once) until set up again.
    pub fn set_down(&self, down: bool) {
        self.shared.control.send_modify(|c| c.down = down);
    }

    /// Sends every held frame now, in the order they were held.
    pub fn release_held(&self) {
        self.shared.control.send_modify(|c| c.releases += 1);
    }
}

impl Drop for FaultyWsProxy {
    fn drop(&mut self) {
        self.task.abort();
        // Connections end with the proxy: the cut reaches them even though
        // their tasks outlive the accept loop.
        self.shared.control.send_modify(|c| c.down = true);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            // Out of descriptors or a connection reset before it was
            // accepted: try the next one.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        if shared.control.borrow().down {
            shared.count(|s| s.refused += 1);
            continue;
        }
        let number = shared.next_connection.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(serve(tcp, number, shared.clone()));
    }
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

type ClientWs = WebSocketStream<TcpStream>;
type ServerWs = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Completes the client's handshake, connects to the server with the same
/// path and query, then pumps frames until either side ends.
async fn serve(tcp: TcpStream, number: u64, shared: Arc<Shared>) {
    let _ = tcp.set_nodelay(true);
    let mut path = String::from("/");
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(
        tcp,
        RememberPath(&mut path),
        Some(ws_config()),
    );
    let mut client = match tokio::time::timeout(WAIT, handshake).await {
        Ok(Ok(client)) => client,
        _ => {
            shared.count(|s| s.refused += 1);
            return;
        }
    };
    let url = format!("{}{path}", shared.upstream);
    let connect = tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true);
    let server = match tokio::time::timeout(WAIT, connect).await {
        Ok(Ok((server, _))) => server,
        _ => {
            shared.count(|s| s.refused += 1);
            // 1014 (bad gateway) would fit better, but clients such as
            // tungstenite reject it as reserved.
            let close = CloseFrame {
                code: CloseCode::Again,
                reason: "upstream unreachable".into(),
            };
            let _ = tokio::time::timeout(CLOSE_WITHIN, client.close(Some(close))).await;
            return;
        }
    };
    shared.count(|s| {
        s.connections += 1;
        s.open += 1;
    });
    let seed = shared.faults.borrow().seed ^ number.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut pump = Pump {
        client,
        server,
        shared: shared.clone(),
        rng: SplitMix64(seed),
        held: VecDeque::new(),
        sent: 0,
    };
    let end = pump.run().await;
    let lost = pump.held.len() as u64;
    shared.count(|s| {
        s.open = s.open.saturating_sub(1);
        s.held = s.held.saturating_sub(lost);
        s.discarded += lost;
        if end == End::Cut {
            s.cuts += 1;
        }
    });
}

/// Keeps the path and query a client's handshake asked for.
struct RememberPath<'a>(&'a mut String);

impl Callback for RememberPath<'_> {
    fn on_request(self, request: &Request, response: Response) -> Result<Response, ErrorResponse> {
        if let Some(path) = request.uri().path_and_query() {
            *self.0 = path.to_string();
        }
        Ok(response)
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// A side closed or failed.
    Closed,
    /// The proxy cut it.
    Cut,
}

/// A frame held back.
#[derive(Debug)]
struct Held {
    text: Utf8Bytes,
    /// Later frames still to go out before this one.
    after: u64,
    /// When it goes out even if no later frame comes.
    due: Instant,
}

/// One connection's two sockets and its fault state.
struct Pump {
    client: ClientWs,
    server: ServerWs,
    shared: Arc<Shared>,
    rng: SplitMix64,
    held: VecDeque<Held>,
    /// Text frames written to the client.
    sent: u64,
}

impl Pump {
    async fn run(&mut self) -> End {
        let mut control = self.shared.control.subscribe();
        let start = *control.borrow_and_update();
        if start.down {
            return End::Cut;
        }
        let mut releases = start.releases;
        loop {
            let due = self.held.iter().map(|h| h.due).min();
            let step = tokio::select! {
                from_client = self.client.next() => match from_client {
                    Some(Ok(message)) => self.on_client_message(message).await,
                    Some(Err(_)) | None => Err(End::Closed),
                },
                from_server = self.server.next() => match from_server {
                    Some(Ok(message)) => self.on_server_message(message).await,
                    Some(Err(_)) | None => Err(End::Closed),
                },
                () = sleep_until(due), if due.is_some() => self.release_due().await,
                changed = control.changed() => {
                    let now = *control.borrow_and_update();
                    if changed.is_err() || now.down || now.cuts != start.cuts {
                        Err(End::Cut)
                    } else if now.releases != releases {
                        releases = now.releases;
                        self.release(self.held.len()).await
                    } else {
                        Ok(())
                    }
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn on_client_message(&mut self, message: Message) -> Result<(), End> {
        match message {
            Message::Text(_) | Message::Binary(_) => {
                self.server.send(message).await.map_err(|_| End::Closed)
            }
            Message::Close(frame) => {
                let _ = self.client.flush().await;
                let _ = self.server.close(frame).await;
                drain(&mut self.server).await;
                Err(End::Closed)
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(()),
        }
    }

    async fn on_server_message(&mut self, message: Message) -> Result<(), End> {
        match message {
            Message::Text(text) => self.fault(text).await,
            Message::Binary(_) => self.client.send(message).await.map_err(|_| End::Closed),
            Message::Close(frame) => {
                // What was in flight arrives before the close.
                self.release(self.held.len()).await?;
                let _ = self.server.flush().await;
                let _ = self.client.close(frame).await;
                drain(&mut self.client).await;
                Err(End::Closed)
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(()),
        }
    }

    /// Decides a server text frame's fate and sends what must go now.
    async fn fault(&mut self, text: Utf8Bytes) -> Result<(), End> {
        let faults = *self.shared.faults.borrow();
        let window = faults.reorder_window.min(MAX_WINDOW) as u64;
        // The same draws for every frame, whatever is decided, so that one
        // frame's fate never shifts the next one's.
        let drop = self.rng.percent(faults.drop_pct);
        let duplicate = self.rng.percent(faults.duplicate_pct);
        let hold = self.rng.percent(faults.reorder_pct) && window > 0;
        let hold_after = self.rng.below(window) + 1;
        let copy_after = self.rng.below(window) + 1;
        self.shared.count(|s| {
            s.received += 1;
            s.dropped += u64::from(drop);
        });
        if drop {
            return Ok(());
        }
        // This frame overtakes every held one; those whose count runs out
        // follow it.
        for held in &mut self.held {
            held.after = held.after.saturating_sub(1);
        }
        let now = Instant::now();
        let due = now
            .checked_add(Duration::from_millis(faults.reorder_max_ms))
            .unwrap_or(now + FOREVER);
        if hold {
            self.shared.count(|s| s.reordered += 1);
            self.hold(text.clone(), hold_after, due, window).await?;
        } else {
            self.send_to_client(text.clone()).await?;
        }
        if duplicate {
            self.shared.count(|s| s.duplicated += 1);
            if window > 0 {
                self.hold(text, copy_after, due, window).await?;
            } else {
                self.send_to_client(text).await?;
            }
        }
        self.release_counted().await
    }

    /// Holds `text` back, first sending the oldest held frame when the
    /// window is full.
    async fn hold(
        &mut self,
        text: Utf8Bytes,
        after: u64,
        due: Instant,
        window: u64,
    ) -> Result<(), End> {
        if self.held.len() as u64 >= window {
            self.release(1).await?;
        }
        self.held.push_back(Held { text, after, due });
        self.shared.count(|s| s.held += 1);
        Ok(())
    }

    /// Sends the held frames whose later frames all went out.
    async fn release_counted(&mut self) -> Result<(), End> {
        while let Some(i) = self.held.iter().position(|h| h.after == 0) {
            self.send_held(i).await?;
        }
        Ok(())
    }

    /// Sends the held frames that waited their longest.
    async fn release_due(&mut self) -> Result<(), End> {
        let now = Instant::now();
        while let Some(i) = self.held.iter().position(|h| h.due <= now) {
            self.send_held(i).await?;
        }
        Ok(())
    }

    /// Sends the `n` oldest held frames.
    async fn release(&mut self, n: usize) -> Result<(), End> {
        for _ in 0..n.min(self.held.len()) {
            self.send_held(0).await?;
        }
        Ok(())
    }

    async fn send_held(&mut self, i: usize) -> Result<(), End> {
        let Some(held) = self.held.remove(i) else {
            return Ok(());
        };
        self.shared.count(|s| s.held = s.held.saturating_sub(1));
        self.send_to_client(held.text).await
    }

    async fn send_to_client(&mut self, text: Utf8Bytes) -> Result<(), End> {
        self.client
            .send(Message::Text(text))
            .await
            .map_err(|_| End::Closed)?;
        self.sent += 1;
        self.shared.count(|s| s.forwarded += 1);
        let every = self.shared.faults.borrow().cut_every;
        if every > 0 && self.sent >= every {
            return Err(End::Cut);
        }
        Ok(())
    }
}

/// Sleeps until `due`, or forever without one.
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// Reads what a closing side still sends, until its close or a deadline.
async fn drain<S>(ws: &mut WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(CLOSE_WITHIN, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// The splitmix64 generator: small, fast, and the same on every machine.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True `pct` times in a hundred.
    fn percent(&mut self, pct: u8) -> bool {
        self.next() % 100 < u64::from(pct)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        let r = self.next();
        if n == 0 { 0 } else { r % n }
    }
}
