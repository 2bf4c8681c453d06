//! Helpers the binary's tests share: an HTTP client that follows no redirects, reading a redirect's
//! access code, exchanging it, and GraphQL calls.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The `access_code` parameter of a redirect's location.
pub fn access_code(location: &str) -> String {
    location
        .split("access_code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned()
}

/// Exchanges a web-app access code at `/auth/token`: `{"token","refreshToken"}`.
pub async fn exchange(url: &str, code: &str, challenge: &str) -> Value {
    client()
        .post(format!("{url}/auth/token"))
        .json(&json!({"appId": "spklwebapp", "appSecret": "spklwebapp", "accessCode": code, "challenge": challenge}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn try_gql(
    url: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> reqwest::Result<Value> {
    client()
        .post(format!("{url}/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await?
        .json()
        .await
}

pub async fn gql(url: &str, token: &str, query: &str, variables: Value) -> Value {
    try_gql(url, token, query, variables).await.unwrap()
}
