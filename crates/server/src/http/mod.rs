//! HTTP: routes and middleware. Handlers extract, call one domain function, and map the result.

mod access_log;
mod accesscode;
mod admin;
mod auth;
mod body;
mod client;
mod cookies;
mod device;
mod error;
mod graphql;
mod health;
mod local;
mod oauth;
mod pages;
pub mod serve;
mod settings;
mod token;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::cors::CorsLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

pub use auth::Caller;
pub use body::parse_fields;
pub use client::{ClientAddress, client_address};
pub use cookies::CookiePolicy;

use crate::AppState;

/// `Strict-Transport-Security` when the public URL is https: browsers then refuse plain HTTP.
async fn strict_transport(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(req).await;
    if state.https {
        response.headers_mut().insert(
            axum::http::header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

/// GraphQL bodies above this are refused with 413 (the largest legitimate input is an avatar, a
/// data URL of up to 512 KiB).
pub const MAX_GRAPHQL_BODY_BYTES: usize = 1024 * 1024;
/// Bodies of the REST endpoints and pages (sign-in forms, token requests) above this get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A request that takes longer than this is answered 408 (nothing legitimate comes close; a
/// password check waits for the hasher at most a few seconds).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub fn router(state: AppState) -> Router {
    let authenticated = Router::new()
        .route(
            "/graphql",
            get(graphql::get)
                .post(graphql::post)
                .layer(DefaultBodyLimit::max(MAX_GRAPHQL_BODY_BYTES)),
        )
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
    let routes = Router::new()
        .route("/readiness", get(health::ready))
        .route("/liveness", get(health::alive))
        .route("/oauth/token", get(oauth::describe).post(oauth::token))
        .route(
            "/oauth/authorize",
            get(pages::oauth_authorize_page).post(pages::oauth_authorize_submit),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::metadata),
        )
        .route("/.well-known/openid-configuration", get(oauth::metadata))
        .route("/oauth/jwks", get(oauth::jwks))
        .route(
            "/oauth/userinfo",
            get(oauth::userinfo).post(oauth::userinfo),
        )
        .route(
            "/oauth/device_authorization",
            post(oauth::device_authorization),
        )
        .route("/device", get(device::show).post(device::answer))
        .route("/oauth/revoke", post(oauth::revoke))
        .route("/oauth/introspect", post(oauth::introspect))
        .route("/", get(pages::home))
        .route("/assets/tessera.css", get(pages::stylesheet))
        .route("/assets/tessera.js", get(pages::script))
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
        .route(
            "/authn/invites/{project_id}/{answer}",
            post(pages::answer_invite),
        )
        .route("/settings", get(settings::settings))
        .route("/profile", get(settings::profile_redirect))
        .route(
            "/settings/profile",
            get(settings::profile).post(settings::update_profile),
        )
        .route("/settings/password", post(settings::change_password))
        .route(
            "/settings/tokens",
            get(settings::tokens).post(settings::create_token),
        )
        .route(
            "/settings/tokens/{id}/{action}",
            post(settings::token_action),
        )
        .route(
            "/settings/apps",
            get(settings::apps).post(settings::create_app),
        )
        .route(
            "/settings/apps/{id}",
            get(settings::app).post(settings::update_app),
        )
        .route("/settings/apps/{id}/{action}", post(settings::app_action))
        .route("/settings/authorized-apps", get(settings::authorized_apps))
        .route("/settings/sessions", get(settings::sessions))
        .route(
            "/settings/sessions/sign-out-others",
            post(settings::end_session),
        )
        .route(
            "/settings/sessions/{id}/sign-out",
            post(settings::end_session),
        )
        .route("/settings/activity", get(settings::activity))
        .route(
            "/settings/server",
            get(admin::server).post(admin::update_server),
        )
        .route("/settings/users", get(admin::users))
        .route("/settings/users/{id}/role", post(admin::change_role))
        .merge(authenticated)
        .fallback(|| async { (StatusCode::NOT_FOUND, "Not found") })
        // Inside the router: the rate limits need the matched route.
        .layer(from_fn_with_state(state.clone(), client::limit))
        .with_state(state.clone());
    // Around the router, once. A layer added with `Router::layer` wraps every route apart, and a
    // request then clones the boxed rest of the stack inside each layer it passes: with ten
    // layers, that was a fifth of the CPU a cached GraphQL query costs (docs/ARCHITECTURE.md,
    // "HTTP"). The first layer here is the outermost.
    let around = ServiceBuilder::new()
        // docs/ARCHITECTURE.md, "Logs".
        .layer(from_fn_with_state(state.clone(), access_log::log))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(from_fn_with_state(state, strict_transport))
        // Nothing Tessera answers may be cached unless it says so (the stylesheet does): tokens,
        // codes and secrets travel in bodies and in `Location` headers.
        .layer(header("cache-control", "no-store"))
        .layer(header("referrer-policy", "no-referrer"))
        .layer(header("x-content-type-options", "nosniff"))
        .layer(header("x-frame-options", "DENY"))
        .layer(header("content-security-policy", "frame-ancestors 'none'"))
        // Speckle answers every origin (no credentials): clients call it from anywhere.
        .layer(CorsLayer::permissive())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .service(routes);
    Router::new().fallback_service(around)
}
