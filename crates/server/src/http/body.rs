//! Form-or-JSON bodies. Speckle's REST auth endpoints accept both JSON and URL-encoded forms; this
//! extractor reads either into one map of strings. JSON `null` becomes an empty string (the key is
//! present, the value is not), numbers and booleans their text; nested values are refused.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;

use super::error::WebError;
use crate::error::Error;

pub struct Fields(pub HashMap<String, String>);

fn bad(msg: impl Into<String>) -> Error {
    Error::Malformed(msg.into().into())
}

fn from_json(bytes: &[u8]) -> Result<HashMap<String, String>, Error> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("The request body is not valid JSON: {e}")))?;
    let serde_json::Value::Object(object) = value else {
        return Err(bad("The request body must be a JSON object."));
    };
    object
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s,
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => return Err(bad(format!("The field `{key}` must be a string."))),
            };
            Ok((key, text))
        })
        .collect()
}

fn from_form(bytes: &[u8]) -> Result<HashMap<String, String>, Error> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes)
        .map(|pairs| pairs.into_iter().collect())
        .map_err(|e| {
            bad(format!(
                "The request body is not a valid URL-encoded form: {e}"
            ))
        })
}

/// Reads a body as the REST endpoints accept it: JSON, a URL-encoded form, or (without a content
/// type) whichever it looks like. `content_type` is lowercased.
pub fn parse_fields(content_type: &str, bytes: &[u8]) -> Result<HashMap<String, String>, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(HashMap::new());
    }
    if content_type.starts_with("application/json") {
        from_json(bytes)
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        from_form(bytes)
    } else if content_type.is_empty() {
        if bytes.trim_ascii_start().starts_with(b"{") {
            from_json(bytes)
        } else {
            from_form(bytes)
        }
    } else {
        Err(bad(
            "Send the request body as JSON (application/json) or as a URL-encoded form \
             (application/x-www-form-urlencoded).",
        ))
    }
}

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.to_ascii_lowercase())
            .unwrap_or_default();
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                WebError::TooLarge(
                    format!(
                        "The request body is too large; this endpoint accepts at most {} KiB.",
                        super::MAX_BODY_BYTES / 1024
                    )
                    .into(),
                )
            } else {
                bad(format!("Could not read the request body: {e}")).into()
            }
        })?;
        Ok(parse_fields(&content_type, &bytes).map(Fields)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_become_text() {
        let f = from_json(br#"{"a":"x","b":null,"c":5,"d":true}"#).unwrap();
        assert_eq!(f["a"], "x");
        assert_eq!(f["b"], "");
        assert_eq!(f["c"], "5");
        assert_eq!(f["d"], "true");
        assert!(from_json(br#"{"a":{"b":1}}"#).is_err());
        assert!(from_json(b"[1]").is_err());
        assert!(from_json(b"{nope").is_err());
    }

    #[test]
    fn forms_decode() {
        let f = from_form(b"email=a%40b.co&name=A+B").unwrap();
        assert_eq!(f["email"], "a@b.co");
        assert_eq!(f["name"], "A B");
    }
}
