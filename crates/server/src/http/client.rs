//! Who is on the other end, and the per-address rate limits of `domain::limits`.
//!
//! The client address is the peer of the TCP connection, unless that peer is a trusted proxy
//! (`--trusted-proxies`): then it is the right-most address in `X-Forwarded-For` that is not itself
//! a trusted proxy (the left part of the header is whatever the client wrote, and cannot be
//! believed). Without the setting, `X-Forwarded-For` is ignored, so a client cannot pick its own
//! rate-limit bucket.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header::USER_AGENT;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use super::access_log::RouteSlot;
use crate::AppState;
use crate::domain::activity::Client;
use crate::domain::limits::Bucket;

/// The client's address, as the rate limits and the logs see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// The client address of a request from `peer` carrying `headers`.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|item| item.trim().parse::<IpAddr>())
        .collect::<Result<_, _>>()
        // A header that does not parse cannot be trusted: the peer is all we know.
        .unwrap_or_default();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

/// Which per-address bucket a route draws from, besides the overall one.
fn bucket(method: &Method, route: &str) -> Option<Bucket> {
    match (method.as_str(), route) {
        ("POST", "/auth/local/login" | "/authn/login") => Some(Bucket::SignIn),
        ("POST", "/auth/local/register" | "/authn/register") => Some(Bucket::Register),
        (
            "POST",
            "/auth/token" | "/auth/token/" | "/oauth/token" | "/oauth/device_authorization",
        )
        | (_, "/auth/accesscode") => Some(Bucket::Token),
        // Each look-up of a device's user code counts as a sign-in attempt: codes are short.
        (_, "/device") => Some(Bucket::SignIn),
        _ => None,
    }
}

/// Notes the client address and applies the per-address limits: the overall one on every route
/// but the health checks, and the route's own bucket. It runs inside the router, once the route is
/// known, and leaves the route for the access log outside it (`access_log::RouteSlot`).
pub async fn limit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    let address = client_address(peer, req.headers(), &state.trusted_proxies);
    let user_agent = req.headers().get(USER_AGENT).and_then(|v| v.to_str().ok());
    let client = Client::new(address, user_agent);
    req.extensions_mut().insert(client);
    req.extensions_mut().insert(ClientAddress(address));
    let matched = req.extensions().get::<MatchedPath>().cloned();
    if let (Some(matched), Some(slot)) = (&matched, req.extensions().get::<RouteSlot>()) {
        slot.fill(matched);
    }
    let route = matched.as_ref().map_or("", MatchedPath::as_str);
    if !matches!(route, "/readiness" | "/liveness") {
        let own = bucket(req.method(), route);
        let checked = state
            .core
            .check_rate(Bucket::Overall, address)
            .and_then(|()| own.map_or(Ok(()), |b| state.core.check_rate(b, address)));
        if let Err(e) = checked {
            tracing::info!(client = %address, route, "rate limited");
            if route.starts_with("/authn/") {
                return super::pages::rate_limited_page(&state, e);
            }
            return super::error::WebError::from(e).into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&["203.0.113.9, 198.51.100.7"]);
        assert_eq!(
            client_address(proxy, &h, &[]),
            proxy,
            "no trusted proxy: the peer"
        );
        assert_eq!(
            client_address("192.0.2.1".parse().unwrap(), &h, &trusted),
            "192.0.2.1".parse::<IpAddr>().unwrap(),
            "an untrusted peer's header is ignored"
        );
        assert_eq!(
            client_address(proxy, &h, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap(),
            "the right-most address the proxy saw"
        );
        let chained = headers(&["203.0.113.9", "198.51.100.7, 10.0.0.5"]);
        assert_eq!(
            client_address(proxy, &chained, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap(),
            "trusted hops are skipped"
        );
        assert_eq!(
            client_address(proxy, &headers(&["nonsense"]), &trusted),
            proxy
        );
        assert_eq!(client_address(proxy, &headers(&[]), &trusted), proxy);
    }

    #[test]
    fn routes_and_buckets() {
        assert_eq!(
            bucket(&Method::POST, "/auth/local/login"),
            Some(Bucket::SignIn)
        );
        assert_eq!(bucket(&Method::POST, "/authn/login"), Some(Bucket::SignIn));
        assert_eq!(bucket(&Method::GET, "/authn/login"), None);
        assert_eq!(
            bucket(&Method::POST, "/authn/register"),
            Some(Bucket::Register)
        );
        assert_eq!(bucket(&Method::POST, "/oauth/token"), Some(Bucket::Token));
        assert_eq!(
            bucket(&Method::GET, "/auth/accesscode"),
            Some(Bucket::Token)
        );
        assert_eq!(bucket(&Method::GET, "/device"), Some(Bucket::SignIn));
        assert_eq!(
            bucket(&Method::POST, "/oauth/device_authorization"),
            Some(Bucket::Token)
        );
        assert_eq!(bucket(&Method::POST, "/graphql"), None);
    }
}
