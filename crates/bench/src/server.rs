//! The server under test: Tessera started in this process on a runtime of its own (embedded
//! SQLite in a fresh directory, or a PostgreSQL URL), or any Speckle-compatible server named with
//! `--against`. Seeding goes through the public HTTP API, as a client would.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tessera_server::Application;
use tessera_server::clock::SystemClock;
use tessera_server::config::{AccessLog, Config};

/// A server to measure, and a signed-in user on it.
pub struct Target {
    pub url: String,
    /// An all-scope token of the seeded user (or the one given with `--against`).
    pub token: String,
    /// Whether it is a Tessera this process started (then every workload can run).
    pub ours: bool,
    running: Option<Running>,
}

struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The data folder, when this server made it (else the caller keeps it).
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The email and password of the seeded user.
pub const EMAIL_DOMAIN: &str = "bench.example.org";
pub const PASSWORD: &str = "a bench password, long enough";

/// The bench's HTTP client. It lets an idle connection go after half the time the server keeps
/// one open (`HEADER_READ_TIMEOUT`), so it never sends a request down a connection the server is
/// closing at that moment (a failed request that would be the client's doing, not the server's).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(tessera_server::http::serve::HEADER_READ_TIMEOUT / 2)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

impl Target {
    /// Starts Tessera with rate limits off (a load generator is one address), on `workers`
    /// runtime threads, and signs up a user.
    pub async fn start(database_url: Option<&str>, workers: usize) -> Result<Target> {
        let dir = tempfile::tempdir()?;
        let (url, mut running) = spawn(database_url, dir.path(), workers).await?;
        running._dir = Some(dir);
        let token = sign_up(&url, "bench").await?.token;
        Ok(Target {
            url,
            token,
            ours: true,
            running: Some(running),
        })
    }

    /// Starts Tessera on the embedded SQLite file in `dir` (made if missing), which outlives
    /// this server: it can be stopped, the file changed, and started again on the same data.
    /// Its caller is `token` (pass "" until one is signed up).
    pub async fn start_in(dir: &Path, workers: usize, token: String) -> Result<Target> {
        let (url, running) = spawn(None, dir, workers).await?;
        Ok(Target {
            url,
            token,
            ours: true,
            running: Some(running),
        })
    }

    /// The database URL of the embedded SQLite file in `dir`.
    pub fn sqlite_url(dir: &Path) -> String {
        format!("sqlite://{}", dir.join("tessera.db").display())
    }

    /// Another Tessera on the same database (PostgreSQL: a second replica), sharing this one's
    /// user and token.
    pub async fn replica(&self, database_url: &str, workers: usize) -> Result<Target> {
        let dir = tempfile::tempdir()?;
        let (url, mut running) = spawn(Some(database_url), dir.path(), workers).await?;
        running._dir = Some(dir);
        Ok(Target {
            url,
            token: self.token.clone(),
            ours: true,
            running: Some(running),
        })
    }

    /// A server started elsewhere.
    pub fn against(url: &str, token: String) -> Target {
        Target {
            url: url.trim_end_matches('/').to_owned(),
            token,
            ours: false,
            running: None,
        }
    }

    /// Stops the server this process started (a no-op for `--against`).
    pub fn stop(&mut self) {
        self.running.take();
    }
}

/// Starts a Tessera on its own thread and runtime, with `dir` as its data folder (and its
/// SQLite file unless `database_url` names another database); its URL.
async fn spawn(
    database_url: Option<&str>,
    dir: &Path,
    workers: usize,
) -> Result<(String, Running)> {
    let url = match database_url {
        Some(url) => url.to_owned(),
        None => Target::sqlite_url(dir),
    };
    let mut config = Config::for_database(&url);
    config.data_dir = dir.to_owned();
    config.rate_limits.enabled = false;
    config.access_log = AccessLog::Sampled;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready, address) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("tessera".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers.max(1))
                .thread_name("tessera-worker")
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready.send(Err(anyhow!("runtime: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                match Application::build(config, Arc::new(SystemClock)).await {
                    Ok(app) => {
                        let _ = ready.send(Ok(app.address()));
                        let _ = app
                            .run_until(async move {
                                let _ = stopped.await;
                            })
                            .await;
                    }
                    Err(e) => {
                        let _ = ready.send(Err(anyhow!("Tessera did not start: {e}")));
                    }
                }
            });
        })?;
    let address = address.await.context("the server thread ended")??;
    Ok((
        format!("http://{address}"),
        Running {
            stop: Some(stop),
            thread: Some(thread),
            _dir: None,
        },
    ))
}

/// A GraphQL call with `token`; its `data`, or the refusal as an error.
pub async fn graphql(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> Result<Value> {
    let body: Value = http
        .post(format!("{url}/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await?
        .json()
        .await?;
    if !body["errors"].is_null() {
        bail!("GraphQL refused: {body}");
    }
    Ok(body["data"].clone())
}

/// A user signed up through `/auth/local/register`, and its web token (all scopes), exchanged
/// as Speckle's web app does.
pub struct SignedUp {
    pub email: String,
    pub token: String,
}

fn code_in(location: &str) -> Result<String> {
    location
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("access_code="))
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no access_code in {location}"))
}

pub async fn sign_up(url: &str, who: &str) -> Result<SignedUp> {
    let http = http();
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let email = format!("{who}.{unique}@{EMAIL_DOMAIN}");
    let res = http
        .post(format!("{url}/auth/local/register?challenge=bench"))
        .json(&json!({"email": email, "password": PASSWORD, "name": "Bench User"}))
        .send()
        .await?;
    let Some(location) = res.headers().get("location") else {
        bail!("sign-up answered {} without a redirect", res.status());
    };
    let code = code_in(location.to_str()?)?;
    let token = exchange(&http, url, &App::web(), &code).await?.0;
    Ok(SignedUp { email, token })
}

/// An app's credentials.
#[derive(Clone)]
pub struct App {
    pub id: String,
    pub secret: String,
}

impl App {
    /// Speckle's own web app (its secret is public, as in Speckle).
    pub fn web() -> App {
        App {
            id: "spklwebapp".into(),
            secret: "spklwebapp".into(),
        }
    }
}

/// Registers a third-party app (as its author, with `token`), with the scopes of a typical
/// connector.
pub async fn create_app(url: &str, token: &str) -> Result<App> {
    let http = http();
    let created = graphql(
        &http,
        url,
        token,
        "mutation($app: AppCreateInput!) { appCreate(app: $app) }",
        json!({"app": {"name": "Bench Connector", "description": "made by tessera-bench",
                       "redirectUrl": "http://127.0.0.1:29363/callback",
                       "scopes": ["profile:read", "streams:read"]}}),
    )
    .await?;
    let id = created["appCreate"]
        .as_str()
        .ok_or_else(|| anyhow!("appCreate answered {created}"))?
        .to_owned();
    let read = graphql(
        &http,
        url,
        token,
        "query($id: String!) { app(id: $id) { secret } }",
        json!({"id": id}),
    )
    .await?;
    let secret = read["app"]["secret"]
        .as_str()
        .ok_or_else(|| anyhow!("app(id) answered {read}"))?
        .to_owned();
    Ok(App { id, secret })
}

/// `POST /auth/token` for `app` with `grant` (a code or a refresh token): the pair it answers.
async fn token_pair(
    http: &reqwest::Client,
    url: &str,
    app: &App,
    grant: Value,
) -> Result<(String, String)> {
    let mut request = json!({"appId": app.id, "appSecret": app.secret});
    if let (Some(request), Value::Object(grant)) = (request.as_object_mut(), grant) {
        request.extend(grant);
    }
    let body: Value = http
        .post(format!("{url}/auth/token"))
        .json(&request)
        .send()
        .await?
        .json()
        .await?;
    match (body["token"].as_str(), body["refreshToken"].as_str()) {
        (Some(t), Some(r)) => Ok((t.to_owned(), r.to_owned())),
        _ => bail!("/auth/token answered {body}"),
    }
}

/// Exchanges an access code of `app`: (access token, refresh token).
pub async fn exchange(
    http: &reqwest::Client,
    url: &str,
    app: &App,
    code: &str,
) -> Result<(String, String)> {
    token_pair(
        http,
        url,
        app,
        json!({"accessCode": code, "challenge": "bench"}),
    )
    .await
}

/// An access code for `app`, asked for with a token (Speckle's `/auth/accesscode`).
pub async fn access_code(
    http: &reqwest::Client,
    url: &str,
    app: &App,
    token: &str,
) -> Result<String> {
    let res = http
        .get(format!(
            "{url}/auth/accesscode?appId={}&challenge=bench&token={token}",
            app.id
        ))
        .send()
        .await?;
    let Some(location) = res.headers().get("location").cloned() else {
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        bail!(
            "/auth/accesscode answered {status}: {}",
            body.chars().take(300).collect::<String>()
        );
    };
    code_in(location.to_str()?)
}

/// Renews a pair of `app` at `/auth/token` with the refresh token: the new pair.
pub async fn refresh(
    http: &reqwest::Client,
    url: &str,
    app: &App,
    refresh: &str,
) -> Result<(String, String)> {
    token_pair(http, url, app, json!({"refreshToken": refresh})).await
}
