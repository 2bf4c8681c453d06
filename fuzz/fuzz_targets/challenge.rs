//! Challenge and verifier parsing: never panics; an accepted S256 challenge has the RFC shape, an
//! accepted plain one stays within its limits, and a valid verifier always yields a valid challenge.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tessera_proto::{ChallengeMethod, pkce};
use tessera_server::domain::grants::{MAX_CHALLENGE_CHARS, parse_challenge};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (segment, method) = match text.split_once('\n') {
        Some((s, m)) => (s, Some(m)),
        None => (text, None),
    };
    if let Ok((challenge, method)) = parse_challenge(segment, method) {
        match method {
            ChallengeMethod::S256 => assert!(pkce::is_valid_s256_challenge(&challenge)),
            ChallengeMethod::Plain => {
                assert!(!challenge.is_empty());
                assert!(challenge.chars().count() <= MAX_CHALLENGE_CHARS);
                assert!(!challenge.contains(['&', '/', '?', '#']));
            }
        }
        assert_eq!(pkce::challenge_digest(&challenge).len(), 64);
    }
    if pkce::is_valid_verifier(text) {
        assert!(pkce::is_valid_s256_challenge(&pkce::s256_challenge(text)));
    }
});
