//! The one place errors become GraphQL errors. Domain errors carry their Speckle code
//! (`extensions.code`), HTTP-like `statusCode` and, for a missing scope, `scope`. Errors raised by
//! the GraphQL engine itself are classified as Apollo does: a document that does not validate is
//! `GRAPHQL_VALIDATION_FAILED`, bad input values `BAD_USER_INPUT`, and such requests answer HTTP
//! 400; everything else answers 200 with the errors in the body.

use async_graphql::{Response, ServerError};
use axum::http::StatusCode;

use crate::error::{self as wire, Error};

/// A finished response and the HTTP status to send it with.
pub struct ExecutedGraphql {
    pub status: StatusCode,
    pub response: Response,
}

fn is_input_error(message: &str) -> bool {
    message.starts_with("Failed to parse")
        || message.starts_with("Invalid value for argument")
        || message.starts_with("Variable")
        || message.contains("is not a valid")
}

/// What the errors of a response say about the request as a whole.
#[derive(Default)]
struct Verdict {
    /// The request itself was refused (it did not validate): HTTP 400.
    rejected: bool,
    /// The database was busy: HTTP 503, worth retrying.
    busy: bool,
}

/// Fills in Speckle's extensions on every error and hides internal details.
fn annotate(err: &mut ServerError, verdict: &mut Verdict) {
    let mut rejected_request = false;
    let mut public_message = None;
    let (code, status, scope) = match err.source::<Error>() {
        Some(e) => {
            if e.is_internal() {
                tracing::error!(error = %e, "GraphQL resolver failed");
                public_message = Some(e.public_message());
            }
            verdict.busy |= e.is_busy();
            let scope = match e {
                Error::MissingScope(s) => Some(s.name()),
                _ => None,
            };
            (wire::code(e), wire::status(e).as_u16(), scope)
        }
        None if is_input_error(&err.message) => {
            rejected_request = err.path.is_empty();
            ("BAD_USER_INPUT", 400, None)
        }
        // Every error a resolver raises carries an [`Error`]; one the engine raised while running a
        // field is the coercion of a value the caller sent (a variable of the wrong type, say).
        None if !err.path.is_empty() => {
            let field = err
                .path
                .iter()
                .map(|segment| match segment {
                    async_graphql::PathSegment::Field(name) => name.clone(),
                    async_graphql::PathSegment::Index(i) => i.to_string(),
                })
                .collect::<Vec<_>>()
                .join(".");
            public_message = Some(format!("Invalid input for `{field}`: {}", err.message));
            ("BAD_USER_INPUT", 400, None)
        }
        None => {
            rejected_request = true;
            ("GRAPHQL_VALIDATION_FAILED", 400, None)
        }
    };
    if let Some(message) = public_message {
        err.message = message;
    }
    let ext = err.extensions.get_or_insert_with(Default::default);
    ext.set("code", code);
    ext.set("statusCode", status);
    if let Some(scope) = scope {
        ext.set("scope", scope);
    }
    verdict.rejected |= rejected_request;
}

/// Annotates the errors of an executed request and picks the HTTP status.
pub fn finish(mut response: Response) -> ExecutedGraphql {
    let mut verdict = Verdict::default();
    for err in &mut response.errors {
        annotate(err, &mut verdict);
    }
    let status = if verdict.busy {
        StatusCode::SERVICE_UNAVAILABLE
    } else if verdict.rejected && response.data == async_graphql::Value::Null {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    ExecutedGraphql { status, response }
}

/// The answer to a document that does not parse: HTTP 400 `GRAPHQL_PARSE_FAILED`.
pub fn parse_failed(mut err: ServerError) -> ExecutedGraphql {
    // The parser explains itself on its last line (`= expected …`); keep that part.
    let detail = err
        .message
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("= "))
        .unwrap_or(err.message.trim())
        .to_owned();
    err.message = format!("Syntax Error: {detail}.");
    let ext = err.extensions.get_or_insert_with(Default::default);
    ext.set("code", "GRAPHQL_PARSE_FAILED");
    ExecutedGraphql {
        status: StatusCode::BAD_REQUEST,
        response: Response::from_errors(vec![err]),
    }
}

/// The answer to a document the cost guard refused: HTTP 400 `GRAPHQL_VALIDATION_FAILED`.
pub fn too_costly(refusal: super::cost::TooCostly) -> ExecutedGraphql {
    let mut err = ServerError::new(refusal.0, None);
    let ext = err.extensions.get_or_insert_with(Default::default);
    ext.set("code", "GRAPHQL_VALIDATION_FAILED");
    ext.set("statusCode", 400);
    ExecutedGraphql {
        status: StatusCode::BAD_REQUEST,
        response: Response::from_errors(vec![err]),
    }
}
