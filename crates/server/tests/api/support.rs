//! The test kit: each test starts the real server on port 0 with a fresh database (a temporary
//! SQLite file, or a fresh PostgreSQL database when `TESSERA_TEST_DATABASE_URL` is set) and talks
//! HTTP to it. Time is a `ManualClock` the test moves.

use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sqlx::Connection;
use tessera_server::clock::{Clock, ManualClock};
use tessera_server::config::Config;
use tessera_server::{AppState, Application};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each listed test function on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use $crate::support::{spawn_app, Backend};

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    if let Some(app) = spawn_app(Backend::Sqlite).await {
                        super::$name(app).await
                    }
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = spawn_app(Backend::Postgres).await {
                        super::$name(app).await
                    }
                }
            }
        )*
    };
}

/// A dependency outside cargo is missing: skip with a reason, unless CI demands everything.
pub fn missing(what: &str) -> Option<()> {
    if std::env::var("TESSERA_TEST_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("{what} (TESSERA_TEST_REQUIRE_ALL=1, so this is a failure, not a skip)");
    }
    eprintln!("SKIPPED: {what}");
    None
}

/// A database that disappears with the test.
enum TestDb {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime; use a fresh thread and runtime for the cleanup.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                        let _ = sqlx::query(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .execute(&mut conn)
                        .await;
                    }
                });
            })
            .join();
        }
    }
}

async fn fresh_database(backend: Backend) -> Option<(String, TestDb)> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("tessera.db").display());
            Some((url, TestDb::Sqlite(dir)))
        }
        Backend::Postgres => {
            let Ok(admin_url) = std::env::var("TESSERA_TEST_DATABASE_URL") else {
                missing(
                    "PostgreSQL tests need TESSERA_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres)",
                )?;
                return None;
            };
            let mut conn = match sqlx::PgConnection::connect(&admin_url).await {
                Ok(conn) => conn,
                Err(e) => {
                    missing(&format!(
                        "PostgreSQL at TESSERA_TEST_DATABASE_URL is unreachable: {e}"
                    ))?;
                    return None;
                }
            };
            let name = format!(
                "tessera_test_{}",
                tessera_server::domain::random_hex(16).expect("random")
            );
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let base = admin_url.split('?').next().unwrap_or(&admin_url);
            let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
            let url = format!("{base}/{name}");
            Some((url, TestDb::Postgres { admin_url, name }))
        }
    }
}

pub struct TestApp {
    pub url: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub state: AppState,
    pub database_url: String,
    _db: Arc<TestDb>,
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    let (database_url, db) = fresh_database(backend).await?;
    Some(
        start(
            database_url,
            Arc::new(db),
            Arc::new(ManualClock::starting_now()),
        )
        .await,
    )
}

async fn start(database_url: String, db: Arc<TestDb>, clock: Arc<ManualClock>) -> TestApp {
    let app = Application::build(
        Config::for_database(&database_url),
        clock.clone() as Arc<dyn Clock>,
    )
    .await
    .expect("the server starts");
    let url = format!("http://{}", app.address());
    let state = app.state().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        url,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        clock,
        state,
        database_url,
        _db: db,
    }
}

/// A registered user with a web-app token (all scopes) and its refresh token.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub password: String,
    pub token: String,
    pub refresh_token: String,
}

pub const CHALLENGE: &str = "testchallenge";

/// The `access_code` query parameter of a redirect.
pub fn access_code(location: &str) -> String {
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("access_code="))
        .unwrap_or_else(|| panic!("no access_code in {location}"))
        .to_owned()
}

pub fn location(headers: &HeaderMap) -> String {
    headers
        .get("location")
        .expect("a Location header")
        .to_str()
        .expect("ascii")
        .to_owned()
}

impl TestApp {
    /// A second server on the same database and clock, as a replica behind a load balancer.
    pub async fn replica(&self) -> TestApp {
        start(
            self.database_url.clone(),
            self._db.clone(),
            self.clock.clone(),
        )
        .await
    }

    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.url))
            .form(form)
            .send()
            .await
            .expect("request")
    }

    pub async fn register(&self, email: &str, password: &str, name: &str) -> reqwest::Response {
        self.post_json(
            &format!("/auth/local/register?challenge={CHALLENGE}"),
            json!({ "email": email, "password": password, "name": name, "company": "Tessera QA" }),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_json(
            &format!("/auth/local/login?challenge={CHALLENGE}"),
            json!({ "email": email, "password": password }),
        )
        .await
    }

    /// `POST /auth/token` with JSON; returns the status and JSON body.
    pub async fn token_endpoint(&self, body: Value) -> (StatusCode, Value) {
        let res = self.post_json("/auth/token", body).await;
        let status = res.status();
        (status, res.json().await.expect("JSON body"))
    }

    pub async fn exchange(&self, code: &str, challenge: &str) -> (StatusCode, Value) {
        self.token_endpoint(json!({
            "appId": "spklwebapp", "appSecret": "spklwebapp", "accessCode": code, "challenge": challenge
        }))
        .await
    }

    /// Registers a user with a unique email and exchanges the code for a web-app token pair.
    pub async fn user(&self, name: &str) -> User {
        let email = format!(
            "{}-{}@example.org",
            name.to_lowercase().replace(' ', "."),
            tessera_server::domain::random_hex(6).expect("random")
        );
        let password = "correct horse battery".to_owned();
        let res = self.register(&email, &password, name).await;
        assert_eq!(res.status(), StatusCode::FOUND, "registration of {email}");
        let code = access_code(&location(res.headers()));
        let (status, body) = self.exchange(&code, CHALLENGE).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let token = body["token"].as_str().expect("token").to_owned();
        let (_, me) = self
            .graphql(Some(&token), "{ activeUser { id } }", json!({}))
            .await;
        User {
            id: me["data"]["activeUser"]["id"]
                .as_str()
                .expect("id")
                .to_owned(),
            email,
            password,
            token,
            refresh_token: body["refreshToken"].as_str().expect("refresh").to_owned(),
        }
    }

    /// `POST /graphql` with an optional bearer token.
    pub async fn graphql(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(format!("{}/graphql", self.url))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        (status, res.json().await.expect("JSON body"))
    }

    /// Creates a personal access token with `creator` (a token holding `tokens:write`).
    pub async fn pat(&self, creator: &str, scopes: &[&str]) -> String {
        let (_, body) = self
            .graphql(
                Some(creator),
                "mutation($t: ApiTokenCreateInput!) { apiTokenCreate(token: $t) }",
                json!({ "t": { "name": "test token", "scopes": scopes } }),
            )
            .await;
        body["data"]["apiTokenCreate"]
            .as_str()
            .unwrap_or_else(|| panic!("PAT creation failed: {body}"))
            .to_owned()
    }

    /// The status and body of `POST /graphql` for `{ activeUser { id } }` with this token.
    pub async fn whoami(&self, token: &str) -> (StatusCode, Value) {
        self.graphql(Some(token), "{ activeUser { id } }", json!({}))
            .await
    }
}

/// The first GraphQL error's code, message and scope extension.
pub fn first_error(body: &Value) -> (String, String, Option<String>) {
    let err = &body["errors"][0];
    (
        err["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        err["message"].as_str().unwrap_or_default().to_owned(),
        err["extensions"]["scope"].as_str().map(str::to_owned),
    )
}

pub const INVALID_TOKEN: &str = r#"{"error":"Your token is not valid."}"#;
