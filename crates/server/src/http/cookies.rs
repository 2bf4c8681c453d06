//! Cookies: reading them, and the attributes Tessera's own cookies are set with.
//!
//! Browser cookies are `__Host-` prefixed, `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`, with no
//! `Domain`. Browsers only accept `Secure` cookies over HTTPS or from a loopback host, so when the
//! public URL is plain HTTP on another host (a test LAN, say), the cookies drop the prefix and
//! `Secure` and the server says so at start-up.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use url::{Host, Url};

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    secure: bool,
}

impl CookiePolicy {
    pub fn for_public_url(public_url: &str) -> CookiePolicy {
        let secure = Url::parse(public_url).is_ok_and(|u| {
            u.scheme() == "https"
                || match u.host() {
                    Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                    Some(Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(Host::Ipv6(ip)) => ip.is_loopback(),
                    None => false,
                }
        });
        if !secure {
            tracing::warn!(
                "the public URL is plain HTTP on a non-loopback host: sign-in cookies cannot be \
                 Secure; serve Tessera over HTTPS"
            );
        }
        CookiePolicy { secure }
    }

    pub fn session(&self) -> &'static str {
        if self.secure {
            "__Host-tessera-session"
        } else {
            "tessera-session"
        }
    }

    pub fn csrf(&self) -> &'static str {
        if self.secure {
            "__Host-tessera-csrf"
        } else {
            "tessera-csrf"
        }
    }

    /// A token just created on the settings pages, carried across the redirect that follows the
    /// form (so a reload cannot create another) and shown once; it lives two minutes at most.
    pub fn new_token(&self) -> &'static str {
        if self.secure {
            "__Host-tessera-new-token"
        } else {
            "tessera-new-token"
        }
    }

    /// A `Set-Cookie` value; `max_age` in seconds, or a browser-session cookie.
    pub fn set(&self, name: &str, value: &str, max_age: Option<i64>) -> String {
        let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if self.secure {
            cookie.push_str("; Secure");
        }
        if let Some(age) = max_age {
            cookie.push_str(&format!("; Max-Age={age}"));
        }
        cookie
    }

    pub fn clear(&self, name: &str) -> String {
        self.set(name, "", Some(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cookies() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, "a=1; authn=tok".parse().unwrap());
        headers.append(COOKIE, "b=2".parse().unwrap());
        assert_eq!(cookie(&headers, "authn"), Some("tok"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "authnx"), None);
    }

    #[test]
    fn secure_where_browsers_allow_it() {
        for url in [
            "https://auth.example.com",
            "http://localhost:3000",
            "http://127.0.0.1:3000",
            "http://[::1]:3000",
        ] {
            let p = CookiePolicy::for_public_url(url);
            assert_eq!(p.session(), "__Host-tessera-session", "{url}");
            assert!(p.set("x", "y", None).contains("; Secure"));
        }
        let lan = CookiePolicy::for_public_url("http://speckle.lan:3000");
        assert_eq!(lan.session(), "tessera-session");
        assert!(!lan.set("x", "y", None).contains("Secure"));
        let c = CookiePolicy::for_public_url("https://a.example").set("n", "v", Some(60));
        assert_eq!(c, "n=v; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=60");
    }
}
