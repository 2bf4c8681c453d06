//! `POST /graphql` (JSON; a batch as a JSON array) and `GET /graphql?query=…` (queries only).

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{BatchRequest, Request, ServerError, Variables};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Caller;
use crate::AppState;
use crate::graphql::{ExecutedGraphql, MAX_BATCH, cost, finish, parse_failed, too_costly};

fn rejected(status: StatusCode, code: &str, message: &str) -> Response {
    let mut err = ServerError::new(message, None);
    err.extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    (
        status,
        Json(async_graphql::Response::from_errors(vec![err])),
    )
        .into_response()
}

/// Apollo's CSRF prevention, which Speckle enables: a POST that a plain HTML form could send
/// (no JSON content type, no preflight header) is refused.
fn csrf_safe(headers: &HeaderMap) -> bool {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase());
    let simple = match content_type
        .as_deref()
        .map(|t| t.split(';').next().unwrap_or("").trim())
    {
        None => true,
        Some(t) => matches!(
            t,
            "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data"
        ),
    };
    !simple
        || headers.contains_key("apollo-require-preflight")
        || headers.contains_key("x-apollo-operation-name")
}

async fn execute(
    state: &AppState,
    caller: &Caller,
    mut request: Request,
    mutations: bool,
) -> ExecutedGraphql {
    let operation_name = request.operation_name.clone();
    match state.documents.parse(&request.query) {
        Err(err) => return parse_failed(err),
        Ok(doc) => {
            request.set_parsed_query(ExecutableDocument::clone(&doc));
            if let Err(refusal) = cost::check(&doc, operation_name.as_deref()) {
                return too_costly(refusal);
            }
            if mutations {
                return run(state, caller, request).await;
            }
            let selected = match &operation_name {
                Some(name) => doc
                    .operations
                    .iter()
                    .find(|(n, _)| n.map(|n| n.as_str()) == Some(name.as_str()))
                    .map(|(_, op)| op),
                None => doc.operations.iter().next().map(|(_, op)| op),
            };
            if selected.is_some_and(|op| op.node.ty != OperationType::Query) {
                return ExecutedGraphql {
                    status: StatusCode::METHOD_NOT_ALLOWED,
                    response: async_graphql::Response::from_errors(vec![ServerError::new(
                        "Only queries can be sent with GET; send mutations with POST.",
                        None,
                    )]),
                };
            }
        }
    }
    run(state, caller, request).await
}

async fn run(state: &AppState, caller: &Caller, request: Request) -> ExecutedGraphql {
    let request = request.data(state.clone()).data(caller.clone());
    finish(state.schema.execute(request).await)
}

pub async fn post(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !csrf_safe(&headers) {
        return rejected(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "This operation has been blocked as a potential Cross-Site Request Forgery (CSRF). \
             Send it with `Content-Type: application/json`, or with an `apollo-require-preflight` \
             header.",
        );
    }
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(e) => {
            return rejected(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!(
                    "The body must be a JSON object {{\"query\", \"variables\", \"operationName\"}} \
                     or an array of them: {e}"
                ),
            );
        }
    };
    match batch {
        BatchRequest::Single(request) => {
            let done = execute(&state, &caller, request, true).await;
            respond(done)
        }
        BatchRequest::Batch(requests) if requests.len() > MAX_BATCH => rejected(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            &format!(
                "A batch can hold at most {MAX_BATCH} operations; this one has {}.",
                requests.len()
            ),
        ),
        BatchRequest::Batch(requests) => {
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                responses.push(execute(&state, &caller, request, true).await.response);
            }
            Json(responses).into_response()
        }
    }
}

pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(query) = params.get("query").filter(|q| !q.trim().is_empty()) else {
        return rejected(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "GET /graphql needs a `query` parameter; send other requests with POST.",
        );
    };
    let mut request = Request::new(query.clone());
    if let Some(name) = params.get("operationName").filter(|n| !n.is_empty()) {
        request = request.operation_name(name.clone());
    }
    if let Some(vars) = params.get("variables").filter(|v| !v.is_empty()) {
        match serde_json::from_str::<serde_json::Value>(vars) {
            Ok(json) => request = request.variables(Variables::from_json(json)),
            Err(e) => {
                return rejected(
                    StatusCode::BAD_REQUEST,
                    "BAD_REQUEST",
                    &format!("The `variables` parameter is not valid JSON: {e}"),
                );
            }
        }
    }
    let done = execute(&state, &caller, request, false).await;
    respond(done)
}

/// The HTTP response; a busy database asks the client to retry in a second.
fn respond(done: ExecutedGraphql) -> Response {
    let mut response = (done.status, Json(done.response)).into_response();
    if done.status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, 1.into());
    }
    response
}
