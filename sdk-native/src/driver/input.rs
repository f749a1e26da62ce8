//! What arrives on the socket, turned into the session's one input: the
//! frame parsed by the core's borrowing parser, payloads as slices of it.

use super::*;

impl Driver {
    /// One frame from the socket; false when the connection ended.
    pub(super) fn on_frame(
        &mut self,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> bool {
        let now = self.now();
        let Some(conn) = self.open.as_ref().map(|o| o.conn) else {
            return false;
        };
        let ended = match frame {
            Some(Ok(Message::Text(text))) => {
                self.on_text(now, text);
                None
            }
            Some(Ok(Message::Binary(data))) => {
                let frame = Err(seqsync_core::Error::MalformedFrame {
                    reason: "a binary frame (the protocol's frames are text)".to_string(),
                });
                let input = Input::Frame {
                    bytes: data.len(),
                    frame,
                };
                if let Err(error) = self.session.handle_input(now, input) {
                    warn!(%error, "frame dropped");
                }
                None
            }
            Some(Ok(Message::Close(frame))) => Some(match frame {
                Some(f) => (
                    Some(u16::from(f.code)),
                    format!("closed by the server ({}: {})", u16::from(f.code), f.reason),
                ),
                None => (None, "closed by the server".to_string()),
            }),
            Some(Ok(_)) => None,
            Some(Err(error)) => Some((None, error.to_string())),
            None => Some((None, "connection ended".to_string())),
        };
        match ended {
            Some((code, reason)) => {
                self.open = None;
                self.closed(now, conn, code, &reason);
                false
            }
            None => true,
        }
    }

    pub(super) fn on_text(&mut self, now: Millis, text: Utf8Bytes) {
        if let Some(foreign) = &self.foreign {
            self.session.handle_received(now, text.len());
            let frame = Frame::new(text);
            let result = match foreign.adapter.read(&frame) {
                Inbound::Message {
                    stream,
                    seq,
                    epoch,
                    payload,
                } => self
                    .session
                    .handle_foreign_message(now, &stream, seq, epoch, payload),
                Inbound::Heartbeat { stream, seq, epoch } => {
                    self.session.handle_foreign_head(now, &stream, seq, epoch)
                }
                Inbound::Ignore => Ok(()),
                Inbound::Bad(reason) => {
                    self.session.handle_bad_frame(now);
                    warn!(%reason, "frame dropped");
                    Ok(())
                }
            };
            if let Err(error) = result {
                self.session.handle_bad_frame(now);
                warn!(%error, "frame dropped");
            }
            return;
        }
        // Payloads stay slices of the frame: each takes the frame along.
        let frame = parse_server_frame_raw(text.as_str(), self.max_frame_bytes).map(|frame| {
            frame.map(|data| Payload::from_frame(text.clone(), Payload::range(&text, data)))
        });
        let bytes = text.len();
        if let Err(error) = self
            .session
            .handle_input(now, Input::Frame { bytes, frame })
        {
            warn!(%error, "frame dropped");
        }
    }
}
