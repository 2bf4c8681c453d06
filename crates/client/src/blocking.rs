//! The SDK for scripts without an async runtime: a [`SpeckleClient`] with its own small
//! runtime, whose calls block until the server answers.
//!
//! ```no_run
//! # fn run() -> Result<(), tessera_client::ClientError> {
//! let client = tessera_client::blocking::Client::from_env()?;
//! let me = client.call(|c| c.active_user().get())?;
//! # Ok(()) }
//! ```

use std::future::Future;

use crate::{ClientError, SpeckleClient, User};

/// A blocking client. Do not use it from inside an async runtime (use [`SpeckleClient`] there).
pub struct Client {
    runtime: tokio::runtime::Runtime,
    inner: SpeckleClient,
}

fn runtime() -> Result<tokio::runtime::Runtime, ClientError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::Usage(format!("cannot start the client's runtime: {e}")))
}

impl Client {
    /// Wraps a built (not yet authenticated) client.
    pub fn new(inner: SpeckleClient) -> Result<Client, ClientError> {
        Ok(Client {
            runtime: runtime()?,
            inner,
        })
    }

    /// [`SpeckleClient::from_env`], blocking.
    pub fn from_env() -> Result<Client, ClientError> {
        let runtime = runtime()?;
        let inner = runtime.block_on(SpeckleClient::from_env())?;
        Ok(Client { runtime, inner })
    }

    /// [`SpeckleClient::authenticate_with_token`], blocking.
    pub fn authenticate_with_token(&mut self, token: &str) -> Result<Option<User>, ClientError> {
        self.runtime
            .block_on(self.inner.authenticate_with_token(token))
    }

    /// Runs any call of the async client and waits for it, e.g.
    /// `client.call(|c| c.tokens().list())`.
    pub fn call<'a, F, T>(&'a self, f: impl FnOnce(&'a SpeckleClient) -> F) -> T
    where
        F: Future<Output = T> + 'a,
    {
        self.runtime.block_on(f(&self.inner))
    }

    /// The async client underneath.
    pub fn inner(&self) -> &SpeckleClient {
        &self.inner
    }
}
