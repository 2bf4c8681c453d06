//! The bearer-token middleware that runs on every route but the health checks. A token comes from
//! the `Authorization` header (`Bearer <token>`, scheme in any case, or the bare token) or else the
//! `authn` cookie. No token: the request is anonymous. A token that is not valid: HTTP 403
//! `{"error":"Your token is not valid."}`, whatever the route, as Speckle does.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::cookies::cookie;
use super::error::WebError;
use crate::AppState;
use crate::domain::activity::Client;
use crate::error::Error;

pub use tessera_core::Caller;

/// What the request presents, before checking it.
enum Presented<'a> {
    Nothing,
    Token(&'a str),
    Unreadable,
}

fn strip_bearer(value: &str) -> &str {
    match value.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => value[7..].trim(),
        _ => value,
    }
}

fn presented(headers: &HeaderMap) -> Presented<'_> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let Ok(value) = value.to_str() else {
            return Presented::Unreadable;
        };
        let value = value.trim();
        if !value.is_empty() {
            return Presented::Token(strip_bearer(value));
        }
    }
    match cookie(headers, "authn") {
        Some(value) if !value.is_empty() => Presented::Token(strip_bearer(value)),
        _ => Presented::Nothing,
    }
}

pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let caller = match presented(req.headers()) {
        Presented::Nothing => Caller(None),
        Presented::Unreadable => return WebError::from(Error::InvalidToken).into_response(),
        Presented::Token(token) => {
            let client = req
                .extensions()
                .get::<Client>()
                .cloned()
                .unwrap_or_default();
            match state.core.authenticate(token, &client).await {
                Ok(auth) => Caller(Some(auth)),
                Err(e) => return WebError::from(e).into_response(),
            }
        }
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(headers: &[(&'static str, &'static str)]) -> Option<String> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, v.parse().unwrap());
        }
        match presented(&map) {
            Presented::Nothing => None,
            Presented::Token(t) => Some(t.to_owned()),
            Presented::Unreadable => Some("<unreadable>".into()),
        }
    }

    #[test]
    fn token_sources() {
        assert_eq!(check(&[]), None);
        assert_eq!(check(&[("authorization", "")]), None);
        assert_eq!(
            check(&[("authorization", "Bearer abc")]).as_deref(),
            Some("abc")
        );
        assert_eq!(
            check(&[("authorization", "bEaReR abc")]).as_deref(),
            Some("abc")
        );
        assert_eq!(check(&[("authorization", "abc")]).as_deref(), Some("abc"));
        assert_eq!(
            check(&[("authorization", "Bearer ")]).as_deref(),
            Some("Bearer")
        );
        assert_eq!(
            check(&[("authorization", "Basic abc")]).as_deref(),
            Some("Basic abc")
        );
        assert_eq!(
            check(&[("cookie", "a=1; authn=tok; b=2")]).as_deref(),
            Some("tok")
        );
        assert_eq!(check(&[("cookie", "authn=")]), None);
        assert_eq!(
            check(&[("authorization", "Bearer h"), ("cookie", "authn=c")]).as_deref(),
            Some("h"),
            "the header wins over the cookie"
        );
    }
}
