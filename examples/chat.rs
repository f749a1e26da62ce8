//! `chat`: a terminal chat room. Lines typed are published; everyone's lines
//! are printed in the room's order. A room is the stream `chat:<room>`, as
//! on the demo page, so the terminal and the browser chat together.
//!
//! ```sh
//! cargo run -p seqsync-examples --bin chat -- --room lobby --name ada
//! ```

use clap::Parser;
use futures_util::StreamExt;
use seqsync::{Client, ClientConfig, SubscriptionEvent};
use serde::{Deserialize, Serialize};
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
    /// The room to join: the stream `chat:<room>`.
    #[arg(long, default_value = "lobby")]
    room: String,
    /// Your name.
    #[arg(long, env = "USER", default_value = "guest")]
    name: String,
}

/// One chat line, as the demo page writes it too.
#[derive(Serialize, Deserialize)]
struct Line {
    from: String,
    text: String,
}

/// The reference server's snapshot state: the last messages.
#[derive(Deserialize)]
struct Recent {
    messages: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    data: Line,
}

fn show(line: &Line) {
    println!("<{}> {}", line.from, line.text);
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let config = ClientConfig::with_endpoints(args.urls.clone());
    let client = Client::connect(config).await?;
    let stream = format!("chat:{}", args.room);
    let mut room = client.subscribe_as::<Line>(&stream).await?;
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    println!(
        "# joined {} as {} (type, Enter to send, Ctrl-D to leave)",
        args.room, args.name
    );
    loop {
        tokio::select! {
            event = room.next() => match event {
                Some(SubscriptionEvent::Snapshot { state, .. }) => {
                    match state.parse::<Recent>() {
                        Ok(recent) => recent.messages.iter().for_each(|m| show(&m.data)),
                        Err(error) => eprintln!("# unreadable history: {error}"),
                    }
                }
                Some(SubscriptionEvent::Message { data, .. }) => show(&data),
                Some(SubscriptionEvent::Undecodable { seq, data, .. }) => {
                    eprintln!("# message {seq} is not a chat line: {data}");
                }
                Some(SubscriptionEvent::Reset { .. }) => println!("# history was trimmed; reloading"),
                Some(_) => {}
                None => break,
            },
            typed = input.next_line() => match typed? {
                Some(text) if !text.trim().is_empty() => {
                    let line = Line { from: args.name.clone(), text };
                    if let Err(error) = client.publish(&stream, &line).await {
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
