//! The session's randomness: a ChaCha20 keystream keyed with a seed the
//! shell draws from its platform's CSPRNG (`getrandom` natively,
//! `crypto.getRandomValues` in browsers).
//!
//! Publish ids come from it, so they must be unpredictable as well as
//! unique: another client allowed to write the stream that could guess the
//! next id could publish under it first, and the real publish would be
//! acknowledged with the other message's seq. A generator keyed with 256
//! secret bits and run as a stream cipher gives that; a fast
//! non-cryptographic generator would reveal its state in a few outputs.
//! Reconnect jitter draws from the same stream.

use crate::prelude::*;

/// A ChaCha20 keystream (RFC 8439 block function, nonce 0), read 32 bits
/// at a time.
#[derive(Clone)]
pub(crate) struct Rng {
    key: [u32; 8],
    counter: u64,
    block: [u32; 16],
    used: usize,
}

impl core::fmt::Debug for Rng {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The key is secret: never printed.
        f.debug_struct("Rng").finish_non_exhaustive()
    }
}

impl Rng {
    pub(crate) fn from_seed(seed: [u8; 32]) -> Rng {
        let mut key = [0u32; 8];
        for (word, bytes) in key.iter_mut().zip(seed.chunks_exact(4)) {
            *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        Rng {
            key,
            counter: 0,
            block: [0; 16],
            used: 16,
        }
    }

    pub(crate) fn next_u32(&mut self) -> u32 {
        if self.used == 16 {
            self.block = chacha20_block(&self.key, self.counter, [0; 3]);
            self.counter = self.counter.wrapping_add(1);
            self.used = 0;
        }
        let word = self.block[self.used];
        self.used += 1;
        word
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        (u64::from(self.next_u32()) << 32) | u64::from(self.next_u32())
    }

    /// Uniform in `0..=bound` (the modulo bias is below 2^-40 for the waits
    /// this draws, which are at most hours in milliseconds).
    pub(crate) fn up_to(&mut self, bound: u64) -> u64 {
        match bound.checked_add(1) {
            Some(n) => self.next_u64() % n,
            None => self.next_u64(),
        }
    }

    /// A random (version 4) UUID: 122 random bits, as 36 characters.
    pub(crate) fn uuid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        for chunk in bytes.chunks_exact_mut(4) {
            chunk.copy_from_slice(&self.next_u32().to_le_bytes());
        }
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(36);
        for (i, byte) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out.push('-');
            }
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        out
    }
}

/// The ChaCha20 block function with a 64-bit block counter (words 12 and
/// 13) and the rest of the nonce in words 13..16 as RFC 8439 lays them out
/// when the counter is 32 bits: `nonce[0]` shares word 13 with the high
/// half of the counter, which stays 0 for the first 2^32 blocks.
///
/// Never inlined: its ten unrolled double rounds are large, and every draw
/// of the session would carry a copy.
#[inline(never)]
fn chacha20_block(key: &[u32; 8], counter: u64, nonce: [u32; 3]) -> [u32; 16] {
    let mut state = [0u32; 16];
    state[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
    state[4..12].copy_from_slice(key);
    state[12] = counter as u32;
    state[13] = nonce[0] ^ (counter >> 32) as u32;
    state[14] = nonce[1];
    state[15] = nonce[2];
    let mut x = state;
    for _ in 0..10 {
        quarter(&mut x, 0, 4, 8, 12);
        quarter(&mut x, 1, 5, 9, 13);
        quarter(&mut x, 2, 6, 10, 14);
        quarter(&mut x, 3, 7, 11, 15);
        quarter(&mut x, 0, 5, 10, 15);
        quarter(&mut x, 1, 6, 11, 12);
        quarter(&mut x, 2, 7, 8, 13);
        quarter(&mut x, 3, 4, 9, 14);
    }
    for (out, input) in x.iter_mut().zip(state) {
        *out = out.wrapping_add(input);
    }
    x
}

fn quarter(x: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    x[a] = x[a].wrapping_add(x[b]);
    x[d] = (x[d] ^ x[a]).rotate_left(16);
    x[c] = x[c].wrapping_add(x[d]);
    x[b] = (x[b] ^ x[c]).rotate_left(12);
    x[a] = x[a].wrapping_add(x[b]);
    x[d] = (x[d] ^ x[a]).rotate_left(8);
    x[c] = x[c].wrapping_add(x[d]);
    x[b] = (x[b] ^ x[c]).rotate_left(7);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8439 section 2.3.2: key 00..1f, block counter 1, nonce
    /// 00:00:00:09:00:00:00:4a:00:00:00:00.
    #[test]
    fn block_function_matches_the_rfc_test_vector() {
        let mut key = [0u32; 8];
        for (i, word) in key.iter_mut().enumerate() {
            let b = (i * 4) as u8;
            *word = u32::from_le_bytes([b, b + 1, b + 2, b + 3]);
        }
        let out = chacha20_block(&key, 1, [0x0900_0000, 0x4a00_0000, 0]);
        let want = [
            0xe4e7_f110,
            0x1559_3bd1,
            0x1fdd_0f50,
            0xc471_20a3,
            0xc7f4_d1c7,
            0x0368_c033,
            0x9aaa_2204,
            0x4e6c_d4c3,
            0x4664_82d2,
            0x09aa_9f07,
            0x05d7_c214,
            0xa202_8bd9,
            0xd19c_12b5,
            0xb94e_16de,
            0xe883_d0cb,
            0x4e3c_50a2,
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn uuids_are_version_4_and_differ() {
        let mut rng = Rng::from_seed([7; 32]);
        let a = rng.uuid();
        let b = rng.uuid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        assert!(matches!(a.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        // Another seed, another stream.
        assert_ne!(Rng::from_seed([8; 32]).uuid(), a);
    }

    #[test]
    fn draws_stay_within_their_bound() {
        let mut rng = Rng::from_seed([1; 32]);
        let draws: Vec<u64> = (0..1_000).map(|_| rng.up_to(9)).collect();
        assert!(draws.iter().all(|&d| d <= 9));
        assert!((0..=9).all(|v| draws.contains(&v)), "every value drawn");
        assert_eq!(rng.up_to(0), 0);
        let _ = rng.up_to(u64::MAX);
    }
}
