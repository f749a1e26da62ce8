//! Redis for tests: one `redis-server`, or a cluster of three masters; on
//! loopback, on free ports, without persistence; killed on drop.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TempDir;

/// How long a starting Redis has to answer `PING`.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port and waits until it
    /// answers `PING`. Panics, saying how to install it, when it is missing.
    pub fn start() -> RedisServer {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            match spawn_ready(port) {
                Ok(child) => return RedisServer { child, port },
                Err(e) => last = e,
            }
        }
        panic!("redis-server did not start: {last}");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills Redis and starts a new one on the same port: without
    /// persistence, every key is gone.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            match spawn_ready(self.port) {
                Ok(child) => {
                    self.child = child;
                    return;
                }
                Err(e) if Instant::now() > deadline => panic!("redis-server did not restart: {e}"),
                // The old listening socket may not be released yet.
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Runs one command and returns Redis's raw answer (RESP text).
    pub fn command(&self, args: &[&str]) -> String {
        command(self.port, args)
    }
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs one command on the Redis at `port` and returns its raw answer (RESP
/// text).
fn command(port: u16, args: &[&str]) -> String {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect redis: {e}"));
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("write to redis: {e}"));
    let mut buf = [0u8; 4096];
    let n = stream
        .read(&mut buf)
        .unwrap_or_else(|e| panic!("read from redis: {e}"));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Runs `redis-server` on `port` and waits until it answers.
fn spawn_ready(port: u16) -> Result<Child, String> {
    spawn(port, &std::env::temp_dir(), &[])
}

/// Runs `redis-server` on `port` with `extra` arguments, its files in
/// `dir`, and waits until it answers.
fn spawn(port: u16, dir: &Path, extra: &[&str]) -> Result<Child, String> {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .args(["--maxmemory-policy", "noeviction"])
        .args(["--dir", &dir.to_string_lossy()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "redis-server is not installed: these tests need it on PATH \
                 (`source scripts/redis.sh && ensure_redis`, or `apt-get install redis-server`)"
        ),
        Err(e) => return Err(format!("cannot run redis-server: {e}")),
    };
    wait_ready(child, port)
}

/// Polls until `PING` is answered, the child exits, or the deadline.
fn wait_ready(mut child: Child, port: u16) -> Result<Child, String> {
    let deadline = Instant::now() + READY_WITHIN;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("redis-server exited: {status}"));
        }
        if ping(addr) {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no PONG within {READY_WITHIN:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// A Redis Cluster of three masters (no replicas), each on its own free
/// port and cluster-bus port.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<(Child, u16)>,
    _dir: TempDir,
}

/// How long a new cluster has to cover every slot and report `ok`.
const CLUSTER_READY_WITHIN: Duration = Duration::from_secs(30);

impl RedisCluster {
    /// Starts three `redis-server`s in cluster mode, joins them with
    /// `redis-cli --cluster create`, and waits until every node says the
    /// cluster is `ok`. Panics when Redis is not installed or the cluster
    /// does not form in time.
    pub fn start() -> RedisCluster {
        let dir = TempDir::new("redis-cluster");
        let mut nodes = Vec::new();
        let cluster = |nodes: &mut Vec<(Child, u16)>| -> Result<(), String> {
            while nodes.len() < 3 {
                let (port, bus) = (free_port(), free_port());
                let conf = dir.0.join(format!("nodes-{port}.conf"));
                let child = spawn(
                    port,
                    &dir.0,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-port",
                        &bus.to_string(),
                        "--cluster-config-file",
                        &conf.to_string_lossy(),
                        "--cluster-node-timeout",
                        "5000",
                    ],
                )?;
                nodes.push((child, port));
            }
            let addrs: Vec<String> = nodes
                .iter()
                .map(|(_, p)| format!("127.0.0.1:{p}"))
                .collect();
            let created = Command::new("redis-cli")
                .arg("--cluster")
                .arg("create")
                .args(&addrs)
                .args(["--cluster-replicas", "0", "--cluster-yes"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .map_err(|e| format!("cannot run redis-cli: {e}"))?;
            if !created.status.success() {
                return Err(format!(
                    "redis-cli --cluster create failed: {}",
                    String::from_utf8_lossy(&created.stderr)
                ));
            }
            let deadline = Instant::now() + CLUSTER_READY_WITHIN;
            while !nodes
                .iter()
                .all(|(_, p)| command(*p, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
            {
                if Instant::now() > deadline {
                    return Err("the cluster did not report ok in time".into());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        };
        let formed = cluster(&mut nodes);
        let running = RedisCluster { nodes, _dir: dir };
        if let Err(e) = formed {
            panic!("redis cluster did not start: {e}");
        }
        running
    }

    /// `redis://127.0.0.1:PORT` of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|(_, p)| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The port of each node.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|(_, p)| *p).collect()
    }

    /// Runs one command on the node at `port` (no redirection followed).
    pub fn command(&self, port: u16, args: &[&str]) -> String {
        command(port, args)
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for (child, _) in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
