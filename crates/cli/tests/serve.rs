//! The `tessera` binary itself: `tessera serve` starts on the embedded default, prints its URL,
//! answers, stops cleanly on SIGTERM, and never writes a secret to its logs.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

mod common;
use common::{access_code, client, exchange, gql};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

struct Served {
    child: Child,
    url: String,
    stdout: BufReader<std::process::ChildStdout>,
    /// The log, read as it comes (a full pipe would stop the server mid-request).
    stderr: std::thread::JoinHandle<String>,
}

/// Starts `tessera serve` in `dir` with extra arguments and environment, and waits for the line
/// that announces the URL.
fn serve(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Served {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .args(args)
        .current_dir(dir)
        .env_remove("TESSERA_DATABASE_URL")
        .env_remove("TESSERA_BIND")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start tessera");
    let mut log = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = log.read_to_string(&mut text);
        text
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("Tessera is serving ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    Served {
        child,
        url,
        stdout,
        stderr,
    }
}

fn terminate(served: Served) -> (bool, String, String) {
    let Served {
        mut child,
        mut stdout,
        stderr,
        ..
    } = served;
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    (status.success(), rest, stderr.join().unwrap())
}

#[tokio::test]
async fn serve_starts_on_embedded_sqlite_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // The bind address comes from the environment, the data directory from the default.
    let served = serve(dir.path(), &[], &[("TESSERA_BIND", "127.0.0.1:0")]);
    assert!(
        served.url.starts_with("http://127.0.0.1:"),
        "{}",
        served.url
    );
    let res = client()
        .get(format!("{}/readiness", served.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    assert!(
        dir.path().join("tessera-data/tessera.db").exists(),
        "created on first start"
    );
    // The key file that seals the signing keys is made on first start, for its owner only.
    let key_file = dir.path().join("tessera-data/tessera.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (clean, stdout, log) = terminate(served);
    assert!(clean, "exit status after SIGTERM");
    assert!(stdout.contains("Tessera stopped."), "{stdout}");
    // The first signing key was made at start-up: nothing asked for a token or the JWKS.
    assert_eq!(
        log.matches("made the first ID token signing key").count(),
        1,
        "{log}"
    );

    // It starts again on the same data, with the users it had, and the same keys.
    let again = serve(dir.path(), &["--bind", "127.0.0.1:0"], &[]);
    let res = client()
        .get(format!("{}/liveness", again.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (clean, _, log) = terminate(again);
    assert!(clean);
    assert!(
        !log.contains("made the first ID token signing key"),
        "{log}"
    );
}

#[test]
fn bad_settings_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("serve")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(run(&["--bind", "localhost"]).contains("not an IP address and port"));
    let msg = run(&["--database-url", "mysql://root:hunter2@db/x"]);
    assert!(msg.contains("sqlite:// or postgres://"), "{msg}");
    assert!(
        !msg.contains("hunter2"),
        "the password is not echoed: {msg}"
    );
    assert!(run(&["--public-url", "nope"]).contains("public URL"));
    assert!(run(&["--config", "missing.toml"]).contains("cannot read config file"));

    let help = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--bind",
        "--data-dir",
        "--database-url",
        "--public-url",
        "--config",
        "TESSERA_BIND",
    ] {
        assert!(help.contains(flag), "--help mentions {flag}:\n{help}");
    }
}

/// docs/ARCHITECTURE.md, "Limits": during a full register → exchange → PAT → query → revoke → logout run
/// with the most verbose logging, no password, access code, token or refresh token (nor the
/// secret half of one) reaches the logs.
#[tokio::test]
async fn no_secret_reaches_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        dir.path(),
        &["--bind", "127.0.0.1:0", "--access-log", "full"],
        &[("TESSERA_LOG", "trace")],
    );
    let url = served.url.clone();
    let http = client();
    let password = "Sup3r-Secret-Passw0rd!";
    let mut secrets = vec![password.to_owned()];

    let res = http
        .post(format!("{url}/auth/local/register?challenge=logchallenge"))
        .json(&json!({"email": "logs@example.org", "password": password, "name": "Log Tester"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let code = access_code(res.headers()["location"].to_str().unwrap());
    let login = http
        .post(format!("{url}/auth/local/login?challenge=logchallenge"))
        .form(&[("email", "logs@example.org"), ("password", password)])
        .send()
        .await
        .unwrap();
    let second_code = access_code(login.headers()["location"].to_str().unwrap());
    let pair = exchange(&url, &code, "logchallenge").await;
    let token = pair["token"].as_str().unwrap().to_owned();
    let refresh = pair["refreshToken"].as_str().unwrap().to_owned();
    let rotated: Value = http
        .post(format!("{url}/auth/token/"))
        .form(&[
            ("appId", "spklwebapp"),
            ("appSecret", "spklwebapp"),
            ("refreshToken", refresh.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pat_body = gql(
        &url,
        &token,
        "mutation($t: ApiTokenCreateInput!) { apiTokenCreate(token: $t) }",
        json!({"t": {"name": "logs", "scopes": ["profile:read"]}}),
    )
    .await;
    let pat = pat_body["data"]["apiTokenCreate"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = gql(&url, &pat, "{ activeUser { id name } }", json!({})).await;
    assert_eq!(me["data"]["activeUser"]["name"], "Log Tester");
    // A failed login and a bad token are logged as events too.
    http.post(format!("{url}/auth/local/login?challenge=x"))
        .json(&json!({"email": "logs@example.org", "password": "wrong-Passw0rd-guess"}))
        .send()
        .await
        .unwrap();
    secrets.push("wrong-Passw0rd-guess".into());
    let forged = format!("{}{}", &pat[..10], "f".repeat(32));
    let res = http
        .post(format!("{url}/graphql"))
        .bearer_auth(&forged)
        .json(&json!({"query": "{ serverInfo { name } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // The browser side: a legacy (plain) challenge travels in the path, a password in a form.
    let plain_challenge = "PlainChallengeThatIsASecret0123456789";
    let res = http
        .get(format!("{url}/authn/verify/sca/{plain_challenge}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    http.post(format!("{url}/authn/login"))
        .form(&[
            ("email", "logs@example.org"),
            ("password", password),
            ("csrf", "x"),
        ])
        .send()
        .await
        .unwrap();
    secrets.push(plain_challenge.into());
    let revoke = gql(
        &url,
        &token,
        "mutation($t: String!) { apiTokenRevoke(token: $t) }",
        json!({"t": pat}),
    )
    .await;
    assert_eq!(revoke["data"]["apiTokenRevoke"], true);
    let res = http
        .post(format!("{url}/auth/logout"))
        .json(&json!({"token": rotated["token"], "refreshToken": rotated["refreshToken"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    for t in [
        &code,
        &second_code,
        &token,
        &refresh,
        &pat,
        &forged,
        &rotated["token"].as_str().unwrap().to_owned(),
        &rotated["refreshToken"].as_str().unwrap().to_owned(),
    ] {
        secrets.push(t.clone());
        secrets.push(t[10..].to_owned());
    }
    let (clean, _, logs) = terminate(served);
    assert!(clean);
    assert!(
        logs.contains("/auth/token")
            && logs.contains("/graphql")
            && logs.contains("/authn/verify/{app_id}/{challenge}")
            && logs.contains("DEBUG"),
        "the server did log the run verbosely:\n{logs}"
    );
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret ({}…) appears in the logs",
            &secret[..4]
        );
    }
}

/// README.md's curl walk-through, run as written against a fresh server.
#[tokio::test]
async fn readme_walkthrough_works() {
    let readme = include_str!("../../../README.md");
    let block = readme
        .split("<!-- walkthrough:start -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- walkthrough:end -->").next())
        .expect("README.md has a walk-through block");
    let script = block
        .trim()
        .trim_start_matches("```sh")
        .trim_end_matches("```");
    assert!(script.contains("SERVER=http://localhost:3000"));
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &["--bind", "127.0.0.1:0"], &[]);
    let script = script.replace(
        "SERVER=http://localhost:3000",
        &format!("SERVER={}", served.url),
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pat_line = stdout
        .lines()
        .find(|l| l.starts_with("Your personal access token: "))
        .unwrap();
    assert_eq!(
        pat_line.len(),
        "Your personal access token: ".len() + 42,
        "{pat_line}"
    );
    let last = stdout.lines().last().unwrap();
    let body: Value = serde_json::from_str(last).unwrap();
    assert_eq!(body["data"]["activeUser"]["name"], "Ada Lovelace");
    assert_eq!(body["data"]["activeUser"]["email"], "ada@example.com");
    assert!(terminate(served).0);
}

/// docs/ARCHITECTURE.md, "Logs": `--access-log full` writes a line per request, the default
/// (`sampled`) one in a hundred, `errors` none for requests that went well; a mode that does not
/// exist is refused at start.
#[tokio::test]
async fn the_request_log_is_full_sampled_or_errors_only() {
    let lines = async |args: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let mut all = vec!["--bind", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let served = serve(dir.path(), &all, &[]);
        let http = client();
        for _ in 0..150 {
            let res = http
                .get(format!("{}/liveness", served.url))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
        }
        let (clean, _, log) = terminate(served);
        assert!(clean);
        log.lines()
            .filter(|l| l.contains("route=/liveness") && l.contains("status=200"))
            .count()
    };
    assert_eq!(lines(&["--access-log", "full"]).await, 150);
    let sampled = lines(&[]).await;
    assert!(
        (1..=2).contains(&sampled),
        "{sampled} lines for 150 requests"
    );
    assert_eq!(lines(&["--access-log", "errors"]).await, 0);

    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--bind", "127.0.0.1:0", "--access-log", "loud"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("access_log must be full, sampled or errors"),
        "{said}"
    );
}
