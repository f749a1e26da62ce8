//! The Redis backend: several server instances over one Redis.
//!
//! Every test starts its own `redis-server` (loopback, free port, no
//! persistence) and fails when it is not installed (`scripts/redis.sh`).

mod redis_server;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis_server::RedisServer;
use seqsync::{Client, ClientConfig, ResetReason, SubscriptionEvent};
use seqsync_core::{Seq, StreamName};
use seqsync_e2e::{Proxy, ProxyMode, StreamCheck, read_until, start, test_config};
use seqsync_server::log::{Log, NewMessage, RedisLog, RedisOptions};
use seqsync_server::{Retention, RunningServer, Storage};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(120);

fn client_config(url: &str) -> ClientConfig {
    ClientConfig::new(url)
        .gap_timeout(Duration::from_millis(30))
        .heartbeat_timeout(Duration::from_millis(2_000))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(300))
}

async fn instance(redis: &RedisServer) -> RunningServer {
    start(test_config(Storage::Redis(redis.url()))).await
}

fn name(s: &str) -> StreamName {
    StreamName::new(s).unwrap_or_else(|e| panic!("stream name {s}: {e}"))
}

fn seq(n: u64) -> Seq {
    Seq::new(n).unwrap_or_else(|e| panic!("seq {n}: {e}"))
}

fn message(id: &str, n: u64) -> NewMessage {
    NewMessage {
        id: id.to_string(),
        data: serde_json::value::to_raw_value(&json!({ "n": n }))
            .unwrap_or_else(|e| panic!("payload: {e}")),
    }
}

fn redis_log(redis: &RedisServer, retention: Retention) -> RedisLog {
    let options = RedisOptions {
        retention,
        ..RedisOptions::default()
    };
    RedisLog::open(&redis.url(), options).unwrap_or_else(|e| panic!("redis log: {e}"))
}

#[test]
fn redis_log_assigns_contiguous_seqs_and_remembers_publish_ids() {
    let redis = RedisServer::start();
    let log = redis_log(&redis, Retention::default());
    let s = name("ids");
    let info = log.open(&s).expect("open");
    assert_eq!((info.head.get(), info.earliest.get()), (0, 1));
    let out = log
        .append(&s, &[message("x", 1), message("y", 2), message("x", 3)], 0)
        .expect("append");
    let got: Vec<(u64, bool)> = out.iter().map(|a| (a.seq.get(), a.duplicate)).collect();
    assert_eq!(got, [(1, false), (2, false), (1, true)]);
    let again = log
        .append(&s, &[message("y", 9), message("z", 4)], 0)
        .expect("append");
    assert_eq!((again[0].seq.get(), again[0].duplicate), (2, true));
    assert_eq!((again[1].seq.get(), again[1].duplicate), (3, false));

    let read = log.read(&s, seq(1), seq(10), 100).expect("read");
    assert_eq!(read.info.head.get(), 3);
    assert_eq!(read.info.epoch, info.epoch);
    let seqs: Vec<u64> = read.messages.iter().map(|m| m.seq.get()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(read.messages[1].data.get(), r#"{"n":2}"#);
    let paged = log.read(&s, seq(2), seq(10), 1).expect("read");
    assert_eq!(paged.messages.len(), 1);
    assert_eq!(paged.messages[0].seq.get(), 2);
    let last = log.last(&s, 2).expect("last");
    let seqs: Vec<u64> = last.messages.iter().map(|m| m.seq.get()).collect();
    assert_eq!(seqs, [2, 3]);
    assert!(log.last(&s, 0).expect("last").messages.is_empty());

    // A second instance sees the same log and epoch.
    let other = redis_log(&redis, Retention::default());
    assert_eq!(other.open(&s).expect("open"), log.open(&s).expect("open"));
}

#[test]
fn redis_log_that_lost_its_meta_starts_a_new_epoch_without_old_entries_or_ids() {
    let redis = RedisServer::start();
    let log = redis_log(&redis, Retention::default());
    let s = name("lost");
    let before = log
        .append(&s, &[message("x", 1), message("y", 2)], 0)
        .expect("append");
    assert_eq!(before[1].seq.get(), 2);
    let old = log.open(&s).expect("open").epoch;
    assert_eq!(redis.command(&["DEL", "seqsync:{lost}:meta"]), ":1\r\n");
    let info = log.open(&s).expect("open");
    assert_ne!(info.epoch, old, "a new incarnation");
    assert_eq!((info.head.get(), info.earliest.get()), (0, 1));
    let out = log.append(&s, &[message("x", 3)], 0).expect("append");
    assert_eq!(
        (out[0].seq.get(), out[0].duplicate),
        (1, false),
        "the id of the old incarnation is not taken for this one's"
    );
    let read = log.read(&s, seq(1), seq(10), 100).expect("read");
    assert_eq!(read.messages.len(), 1);
    assert_eq!(read.messages[0].data.get(), r#"{"n":3}"#);
}

#[test]
fn redis_log_streams_are_apart_even_with_braces_in_their_names() {
    let redis = RedisServer::start();
    let log = redis_log(&redis, Retention::default());
    // Without escaping, stream "a}:id:b" and the id "b}:log" of stream "a"
    // would name the same key.
    let (a, b) = (name("a"), name("a}:id:b"));
    log.append(&a, &[message("b}:log", 1)], 0).expect("append");
    let out = log.append(&b, &[message("1", 1)], 0).expect("append");
    assert_eq!(out[0].seq.get(), 1);
    assert_eq!(log.open(&a).expect("open").head.get(), 1);
    assert_ne!(
        log.open(&a).expect("open").epoch,
        log.open(&b).expect("open").epoch
    );
}

#[test]
fn redis_log_retention_trims_a_prefix_by_count_and_by_age() {
    let redis = RedisServer::start();
    let by_count = redis_log(
        &redis,
        Retention {
            max_count: Some(3),
            max_age_ms: None,
        },
    );
    let s = name("count");
    let batch: Vec<NewMessage> = (1..=10).map(|i| message(&i.to_string(), i)).collect();
    by_count.append(&s, &batch, 0).expect("append");
    let info = by_count.open(&s).expect("open");
    assert_eq!((info.earliest.get(), info.head.get()), (8, 10));
    let seqs: Vec<u64> = by_count
        .last(&s, 100)
        .expect("last")
        .messages
        .iter()
        .map(|m| m.seq.get())
        .collect();
    assert_eq!(seqs, [8, 9, 10]);

    let by_age = redis_log(
        &redis,
        Retention {
            max_count: None,
            max_age_ms: Some(1_000),
        },
    );
    let s = name("age");
    by_age
        .append(&s, &[message("1", 1), message("2", 2)], 10_000)
        .expect("append");
    by_age
        .append(&s, &[message("3", 3)], 10_500)
        .expect("append");
    assert_eq!(by_age.trim(11_200).expect("trim"), 2);
    let info = by_age.open(&s).expect("open");
    assert_eq!((info.earliest.get(), info.head.get()), (3, 3));
    assert_eq!(by_age.trim(20_000).expect("trim"), 1);
    let info = by_age.open(&s).expect("open");
    assert_eq!((info.earliest.get(), info.head.get()), (4, 3));
    let out = by_age
        .append(&s, &[message("4", 4)], 20_000)
        .expect("append");
    assert_eq!(out[0].seq.get(), 4);
}

#[test]
fn redis_logs_appending_concurrently_never_share_a_seq() {
    let redis = RedisServer::start();
    let s = name("race");
    let per_writer = 2_000u64;
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let log = Arc::new(redis_log(&redis, Retention::default()));
            let s = s.clone();
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                for chunk in (0..per_writer).collect::<Vec<_>>().chunks(50) {
                    let batch: Vec<NewMessage> = chunk
                        .iter()
                        .map(|i| message(&format!("{w}-{i}"), *i))
                        .collect();
                    let out = log.append(&s, &batch, 0).expect("append");
                    seqs.extend(out.iter().map(|a| a.seq.get()));
                }
                seqs
            })
        })
        .collect();
    let mut all: Vec<u64> = writers
        .into_iter()
        .flat_map(|w| w.join().expect("writer thread"))
        .collect();
    all.sort_unstable();
    let expected: Vec<u64> = (1..=2 * per_writer).collect();
    assert_eq!(all, expected, "distinct and contiguous");
}

/// Subscribes `client` to every stream and checks the contract until each
/// holds `last`; sends the checks back when done.
async fn watch_streams(
    client: &Client,
    names: &[String],
    last: u64,
    done: &mpsc::UnboundedSender<(String, StreamCheck)>,
) {
    for name in names {
        let mut sub = client.subscribe(name).await.expect("subscribe");
        let done = done.clone();
        let name = name.clone();
        tokio::spawn(async move {
            let mut check = StreamCheck::default();
            while check.last < last {
                let Some(event) = sub.next().await else { break };
                check.apply(&name, event);
            }
            let _ = done.send((name, check));
        });
    }
}

/// Publishes `1..=count` to `stream` with up to 64 in flight; the acked seq
/// of each, by its number.
async fn publish_all(
    client: Client,
    stream: String,
    tag: &'static str,
    count: u64,
) -> Vec<(u64, u64)> {
    futures_util::stream::iter(1..=count)
        .map(|i| {
            let client = client.clone();
            let stream = stream.clone();
            async move {
                let result = client.publish(&stream, json!({ "by": tag, "i": i })).await;
                let seq = result.unwrap_or_else(|e| panic!("{stream} {tag} #{i}: {e}"));
                (i, seq.get())
            }
        })
        .buffer_unordered(64)
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_fan_out_exactly_through_faults_and_a_lost_instance() {
    const STREAMS: usize = 2;
    const TOTAL: u64 = 50_000;
    let per_stream = TOTAL / STREAMS as u64;
    let redis = RedisServer::start();
    let a = instance(&redis).await;
    let b = instance(&redis).await;
    let c = instance(&redis).await;
    let faults = "?faults=seed=11,drop=0.05,dup=0.05,reorder=0.2,window=10";
    let names: Vec<String> = (0..STREAMS).map(|i| format!("fan-{i}")).collect();

    // Reader 1 starts on B (through a proxy that can cut it off like a
    // crash) and may fail over to C; reader 2 is on C.
    let to_b = Proxy::start(b.local_addr()).await;
    let on_b = Client::connect(
        client_config(&format!("{}{faults}", to_b.ws_url()))
            .endpoint(format!("{}{faults}", c.ws_url())),
    )
    .await
    .expect("reader on B");
    let on_c = Client::connect(client_config(&format!("{}{faults}", c.ws_url())))
        .await
        .expect("reader on C");
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    watch_streams(&on_b, &names, per_stream, &done_tx).await;
    watch_streams(&on_c, &names, per_stream, &done_tx).await;
    drop(done_tx);

    let writer = Client::connect(client_config(&a.ws_url()))
        .await
        .expect("writer on A");
    let started = Instant::now();
    let publishers: Vec<_> = names
        .iter()
        .map(|n| tokio::spawn(publish_all(writer.clone(), n.clone(), "a", per_stream)))
        .collect();

    // Kill B once half of the messages have reached its reader: its
    // connections drop without a close frame and it is gone for good.
    let b_metrics = timeout(LIMIT, async {
        loop {
            let m = b.metrics();
            if m.deliveries >= TOTAL / 2 {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("B delivers");
    to_b.set(ProxyMode::Down);
    b.shutdown().await.expect("B shuts down");

    let mut acked: HashMap<String, HashMap<u64, u64>> = HashMap::new();
    for (name, task) in names.iter().zip(publishers) {
        let results = timeout(LIMIT, task)
            .await
            .expect("publishers finish")
            .expect("publisher task");
        let seqs = acked.entry(name.clone()).or_default();
        for (i, s) in results {
            assert!(seqs.insert(s, i).is_none(), "{name}: seq {s} acked twice");
        }
        let mut sorted: Vec<u64> = seqs.keys().copied().collect();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (1..=per_stream).collect::<Vec<_>>(),
            "{name}: contiguous"
        );
    }
    let published_in = started.elapsed();

    let mut checks: Vec<(String, StreamCheck)> = Vec::new();
    let all = timeout(LIMIT, async {
        while let Some(done) = done_rx.recv().await {
            checks.push(done);
        }
    })
    .await;
    assert!(all.is_ok(), "readers did not catch up");
    assert_eq!(
        checks.len(),
        2 * STREAMS,
        "every reader finished every stream"
    );
    for (name, check) in &checks {
        assert_eq!(check.resets, 0, "{name}: nothing was lost, so no reset");
        assert_eq!(check.skipped, 0, "{name}: nothing was skipped");
        assert_eq!(check.last, per_stream, "{name}: everything delivered");
        let first = check.snapshots.first().copied().unwrap_or(0);
        for s in first + 1..=per_stream {
            assert_eq!(
                check.delivered.get(&s),
                Some(&json!({ "by": "a", "i": acked[name][&s] })),
                "{name} seq {s}"
            );
        }
    }
    let stats = on_b.stats().await.expect("stats");
    assert!(
        stats.connects >= 2,
        "the reader on B reconnected after B stopped"
    );
    assert!(
        c.metrics().connections_total >= 2,
        "C served the reader that failed over"
    );
    assert!(b_metrics.deliveries > 0 && a.metrics().publishes == TOTAL);
    println!(
        "redis fan-out: {TOTAL} messages published on A in {:.1}s, read on B then C and on C \
         under faults; B stopped after {} deliveries",
        published_in.as_secs_f64(),
        b_metrics.deliveries
    );
    on_b.close().await;
    on_c.close().await;
    writer.close().await;
    a.shutdown().await.expect("A shuts down");
    c.shutdown().await.expect("C shuts down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_on_two_instances_get_distinct_contiguous_seqs() {
    let redis = RedisServer::start();
    let a = instance(&redis).await;
    let b = instance(&redis).await;
    let c = instance(&redis).await;
    let per_writer = 2_000u64;
    let stream = "shared".to_string();
    let reader = Client::connect(client_config(&c.ws_url()))
        .await
        .expect("reader");
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    watch_streams(
        &reader,
        std::slice::from_ref(&stream),
        2 * per_writer,
        &done_tx,
    )
    .await;
    let on_a = Client::connect(client_config(&a.ws_url()))
        .await
        .expect("A");
    let on_b = Client::connect(client_config(&b.ws_url()))
        .await
        .expect("B");
    let from_a = tokio::spawn(publish_all(on_a.clone(), stream.clone(), "a", per_writer));
    let from_b = tokio::spawn(publish_all(on_b.clone(), stream.clone(), "b", per_writer));
    let mut by_seq: HashMap<u64, Value> = HashMap::new();
    for (tag, task) in [("a", from_a), ("b", from_b)] {
        let results = timeout(LIMIT, task).await.expect("in time").expect("task");
        for (i, s) in results {
            let prior = by_seq.insert(s, json!({ "by": tag, "i": i }));
            assert!(prior.is_none(), "seq {s} handed out twice");
        }
    }
    let mut seqs: Vec<u64> = by_seq.keys().copied().collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=2 * per_writer).collect::<Vec<_>>());

    let (_, check) = timeout(LIMIT, done_rx.recv())
        .await
        .expect("reader in time")
        .expect("reader result");
    assert_eq!(check.last, 2 * per_writer);
    // The reader may have subscribed (snapshot) after the first publishes.
    let first = check.snapshots.first().copied().unwrap_or(0);
    for s in first + 1..=2 * per_writer {
        assert_eq!(check.delivered.get(&s), by_seq.get(&s), "seq {s}");
    }
    reader.close().await;
    on_a.close().await;
    on_b.close().await;
    for server in [a, b, c] {
        server.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_without_persistence_resets_clients_never_silently() {
    let mut redis = RedisServer::start();
    let a = instance(&redis).await;
    let b = instance(&redis).await;
    let reader = Client::connect(client_config(&b.ws_url()))
        .await
        .expect("reader");
    let writer = Client::connect(client_config(&a.ws_url()))
        .await
        .expect("writer");
    let mut sub = reader.subscribe("r").await.expect("subscribe");
    for i in 1..=100u64 {
        let s = writer
            .publish("r", json!({ "phase": "before", "i": i }))
            .await
            .expect("publish");
        assert_eq!(s.get(), i);
    }
    let mut check = StreamCheck::recording();
    assert!(
        read_until(&mut sub, &mut check, 100, LIMIT).await,
        "first 100 delivered"
    );
    let old_epoch = check
        .events()
        .iter()
        .find_map(|e| match e {
            SubscriptionEvent::Snapshot { epoch, .. } => Some(*epoch),
            _ => None,
        })
        .expect("the first snapshot names the epoch");

    tokio::task::block_in_place(|| redis.restart());

    // The new log starts again at seq 1 in a new epoch.
    for i in 1..=20u64 {
        let s = writer
            .publish("r", json!({ "phase": "after", "i": i }))
            .await
            .expect("publish after the restart");
        assert_eq!(s.get(), i, "the new log's seqs");
    }
    let new_epoch = timeout(LIMIT, async {
        loop {
            let event = sub.next().await.expect("subscription alive");
            check.apply("r", event.clone());
            if let SubscriptionEvent::Snapshot { epoch, .. } = event {
                if check.resets > 0 {
                    return epoch;
                }
            }
        }
    })
    .await
    .expect("a reset and a snapshot of the new log");
    assert_ne!(new_epoch, old_epoch);
    let reset = check
        .events()
        .iter()
        .find_map(|e| match e {
            SubscriptionEvent::Reset { reason, .. } => Some(*reason),
            _ => None,
        })
        .expect("reset");
    assert_eq!(reset, ResetReason::EpochChanged);
    assert!(
        read_until(&mut sub, &mut check, 20, LIMIT).await,
        "the new log is followed to its head"
    );
    // Never silent loss: nothing of the new log was delivered as if it
    // continued the old one.
    let events = check.events();
    let reset_at = events
        .iter()
        .position(|e| matches!(e, SubscriptionEvent::Reset { .. }))
        .expect("reset");
    for e in &events[..reset_at] {
        if let SubscriptionEvent::Message { data, .. } = e {
            let data = data.to_value().expect("JSON");
            assert_eq!(data["phase"], "before", "new-log message before the reset");
        }
    }
    let after_snapshot: Vec<Value> = events[reset_at..]
        .iter()
        .filter_map(|e| match e {
            SubscriptionEvent::Message { data, .. } => data.to_value().ok(),
            _ => None,
        })
        .collect();
    assert!(after_snapshot.iter().all(|d| d["phase"] == "after"));
    reader.close().await;
    writer.close().await;
    a.shutdown().await.expect("shutdown");
    b.shutdown().await.expect("shutdown");
}
