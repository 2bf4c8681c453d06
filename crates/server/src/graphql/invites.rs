//! Project invitations, as Speckle names them: `projectMutations.invites { create, batchCreate,
//! use, cancel }`, `projectInvite`, `Project.invitedTeam`, `activeUser.projectInvites`, and the
//! legacy `streamInviteCreate`, `streamInviteUse`, `streamInviteCancel`, `streamInvite`,
//! `streamInvites`. Every rule is in `domain::invites`.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use tessera_proto::{Scope, ServerRole};

use super::guards::{HasRole, HasScope};
use super::projects::Project;
use super::users::LimitedUser;
use super::{caller, tessera};
use crate::domain::auth::Auth;
use crate::domain::invites::{InviteInput, PendingInvite};
use crate::error::Error;

/// An invitation to a project, as the invitee or the project's team sees it.
#[derive(SimpleObject)]
pub struct PendingStreamCollaborator {
    id: String,
    invite_id: String,
    project_id: String,
    project_name: String,
    #[graphql(deprecation = "Use projectId instead")]
    stream_id: String,
    #[graphql(deprecation = "Use projectName instead")]
    stream_name: String,
    /// The invited user's name, or the email for someone without an account yet.
    title: String,
    role: String,
    invited_by: LimitedUser,
    /// Set only if the invited person has an account.
    user: Option<LimitedUser>,
    /// Only for the invited person themselves.
    token: Option<String>,
}

impl PendingStreamCollaborator {
    pub fn new(pending: &PendingInvite, caller: Option<&Auth>) -> PendingStreamCollaborator {
        let invite = &pending.invite;
        let is_invitee = caller.is_some_and(|auth| invite.user_id.as_ref() == Some(&auth.user_id));
        let invited_by = match &pending.inviter {
            Some(user) => LimitedUser::from(user),
            None => LimitedUser::former_user(invite.inviter_id.as_str()),
        };
        PendingStreamCollaborator {
            id: format!("invite:{}", invite.id),
            invite_id: invite.id.to_string(),
            project_id: pending.project.id.to_string(),
            project_name: pending.project.name.clone(),
            stream_id: pending.project.id.to_string(),
            stream_name: pending.project.name.clone(),
            title: pending.title(),
            role: invite.role.name().to_owned(),
            invited_by,
            user: pending.invited.as_ref().map(LimitedUser::from),
            token: is_invitee.then(|| invite.token.clone()),
        }
    }
}

pub fn listed(pending: &[PendingInvite], caller: Option<&Auth>) -> Vec<PendingStreamCollaborator> {
    pending
        .iter()
        .map(|p| PendingStreamCollaborator::new(p, caller))
        .collect()
}

#[derive(InputObject, Clone)]
pub struct ProjectInviteCreateInput {
    /// Either this or userId must be filled.
    email: Option<String>,
    /// Either this or email must be filled.
    user_id: Option<String>,
    /// Defaults to the contributor role, if not specified.
    role: Option<String>,
    /// Accepted for compatibility; Tessera invites to projects, not to the server.
    server_role: Option<String>,
}

impl From<ProjectInviteCreateInput> for InviteInput {
    fn from(i: ProjectInviteCreateInput) -> InviteInput {
        InviteInput {
            email: i.email,
            user_id: i.user_id,
            role: i.role,
        }
    }
}

#[derive(InputObject)]
pub struct ProjectInviteUseInput {
    project_id: async_graphql::ID,
    token: String,
    accept: bool,
}

#[derive(InputObject)]
pub struct StreamInviteCreateInput {
    email: Option<String>,
    user_id: Option<String>,
    stream_id: String,
    message: Option<String>,
    /// Defaults to the contributor role, if not specified.
    role: Option<String>,
    server_role: Option<String>,
}

pub struct ProjectInviteMutations;

#[Object]
impl ProjectInviteMutations {
    /// Invites a registered user (by id or email) or an email without an account to be a
    /// collaborator. Only the project's owners may.
    #[graphql(guard = "HasScope(Scope::UsersInvite)")]
    async fn create(
        &self,
        ctx: &Context<'_>,
        project_id: async_graphql::ID,
        input: ProjectInviteCreateInput,
    ) -> Result<Project> {
        let (access, _) = tessera(ctx)
            .invite(caller(ctx), &project_id, input.into())
            .await?;
        Ok(Project::new(access))
    }

    /// Sends several invitations; all are checked before any is stored.
    #[graphql(guard = "HasScope(Scope::UsersInvite)")]
    async fn batch_create(
        &self,
        ctx: &Context<'_>,
        project_id: async_graphql::ID,
        input: Vec<ProjectInviteCreateInput>,
    ) -> Result<Project> {
        let inputs = input.into_iter().map(InviteInput::from).collect();
        let (access, _) = tessera(ctx)
            .invite_all(caller(ctx), &project_id, inputs)
            .await?;
        Ok(Project::new(access))
    }

    /// Accepts or declines an invitation to the project.
    async fn r#use(&self, ctx: &Context<'_>, input: ProjectInviteUseInput) -> Result<bool> {
        let auth = caller(ctx).ok_or(Error::Unauthenticated)?;
        tessera(ctx)
            .use_invite(auth, &input.project_id, &input.token, input.accept)
            .await?;
        Ok(true)
    }

    /// Cancels a pending invitation. Only the project's owners may.
    #[graphql(guard = "HasScope(Scope::UsersInvite)")]
    async fn cancel(
        &self,
        ctx: &Context<'_>,
        project_id: async_graphql::ID,
        invite_id: String,
    ) -> Result<Project> {
        let access = tessera(ctx)
            .cancel_invite(caller(ctx), &project_id, &invite_id)
            .await?;
        Ok(Project::new(access))
    }
}

#[derive(Default)]
pub struct InviteQuery;

#[Object]
impl InviteQuery {
    /// The invitation to a project that `token` names, or without a token your own; `null` when
    /// there is none.
    #[graphql(guard = "HasScope(Scope::ProfileRead)")]
    async fn project_invite(
        &self,
        ctx: &Context<'_>,
        project_id: String,
        token: Option<String>,
    ) -> Result<Option<PendingStreamCollaborator>> {
        let found = tessera(ctx)
            .find_invite(caller(ctx), &project_id, token.as_deref())
            .await?;
        Ok(found.map(|p| PendingStreamCollaborator::new(&p, caller(ctx))))
    }

    #[graphql(
        guard = "HasScope(Scope::ProfileRead)",
        deprecation = "Part of the old API surface and will be removed in the future. Use Query.projectInvite instead."
    )]
    async fn stream_invite(
        &self,
        ctx: &Context<'_>,
        stream_id: String,
        token: Option<String>,
    ) -> Result<Option<PendingStreamCollaborator>> {
        self.project_invite(ctx, stream_id, token).await
    }

    /// Your pending invitations.
    #[graphql(
        guard = "HasScope(Scope::StreamsRead).and(HasRole(ServerRole::Guest))",
        deprecation = "Part of the old API surface and will be removed in the future. Use User.projectInvites instead."
    )]
    async fn stream_invites(&self, ctx: &Context<'_>) -> Result<Vec<PendingStreamCollaborator>> {
        let auth = caller(ctx).ok_or(Error::Unauthenticated)?;
        let pending = tessera(ctx).my_invites(auth).await?;
        Ok(listed(&pending, Some(auth)))
    }
}

#[derive(Default)]
pub struct InviteMutation;

#[Object]
impl InviteMutation {
    /// Invites a registered user or an email to a stream.
    #[graphql(
        guard = "HasScope(Scope::UsersInvite).and(HasRole(ServerRole::User))",
        deprecation = "Part of the old API surface and will be removed in the future. Use ProjectInviteMutations.create instead."
    )]
    async fn stream_invite_create(
        &self,
        ctx: &Context<'_>,
        input: StreamInviteCreateInput,
    ) -> Result<bool> {
        let _ = (&input.message, &input.server_role);
        let invite = InviteInput {
            email: input.email,
            user_id: input.user_id,
            role: input.role,
        };
        tessera(ctx)
            .invite(caller(ctx), &input.stream_id, invite)
            .await?;
        Ok(true)
    }

    /// Accepts or declines a stream invitation.
    #[graphql(
        guard = "HasScope(Scope::ProfileWrite).and(HasRole(ServerRole::Guest))",
        deprecation = "Part of the old API surface and will be removed in the future. Use ProjectInviteMutations.use instead."
    )]
    async fn stream_invite_use(
        &self,
        ctx: &Context<'_>,
        accept: bool,
        stream_id: String,
        token: String,
    ) -> Result<bool> {
        let auth = caller(ctx).ok_or(Error::Unauthenticated)?;
        tessera(ctx)
            .use_invite(auth, &stream_id, &token, accept)
            .await?;
        Ok(true)
    }

    /// Cancels a pending stream invitation. Only the stream's owners may.
    #[graphql(
        guard = "HasScope(Scope::UsersInvite).and(HasRole(ServerRole::Guest))",
        deprecation = "Part of the old API surface and will be removed in the future. Use ProjectInviteMutations.cancel instead."
    )]
    async fn stream_invite_cancel(
        &self,
        ctx: &Context<'_>,
        stream_id: String,
        invite_id: String,
    ) -> Result<bool> {
        tessera(ctx)
            .cancel_invite(caller(ctx), &stream_id, &invite_id)
            .await?;
        Ok(true)
    }
}
