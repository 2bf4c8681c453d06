//! Users: `activeUser`, `user(id)`, `otherUser(id)` and profile updates.

use async_graphql::{ComplexObject, Context, ID, InputObject, Object, Result, SimpleObject};
use tessera_proto::{Scope, ServerRole};

use super::apps::{ServerApp, ServerAppListItem, list_item, server_app};
use super::guards::{HasRole, HasScope, require_role, require_scope};
use super::projects::{
    Collection, PermissionCheckResult, Project, page_args, stream_role, version_page,
};
use super::scalars::{DateTime, JsonObject};
use super::streams::{Commit, Stream, user_streams};
use super::tokens::ApiToken;
use super::{caller, state, tessera};
use crate::domain::paging;
use crate::domain::projects::{self, Access};
use crate::domain::users::{self, ProfileInput, require_owner, require_self};
use crate::error::Error;
use crate::model::{ProjectFilter, UserRecord, VersionFilter};

/// What a user may do on the server.
#[derive(SimpleObject)]
pub struct RootPermissionChecks {
    can_create_personal_project: PermissionCheckResult,
}

#[derive(InputObject, Default)]
pub struct UserProjectsFilter {
    /// Part of the project name.
    search: Option<String>,
    /// Only projects where you hold one of these roles.
    only_with_roles: Option<Vec<String>>,
    /// Tessera has no workspaces: any workspace id gives no projects.
    workspace_id: Option<String>,
    /// Every Tessera project is personal.
    personal_only: Option<bool>,
    /// Access always comes from a role in Tessera.
    include_implicit_access: Option<bool>,
}

/// The public part of a profile, which anyone with `users:read` may see (`LimitedUser`), and
/// which a `User` shows too.
#[derive(SimpleObject)]
pub struct LimitedUser {
    id: ID,
    name: String,
    bio: Option<String>,
    company: Option<String>,
    avatar: Option<String>,
    verified: Option<bool>,
    /// The server role, e.g. `server:admin`.
    role: Option<String>,
}

impl LimitedUser {
    /// Someone whose account is gone, named only by their old id.
    pub fn former_user(id: &str) -> LimitedUser {
        LimitedUser {
            id: ID(id.to_owned()),
            name: "A former user".to_owned(),
            bio: None,
            company: None,
            avatar: None,
            verified: None,
            role: None,
        }
    }
}

impl From<&UserRecord> for LimitedUser {
    fn from(u: &UserRecord) -> Self {
        LimitedUser {
            id: ID(u.id.clone().into()),
            name: u.name.clone(),
            bio: u.bio.clone(),
            company: u.company.clone(),
            avatar: u.avatar.clone(),
            verified: Some(u.verified),
            role: Some(u.role.name().to_owned()),
        }
    }
}

/// A user as they (or an admin) see themselves.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct User {
    #[graphql(flatten)]
    profile: LimitedUser,
    #[graphql(skip)]
    record: UserRecord,
}

impl User {
    fn new(record: UserRecord) -> User {
        User {
            profile: LimitedUser::from(&record),
            record,
        }
    }
}

/// Tessera has no workspaces; the type exists because clients select it.
#[derive(SimpleObject)]
pub struct Workspace {
    id: ID,
    name: String,
    role: Option<String>,
    slug: String,
    logo: Option<String>,
    description: Option<String>,
}

#[ComplexObject]
impl User {
    async fn suuid(&self) -> Option<&str> {
        Some(&self.record.suuid)
    }

    /// Your own email needs `profile:email`; another user's needs `users:email` and the admin
    /// role. Otherwise it is silently `null`.
    async fn email(&self, ctx: &Context<'_>) -> Option<&str> {
        users::email_visible(caller(ctx), &self.record).then_some(self.record.email.as_str())
    }

    async fn profiles(&self) -> Option<JsonObject> {
        let text = self.record.profiles.as_deref()?;
        match serde_json::from_str(text).ok()? {
            serde_json::Value::Object(map) => Some(JsonObject(map)),
            _ => None,
        }
    }

    async fn created_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime>> {
        require_owner(caller(ctx), &self.record, "createdAt")?;
        Ok(Some(DateTime(self.record.created_at)))
    }

    /// The workspace the user works in: always `null`, as Tessera has no workspaces.
    async fn active_workspace(&self) -> Option<Workspace> {
        None
    }

    /// The user's personal access tokens (app tokens are not listed).
    #[graphql(guard = "HasScope(Scope::TokensRead).and(HasRole(ServerRole::User))")]
    async fn api_tokens(&self, ctx: &Context<'_>) -> Result<Vec<ApiToken>> {
        let auth = caller(ctx).ok_or(Error::Unauthenticated)?;
        if auth.user_id != self.record.id {
            return Err(Error::forbidden("You can only view your own tokens").into());
        }
        let tokens = tessera(ctx).personal_tokens(&self.record.id).await?;
        Ok(tokens.into_iter().map(ApiToken).collect())
    }

    /// The apps the user registered.
    #[graphql(guard = "HasScope(Scope::AppsRead).and(HasRole(ServerRole::Guest))")]
    async fn created_apps(&self, ctx: &Context<'_>) -> Result<Vec<ServerApp>> {
        require_owner(caller(ctx), &self.record, "createdApps")?;
        let mut apps = Vec::new();
        for app in tessera(ctx).apps_by_author(&self.record.id).await? {
            apps.push(server_app(tessera(ctx), app).await?);
        }
        Ok(apps)
    }

    /// The apps the user authorized (those holding a token for them).
    #[graphql(guard = "HasScope(Scope::AppsRead).and(HasRole(ServerRole::Guest))")]
    async fn authorized_apps(&self, ctx: &Context<'_>) -> Result<Vec<ServerAppListItem>> {
        require_owner(caller(ctx), &self.record, "authorizedApps")?;
        let mut apps = Vec::new();
        for app in tessera(ctx).authorized_apps(&self.record.id).await? {
            apps.push(list_item(tessera(ctx), &app).await?);
        }
        Ok(apps)
    }

    /// Your access log, newest first: sign-ins, tokens, apps, password changes and sign-outs,
    /// with where they came from; only of kinds in `kinds`, when given. Kept 90 days unless the
    /// server says otherwise; never holds a secret.
    #[graphql(guard = "HasScope(Scope::TokensRead).and(HasRole(ServerRole::Guest))")]
    async fn activity(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 25)] limit: i32,
        cursor: Option<String>,
        kinds: Option<Vec<super::activity::ActivityKind>>,
    ) -> Result<Collection<super::activity::Activity>> {
        let auth = require_self(caller(ctx), &self.record)?;
        let kinds = kinds
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect();
        let page = page_args(limit, cursor.as_deref())?;
        let page = tessera(ctx).activity(auth, kinds, &page).await?;
        Ok(Collection::from_page(page, Into::into))
    }

    /// Your invitations to projects.
    #[graphql(guard = "HasScope(Scope::StreamsRead).and(HasRole(ServerRole::Guest))")]
    async fn project_invites(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<super::invites::PendingStreamCollaborator>> {
        let auth = require_owner(caller(ctx), &self.record, "projectInvites")?;
        if auth.user_id != self.record.id {
            return Ok(Vec::new());
        }
        let pending = tessera(ctx).my_invites(auth).await?;
        Ok(super::invites::listed(&pending, Some(auth)))
    }

    /// The projects you collaborate on, most recently updated first.
    #[graphql(guard = "HasScope(Scope::StreamsRead)")]
    async fn projects(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 25)] limit: i32,
        cursor: Option<String>,
        filter: Option<UserProjectsFilter>,
    ) -> Result<Collection<Project>> {
        let auth = require_self(caller(ctx), &self.record)?;
        let f = filter.unwrap_or_default();
        let mut ids = auth.project_limits();
        if f.workspace_id.is_some() {
            ids = Some(Vec::new());
        }
        let roles = f
            .only_with_roles
            .map(|names| {
                names
                    .iter()
                    .map(|n| stream_role(n))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        paging::check_search(f.search.as_deref(), "filter.search")?;
        let filter = ProjectFilter {
            search: f.search,
            roles,
            ids,
        };
        let page = tessera(ctx)
            .user_projects(
                &self.record.id,
                &filter,
                &page_args(limit, cursor.as_deref())?,
            )
            .await?;
        Ok(Collection::from_page(page, |(project, role)| {
            Project::new(Access {
                project,
                role: Some(role),
            })
        }))
    }

    /// What you may do on this server.
    async fn permissions(&self, ctx: &Context<'_>) -> Result<RootPermissionChecks> {
        require_owner(caller(ctx), &self.record, "permissions")?;
        Ok(RootPermissionChecks {
            can_create_personal_project: projects::check_create(caller(ctx)).into(),
        })
    }

    /// The streams (projects) the user collaborates on.
    #[graphql(guard = "HasScope(Scope::StreamsRead)")]
    async fn streams(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 25)] limit: i32,
        cursor: Option<String>,
    ) -> Result<Collection<Stream>> {
        let auth = require_self(caller(ctx), &self.record)?;
        Ok(user_streams(
            tessera(ctx),
            &self.record.id,
            auth.project_limits(),
            None,
            limit,
            cursor,
        )
        .await?)
    }

    /// The commits (versions) the user authored.
    #[graphql(guard = "HasScope(Scope::StreamsRead)")]
    async fn commits(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 25)] limit: i32,
        cursor: Option<String>,
    ) -> Result<Collection<Commit>> {
        let auth = require_self(caller(ctx), &self.record)?;
        let filter = VersionFilter {
            author_id: Some(self.record.id.clone().into()),
            project_ids: auth.project_limits(),
            // Not in projects the user has since left, unless they are public.
            readable_by: Some(self.record.id.clone().into()),
            ..VersionFilter::default()
        };
        Ok(version_page(tessera(ctx), filter, limit, cursor, Commit::new).await?)
    }
}

async fn active_user(ctx: &Context<'_>) -> Result<Option<User>> {
    let Some(auth) = caller(ctx) else {
        return Ok(None);
    };
    require_role(Some(auth), ServerRole::Guest)?;
    Ok(tessera(ctx).user(&auth.user_id).await?.map(User::new))
}

#[derive(SimpleObject)]
pub struct UserSearchResultCollection {
    cursor: Option<String>,
    items: Vec<LimitedUser>,
}

async fn search(
    ctx: &Context<'_>,
    text: &str,
    min_chars: usize,
    limit: i32,
    cursor: Option<String>,
    email_only: bool,
    include_archived: bool,
) -> Result<UserSearchResultCollection, Error> {
    let query = users::search_query(text, min_chars, email_only, include_archived)?;
    let page = tessera(ctx)
        .search_users(&query, &page_args(limit, cursor.as_deref())?)
        .await?;
    Ok(UserSearchResultCollection {
        cursor: page.next.as_ref().map(paging::encode),
        items: page.items.iter().map(LimitedUser::from).collect(),
    })
}

#[derive(InputObject)]
pub struct UsersRetrievalInput {
    /// Part of a name, or a whole email.
    query: String,
    #[graphql(default = 10)]
    limit: i32,
    cursor: Option<String>,
    email_only: Option<bool>,
}

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// The user the token belongs to; `null` for an anonymous request.
    #[graphql(guard = "HasScope(Scope::ProfileRead)")]
    async fn active_user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        active_user(ctx).await
    }

    /// A user by id (needs `users:read`), or without an id the active user.
    #[graphql(
        guard = "HasScope(Scope::ProfileRead)",
        deprecation = "Use activeUser or otherUser"
    )]
    async fn user(&self, ctx: &Context<'_>, id: Option<String>) -> Result<Option<User>> {
        let Some(id) = id else {
            return active_user(ctx).await;
        };
        let auth = caller(ctx);
        require_scope(auth, Scope::UsersRead)?;
        require_role(auth, ServerRole::Guest)?;
        Ok(state(ctx).core.user(&id).await?.map(User::new))
    }

    /// Users whose name contains `query` (at least 3 characters) or whose email is `query`.
    #[graphql(
        guard = "HasScope(Scope::UsersRead).and(HasRole(ServerRole::Guest))",
        deprecation = "Use users"
    )]
    async fn user_search(
        &self,
        ctx: &Context<'_>,
        query: String,
        #[graphql(default = 25)] limit: i32,
        cursor: Option<String>,
        #[graphql(default = false)] archived: bool,
        #[graphql(default = false)] email_only: bool,
    ) -> Result<UserSearchResultCollection> {
        Ok(search(ctx, &query, 3, limit, cursor, email_only, archived).await?)
    }

    /// Users whose name contains the query or whose email is the query.
    #[graphql(guard = "HasScope(Scope::UsersRead).and(HasRole(ServerRole::Guest))")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        input: UsersRetrievalInput,
    ) -> Result<UserSearchResultCollection> {
        let email_only = input.email_only.unwrap_or(false);
        Ok(search(
            ctx,
            &input.query,
            1,
            input.limit,
            input.cursor,
            email_only,
            false,
        )
        .await?)
    }

    /// Another user's public profile; `null` for an unknown id.
    #[graphql(guard = "HasScope(Scope::UsersRead).and(HasRole(ServerRole::Guest))")]
    async fn other_user(&self, ctx: &Context<'_>, id: String) -> Result<Option<LimitedUser>> {
        Ok(tessera(ctx).user(&id).await?.map(|u| LimitedUser::from(&u)))
    }
}

#[derive(InputObject)]
pub struct UserUpdateInput {
    name: Option<String>,
    company: Option<String>,
    bio: Option<String>,
    avatar: Option<String>,
}

async fn update_active_user(ctx: &Context<'_>, input: UserUpdateInput) -> Result<User> {
    let auth = caller(ctx).ok_or(Error::Unauthenticated)?;
    let update = ProfileInput {
        name: input.name,
        company: input.company,
        bio: input.bio,
        avatar: input.avatar,
    };
    let user = tessera(ctx).update_own_profile(auth, update).await?;
    Ok(User::new(user))
}

pub struct ActiveUserMutations;

#[Object]
impl ActiveUserMutations {
    /// Changes your name, company, bio or avatar; an empty company, bio or avatar clears it.
    async fn update(&self, ctx: &Context<'_>, user: UserUpdateInput) -> Result<User> {
        update_active_user(ctx, user).await
    }
}

#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    #[graphql(guard = "HasScope(Scope::ProfileWrite).and(HasRole(ServerRole::Guest))")]
    async fn active_user_mutations(&self) -> ActiveUserMutations {
        ActiveUserMutations
    }

    #[graphql(
        guard = "HasScope(Scope::ProfileWrite).and(HasRole(ServerRole::Guest))",
        deprecation = "Use activeUserMutations.update"
    )]
    async fn user_update(&self, ctx: &Context<'_>, user: UserUpdateInput) -> Result<bool> {
        update_active_user(ctx, user).await.map(|_| true)
    }
}
