//! Sharing a project as Speckle does it: an owner invites a registered user (by id or email) or
//! an email that has no account yet, with the role they will get; the invitee accepts or
//! declines with the invitation's token; an owner may cancel it. An invitation is used once. An
//! email invited before it has an account gets the invitation when it registers (it stays
//! pending: registering accepts nothing). Inviting the same person again replaces the earlier
//! invitation. Messages and codes are Speckle's.

use tessera_proto::{ServerRole, StreamRole};

use super::auth::Auth;
use super::projects::{Access, Action};
use super::random_hex;
use super::users::normalize_email;
use crate::error::{Error, InviteProblem, Result};
use crate::model::{Acceptance, InviteRecord, ProjectRecord, UserRecord};
use crate::service::Tessera;

/// At most this many invitations in one `batchCreate` (Speckle's limit for non-admins).
pub const MAX_BATCH: usize = 200;
/// Emails are at most 254 characters.
const MAX_EMAIL_CHARS: usize = 254;

/// An invitation email to send.
#[derive(Debug, Clone)]
pub struct Invitation {
    /// The address it goes to.
    pub to: String,
    pub inviter: String,
    pub project: String,
    pub role: String,
    pub token: String,
    /// Whether the address belongs to an account (which then answers on its account page).
    pub registered: bool,
}

/// Sends invitation emails (the server's SMTP mailer). Without one, invitations show on the
/// account pages only.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync {
    async fn send_invitation(&self, invitation: &Invitation) -> Result<()>;
}

/// `ProjectInviteCreateInput` as sent.
#[derive(Debug, Clone, Default)]
pub struct InviteInput {
    pub email: Option<String>,
    pub user_id: Option<String>,
    pub role: Option<String>,
}

fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::invite(InviteProblem::Create, message)
}

/// An invitation as an invitee or an owner sees it, with the people it names.
#[derive(Debug, Clone)]
pub struct PendingInvite {
    pub invite: InviteRecord,
    pub project: ProjectRecord,
    pub invited: Option<UserRecord>,
    pub inviter: Option<UserRecord>,
}

impl PendingInvite {
    /// Speckle's `title`: the invitee's name, `#<id>` for an account that is gone, or the email
    /// for someone without an account.
    pub fn title(&self) -> String {
        match (&self.invited, &self.invite.user_id, &self.invite.email) {
            (Some(user), _, _) => user.name.clone(),
            (None, Some(id), _) => format!("#{id}"),
            (None, None, Some(email)) => email.clone(),
            (None, None, None) => String::new(),
        }
    }
}

impl Tessera {
    /// Invites someone to a project; only its owners may. Returns the project as the caller now
    /// sees it, and the invitation (whose token the caller passes on when no email is sent).
    pub async fn invite(
        &self,
        caller: Option<&Auth>,
        project_id: &str,
        input: InviteInput,
    ) -> Result<(Access, InviteRecord)> {
        let (access, mut created) = self.invite_all(caller, project_id, vec![input]).await?;
        let invite = created
            .pop()
            .ok_or_else(|| Error::Internal("no invitation was created".into()))?;
        Ok((access, invite))
    }

    /// Invites several people at once: every invitation is checked before any is stored.
    pub async fn invite_all(
        &self,
        caller: Option<&Auth>,
        project_id: &str,
        inputs: Vec<InviteInput>,
    ) -> Result<(Access, Vec<InviteRecord>)> {
        let access = self.access(caller, project_id, Action::ManageTeam).await?;
        let auth = caller.ok_or(Error::Unauthenticated)?;
        if inputs.len() > MAX_BATCH && auth.role != ServerRole::Admin {
            return Err(Error::user_input(format!(
                "Maximum {MAX_BATCH} invites can be sent at once by non admins"
            )));
        }
        let now = self.now();
        let mut checked = Vec::with_capacity(inputs.len());
        for input in inputs {
            checked.push(
                self.checked_invite(auth, &access.project, input, now)
                    .await?,
            );
        }
        for (invite, _) in &checked {
            self.store().create_invite(invite).await?;
        }
        if let Some(mailer) = self.mailer() {
            let inviter = match self.store().user_by_id(&auth.user_id).await? {
                Some(user) => user.name,
                None => "Someone".to_owned(),
            };
            for (invite, to) in &checked {
                let email = Invitation {
                    to: to.clone(),
                    inviter: inviter.clone(),
                    project: access.project.name.clone(),
                    role: invite.role.name().trim_start_matches("stream:").to_owned(),
                    token: invite.token.clone(),
                    registered: invite.user_id.is_some(),
                };
                // The invitation stands even if the email does not go out: it is on the
                // invitee's account page, and the inviter's page shows its link.
                if let Err(e) = mailer.send_invitation(&email).await {
                    tracing::warn!(error = %e, invite = %invite.id, "invitation email not sent");
                }
            }
        }
        let invites = checked.into_iter().map(|(invite, _)| invite).collect();
        Ok((access, invites))
    }

    async fn checked_invite(
        &self,
        auth: &Auth,
        project: &ProjectRecord,
        input: InviteInput,
        now: i64,
    ) -> Result<(InviteRecord, String)> {
        let store = self.store();
        let role = match input.role.as_deref() {
            None | Some("") => StreamRole::Contributor,
            Some(name) => StreamRole::from_name(&name.to_lowercase())
                .ok_or_else(|| invalid("Unexpected project invite role"))?,
        };
        let email = input.email.filter(|e| !e.trim().is_empty());
        let user_id = input.user_id.filter(|u| !u.trim().is_empty());
        let (user, email) = match (user_id, email) {
            (Some(id), _) => {
                let user = store
                    .user_by_id(&id)
                    .await?
                    .ok_or_else(|| invalid("Attempting to invite an invalid user"))?;
                (Some(user), None)
            }
            (None, Some(email)) => {
                if email.chars().count() > MAX_EMAIL_CHARS {
                    return Err(invalid("The email address is too long."));
                }
                let normal = normalize_email(&email)
                    .filter(|e| super::users::looks_like_email(e))
                    .ok_or_else(|| invalid("Invalid e-mail address"))?;
                match store.user_credentials(&normal).await? {
                    Some((user, _)) => (Some(user), None),
                    None => (None, Some(normal)),
                }
            }
            (None, None) => {
                return Err(invalid("Either email or userId must be specified"));
            }
        };
        if let Some(user) = &user {
            if role == StreamRole::Owner && user.role == ServerRole::Guest {
                return Err(invalid("Guest users cannot be owners of projects"));
            }
            // Yourself included: an owner is a collaborator already.
            if user.id == auth.user_id || store.project_role(&project.id, &user.id).await?.is_some()
            {
                return Err(invalid(
                    "The target user is already a collaborator of the specified project",
                ));
            }
            if user.role == ServerRole::ArchivedUser {
                return Err(invalid("Attempting to invite an invalid user"));
            }
        }
        let to = match (&user, &email) {
            (Some(user), _) => user.email.clone(),
            (None, Some(email)) => email.clone(),
            (None, None) => String::new(),
        };
        let invite = InviteRecord {
            id: random_hex(20)?.into(),
            project_id: project.id.clone(),
            user_id: user.map(|u| u.id),
            email,
            role,
            token: random_hex(50)?,
            inviter_id: auth.user_id.clone(),
            created_at: now,
        };
        Ok((invite, to))
    }

    /// Speckle's `projectInvite`: the invitation to the project for the caller (when signed in)
    /// and with the token (when given); `None` without either, or when none matches.
    pub async fn find_invite(
        &self,
        caller: Option<&Auth>,
        project_id: &str,
        token: Option<&str>,
    ) -> Result<Option<PendingInvite>> {
        let store = self.store();
        let token = token.filter(|t| !t.is_empty());
        let candidates = match (caller, token) {
            (None, None) => return Ok(None),
            (_, Some(token)) => store
                .invite_by_token(project_id, token)
                .await?
                .into_iter()
                .collect(),
            (Some(auth), None) => store.user_invites(&auth.user_id).await?,
        };
        let found = candidates.into_iter().find(|invite| {
            invite.project_id == project_id
                && caller.is_none_or(|auth| invite.user_id.as_ref() == Some(&auth.user_id))
        });
        match found {
            Some(invite) => self.pending(invite).await,
            None => Ok(None),
        }
    }

    /// The caller's pending invitations.
    pub async fn my_invites(&self, caller: &Auth) -> Result<Vec<PendingInvite>> {
        let invites = self.store().user_invites(&caller.user_id).await?;
        self.pending_all(invites).await
    }

    /// The pending invitations the caller sent, to pass on where no email is sent.
    pub async fn sent_invites(&self, caller: &Auth) -> Result<Vec<PendingInvite>> {
        let invites = self.store().invites_sent_by(&caller.user_id).await?;
        self.pending_all(invites).await
    }

    /// The pending invitations of a project, for its collaborators.
    pub async fn invited_team(
        &self,
        caller: Option<&Auth>,
        project_id: &str,
    ) -> Result<Vec<PendingInvite>> {
        let access = self.access(caller, project_id, Action::Read).await?;
        if !access
            .role
            .is_some_and(|r| r.satisfies(StreamRole::Contributor))
        {
            return Err(Error::forbidden(
                "You do not have enough permissions in the project to perform this action",
            ));
        }
        let invites = self.store().project_invites(project_id).await?;
        self.pending_all(invites).await
    }

    /// Each invitation with the people it names (those of deleted projects are left out).
    async fn pending_all(&self, invites: Vec<InviteRecord>) -> Result<Vec<PendingInvite>> {
        let mut pending = Vec::with_capacity(invites.len());
        for invite in invites {
            if let Some(p) = self.pending(invite).await? {
                pending.push(p);
            }
        }
        Ok(pending)
    }

    async fn pending(&self, invite: InviteRecord) -> Result<Option<PendingInvite>> {
        let store = self.store();
        let Some(project) = store.project(&invite.project_id).await? else {
            return Ok(None);
        };
        let invited = match &invite.user_id {
            Some(id) => store.user_by_id(id).await?,
            None => None,
        };
        let inviter = store.user_by_id(&invite.inviter_id).await?;
        Ok(Some(PendingInvite {
            invite,
            project,
            invited,
            inviter,
        }))
    }

    /// Accepts or declines the caller's invitation, found by its token (as in Speckle, the
    /// project named beside it is not needed to find it). Either way it is used up.
    pub async fn use_invite(
        &self,
        caller: &Auth,
        _project_id: &str,
        token: &str,
        accept: bool,
    ) -> Result<()> {
        let store = self.store();
        let invite = store.invite_by_any_token(token).await?.ok_or_else(|| {
            Error::invite(
                InviteProblem::NotFound,
                "Attempted to finalize nonexistant invite",
            )
        })?;
        match &invite.user_id {
            None => {
                return Err(Error::invite(
                    InviteProblem::OtherEmail,
                    "Attempted to finalize an invite for a mismatched e-mail address",
                ));
            }
            Some(id) if *id != caller.user_id => {
                return Err(Error::invite(
                    InviteProblem::Finalizing,
                    "Attempted to finalize mismatched invite",
                ));
            }
            Some(_) => {}
        }
        if !accept {
            store.delete_invite(&invite.id).await?;
            return Ok(());
        }
        let finalizing = |message: &'static str| Error::invite(InviteProblem::Finalizing, message);
        if store
            .project_role(&invite.project_id, &caller.user_id)
            .await?
            .is_some()
        {
            return Err(finalizing(
                "Attempting to finalize invite to a project that the user already has access to",
            ));
        }
        if store
            .project_role(&invite.project_id, &invite.inviter_id)
            .await?
            != Some(StreamRole::Owner)
        {
            return Err(finalizing(
                "Failed to process invite: Original inviter no longer has the rights to invite you \
                 to this project",
            ));
        }
        match store
            .accept_invite(&invite, &caller.user_id, self.now())
            .await?
        {
            Acceptance::Accepted => Ok(()),
            Acceptance::Gone => Err(Error::invite(
                InviteProblem::NotFound,
                "Attempted to finalize nonexistant invite",
            )),
        }
    }

    /// Cancels a pending invitation; only the project's owners may.
    pub async fn cancel_invite(
        &self,
        caller: Option<&Auth>,
        project_id: &str,
        invite_id: &str,
    ) -> Result<Access> {
        let access = self.access(caller, project_id, Action::ManageTeam).await?;
        let store = self.store();
        let invite = store.invite_by_id(invite_id).await?.ok_or_else(|| {
            Error::invite(
                InviteProblem::NotFound,
                "Attempted to cancel nonexistant invite",
            )
        })?;
        if invite.project_id != project_id {
            return Err(Error::invite(
                InviteProblem::Finalizing,
                "Attempting to cancel invite to a project that the user does not own",
            ));
        }
        store.delete_invite(invite_id).await?;
        Ok(access)
    }
}
