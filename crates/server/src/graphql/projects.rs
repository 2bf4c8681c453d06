//! Projects, models and versions: Speckle's current API (`project`, `projectMutations`,
//! `modelMutations`, `versionMutations`, `activeUser.projects`, the `permissions` fields). Every
//! authorization decision is `domain::projects::check`.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Object, OutputType, Result, SimpleObject};
use tessera_proto::{Scope, ServerRole, StreamRole};

use super::guards::{HasRole, HasScope};
use super::invites::{self, PendingStreamCollaborator};
use super::scalars::DateTime;
use super::users::LimitedUser;
use super::{caller, state, tessera};
use crate::domain::paging;
use crate::domain::projects::{
    self, Access, Action, Denial, ModelRef, NewProject, NewVersion, ProjectChanges,
};
use crate::error::Error;
use crate::model::{
    ModelFilter, ModelRecord, Page, ProjectRecord, VersionFilter, VersionRecord, Visibility,
};
use tessera_core::Tessera;

/// One page of a list.
#[derive(SimpleObject)]
#[graphql(
    concrete(name = "ProjectCollection", params(Project)),
    concrete(name = "ModelCollection", params(Model)),
    concrete(name = "VersionCollection", params(Version)),
    concrete(name = "StreamCollection", params(super::streams::Stream)),
    concrete(name = "CommitCollection", params(super::streams::Commit)),
    concrete(name = "BranchCollection", params(super::streams::Branch)),
    concrete(name = "UserActivityCollection", params(super::activity::Activity))
)]
pub struct Collection<T: OutputType> {
    pub total_count: i64,
    pub cursor: Option<String>,
    pub items: Vec<T>,
}

impl<T: OutputType> Collection<T> {
    pub fn from_page<R>(page: Page<R>, item: impl FnMut(R) -> T) -> Collection<T> {
        Collection {
            total_count: page.total,
            cursor: page.next.as_ref().map(paging::encode),
            items: page.items.into_iter().map(item).collect(),
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ProjectVisibility {
    #[graphql(name = "PRIVATE")]
    Private,
    #[graphql(name = "PUBLIC")]
    Public,
    /// Legacy; stored and read back as PUBLIC.
    #[graphql(name = "UNLISTED")]
    Unlisted,
    /// Workspace projects; Tessera has no workspaces.
    #[graphql(name = "WORKSPACE")]
    Workspace,
}

impl ProjectVisibility {
    fn stored(self) -> Result<Visibility, Error> {
        projects::visibility(match self {
            ProjectVisibility::Private => "PRIVATE",
            ProjectVisibility::Public => "PUBLIC",
            ProjectVisibility::Unlisted => "UNLISTED",
            ProjectVisibility::Workspace => "WORKSPACE",
        })
    }
}

/// The answer of a permission check: whether the caller may, and if not, why.
#[derive(SimpleObject)]
pub struct PermissionCheckResult {
    authorized: bool,
    code: String,
    message: String,
}

impl From<Result<(), Denial>> for PermissionCheckResult {
    fn from(result: Result<(), Denial>) -> Self {
        match result {
            Ok(()) => PermissionCheckResult {
                authorized: true,
                code: "OK".into(),
                message: "OK".into(),
            },
            Err(denial) => PermissionCheckResult {
                authorized: false,
                code: denial.code().into(),
                message: denial.message(),
            },
        }
    }
}

#[derive(SimpleObject)]
pub struct ProjectPermissionChecks {
    can_create_model: PermissionCheckResult,
    can_delete: PermissionCheckResult,
    can_load: PermissionCheckResult,
    can_publish: PermissionCheckResult,
}

#[derive(SimpleObject)]
pub struct ModelPermissionChecks {
    can_update: PermissionCheckResult,
    can_delete: PermissionCheckResult,
    can_create_version: PermissionCheckResult,
}

#[derive(SimpleObject)]
pub struct ProjectCollaborator {
    /// The collaborator's user id.
    id: String,
    role: String,
    user: LimitedUser,
}

/// A project as the caller sees it.
pub struct Project(pub Arc<Access>);

impl Project {
    pub fn new(access: Access) -> Project {
        Project(Arc::new(access))
    }

    fn record(&self) -> &ProjectRecord {
        &self.0.project
    }
}

/// The caller's permissions on a project, for `action`.
fn may(ctx: &Context<'_>, access: &Access, action: Action) -> Result<(), Denial> {
    projects::check(caller(ctx), &access.project, access.role, action)
}

/// `limit`/`cursor` arguments as a page request.
pub fn page_args(limit: i32, cursor: Option<&str>) -> Result<crate::model::PageRequest, Error> {
    paging::request(i64::from(limit), cursor)
}

#[derive(InputObject, Default)]
pub struct ProjectModelsFilter {
    /// Only models created by these users.
    contributors: Option<Vec<String>>,
    exclude_ids: Option<Vec<String>>,
    ids: Option<Vec<String>>,
    only_with_versions: Option<bool>,
    /// Part of the model name.
    search: Option<String>,
    /// Only models with versions sent from these applications.
    source_apps: Option<Vec<String>>,
}

#[derive(InputObject, Default)]
pub struct ModelVersionsFilter {
    priority_ids: Vec<String>,
    /// With `true`, only the versions in `priorityIds`.
    priority_ids_only: Option<bool>,
}

pub async fn model_page(
    tessera: &Tessera,
    project_id: &str,
    limit: i32,
    cursor: Option<String>,
    filter: Option<ProjectModelsFilter>,
) -> Result<Collection<Model>, Error> {
    let f = filter.unwrap_or_default();
    for (list, what) in [
        (&f.ids, "filter.ids"),
        (&f.exclude_ids, "filter.excludeIds"),
        (&f.contributors, "filter.contributors"),
        (&f.source_apps, "filter.sourceApps"),
    ] {
        paging::check_list(list.as_ref().map_or(0, Vec::len), what)?;
    }
    paging::check_search(f.search.as_deref(), "filter.search")?;
    let filter = ModelFilter {
        search: f.search,
        ids: f.ids,
        exclude_ids: f.exclude_ids,
        only_with_versions: f.only_with_versions.unwrap_or(false),
        authors: f.contributors,
        source_apps: f.source_apps,
    };
    let page = tessera
        .project_models(project_id, &filter, &page_args(limit, cursor.as_deref())?)
        .await?;
    Ok(Collection::from_page(page, Model))
}

/// A page of versions (or, through `item`, of legacy commits).
pub async fn version_page<T: OutputType>(
    tessera: &Tessera,
    filter: VersionFilter,
    limit: i32,
    cursor: Option<String>,
    item: impl FnMut(VersionRecord) -> T,
) -> Result<Collection<T>, Error> {
    let page = tessera
        .versions(&filter, &page_args(limit, cursor.as_deref())?)
        .await?;
    Ok(Collection::from_page(page, item))
}

/// The versions of one project (and model).
pub fn in_project(project_id: &str, model_id: Option<&str>) -> VersionFilter {
    VersionFilter {
        project_id: Some(project_id.to_owned()),
        model_id: model_id.map(str::to_owned),
        ..VersionFilter::default()
    }
}

#[Object]
impl Project {
    async fn id(&self) -> ID {
        ID(self.record().id.clone().into())
    }

    async fn name(&self) -> &str {
        &self.record().name
    }

    /// Never null: an empty description is `""`.
    async fn description(&self) -> Option<&str> {
        Some(self.record().description.as_deref().unwrap_or(""))
    }

    async fn visibility(&self) -> ProjectVisibility {
        match self.record().visibility {
            Visibility::Private => ProjectVisibility::Private,
            Visibility::Public => ProjectVisibility::Public,
        }
    }

    async fn allow_public_comments(&self) -> bool {
        self.record().allow_public_comments
    }

    /// Your role on the project, e.g. `stream:owner`; `null` if you have none.
    async fn role(&self) -> Option<&str> {
        self.0.role.map(StreamRole::name)
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.record().created_at)
    }

    async fn updated_at(&self) -> DateTime {
        DateTime(self.record().updated_at)
    }

    /// The applications versions were sent from.
    async fn source_apps(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(tessera(ctx).project_source_apps(self.record()).await?)
    }

    /// Tessera has no workspaces.
    async fn workspace_id(&self) -> Option<String> {
        None
    }

    #[graphql(guard = "HasScope(Scope::UsersRead)")]
    async fn team(&self, ctx: &Context<'_>) -> Result<Vec<ProjectCollaborator>> {
        let team = tessera(ctx).project_team(self.record()).await?;
        Ok(team
            .into_iter()
            .map(|(user, role)| ProjectCollaborator {
                id: user.id.to_string(),
                role: role.name().into(),
                user: LimitedUser::from(&user),
            })
            .collect())
    }

    /// Collaborators who have been invited but have not accepted yet (for the project's
    /// contributors and owners).
    #[graphql(guard = "HasScope(Scope::UsersRead)")]
    async fn invited_team(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<Vec<PendingStreamCollaborator>>> {
        let pending = tessera(ctx)
            .invited_team(caller(ctx), &self.record().id)
            .await?;
        Ok(Some(invites::listed(&pending, caller(ctx))))
    }

    async fn models(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 25)] limit: i32,
        cursor: Option<String>,
        filter: Option<ProjectModelsFilter>,
    ) -> Result<Collection<Model>> {
        Ok(model_page(tessera(ctx), &self.record().id, limit, cursor, filter).await?)
    }

    async fn model(&self, ctx: &Context<'_>, id: String) -> Result<Model> {
        let model = state(ctx).core.model_in(&self.record().id, &id).await?;
        Ok(Model(model))
    }

    async fn versions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 25)] limit: i32,
        cursor: Option<String>,
    ) -> Result<Collection<Version>> {
        let filter = in_project(&self.record().id, None);
        Ok(version_page(tessera(ctx), filter, limit, cursor, Version).await?)
    }

    async fn version(&self, ctx: &Context<'_>, id: String) -> Result<Version> {
        let version = state(ctx).core.version_in(&self.record().id, &id).await?;
        Ok(Version(version))
    }

    /// What you may do with the project.
    async fn permissions(&self, ctx: &Context<'_>) -> ProjectPermissionChecks {
        ProjectPermissionChecks {
            can_create_model: may(ctx, &self.0, Action::CreateModel).into(),
            can_delete: may(ctx, &self.0, Action::Delete).into(),
            can_load: may(ctx, &self.0, Action::Load).into(),
            can_publish: may(ctx, &self.0, Action::Publish).into(),
        }
    }
}

/// The last segment of a model's path name (`a/b/c` shows as `c`).
fn display_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

pub struct Model(pub ModelRecord);

#[Object]
impl Model {
    async fn id(&self) -> ID {
        ID(self.0.id.clone().into())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn display_name(&self) -> &str {
        display_name(&self.0.name)
    }

    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }

    async fn updated_at(&self) -> DateTime {
        DateTime(self.0.updated_at)
    }

    /// Tessera stores no objects, so it renders no previews.
    async fn preview_url(&self) -> Option<String> {
        None
    }

    async fn author(&self, ctx: &Context<'_>) -> Result<Option<LimitedUser>> {
        let author = state(ctx).core.author(self.0.author_id.as_deref()).await?;
        Ok(author.as_ref().map(LimitedUser::from))
    }

    async fn versions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 25)] limit: i32,
        cursor: Option<String>,
        filter: Option<ModelVersionsFilter>,
    ) -> Result<Collection<Version>> {
        if let Some(f) = &filter {
            paging::check_list(f.priority_ids.len(), "filter.priorityIds")?;
        }
        let only = match filter {
            Some(f) if f.priority_ids_only == Some(true) => Some(f.priority_ids),
            Some(f) if !f.priority_ids.is_empty() => {
                return Err(Error::user_input(
                    "priorityIds are only supported with priorityIdsOnly: true.",
                )
                .into());
            }
            _ => None,
        };
        let filter = VersionFilter {
            ids: only,
            ..in_project(&self.0.project_id, Some(&self.0.id))
        };
        Ok(version_page(tessera(ctx), filter, limit, cursor, Version).await?)
    }

    /// What you may do with the model.
    async fn permissions(&self, ctx: &Context<'_>) -> Result<ModelPermissionChecks> {
        let access = state(ctx)
            .core
            .standing(caller(ctx), &self.0.project_id)
            .await?;
        Ok(ModelPermissionChecks {
            can_update: may(ctx, &access, Action::UpdateModel).into(),
            can_delete: may(ctx, &access, Action::DeleteModel).into(),
            can_create_version: may(ctx, &access, Action::Publish).into(),
        })
    }
}

pub struct Version(pub VersionRecord);

#[Object]
impl Version {
    async fn id(&self) -> ID {
        ID(self.0.id.clone().into())
    }

    /// The id of the object this version points at.
    async fn referenced_object(&self) -> Option<&str> {
        Some(&self.0.referenced_object)
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

    /// Where Speckle serves a version's preview image. Tessera stores no objects and renders no
    /// previews, but clients require the field.
    async fn preview_url(&self, ctx: &Context<'_>) -> String {
        format!(
            "{}/preview/{}/commits/{}",
            state(ctx).public_url,
            self.0.project_id,
            self.0.id
        )
    }

    async fn author_user(&self, ctx: &Context<'_>) -> Result<Option<LimitedUser>> {
        let author = state(ctx).core.author(self.0.author_id.as_deref()).await?;
        Ok(author.as_ref().map(LimitedUser::from))
    }

    async fn model(&self, ctx: &Context<'_>) -> Result<Model> {
        let model = state(ctx)
            .core
            .model_in(&self.0.project_id, &self.0.model_id)
            .await?;
        Ok(Model(model))
    }
}

#[derive(Default)]
pub struct ProjectQuery;

#[Object]
impl ProjectQuery {
    /// A project you may read (public projects: anyone).
    #[graphql(guard = "HasScope(Scope::StreamsRead)")]
    async fn project(&self, ctx: &Context<'_>, id: String) -> Result<Project> {
        let access = state(ctx)
            .core
            .access(caller(ctx), &id, Action::Read)
            .await?;
        Ok(Project::new(access))
    }
}

#[derive(InputObject)]
pub struct ProjectCreateInput {
    name: Option<String>,
    description: Option<String>,
    visibility: Option<ProjectVisibility>,
}

#[derive(InputObject)]
pub struct ProjectUpdateInput {
    id: String,
    name: Option<String>,
    description: Option<String>,
    allow_public_comments: Option<bool>,
    visibility: Option<ProjectVisibility>,
}

#[derive(InputObject)]
pub struct ProjectUpdateRoleInput {
    user_id: String,
    project_id: String,
    /// `stream:owner`, `stream:contributor` or `stream:reviewer`; `null` removes the user.
    role: Option<String>,
}

/// A role name as sent (`stream:reviewer`, …).
pub fn stream_role(name: &str) -> Result<StreamRole, Error> {
    StreamRole::from_name(name).ok_or_else(|| {
        Error::user_input(format!(
            "Unknown role {name:?}; use stream:owner, stream:contributor or stream:reviewer."
        ))
    })
}

pub struct ProjectMutations;

#[Object]
impl ProjectMutations {
    /// Invitations to projects.
    async fn invites(&self) -> invites::ProjectInviteMutations {
        invites::ProjectInviteMutations
    }

    /// Creates a project you own.
    async fn create(
        &self,
        ctx: &Context<'_>,
        input: Option<ProjectCreateInput>,
    ) -> Result<Project> {
        let state = state(ctx);
        let input = match input {
            Some(i) => NewProject {
                name: i.name,
                description: i.description,
                visibility: i.visibility.map(ProjectVisibility::stored).transpose()?,
                contributors: Vec::new(),
            },
            None => NewProject::default(),
        };
        let access = state.core.create_project(caller(ctx), input).await?;
        Ok(Project::new(access))
    }

    async fn update(&self, ctx: &Context<'_>, update: ProjectUpdateInput) -> Result<Project> {
        let state = state(ctx);
        let changes = ProjectChanges {
            name: update.name,
            description: update.description,
            visibility: update
                .visibility
                .map(ProjectVisibility::stored)
                .transpose()?,
            allow_public_comments: update.allow_public_comments,
        };
        let access = state
            .core
            .update_project(caller(ctx), &update.id, changes)
            .await?;
        Ok(Project::new(access))
    }

    async fn delete(&self, ctx: &Context<'_>, id: String) -> Result<bool> {
        state(ctx).core.delete_project(caller(ctx), &id).await?;
        Ok(true)
    }

    /// Gives a user a role on the project; a `null` role removes them. Owners only; the last
    /// owner stays.
    async fn update_role(
        &self,
        ctx: &Context<'_>,
        input: ProjectUpdateRoleInput,
    ) -> Result<Project> {
        let role = input.role.as_deref().map(stream_role).transpose()?;
        tessera(ctx)
            .set_role(caller(ctx), &input.project_id, &input.user_id, role)
            .await?;
        let access = tessera(ctx)
            .access(caller(ctx), &input.project_id, Action::Read)
            .await?;
        Ok(Project::new(access))
    }

    /// Leaves a project's team.
    async fn leave(&self, ctx: &Context<'_>, id: String) -> Result<bool> {
        let state = state(ctx);
        state.core.leave(caller(ctx), &id).await?;
        Ok(true)
    }
}

#[derive(InputObject)]
pub struct CreateModelInput {
    name: String,
    description: Option<String>,
    project_id: String,
}

#[derive(InputObject)]
pub struct UpdateModelInput {
    id: String,
    name: Option<String>,
    description: Option<String>,
    project_id: String,
}

#[derive(InputObject)]
pub struct DeleteModelInput {
    id: String,
    project_id: String,
}

pub struct ModelMutations;

#[Object]
impl ModelMutations {
    async fn create(&self, ctx: &Context<'_>, input: CreateModelInput) -> Result<Model> {
        let state = state(ctx);
        let model = state
            .core
            .create_model(
                caller(ctx),
                &input.project_id,
                &input.name,
                input.description,
            )
            .await?;
        Ok(Model(model))
    }

    async fn update(&self, ctx: &Context<'_>, input: UpdateModelInput) -> Result<Model> {
        let state = state(ctx);
        let model = state
            .core
            .update_model(
                caller(ctx),
                &input.project_id,
                &input.id,
                input.name,
                input.description,
            )
            .await?;
        Ok(Model(model))
    }

    async fn delete(&self, ctx: &Context<'_>, input: DeleteModelInput) -> Result<bool> {
        state(ctx)
            .core
            .delete_model(caller(ctx), &input.project_id, &input.id)
            .await?;
        Ok(true)
    }
}

#[derive(InputObject)]
pub struct CreateVersionInput {
    object_id: String,
    model_id: String,
    project_id: String,
    message: Option<String>,
    source_application: Option<String>,
    total_children_count: Option<i32>,
    parents: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct UpdateVersionInput {
    version_id: String,
    project_id: String,
    message: Option<String>,
}

#[derive(InputObject)]
pub struct DeleteVersionsInput {
    version_ids: Vec<String>,
    project_id: String,
}

pub struct VersionMutations;

#[Object]
impl VersionMutations {
    /// Records a version of a model, pointing at an object id.
    #[graphql(guard = "HasScope(Scope::StreamsWrite)")]
    async fn create(&self, ctx: &Context<'_>, input: CreateVersionInput) -> Result<Version> {
        let state = state(ctx);
        let version = state
            .core
            .create_version(
                caller(ctx),
                &input.project_id,
                ModelRef::Id(&input.model_id),
                NewVersion {
                    object_id: input.object_id,
                    message: input.message,
                    source_application: input.source_application,
                    total_children_count: input.total_children_count.map(i64::from),
                    parents: input.parents.unwrap_or_default(),
                },
            )
            .await?;
        Ok(Version(version))
    }

    /// Changes a version's message.
    #[graphql(guard = "HasScope(Scope::StreamsWrite)")]
    async fn update(&self, ctx: &Context<'_>, input: UpdateVersionInput) -> Result<Version> {
        let version = state(ctx)
            .core
            .update_version(
                caller(ctx),
                &input.project_id,
                &input.version_id,
                input.message,
            )
            .await?;
        Ok(Version(version))
    }

    #[graphql(guard = "HasScope(Scope::StreamsWrite)")]
    async fn delete(&self, ctx: &Context<'_>, input: DeleteVersionsInput) -> Result<bool> {
        state(ctx)
            .core
            .delete_versions(caller(ctx), &input.project_id, &input.version_ids)
            .await?;
        Ok(true)
    }
}

#[derive(Default)]
pub struct ProjectMutation;

#[Object]
impl ProjectMutation {
    #[graphql(guard = "HasScope(Scope::StreamsWrite).and(HasRole(ServerRole::Guest))")]
    async fn project_mutations(&self) -> ProjectMutations {
        ProjectMutations
    }

    #[graphql(guard = "HasScope(Scope::StreamsWrite).and(HasRole(ServerRole::Guest))")]
    async fn model_mutations(&self) -> ModelMutations {
        ModelMutations
    }

    #[graphql(guard = "HasRole(ServerRole::Guest)")]
    async fn version_mutations(&self) -> VersionMutations {
        VersionMutations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names() {
        assert_eq!(display_name("my/nested/model"), "model");
        assert_eq!(display_name("main"), "main");
    }
}
