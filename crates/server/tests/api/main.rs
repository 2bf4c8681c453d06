#![allow(clippy::unwrap_used)]
//! Integration tests: the real server on port 0, a fresh database per test, HTTP as a client
//! speaks it. One test binary, one module per area.

mod support;

mod admin;
mod apps;
mod bearer;
mod browser;
mod device;
mod graphql_core;
mod hardening;
mod invites;
mod local_auth;
mod logout;
mod oauth;
mod oidc;
mod pages;
mod personal_tokens;
mod projects;
mod schema;
mod security;
mod specklepy;
mod standard;
mod token_exchange;
