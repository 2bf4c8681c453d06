//! Email normalisation: never panics, is idempotent, and leaves no hidden characters.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tessera_server::domain::users::{has_hidden_characters, normalize_email};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(normal) = normalize_email(text) {
        assert_eq!(normalize_email(&normal).as_deref(), Some(normal.as_str()), "idempotent");
        assert!(!has_hidden_characters(&normal), "{normal:?}");
    }
});
