//! The foreign chat server and a fault-injecting WebSocket proxy in front of
//! each instance, for test suites that are not written in Rust (the browser
//! package's Node and Chromium tests): the same [`ForeignServer`] and
//! [`FaultyWsProxy`] the Rust suites use, driven over stdin and stdout.
//!
//! ```text
//! foreign_fixture [--instances N] [--retain K] [--seed S] [--drop PCT]
//!                 [--duplicate PCT] [--reorder PCT] [--window N] [--cut-every N]
//! ```
//!
//! Once every instance is ready it prints one JSON line:
//! `{"http": [BASE, ...], "ws": [PROXIED_BASE, ...]}`: instance `i`'s HTTP
//! base, and the `ws://` base of the proxy in front of it (proxy `i` draws
//! its faults from seed `S + i`). Then it reads commands, one per line, and
//! answers each with one JSON line:
//!
//! | command | effect | answer |
//! | --- | --- | --- |
//! | `restart I` | kills instance `I` and starts it again on its port | `{"restarted": I}` |
//! | `cut` | cuts every connection of every proxy | `{"cut": true}` |
//! | `calm` | no more faults; held frames go out | `{"calm": true}` |
//! | `stats` | what each proxy did | `{"proxies": [{"received": N, ...}, ...]}` |
//! | `quit` | stops everything (so does the end of stdin) | none |
//!
//! An unknown command answers `{"error": "..."}`.

use seqsync_test_support::{FaultyWsProxy, ForeignConfig, ForeignServer, WsFaults, WsProxyStats};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (config, faults) = match options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("foreign_fixture: {message}");
            std::process::exit(2);
        }
    };
    let mut chat = ForeignServer::start(config).await;
    let mut proxies = Vec::new();
    for i in 0..chat.len() {
        let seeded = WsFaults {
            seed: faults.seed.wrapping_add(i as u64),
            ..faults
        };
        proxies.push(FaultyWsProxy::start(&chat.ws_base(i), seeded).await);
    }
    let http: Vec<String> = (0..chat.len()).map(|i| chat.http_base(i)).collect();
    let ws: Vec<String> = proxies.iter().map(|p| p.url("")).collect();
    let mut out = tokio::io::stdout();
    say(&mut out, json!({"http": http, "ws": ws})).await;

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut words = line.split_whitespace();
        let answer = match (words.next(), words.next()) {
            (Some("restart"), Some(i)) => match i.parse::<usize>() {
                Ok(i) if i < chat.len() => {
                    chat.restart(i).await;
                    json!({"restarted": i})
                }
                _ => json!({"error": format!("no instance {i}")}),
            },
            (Some("cut"), None) => {
                proxies.iter().for_each(FaultyWsProxy::cut_all);
                json!({"cut": true})
            }
            (Some("calm"), None) => {
                for proxy in &proxies {
                    proxy.set_faults(WsFaults {
                        seed: proxy.faults().seed,
                        ..WsFaults::default()
                    });
                    proxy.release_held();
                }
                json!({"calm": true})
            }
            (Some("stats"), None) => {
                let stats: Vec<Value> = proxies.iter().map(|p| stats_json(p.stats())).collect();
                json!({"proxies": stats})
            }
            (Some("quit"), None) => break,
            _ => json!({"error": format!("unknown command {line:?}")}),
        };
        say(&mut out, answer).await;
    }
    drop(proxies);
    drop(chat);
}

async fn say(out: &mut tokio::io::Stdout, value: Value) {
    let line = format!("{value}\n");
    if out.write_all(line.as_bytes()).await.is_err() || out.flush().await.is_err() {
        // Nobody reads any more: the end of stdin follows, and with it the end.
        eprintln!("foreign_fixture: stdout is closed");
    }
}

fn stats_json(s: WsProxyStats) -> Value {
    json!({
        "connections": s.connections,
        "open": s.open,
        "refused": s.refused,
        "received": s.received,
        "forwarded": s.forwarded,
        "dropped": s.dropped,
        "duplicated": s.duplicated,
        "reordered": s.reordered,
        "held": s.held,
        "discarded": s.discarded,
        "cuts": s.cuts,
    })
}

/// The server's configuration and the proxies' faults from the arguments.
fn options(mut args: impl Iterator<Item = String>) -> Result<(ForeignConfig, WsFaults), String> {
    let mut config = ForeignConfig::default();
    let mut faults = WsFaults::default();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = value
            .parse::<u64>()
            .map_err(|_| format!("{flag} {value}: not a number"))?;
        let pct = || u8::try_from(number.min(100)).unwrap_or(100);
        match flag.as_str() {
            "--instances" => config.instances = usize::try_from(number).unwrap_or(1).max(1),
            "--retain" => config.retain = number,
            "--seed" => faults.seed = number,
            "--drop" => faults.drop_pct = pct(),
            "--duplicate" => faults.duplicate_pct = pct(),
            "--reorder" => faults.reorder_pct = pct(),
            "--window" => faults.reorder_window = usize::try_from(number).unwrap_or(usize::MAX),
            "--cut-every" => faults.cut_every = number,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok((config, faults))
}
