//! PKCE (RFC 7636): code verifiers, the S256 transformation, and the challenge methods.
//!
//! Speckle's legacy flow calls its secret "challenge" and compares it as a plain string; the flow
//! of Speckle's current docs uses real S256. Both are a [`ChallengeMethod`].

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// How an access code's challenge is checked at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeMethod {
    /// Speckle's legacy flow: the client presents the challenge itself (`POST /auth/token`).
    Plain,
    /// RFC 7636 S256: the client presents a verifier whose SHA-256 is the challenge
    /// (`POST /oauth/token`).
    S256,
}

impl ChallengeMethod {
    /// The RFC 7636 name (`plain`, `S256`), which is also how it is stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeMethod::Plain => "plain",
            ChallengeMethod::S256 => "S256",
        }
    }

    /// Parses an RFC 7636 `code_challenge_method` value (case-sensitive, as the RFC has it).
    pub fn parse(s: &str) -> Option<ChallengeMethod> {
        match s {
            "plain" => Some(ChallengeMethod::Plain),
            "S256" => Some(ChallengeMethod::S256),
            _ => None,
        }
    }
}

impl fmt::Display for ChallengeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Z] [a-z] [0-9] - . _ ~`.
pub fn is_valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len()) && verifier.bytes().all(is_unreserved)
}

/// An S256 challenge is BASE64URL(SHA256(verifier)) without padding: exactly 43 characters.
pub fn is_valid_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 §4.2: `BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))`.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// What is stored of a challenge: the hex SHA-256 of its text. A legacy plain challenge is a
/// secret the client presents again, so it is never kept in the clear; an S256 challenge is stored
/// the same way so one comparison serves both.
pub fn challenge_digest(challenge: &str) -> String {
    hex::encode(Sha256::digest(challenge.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(is_valid_verifier(verifier));
        let challenge = s256_challenge(verifier);
        assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(is_valid_s256_challenge(&challenge));
    }

    #[test]
    fn verifier_rules() {
        assert!(!is_valid_verifier(&"a".repeat(42)), "too short");
        assert!(is_valid_verifier(&"a".repeat(43)));
        assert!(is_valid_verifier(&"a".repeat(128)));
        assert!(!is_valid_verifier(&"a".repeat(129)), "too long");
        assert!(
            !is_valid_verifier(&format!("{}+", "a".repeat(43))),
            "+ is not unreserved"
        );
        assert!(!is_valid_verifier(&format!("{} ", "a".repeat(43))));
        assert!(is_valid_verifier(&format!("{}-._~", "a".repeat(43))));
    }

    #[test]
    fn methods() {
        assert_eq!(ChallengeMethod::parse("S256"), Some(ChallengeMethod::S256));
        assert_eq!(
            ChallengeMethod::parse("plain"),
            Some(ChallengeMethod::Plain)
        );
        assert_eq!(ChallengeMethod::parse("s256"), None);
        assert!(!is_valid_s256_challenge("short"));
        assert!(!is_valid_s256_challenge(&"+".repeat(43)));
    }
}
