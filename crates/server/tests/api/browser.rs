//! A real browser does the documented flow: a small sample app of the test's own (in
//! `tests/browser/client`) follows the steps of Speckle's OAuth2 + PKCE guide, and headless
//! Chromium (Debian's `chromium`, driven by `playwright-core` from `tests/browser/flow.mjs`) signs
//! in and allows it, ending on the app's page showing the user's name. Screenshots of the pages go
//! to `target/screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use serde_json::Value;

use crate::support::*;

const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");

fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from(
        std::env::var("TESSERA_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
    );
    if path.exists() {
        Some(path)
    } else {
        missing(&format!(
            "no Chromium at {} (apt-get install chromium, or set TESSERA_TEST_CHROMIUM)",
            path.display()
        ))?;
        None
    }
}

fn playwright_ready() -> Option<()> {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let module = Path::new(BROWSER_DIR)
        .join("node_modules/playwright-core")
        .exists();
    if node && module {
        Some(())
    } else {
        missing("the browser test needs node and `npm ci` in crates/server/tests/browser")?;
        None
    }
}

/// Serves the sample app on a free port; returns its origin.
async fn serve_sample_app() -> String {
    macro_rules! file {
        ($name:literal, $kind:literal) => {
            get(|| async {
                (
                    [(CONTENT_TYPE, $kind)],
                    include_str!(concat!("../browser/client/", $name)),
                )
            })
        };
    }
    let router = Router::new()
        .route(
            "/index.html",
            file!("index.html", "text/html; charset=utf-8"),
        )
        .route(
            "/callback.html",
            file!("callback.html", "text/html; charset=utf-8"),
        )
        .route(
            "/pkce-client.js",
            file!("pkce-client.js", "text/javascript"),
        )
        .route("/index.js", file!("index.js", "text/javascript"))
        .route("/callback.js", file!("callback.js", "text/javascript"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    origin
}

/// One backend is enough here: the pages do not depend on the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_to_a_pkce_app() {
    let (Some(chromium), Some(())) = (chromium(), playwright_ready()) else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let user = app.user("Grace Hopper").await;
    let client = serve_sample_app().await;
    let (app_id, _) = app
        .register_app(
            &user.token,
            &format!("{client}/callback.html"),
            &["profile:read", "profile:email"],
        )
        .await;
    let shots = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/screenshots"
    ));
    let client_url = format!("{client}/index.html?server={}&app={app_id}", app.url);
    let (server_url, email, password) =
        (app.url.clone(), user.email.clone(), user.password.clone());
    let shots_dir = shots.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("flow.mjs")
            .current_dir(BROWSER_DIR)
            .env("SERVER_URL", server_url)
            .env("CLIENT_URL", client_url)
            .env("EMAIL", email)
            .env("PASSWORD", password)
            .env("SCREENSHOTS", shots_dir)
            .env("CHROMIUM", chromium)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser flow failed:\n{stdout}\n{stderr}"
    );
    let shown: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(shown["name"], "Grace Hopper");
    assert_eq!(shown["email"], user.email.as_str());
    for shot in ["login.png", "consent.png", "signed-in.png", "register.png"] {
        let meta =
            std::fs::metadata(shots.join(shot)).unwrap_or_else(|_| panic!("{shot} was taken"));
        assert!(meta.len() > 10_000, "{shot} is a real screenshot");
    }
    // The app the browser allowed is now among the user's authorized apps.
    let (_, body) = app
        .graphql(
            Some(&user.token),
            "{ activeUser { authorizedApps { id } } }",
            serde_json::json!({}),
        )
        .await;
    assert!(body.to_string().contains(&app_id));
}

/// The invitee sees an invitation on their account page, accepts it in the browser, and the
/// project appears among their projects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_accepts_an_invitation() {
    let (Some(chromium), Some(())) = (chromium(), playwright_ready()) else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let owner = app.user("Ada Owner").await;
    let invitee = app.user("Ben Invitee").await;
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            "mutation { projectMutations { create(input: {name: \"Bridge model\"}) { id } } }",
            serde_json::json!({}),
        )
        .await;
    let project = body["data"]["projectMutations"]["create"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            "mutation($p: ID!, $u: String!) { projectMutations { invites { create(projectId: $p, input: {userId: $u}) { id } } } }",
            serde_json::json!({"p": project, "u": invitee.id}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let shots = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/screenshots"
    ));
    let (server_url, email, password) = (
        app.url.clone(),
        invitee.email.clone(),
        invitee.password.clone(),
    );
    let shots_dir = shots.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("invite.mjs")
            .current_dir(BROWSER_DIR)
            .env("SERVER_URL", server_url)
            .env("EMAIL", email)
            .env("PASSWORD", password)
            .env("PROJECT", "Bridge model")
            .env("SCREENSHOTS", shots_dir)
            .env("CHROMIUM", chromium)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the invitation flow failed:\n{stdout}\n{stderr}"
    );
    let shown: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(
        shown["before"],
        serde_json::json!([]),
        "not a collaborator before: {shown}"
    );
    assert_eq!(
        shown["after"],
        serde_json::json!(["Bridge model"]),
        "{shown}"
    );
    let (_, body) = app
        .graphql(
            Some(&invitee.token),
            "query($p: String!) { project(id: $p) { role } }",
            serde_json::json!({"p": project}),
        )
        .await;
    assert_eq!(body["data"]["project"]["role"], "stream:contributor");
    for shot in ["invitation.png", "invitation-accepted.png"] {
        let meta =
            std::fs::metadata(shots.join(shot)).unwrap_or_else(|_| panic!("{shot} was taken"));
        assert!(meta.len() > 10_000, "{shot} is a real screenshot");
    }
}

/// A person's journey through the settings pages (`tests/browser/journey.mjs`), navigating only
/// by what the pages show: makes an access token, copies it with the Copy button, uses it,
/// regenerates and revokes it and finds all of it under Activity; registers an app, authorizes
/// it on the consent page, revokes it under Authorized Apps (its token is refused) and
/// regenerates its secret (the old one is refused at `/auth/token`); changes the password and a
/// second browser is signed out. Every page is screenshot at 1280 and 390 px, checked for
/// sideways scrolling and audited with axe-core (no serious or critical violation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_journey_through_the_settings() {
    let (Some(chromium), Some(())) = (chromium(), playwright_ready()) else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let shots = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/screenshots"
    ));
    let (server_url, shots_dir) = (app.url.clone(), shots.clone());
    // The server's clock is the test's: let it run, as a wall clock would, so that a use after
    // the creation is later than the creation.
    let clock = app.clock.clone();
    let ticking = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            clock.advance(1000);
        }
    });
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("journey.mjs")
            .current_dir(BROWSER_DIR)
            .env("SERVER_URL", server_url)
            .env("SCREENSHOTS", shots_dir)
            .env("CHROMIUM", chromium)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    ticking.abort();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the token journey failed:\n{stdout}\n{stderr}"
    );
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(seen["copied"], 42, "{seen}");
    assert_eq!(seen["problems"], serde_json::json!([]), "{seen}");
    let audited: Vec<&str> = seen["audited"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let every_page = [
        "account",
        "profile",
        "access-tokens",
        "apps",
        "app",
        "authorized-apps",
        "sessions",
        "activity",
        "server",
        "users",
        "consent",
        "device",
        "device-consent",
        "not-found",
        "login",
        "register",
    ];
    assert_eq!(audited, every_page, "{seen}");
    for name in every_page {
        for width in [1280, 390] {
            let shot = format!("{name}-{width}.png");
            let meta =
                std::fs::metadata(shots.join(&shot)).unwrap_or_else(|_| panic!("{shot} was taken"));
            assert!(meta.len() > 10_000, "{shot} is a real screenshot");
        }
    }
    // What the browser did is what the server recorded.
    let app_id = seen["appId"].as_str().unwrap();
    let app_record = app.state.core.app(app_id).await.unwrap().expect("the app");
    assert_eq!(app_record.name, "Sketch viewer");
}
