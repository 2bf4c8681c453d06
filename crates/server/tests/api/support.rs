//! The test kit: each test starts the real server on port 0 with a fresh database (a temporary
//! SQLite file, or a fresh PostgreSQL database when `TESSERA_TEST_DATABASE_URL` is set) and talks
//! HTTP to it. Time is a `ManualClock` the test moves.

use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tessera_server::clock::{Clock, ManualClock};
use tessera_server::config::Config;
use tessera_server::{AppState, Application};

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

pub use tessera_testdb::{Backend, TestDb, fresh_database, missing};

/// A connection to the test's database behind the server's back (either backend).
pub async fn raw_connection(app: &TestApp) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(&app.database_url)
        .await
        .expect("a raw connection to the test database")
}

pub struct TestApp {
    pub url: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub state: AppState,
    pub database_url: String,
    _db: Arc<TestDb>,
}

/// A server with its own settings (rate limits on, say), on a fresh database.
pub async fn spawn_app_with(
    backend: Backend,
    configure: impl FnOnce(&mut Config),
) -> Option<TestApp> {
    let (database_url, db) = fresh_database(backend).await?;
    let mut config = test_config(&database_url);
    configure(&mut config);
    Some(start_with(config, Arc::new(db), Arc::new(ManualClock::starting_now())).await)
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

/// The test kit signs in hundreds of times from one address: limits are off unless a test asks.
pub fn test_config(database_url: &str) -> Config {
    Config {
        rate_limits: tessera_server::config::RateLimits::off(),
        ..Config::for_database(database_url)
    }
}

async fn start(database_url: String, db: Arc<TestDb>, clock: Arc<ManualClock>) -> TestApp {
    start_with(test_config(&database_url), db, clock).await
}

async fn start_with(config: Config, db: Arc<TestDb>, clock: Arc<ManualClock>) -> TestApp {
    let database_url = config.database_url.clone().expect("a database URL");
    let app = Application::build(config, clock.clone() as Arc<dyn Clock>)
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
    /// A second server on the same database and clock, as a replica behind a load balancer
    /// (PostgreSQL only: an SQLite file serves one server).
    pub async fn replica(&self) -> TestApp {
        self.replica_with(|_| {}).await
    }

    pub async fn replica_with(&self, configure: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = test_config(&self.database_url);
        configure(&mut config);
        start_with(config, self._db.clone(), self.clock.clone()).await
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
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
    /// Makes `member` a collaborator with `role` the way Speckle does it: the owner invites, the
    /// member accepts. Returns the first error body, or `Value::Null` when both steps worked.
    pub async fn join(&self, owner_token: &str, project: &str, member: &User, role: &str) -> Value {
        let (_, body) = self
            .graphql(
                Some(owner_token),
                "mutation($p: ID!, $i: ProjectInviteCreateInput!) { projectMutations { invites { create(projectId: $p, input: $i) { id } } } }",
                json!({"p": project, "i": {"userId": member.id, "role": role}}),
            )
            .await;
        if !body["errors"].is_null() {
            return body;
        }
        let (_, body) = self
            .graphql(
                Some(&member.token),
                "{ activeUser { projectInvites { projectId token } } }",
                json!({}),
            )
            .await;
        let token = body["data"]["activeUser"]["projectInvites"]
            .as_array()
            .and_then(|all| all.iter().find(|i| i["projectId"] == project))
            .and_then(|i| i["token"].as_str())
            .unwrap_or_default()
            .to_owned();
        let (_, body) = self
            .graphql(
                Some(&member.token),
                "mutation($i: ProjectInviteUseInput!) { projectMutations { invites { use(input: $i) } } }",
                json!({"i": {"projectId": project, "token": token, "accept": true}}),
            )
            .await;
        if body["errors"].is_null() {
            Value::Null
        } else {
            body
        }
    }

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

/// A browser: follows no redirects, keeps cookies (including `Secure` ones, as browsers do for
/// loopback hosts), and knows the sign-in pages.
pub struct Browser<'a> {
    app: &'a TestApp,
    jar: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
    /// The CSRF field of the last page that had a form.
    form_csrf: std::sync::Mutex<Option<String>>,
    user_agent: Option<String>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Browser<'a> {
        Browser {
            app,
            jar: Default::default(),
            form_csrf: Default::default(),
            user_agent: None,
        }
    }

    /// A browser that says what it is in `User-Agent`.
    pub fn with_user_agent(app: &'a TestApp, user_agent: &str) -> Browser<'a> {
        Browser {
            user_agent: Some(user_agent.to_owned()),
            ..Browser::new(app)
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .app
            .client
            .request(method, format!("{}{path}", self.app.url))
            .header("cookie", self.cookie_header());
        if let Some(ua) = &self.user_agent {
            req = req.header("user-agent", ua);
        }
        req
    }

    fn cookie_header(&self) -> String {
        let jar = self.jar.lock().unwrap();
        jar.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keeps the CSRF field of a page, as a browser keeps the form; hands back the response.
    async fn keep_form(&self, res: reqwest::Response) -> reqwest::Response {
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.bytes().await.expect("body");
        let text = String::from_utf8_lossy(&body);
        if let Some(at) = text.find("name=\"csrf\" value=\"") {
            let rest = &text[at + "name=\"csrf\" value=\"".len()..];
            let value = rest.split('"').next().unwrap_or_default().to_owned();
            *self.form_csrf.lock().unwrap() = Some(value);
        }
        let mut rebuilt = axum::http::Response::new(body);
        *rebuilt.status_mut() = status;
        *rebuilt.headers_mut() = headers;
        reqwest::Response::from(rebuilt)
    }

    fn keep_cookies(&self, res: &reqwest::Response) {
        let mut jar = self.jar.lock().unwrap();
        for set in res.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (pair, attrs) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar.lock().unwrap().insert(name.into(), value.into());
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        let res = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        self.keep_cookies(&res);
        self.keep_form(res).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let res = self
            .request(reqwest::Method::POST, path)
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep_cookies(&res);
        self.keep_form(res).await
    }

    /// The CSRF field of the last form this browser was shown.
    pub fn csrf(&self) -> String {
        self.form_csrf
            .lock()
            .unwrap()
            .clone()
            .expect("a form's CSRF field (visit a page with a form first)")
    }

    /// Signs in through the login page.
    pub async fn sign_in(&self, user: &User) {
        self.get("/authn/login").await;
        let csrf = self.csrf();
        let res = self
            .post(
                "/authn/login",
                &[
                    ("csrf", &csrf),
                    ("email", &user.email),
                    ("password", &user.password),
                    ("next", "/"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "sign-in");
        assert!(self.cookie("__Host-tessera-session").is_some());
        // Land where the browser is sent, as a browser does: its forms are bound to the session.
        self.get(&location(res.headers())).await;
    }

    /// Opens an authorization URL as a signed-in user and, if asked, allows it; returns where the
    /// browser is sent.
    pub async fn authorize(&self, path: &str) -> String {
        let res = self.get(path).await;
        if res.status() == StatusCode::SEE_OTHER {
            return location(res.headers());
        }
        assert_eq!(res.status(), StatusCode::OK, "consent page for {path}");
        let csrf = self.csrf();
        let res = self
            .post(path, &[("csrf", &csrf), ("decision", "allow")])
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        location(res.headers())
    }
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce_pair() -> (String, String) {
    let verifier = format!(
        "{}-{}",
        tessera_server::domain::random_hex(32).unwrap(),
        tessera_server::domain::random_hex(16).unwrap()
    );
    let challenge = tessera_proto::pkce::s256_challenge(&verifier);
    (verifier, challenge)
}

impl TestApp {
    /// Registers an app as `author` (a token with apps:write) and returns (id, secret).
    pub async fn register_app(
        &self,
        author: &str,
        redirect_url: &str,
        scopes: &[&str],
    ) -> (String, String) {
        let (_, body) = self
            .graphql(
                Some(author),
                "mutation($a: AppCreateInput!) { appCreate(app: $a) }",
                json!({"a": {"name": "Test App", "description": "An app under test",
                             "redirectUrl": redirect_url, "scopes": scopes}}),
            )
            .await;
        let id = body["data"]["appCreate"]
            .as_str()
            .unwrap_or_else(|| panic!("appCreate failed: {body}"))
            .to_owned();
        let (_, body) = self
            .graphql(
                Some(author),
                "query($id: String!) { app(id: $id) { secret } }",
                json!({"id": id}),
            )
            .await;
        (
            id,
            body["data"]["app"]["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// `POST /oauth/token` with JSON.
    pub async fn oauth_token(&self, body: Value) -> (StatusCode, Value) {
        let res = self.post_json("/oauth/token", body).await;
        let status = res.status();
        (status, res.json().await.expect("JSON body"))
    }
}

/// The query parameters of an absolute URL.
pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// The path and query of an absolute URL on the test server.
pub fn local(url: &url::Url) -> String {
    format!("{}?{}", url.path(), url.query().unwrap_or_default())
}

/// The HTTP client standard OAuth and OpenID Connect libraries are given: it follows no
/// redirects (they say so).
pub fn http() -> oauth2::reqwest::Client {
    oauth2::reqwest::Client::builder()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
