//! Redirect URLs: checking never panics; an accepted URL has no credentials or fragment, uses an
//! allowed scheme, and appending the access code keeps its origin and puts the code last.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tessera_server::domain::apps::{check_redirect_url, redirect_with};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(url) = check_redirect_url(text) else {
        return;
    };
    assert!(url.username().is_empty() && url.password().is_none());
    assert!(url.fragment().is_none());
    assert!(!matches!(url.scheme(), "javascript" | "data" | "file" | "view-source" | "jar" | "chrome"));
    if url.scheme() == "http" {
        let host = url.host_str().unwrap_or_default();
        assert!(
            host == "localhost" || host.starts_with("127.") || host == "[::1]",
            "plain http only to this machine: {host}"
        );
    }
    let target = redirect_with(url.as_str(), "access_code", "abc").expect("an accepted URL takes a code");
    let parsed = url::Url::parse(&target).expect("still a URL");
    assert_eq!(parsed.scheme(), url.scheme());
    assert_eq!(parsed.host_str(), url.host_str());
    assert_eq!(parsed.port(), url.port());
    assert!(target.ends_with("access_code=abc"));
});
