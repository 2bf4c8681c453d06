//! Speckle's legacy stream API (streams, branches, commits), used by older clients and v2
//! connectors. It is a second view of the same projects, models and versions, behind the same
//! rule.

use std::sync::Arc;

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use tessera_proto::{Scope, ServerRole, StreamRole};

use super::guards::{HasRole, HasScope};
use super::projects::{Collection, in_project, page_args, stream_role, version_page};
use super::scalars::DateTime;
use super::users::LimitedUser;
use super::{caller, state, tessera};
use crate::domain::projects::{Access, ModelRef, NewProject, NewVersion, ProjectChanges};
use crate::error::Error;
use crate::model::{
    ModelFilter, ModelRecord, ProjectFilter, UserRecord, VersionRecord, Visibility,
};
use tessera_core::Tessera;
use tokio::sync::OnceCell;

pub struct Stream(pub Arc<Access>);

#[derive(SimpleObject)]
pub struct StreamCollaborator {
    id: String,
    name: String,
    role: String,
    company: Option<String>,
    avatar: Option<String>,
}

#[Object]
impl Stream {
    async fn id(&self) -> &str {
        &self.0.project.id
    }

    async fn name(&self) -> &str {
        &self.0.project.name
    }

    async fn description(&self) -> Option<&str> {
        self.0.project.description.as_deref()
    }

    async fn is_public(&self) -> bool {
        self.0.project.visibility == Visibility::Public
    }

    async fn is_discoverable(&self) -> bool {
        self.0.project.visibility == Visibility::Public
    }

    async fn allow_public_comments(&self) -> bool {
        self.0.project.allow_public_comments
    }

    async fn role(&self) -> Option<&str> {
        self.0.role.map(StreamRole::name)
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.0.project.created_at)
    }

    async fn updated_at(&self) -> DateTime {
        DateTime(self.0.project.updated_at)
    }

    #[graphql(guard = "HasScope(Scope::UsersRead)")]
    async fn collaborators(&self, ctx: &Context<'_>) -> Result<Vec<StreamCollaborator>> {
        let team = tessera(ctx).project_team(&self.0.project).await?;
        Ok(team
            .into_iter()
            .map(|(u, role)| StreamCollaborator {
                id: u.id.into(),
                name: u.name,
                role: role.name().into(),
                company: u.company,
                avatar: u.avatar,
            })
            .collect())
    }

    async fn commits(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 25)] limit: i32,
        cursor: Option<String>,
    ) -> Result<Collection<Commit>> {
        let filter = in_project(&self.0.project.id, None);
        Ok(version_page(tessera(ctx), filter, limit, cursor, Commit::new).await?)
    }

    /// A commit by id, or without an id the latest.
    async fn commit(&self, ctx: &Context<'_>, id: Option<String>) -> Result<Option<Commit>> {
        match id {
            Some(id) => Ok(Some(Commit::new(
                tessera(ctx).version_in(&self.0.project.id, &id).await?,
            ))),
            None => {
                let filter = in_project(&self.0.project.id, None);
                let latest = version_page(tessera(ctx), filter, 1, None, Commit::new).await?;
                Ok(latest.items.into_iter().next())
            }
        }
    }

    async fn branches(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 25)] limit: i32,
        cursor: Option<String>,
    ) -> Result<Collection<Branch>> {
        let page = tessera(ctx)
            .project_models(
                &self.0.project.id,
                &ModelFilter::default(),
                &page_args(limit, cursor.as_deref())?,
            )
            .await?;
        Ok(Collection::from_page(page, Branch))
    }

    async fn branch(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "String::from(\"main\")")] name: String,
    ) -> Result<Option<Branch>> {
        Ok(tessera(ctx)
            .model_by_name(&self.0.project.id, &name)
            .await?
            .map(Branch))
    }
}

/// A model, by its legacy name.
pub struct Branch(pub ModelRecord);

#[Object]
impl Branch {
    async fn id(&self) -> &str {
        &self.0.id
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }

    async fn author(&self, ctx: &Context<'_>) -> Result<Option<LimitedUser>> {
        let author = state(ctx).core.author(self.0.author_id.as_deref()).await?;
        Ok(author.as_ref().map(LimitedUser::from))
    }

    async fn commits(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 25)] limit: i32,
        cursor: Option<String>,
    ) -> Result<Collection<Commit>> {
        let filter = in_project(&self.0.project_id, Some(&self.0.id));
        Ok(version_page(tessera(ctx), filter, limit, cursor, Commit::new).await?)
    }
}

/// A version, by its legacy name. Its author is read once, however many author fields are asked.
pub struct Commit(VersionRecord, OnceCell<Option<UserRecord>>);

impl Commit {
    pub fn new(version: VersionRecord) -> Commit {
        Commit(version, OnceCell::new())
    }

    async fn author(&self, ctx: &Context<'_>) -> Result<Option<&UserRecord>, Error> {
        let author = self
            .1
            .get_or_try_init(|| tessera(ctx).author(self.0.author_id.as_deref()))
            .await?;
        Ok(author.as_ref())
    }
}

#[Object]
impl Commit {
    async fn id(&self) -> &str {
        &self.0.id
    }

    async fn referenced_object(&self) -> &str {
        &self.0.referenced_object
    }

    async fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }

    async fn source_application(&self) -> Option<&str> {
        self.0.source_application.as_deref()
    }

    async fn total_children_count(&self) -> Option<i64> {
        self.0.total_children_count
    }

    async fn parents(&self) -> Option<Vec<String>> {
        Some(self.0.parents.clone())
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }

    async fn stream_id(&self) -> &str {
        &self.0.project_id
    }

    async fn branch_name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(tessera(ctx).model(&self.0.model_id).await?.map(|m| m.name))
    }

    async fn author_id(&self) -> Option<&str> {
        self.0.author_id.as_deref()
    }

    async fn author_name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.author(ctx).await?.map(|a| a.name.clone()))
    }

    async fn author_avatar(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.author(ctx).await?.and_then(|a| a.avatar.clone()))
    }
}

/// The streams a user collaborates on, as a legacy collection.
pub async fn user_streams(
    tessera: &Tessera,
    user_id: &str,
    caller_limits: Option<Vec<String>>,
    search: Option<String>,
    limit: i32,
    cursor: Option<String>,
) -> Result<Collection<Stream>, Error> {
    crate::domain::paging::check_search(search.as_deref(), "search")?;
    let filter = ProjectFilter {
        search,
        roles: None,
        ids: caller_limits,
    };
    let page = tessera
        .user_projects(user_id, &filter, &page_args(limit, cursor.as_deref())?)
        .await?;
    Ok(Collection::from_page(page, |(project, role)| {
        Stream(Arc::new(Access {
            project,
            role: Some(role),
        }))
    }))
}

#[derive(Default)]
pub struct StreamQuery;

#[Object]
impl StreamQuery {
    /// A stream you may read.
    #[graphql(guard = "HasScope(Scope::StreamsRead)", deprecation = "Use project")]
    async fn stream(&self, ctx: &Context<'_>, id: String) -> Result<Option<Stream>> {
        let access = tessera(ctx).legacy_stream(caller(ctx), &id).await?;
        Ok(Some(Stream(Arc::new(access))))
    }

    /// Your streams, optionally those whose name contains `query`.
    #[graphql(
        guard = "HasScope(Scope::StreamsRead).and(HasRole(ServerRole::Guest))",
        deprecation = "Use activeUser.projects"
    )]
    async fn streams(
        &self,
        ctx: &Context<'_>,
        query: Option<String>,
        #[graphql(default = 25)] limit: i32,
        cursor: Option<String>,
    ) -> Result<Collection<Stream>> {
        let auth = caller(ctx).ok_or(Error::Unauthenticated)?;
        Ok(user_streams(
            tessera(ctx),
            &auth.user_id,
            auth.project_limits(),
            query,
            limit,
            cursor,
        )
        .await?)
    }
}

#[derive(InputObject)]
pub struct StreamCreateInput {
    name: Option<String>,
    description: Option<String>,
    is_public: Option<bool>,
    is_discoverable: Option<bool>,
    /// Users to add as contributors.
    with_contributors: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct StreamUpdateInput {
    id: String,
    name: Option<String>,
    description: Option<String>,
    is_public: Option<bool>,
    is_discoverable: Option<bool>,
    allow_public_comments: Option<bool>,
}

#[derive(InputObject)]
pub struct StreamUpdatePermissionInput {
    stream_id: String,
    user_id: String,
    role: String,
}

#[derive(InputObject)]
pub struct StreamRevokePermissionInput {
    stream_id: String,
    user_id: String,
}

#[derive(InputObject)]
pub struct BranchCreateInput {
    stream_id: String,
    name: String,
    description: Option<String>,
}

#[derive(InputObject)]
pub struct CommitCreateInput {
    stream_id: String,
    branch_name: String,
    object_id: String,
    message: Option<String>,
    source_application: Option<String>,
    total_children_count: Option<i32>,
    parents: Option<Vec<String>>,
}

fn visibility(is_public: Option<bool>) -> Option<Visibility> {
    is_public.map(|p| {
        if p {
            Visibility::Public
        } else {
            Visibility::Private
        }
    })
}

#[derive(Default)]
pub struct StreamMutation;

#[Object]
impl StreamMutation {
    /// Creates a stream you own; returns its id.
    #[graphql(
        guard = "HasScope(Scope::StreamsWrite).and(HasRole(ServerRole::User))",
        deprecation = "Use projectMutations.create"
    )]
    async fn stream_create(
        &self,
        ctx: &Context<'_>,
        stream: StreamCreateInput,
    ) -> Result<Option<String>> {
        let contributors = stream.with_contributors.unwrap_or_default();
        crate::domain::paging::check_list(contributors.len(), "withContributors")?;
        let access = tessera(ctx)
            .create_project(
                caller(ctx),
                NewProject {
                    name: stream.name,
                    description: stream.description,
                    visibility: visibility(stream.is_public),
                    contributors,
                },
            )
            .await?;
        let id = access.project.id;
        Ok(Some(id.into()))
    }

    #[graphql(
        guard = "HasScope(Scope::StreamsWrite).and(HasRole(ServerRole::User))",
        deprecation = "Use projectMutations.update"
    )]
    async fn stream_update(&self, ctx: &Context<'_>, stream: StreamUpdateInput) -> Result<bool> {
        let state = state(ctx);
        let changes = ProjectChanges {
            name: stream.name,
            description: stream.description,
            visibility: visibility(stream.is_public),
            allow_public_comments: stream.allow_public_comments,
        };
        state
            .core
            .update_project(caller(ctx), &stream.id, changes)
            .await?;
        Ok(true)
    }

    #[graphql(
        guard = "HasScope(Scope::StreamsWrite).and(HasRole(ServerRole::User))",
        deprecation = "Use projectMutations.delete"
    )]
    async fn stream_delete(&self, ctx: &Context<'_>, id: String) -> Result<bool> {
        state(ctx).core.delete_project(caller(ctx), &id).await?;
        Ok(true)
    }

    /// Changes the role of an existing collaborator.
    #[graphql(
        guard = "HasScope(Scope::StreamsWrite).and(HasRole(ServerRole::User))",
        deprecation = "Use projectMutations.updateRole"
    )]
    async fn stream_update_permission(
        &self,
        ctx: &Context<'_>,
        permission_params: StreamUpdatePermissionInput,
    ) -> Result<Option<bool>> {
        let state = state(ctx);
        let p = permission_params;
        state
            .core
            .change_collaborator_role(caller(ctx), &p.stream_id, &p.user_id, stream_role(&p.role)?)
            .await?;
        Ok(Some(true))
    }

    #[graphql(
        guard = "HasScope(Scope::StreamsWrite).and(HasRole(ServerRole::User))",
        deprecation = "Use projectMutations.updateRole"
    )]
    async fn stream_revoke_permission(
        &self,
        ctx: &Context<'_>,
        permission_params: StreamRevokePermissionInput,
    ) -> Result<Option<bool>> {
        let state = state(ctx);
        let p = permission_params;
        state
            .core
            .set_role(caller(ctx), &p.stream_id, &p.user_id, None)
            .await?;
        Ok(Some(true))
    }

    /// Creates a branch (model); returns its id.
    #[graphql(
        guard = "HasScope(Scope::StreamsWrite).and(HasRole(ServerRole::Guest))",
        deprecation = "Use modelMutations.create"
    )]
    async fn branch_create(&self, ctx: &Context<'_>, branch: BranchCreateInput) -> Result<String> {
        let state = state(ctx);
        let model = state
            .core
            .create_model(
                caller(ctx),
                &branch.stream_id,
                &branch.name,
                branch.description,
            )
            .await?;
        Ok(model.id.into())
    }

    /// Creates a commit (version) on a branch; returns its id.
    #[graphql(
        guard = "HasScope(Scope::StreamsWrite).and(HasRole(ServerRole::Guest))",
        deprecation = "Use versionMutations.create"
    )]
    async fn commit_create(&self, ctx: &Context<'_>, commit: CommitCreateInput) -> Result<String> {
        let state = state(ctx);
        let version = state
            .core
            .create_version(
                caller(ctx),
                &commit.stream_id,
                ModelRef::Name(&commit.branch_name),
                NewVersion {
                    object_id: commit.object_id,
                    message: commit.message,
                    source_application: commit.source_application,
                    total_children_count: commit.total_children_count.map(i64::from),
                    parents: commit.parents.unwrap_or_default(),
                },
            )
            .await?;
        Ok(version.id.into())
    }
}
