//! Invitation emails over SMTP, when `[smtp]` is configured (docs/ARCHITECTURE.md, "Email").
//! `lettre` is the maintained Rust SMTP client; it speaks STARTTLS and implicit TLS through rustls,
//! so no system TLS library is needed. Without `[smtp]`, nothing is sent: invitations show on the
//! account pages instead.

use async_trait::async_trait;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tessera_core::domain::invites::{Invitation, Mailer};
use tessera_core::error::{Error, Result};

use crate::config::{SmtpSettings, SmtpTls};

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    public_url: String,
    server_name: String,
}

impl SmtpMailer {
    pub fn new(settings: &SmtpSettings, public_url: &str, server_name: &str) -> Result<SmtpMailer> {
        let startup =
            |what: &str, e: &dyn std::fmt::Display| Error::Startup(format!("smtp: {what}: {e}"));
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| startup("`from` is not an email address", &e))?;
        let builder = match settings.tls {
            SmtpTls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
                    .map_err(|e| startup("cannot use the host", &e))?
            }
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)
                .map_err(|e| startup("cannot use the host", &e))?,
            SmtpTls::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            }
        };
        let mut builder = builder
            .port(settings.port())
            .timeout(Some(std::time::Duration::from_secs(10)));
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            from,
            public_url: public_url.to_owned(),
            server_name: server_name.to_owned(),
        })
    }

    /// Where the invitee answers: their account page, or the registration page carrying the
    /// invitation for an email without an account.
    fn link(&self, invitation: &Invitation) -> String {
        if invitation.registered {
            format!("{}/", self.public_url)
        } else {
            format!(
                "{}/authn/register?token={}",
                self.public_url, invitation.token
            )
        }
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send_invitation(&self, invitation: &Invitation) -> Result<()> {
        let to: Mailbox = invitation
            .to
            .parse()
            .map_err(|e| Error::Internal(format!("cannot address an invitation: {e}")))?;
        let body = format!(
            "{inviter} invited you to collaborate on \"{project}\" on {server}, as {role}.\n\n\
             Accept or decline the invitation here:\n{link}\n\n\
             If you did not expect this invitation, you can ignore this email.\n",
            inviter = invitation.inviter,
            project = invitation.project,
            server = self.server_name,
            role = invitation.role,
            link = self.link(invitation),
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!(
                "{} invited you to {} on {}",
                invitation.inviter, invitation.project, self.server_name
            ))
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| Error::Internal(format!("cannot build an invitation email: {e}")))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| Error::Internal(format!("cannot send an invitation email: {e}")))
    }
}
