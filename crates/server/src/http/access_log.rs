//! The request log (docs/ARCHITECTURE.md, "Logs"): method, route, status and latency. The
//! route is the matched pattern, such as `/authn/verify/{app_id}/{challenge}`: never a path's
//! values (a legacy challenge is a secret), nor the query string (codes, tokens), nor headers.
//!
//! Writing a line per request costs more than answering a cached bearer check, so by default
//! (`sampled`) one request in [`SAMPLE_EVERY`] is logged at info, and every failure (5xx, at
//! error) and every slow request (≥ [`SLOW`], at warn) always is; `full` logs every request,
//! `errors` only failures and slow requests. No span is made per request.

use std::sync::atomic::{AtomicU64, Ordering};
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

pub async fn log(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mode = state.access_log;
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let res = next.run(req).await;
    let took = started.elapsed();
    let status = res.status().as_u16();
    let route = route.as_ref().map_or("(no route)", MatchedPath::as_str);
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
