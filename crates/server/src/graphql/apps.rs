//! Apps: `app`, `apps`, `authenticatedAsApp`, and the mutations to register, change, delete and
//! revoke them. `User.createdApps` and `User.authorizedApps` live with the user type.

use async_graphql::{ComplexObject, Context, InputObject, Object, Result, SimpleObject};
use tessera_proto::{Scope, ServerRole};

use super::guards::{HasRole, HasScope};
use super::scalars::DateTime;
use super::server_info::ScopeInfo;
use super::{caller, state, tessera};
use crate::domain::apps::AppInput;
use crate::error::Error;
use crate::model::AppRecord;
use tessera_core::Tessera;

/// What everyone but its author sees instead of an app's secret (Speckle's literal text).
pub const SECRET_PLACEHOLDER: &str = "App secrets are only revealed to their author 😉";

#[derive(SimpleObject, Clone)]
pub struct AppAuthor {
    name: String,
    id: String,
    avatar: Option<String>,
}

/// An app as listed (authorized apps, public apps).
#[derive(SimpleObject)]
pub struct ServerAppListItem {
    id: String,
    name: String,
    description: Option<String>,
    redirect_url: String,
    terms_and_conditions_link: Option<String>,
    trust_by_default: Option<bool>,
    logo: Option<String>,
    author: Option<AppAuthor>,
}

/// An app in full; its secret only for its author.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ServerApp {
    #[graphql(flatten)]
    item: ServerAppListItem,
    public: Option<bool>,
    /// Whether the token endpoint requires the app's secret (a Tessera extension).
    confidential: bool,
    created_at: DateTime,
    scopes: Vec<ScopeInfo>,
    #[graphql(skip)]
    secret: String,
    #[graphql(skip)]
    author_id: Option<String>,
}

#[ComplexObject]
impl ServerApp {
    async fn secret(&self, ctx: &Context<'_>) -> String {
        match (caller(ctx), &self.author_id) {
            (Some(auth), Some(author)) if &auth.user_id == author => self.secret.clone(),
            _ => SECRET_PLACEHOLDER.to_owned(),
        }
    }
}

pub async fn list_item(tessera: &Tessera, app: &AppRecord) -> Result<ServerAppListItem, Error> {
    let author = match &app.author_id {
        Some(id) => tessera.user(id).await?.map(|u| AppAuthor {
            name: u.name,
            id: u.id.into(),
            avatar: u.avatar,
        }),
        None => None,
    };
    Ok(ServerAppListItem {
        id: app.id.to_string(),
        name: app.name.clone(),
        description: app.description.clone(),
        redirect_url: app.redirect_url.clone(),
        terms_and_conditions_link: app.terms_and_conditions_link.clone(),
        trust_by_default: Some(app.trust_by_default),
        logo: app.logo.clone(),
        author,
    })
}

pub async fn server_app(tessera: &Tessera, app: AppRecord) -> Result<ServerApp, Error> {
    Ok(ServerApp {
        item: list_item(tessera, &app).await?,
        public: Some(app.public),
        confidential: app.confidential,
        created_at: DateTime(app.created_at),
        scopes: app.scopes.iter().map(ScopeInfo::from).collect(),
        secret: app.secret,
        author_id: app.author_id.map(String::from),
    })
}

#[derive(Default)]
pub struct AppQuery;

#[Object]
impl AppQuery {
    /// An app by id; `null` if there is none.
    async fn app(&self, ctx: &Context<'_>, id: String) -> Result<Option<ServerApp>> {
        match tessera(ctx).app(&id).await? {
            Some(app) => Ok(Some(server_app(tessera(ctx), app).await?)),
            None => Ok(None),
        }
    }

    /// The public apps.
    #[graphql(
        guard = "HasScope(Scope::AppsRead)",
        deprecation = "Not needed by clients"
    )]
    async fn apps(&self, ctx: &Context<'_>) -> Result<Vec<Option<ServerAppListItem>>> {
        let mut items = Vec::new();
        for app in tessera(ctx).public_apps().await? {
            items.push(Some(list_item(tessera(ctx), &app).await?));
        }
        Ok(items)
    }

    /// The app the calling token was issued to; `null` for a personal access token.
    #[graphql(guard = "HasScope(Scope::AppsRead).and(HasRole(ServerRole::User))")]
    async fn authenticated_as_app(&self, ctx: &Context<'_>) -> Result<Option<ServerAppListItem>> {
        let Some(app_id) = caller(ctx).and_then(|a| a.app_id.as_deref()) else {
            return Ok(None);
        };
        match tessera(ctx).app(app_id).await? {
            Some(app) => Ok(Some(list_item(tessera(ctx), &app).await?)),
            None => Ok(None),
        }
    }
}

#[derive(InputObject)]
pub struct AppCreateInput {
    name: String,
    description: String,
    terms_and_conditions_link: Option<String>,
    logo: Option<String>,
    public: Option<bool>,
    /// A confidential client: a server-side app that keeps its secret, which the token endpoint
    /// then requires. Public clients (the default: browser and desktop apps) prove their codes
    /// with PKCE alone. A Tessera extension.
    confidential: Option<bool>,
    /// Where the browser is sent back with `?access_code=…`: an https URL, an http URL to this
    /// machine, or a custom scheme such as `speckle://account`.
    redirect_url: String,
    scopes: Vec<Option<String>>,
}

#[derive(InputObject)]
pub struct AppUpdateInput {
    id: String,
    #[graphql(flatten)]
    app: AppCreateInput,
}

impl From<AppCreateInput> for AppInput {
    fn from(app: AppCreateInput) -> AppInput {
        AppInput {
            name: app.name,
            description: Some(app.description),
            terms_and_conditions_link: app.terms_and_conditions_link,
            logo: app.logo,
            public: app.public,
            confidential: app.confidential,
            redirect_url: app.redirect_url,
            scopes: app.scopes.into_iter().flatten().collect(),
        }
    }
}

#[derive(Default)]
pub struct AppMutation;

#[Object]
impl AppMutation {
    /// Registers an app and returns its id. Its secret is readable by you through `app(id)`.
    #[graphql(guard = "HasScope(Scope::AppsWrite).and(HasRole(ServerRole::User))")]
    async fn app_create(&self, ctx: &Context<'_>, app: AppCreateInput) -> Result<String> {
        let auth = caller(ctx).ok_or(Error::Unauthenticated)?;
        let state = state(ctx);
        let created = state.core.create_app(auth, app.into()).await?;
        Ok(created.id.into())
    }

    /// Changes an app. Everyone who authorized it must authorize it again.
    #[graphql(guard = "HasScope(Scope::AppsWrite).and(HasRole(ServerRole::User))")]
    async fn app_update(&self, ctx: &Context<'_>, app: AppUpdateInput) -> Result<bool> {
        let auth = caller(ctx).ok_or(Error::Unauthenticated)?;
        let state = state(ctx);
        state.core.update_app(auth, &app.id, app.app.into()).await?;
        Ok(true)
    }

    /// Deletes an app and every token issued for it.
    #[graphql(guard = "HasScope(Scope::AppsWrite).and(HasRole(ServerRole::User))")]
    async fn app_delete(&self, ctx: &Context<'_>, app_id: String) -> Result<bool> {
        let auth = caller(ctx).ok_or(Error::Unauthenticated)?;
        let state = state(ctx);
        state.core.delete_app(auth, &app_id).await?;
        Ok(true)
    }

    /// Gives an app a new secret and returns it; the old secret stops working at once.
    #[graphql(guard = "HasScope(Scope::AppsWrite).and(HasRole(ServerRole::User))")]
    async fn app_regenerate_secret(&self, ctx: &Context<'_>, app_id: String) -> Result<String> {
        let auth = caller(ctx).ok_or(Error::Unauthenticated)?;
        Ok(state(ctx).core.regenerate_secret(auth, &app_id).await?)
    }

    /// Withdraws your authorization of an app: its tokens for you stop working.
    #[graphql(guard = "HasScope(Scope::AppsWrite).and(HasRole(ServerRole::Guest))")]
    async fn app_revoke_access(&self, ctx: &Context<'_>, app_id: String) -> Result<Option<bool>> {
        let auth = caller(ctx).ok_or(Error::Unauthenticated)?;
        let state = state(ctx);
        Ok(Some(state.core.revoke_access(auth, &app_id).await?))
    }
}
