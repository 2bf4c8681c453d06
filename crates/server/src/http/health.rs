//! `GET /readiness`: 200 when the store answers, 503 when it does not (a load balancer sends no
//! traffic to a replica that cannot reach its database). `GET /liveness`: 200 whenever the
//! process answers HTTP at all, without touching the database, so an orchestrator does not
//! restart every replica when the database is down, and probes cost nothing.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;

/// How long readiness waits for the database: probes give up after a second or so, and a
/// database that takes longer is not ready either.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let failure = match tokio::time::timeout(READY_WITHIN, state.core.ping()).await {
        Ok(Ok(())) => return (StatusCode::OK, Json(json!({ "status": "ok" }))),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} s", READY_WITHIN.as_secs()),
    };
    tracing::error!(error = %failure, "readiness: store unreachable");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "unavailable", "message": "the database is unreachable" })),
    )
}

pub async fn alive() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}
