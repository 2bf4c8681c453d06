//! Form and JSON bodies of the REST endpoints: never panic, whatever the bytes and content type.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tessera_server::http::parse_fields;

fuzz_target!(|data: &[u8]| {
    let (kind, body) = match data.split_first() {
        Some((k, rest)) => (*k, rest),
        None => return,
    };
    let content_type = match kind % 4 {
        0 => "application/json",
        1 => "application/x-www-form-urlencoded",
        2 => "",
        _ => "text/plain",
    };
    if let Ok(fields) = parse_fields(content_type, body) {
        // Every value is text: a nested JSON value is refused, not flattened.
        assert!(fields.len() <= body.len() + 1);
    }
});
