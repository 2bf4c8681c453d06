//! The real Python SDK, specklepy 2026.9.1 from PyPI, works against Tessera unchanged.
//! Needs a Python with specklepy installed: `TESSERA_TEST_PYTHON`, or `.venv/bin/python` at the
//! repository root (`.ci/run` creates it, with Authlib and Flask for README's OpenID Connect
//! example).

use std::path::PathBuf;
use std::process::Command;

use reqwest::StatusCode;
use serde_json::json;

use tessera_testdb::python_with;

use crate::on_both_backends;
use crate::support::*;

on_both_backends!(
    specklepy_works_unchanged,
    specklepy_projects_models_and_versions,
    specklepy_project_invites,
    authlib_runs_the_readme_example,
);

fn python_with_specklepy() -> Option<PathBuf> {
    python_with("specklepy")
}

/// Runs one of `tests/python/*.py` with specklepy and the given environment; it must print
/// "all checks passed".
async fn run_script(python: PathBuf, script: &str, env: Vec<(&'static str, String)>) {
    let script = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(&script)
            .envs(env)
            .output()
            .expect("run python")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "specklepy check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

async fn specklepy_works_unchanged(app: TestApp) {
    let Some(python) = python_with_specklepy() else {
        return;
    };
    // Seed a user the way specklepy's own test fixture does: form register, then exchange.
    let res = app
        .post_form(
            "/auth/local/register?challenge=pyspeckletests",
            &[
                ("email", "py.user@example.org"),
                ("password", "$uper$3cr3tP@ss"),
                ("name", "Py User"),
                ("company", "test spockle"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let (_, pair) = app
        .exchange(&access_code(&location(res.headers())), "pyspeckletests")
        .await;
    let web = pair["token"].as_str().unwrap();
    let scopes = [
        "profile:read",
        "profile:email",
        "users:read",
        "streams:read",
    ];
    let pat = app.pat(web, &scopes).await;
    let revoked = app.pat(web, &scopes).await;
    let (_, body) = app
        .graphql(
            Some(web),
            "mutation($t: String!) { apiTokenRevoke(token: $t) }",
            json!({"t": revoked}),
        )
        .await;
    assert_eq!(body["data"]["apiTokenRevoke"], true);
    let (_, me) = app.whoami(&pat).await;
    let user_id = me["data"]["activeUser"]["id"].as_str().unwrap().to_owned();

    let host = app.url.trim_start_matches("http://").to_owned();
    run_script(
        python,
        "specklepy_check.py",
        vec![
            ("TESSERA_HOST", host.to_string()),
            ("TESSERA_PAT", pat.to_string()),
            ("TESSERA_REVOKED_PAT", revoked.to_string()),
            ("TESSERA_USER_NAME", "Py User".to_string()),
            ("TESSERA_USER_EMAIL", "py.user@example.org".to_string()),
            ("TESSERA_USER_ID", user_id.to_string()),
        ],
    )
    .await;
}

/// specklepy's project, model, version and user calls (`tests/python/specklepy_projects.py`).
async fn specklepy_projects_models_and_versions(app: TestApp) {
    let Some(python) = python_with_specklepy() else {
        return;
    };
    let first = app.user("Py Owner").await;
    let second = app.user("Py Collaborator").await;
    let read_only = app
        .pat(&first.token, &["streams:read", "profile:read"])
        .await;
    let host = app.url.trim_start_matches("http://").to_owned();
    run_script(
        python,
        "specklepy_projects.py",
        vec![
            ("TESSERA_HOST", host.to_string()),
            ("TESSERA_TOKEN", first.token.to_string()),
            ("TESSERA_SECOND_TOKEN", second.token.to_string()),
            ("TESSERA_SECOND_ID", second.id.to_string()),
            ("TESSERA_SECOND_EMAIL", second.email.to_string()),
            ("TESSERA_READ_ONLY_TOKEN", read_only.to_string()),
        ],
    )
    .await;
}

/// specklepy's invitation calls (`tests/python/specklepy_invites.py`).
async fn specklepy_project_invites(app: TestApp) {
    let Some(python) = python_with_specklepy() else {
        return;
    };
    let owner = app.user("Py Inviter").await;
    let invitee = app.user("Py Invitee").await;
    let third = app.user("Py Third").await;
    let host = app.url.trim_start_matches("http://").to_owned();
    run_script(
        python,
        "specklepy_invites.py",
        vec![
            ("TESSERA_HOST", host.to_string()),
            ("TESSERA_TOKEN", owner.token.to_string()),
            ("TESSERA_SECOND_TOKEN", invitee.token.to_string()),
            ("TESSERA_SECOND_ID", invitee.id.to_string()),
            ("TESSERA_SECOND_EMAIL", invitee.email.to_string()),
            ("TESSERA_THIRD_ID", third.id.to_string()),
        ],
    )
    .await;
}

/// README's "Sign in with Tessera" example, as written, with Authlib and Flask; then Authlib's
/// OAuth 2 client revokes (RFC 7009) and introspects (RFC 7662) (`tests/python/authlib_readme.py`).
async fn authlib_runs_the_readme_example(app: TestApp) {
    let Some(python) = python_with("authlib.integrations.flask_client") else {
        return;
    };
    run_script(
        python,
        "authlib_readme.py",
        vec![
            ("TESSERA_URL", app.url.clone()),
            (
                "README",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md").to_owned(),
            ),
        ],
    )
    .await;
}
