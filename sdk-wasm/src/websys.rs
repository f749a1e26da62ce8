//! A measured prototype, not part of the package (feature `websys`): the
//! WebSocket and the timer owned by the WASM module through `web-sys`, and,
//! with the feature `gloo`, the socket read through `gloo-net`'s stream. It
//! drives the same [`Session`] binding as the package's JavaScript `Client`,
//! so the comparison in sdk-wasm/BENCHMARKS.md measures only where the IO
//! lives: frames are still parsed by `JSON.parse` (called from WASM), their
//! fields read through imported getters, and messages and snapshots handed
//! to JavaScript callbacks. Other events, storage and publishing are left
//! out; what the numbers cover is said next to them.

use std::cell::RefCell;
use std::rc::Rc;

use std::borrow::Cow;

use seqsync_core::StreamId;
use seqsync_core::protocol::{Fields, StreamKey};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, WebSocket};

use crate::{
    EVENT_MESSAGE, EVENT_SNAPSHOT, READY_EVENTS, READY_TIMEOUT, READY_TRANSMIT, SLOT_A, SLOT_ARG,
    SLOT_B, SLOT_CONN, SLOT_DEADLINE, SLOT_KIND, SLOT_MORE, SLOT_STREAM, SLOT_TRANSMIT,
    TRANSMIT_CONNECT, TRANSMIT_SEND, session::Session, whole,
};

#[wasm_bindgen]
extern "C" {
    /// A parsed server frame, read through getters (one import call each).
    type Frame;
    #[wasm_bindgen(method, getter, js_name = type)]
    fn kind(this: &Frame) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn stream(this: &Frame) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn seq(this: &Frame) -> f64;
    #[wasm_bindgen(method, getter)]
    fn epoch(this: &Frame) -> Option<f64>;
    #[wasm_bindgen(method, getter)]
    fn data(this: &Frame) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn state(this: &Frame) -> JsValue;

    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    fn json_parse(text: &JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &js_sys::Function, ms: f64) -> f64;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: f64);
}

struct Sub {
    name: JsValue,
    handle: f64,
    on_message: js_sys::Function,
    on_snapshot: Option<js_sys::Function>,
}

/// The shared state: the session, the socket, the timer and the streams.
struct Io {
    session: Session,
    ws: Option<WebSocket>,
    subs: Vec<Sub>,
    timer: Option<f64>,
    /// The socket's and the timer's callbacks, kept alive while in use.
    callbacks: Vec<Closure<dyn FnMut(JsValue)>>,
    timer_callback: Option<Closure<dyn FnMut()>>,
    /// With `gloo`: the connection's sending half.
    #[cfg(feature = "gloo")]
    gloo_write: Option<GlooWrite>,
}

#[cfg(feature = "gloo")]
type GlooWrite = futures_util::stream::SplitSink<
    gloo_net::websocket::futures::WebSocket,
    gloo_net::websocket::Message,
>;

/// The prototype client: `new WebClient(url, seed, options)`,
/// `subscribe(stream, onMessage, onSnapshot)`.
#[wasm_bindgen]
pub struct WebClient {
    io: Rc<RefCell<Io>>,
}

#[wasm_bindgen]
impl WebClient {
    /// Starts connecting to `url` at once; `options` as for `Session`.
    ///
    /// # Errors
    /// As the `Session` constructor.
    #[wasm_bindgen(constructor)]
    pub fn new(url: String, seed: &[u8], options: &[f64]) -> Result<WebClient, JsError> {
        let session = Session::new(performance_now(), seed, vec![url], None, options)?;
        let io = Rc::new(RefCell::new(Io {
            session,
            ws: None,
            subs: Vec::new(),
            timer: None,
            callbacks: Vec::new(),
            timer_callback: None,
            #[cfg(feature = "gloo")]
            gloo_write: None,
        }));
        let flags = io.borrow_mut().session.pending();
        drain(&io, flags);
        Ok(WebClient { io })
    }

    /// Follows `stream` from a snapshot.
    pub fn subscribe(
        &self,
        stream: &str,
        on_message: js_sys::Function,
        on_snapshot: Option<js_sys::Function>,
    ) -> f64 {
        let handle = {
            let mut io = self.io.borrow_mut();
            let handle = io
                .session
                .subscribe(performance_now(), stream, None, None, false);
            io.subs.push(Sub {
                name: JsValue::from_str(stream),
                handle,
                on_message,
                on_snapshot,
            });
            handle
        };
        let flags = self.io.borrow().session.scratch()[crate::SLOT_FLAGS] as u32;
        drain(&self.io, flags);
        handle
    }
}

/// Carries out what the session asks: transmits, the timer, events.
fn drain(io: &Rc<RefCell<Io>>, flags: u32) {
    if flags & READY_TRANSMIT != 0 {
        loop {
            let next = {
                let mut state = io.borrow_mut();
                let text = state.session.poll_transmit();
                text.map(|text| (text, *state.session.scratch()))
            };
            let Some((text, s)) = next else { break };
            transmit(io, &text, &s);
        }
    }
    if flags & READY_TIMEOUT != 0 {
        arm_timer(io);
    }
    if flags & READY_EVENTS != 0 {
        dispatch(io, None);
    }
}

fn transmit(io: &Rc<RefCell<Io>>, text: &str, s: &[f64; crate::SLOTS]) {
    let kind = s[SLOT_TRANSMIT] as u32;
    #[cfg(feature = "gloo")]
    if kind == TRANSMIT_SEND {
        gloo::send(io, text);
        return;
    } else if kind == TRANSMIT_CONNECT {
        gloo::connect(io, s[SLOT_CONN], text);
        return;
    }
    if kind == TRANSMIT_SEND {
        if let Some(ws) = &io.borrow().ws {
            let _ = ws.send_with_str(text);
        }
    } else if kind == TRANSMIT_CONNECT {
        connect(io, s[SLOT_CONN], text);
    } else if let Some(ws) = io.borrow_mut().ws.take() {
        ws.set_onopen(None);
        ws.set_onmessage(None);
        ws.set_onclose(None);
        ws.set_onerror(None);
        let _ = ws.close_with_code_and_reason(s[SLOT_ARG] as u16, text);
    }
}

fn connect(io: &Rc<RefCell<Io>>, conn: f64, url: &str) {
    let ws = match WebSocket::new(url) {
        Ok(ws) => ws,
        Err(_) => {
            let flags = io
                .borrow_mut()
                .session
                .closed(performance_now(), conn, "socket refused");
            drain(io, flags);
            return;
        }
    };
    let on = |io: &Rc<RefCell<Io>>, f: fn(&Rc<RefCell<Io>>, f64, JsValue)| {
        let io = Rc::clone(io);
        Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| f(&io, conn, event))
    };
    let open = on(io, |io, conn, _| {
        let flags = io.borrow_mut().session.opened(performance_now(), conn);
        drain(io, flags);
    });
    let message = on(io, |io, _, event| {
        let event: MessageEvent = event.unchecked_into();
        frame(io, event.time_stamp(), event.data());
    });
    let closed = on(io, |io, conn, _| {
        let flags = io
            .borrow_mut()
            .session
            .closed(performance_now(), conn, "closed");
        drain(io, flags);
    });
    ws.set_onopen(Some(open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(closed.as_ref().unchecked_ref()));
    ws.set_onerror(Some(closed.as_ref().unchecked_ref()));
    let mut state = io.borrow_mut();
    state.callbacks = vec![open, message, closed];
    state.ws = Some(ws);
}

/// One frame, as the JavaScript `Client` handles it, from WASM: only the
/// frames a subscription needs to go live and receive are handled here.
fn frame(io: &Rc<RefCell<Io>>, stamp: f64, text: JsValue) {
    let n = text.unchecked_ref::<js_sys::JsString>().length();
    let Ok(parsed) = json_parse(&text) else {
        return;
    };
    let f: Frame = parsed.unchecked_into();
    let kind = f.kind().as_string().unwrap_or_default();
    let mut state = io.borrow_mut();
    let stream = f.stream();
    let Some(h) = state
        .subs
        .iter()
        .find(|s| s.name == stream)
        .map(|s| s.handle)
    else {
        return;
    };
    // The frames a subscription needs, by handle, into the one input; the
    // core judges them.
    let mut fields = Fields {
        kind: Cow::Owned(kind),
        stream: Some(StreamKey::Id(StreamId::from_raw(h as u64))),
        seq: whole(f.seq()),
        epoch: f.epoch().and_then(whole),
        ..Fields::default()
    };
    if fields.kind == "msg" {
        fields.data = Some(f.data());
    } else {
        fields.state = Some(f.state());
    }
    let flags = state.session.frame_fields(stamp, f64::from(n), fields);
    drop(state);
    drain(io, flags);
}

fn arm_timer(io: &Rc<RefCell<Io>>) {
    let mut state = io.borrow_mut();
    let deadline = state.session.scratch()[SLOT_DEADLINE];
    if let Some(id) = state.timer.take() {
        clear_timeout(id);
    }
    if deadline < 0.0 {
        return;
    }
    let callback = {
        let io = Rc::clone(io);
        Closure::<dyn FnMut()>::new(move || {
            io.borrow_mut().timer = None;
            let flags = io.borrow_mut().session.timeout(performance_now());
            drain(&io, flags | READY_TIMEOUT);
        })
    };
    let wait = (deadline - performance_now()).max(0.0).ceil();
    state.timer = Some(set_timeout(callback.as_ref().unchecked_ref(), wait));
    state.timer_callback = Some(callback);
}

/// Hands events to the callbacks; `first`: one polled already.
fn dispatch(io: &Rc<RefCell<Io>>, mut first: Option<(JsValue, [f64; crate::SLOTS])>) {
    loop {
        let (payload, s) = match first.take() {
            Some(event) => event,
            None => {
                let mut state = io.borrow_mut();
                let payload = state.session.poll_event();
                (payload, *state.session.scratch())
            }
        };
        let kind = s[SLOT_KIND] as u32;
        if kind == 0 {
            break;
        }
        let callback = {
            let state = io.borrow();
            let sub = state.subs.iter().find(|sub| sub.handle == s[SLOT_STREAM]);
            match kind {
                EVENT_MESSAGE => sub.map(|sub| sub.on_message.clone()),
                EVENT_SNAPSHOT => sub.and_then(|sub| sub.on_snapshot.clone()),
                _ => None,
            }
        };
        if let Some(callback) = callback {
            let _ = callback.call2(&JsValue::UNDEFINED, &payload, &JsValue::from(s[SLOT_A]));
        }
        let _ = s[SLOT_B];
        if s[SLOT_MORE] == 0.0 {
            break;
        }
    }
}

/// The `gloo` variant: gloo-net's `WebSocket` as a `Stream` of messages,
/// read by a task on `wasm-bindgen-futures`' executor. gloo-net turns each
/// text frame into a Rust `String` (a UTF-16 to UTF-8 copy) and does not
/// pass the event's `timeStamp` on, so each frame is copied back to a
/// JavaScript string for `JSON.parse` and the time is read by a call to
/// `performance.now()`.
#[cfg(feature = "gloo")]
mod gloo {
    use std::cell::RefCell;
    use std::pin::Pin;
    use std::rc::Rc;

    use futures_util::{Sink, SinkExt, StreamExt, future::poll_fn};
    use gloo_net::websocket::Message;
    use gloo_net::websocket::futures::WebSocket;
    use wasm_bindgen::JsValue;

    use super::{Io, drain, frame, performance_now};

    pub(super) fn connect(io: &Rc<RefCell<Io>>, conn: f64, url: &str) {
        let closed = move |io: &Rc<RefCell<Io>>| {
            let flags = io
                .borrow_mut()
                .session
                .closed(performance_now(), conn, "closed");
            drain(io, flags);
        };
        let Ok(mut ws) = WebSocket::open(url) else {
            closed(io);
            return;
        };
        let io = Rc::clone(io);
        wasm_bindgen_futures::spawn_local(async move {
            // Open once the sink is ready to send.
            if poll_fn(|cx| Pin::new(&mut ws).poll_ready(cx))
                .await
                .is_err()
            {
                closed(&io);
                return;
            }
            let flags = io.borrow_mut().session.opened(performance_now(), conn);
            let (write, mut read) = ws.split();
            io.borrow_mut().gloo_write = Some(write);
            drain(&io, flags);
            while let Some(item) = read.next().await {
                match item {
                    Ok(Message::Text(text)) => frame(&io, performance_now(), JsValue::from(text)),
                    Ok(Message::Bytes(_)) => {}
                    Err(_) => break,
                }
            }
            io.borrow_mut().gloo_write = None;
            closed(&io);
        });
    }

    pub(super) fn send(io: &Rc<RefCell<Io>>, text: &str) {
        let io = Rc::clone(io);
        let text = text.to_string();
        wasm_bindgen_futures::spawn_local(async move {
            let write = io.borrow_mut().gloo_write.take();
            if let Some(mut write) = write {
                let _ = write.send(Message::Text(text)).await;
                io.borrow_mut().gloo_write = Some(write);
            }
        });
    }
}
