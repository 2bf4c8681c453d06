//! Settings → Server admin (`server:admin` only): the Server page (what `serverInfoUpdate`
//! changes) and the Users page (search, and server roles as `userRoleChange` changes them). The
//! core refuses anyone else; these pages only extract, call it once and render.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use tessera_proto::ServerRole;

use super::body::Fields;
use super::pages::{Session, Visit, as_signed_in, see_other};
use super::settings::{chrome, date, older_link};
use crate::AppState;
use crate::domain::admin::{ServerInfoInput, assignable_roles};
use crate::domain::auth::require_role;
use crate::domain::paging;
use crate::error::Error;
use crate::pages::{ServerPage, UserItem, UsersPage, render};
use tessera_core::error::Result;

/// Users per page of the list.
const USERS_PAGE: i64 = 50;

async fn server_page(
    state: &AppState,
    visit: &Visit,
    session: &Session,
    typed: Option<&HashMap<String, String>>,
    saved: bool,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response> {
    // Only an administrator sees the form (the core also refuses anyone else's changes).
    require_role(Some(&session.auth), ServerRole::Admin)?;
    let info = state.core.server_info().await;
    let field = |key: &str, stored: &Option<String>| match typed {
        Some(fields) => fields.get(key).cloned().unwrap_or_default(),
        None => stored.clone().unwrap_or_default(),
    };
    let (chrome, cookies) = chrome(state, &visit.headers, session, "server")?;
    let page = ServerPage {
        server_name: &info.name,
        chrome,
        name: field("name", &Some(info.name.clone())),
        company: field("company", &info.company),
        description: field("description", &info.description),
        admin_contact: field("admin_contact", &info.admin_contact),
        terms_of_service: field("terms_of_service", &info.terms_of_service),
        saved,
        error,
    };
    Ok(render(&page, status, &cookies, None))
}

/// `GET /settings/server`.
pub async fn server(
    State(state): State<AppState>,
    visit: Visit,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    as_signed_in(&state, &visit, None, "/settings/server", async |session| {
        let saved = query.contains_key("saved");
        server_page(&state, &visit, &session, None, saved, None, StatusCode::OK).await
    })
    .await
}

/// `POST /settings/server`.
pub async fn update_server(
    State(state): State<AppState>,
    visit: Visit,
    Fields(fields): Fields,
) -> Response {
    as_signed_in(
        &state,
        &visit,
        Some(&fields),
        "/settings/server",
        async |session| {
            let input = ServerInfoInput {
                name: fields.get("name").cloned().unwrap_or_default(),
                company: fields.get("company").cloned(),
                description: fields.get("description").cloned(),
                admin_contact: fields.get("admin_contact").cloned(),
                terms_of_service: fields.get("terms_of_service").cloned(),
            };
            match state.core.update_server_info(&session.auth, input).await {
                Ok(()) => Ok(see_other("/settings/server?saved", &[])),
                Err(e @ Error::UserInput(_)) => {
                    let (error, status) = (Some(e.public_message()), StatusCode::BAD_REQUEST);
                    server_page(
                        &state,
                        &visit,
                        &session,
                        Some(&fields),
                        false,
                        error,
                        status,
                    )
                    .await
                }
                Err(e) => Err(e),
            }
        },
    )
    .await
}

async fn users_page(
    state: &AppState,
    visit: &Visit,
    session: &Session,
    query: &HashMap<String, String>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response> {
    let text = query.get("query").cloned().unwrap_or_default();
    let request = paging::request(USERS_PAGE, query.get("cursor").map(String::as_str))?;
    let page = state
        .core
        .admin_users(&session.auth, Some(&text), &request)
        .await?;
    let next = older_link("/settings/users", ("query", &text), page.next.as_ref());
    let users = page
        .items
        .into_iter()
        .map(|u| UserItem {
            is_self: u.id == session.user.id,
            id: u.id.to_string(),
            joined: date(u.created_at),
            role: u.role.name(),
            role_title: u.role.title(),
            name: u.name,
            email: u.email,
        })
        .collect();
    let info = state.core.server_info().await;
    let (chrome, cookies) = chrome(state, &visit.headers, session, "users")?;
    let page = UsersPage {
        server_name: &info.name,
        chrome,
        users,
        roles: assignable_roles().map(|r| (r.name(), r.title())).collect(),
        query: text,
        total: page.total,
        next,
        error,
    };
    Ok(render(&page, status, &cookies, None))
}

/// `GET /settings/users[?query=…&cursor=…]`.
pub async fn users(
    State(state): State<AppState>,
    visit: Visit,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    as_signed_in(&state, &visit, None, "/settings/users", async |session| {
        users_page(&state, &visit, &session, &query, None, StatusCode::OK).await
    })
    .await
}

/// `POST /settings/users/{id}/role`.
pub async fn change_role(
    State(state): State<AppState>,
    visit: Visit,
    Path(id): Path<String>,
    Fields(fields): Fields,
) -> Response {
    as_signed_in(
        &state,
        &visit,
        Some(&fields),
        "/settings/users",
        async |session| {
            let role = fields.get("role").map(String::as_str).unwrap_or_default();
            match state
                .core
                .change_server_role(&session.auth, &id, role)
                .await
            {
                Ok(_) => Ok(see_other("/settings/users", &[])),
                Err(e @ Error::UserInput(_)) => {
                    let (error, status) = (Some(e.public_message()), StatusCode::BAD_REQUEST);
                    users_page(&state, &visit, &session, &HashMap::new(), error, status).await
                }
                Err(e) => Err(e),
            }
        },
    )
    .await
}
