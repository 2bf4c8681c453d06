//! `tessera login --device` and `tessera whoami`, run as a person would: the test starts a
//! server, signs a person in on its pages, lets the command print its code, enters that code on
//! the `/device` page and allows it; the account lands where Speckle's SDKs look, and `whoami`
//! answers from it. Exit codes as documented.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::json;
use tessera_server::Application;
use tessera_server::clock::SystemClock;
use tessera_server::config::Config;

mod common;
use common::client;

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// A browser's cookies, kept by hand (the session cookies are `Secure`, which a browser sends to
/// loopback and reqwest's jar does not).
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn keep(&mut self, res: &reqwest::Response) {
        for set in res.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let pair = set.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.0.insert(name.to_owned(), value.to_owned());
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().unwrap().to_owned()
}

fn tessera(args: &[&str], userdata: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("SPECKLE_USERDATA_PATH", userdata)
        .env_remove("SPECKLE_TOKEN")
        .env_remove("SPECKLE_SERVER");
    cmd
}

/// A server on a free port with one person signed in on its pages: its URL, their cookies, and
/// the directory of its database (kept while the test runs).
async fn server_with_person(name: &str, email: &str) -> (String, Jar, tempfile::TempDir) {
    let db = tempfile::tempdir().unwrap();
    let mut config = Config::for_database(&format!(
        "sqlite://{}",
        db.path().join("tessera.db").display()
    ));
    config.rate_limits.enabled = false;
    let app = Application::build(config, Arc::new(SystemClock))
        .await
        .unwrap();
    let url = format!("http://{}", app.address());
    tokio::spawn(app.run_until(std::future::pending()));
    let http = client();
    let password = "a long enough password";
    http.post(format!("{url}/auth/local/register?challenge=c"))
        .json(&json!({"email": email, "password": password, "name": name}))
        .send()
        .await
        .unwrap();
    let mut jar = Jar::default();
    let res = http.get(format!("{url}/authn/login")).send().await.unwrap();
    jar.keep(&res);
    let csrf = csrf_of(&res.text().await.unwrap());
    let res = http
        .post(format!("{url}/authn/login"))
        .header("cookie", jar.header())
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", password),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    jar.keep(&res);
    (url, jar, db)
}

/// Runs `tessera args…`, asserts it succeeded, and returns what it printed.
fn succeeds(args: &[&str], userdata: &std::path::Path) -> String {
    let out = tessera(args, userdata).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Revokes an access token of the CLI at the server (RFC 7009), as if it had expired.
async fn revoke_access_token(url: &str, token: &tessera_client::Secret) {
    let res = client()
        .post(format!("{url}/oauth/revoke"))
        .form(&[
            ("token", token.expose()),
            ("token_type_hint", "access_token"),
            ("client_id", "tessera-cli"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// `tessera login --device` as a person meets it: the command prints where to go and the code,
/// the person (signed in with `jar`) enters it on `/device` and allows it; what the command
/// printed after that. `extra` are more arguments to `login`.
async fn device_login(url: &str, jar: &Jar, userdata: &std::path::Path, extra: &[&str]) -> String {
    let http = client();
    let mut args = vec!["login", "--server", url, "--device"];
    args.extend_from_slice(extra);
    let mut login = tessera(&args, userdata)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(login.stdout.take().unwrap());
    let mut printed = String::new();
    let code = loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "login said: {printed}"
        );
        printed.push_str(&line);
        if let Some(at) = line.find("enter the code ") {
            break line[at + "enter the code ".len()..]
                .trim()
                .trim_end_matches(')')
                .to_owned();
        }
    };
    assert!(printed.contains(&format!("{url}/device")), "{printed}");
    let res = http
        .get(format!("{url}/device?user_code={code}"))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("Tessera CLI wants to access your account"),
        "{page}"
    );
    let res = http
        .post(format!("{url}/device"))
        .header("cookie", jar.header())
        .form(&[
            ("csrf", csrf_of(&page).as_str()),
            ("user_code", code.as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut err = login.stderr.take().unwrap();
    let status = tokio::task::spawn_blocking(move || login.wait().unwrap())
        .await
        .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let mut said = String::new();
    std::io::Read::read_to_string(&mut err, &mut said).unwrap();
    assert!(status.success(), "{printed}{rest}{said}");
    rest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_a_device_code_then_whoami() {
    // The person has an account and signs in on the server's pages.
    let email = "device.person@example.org";
    let (url, jar, _db) = server_with_person("Device Person", email).await;
    let http = client();

    let userdata = tempfile::tempdir().unwrap();
    let rest = device_login(&url, &jar, userdata.path(), &[]).await;
    assert!(
        rest.contains("Signed in to") && rest.contains("Device Person") && rest.contains("default"),
        "{rest}"
    );
    assert!(userdata.path().join("Speckle").join("Accounts.db").exists());

    // whoami answers from the default account, in text and JSON.
    let out = tessera(&["whoami"], userdata.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.trim(), format!("Device Person <{email}> on {url}"));
    let out = tessera(&["whoami", "--json"], userdata.path())
        .output()
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["email"], email);

    // Tokens with the default account: create prints one that works; rotate stops the old one.
    let run = |args: &[&str]| succeeds(args, userdata.path());
    let whoami_with = async |token: &str| {
        http.post(format!("{url}/graphql"))
            .bearer_auth(token)
            .json(&json!({"query": "{ activeUser { name } }"}))
            .send()
            .await
            .unwrap()
            .status()
    };
    let made = run(&[
        "token",
        "create",
        "--name",
        "cli made",
        "--scope",
        "profile:read",
        "--expires",
        "30d",
    ]);
    let made = made.trim().to_owned();
    assert_eq!(made.len(), 42, "{made}");
    assert_eq!(whoami_with(&made).await, 200);
    let listed = run(&["token", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "cli made")
        .unwrap()
        .clone();
    assert!(!listed.to_string().contains(&made), "no secret in the list");
    let id = entry["id"].as_str().unwrap();
    let rotated = run(&["token", "rotate", id]).trim().to_owned();
    assert_eq!(whoami_with(&made).await, 403, "the old secret stops");
    assert_eq!(whoami_with(&rotated).await, 200);
    run(&["token", "revoke", &rotated[..10]]);
    assert_eq!(whoami_with(&rotated).await, 403);
    let out = tessera(
        &[
            "token",
            "create",
            "--name",
            "x",
            "--scope",
            "streams:read",
            "--expires",
            "soon",
        ],
        userdata.path(),
    )
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad duration is a usage error"
    );

    // Accounts: one, the default.
    let accounts = run(&["accounts", "list"]);
    assert!(
        accounts.starts_with("* ") && accounts.contains(email),
        "{accounts}"
    );

    // Logout signs the account out at the server and forgets it here.
    let stored = tessera_client::AccountStore::at(userdata.path().join("Speckle"))
        .default_account()
        .await
        .unwrap();
    let session = stored.token.unwrap();
    assert_eq!(whoami_with(session.expose()).await, 200);
    let said = run(&["logout"]);
    assert!(said.contains("Signed out"), "{said}");
    assert_eq!(
        whoami_with(session.expose()).await,
        403,
        "revoked at the server"
    );
    assert!(run(&["accounts", "list"]).contains("No local accounts"));

    // Signed in again: when the access token stops working, the stored refresh token renews the
    // pair once, transparently, and the new pair is saved.
    device_login(&url, &jar, userdata.path(), &[]).await;
    let store = tessera_client::AccountStore::at(userdata.path().join("Speckle"));
    let before = store.default_account().await.unwrap();
    let old_access = before.token.clone().unwrap();
    revoke_access_token(&url, &old_access).await;
    assert_eq!(whoami_with(old_access.expose()).await, 403);
    assert!(
        run(&["whoami"]).contains("Device Person"),
        "renewed transparently"
    );
    let after = store.default_account().await.unwrap();
    assert_ne!(after.token, before.token, "the new pair is saved");
    assert_ne!(
        after.refresh_token, before.refresh_token,
        "refresh tokens rotate"
    );
    // Presenting the spent refresh token again (an old copy of the account): sign in again, and
    // the whole chain is revoked.
    store.save(before).await.unwrap();
    let out = tessera(&["whoami"], userdata.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("sign in again"), "{said}");
    assert_eq!(whoami_with(after.token.unwrap().expose()).await, 403);

    // SPECKLE_TOKEN comes first; an invalid one exits 3 and says what to do.
    let out = tessera(&["whoami", "--server", &url], userdata.path())
        .env("SPECKLE_TOKEN", "0".repeat(42))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Invalid token"));
    // No account at all: 3, told how to sign in.
    let empty = tempfile::tempdir().unwrap();
    let out = tessera(&["whoami"], empty.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tessera login"));
    // Nothing listening: 4.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let out = tessera(
        &["whoami", "--server", &format!("http://127.0.0.1:{port}")],
        empty.path(),
    )
    .env("SPECKLE_TOKEN", "0".repeat(42))
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(4));
    // A usage error: 2.
    let out = tessera(&["whoami", "--nonsense"], empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `tessera login --keychain`: the tokens go to the system keychain (here the Linux kernel's
/// keyring), the account entry in Accounts.db has none, and everything else works the same:
/// whoami, the transparent refresh (which updates the keychain), logout (which empties it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_keychain_keeps_the_tokens_out_of_the_file() {
    let email = "keychain.person@example.org";
    let (url, jar, _db) = server_with_person("Keychain Person", email).await;
    let http = client();
    let userdata = tempfile::tempdir().unwrap();
    let rest = device_login(&url, &jar, userdata.path(), &["--keychain"]).await;
    assert!(rest.contains("Signed in to"), "{rest}");

    let store = tessera_client::AccountStore::at(userdata.path().join("Speckle"));
    let account = store.default_account().await.unwrap();
    assert!(account.in_keychain);
    let id = account.id.clone().unwrap();
    let access = account.token.clone().expect("read back from the keychain");
    let refresh = account.refresh_token.clone().unwrap();
    let file = String::from_utf8_lossy(&std::fs::read(store.database_path()).unwrap()).into_owned();
    assert!(file.contains("\"tesseraKeychain\":true"), "{file}");
    assert!(
        !file.contains(access.expose()) && !file.contains(refresh.expose()),
        "no token in Accounts.db"
    );
    let held = tessera_client::keychain::get(&id).unwrap().unwrap();
    assert_eq!(held.token, access);

    let run = |args: &[&str]| succeeds(args, userdata.path());
    assert!(run(&["whoami"]).contains("Keychain Person"));
    assert!(run(&["accounts", "list"]).contains("(tokens in keychain)"));

    // The access token stops working: the refresh renews the pair and the keychain keeps it.
    revoke_access_token(&url, &access).await;
    assert!(run(&["whoami"]).contains("Keychain Person"));
    let renewed = tessera_client::keychain::get(&id).unwrap().unwrap();
    assert_ne!(renewed.token, access);
    assert_ne!(renewed.refresh_token.as_ref(), Some(&refresh));
    let file = String::from_utf8_lossy(&std::fs::read(store.database_path()).unwrap()).into_owned();
    assert!(!file.contains(renewed.token.expose()));

    // The keychain forgot the tokens (as the kernel does at restart): told to sign in again.
    tessera_client::keychain::delete(&id).unwrap();
    let out = tessera(&["whoami"], userdata.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("keychain") && said.contains("--keychain"),
        "{said}"
    );

    // Signed in again, then out: the server revokes and the keychain entry goes.
    device_login(&url, &jar, userdata.path(), &["--keychain"]).await;
    let held = tessera_client::keychain::get(&id).unwrap().unwrap();
    assert!(run(&["logout"]).contains("Signed out"));
    assert!(tessera_client::keychain::get(&id).unwrap().is_none());
    let status = http
        .post(format!("{url}/graphql"))
        .bearer_auth(held.token.expose())
        .json(&json!({"query": "{ activeUser { name } }"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 403, "revoked at the server");
}

/// `tessera login` without `--device` opens the browser (`$BROWSER`, here a script that notes
/// the URL), which signs in and comes back to the command's loopback listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_in_the_browser_comes_back_to_a_loopback_port() {
    let (url, jar, _db) = server_with_person("Browser Person", "browser.person@example.org").await;
    let http = client();

    // The "browser": a script that writes down the URL it is asked to open.
    let dir = tempfile::tempdir().unwrap();
    let noted = dir.path().join("url");
    let browser = dir.path().join("browser.sh");
    std::fs::write(
        &browser,
        format!("#!/bin/sh\necho \"$1\" > {}\n", noted.display()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let userdata = tempfile::tempdir().unwrap();
    let login = tessera(&["login", "--server", &url], userdata.path())
        .env("BROWSER", &browser)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let opened = loop {
        if let Ok(text) = std::fs::read_to_string(&noted)
            && !text.trim().is_empty()
        {
            break text.trim().to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        opened.starts_with(&format!("{url}/oauth/authorize?")),
        "{opened}"
    );
    // The signed-in browser follows it: the CLI app is the server's own, so no question is
    // asked, and it is sent back to the command's loopback port.
    let res = http
        .get(&opened)
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let back = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with("http://127.0.0.1:"), "{back}");
    let page = http.get(&back).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("close this tab"), "{page}");
    let out = tokio::task::spawn_blocking(move || login.wait_with_output().unwrap())
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("Signed in to") && said.contains("Browser Person"),
        "{said}"
    );
    let out = tessera(&["whoami"], userdata.path()).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Browser Person"));
}
