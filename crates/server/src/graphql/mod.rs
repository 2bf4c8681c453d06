//! The Speckle-compatible GraphQL schema: Speckle's field names, argument names and error codes,
//! for the subset Tessera serves. `schema.graphql` at the crate root is the committed snapshot; a
//! test fails when the served schema drifts from it.

mod activity;
mod admin;
mod apps;
pub mod cost;
mod documents;
mod error;
mod guards;
mod invites;
mod projects;
mod scalars;
mod server_info;
mod streams;
mod tokens;
mod users;

pub use documents::Documents;

use async_graphql::{Context, EmptySubscription, MergedObject, Schema};

pub use error::{ExecutedGraphql, finish, parse_failed, too_costly};

use crate::AppState;
use crate::domain::auth::Auth;
use tessera_core::{Caller, Tessera};

#[derive(MergedObject, Default)]
pub struct Query(
    server_info::ServerInfoQuery,
    users::UserQuery,
    apps::AppQuery,
    projects::ProjectQuery,
    streams::StreamQuery,
    invites::InviteQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    admin::AdminMutation,
    tokens::TokenMutation,
    users::UserMutation,
    apps::AppMutation,
    projects::ProjectMutation,
    streams::StreamMutation,
    invites::InviteMutation,
);

pub type TesseraSchema = Schema<Query, Mutation, EmptySubscription>;

/// Deeper or costlier queries than these are refused before they run.
pub const MAX_DEPTH: usize = 16;
pub const MAX_COMPLEXITY: usize = 2_000;
/// How deeply the parser may nest anything (selections, lists, objects) before it gives up.
pub const MAX_PARSER_DEPTH: usize = 32;
/// The most operations one batched `POST /graphql` may carry.
pub const MAX_BATCH: usize = 20;

pub fn schema() -> TesseraSchema {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_recursive_depth(MAX_PARSER_DEPTH)
        .limit_directives(cost::MAX_DIRECTIVES as usize)
        .finish()
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    schema().sdl()
}

pub(crate) fn state<'a>(ctx: &Context<'a>) -> &'a AppState {
    ctx.data_unchecked::<AppState>()
}

/// The core service, the one way to the rules and the data.
pub(crate) fn tessera<'a>(ctx: &Context<'a>) -> &'a Tessera {
    &state(ctx).core
}

pub(crate) fn caller<'a>(ctx: &Context<'a>) -> Option<&'a Auth> {
    ctx.data_opt::<Caller>().and_then(|c| c.0.as_ref())
}
