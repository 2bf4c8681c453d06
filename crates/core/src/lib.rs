//! Tessera's core: the model, the rules, the [`Store`](store::Store) trait and the semantic
//! [`Error`](error::Error). The doors (HTTP, GraphQL, pages) live in the server crate and the SQL in
//! the store crate; neither kind of type appears here, and the compiler keeps it so (this crate
//! depends on no web, GraphQL, template or SQL crate). See docs/ARCHITECTURE.md.

pub mod clock;
pub mod domain;
pub mod error;
pub mod model;
pub mod service;
pub mod store;

pub use domain::auth::Auth;
pub use error::{Error, Missing, Result};
pub use service::Tessera;

/// Who is calling: `None` for an anonymous request.
#[derive(Debug, Clone)]
pub struct Caller(pub Option<Auth>);
