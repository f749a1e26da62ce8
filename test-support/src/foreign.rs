//! The foreign chat server (`tests/foreign/server.py`): several instances
//! sharing one SQLite file and one Redis, on free loopback ports.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::ws::http;
use crate::{RedisServer, TempDir, WAIT};

/// How long a starting instance has to print its ready line.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// How many lines of each instance's output are kept for failure messages.
const KEPT_LINES: usize = 300;
/// The interpreter to use instead of `tests/foreign/.venv/bin/python`.
const PYTHON_ENV: &str = "SEQSYNC_FOREIGN_PYTHON";

/// What to start: how many instances, and their retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignConfig {
    /// Instances sharing the database and Redis (at least 1).
    pub instances: usize,
    /// Keep only the latest this many messages per room (`--retain`); 0
    /// keeps everything.
    pub retain: u64,
}

impl Default for ForeignConfig {
    /// Two instances that keep everything.
    fn default() -> ForeignConfig {
        ForeignConfig {
            instances: 2,
            retain: 0,
        }
    }
}

/// The foreign chat server of `tests/foreign/`, which knows nothing of
/// seqsync: `instances` Python processes on free loopback ports sharing one
/// SQLite file (in a fresh temp dir) and one [`RedisServer`]. Instances are
/// numbered from 0; instance `i` is named `a`, `b`, ... in its logs and
/// connects to Redis as the user `chat-a`, `chat-b`, ... so that
/// [`cut_redis`](ForeignServer::cut_redis) can cut one of them off. Stops
/// everything on drop.
///
/// The Python environment comes from `scripts/foreign.sh`
/// (`ensure_foreign_server`); the interpreter is
/// `tests/foreign/.venv/bin/python`, or `SEQSYNC_FOREIGN_PYTHON`.
///
/// ```no_run
/// # async fn demo() {
/// use seqsync_test_support::{ForeignConfig, ForeignServer};
/// let mut chat = ForeignServer::start(ForeignConfig::default()).await;
/// let stored = chat.post(0, "lobby", "u1", "hello").await;
/// assert_eq!(stored["sequence_id"], 1);
/// let url = chat.ws_url(1, "lobby", "u2"); // ws://127.0.0.1:PORT/ws?room=lobby&user=u2
/// chat.restart(1).await;
/// # let _ = url;
/// # }
/// ```
#[derive(Debug)]
pub struct ForeignServer {
    instances: Vec<Instance>,
    python: PathBuf,
    config: ForeignConfig,
    redis: RedisServer,
    dir: TempDir,
}

#[derive(Debug)]
struct Instance {
    name: String,
    port: u16,
    child: Option<Child>,
    output: Output,
}

/// The last lines an instance printed, over all its runs.
type Output = Arc<Mutex<VecDeque<String>>>;

impl ForeignServer {
    /// Starts Redis and the instances, each waited for until it printed
    /// its ready line (subscribed to Redis and listening). Panics with the
    /// instance's output when one does not start in time, and with the way
    /// to install it when the Python environment is missing.
    pub async fn start(config: ForeignConfig) -> ForeignServer {
        assert!(config.instances > 0, "a foreign server needs an instance");
        let python = python();
        let redis = RedisServer::start();
        let dir = TempDir::new("foreign");
        let names = (0..config.instances).map(|i| {
            let letter = u8::try_from(i % 26).map_or('x', |n| char::from(b'a' + n));
            if i < 26 {
                letter.to_string()
            } else {
                format!("{letter}{}", i / 26)
            }
        });
        let instances = names
            .map(|name| Instance {
                name,
                port: 0,
                child: None,
                output: Output::default(),
            })
            .collect();
        let mut server = ForeignServer {
            instances,
            python,
            config,
            redis,
            dir,
        };
        server.create_redis_users();
        for i in 0..server.instances.len() {
            server.launch(i).await;
        }
        server
    }

    /// How many instances there are (running or not).
    pub fn len(&self) -> usize {
        self.instances.len()
    }

    /// Never: there is at least one instance.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// Instance `i`'s HTTP address (its port stays the same across
    /// restarts).
    pub fn http_addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.instance(i).port))
    }

    /// `http://127.0.0.1:PORT` of instance `i`.
    pub fn http_base(&self, i: usize) -> String {
        format!("http://{}", self.http_addr(i))
    }

    /// `ws://127.0.0.1:PORT` of instance `i`: the upstream of a
    /// [`FaultyWsProxy`](crate::FaultyWsProxy).
    pub fn ws_base(&self, i: usize) -> String {
        format!("ws://{}", self.http_addr(i))
    }

    /// `ws://127.0.0.1:PORT/ws?room=ROOM&user=USER` of instance `i`.
    pub fn ws_url(&self, i: usize, room: &str, user: &str) -> String {
        format!("{}{}", self.ws_base(i), ws_path(room, user))
    }

    /// The SQLite file every instance shares.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join("chat.db")
    }

    /// The Redis every instance publishes to and subscribes from.
    pub fn redis(&self) -> &RedisServer {
        &self.redis
    }

    /// What instance `i` printed (its last lines, over all its runs).
    pub fn output(&self, i: usize) -> String {
        lines(&self.instance(i).output)
    }

    /// Whether instance `i`'s process is running.
    pub fn is_running(&mut self, i: usize) -> bool {
        self.instance_mut(i)
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills instance `i` at once (SIGKILL: its clients' connections drop
    /// without a close frame).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.instance_mut(i).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks instance `i` to stop (SIGTERM) and waits until it exited;
    /// returns how. Panics when it is not running or still runs after
    /// [`WAIT`] (it is killed then).
    pub async fn terminate(&mut self, i: usize) -> ExitStatus {
        let name = self.instance(i).name.clone();
        let Some(mut child) = self.instance_mut(i).child.take() else {
            panic!("instance {name} is not running");
        };
        let signalled = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        if !signalled.as_ref().is_ok_and(|s| s.success()) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cannot send SIGTERM to instance {name}: {signalled:?}");
        }
        let deadline = Instant::now() + WAIT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "instance {name} still ran {WAIT:?} after SIGTERM; its output:\n{}",
                        self.output(i)
                    );
                }
            }
        }
    }

    /// Starts instance `i` again, on the port it had, after
    /// [`kill`](Self::kill) or [`terminate`](Self::terminate); waits until
    /// it is ready.
    pub async fn revive(&mut self, i: usize) {
        assert!(
            self.instance(i).child.is_none(),
            "instance {} is running",
            self.instance(i).name
        );
        self.launch(i).await;
    }

    /// Kills instance `i` and starts it again on the same port; waits until
    /// it is ready.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        self.launch(i).await;
    }

    /// Cuts instance `i` off Redis: its connections (subscriber and
    /// publisher) are closed and new ones refused, until
    /// [`heal_redis`](Self::heal_redis). The instance keeps serving HTTP and
    /// WebSocket and storing messages; what is published meanwhile never
    /// reaches its clients, and what it stores is not published.
    pub fn cut_redis(&self, i: usize) {
        let user = redis_user(&self.instance(i).name);
        let disabled = self.redis.command(&["ACL", "SETUSER", &user, "off"]);
        assert!(
            disabled.starts_with("+OK"),
            "ACL SETUSER {user} off: {disabled}"
        );
        let killed = self.redis.command(&["CLIENT", "KILL", "USER", &user]);
        assert!(killed.starts_with(':'), "CLIENT KILL USER {user}: {killed}");
    }

    /// Lets instance `i` back into Redis after
    /// [`cut_redis`](Self::cut_redis) and waits until its subscription is
    /// back: from then on, what is published reaches its clients again.
    pub async fn heal_redis(&self, i: usize) {
        let user = redis_user(&self.instance(i).name);
        let enabled = self.redis.command(&["ACL", "SETUSER", &user, "on"]);
        assert!(
            enabled.starts_with("+OK"),
            "ACL SETUSER {user} on: {enabled}"
        );
        self.subscribed(i).await;
    }

    /// Restarts Redis (every connection drops, nothing is kept) and waits
    /// until every running instance subscribed again.
    pub async fn restart_redis(&mut self) {
        self.redis.restart();
        self.create_redis_users();
        for i in 0..self.instances.len() {
            if self.is_running(i) {
                self.subscribed(i).await;
            }
        }
    }

    /// Posts `message` as `user` to `room` through instance `i`'s HTTP API
    /// and returns the stored message; panics unless it is stored (201).
    pub async fn post(&self, i: usize, room: &str, user: &str, message: &str) -> Value {
        let body = json!({"user_id": user, "message": message}).to_string();
        let path = format!("/rooms/{}/messages", encode(room));
        let (status, answer) = http(self.http_addr(i), "POST", &path, Some(&body)).await;
        assert_eq!(status, 201, "POST {path}: {answer}");
        parse(&answer)
    }

    /// `GET /rooms/ROOM/messages?QUERY` on instance `i`: the status and the
    /// JSON body.
    pub async fn messages(&self, i: usize, room: &str, query: &str) -> (u16, Value) {
        let path = format!("/rooms/{}/messages?{query}", encode(room));
        let (status, answer) = http(self.http_addr(i), "GET", &path, None).await;
        (status, parse(&answer))
    }

    /// Every message of `room` after `since`, page after page, from
    /// instance `i`; panics on any answer but 200.
    pub async fn messages_since(&self, i: usize, room: &str, since: u64) -> Vec<Value> {
        let mut all = Vec::new();
        let mut since = since;
        loop {
            let (status, page) = self.messages(i, room, &format!("since={since}")).await;
            assert_eq!(status, 200, "messages of {room} since {since}: {page}");
            let Some(messages) = page["messages"].as_array().filter(|m| !m.is_empty()) else {
                return all;
            };
            since = sequence_id(&messages[messages.len() - 1]);
            all.extend(messages.iter().cloned());
        }
    }

    /// `GET /rooms/ROOM/head` on instance `i`: the room's latest
    /// `sequence_id` (0 when it has none).
    pub async fn head(&self, i: usize, room: &str) -> u64 {
        let path = format!("/rooms/{}/head", encode(room));
        let (status, answer) = http(self.http_addr(i), "GET", &path, None).await;
        assert_eq!(status, 200, "GET {path}: {answer}");
        sequence_id(&parse(&answer))
    }

    fn instance(&self, i: usize) -> &Instance {
        match self.instances.get(i) {
            Some(instance) => instance,
            None => panic!("no instance {i} (there are {})", self.instances.len()),
        }
    }

    fn instance_mut(&mut self, i: usize) -> &mut Instance {
        let count = self.instances.len();
        match self.instances.get_mut(i) {
            Some(instance) => instance,
            None => panic!("no instance {i} (there are {count})"),
        }
    }

    fn create_redis_users(&self) {
        for instance in &self.instances {
            let user = redis_user(&instance.name);
            let password = format!(">{}", redis_password(&instance.name));
            let created = self.redis.command(&[
                "ACL", "SETUSER", &user, "reset", "on", &password, "~*", "&*", "+@all",
            ]);
            assert!(created.starts_with("+OK"), "ACL SETUSER {user}: {created}");
        }
    }

    /// Waits until instance `i` holds a pattern subscription in Redis.
    async fn subscribed(&self, i: usize) {
        let user = redis_user(&self.instance(i).name);
        let needle = format!(" user={user} ");
        let deadline = Instant::now() + WAIT;
        loop {
            let clients = self.redis.command(&["CLIENT", "LIST", "TYPE", "pubsub"]);
            if clients
                .lines()
                .any(|l| l.contains(&needle) && !l.contains(" psub=0 "))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "instance {} did not subscribe again within {WAIT:?}; its output:\n{}",
                self.instance(i).name,
                self.output(i)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Runs instance `i` (on its port, or a free one the first time) and
    /// waits for its ready line.
    async fn launch(&mut self, i: usize) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let attempt = self.spawn_ready(i).await;
            let instance = self.instance_mut(i);
            match attempt {
                Ok((child, port)) => {
                    instance.child = Some(child);
                    instance.port = port;
                    return;
                }
                // A port just freed may not be bound again yet.
                Err(e) if instance.port != 0 && Instant::now() < deadline => {
                    push_line(
                        &instance.output,
                        format!("[fixture] start failed: {e}; again"),
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!(
                    "the foreign server's instance {} did not start: {e}; its output:\n{}",
                    instance.name,
                    lines(&instance.output)
                ),
            }
        }
    }

    async fn spawn_ready(&self, i: usize) -> Result<(Child, u16), String> {
        let instance = self.instance(i);
        let script = foreign_dir().join("server.py");
        let redis_url = self.redis.url().replacen(
            "redis://",
            &format!(
                "redis://{}:{}@",
                redis_user(&instance.name),
                redis_password(&instance.name)
            ),
            1,
        );
        push_line(
            &instance.output,
            format!("[fixture] starting {}", instance.name),
        );
        let spawned = Command::new(&self.python)
            .arg(&script)
            .args(["--host", "127.0.0.1"])
            .args(["--port", &instance.port.to_string()])
            .arg("--db")
            .arg(self.db_path())
            .args(["--redis", &redis_url])
            .args(["--instance", &instance.name])
            .args(["--retain", &self.config.retain.to_string()])
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => return Err(format!("cannot run {}: {e}", self.python.display())),
        };
        let (ready, port) = oneshot::channel();
        let collectors = [
            child
                .stdout
                .take()
                .map(|out| collect(out, instance.output.clone(), Some(ready))),
            child
                .stderr
                .take()
                .map(|err| collect(err, instance.output.clone(), None)),
        ];
        match tokio::time::timeout(READY_WITHIN, port).await {
            Ok(Ok(port)) => Ok((child, port)),
            waited => {
                let _ = child.kill();
                let status = child
                    .wait()
                    .map_or_else(|e| e.to_string(), |s| s.to_string());
                // Its pipes are closed now: every line it wrote gets into
                // the failure message.
                for collector in collectors.into_iter().flatten() {
                    let _ = collector.join();
                }
                Err(match waited {
                    Ok(_) => format!("it exited ({status}) before its ready line"),
                    Err(_) => format!("no ready line within {READY_WITHIN:?}"),
                })
            }
        }
    }
}

impl Drop for ForeignServer {
    fn drop(&mut self) {
        for i in 0..self.instances.len() {
            self.kill(i);
        }
    }
}

/// The directory of the foreign server's sources.
fn foreign_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/foreign")
}

/// The interpreter with the foreign server's dependencies; panics saying
/// how to install it when there is none.
fn python() -> PathBuf {
    let python = match std::env::var_os(PYTHON_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => foreign_dir().join(".venv/bin/python"),
    };
    assert!(
        python.exists(),
        "the foreign server's Python environment is missing ({} does not exist): run \
         `source scripts/foreign.sh && ensure_foreign_server` from the repository root \
         (it creates tests/foreign/.venv), or point {PYTHON_ENV} at a Python 3.11+ \
         interpreter that has tests/foreign/requirements.txt installed",
        python.display()
    );
    python
}

fn redis_user(name: &str) -> String {
    format!("chat-{name}")
}

fn redis_password(name: &str) -> String {
    format!("pw-{name}")
}

/// The path and query of a WebSocket that joins `room` as `user`.
fn ws_path(room: &str, user: &str) -> String {
    format!("/ws?room={}&user={}", encode(room), encode(user))
}

/// Percent-encodes all but the unreserved characters of RFC 3986.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn sequence_id(message: &Value) -> u64 {
    match message["sequence_id"].as_u64() {
        Some(seq) => seq,
        None => panic!("no sequence_id in {message}"),
    }
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn push_line(output: &Output, line: String) {
    let mut kept = output.lock().unwrap_or_else(PoisonError::into_inner);
    if kept.len() == KEPT_LINES {
        kept.pop_front();
    }
    kept.push_back(line);
}

fn lines(output: &Output) -> String {
    let kept = output.lock().unwrap_or_else(PoisonError::into_inner);
    kept.iter().map(|l| format!("  {l}\n")).collect()
}

/// Keeps the lines of `pipe` in `output`, on a thread of its own; sends the
/// port of the first `ready http://HOST:PORT` line to `ready`.
fn collect(
    pipe: impl Read + Send + 'static,
    output: Output,
    ready: Option<oneshot::Sender<u16>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut ready = ready;
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            let port = line
                .strip_prefix("ready http://")
                .and_then(|addr| addr.rsplit_once(':'))
                .and_then(|(_, port)| port.trim().parse::<u16>().ok());
            if let Some(port) = port {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(port);
                }
            }
            push_line(&output, line);
        }
    })
}
