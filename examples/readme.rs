//! The README's Rust and JSON examples, kept compiling: each Rust block of
//! README.md is in a function below, line for line (the test
//! `every_rust_block_of_the_readme_is_here` fails when one changes without
//! the other), and its JSON description is read as a `Description`.

use std::error::Error;

type Result<T = ()> = std::result::Result<T, Box<dyn Error>>;

/// "Native client in ten lines".
#[rustfmt::skip]
#[allow(dead_code)]
async fn native_client() -> Result {
use futures_util::StreamExt;
use seqsync::{Client, ClientConfig, SubscriptionEvent};

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Chat { from: String, text: String }

let client = Client::connect(ClientConfig::new("ws://127.0.0.1:8080/ws")).await?;
let mut room = client.subscribe_as::<Chat>("chat:lobby").await?;
client.publish("chat:lobby", Chat { from: "ada".into(), text: "hi".into() }).await?;
while let Some(event) = room.next().await {
    match event {
        SubscriptionEvent::Message { seq, data, .. } => println!("{seq} <{}> {}", data.from, data.text),
        SubscriptionEvent::Undecodable { seq, error, .. } => eprintln!("{seq} is not a Chat: {error}"),
        other => eprintln!("{other:?}"), // snapshot, resets, gaps healed, phase changes
    }
}
    Ok(())
}

/// Resuming across runs.
#[rustfmt::skip]
#[allow(dead_code, clippy::let_and_return)]
fn position_store() -> seqsync::ClientConfig {
    use seqsync::ClientConfig;
let config = ClientConfig::new("ws://127.0.0.1:8080/ws")
    .position_store(seqsync::FilePositionStore::new("positions.json"));
    config
}

/// "Using seqsync with your own server", Rust.
#[rustfmt::skip]
#[allow(dead_code)]
async fn foreign_server() -> Result {
    use futures_util::StreamExt;
    use seqsync::{Client, ClientConfig, SubscriptionEvent};
    use serde_json::json;
let description = serde_json::from_str(include_str!("foreign-chat.json"))?;
let client = Client::connect(ClientConfig::foreign("ws://127.0.0.1:9000/ws", description)?).await?;
let mut lobby = client.subscribe("lobby").await?;
client.publish("lobby", json!({"user_id": "ada", "message": "hi"})).await?;
while let Some(event) = lobby.next().await {
    match event {
        SubscriptionEvent::Message { seq, data, .. } => println!("{seq}: {data}"),
        SubscriptionEvent::Reset { earliest, .. } => println!("gone before {earliest:?}"),
        _ => {}
    }
}
    Ok(())
}

// The transport of "The core, for your own transport": frames sent are
// kept, two frames to receive.
thread_local! {
    static SENT: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn socket_send(text: String) {
    SENT.with(|sent| sent.borrow_mut().push(text));
}

fn socket_frames() -> Vec<String> {
    vec![
        r#"{"type":"snapshot","stream":"room:42","seq":0,"epoch":1,"state":null}"#.into(),
        r#"{"type":"msg","stream":"room:42","seq":1,"epoch":1,"data":"hi"}"#.into(),
    ]
}

fn clock_ms() -> u64 {
    1
}

/// "The core, for your own transport".
#[rustfmt::skip]
fn own_transport() -> Result {
use seqsync_core::{Config, Event, Millis, Sequencer, SubscribeOptions};
use seqsync_core::protocol::{parse_server_frame, ClientFrame};

let mut core = Sequencer::<serde_json::Value>::new(Config::default());
core.subscribe(Millis(0), "room:42", SubscribeOptions::default())?;
core.handle_connected(Millis(0));
while let Some(request) = core.poll_request() {
    socket_send(ClientFrame::<serde_json::Value>::from(request).to_json()?); // your transport
}
for text in socket_frames() {                                          // your transport
    core.handle_frame(Millis(clock_ms()), parse_server_frame(&text, 1 << 20)?)?;
    // ...drain poll_request, poll_timeout (call handle_timeout then), and:
    while let Some(Event::Message { seq, payload, .. }) = core.poll_event() {
        println!("{seq}: {payload}");
    }
}
    Ok(())
}

/// The fenced blocks of `lang` in `text`, each as its lines.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let open = format!("```{lang}");
    let mut found = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        match current.as_mut() {
            None if line.trim_end() == open => current = Some(Vec::new()),
            None => {}
            Some(lines) if line.trim_end() == "```" => {
                found.push(lines.join("\n"));
                current = None;
            }
            Some(lines) => lines.push(line),
        }
    }
    found
}

const README: &str = include_str!("../README.md");

#[test]
fn every_rust_block_of_the_readme_is_here() {
    let here = include_str!("readme.rs");
    let rust = blocks(README, "rust");
    assert_eq!(rust.len(), 4, "the README's Rust blocks: {rust:#?}");
    for block in rust {
        assert!(
            here.contains(&block),
            "this README block is not in examples/readme.rs:\n{block}"
        );
    }
}

#[test]
fn the_core_example_runs_on_its_two_frames() {
    own_transport().expect("the README's core example");
    let sent = SENT.with(|sent| sent.borrow().clone());
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].contains(r#""type":"subscribe""#), "{sent:?}");
}

#[test]
fn the_readme_description_and_the_example_file_are_valid_descriptions() {
    let json = blocks(README, "json");
    assert_eq!(json.len(), 1, "the README's JSON blocks: {json:#?}");
    for text in [json[0].as_str(), include_str!("foreign-chat.json")] {
        let description: seqsync::adapter::Description =
            serde_json::from_str(text).expect("a description");
        description
            .check()
            .expect("a description the client accepts");
    }
}
