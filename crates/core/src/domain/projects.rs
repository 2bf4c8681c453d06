//! Projects (Speckle's streams), their collaborators, models (branches) and versions (commits), and
//! the one rule that decides who may do what with them. The GraphQL mutations and the
//! `permissions { … }` fields both ask [`check`] and [`check_create`], so what a client is told it
//! may do is exactly what it may do.
//!
//! The rule, in order: the token must hold the action's scope (only checked when there is a
//! token, as Speckle's `@hasScope`); a resource-limited token reaches only its projects; a public
//! project may be read by anyone; everything else needs a signed-in, non-archived user with a role
//! on the project of at least the action's weight (owner 1000 > contributor 500 > reviewer 100).

use tessera_proto::{Scope, ServerRole, StreamRole};

use super::auth::Auth;
use super::random_hex;
use crate::error::{Error, Missing, Result};
use crate::service::Tessera;
use crate::store::{ModelRecord, ProjectRecord, RoleChange, UserRecord, VersionRecord, Visibility};

pub const MAX_NAME_CHARS: usize = 512;
pub const MAX_DESCRIPTION_CHARS: usize = 65_536;
pub const MAX_OBJECT_ID_CHARS: usize = 256;
pub const MAX_SOURCE_APP_CHARS: usize = 256;
pub const MAX_PARENTS: usize = 100;

/// What a caller wants to do with a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See the project (public projects: anyone).
    Read,
    /// Open it in a connector: an explicit role is needed, even on a public project.
    Load,
    /// Change its name, description or visibility.
    Update,
    Delete,
    /// Add, change or remove collaborators.
    ManageTeam,
    CreateModel,
    UpdateModel,
    DeleteModel,
    /// Send a version (commit).
    Publish,
}

impl Action {
    fn scope(self) -> Scope {
        match self {
            Action::Read | Action::Load => Scope::StreamsRead,
            _ => Scope::StreamsWrite,
        }
    }

    /// The role needed; `None` for reading, which a public project allows anyone.
    fn role(self) -> Option<StreamRole> {
        match self {
            Action::Read => None,
            Action::Load => Some(StreamRole::Reviewer),
            Action::Update | Action::Delete | Action::ManageTeam => Some(StreamRole::Owner),
            Action::CreateModel | Action::UpdateModel | Action::DeleteModel | Action::Publish => {
                Some(StreamRole::Contributor)
            }
        }
    }
}

/// Why the rule said no. Each reason has Speckle's policy code (what `permissions` fields show)
/// and becomes one error (what mutations answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    MissingScope(Scope),
    NoSession,
    ServerRole,
    ResourceLimited,
    CreateLimited,
    ProjectNotFound,
    NoAccess,
    NotEnoughPermissions,
}

pub const NO_ACCESS: &str = "You do not have access to the project";
pub const NOT_ENOUGH: &str =
    "You do not have enough permissions in the project to perform this action";
pub const NOT_LOGGED_IN: &str = "You are not logged in to this server";
pub const RESOURCE_LIMITED: &str = "You are not authorized to access this resource.";
pub const CREATE_LIMITED: &str = "You are not authorized to create a new project resource.";
pub const SERVER_ROLE: &str = "You do not have the required server role";
pub const PROJECT_NOT_FOUND: &str = "Project not found";

impl Denial {
    /// Speckle's policy error code.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::MissingScope(_) => "MissingTokenScope",
            Denial::NoSession => "ServerNoSession",
            Denial::ServerRole => "ServerNotEnoughPermissions",
            Denial::ResourceLimited | Denial::CreateLimited => "TokenResourceAccessDenied",
            Denial::ProjectNotFound => "ProjectNotFound",
            Denial::NoAccess => "ProjectNoAccess",
            Denial::NotEnoughPermissions => "ProjectNotEnoughPermissions",
        }
    }

    pub fn into_error(self) -> Error {
        match self {
            Denial::MissingScope(scope) => Error::MissingScope(scope),
            Denial::NoSession => Error::forbidden(NOT_LOGGED_IN),
            Denial::ServerRole => Error::forbidden(SERVER_ROLE),
            Denial::ResourceLimited => Error::forbidden(RESOURCE_LIMITED),
            Denial::CreateLimited => Error::forbidden(CREATE_LIMITED),
            Denial::ProjectNotFound => Error::NotFound {
                what: Missing::Project,
                message: PROJECT_NOT_FOUND.into(),
            },
            Denial::NoAccess => Error::forbidden(NO_ACCESS),
            Denial::NotEnoughPermissions => Error::forbidden(NOT_ENOUGH),
        }
    }

    /// The message a `permissions` field shows.
    pub fn message(&self) -> String {
        self.clone().into_error().to_string()
    }
}

impl From<Denial> for Error {
    fn from(d: Denial) -> Error {
        d.into_error()
    }
}

/// May `caller`, holding `role` on `project`, do `action`?
pub fn check(
    caller: Option<&Auth>,
    project: &ProjectRecord,
    role: Option<StreamRole>,
    action: Action,
) -> Result<(), Denial> {
    check_scope(caller, action)?;
    check_standing(caller, project, role, action)
}

/// The first part of the rule: a token must hold the action's scope (only checked when there is
/// a token, as Speckle's `@hasScope`). It needs no project, so it is asked before one is loaded.
fn check_scope(caller: Option<&Auth>, action: Action) -> Result<(), Denial> {
    match caller {
        Some(auth) if !auth.has_scope(action.scope()) => Err(Denial::MissingScope(action.scope())),
        _ => Ok(()),
    }
}

/// The rest of the rule, for a caller whose scope was checked.
fn check_standing(
    caller: Option<&Auth>,
    project: &ProjectRecord,
    role: Option<StreamRole>,
    action: Action,
) -> Result<(), Denial> {
    if let Some(auth) = caller
        && !auth.may_reach_project(&project.id)
    {
        return Err(Denial::ResourceLimited);
    }
    let required = match action.role() {
        None if project.visibility == Visibility::Public => return Ok(()),
        None => StreamRole::Reviewer,
        Some(role) => role,
    };
    let auth = caller.ok_or(Denial::NoSession)?;
    if !auth.role.satisfies(ServerRole::Guest) {
        return Err(Denial::ServerRole);
    }
    match role {
        None => Err(Denial::NoAccess),
        Some(role) if !role.satisfies(required) => Err(Denial::NotEnoughPermissions),
        Some(_) => Ok(()),
    }
}

/// May `caller` create a project of their own?
pub fn check_create(caller: Option<&Auth>) -> Result<(), Denial> {
    let auth = caller.ok_or(Denial::NoSession)?;
    if !auth.has_scope(Scope::StreamsWrite) {
        return Err(Denial::MissingScope(Scope::StreamsWrite));
    }
    if !auth.role.satisfies(ServerRole::User) {
        return Err(Denial::ServerRole);
    }
    if auth.resources.is_some() {
        return Err(Denial::CreateLimited);
    }
    Ok(())
}

/// A project together with the caller's role on it.
#[derive(Debug, Clone)]
pub struct Access {
    pub project: ProjectRecord,
    pub role: Option<StreamRole>,
}

impl Tessera {
    /// The caller's role on a project (none for anonymous callers).
    pub async fn role_of(
        &self,
        caller: Option<&Auth>,
        project_id: &str,
    ) -> Result<Option<StreamRole>> {
        let store = self.store();
        match caller {
            Some(auth) => store.project_role(project_id, &auth.user_id).await,
            None => Ok(None),
        }
    }

    /// Loads a project for `action`, or says why not.
    pub async fn access(
        &self,
        caller: Option<&Auth>,
        project_id: &str,
        action: Action,
    ) -> Result<Access> {
        self.decide(caller, project_id, action)
            .await?
            .map_err(Into::into)
    }

    /// The legacy `stream(id)`: the same rule in the words of Speckle's stream API, which tells
    /// an outsider "You are not authorized to access this resource." and a missing stream
    /// "Stream not found" (the project API keeps its own wording).
    pub async fn legacy_stream(&self, caller: Option<&Auth>, id: &str) -> Result<Access> {
        self.decide(caller, id, Action::Read)
            .await?
            .map_err(|denial| match denial {
                Denial::NoAccess | Denial::NoSession => Error::forbidden(RESOURCE_LIMITED),
                Denial::ProjectNotFound => Error::NotFound {
                    what: Missing::Project,
                    message: "Stream not found".into(),
                },
                other => other.into(),
            })
    }

    /// The rule applied to a stored project: the access, or the denial (storage failures are
    /// the outer error). The scope comes first, so a token without it learns nothing of the
    /// project.
    async fn decide(
        &self,
        caller: Option<&Auth>,
        project_id: &str,
        action: Action,
    ) -> Result<Result<Access, Denial>> {
        if let Err(denial) = check_scope(caller, action) {
            return Ok(Err(denial));
        }
        let Some(project) = self.store().project(project_id).await? else {
            return Ok(Err(Denial::ProjectNotFound));
        };
        let role = self.role_of(caller, project_id).await?;
        Ok(check_standing(caller, &project, role, action).map(|()| Access { project, role }))
    }

    /// A project and the caller's role on it, deciding nothing: what the `permissions` fields hand to
    /// [`check`] to report what each action would meet.
    pub async fn standing(&self, caller: Option<&Auth>, project_id: &str) -> Result<Access> {
        let store = self.store();
        let project = store
            .project(project_id)
            .await?
            .ok_or(Denial::ProjectNotFound)?;
        let role = self.role_of(caller, project_id).await?;
        Ok(Access { project, role })
    }

    pub async fn create_project(&self, caller: Option<&Auth>, input: NewProject) -> Result<Access> {
        let store = self.store();
        let now = self.now();

        check_create(caller)?;
        let auth = caller.ok_or(Error::Unauthenticated)?;
        let project = ProjectRecord {
            id: random_hex(10)?.into(),
            name: project_name(input.name)?,
            description: text(input.description, MAX_DESCRIPTION_CHARS, "The description")?,
            visibility: input.visibility.unwrap_or(Visibility::Private),
            allow_public_comments: false,
            created_at: now,
            updated_at: now,
        };
        // Every contributor is checked before anything is stored, and the project is stored with its
        // whole team in one transaction: an unknown contributor leaves no project behind.
        let mut contributors: Vec<String> = Vec::new();
        for user_id in input.contributors {
            if auth.user_id == user_id || contributors.contains(&user_id) {
                continue;
            }
            let user = store
                .user_by_id(&user_id)
                .await?
                .ok_or_else(|| Error::NotFound {
                    what: Missing::User,
                    message: "User not found".into(),
                })?;
            if user.role == ServerRole::ArchivedUser {
                return Err(Error::user_input("Archived users cannot be given a role."));
            }
            contributors.push(user_id);
        }
        store
            .create_project(&project, &auth.user_id, &contributors)
            .await?;
        Ok(Access {
            project,
            role: Some(StreamRole::Owner),
        })
    }

    pub async fn update_project(
        &self,
        caller: Option<&Auth>,
        id: &str,
        changes: ProjectChanges,
    ) -> Result<Access> {
        let store = self.store();
        let now = self.now();

        let mut access = self.access(caller, id, Action::Update).await?;
        let p = &mut access.project;
        if let Some(name) = changes.name {
            p.name = project_name(Some(name))?;
        }
        if let Some(description) = changes.description {
            p.description = text(Some(description), MAX_DESCRIPTION_CHARS, "The description")?;
        }
        if let Some(v) = changes.visibility {
            p.visibility = v;
        }
        if let Some(allow) = changes.allow_public_comments {
            p.allow_public_comments = allow;
        }
        p.updated_at = now;
        store.update_project(p).await?;
        Ok(access)
    }

    pub async fn delete_project(&self, caller: Option<&Auth>, id: &str) -> Result<()> {
        let store = self.store();
        self.access(caller, id, Action::Delete).await?;
        store.delete_project(id).await?;
        Ok(())
    }

    /// Changes the role of a collaborator, or with `None` removes them. Only owners may.
    pub async fn set_role(
        &self,
        caller: Option<&Auth>,
        project_id: &str,
        user_id: &str,
        role: Option<StreamRole>,
    ) -> Result<Access> {
        let store = self.store();
        let now = self.now();

        let access = self.access(caller, project_id, Action::ManageTeam).await?;
        let target = store
            .user_by_id(user_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: Missing::User,
                message: "User not found".into(),
            })?;
        if role.is_some() && target.role == ServerRole::ArchivedUser {
            return Err(Error::user_input("Archived users cannot be given a role."));
        }
        // As in Speckle, a role is changed, never given: someone new joins by invitation.
        if role.is_some() && store.project_role(project_id, user_id).await?.is_none() {
            return Err(Error::ProjectUpdate(
                "Cannot grant permissions to users who aren't collaborators already - invite the \
                 user to the stream first"
                    .into(),
            ));
        }
        if store
            .set_project_role(project_id, user_id, role, now)
            .await?
            == RoleChange::LastOwner
        {
            return Err(last_owner());
        }
        Ok(access)
    }

    /// The legacy `streamUpdatePermission`: changes the role of someone who already collaborates on
    /// the project (not the caller's own).
    pub async fn change_collaborator_role(
        &self,
        caller: Option<&Auth>,
        project_id: &str,
        user_id: &str,
        role: StreamRole,
    ) -> Result<Access> {
        let store = self.store();
        self.access(caller, project_id, Action::ManageTeam).await?;
        if caller.is_some_and(|a| a.user_id == user_id) {
            return Err(Error::InvalidAccess(
                "You cannot change your own role on a project.".into(),
            ));
        }
        if store.project_role(project_id, user_id).await?.is_none() {
            return Err(Error::InvalidAccess(
                "Cannot grant permissions to users who aren't collaborators already".into(),
            ));
        }
        self.set_role(caller, project_id, user_id, Some(role)).await
    }

    /// Takes the caller off a project's team.
    pub async fn leave(&self, caller: Option<&Auth>, project_id: &str) -> Result<()> {
        let store = self.store();
        let now = self.now();

        let access = self.access(caller, project_id, Action::Read).await?;
        let auth = caller.ok_or(Error::Unauthenticated)?;
        if access.role.is_none() {
            return Err(Error::user_input(
                "You are not a collaborator on this project.",
            ));
        }
        if store
            .set_project_role(project_id, &auth.user_id, None, now)
            .await?
            == RoleChange::LastOwner
        {
            return Err(last_owner());
        }
        Ok(())
    }

    /// The model, if it belongs to the project.
    pub async fn model_in(&self, project_id: &str, model_id: &str) -> Result<ModelRecord> {
        let store = self.store();
        store
            .model(model_id)
            .await?
            .filter(|m| m.project_id == project_id)
            .ok_or_else(model_not_found)
    }

    pub async fn create_model(
        &self,
        caller: Option<&Auth>,
        project_id: &str,
        name: &str,
        description: Option<String>,
    ) -> Result<ModelRecord> {
        let store = self.store();
        let now = self.now();

        self.access(caller, project_id, Action::CreateModel).await?;
        let model = ModelRecord {
            id: random_hex(10)?.into(),
            project_id: project_id.into(),
            name: model_name(name)?,
            description: text(description, MAX_DESCRIPTION_CHARS, "The description")?,
            author_id: caller.map(|a| a.user_id.clone()),
            created_at: now,
            updated_at: now,
        };
        if !store.create_model(&model).await? {
            return Err(model_taken());
        }
        Ok(model)
    }

    pub async fn update_model(
        &self,
        caller: Option<&Auth>,
        project_id: &str,
        model_id: &str,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<ModelRecord> {
        let store = self.store();
        let now = self.now();

        self.access(caller, project_id, Action::UpdateModel).await?;
        let mut model = self.model_in(project_id, model_id).await?;
        if let Some(name) = name {
            model.name = model_name(&name)?;
        }
        if let Some(description) = description {
            model.description = text(Some(description), MAX_DESCRIPTION_CHARS, "The description")?;
        }
        model.updated_at = now.max(model.updated_at);
        if !store.update_model(&model).await? {
            return Err(model_taken());
        }
        Ok(model)
    }

    pub async fn delete_model(
        &self,
        caller: Option<&Auth>,
        project_id: &str,
        model_id: &str,
    ) -> Result<()> {
        let store = self.store();
        self.access(caller, project_id, Action::DeleteModel).await?;
        self.model_in(project_id, model_id).await?;
        store.delete_model(model_id).await?;
        Ok(())
    }

    pub async fn create_version(
        &self,
        caller: Option<&Auth>,
        project_id: &str,
        model: ModelRef<'_>,
        input: NewVersion,
    ) -> Result<VersionRecord> {
        let store = self.store();
        let now = self.now();

        self.access(caller, project_id, Action::Publish).await?;
        let model = match model {
            ModelRef::Id(id) => self.model_in(project_id, id).await?,
            ModelRef::Name(name) => store
                .model_by_name(project_id, name)
                .await?
                .ok_or_else(model_not_found)?,
        };
        let object_id = input.object_id.trim();
        if object_id.is_empty() || object_id.chars().count() > MAX_OBJECT_ID_CHARS {
            return Err(Error::user_input(format!(
                "A version refers to an object id of 1 to {MAX_OBJECT_ID_CHARS} characters."
            )));
        }
        if input.total_children_count.is_some_and(|n| n < 0) {
            return Err(Error::user_input("totalChildrenCount cannot be negative."));
        }
        if input.parents.len() > MAX_PARENTS {
            return Err(Error::user_input(format!(
                "A version can have at most {MAX_PARENTS} parents."
            )));
        }
        let version = VersionRecord {
            id: random_hex(10)?.into(),
            project_id: project_id.into(),
            model_id: model.id.clone(),
            author_id: caller.map(|a| a.user_id.clone()),
            referenced_object: object_id.to_owned(),
            message: version_message(input.message)?,
            source_application: text(
                input.source_application,
                MAX_SOURCE_APP_CHARS,
                "The source application",
            )?,
            total_children_count: input.total_children_count,
            parents: input.parents,
            created_at: now,
        };
        store.create_version(&version).await?;
        Ok(version)
    }

    /// The version, if it belongs to the project.
    pub async fn version_in(&self, project_id: &str, version_id: &str) -> Result<VersionRecord> {
        let store = self.store();
        store
            .version(version_id)
            .await?
            .filter(|v| v.project_id == project_id)
            .ok_or(Error::NotFound {
                what: Missing::Version,
                message: "Version not found".into(),
            })
    }

    /// Changes a version's message; the caller must be able to publish to the project.
    pub async fn update_version(
        &self,
        caller: Option<&Auth>,
        project_id: &str,
        version_id: &str,
        message: Option<String>,
    ) -> Result<VersionRecord> {
        let store = self.store();
        self.access(caller, project_id, Action::Publish).await?;
        let message = version_message(message)?;
        let mut version = self.version_in(project_id, version_id).await?;
        store
            .update_version_message(&version.id, message.as_deref())
            .await?;
        version.message = message;
        Ok(version)
    }

    /// Deletes versions of a project; every one must belong to it, or none is deleted.
    pub async fn delete_versions(
        &self,
        caller: Option<&Auth>,
        project_id: &str,
        version_ids: &[String],
    ) -> Result<()> {
        let store = self.store();
        super::paging::check_list(version_ids.len(), "versionIds")?;
        self.access(caller, project_id, Action::Publish).await?;
        for id in version_ids {
            self.version_in(project_id, id).await?;
        }
        store.delete_versions(project_id, version_ids).await?;
        Ok(())
    }

    /// The user a version or model names as author, if they still exist.
    pub async fn author(&self, id: Option<&str>) -> Result<Option<UserRecord>> {
        let store = self.store();
        match id {
            Some(id) => store.user_by_id(id).await,
            None => Ok(None),
        }
    }
}

fn text(value: Option<String>, max: usize, what: &str) -> Result<Option<String>> {
    match value {
        Some(v) if v.chars().count() > max => Err(Error::user_input(format!(
            "{what} is too long; it can be at most {max} characters."
        ))),
        other => Ok(other),
    }
}

/// A version's message, as `versionMutations.create` and `update` accept it.
pub fn version_message(message: Option<String>) -> Result<Option<String>> {
    text(message, MAX_DESCRIPTION_CHARS, "The message")
}

fn project_name(name: Option<String>) -> Result<String> {
    let name = name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "Untitled project".to_owned());
    Ok(text(Some(name), MAX_NAME_CHARS, "The project name")?.unwrap_or_default())
}

/// Project visibility as clients send it: `PRIVATE`, `PUBLIC`, or the legacy `UNLISTED` (public).
pub fn visibility(value: &str) -> Result<Visibility> {
    Visibility::parse(value).ok_or_else(|| {
        Error::user_input(format!(
            "Visibility {value} is not available on this server; use PRIVATE or PUBLIC."
        ))
    })
}

/// A new project, as sent.
#[derive(Debug, Default)]
pub struct NewProject {
    pub name: Option<String>,
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
    /// Users who become contributors as the project is created (the legacy `withContributors`).
    pub contributors: Vec<String>,
}

/// A change to a project; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ProjectChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
    pub allow_public_comments: Option<bool>,
}

fn last_owner() -> Error {
    Error::InvalidAccess(
        "A project needs an owner: make someone else an owner before removing or demoting the \
         last one."
            .into(),
    )
}

/// Checks a model name as Speckle's branch names: a path of non-empty segments.
fn model_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::user_input("A model needs a name."));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::user_input(format!(
            "The model name is too long; it can be at most {MAX_NAME_CHARS} characters."
        )));
    }
    if name.starts_with(['/', '#', '$'])
        || name.ends_with('/')
        || name.contains("//")
        || name.chars().any(char::is_control)
    {
        return Err(Error::user_input(
            "Model names cannot start with /, # or $, end with /, or contain // or control \
             characters.",
        ));
    }
    Ok(name.to_owned())
}

fn model_taken() -> Error {
    Error::user_input("A model with this name already exists in the project.")
}

fn model_not_found() -> Error {
    Error::NotFound {
        what: Missing::Model,
        message: "Model not found".into(),
    }
}

/// A version as sent (`versionMutations.create`, or legacy `commitCreate`).
#[derive(Debug, Default)]
pub struct NewVersion {
    pub object_id: String,
    pub message: Option<String>,
    pub source_application: Option<String>,
    pub total_children_count: Option<i64>,
    pub parents: Vec<String>,
}

/// How a version names its model: by id (current API) or by name (legacy `branchName`).
#[derive(Debug, Clone, Copy)]
pub enum ModelRef<'a> {
    Id(&'a str),
    Name(&'a str),
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tessera_proto::ScopeSet;

    use super::*;
    use crate::store::ResourceRule;

    fn project(visibility: Visibility) -> ProjectRecord {
        ProjectRecord {
            id: "p1".into(),
            name: "P".into(),
            description: None,
            visibility,
            allow_public_comments: false,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn auth(scopes: &[Scope]) -> Auth {
        Auth {
            user_id: "u1".into(),
            token_id: "t1".into(),
            role: ServerRole::User,
            scopes: scopes.iter().copied().collect::<ScopeSet>(),
            app_id: None,
            resources: None,
            client: Default::default(),
            issued_at: 0,
        }
    }

    #[test]
    fn roles_by_weight() {
        let a = auth(&[Scope::StreamsRead, Scope::StreamsWrite]);
        let private = project(Visibility::Private);
        use StreamRole::*;
        let ok = |role, action| check(Some(&a), &private, role, action).is_ok();
        assert!(ok(Some(Reviewer), Action::Read));
        assert!(!ok(Some(Reviewer), Action::CreateModel));
        assert!(ok(Some(Contributor), Action::Publish));
        assert!(!ok(Some(Contributor), Action::Delete));
        assert!(ok(Some(Owner), Action::ManageTeam));
        assert_eq!(
            check(Some(&a), &private, None, Action::Read),
            Err(Denial::NoAccess)
        );
        assert_eq!(
            check(Some(&a), &private, Some(Reviewer), Action::Update),
            Err(Denial::NotEnoughPermissions)
        );
    }

    #[test]
    fn public_projects_are_readable_by_anyone_but_not_loadable() {
        let public = project(Visibility::Public);
        assert!(check(None, &public, None, Action::Read).is_ok());
        assert_eq!(
            check(None, &public, None, Action::Load),
            Err(Denial::NoSession)
        );
        assert_eq!(
            check(None, &project(Visibility::Private), None, Action::Read),
            Err(Denial::NoSession)
        );
    }

    #[test]
    fn scopes_and_resource_limits_come_first() {
        let reader = auth(&[Scope::StreamsRead]);
        let private = project(Visibility::Private);
        assert_eq!(
            check(
                Some(&reader),
                &private,
                Some(StreamRole::Owner),
                Action::Update
            ),
            Err(Denial::MissingScope(Scope::StreamsWrite))
        );
        let mut limited = auth(&[Scope::StreamsRead, Scope::StreamsWrite]);
        limited.resources = Some(Arc::from(vec![ResourceRule {
            resource_type: "project".into(),
            resource_id: "other".into(),
        }]));
        assert_eq!(
            check(
                Some(&limited),
                &private,
                Some(StreamRole::Owner),
                Action::Read
            ),
            Err(Denial::ResourceLimited)
        );
        assert_eq!(check_create(Some(&limited)), Err(Denial::CreateLimited));
        assert_eq!(
            check_create(Some(&reader)),
            Err(Denial::MissingScope(Scope::StreamsWrite))
        );
        let mut archived = auth(&[Scope::StreamsRead]);
        archived.role = ServerRole::ArchivedUser;
        assert_eq!(
            check(
                Some(&archived),
                &private,
                Some(StreamRole::Owner),
                Action::Read
            ),
            Err(Denial::ServerRole)
        );
        assert!(
            check(
                Some(&archived),
                &project(Visibility::Public),
                None,
                Action::Read
            )
            .is_ok()
        );
    }

    #[test]
    fn model_names() {
        assert_eq!(model_name(" my/nested/model ").unwrap(), "my/nested/model");
        for bad in ["", "/x", "x/", "a//b", "#x", "$x"] {
            assert!(model_name(bad).is_err(), "{bad}");
        }
    }
}
