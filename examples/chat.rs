//! `chat`: a terminal chat room. Lines typed are published; everyone's lines
//! are printed in the room's order.
//!
//! ```sh
//! cargo run -p seqsync-examples --bin chat -- --room lobby --name ada
//! ```

use clap::Parser;
use futures_util::StreamExt;
use seqsync::{Client, ClientConfig, SubscriptionEvent};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Chat in a seqsync stream.
#[derive(Parser, Debug)]
struct Args {
    /// Server WebSocket URL (repeat for failover).
    #[arg(
        long = "url",
        env = "SEQSYNC_URL",
        default_value = "ws://127.0.0.1:8080/ws"
    )]
    urls: Vec<String>,
    /// The room (stream) to join.
    #[arg(long, default_value = "lobby")]
    room: String,
    /// Your name.
    #[arg(long, env = "USER", default_value = "guest")]
    name: String,
}

fn line(data: &Value) -> String {
    let from = data.get("from").and_then(Value::as_str).unwrap_or("?");
    let text = data.get("text").and_then(Value::as_str).unwrap_or("");
    format!("<{from}> {text}")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let config = ClientConfig::with_endpoints(args.urls.clone());
    let client = Client::connect(config).await?;
    let mut room = client.subscribe(&args.room).await?;
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    println!(
        "# joined {} as {} (type, Enter to send, Ctrl-D to leave)",
        args.room, args.name
    );
    loop {
        tokio::select! {
            event = room.next() => match event {
                Some(SubscriptionEvent::Snapshot { state, .. }) => {
                    let recent = state.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
                    for message in recent {
                        if let Some(data) = message.get("data") {
                            println!("{}", line(data));
                        }
                    }
                }
                Some(SubscriptionEvent::Message { data, .. }) => println!("{}", line(&data)),
                Some(SubscriptionEvent::Reset { .. }) => println!("# history was trimmed; reloading"),
                Some(_) => {}
                None => break,
            },
            typed = input.next_line() => match typed? {
                Some(text) if !text.trim().is_empty() => {
                    if let Err(error) = client.publish(&args.room, json!({"from": args.name, "text": text})).await {
                        eprintln!("# not sent: {error}");
                    }
                }
                Some(_) => {}
                None => break,
            },
        }
    }
    drop(room);
    client.close().await;
    Ok(())
}
