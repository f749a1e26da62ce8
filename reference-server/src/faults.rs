//! Deterministic fault injection on outbound live frames.
//!
//! A [`FaultSpec`] is parsed from text such as
//! `seed=42,drop=0.05,dup=0.05,reorder=0.2,window=10,delay_ms=0..20,cut_every_frames=5000,cut_every_ms=2000`.
//! A [`FaultInjector`] applies it to one connection: every decision is drawn
//! from a [`SplitMix64`] seeded by the spec, so the same seed and the same
//! input frames give the same output pattern. Only live `msg` frames are
//! dropped, duplicated, reordered or delayed; cuts end the whole connection.
//!
//! ```
//! use seqsync_server::faults::{FaultInjector, FaultSpec};
//!
//! let spec: FaultSpec = "seed=7,drop=0.2,dup=0.1,reorder=0.3,window=4".parse()?;
//! let run = |spec: &FaultSpec| {
//!     let mut injector = FaultInjector::new(spec.clone());
//!     let mut out = Vec::new();
//!     for i in 0..100u32 {
//!         injector.push(i, &mut out);
//!     }
//!     injector.flush(&mut out);
//!     out
//! };
//! assert_eq!(run(&spec), run(&spec));
//! assert_ne!(run(&spec), (0..100).collect::<Vec<_>>());
//! # Ok::<(), seqsync_server::faults::FaultSpecError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// A tiny, fast, seedable PRNG (SplitMix64): good enough for fault patterns
/// and epochs, and identical on every platform.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting at `seed`.
    pub const fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An integer uniform in `lo..=hi` (`lo` when `hi < lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo;
        if span == u64::MAX {
            return self.next_u64();
        }
        lo + self.next_u64() % (span + 1)
    }
}

/// What to do to a connection's outbound frames.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    /// Seed of the decisions.
    pub seed: u64,
    /// Probability that a live frame is dropped.
    pub drop: f64,
    /// Probability that a live frame is sent twice.
    pub dup: f64,
    /// Probability that a live frame is held back and sent after up to
    /// `window` later frames.
    pub reorder: f64,
    /// How many frames a held frame may be overtaken by (1 to 1024).
    pub window: u32,
    /// Each live frame is delayed by a uniform number of milliseconds in
    /// this inclusive range (`0..=0`: no delay).
    pub delay_ms: (u64, u64),
    /// Cut the connection after this many outbound frames (0: never).
    pub cut_every_frames: u64,
    /// Cut the connection this many milliseconds after it opened (0: never).
    pub cut_every_ms: u64,
}

impl Default for FaultSpec {
    fn default() -> FaultSpec {
        FaultSpec {
            seed: 0,
            drop: 0.0,
            dup: 0.0,
            reorder: 0.0,
            window: 8,
            delay_ms: (0, 0),
            cut_every_frames: 0,
            cut_every_ms: 0,
        }
    }
}

impl FaultSpec {
    /// The same spec with the seed mixed with `n`, so that connections of
    /// one server get distinct but reproducible patterns.
    pub fn derive(&self, n: u64) -> FaultSpec {
        let mut rng = SplitMix64::new(self.seed ^ n.wrapping_mul(0xA24B_AED4_963E_E407));
        FaultSpec {
            seed: rng.next_u64(),
            ..self.clone()
        }
    }

    /// Whether the spec changes anything at all.
    pub fn is_active(&self) -> bool {
        self.drop > 0.0
            || self.dup > 0.0
            || self.reorder > 0.0
            || self.delay_ms.1 > 0
            || self.cut_every_frames > 0
            || self.cut_every_ms > 0
    }
}

/// A fault spec that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault spec at {item:?}: {reason}")]
pub struct FaultSpecError {
    /// The offending `key=value` item.
    pub item: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(text: &str) -> Result<FaultSpec, FaultSpecError> {
        let mut spec = FaultSpec::default();
        if text.len() > 1024 {
            return Err(FaultSpecError {
                item: text.chars().take(32).collect(),
                reason: "spec longer than 1024 bytes",
            });
        }
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let err = |reason| FaultSpecError {
                item: item.chars().take(64).collect(),
                reason,
            };
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| err("expected key=value"))?;
            let int = |v: &str| v.trim().parse::<u64>().map_err(|_| err("not an integer"));
            let prob = |v: &str| match v.trim().parse::<f64>() {
                Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
                _ => Err(err("not a probability in 0..=1")),
            };
            match key.trim() {
                "seed" => spec.seed = int(value)?,
                "drop" => spec.drop = prob(value)?,
                "dup" => spec.dup = prob(value)?,
                "reorder" => spec.reorder = prob(value)?,
                "window" => {
                    let w = int(value)?;
                    if !(1..=1024).contains(&w) {
                        return Err(err("window must be in 1..=1024"));
                    }
                    spec.window = w as u32;
                }
                "delay_ms" => {
                    let (lo, hi) = match value.split_once("..") {
                        Some((lo, hi)) => (int(lo)?, int(hi.trim_start_matches('='))?),
                        None => {
                            let v = int(value)?;
                            (v, v)
                        }
                    };
                    if lo > hi || hi > 60_000 {
                        return Err(err("delay range must be lo..hi with hi <= 60000"));
                    }
                    spec.delay_ms = (lo, hi);
                }
                "cut_every_frames" => spec.cut_every_frames = int(value)?,
                "cut_every_ms" => spec.cut_every_ms = int(value)?,
                _ => return Err(err("unknown key")),
            }
        }
        Ok(spec)
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed={},drop={},dup={},reorder={},window={},delay_ms={}..{},cut_every_frames={},cut_every_ms={}",
            self.seed,
            self.drop,
            self.dup,
            self.reorder,
            self.window,
            self.delay_ms.0,
            self.delay_ms.1,
            self.cut_every_frames,
            self.cut_every_ms
        )
    }
}

/// Applies a [`FaultSpec`] to a sequence of live frames of type `F`.
///
/// Sans-IO: [`push`](Self::push) takes a frame and appends what should be
/// sent now; [`flush`](Self::flush) releases frames held for reordering.
/// Delays are drawn with [`delay_ms`](Self::delay_ms) by the caller, who
/// owns the clock.
#[derive(Debug)]
pub struct FaultInjector<F> {
    spec: FaultSpec,
    rng: SplitMix64,
    /// Frames held for reordering with the number of later frames still to
    /// pass them.
    held: Vec<(u32, F)>,
    dropped: u64,
    duplicated: u64,
    reordered: u64,
}

impl<F: Clone> FaultInjector<F> {
    /// An injector at the start of its pattern.
    pub fn new(spec: FaultSpec) -> FaultInjector<F> {
        FaultInjector {
            rng: SplitMix64::new(spec.seed),
            spec,
            held: Vec::new(),
            dropped: 0,
            duplicated: 0,
            reordered: 0,
        }
    }

    /// The spec.
    pub fn spec(&self) -> &FaultSpec {
        &self.spec
    }

    /// Frames dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Frames duplicated so far.
    pub fn duplicated(&self) -> u64 {
        self.duplicated
    }

    /// Frames held back for reordering so far.
    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    /// Whether frames are held back.
    pub fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Takes one live frame; appends to `out` what is to be sent now, in order.
    pub fn push(&mut self, frame: F, out: &mut Vec<F>) {
        // Frames held earlier count this frame as one that overtook them.
        let mut due = Vec::new();
        for (countdown, _) in &mut self.held {
            *countdown = countdown.saturating_sub(1);
        }
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].0 == 0 {
                due.push(self.held.remove(i).1);
            } else {
                i += 1;
            }
        }
        if self.rng.next_f64() < self.spec.drop {
            self.dropped += 1;
        } else {
            let copies = if self.rng.next_f64() < self.spec.dup {
                self.duplicated += 1;
                2
            } else {
                1
            };
            for _ in 0..copies {
                let frame = frame.clone();
                if self.spec.window > 1 && self.rng.next_f64() < self.spec.reorder {
                    if self.held.len() >= self.spec.window as usize {
                        out.push(self.held.remove(0).1);
                    }
                    let countdown = self.rng.range(1, u64::from(self.spec.window)) as u32;
                    self.held.push((countdown, frame));
                    self.reordered += 1;
                } else {
                    out.push(frame);
                }
            }
        }
        out.extend(due);
    }

    /// Releases every held frame, oldest first (used when the stream goes idle).
    pub fn flush(&mut self, out: &mut Vec<F>) {
        out.extend(self.held.drain(..).map(|(_, f)| f));
    }

    /// The delay for the next frame, in milliseconds (0 when none is configured).
    pub fn delay_ms(&mut self) -> u64 {
        let (lo, hi) = self.spec.delay_ms;
        if hi == 0 { 0 } else { self.rng.range(lo, hi) }
    }
}

/// Frames held back by [`FaultSpec::delay_ms`] until they are due, in the
/// order they are due (frames due at the same time keep their order).
/// Bounded: past `capacity` held frames, a new frame is not held but due at
/// once, so a fast stream cannot grow it without limit.
///
/// ```
/// use std::time::{Duration, Instant};
/// use seqsync_server::faults::DelayLine;
///
/// let start = Instant::now();
/// let mut line = DelayLine::new(2);
/// let mut ready = Vec::new();
/// line.push(start, 30, "a", &mut ready);
/// line.push(start, 10, "b", &mut ready);
/// line.push(start, 20, "c", &mut ready); // full: due now
/// assert_eq!(ready, ["c"]);
/// assert_eq!(line.next_due(), Some(start + Duration::from_millis(10)));
/// line.pop_due(start + Duration::from_millis(30), &mut ready);
/// assert_eq!(ready, ["c", "b", "a"]);
/// assert!(line.is_empty());
/// ```
#[derive(Debug)]
pub struct DelayLine<F> {
    held: BTreeMap<(Instant, u64), F>,
    next: u64,
    capacity: usize,
}

impl<F> DelayLine<F> {
    /// An empty line holding at most `capacity` frames.
    pub fn new(capacity: usize) -> DelayLine<F> {
        DelayLine {
            held: BTreeMap::new(),
            next: 0,
            capacity,
        }
    }

    /// Holds `frame` until `delay_ms` after `now`; a frame with no delay,
    /// or one that finds the line full, goes to `ready` at once.
    pub fn push(&mut self, now: Instant, delay_ms: u64, frame: F, ready: &mut Vec<F>) {
        if delay_ms == 0 || self.held.len() >= self.capacity {
            ready.push(frame);
            return;
        }
        self.next += 1;
        self.held
            .insert((now + Duration::from_millis(delay_ms), self.next), frame);
    }

    /// Moves every frame due at `now` to `ready`, in due order.
    pub fn pop_due(&mut self, now: Instant, ready: &mut Vec<F>) {
        while let Some(entry) = self.held.first_entry() {
            if entry.key().0 > now {
                break;
            }
            ready.push(entry.remove());
        }
    }

    /// When the next held frame is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.held.first_key_value().map(|((at, _), _)| *at)
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(spec: &FaultSpec, n: u32) -> Vec<u32> {
        let mut injector = FaultInjector::new(spec.clone());
        let mut out = Vec::new();
        for i in 0..n {
            injector.push(i, &mut out);
        }
        injector.flush(&mut out);
        out
    }

    #[test]
    fn parses_the_full_spec() {
        let spec: FaultSpec = "seed=42,drop=0.05,dup=0.05,reorder=0.2,window=10,delay_ms=0..20,cut_every_frames=5000,cut_every_ms=2000"
            .parse()
            .unwrap_or_default();
        assert_eq!(spec.seed, 42);
        assert_eq!(spec.window, 10);
        assert_eq!(spec.delay_ms, (0, 20));
        assert_eq!(spec.cut_every_frames, 5000);
        assert_eq!(spec.cut_every_ms, 2000);
        assert!((spec.drop - 0.05).abs() < 1e-12);
    }

    #[test]
    fn rejects_bad_items() {
        for bad in [
            "drop=2",
            "window=0",
            "nope=1",
            "seed",
            "delay_ms=5..1",
            "seed=-1",
        ] {
            assert!(bad.parse::<FaultSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn same_seed_same_pattern_other_seed_other_pattern() {
        let a: FaultSpec = "seed=1,drop=0.1,dup=0.1,reorder=0.3,window=5"
            .parse()
            .unwrap_or_default();
        let b = FaultSpec {
            seed: 2,
            ..a.clone()
        };
        assert_eq!(run(&a, 500), run(&a, 500));
        assert_ne!(run(&a, 500), run(&b, 500));
    }

    #[test]
    fn reorder_stays_within_window_and_loses_nothing() {
        let spec: FaultSpec = "seed=9,reorder=0.5,window=4".parse().unwrap_or_default();
        let out = run(&spec, 1000);
        let mut sorted = out.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_ne!(out, sorted);
        for (pos, &v) in out.iter().enumerate() {
            assert!((pos as i64 - i64::from(v)).abs() <= 8, "{v} at {pos}");
        }
    }

    #[test]
    fn drop_and_dup_rates_are_roughly_as_asked() {
        let spec: FaultSpec = "seed=3,drop=0.1,dup=0.1".parse().unwrap_or_default();
        let mut injector = FaultInjector::new(spec);
        let mut out = Vec::new();
        for i in 0..10_000u32 {
            injector.push(i, &mut out);
        }
        assert!((800..1200).contains(&injector.dropped()));
        assert!((700..1100).contains(&injector.duplicated()));
    }
}
