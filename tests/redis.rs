//! The Redis backend: several server instances over one Redis, and over a
//! Redis Cluster of three masters.
//!
//! Every test starts its own `redis-server` (loopback, free ports, no
//! persistence), or three of them joined by `redis-cli --cluster create`,
//! and fails when Redis is not installed (`scripts/redis.sh`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use seqsync::{Client, ResetReason, SubscriptionEvent};
use seqsync_core::{Epoch, StreamName};
use seqsync_server::log::{
    Batch, IdWindow, Log, NewMessage, Page, RedisLog, RedisOptions, StreamInfo,
};
use seqsync_server::{Retention, Storage};
use seqsync_test_support::{
    Proxy, ProxyMode, RedisCluster, RedisServer, Running, StreamCheck, TestServer, client_config,
    connect, read_until, watch_streams,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(120);

async fn instance(redis: &RedisServer) -> Running {
    TestServer::new()
        .storage(Storage::Redis(redis.url()))
        .start()
        .await
}

/// `messages` appended at `now_ms` (the epoch asked for a new log does not
/// matter: Redis draws its own).
fn at(now_ms: u64, messages: &[NewMessage]) -> Batch<'_> {
    Batch::new(Epoch(1), now_ms, messages)
}

fn page(from: u64, to: u64, max: u64) -> Page {
    Page::new(from, to, max).unwrap_or_else(|e| panic!("{e}"))
}

fn name(s: &str) -> StreamName {
    StreamName::new(s).unwrap_or_else(|e| panic!("stream name {s}: {e}"))
}

fn message(id: &str, n: u64) -> NewMessage {
    NewMessage {
        id: id.to_string(),
        data: serde_json::value::to_raw_value(&json!({ "n": n }))
            .unwrap_or_else(|e| panic!("payload: {e}")),
    }
}

fn options(retention: Retention) -> RedisOptions {
    RedisOptions {
        retention,
        ..RedisOptions::default()
    }
}

fn redis_log(redis: &RedisServer, retention: Retention) -> RedisLog {
    RedisLog::open(&redis.url(), options(retention)).unwrap_or_else(|e| panic!("redis log: {e}"))
}

fn info(log: &RedisLog, s: &StreamName) -> StreamInfo {
    log.info(s)
        .expect("info")
        .unwrap_or_else(|| panic!("{s} has no log"))
}

fn seqs(log: &RedisLog, s: &StreamName, from: u64, to: u64) -> Vec<u64> {
    let read = log.read(s, page(from, to, 100)).expect("read");
    read.map(|r| r.messages.iter().map(|m| m.seq.get()).collect())
        .unwrap_or_default()
}

/// The checks every Redis log passes, on one server or on a cluster: seqs,
/// publish ids, reads, and that reading creates nothing.
fn check_log(log: &RedisLog, other: &RedisLog) {
    let s = name("ids");
    assert_eq!(
        log.info(&s).expect("info"),
        None,
        "nothing before the first append"
    );
    assert!(log.read(&s, page(1, 9, 10)).expect("read").is_none());
    assert!(log.last(&s, 10).expect("last").is_none());
    let first = [message("x", 1), message("y", 2), message("x", 3)];
    let out = log.append(&s, &at(0, &first)).expect("append");
    let got: Vec<(u64, bool)> = out.iter().map(|a| (a.seq.get(), a.duplicate)).collect();
    assert_eq!(got, [(1, false), (2, false), (1, true)]);
    let again = log
        .append(&s, &at(0, &[message("y", 9), message("z", 4)]))
        .expect("append");
    assert_eq!((again[0].seq.get(), again[0].duplicate), (2, true));
    assert_eq!((again[1].seq.get(), again[1].duplicate), (3, false));

    let read = log
        .read(&s, page(1, 10, 100))
        .expect("read")
        .expect("a log");
    assert_eq!(read.info, info(log, &s));
    assert_eq!(read.info.head.get(), 3);
    assert_eq!(seqs(log, &s, 1, 10), [1, 2, 3]);
    assert_eq!(read.messages[1].data.get(), r#"{"n":2}"#);
    let paged = log.read(&s, page(2, 10, 1)).expect("read").expect("a log");
    assert_eq!(paged.messages.len(), 1);
    assert_eq!(paged.messages[0].seq.get(), 2);
    let last = log.last(&s, 2).expect("last").expect("a log");
    let last: Vec<u64> = last.messages.iter().map(|m| m.seq.get()).collect();
    assert_eq!(last, [2, 3]);

    // Another instance sees the same log and epoch.
    assert_eq!(info(other, &s), info(log, &s));
    // Many streams, spread over the slots, each its own.
    for i in 0..20 {
        let stream = name(&format!("many-{i}"));
        let out = log
            .append(&stream, &at(0, &[message("a", i)]))
            .expect("append");
        assert_eq!(out[0].seq.get(), 1);
    }
}

#[test]
fn redis_log_assigns_contiguous_seqs_and_remembers_publish_ids() {
    let redis = RedisServer::start();
    check_log(
        &redis_log(&redis, Retention::default()),
        &redis_log(&redis, Retention::default()),
    );
}

#[test]
fn redis_cluster_log_keeps_each_stream_in_its_slot() {
    let cluster = RedisCluster::start();
    let open = || {
        RedisLog::open_cluster(&cluster.urls(), options(Retention::default()))
            .unwrap_or_else(|e| panic!("cluster log: {e}"))
    };
    check_log(&open(), &open());
}

#[test]
fn redis_log_forgets_publish_ids_past_their_window() {
    let redis = RedisServer::start();
    let log = RedisLog::open(
        &redis.url(),
        RedisOptions {
            ids: IdWindow {
                ttl_ms: 3_600_000,
                max_count: 2,
            },
            ..RedisOptions::default()
        },
    )
    .expect("log");
    let s = name("window");
    log.append(&s, &at(0, &[message("a", 1), message("b", 2)]))
        .expect("append");
    let dup = log.append(&s, &at(0, &[message("a", 1)])).expect("append");
    assert_eq!((dup[0].seq.get(), dup[0].duplicate), (1, true));
    log.append(&s, &at(0, &[message("c", 3)])).expect("append");
    let again = log.append(&s, &at(0, &[message("a", 1)])).expect("append");
    assert_eq!(
        (again[0].seq.get(), again[0].duplicate),
        (4, false),
        "two messages later, a is out of the window"
    );
    let ttl = redis.command(&["PTTL", "seqsync:{window}:id:a"]);
    let ttl: i64 = ttl.trim_start_matches(':').trim().parse().unwrap_or(-1);
    assert!(
        (3_000_000..=3_600_000).contains(&ttl),
        "an id key expires with the window: {ttl} ms"
    );
}

#[test]
fn redis_log_reserves_an_empty_streams_epoch_for_every_instance_until_it_is_used() {
    let redis = RedisServer::start();
    let (a, b) = (
        redis_log(&redis, Retention::default()),
        redis_log(&redis, Retention::default()),
    );
    let s = name("empty");
    let reserved = a.reserve(&s).expect("reserve");
    assert_eq!(reserved.head.get(), 0);
    assert_eq!(
        b.reserve(&s).expect("reserve"),
        reserved,
        "one epoch for all"
    );
    let ttl = redis.command(&["PTTL", "seqsync:{empty}:meta"]);
    assert!(!ttl.starts_with(":-"), "a reservation expires: {ttl}");
    b.append(&s, &at(0, &[message("1", 1)])).expect("append");
    assert_eq!(
        info(&a, &s).epoch,
        reserved.epoch,
        "the first message keeps it"
    );
    assert_eq!(
        redis.command(&["PTTL", "seqsync:{empty}:meta"]),
        ":-1\r\n",
        "a stream with messages stays"
    );
}

#[test]
fn redis_log_that_lost_its_meta_starts_a_new_epoch_without_old_entries_or_ids() {
    let redis = RedisServer::start();
    let log = redis_log(&redis, Retention::default());
    let s = name("lost");
    let before = log
        .append(&s, &at(0, &[message("x", 1), message("y", 2)]))
        .expect("append");
    assert_eq!(before[1].seq.get(), 2);
    let old = info(&log, &s).epoch;
    assert_eq!(redis.command(&["DEL", "seqsync:{lost}:meta"]), ":1\r\n");
    assert_eq!(log.info(&s).expect("info"), None);
    // Even asked for the old epoch, the new log gets another.
    let retry = [message("x", 3)];
    let out = log
        .append(
            &s,
            &Batch {
                epoch: old,
                ..at(0, &retry)
            },
        )
        .expect("append");
    assert_eq!(
        (out[0].seq.get(), out[0].duplicate),
        (1, false),
        "the id of the old incarnation is not taken for this one's"
    );
    assert_ne!(
        info(&log, &s).epoch,
        old,
        "a new incarnation, never the old epoch"
    );
    let read = log
        .read(&s, page(1, 10, 100))
        .expect("read")
        .expect("a log");
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
    log.append(&a, &at(0, &[message("b}:log", 1)]))
        .expect("append");
    let out = log.append(&b, &at(0, &[message("1", 1)])).expect("append");
    assert_eq!(out[0].seq.get(), 1);
    assert_eq!(info(&log, &a).head.get(), 1);
    assert_ne!(info(&log, &a).epoch, info(&log, &b).epoch);
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
    by_count.append(&s, &at(0, &batch)).expect("append");
    let now = info(&by_count, &s);
    assert_eq!((now.earliest.get(), now.head.get()), (8, 10));
    assert_eq!(seqs(&by_count, &s, 1, 10), [8, 9, 10]);

    let by_age = redis_log(
        &redis,
        Retention {
            max_count: None,
            max_age_ms: Some(1_000),
        },
    );
    let s = name("age");
    by_age
        .append(&s, &at(10_000, &[message("1", 1), message("2", 2)]))
        .expect("append");
    by_age
        .append(&s, &at(10_500, &[message("3", 3)]))
        .expect("append");
    assert_eq!(by_age.trim(11_200).expect("trim"), 2);
    let now = info(&by_age, &s);
    assert_eq!((now.earliest.get(), now.head.get()), (3, 3));
    assert_eq!(by_age.trim(20_000).expect("trim"), 1);
    let now = info(&by_age, &s);
    assert_eq!((now.earliest.get(), now.head.get()), (4, 3));
    let out = by_age
        .append(&s, &at(20_000, &[message("4", 4)]))
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
                    let out = log.append(&s, &at(0, &batch)).expect("append");
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
    let redis = RedisServer::start();
    fan_out_through_a_lost_instance(Storage::Redis(redis.url()), "redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_a_redis_cluster_fan_out_exactly_through_a_lost_instance() {
    let cluster = RedisCluster::start();
    fan_out_through_a_lost_instance(Storage::RedisCluster(cluster.urls()), "redis cluster").await;
}

/// Three instances on `storage`: a publisher on A; readers on B and C under
/// fault injection; B stops mid-stream and its reader fails over to C.
/// Every message reaches every reader once, in order.
async fn fan_out_through_a_lost_instance(storage: Storage, label: &str) {
    const STREAMS: usize = 2;
    const TOTAL: u64 = 50_000;
    let per_stream = TOTAL / STREAMS as u64;
    let server = TestServer::new().storage(storage);
    let a = server.clone().start().await;
    let b = server.clone().start().await;
    let c = server.start().await;
    let faults = "?faults=seed=11,drop=0.05,dup=0.05,reorder=0.2,window=10";
    let names: Vec<String> = (0..STREAMS).map(|i| format!("fan-{i}")).collect();

    // Reader 1 starts on B (through a proxy that can cut it off like a
    // crash) and may fail over to C; reader 2 is on C.
    let to_b = Proxy::start(b.local_addr()).await;
    let on_b = connect(
        client_config(&format!("{}{faults}", to_b.ws_url()))
            .endpoint(format!("{}{faults}", c.ws_url())),
    )
    .await;
    let on_c = connect(client_config(&format!("{}{faults}", c.ws_url()))).await;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    watch_streams(&on_b, &names, per_stream, &done_tx).await;
    watch_streams(&on_c, &names, per_stream, &done_tx).await;
    drop(done_tx);

    let writer = a.client().await;
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
    b.stop().await;

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
        check.assert_exact(
            name,
            per_stream,
            |s| json!({ "by": "a", "i": acked[name][&s] }),
        );
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
        "{label} fan-out: {TOTAL} messages published on A in {:.1}s, read on B then C and on C \
         under faults; B stopped after {} deliveries",
        published_in.as_secs_f64(),
        b_metrics.deliveries
    );
    on_b.close().await;
    on_c.close().await;
    writer.close().await;
    a.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_on_two_instances_get_distinct_contiguous_seqs() {
    let redis = RedisServer::start();
    let a = instance(&redis).await;
    let b = instance(&redis).await;
    let c = instance(&redis).await;
    let per_writer = 2_000u64;
    let stream = "shared".to_string();
    let reader = c.client().await;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    watch_streams(
        &reader,
        std::slice::from_ref(&stream),
        2 * per_writer,
        &done_tx,
    )
    .await;
    let on_a = a.client().await;
    let on_b = b.client().await;
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
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_without_persistence_resets_clients_never_silently() {
    let mut redis = RedisServer::start();
    let a = instance(&redis).await;
    let b = instance(&redis).await;
    let reader = b.client().await;
    let writer = a.client().await;
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
    let old_epoch = check.snapshot_epochs[0];

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
    assert_eq!(check.reset_reasons, [ResetReason::EpochChanged]);
    assert!(
        read_until(&mut sub, &mut check, 20, LIMIT).await,
        "the new log is followed to its head"
    );
    // One more once the new log is followed: at least one message is
    // delivered live after the reset, whatever the snapshot covered.
    let last = writer
        .publish("r", json!({ "phase": "after", "i": 21 }))
        .await
        .expect("publish after the snapshot");
    assert_eq!(last.get(), 21);
    assert!(
        read_until(&mut sub, &mut check, 21, LIMIT).await,
        "the message after the snapshot"
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
    // After it, only the new log, each message under its own seq, up to
    // the last one.
    let after_reset: Vec<(u64, Value)> = events[reset_at..]
        .iter()
        .filter_map(|e| match e {
            SubscriptionEvent::Message { seq, data, .. } => {
                Some((seq.get(), data.to_value().expect("JSON")))
            }
            _ => None,
        })
        .collect();
    assert_eq!(after_reset.last().map(|(seq, _)| *seq), Some(21));
    for (seq, data) in &after_reset {
        assert_eq!(data["phase"], "after", "old-log message after the reset");
        assert_eq!(data["i"], *seq, "message {seq} of the new log");
    }
    reader.close().await;
    writer.close().await;
    a.stop().await;
    b.stop().await;
}
