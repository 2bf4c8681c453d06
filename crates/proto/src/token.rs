//! The Speckle token codec. Personal access tokens, app tokens, refresh tokens and access codes
//! all travel as 42 lowercase hex characters: a 10-character id followed by a 32-character
//! secret (128 random bits). Only a SHA-256 digest of the secret is ever stored: with 128 random
//! bits a slow hash adds nothing, and the digest lets a check cost nanoseconds.
//!
//! Exactly 42 characters are accepted. Speckle ignores anything after the 42nd character; we
//! don't, so a token with junk appended is not a valid token.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const TOKEN_LEN: usize = 42;
pub const ID_LEN: usize = 10;
pub const SECRET_LEN: usize = TOKEN_LEN - ID_LEN;
/// How many trailing characters are kept for display (`lastChars`).
pub const LAST_CHARS_LEN: usize = 6;

/// Why a string is not a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormatError {
    WrongLength,
    NotLowercaseHex,
}

impl fmt::Display for TokenFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenFormatError::WrongLength => "a token is exactly 42 characters long",
            TokenFormatError::NotLowercaseHex => "a token is made of lowercase hex characters",
        })
    }
}

impl std::error::Error for TokenFormatError {}

/// A token in the clear. Its `Debug` and `Display` never show the secret, so it cannot leak into a
/// log line by accident; [`PlainToken::expose`] is the one explicit way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainToken(String);

impl PlainToken {
    /// Parses a token exactly as it must appear on the wire.
    pub fn parse(s: &str) -> Result<PlainToken, TokenFormatError> {
        if s.len() != TOKEN_LEN {
            return Err(TokenFormatError::WrongLength);
        }
        if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(TokenFormatError::NotLowercaseHex);
        }
        Ok(PlainToken(s.to_owned()))
    }

    /// Builds a token from 21 random bytes (the caller supplies the randomness: no I/O here).
    pub fn from_random_bytes(bytes: [u8; TOKEN_LEN / 2]) -> PlainToken {
        PlainToken(hex::encode(bytes))
    }

    /// The 10-character id: not secret, the key a token is stored under.
    pub fn id(&self) -> &str {
        &self.0[..ID_LEN]
    }

    /// The last characters, kept for display so users can recognise their tokens.
    pub fn last_chars(&self) -> &str {
        &self.0[TOKEN_LEN - LAST_CHARS_LEN..]
    }

    /// The SHA-256 digest of the secret part, the only thing stored.
    pub fn digest(&self) -> TokenDigest {
        TokenDigest(Sha256::digest(&self.0.as_bytes()[ID_LEN..]).into())
    }

    /// The SHA-256 digest of the whole value, id included: what an access code is stored under,
    /// so a code is only accepted whole (its id part is checked too).
    pub fn whole_digest(&self) -> TokenDigest {
        TokenDigest(Sha256::digest(self.0.as_bytes()).into())
    }

    /// The full token. Call this only to hand the token to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PlainToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlainToken({}…[redacted])", self.id())
    }
}

impl fmt::Display for PlainToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…[redacted]", self.id())
    }
}

/// The stored form of a token secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<TokenDigest> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(TokenDigest(out))
    }

    /// Compares in constant time.
    pub fn matches(&self, other: &TokenDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00e6c2213296946635d6398214027885abc7adfe08";

    #[test]
    fn parses_exactly_42_lowercase_hex() {
        let token = PlainToken::parse(GOOD).unwrap();
        assert_eq!(token.id(), "00e6c22132");
        assert_eq!(token.last_chars(), "adfe08");
        assert_eq!(token.expose(), GOOD);
        assert_eq!(
            PlainToken::parse(&GOOD[..41]),
            Err(TokenFormatError::WrongLength)
        );
        assert_eq!(
            PlainToken::parse(&format!("{GOOD}EXTRAJUNK")),
            Err(TokenFormatError::WrongLength)
        );
        assert_eq!(
            PlainToken::parse(&GOOD.to_uppercase()),
            Err(TokenFormatError::NotLowercaseHex)
        );
        assert_eq!(
            PlainToken::parse(&format!("{}g", &GOOD[..41])),
            Err(TokenFormatError::NotLowercaseHex)
        );
        // Multi-byte characters must not panic on slicing.
        assert!(PlainToken::parse(&"é".repeat(21)).is_err());
    }

    #[test]
    fn debug_and_display_redact_the_secret() {
        let token = PlainToken::parse(GOOD).unwrap();
        let shown = format!("{token:?} {token}");
        assert!(!shown.contains(&GOOD[ID_LEN..]), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn digest_covers_only_the_secret_and_round_trips() {
        let token = PlainToken::parse(GOOD).unwrap();
        let digest = token.digest();
        assert_eq!(TokenDigest::from_hex(&digest.to_hex()), Some(digest));
        assert!(digest.matches(&token.digest()));
        let other = PlainToken::parse("ffffffffff35d6398214027885abc7adfe08000000").unwrap();
        assert!(!digest.matches(&other.digest()));
        // Same secret under another id gives the same digest: the id is the lookup key, not part
        // of what is proven.
        let same_secret = PlainToken::parse(&format!("1111111111{}", &GOOD[ID_LEN..])).unwrap();
        assert!(digest.matches(&same_secret.digest()));
        assert_eq!(TokenDigest::from_hex("zz"), None);
    }

    #[test]
    fn random_bytes_make_a_valid_token() {
        let token = PlainToken::from_random_bytes([0xab; 21]);
        assert_eq!(PlainToken::parse(token.expose()), Ok(token));
    }
}
