//! The token codec: parsing never panics, and what parses round-trips with consistent parts.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tessera_proto::PlainToken;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(token) = PlainToken::parse(text) {
        assert_eq!(token.expose(), text);
        assert_eq!(token.id(), &text[..10]);
        assert!(text.ends_with(token.last_chars()));
        assert!(token.digest().matches(&token.digest()));
        assert_eq!(PlainToken::parse(token.expose()), Ok(token.clone()));
        assert!(!format!("{token:?}{token}").contains(&text[10..]), "the secret never prints");
    }
});
