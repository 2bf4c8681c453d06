//! `GET /readiness` and `GET /liveness`: 200 when the store answers, 503 when it does not.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;

pub async fn check(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.core.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ok" }))),
        Err(e) => {
            tracing::error!(error = %e, "health check: store unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "message": "the database is unreachable" })),
            )
        }
    }
}
