#![allow(clippy::unwrap_used)]
//! Integration tests: the real server on port 0, a fresh database per test, HTTP as a client
//! speaks it. One test binary, one module per area.

mod support;

mod bearer;
mod graphql_core;
mod local_auth;
mod logout;
mod personal_tokens;
mod schema;
mod specklepy;
mod token_exchange;
