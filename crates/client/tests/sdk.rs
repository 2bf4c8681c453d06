//! The SDK against a real Tessera server on a free port: every call, and the errors a caller
//! meets (invalid token, missing scope, cannot connect, certificate, rate limit).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tessera_client::accounts::{AccountServer, AccountUser};
use tessera_client::login::{CLI_CLIENT_ID, LoopbackSignIn};
use tessera_client::{Account, AccountStore, ClientError, Secret, SpeckleClient};
use tessera_server::Application;
use tessera_server::clock::SystemClock;
use tessera_server::config::Config;
use tessera_testdb::{Backend, TestDb, fresh_database, python_with};

struct Server {
    host: String,
    _db: TestDb,
}

async fn serve(configure: impl FnOnce(&mut Config)) -> Server {
    let (url, db) = fresh_database(Backend::Sqlite).await.unwrap();
    let mut config = Config::for_database(&url);
    config.rate_limits.enabled = false;
    configure(&mut config);
    let app = Application::build(config, Arc::new(SystemClock))
        .await
        .unwrap();
    let host = app.address().to_string();
    tokio::spawn(app.run_until(std::future::pending()));
    Server { host, _db: db }
}

/// A user's all-scope web token, made as Speckle's sign-in makes it.
async fn web_token(host: &str, name: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let email = format!("{}@example.org", name.to_lowercase().replace(' ', "."));
    let res = http
        .post(format!("http://{host}/auth/local/register?challenge=sdk"))
        .json(&json!({"email": email, "password": "a long enough password", "name": name}))
        .send()
        .await
        .unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let code = location
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("access_code="))
        .unwrap()
        .to_owned();
    let body: Value = http
        .post(format!("http://{host}/auth/token"))
        .json(&json!({"appId": "spklwebapp", "appSecret": "spklwebapp", "accessCode": code, "challenge": "sdk"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["token"].as_str().unwrap().to_owned()
}

fn client(host: &str) -> SpeckleClient {
    SpeckleClient::builder(host).use_ssl(false).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_and_its_refusals() {
    let server = serve(|_| {}).await;
    let web = web_token(&server.host, "Sdk User").await;

    // Anonymous: the server answers, nobody is signed in.
    let anonymous = client(&format!("http://{}/", server.host));
    assert_eq!(anonymous.url(), format!("http://{}", server.host));
    assert!(!anonymous.server().version().await.unwrap().is_empty());
    assert_eq!(anonymous.active_user().get().await.unwrap(), None);

    let mut me = client(&server.host);
    let user = me.authenticate_with_token(&web).await.unwrap().unwrap();
    assert_eq!(user.name, "Sdk User");
    assert_eq!(user.email.as_deref(), Some("sdk.user@example.org"));
    let info = me.server().get().await.unwrap();
    assert!(info.scopes.iter().any(|s| s.name == "streams:read"));
    let other = me.other_user().get(&user.id).await.unwrap().unwrap();
    assert_eq!(other.name, "Sdk User");
    assert_eq!(me.other_user().get("nobody-here").await.unwrap(), None);

    // Tokens: create, list, rotate, revoke.
    let pat = me
        .tokens()
        .create("sdk script", &["profile:read"], Some(86_400_000))
        .await
        .unwrap();
    assert_eq!(format!("{pat:?}"), "Secret(…)", "a token never prints");
    let listed = me.tokens().list().await.unwrap();
    let entry = listed.iter().find(|t| t.name == "sdk script").unwrap();
    assert!(pat.expose().ends_with(&entry.last_chars));
    let mut script = client(&server.host);
    assert!(script.authenticate_with_token(pat.expose()).await.is_ok());
    let rotated = me.tokens().rotate(&entry.id).await.unwrap();
    assert_ne!(rotated.expose(), pat.expose());
    let mut stale = client(&server.host);
    let err = stale
        .authenticate_with_token(pat.expose())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidToken), "{err:?}");
    assert!(err.to_string().contains("Access Tokens"), "{err}");
    assert!(
        script
            .authenticate_with_token(rotated.expose())
            .await
            .is_ok()
    );
    assert!(me.tokens().revoke(rotated.expose()).await.unwrap());
    let err = script.active_user().get().await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidToken), "{err:?}");

    // A token without the scope a call needs says which.
    let narrow = me
        .tokens()
        .create("narrow", &["streams:read"], None)
        .await
        .unwrap();
    let mut narrow_client = client(&server.host);
    narrow_client.set_token(narrow.expose());
    let err = narrow_client
        .tokens()
        .create("more", &["streams:read"], None)
        .await
        .unwrap_err();
    match &err {
        ClientError::MissingScope { scope } => assert_eq!(scope, "tokens:write"),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("tokens:write"));
    // Bad input is refused with the server's words.
    let err = me
        .tokens()
        .create("", &["streams:read"], None)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Refused { .. }), "{err:?}");
}

#[tokio::test]
async fn cannot_connect_and_certificate_problems_are_told_apart() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let closed = client(&format!("127.0.0.1:{port}"));
    let err = closed.server().version().await.unwrap_err();
    assert!(matches!(err, ClientError::CannotConnect { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    // https against a plain-http server: a connection problem with the use_ssl hint, not a token
    // problem.
    let server = serve(|_| {}).await;
    let tls = SpeckleClient::builder(&server.host).build().unwrap();
    let err = tls.server().version().await.unwrap_err();
    assert!(matches!(err, ClientError::CannotConnect { .. }), "{err:?}");
    assert!(err.to_string().contains("use_ssl"), "the hint: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_say_when_to_try_again() {
    let server = serve(|c| {
        c.rate_limits.enabled = true;
        c.rate_limits.requests_per_second = 1;
    })
    .await;
    let anonymous = client(&server.host);
    let mut limited = None;
    for _ in 0..50 {
        if let Err(e) = anonymous.server().version().await {
            limited = Some(e);
            break;
        }
    }
    let err = limited.expect("the overall limit is reached");
    assert!(matches!(err, ClientError::RateLimited { .. }), "{err:?}");
    assert!(err.to_string().contains("try again"), "{err}");
}

/// A TLS front with a self-signed certificate for `localhost`, forwarding to `backend`; its port.
async fn self_signed_front(backend: String) -> u16 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.key_pair.serialize_der().into());
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (acceptor, backend) = (acceptor.clone(), backend.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(&backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_certificate_is_refused_unless_told_otherwise() {
    let server = serve(|_| {}).await;
    let port = self_signed_front(server.host.clone()).await;
    let host = format!("localhost:{port}");
    let strict = SpeckleClient::builder(&host).build().unwrap();
    let err = strict.server().version().await.unwrap_err();
    assert!(matches!(err, ClientError::Certificate { .. }), "{err:?}");
    assert!(
        err.to_string().contains("verify_certificate(false)"),
        "{err}"
    );
    let trusting = SpeckleClient::builder(&host)
        .verify_certificate(false)
        .build()
        .unwrap();
    assert!(trusting.url().starts_with("https://"));
    assert!(!trusting.server().version().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_comes_before_a_dotenv_file() {
    let server = serve(|_| {}).await;
    let web = web_token(&server.host, "Env User").await;
    let dir = tempfile::tempdir().unwrap();
    let dotenv = dir.path().join(".env");
    // Only the file: it is read (the seeds' .env, with an http:// server).
    std::fs::write(
        &dotenv,
        format!(
            "# a comment\nSPECKLE_TOKEN={web}\nSPECKLE_SERVER=http://{}\n",
            server.host
        ),
    )
    .unwrap();
    let from_file = SpeckleClient::from_env_with(|_| None, &dotenv)
        .await
        .unwrap();
    assert_eq!(from_file.url(), format!("http://{}", server.host));
    let me = from_file.active_user().get().await.unwrap().unwrap();
    assert_eq!(me.name, "Env User");
    // The environment wins over the file: a revoked token there is refused, whatever the file says.
    let env = |name: &str| (name == "SPECKLE_TOKEN").then(|| "0".repeat(42));
    let err = SpeckleClient::from_env_with(env, &dotenv)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidToken), "{err:?}");
    // Nothing anywhere: told what to set.
    let err = SpeckleClient::from_env_with(|_| None, &dir.path().join("none"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NoToken), "{err:?}");
    assert!(err.to_string().contains("SPECKLE_TOKEN"));
}

fn account(host: &str, token: &str, email: &str) -> Account {
    Account {
        id: None,
        token: Some(Secret::new(token)),
        refresh_token: None,
        is_default: false,
        server_info: AccountServer {
            url: Some(format!("http://{host}/")),
            name: Some("Tessera".into()),
            ..Default::default()
        },
        user_info: AccountUser {
            email: Some(email.into()),
            name: Some("Someone".into()),
            ..Default::default()
        },
        in_keychain: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_accounts_are_kept_as_speckle_keeps_them() {
    let server = serve(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let store = AccountStore::at(dir.path().join("Speckle"));
    let err = store.default_account().await.unwrap_err();
    assert!(matches!(err, ClientError::NoLocalAccount { .. }), "{err:?}");
    assert!(err.to_string().contains("tessera login"), "{err}");

    let web = web_token(&server.host, "Acc Ount").await;
    let first = store
        .save(account(&server.host, &web, "acc.ount@example.org"))
        .await
        .unwrap();
    assert!(first.is_default, "the first account is the default");
    assert_eq!(
        first.server_info.url.as_deref(),
        Some(&*format!("http://{}", server.host))
    );
    assert_eq!(
        first.id.as_deref().map(str::len),
        Some(32),
        "the C# SDK's MD5 id"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store.database_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let second = store
        .save(account(
            &server.host,
            "0".repeat(42).as_str(),
            "other@example.org",
        ))
        .await
        .unwrap();
    assert!(!second.is_default);
    assert_eq!(store.list().await.unwrap().len(), 2);
    // The stored row is the camelCase JSON Speckle's SDKs read, in objects(hash, content).
    let raw = std::fs::read(store.database_path()).unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.contains("\"isDefault\"") && raw.contains("\"serverInfo\""));

    let default = store.default_account().await.unwrap();
    assert_eq!(
        default.user_info.email.as_deref(),
        Some("acc.ount@example.org")
    );
    let client = SpeckleClient::for_account(&default).await.unwrap();
    let me = client.active_user().get().await.unwrap().unwrap();
    assert_eq!(me.name, "Acc Ount");
    let err = SpeckleClient::for_account(&second).await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidToken), "{err:?}");
    // specklepy's way: a client for the host, then the account.
    let mut by_host = SpeckleClient::for_url(&format!("http://{}", server.host)).unwrap();
    let me = by_host
        .authenticate_with_account(&default)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(me.name, "Acc Ount");
    let err = by_host
        .authenticate_with_account(&second)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidToken), "{err:?}");

    store
        .set_default(second.id.as_deref().unwrap())
        .await
        .unwrap();
    let default = store.default_account().await.unwrap();
    assert_eq!(default.id, second.id);
    assert!(store.set_default("nope").await.is_err());
    // Removing the default elects the one left.
    store.remove(second.id.as_deref().unwrap()).await.unwrap();
    assert_eq!(store.default_account().await.unwrap().id, first.id);

    // A JSON account file is read after the database; a broken one is reported, not skipped.
    let json_dir = dir.path().join("Speckle").join("Accounts");
    std::fs::create_dir_all(&json_dir).unwrap();
    std::fs::write(
        json_dir.join("legacy.json"),
        r#"{"token": "t", "isDefault": false, "serverInfo": {"url": "https://x"}, "userInfo": {"email": "legacy@example.org"}}"#,
    )
    .unwrap();
    let listed = store.list().await.unwrap();
    assert_eq!(
        listed.last().unwrap().user_info.email.as_deref(),
        Some("legacy@example.org")
    );
    std::fs::write(json_dir.join("broken.json"), "{ not json").unwrap();
    let err = store.list().await.unwrap_err();
    assert!(err.to_string().contains("broken.json"), "{err}");
}

/// An account saved `in_keychain` keeps its token in the OS keychain (the Linux kernel keyring
/// here): not in the file, read back on listing, gone with the account; saving it again without
/// the keychain moves the token back to the file and empties the keychain entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keychain_accounts_keep_their_token_out_of_the_file() {
    let server = serve(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let store = AccountStore::at(dir.path().join("Speckle"));
    let web = web_token(&server.host, "Key Chain").await;
    let mut wanted = account(&server.host, &web, "key.chain@example.org");
    wanted.in_keychain = true;
    let saved = store.save(wanted).await.unwrap();
    let id = saved.id.clone().unwrap();
    let file =
        || String::from_utf8_lossy(&std::fs::read(store.database_path()).unwrap()).into_owned();
    assert!(!file().contains(&web), "no token in Accounts.db");
    assert!(file().contains("\"tesseraKeychain\":true"));
    let listed = store.default_account().await.unwrap();
    assert_eq!(
        listed.token.as_ref().map(Secret::expose),
        Some(web.as_str())
    );
    let client = SpeckleClient::for_account(&listed).await.unwrap();
    assert_eq!(
        client.active_user().get().await.unwrap().unwrap().name,
        "Key Chain"
    );

    // Without its keychain entry the account says what happened and what to do.
    tessera_client::keychain::delete(&id).unwrap();
    let orphan = store.default_account().await.unwrap();
    assert!(orphan.token.is_none());
    let err = SpeckleClient::for_account(&orphan).await.unwrap_err();
    assert!(matches!(err, ClientError::NotInKeychain { .. }), "{err:?}");
    assert!(
        err.to_string().contains("tessera login --keychain"),
        "{err}"
    );

    // Saved again without the keychain: the token is in the file, the keychain entry is gone.
    store.save(listed.clone()).await.unwrap();
    assert!(tessera_client::keychain::get(&id).unwrap().is_some());
    let mut plain = listed;
    plain.in_keychain = false;
    store.save(plain).await.unwrap();
    assert!(tessera_client::keychain::get(&id).unwrap().is_none());
    assert!(file().contains(&web));

    // Removing a keychain account removes its keychain entry.
    let mut again = store.default_account().await.unwrap();
    again.in_keychain = true;
    store.save(again).await.unwrap();
    assert!(tessera_client::keychain::get(&id).unwrap().is_some());
    store.remove(&id).await.unwrap();
    assert!(tessera_client::keychain::get(&id).unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn specklepy_reads_our_accounts_and_we_read_its() {
    let Some(python) = python_with("specklepy") else {
        return;
    };
    let server = serve(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let store = AccountStore::at(dir.path().join("Speckle"));
    let ours = web_token(&server.host, "Rust Writer").await;
    let rust_email = "rust.writer@example.org";
    store
        .save(account(&server.host, &ours, rust_email))
        .await
        .unwrap();
    let theirs = web_token(&server.host, "Py Writer").await;
    let mut py_client = client(&server.host);
    let py_user = py_client
        .authenticate_with_token(&theirs)
        .await
        .unwrap()
        .unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/accounts_interop.py"
    );
    let output = std::process::Command::new(python)
        .arg(script)
        .env("SPECKLE_USERDATA_PATH", dir.path())
        .env("TESSERA_HOST", &server.host)
        .env("RUST_EMAIL", rust_email)
        .env("PY_TOKEN", &theirs)
        .env("PY_EMAIL", "py.writer@example.org")
        .env("PY_USER_ID", &py_user.id)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("all checks passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // What specklepy's transport wrote, the SDK reads, and it authenticates.
    let found = store.list().await.unwrap();
    let written = found
        .iter()
        .find(|a| a.id.as_deref() == Some("PY0ACCOUNT"))
        .expect("the account specklepy wrote");
    assert_eq!(
        written.user_info.email.as_deref(),
        Some("py.writer@example.org")
    );
    let client = SpeckleClient::for_account(written).await.unwrap();
    let me = client.active_user().get().await.unwrap().unwrap();
    assert_eq!(me.id, py_user.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_and_apps() {
    let server = serve(|_| {}).await;
    let web = web_token(&server.host, "Pro Ject").await;
    let mut me = client(&server.host);
    me.authenticate_with_token(&web).await.unwrap();

    let made = me
        .projects()
        .create("Bridge", Some("A footbridge"), Some("PRIVATE"))
        .await
        .unwrap();
    assert_eq!(
        (made.name.as_str(), made.visibility.as_str()),
        ("Bridge", "PRIVATE")
    );
    assert_eq!(made.role.as_deref(), Some("stream:owner"));
    let got = me.projects().get(&made.id).await.unwrap();
    assert_eq!(got, made);
    let listed = me.projects().list(10).await.unwrap();
    assert_eq!(
        listed.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        [made.id.as_str()]
    );
    // Someone else's private project is refused with the server's code.
    let stranger_token = web_token(&server.host, "Stran Ger").await;
    let mut stranger = client(&server.host);
    stranger
        .authenticate_with_token(&stranger_token)
        .await
        .unwrap();
    let err = stranger.projects().get(&made.id).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Refused { ref code, .. } if code == "FORBIDDEN"),
        "{err:?}"
    );

    let id = me
        .apps()
        .create(
            "Viewer",
            "Shows bridges",
            "https://viewer.example/cb",
            &["streams:read"],
        )
        .await
        .unwrap();
    let app = me.apps().get(&id).await.unwrap().unwrap();
    assert_eq!(app.redirect_url, "https://viewer.example/cb");
    assert!(
        !format!("{app:?}").contains(app.secret().expose()),
        "no secret in Debug"
    );
    let old = app.secret();
    let new = me.apps().regenerate_secret(&id).await.unwrap();
    assert_ne!(new.expose(), old.expose());
    let again = me.apps().get(&id).await.unwrap().unwrap();
    assert_eq!(again.secret().expose(), new.expose());
    assert_eq!(me.apps().get("nosuchapp").await.unwrap(), None);
}

#[test]
fn the_blocking_facade_works_without_a_runtime() {
    // The server runs on a runtime of its own thread; the script side has none.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let server = serve(|_| {}).await;
            let web = web_token(&server.host, "Block Ing").await;
            tx.send((server.host.clone(), web)).unwrap();
            std::future::pending::<()>().await;
            drop(server);
        });
    });
    let (host, web) = rx.recv().unwrap();
    let mut client = tessera_client::blocking::Client::new(client(&host)).unwrap();
    let me = client.authenticate_with_token(&web).unwrap().unwrap();
    assert_eq!(me.name, "Block Ing");
    let tokens = client.call(|c| c.tokens().list()).unwrap();
    assert!(tokens.is_empty());
    let none = client.call(|c| c.other_user().get("nobody")).unwrap();
    assert_eq!(none, None);
    let mut bad = tessera_client::blocking::Client::new(self::client(&host)).unwrap();
    assert!(matches!(
        bad.authenticate_with_token(&"0".repeat(42)),
        Err(ClientError::InvalidToken)
    ));
}

/// A browser session on the server's pages: its cookie header (kept by hand: the session
/// cookies are `Secure`, which browsers send to loopback and reqwest's jar does not).
async fn signed_in_browser(host: &str, name: &str) -> (reqwest::Client, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let email = format!("{}@example.org", name.to_lowercase().replace(' ', "."));
    let password = "a long enough password";
    http.post(format!("http://{host}/auth/local/register?challenge=b"))
        .json(&json!({"email": email, "password": password, "name": name}))
        .send()
        .await
        .unwrap();
    let mut cookies = BTreeMap::new();
    let keep = |cookies: &mut BTreeMap<String, String>, res: &reqwest::Response| {
        for set in res.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            let (k, v) = pair.split_once('=').unwrap();
            cookies.insert(k.to_owned(), v.to_owned());
        }
    };
    let res = http
        .get(format!("http://{host}/authn/login"))
        .send()
        .await
        .unwrap();
    keep(&mut cookies, &res);
    let page = res.text().await.unwrap();
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = page[at..].split('"').next().unwrap().to_owned();
    let header = |c: &BTreeMap<String, String>| {
        c.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let res = http
        .post(format!("http://{host}/authn/login"))
        .header("cookie", header(&cookies))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", &email),
            ("password", password),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    keep(&mut cookies, &res);
    (http, header(&cookies))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loopback_sign_in_follows_the_pages() {
    let server = serve(|_| {}).await;
    let (browser, cookies) = signed_in_browser(&server.host, "Loop Back").await;
    let base = format!("http://{}", server.host);
    let sign_in = LoopbackSignIn::start(&base, CLI_CLIENT_ID, &["profile:read", "streams:read"])
        .await
        .unwrap();
    let url = sign_in.authorize_url.clone();
    assert!(
        url.contains("code_challenge_method=S256")
            && url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"),
        "{url}"
    );
    let finished = tokio::spawn(sign_in.finish());
    // The browser opens the URL; the server's own CLI app needs no consent question and sends
    // it back to the loopback listener with a code.
    let res = browser
        .get(&url)
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let back = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with("http://127.0.0.1:"), "{back}");
    let page = browser
        .get(&back)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("close this tab"), "{page}");
    let tokens = finished.await.unwrap().unwrap();
    assert!(tokens.refresh_token.is_some());
    let mut me = client(&server.host);
    let user = me
        .authenticate_with_token(tokens.access_token.expose())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.name, "Loop Back");

    // A browser that comes back with another sign-in's state is refused.
    let sign_in = LoopbackSignIn::start(&base, CLI_CLIENT_ID, &["profile:read"])
        .await
        .unwrap();
    let redirect = url::Url::parse(&sign_in.authorize_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    let finished = tokio::spawn(sign_in.finish());
    reqwest::get(format!("{redirect}?code=x&state=forged"))
        .await
        .unwrap();
    let err = finished.await.unwrap().unwrap_err();
    assert!(matches!(err, ClientError::Protocol { .. }), "{err:?}");
}

/// README's `examples/whoami.rs`, run as a user runs it: `SPECKLE_TOKEN` and `SPECKLE_SERVER`
/// in the environment print who they are; a made-up token prints the invalid-token advice and
/// exits 1. `cargo test` builds the examples next to the test binaries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whoami_example_reads_the_environment() {
    let server = serve(|_| {}).await;
    let token = web_token(&server.host, "Ex Ample").await;
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join("whoami"))
        .unwrap();
    assert!(
        example.exists(),
        "{} is missing: build it with `cargo build -p tessera-client --example whoami`",
        example.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let run = |token: &str| {
        let example = example.clone();
        let mut cmd = std::process::Command::new(example);
        cmd.current_dir(dir.path())
            .env("SPECKLE_TOKEN", token)
            .env("SPECKLE_SERVER", format!("http://{}", server.host));
        cmd
    };
    let out = tokio::task::spawn_blocking({
        let mut cmd = run(&token);
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.starts_with("Ex Ample <") && said.contains(&server.host),
        "{said}"
    );
    let out = tokio::task::spawn_blocking({
        let mut cmd = run(&"0".repeat(42));
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Invalid token"));
}
