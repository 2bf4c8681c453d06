//! HTTP: routes and middleware. Handlers extract, call one domain function, and map the result.

mod accesscode;
mod auth;
mod body;
mod cookies;
mod error;
mod graphql;
mod health;
mod local;
mod oauth;
mod pages;
mod token;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use tower_http::cors::CorsLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use auth::Caller;
pub use cookies::CookiePolicy;

use crate::AppState;

/// Request bodies above this are refused (avatars travel as data URLs of up to 512 KiB).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let authenticated = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/auth/local/register", post(local::register))
        .route("/auth/local/login", post(local::login))
        .route("/auth/token", post(token::token))
        .route("/auth/token/", post(token::token))
        .route("/auth/logout", post(token::logout))
        .route("/auth/accesscode", get(accesscode::access_code))
        .layer(from_fn_with_state(state.clone(), auth::authenticate));
    let header = |name: &'static str, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    };
    Router::new()
        .route("/readiness", get(health::check))
        .route("/liveness", get(health::check))
        .route("/oauth/token", get(oauth::describe).post(oauth::token))
        .route("/", get(pages::home))
        .route("/assets/tessera.css", get(pages::stylesheet))
        .route(
            "/authn/login",
            get(pages::login_page).post(pages::login_submit),
        )
        .route(
            "/authn/register",
            get(pages::register_page).post(pages::register_submit),
        )
        .route(
            "/authn/verify/{app_id}/{challenge}",
            get(pages::consent_page).post(pages::consent_submit),
        )
        .route("/authn/logout", post(pages::logout))
        .route("/authn/apps/{app_id}/revoke", post(pages::revoke_app))
        .merge(authenticated)
        .fallback(|| async { (StatusCode::NOT_FOUND, "Not found") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Speckle answers every origin (no credentials): clients call it from anywhere.
        .layer(CorsLayer::permissive())
        .layer(header("content-security-policy", "frame-ancestors 'none'"))
        .layer(header("x-frame-options", "DENY"))
        .layer(header("x-content-type-options", "nosniff"))
        .layer(header("referrer-policy", "no-referrer"))
        // Logs method, route, status and latency. The route is the matched pattern, such as
        // `/authn/verify/{app_id}/{challenge}`: never a path's values (a legacy challenge is a
        // secret), nor the query string (codes, tokens), nor headers.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("(no route)", MatchedPath::as_str);
                    tracing::info_span!("request", method = %req.method(), route = %route)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}
