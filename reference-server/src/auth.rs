//! HMAC-SHA256 tokens naming the streams a client may read and write.
//!
//! A token is `base64url(claims) "." base64url(hmac_sha256(secret, base64url(claims)))`
//! (written without padding; padded parts are accepted too), where the
//! claims are JSON:
//! `{"read": ["room:*"], "write": ["room:42"], "exp": 1767225600}`.
//! A pattern is an exact stream name, a prefix ending in `*`, or `*` alone;
//! `exp` (optional) is a Unix time in seconds after which the token is refused.
//!
//! ```
//! use seqsync_server::auth::{Claims, sign, verify};
//!
//! let claims = Claims { read: vec!["room:*".into()], write: vec!["room:1".into()], exp: None };
//! let token = sign(b"secret", &claims);
//! let back = verify(b"secret", &token, 0)?;
//! assert!(back.can_read("room:7"));
//! assert!(!back.can_write("room:7"));
//! assert!(verify(b"other", &token, 0).is_err());
//! # Ok::<(), seqsync_server::auth::TokenError>(())
//! ```

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Base64url that reads both the unpadded form tokens are written in and
/// the padded one (section 10.1).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 8192;

/// What a token allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Patterns of streams the holder may subscribe to, read history and
    /// snapshots of.
    #[serde(default)]
    pub read: Vec<String>,
    /// Patterns of streams the holder may publish to.
    #[serde(default)]
    pub write: Vec<String>,
    /// Unix time in seconds after which the token is refused. An integer
    /// beyond `u64` is read as `u64::MAX` (never, in practice).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "expiry"
    )]
    pub exp: Option<u64>,
}

/// `exp`: `null`, or an integer; one too large for `u64` (which JSON
/// parsers hand over as a float) saturates. Fractions are refused.
fn expiry<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer number of seconds, or null")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Option<u64>, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Option<u64>, E> {
            // Before 1970: long past.
            Ok(Some(u64::try_from(v).unwrap_or(0)))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Option<u64>, E> {
            // Integers that fit come as u64 or i64; a float here is an integer
            // beyond them only when it is whole and at least 2^64.
            if v.fract() == 0.0 && v >= 18_446_744_073_709_551_616.0 {
                Ok(Some(u64::MAX))
            } else {
                Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
            }
        }
    }
    deserializer.deserialize_any(Visitor)
}

impl Claims {
    /// Claims allowing everything (used when the server has no secret).
    pub fn allow_all() -> Claims {
        Claims {
            read: vec!["*".into()],
            write: vec!["*".into()],
            exp: None,
        }
    }

    /// Whether `stream` may be read.
    pub fn can_read(&self, stream: &str) -> bool {
        self.read.iter().any(|p| matches(p, stream))
    }

    /// Whether `stream` may be written.
    pub fn can_write(&self, stream: &str) -> bool {
        self.write.iter().any(|p| matches(p, stream))
    }
}

fn matches(pattern: &str, stream: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => stream.starts_with(prefix),
        None => pattern == stream,
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not two base64url parts, too long, or claims that are not a JSON
    /// object of the claims' shape.
    #[error("malformed token")]
    Malformed,
    /// The signature does not match the secret.
    #[error("bad token signature")]
    BadSignature,
    /// `exp` is in the past.
    #[error("token expired at {exp}")]
    Expired {
        /// The token's expiry, Unix seconds.
        exp: u64,
    },
}

/// Signs `claims` with `secret`.
pub fn sign(secret: &[u8], claims: &Claims) -> String {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let tag = mac(secret, body.as_bytes());
    format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Checks `token` against `secret` and the current Unix time `now_secs`.
///
/// # Errors
/// [`TokenError`] saying why the token is refused.
pub fn verify(secret: &[u8], token: &str, now_secs: u64) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (body, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let tag = LENIENT.decode(tag).map_err(|_| TokenError::Malformed)?;
    let Ok(mut check) = HmacSha256::new_from_slice(secret) else {
        return Err(TokenError::Malformed);
    };
    check.update(body.as_bytes());
    check
        .verify_slice(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    let json = LENIENT.decode(body).map_err(|_| TokenError::Malformed)?;
    // The derived deserializer also takes a struct written as an array
    // (`[]` would be claims allowing nothing): only an object is claims.
    if json.trim_ascii_start().first() != Some(&b'{') {
        return Err(TokenError::Malformed);
    }
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if let Some(exp) = claims.exp {
        if now_secs >= exp {
            return Err(TokenError::Expired { exp });
        }
    }
    Ok(claims)
}

fn mac(secret: &[u8], body: &[u8]) -> Vec<u8> {
    match HmacSha256::new_from_slice(secret) {
        Ok(mut m) => {
            m.update(body);
            m.finalize().into_bytes().to_vec()
        }
        // HMAC accepts keys of any length; this arm is unreachable in practice.
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_exact_prefix_and_all() {
        assert!(matches("room:1", "room:1"));
        assert!(!matches("room:1", "room:12"));
        assert!(matches("room:*", "room:12"));
        assert!(!matches("room:*", "lobby"));
        assert!(matches("*", "anything"));
    }

    #[test]
    fn an_expiry_beyond_u64_never_comes_and_a_fraction_is_malformed() {
        let secret = b"k";
        let token = |claims: &str| {
            let body = URL_SAFE_NO_PAD.encode(claims);
            let tag = URL_SAFE_NO_PAD.encode(mac(secret, body.as_bytes()));
            format!("{body}.{tag}")
        };
        let far = verify(
            secret,
            &token(r#"{"read":["*"],"exp":1000000000000000000000000000000}"#),
            5,
        );
        assert_eq!(far.map(|c| c.exp), Ok(Some(u64::MAX)));
        let none = verify(secret, &token(r#"{"read":["*"],"exp":null}"#), 5);
        assert_eq!(none.map(|c| c.exp), Ok(None));
        assert_eq!(
            verify(secret, &token(r#"{"read":["*"],"exp":-3}"#), 5),
            Err(TokenError::Expired { exp: 0 })
        );
        assert_eq!(
            verify(secret, &token(r#"{"read":["*"],"exp":1893456000.5}"#), 5),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn signed_claims_that_are_not_an_object_are_malformed() {
        let secret = b"k";
        for claims in ["[]", " [[\"*\"],[\"*\"]]", "null", "7", "\"x\"", "true"] {
            let body = URL_SAFE_NO_PAD.encode(claims);
            let token = format!(
                "{body}.{}",
                URL_SAFE_NO_PAD.encode(mac(secret, body.as_bytes()))
            );
            assert_eq!(
                verify(secret, &token, 0),
                Err(TokenError::Malformed),
                "{claims}"
            );
        }
        let body = URL_SAFE_NO_PAD.encode(" {}");
        let token = format!(
            "{body}.{}",
            URL_SAFE_NO_PAD.encode(mac(secret, body.as_bytes()))
        );
        assert_eq!(verify(secret, &token, 0), Ok(Claims::default()));
    }

    #[test]
    fn tampered_and_expired_tokens_are_refused() {
        let claims = Claims {
            read: vec!["*".into()],
            write: vec![],
            exp: Some(100),
        };
        let token = sign(b"k", &claims);
        assert_eq!(verify(b"k", &token, 50), Ok(claims));
        assert_eq!(
            verify(b"k", &token, 100),
            Err(TokenError::Expired { exp: 100 })
        );
        let forged = format!("{}x", token);
        assert!(verify(b"k", &forged, 50).is_err());
        assert_eq!(verify(b"k", "nodot", 0), Err(TokenError::Malformed));
    }

    #[test]
    fn padded_parts_are_accepted() {
        use base64::engine::general_purpose::URL_SAFE as PADDED;
        let claims = Claims {
            read: vec!["r".into()],
            write: vec![],
            exp: None,
        };
        // 25 bytes of JSON: the padded payload ends in `==`.
        let body = PADDED.encode(serde_json::to_vec(&claims).unwrap_or_default());
        assert!(body.ends_with('='), "{body}");
        let token = format!("{body}.{}", PADDED.encode(mac(b"k", body.as_bytes())));
        assert_eq!(verify(b"k", &token, 0), Ok(claims));
    }
}
