//! A `Session` over a server that does not speak the seqsync protocol: the
//! constructor that takes the adapter's plan, the adapter's inputs (the
//! messages and heartbeats it read from frames, the answers to requests),
//! and the requests `pollTransmit` hands to the adapter. The adapter itself
//! (frames and HTTP, reading JSON) is JavaScript: the package's `describe`,
//! or one written by hand.

use crate::prelude::*;
use seqsync_core::adapter::{DEFAULT_LIMIT, FetchAnswer, FetchId, ForeignRequest, Plan, Start};
use seqsync_core::{Epoch, Error, Seq};
use wasm_bindgen::prelude::*;

use super::{Session, no_endpoint, seed_of, session_config};
use crate::{
    ANSWER_FAILED, ANSWER_GONE, ANSWER_HEAD, ANSWER_MESSAGES, ANSWER_PUBLISHED, ANSWER_SENT,
    ANSWER_SNAPSHOT, REQUEST_HEAD, REQUEST_HISTORY, REQUEST_PUBLISH, REQUEST_SNAPSHOT,
    REQUEST_SUBSCRIBE, REQUEST_UNSUBSCRIBE, SLOT_ARG, SLOT_CONN, SLOT_LIMIT, SLOT_SINCE, SLOT_TO,
    count, history_messages, message_seq, millis, position, required_epoch, whole,
};

/// The number of plan entries the constructor reads (see
/// [`Session::foreign`]).
const PLAN: usize = 9;

#[wasm_bindgen]
impl Session {
    /// A session over a server that does not speak the seqsync protocol,
    /// whose adapter carries out the requests `pollTransmit` returns as
    /// `TRANSMIT_FOREIGN` and reads its frames and answers back
    /// (`foreignMessage`, `foreignHead`, `fetched`). A stream that starts
    /// without a snapshot starts with the state `null`.
    ///
    /// `plan`: what the adapter can do, up to 9 numbers, absent ones 0:
    /// history, snapshot, head, publish, heartbeats, holes (each 1 for yes),
    /// start (0 beginning, 1 snapshot, 2 head), pollMs, limit (0: 500).
    /// The other arguments are the constructor's.
    ///
    /// # Errors
    /// A seed that is not 32 bytes, or no endpoint.
    pub fn foreign(
        now: f64,
        seed: &[u8],
        endpoints: Vec<String>,
        token: Option<String>,
        options: &[f64],
        plan: &[f64],
    ) -> Result<Session, JsError> {
        let seed = seed_of(seed)?;
        let config = session_config(endpoints, token, options);
        seqsync_core::Session::foreign(config, plan_of(plan), null, seed, millis(now))
            .map(Session::around)
            .map_err(|_| no_endpoint())
    }

    /// A message the adapter read from a frame: `epoch` `undefined` when
    /// the server has none. Messages of streams not subscribed are ignored;
    /// invalid numbers count the frame as bad (`READY_ERROR`).
    #[wasm_bindgen(js_name = foreignMessage)]
    pub fn foreign_message(
        &mut self,
        now: f64,
        stream: &str,
        seq: f64,
        epoch: Option<f64>,
        payload: JsValue,
    ) -> u32 {
        let at = millis(now);
        let result = (|| {
            let seq = message_seq(seq)?;
            let epoch = epoch_of(epoch)?;
            self.inner
                .handle_foreign_message(at, stream, seq, epoch, payload)
        })();
        self.frame(at, result)
    }

    /// A heartbeat the adapter read from a frame: the stream's latest seq
    /// (0: none yet).
    #[wasm_bindgen(js_name = foreignHead)]
    pub fn foreign_head(&mut self, now: f64, stream: &str, seq: f64, epoch: Option<f64>) -> u32 {
        let at = millis(now);
        let result = (|| {
            let seq = position(seq)?;
            let epoch = epoch_of(epoch)?;
            self.inner.handle_foreign_head(at, stream, seq, epoch)
        })();
        self.frame(at, result)
    }

    /// The answer to the foreign request `id` (scratch slot 10 of its
    /// transmit), `bytes` long, of kind `ANSWER_*`: `number` is its seq,
    /// earliest seq or HTTP status (-1: none, see each kind), `seqs[i]` the
    /// seq of `data[i]` (messages), `value` the state (snapshot), the
    /// reason (failed) or the epoch the messages name (messages; not a
    /// number: none). Answers with invalid numbers are taken as failed.
    /// Every request with an id must be answered exactly once.
    #[allow(clippy::too_many_arguments)]
    pub fn fetched(
        &mut self,
        now: f64,
        id: f64,
        bytes: f64,
        kind: u32,
        number: f64,
        seqs: Vec<f64>,
        data: Vec<JsValue>,
        value: JsValue,
    ) -> u32 {
        let answer =
            answer_of(kind, number, seqs, data, value).unwrap_or_else(|_| FetchAnswer::Failed {
                reason: "the answer has invalid numbers".to_string(),
                status: None,
            });
        let id = FetchId(whole(id).unwrap_or(u64::MAX));
        self.inner
            .handle_fetched(millis(now), id, whole(bytes).map_or(0, count), answer);
        self.ready()
    }

    /// The JSON text of the last publish request `pollTransmit` returned.
    #[wasm_bindgen(js_name = foreignData)]
    pub fn foreign_data(&mut self) -> String {
        core::mem::take(&mut self.foreign_data)
    }

    /// The random id of the last publish request `pollTransmit` returned.
    #[wasm_bindgen(js_name = foreignId)]
    pub fn foreign_id(&mut self) -> String {
        core::mem::take(&mut self.foreign_id)
    }
}

impl Session {
    /// Writes a foreign request's kind and numbers to the scratch area and
    /// keeps a publish's texts; returns the request's stream.
    pub(super) fn foreign_request(
        &mut self,
        id: Option<FetchId>,
        request: ForeignRequest,
    ) -> String {
        let s = &mut self.scratch;
        s[SLOT_CONN] = id.map_or(-1.0, |id| id.0 as f64);
        s[SLOT_SINCE] = 0.0;
        s[SLOT_TO] = -1.0;
        s[SLOT_LIMIT] = 0.0;
        let (kind, stream) = match request {
            ForeignRequest::Subscribe { stream, since } => {
                s[SLOT_SINCE] = since.get() as f64;
                (REQUEST_SUBSCRIBE, stream)
            }
            ForeignRequest::Unsubscribe { stream } => (REQUEST_UNSUBSCRIBE, stream),
            ForeignRequest::History {
                stream,
                since,
                to,
                limit,
            } => {
                s[SLOT_SINCE] = since.get() as f64;
                s[SLOT_TO] = to.map_or(-1.0, |to| to.get() as f64);
                s[SLOT_LIMIT] = f64::from(limit);
                (REQUEST_HISTORY, stream)
            }
            ForeignRequest::Snapshot { stream } => (REQUEST_SNAPSHOT, stream),
            ForeignRequest::Head { stream } => (REQUEST_HEAD, stream),
            ForeignRequest::Publish { stream, data, id } => {
                self.foreign_data = data;
                self.foreign_id = id;
                (REQUEST_PUBLISH, stream)
            }
        };
        self.scratch[SLOT_ARG] = f64::from(kind);
        stream.as_str().to_string()
    }
}

/// The state of a stream that starts without a snapshot.
fn null() -> JsValue {
    JsValue::NULL
}

/// The plan from the constructor's numbers (see [`Session::foreign`]).
fn plan_of(numbers: &[f64]) -> Plan {
    let mut values = [0.0; PLAN];
    for (value, given) in values.iter_mut().zip(numbers) {
        *value = *given;
    }
    let yes = |i: usize| values[i] == 1.0;
    let limit = whole(values[8]).map_or(0, |n| n.min(u64::from(u32::MAX)) as u32);
    Plan {
        history: yes(0),
        snapshot: yes(1),
        head: yes(2),
        publish: yes(3),
        heartbeats: yes(4),
        holes: yes(5),
        start: match values[6] {
            1.0 => Start::Snapshot,
            2.0 => Start::Head,
            _ => Start::Beginning,
        },
        poll_ms: whole(values[7]).unwrap_or(0),
        limit: if limit == 0 { DEFAULT_LIMIT } else { limit },
    }
}

fn epoch_of(epoch: Option<f64>) -> Result<Option<Epoch>, Error> {
    epoch.map(required_epoch).transpose()
}

/// A seq that may be absent (-1).
fn optional_seq(number: f64) -> Result<Option<Seq>, Error> {
    if number == -1.0 {
        Ok(None)
    } else {
        message_seq(number).map(Some)
    }
}

/// The answer `fetched` was given, or an error for invalid numbers.
fn answer_of(
    kind: u32,
    number: f64,
    seqs: Vec<f64>,
    data: Vec<JsValue>,
    value: JsValue,
) -> Result<FetchAnswer<JsValue>, Error> {
    Ok(match kind {
        ANSWER_MESSAGES => FetchAnswer::Messages {
            messages: history_messages(seqs, data)?,
            earliest: optional_seq(number)?,
            // The epoch the messages name, as a number in `value` (else none).
            epoch: value.as_f64().map(required_epoch).transpose()?,
        },
        ANSWER_SNAPSHOT => FetchAnswer::Snapshot {
            seq: position(number)?,
            state: value,
        },
        ANSWER_HEAD => FetchAnswer::Head {
            seq: position(number)?,
        },
        ANSWER_PUBLISHED => FetchAnswer::Published {
            seq: optional_seq(number)?,
        },
        ANSWER_SENT => FetchAnswer::Sent,
        ANSWER_GONE => FetchAnswer::Gone {
            earliest: optional_seq(number)?,
        },
        ANSWER_FAILED => FetchAnswer::Failed {
            reason: value.as_string().unwrap_or_default(),
            status: whole(number)
                .and_then(|n| u16::try_from(n).ok())
                .filter(|_| crate::is_integer(number)),
        },
        _ => FetchAnswer::Failed {
            reason: "an answer of no known kind".to_string(),
            status: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_reads_its_numbers_and_defaults_the_rest() {
        let plan = plan_of(&[1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 2.0, 500.0, 20.0]);
        assert_eq!(
            plan,
            Plan {
                history: true,
                snapshot: false,
                head: true,
                publish: true,
                heartbeats: false,
                holes: true,
                start: Start::Head,
                poll_ms: 500,
                limit: 20,
            }
        );
        assert_eq!(plan_of(&[]), Plan::default());
        let odd = plan_of(&[f64::NAN, 2.0, 1.0, 0.5, 1.0, 0.0, 7.0, -1.0, -4.0]);
        assert!(!odd.history && !odd.snapshot && odd.head && !odd.publish && odd.heartbeats);
        assert_eq!(odd.start, Start::Beginning);
        assert_eq!((odd.poll_ms, odd.limit), (0, DEFAULT_LIMIT));
    }

    #[test]
    fn numbers_of_an_answer_are_checked() {
        let head = |n: f64| answer_of(ANSWER_HEAD, n, Vec::new(), Vec::new(), JsValue::NULL);
        assert!(matches!(head(0.0), Ok(FetchAnswer::Head { seq }) if seq == Seq::ZERO));
        assert!(head(1.5).is_err());
        assert!(head(-1.0).is_err());
        let published =
            |n: f64| answer_of(ANSWER_PUBLISHED, n, Vec::new(), Vec::new(), JsValue::NULL);
        assert!(matches!(
            published(-1.0),
            Ok(FetchAnswer::Published { seq: None })
        ));
        assert!(
            published(0.0).is_err(),
            "a stored message's seq is at least 1"
        );
        let nulls = || (0..2).map(|_| JsValue::NULL).collect();
        let messages = answer_of(
            ANSWER_MESSAGES,
            -1.0,
            vec![1.0, 0.0],
            nulls(),
            JsValue::NULL,
        );
        assert!(messages.is_err(), "one invalid seq spoils the answer");
        let earliest = answer_of(ANSWER_GONE, 0.5, Vec::new(), Vec::new(), JsValue::NULL);
        assert!(earliest.is_err());
    }
}
