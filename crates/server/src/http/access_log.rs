//! The request log (docs/ARCHITECTURE.md, "Logs"): method, route, status and latency. The
//! route is the matched pattern, such as `/authn/verify/{app_id}/{challenge}`: never a path's
//! values (a legacy challenge is a secret), nor the query string (codes, tokens), nor headers.
//!
//! Writing a line per request costs more than answering a cached bearer check, so by default
//! (`sampled`) one request in [`SAMPLE_EVERY`] is logged at info, and every failure (5xx, at
//! error) and every slow request (≥ [`SLOW`], at warn) always is; `full` logs every request,
//! `errors` only failures and slow requests. No span is made per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;
use crate::config::AccessLog;

/// In `sampled` mode, one request in this many is logged.
pub const SAMPLE_EVERY: u64 = 100;
/// A request at least this slow is always logged.
pub const SLOW: Duration = Duration::from_secs(1);

static SEEN: AtomicU64 = AtomicU64::new(0);

/// Where the route the router matched is left for the log, which runs around the router (so it
/// also times and logs what the layers outside it answer, a timeout's 408 among them) and cannot
/// see the match itself. `client::limit`, inside the router, fills it in.
#[derive(Clone, Default)]
pub struct RouteSlot(Arc<OnceLock<MatchedPath>>);

impl RouteSlot {
    pub fn fill(&self, route: &MatchedPath) {
        let _ = self.0.set(route.clone());
    }
}

pub async fn log(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let mode = state.access_log;
    let started = Instant::now();
    let method = req.method().clone();
    let slot = RouteSlot::default();
    req.extensions_mut().insert(slot.clone());
    let res = next.run(req).await;
    let took = started.elapsed();
    let status = res.status().as_u16();
    let route = slot.0.get().map_or("(no route)", MatchedPath::as_str);
    let ms = took.as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::error!(%method, %route, status, ms, "request failed");
    } else if took >= SLOW {
        tracing::warn!(%method, %route, status, ms, "slow request");
    } else if match mode {
        AccessLog::Full => true,
        AccessLog::Sampled => SEEN
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SAMPLE_EVERY),
        AccessLog::Errors => false,
    } {
        tracing::info!(%method, %route, status, ms, "request");
    }
    res
}
