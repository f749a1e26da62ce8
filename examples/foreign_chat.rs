//! `foreign-chat`: a terminal chat room on a server that knows nothing of
//! seqsync — the multi-instance chat server of `tests/foreign/` (Python,
//! Redis pub/sub, `GET /rooms/{room}/messages?since=N`). The client is
//! configured only with the server's description, `foreign-chat.json`;
//! lines typed are posted, everyone's lines are printed in the room's
//! order, with whatever the server's fan-out lost fetched again.
//!
//! ```sh
//! source scripts/foreign.sh && ensure_foreign_server
//! tests/foreign/.venv/bin/python tests/foreign/server.py --port 9000 &
//! cargo run -p seqsync-examples --bin foreign-chat -- --room lobby --name ada
//! ```

use clap::Parser;
use futures_util::StreamExt;
use seqsync::adapter::Description;
use seqsync::{Client, ClientConfig, SubscriptionEvent};
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Chat on a server described by a seqsync description.
#[derive(Parser, Debug)]
struct Args {
    /// The server's WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:9000/ws")]
    url: String,
    /// The server's HTTP base, put in place of the description's.
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    http: String,
    /// The room to join.
    #[arg(long, default_value = "lobby")]
    room: String,
    /// Your name.
    #[arg(long, env = "USER", default_value = "guest")]
    name: String,
}

/// One message as that server stores and sends it.
#[derive(Deserialize)]
struct Stored {
    user_id: String,
    message: String,
}

const DESCRIPTION: &str = include_str!("foreign-chat.json");

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let text = DESCRIPTION.replace("http://127.0.0.1:9000", args.http.trim_end_matches('/'));
    let description: Description = serde_json::from_str(&text)?;
    let client = Client::connect(ClientConfig::foreign(&args.url, description)?).await?;
    let mut room = client.subscribe_as::<Stored>(&args.room).await?;
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    println!("# joined {} as {} (Ctrl-D to leave)", args.room, args.name);
    loop {
        tokio::select! {
            event = room.next() => match event {
                Some(SubscriptionEvent::Message { seq, data, .. }) => {
                    println!("{seq:>5} <{}> {}", data.user_id, data.message);
                }
                Some(SubscriptionEvent::Reset { earliest, .. }) => {
                    println!("# older messages are gone; from {earliest:?} on");
                }
                Some(SubscriptionEvent::Undecodable { seq, data, .. }) => {
                    eprintln!("# message {seq} is not a chat line: {data}");
                }
                Some(_) => {}
                None => break,
            },
            line = input.next_line() => match line? {
                Some(line) if !line.trim().is_empty() => {
                    let body = json!({"user_id": args.name, "message": line});
                    if let Err(error) = client.publish(&args.room, body).await {
                        eprintln!("# not sent: {error}");
                    }
                }
                Some(_) => {}
                None => break,
            },
        }
    }
    client.close().await;
    Ok(())
}
