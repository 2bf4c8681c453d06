//! Registered apps. The first-party apps are seeded at start-up; the web app `spklwebapp` is the
//! one local sign-in issues codes for.

use tessera_proto::ScopeSet;

use crate::clock::Millis;
use crate::error::Result;
use crate::store::{AppRecord, Store};

/// The Speckle web app: local login and registration issue access codes for it.
pub const WEB_APP_ID: &str = "spklwebapp";

/// The first-party apps, with the server's public URL filled in where a redirect needs it.
pub fn default_apps(public_url: &str, now: Millis) -> Vec<AppRecord> {
    vec![AppRecord {
        id: WEB_APP_ID.into(),
        secret: WEB_APP_ID.into(),
        name: "Speckle Web Manager".into(),
        description: Some("The Speckle web application.".into()),
        trust_by_default: true,
        public: true,
        redirect_url: public_url.to_owned(),
        scopes: ScopeSet::registered(),
        author_id: None,
        created_at: now,
    }]
}

/// Inserts the first-party apps, or brings their names, flags, redirects and scopes up to date.
pub async fn seed_default_apps(store: &dyn Store, public_url: &str, now: Millis) -> Result<()> {
    for app in default_apps(public_url, now) {
        store.upsert_default_app(&app).await?;
    }
    Ok(())
}
