//! `tessera serve` under trouble: a second server on one data directory, a broken database, an
//! unreachable or refusing PostgreSQL, and a kill -9 in the middle of token creations and
//! revocations (every acknowledged one must survive the restart).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

mod common;
use common::{access_code, exchange, try_gql as gql};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

fn command(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .args(["--bind", "127.0.0.1:0", "--rate-limits", "off"])
        .args(args)
        .current_dir(dir)
        .env_remove("TESSERA_DATABASE_URL")
        .env_remove("TESSERA_BIND");
    cmd
}

/// Starts a server and returns it with its URL.
fn start(dir: &std::path::Path, args: &[&str]) -> (Child, String) {
    let mut child = command(dir, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("Tessera is serving ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    // Keep reading stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in stdout.lines() {});
    (child, url)
}

/// Runs a server that must fail to start; returns its stderr and how long it took.
fn fails_to_start(dir: &std::path::Path, args: &[&str]) -> (String, Duration) {
    let started = Instant::now();
    let out = command(dir, args).output().unwrap();
    assert!(!out.status.success(), "{args:?} should not start");
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_second_server_on_one_data_directory_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, _) = start(dir.path(), &[]);
    let (stderr, _) = fails_to_start(dir.path(), &[]);
    assert!(
        stderr.contains("in use by another Tessera server"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("process {}", first.id())),
        "names the process: {stderr}"
    );
    assert!(
        stderr.contains("PostgreSQL"),
        "says what replicas need: {stderr}"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    // Once the first is gone (even killed), the directory is free again.
    let (mut again, _) = start(dir.path(), &[]);
    again.kill().unwrap();
    again.wait().unwrap();
}

#[test]
fn a_broken_database_gives_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tessera-data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("tessera.db"), vec![0x42; 8192]).unwrap();
    let (stderr, took) = fails_to_start(dir.path(), &[]);
    assert!(stderr.contains("not a SQLite database"), "{stderr}");
    assert_eq!(
        stderr
            .trim()
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        took < Duration::from_secs(8),
        "at once, not after a pool timeout: {took:?}"
    );

    let (stderr, took) = fails_to_start(
        dir.path(),
        &["--database-url", "postgres://postgres@127.0.0.1:1/tessera"],
    );
    assert!(
        stderr.contains("cannot reach the database server"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(8), "{took:?}");

    let unreadable = dir.path().join("missing-dir/x.db");
    let (stderr, _) = fails_to_start(
        dir.path(),
        &[
            "--database-url",
            &format!("sqlite://{}", unreadable.display()),
        ],
    );
    assert!(stderr.contains("cannot"), "{stderr}");
}

fn postgres_admin_url() -> Option<String> {
    match std::env::var("TESSERA_TEST_DATABASE_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var("TESSERA_TEST_REQUIRE_ALL").as_deref() == Ok("1") => {
            panic!("TESSERA_TEST_DATABASE_URL is not set (TESSERA_TEST_REQUIRE_ALL=1)")
        }
        Err(_) => {
            eprintln!("SKIPPED: the PostgreSQL part needs TESSERA_TEST_DATABASE_URL");
            None
        }
    }
}

/// A fresh PostgreSQL database (through psql), dropped by the caller.
fn fresh_postgres(admin: &str, name: &str) -> String {
    let status = Command::new("psql")
        .args([admin, "-qc", &format!("CREATE DATABASE \"{name}\"")])
        .status()
        .expect("psql");
    assert!(status.success());
    let base = admin.split('?').next().unwrap();
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    format!("{base}/{name}")
}

fn drop_postgres(admin: &str, name: &str) {
    let _ = Command::new("psql")
        .args([
            admin,
            "-qc",
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        ])
        .status();
}

#[test]
fn postgres_refusals_are_explained() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let base = admin.split('?').next().unwrap();
    let (host, _) = base.rsplit_once('/').unwrap();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let dir = tempfile::tempdir().unwrap();
    let (stderr, took) = fails_to_start(
        dir.path(),
        &[
            "--database-url",
            &format!("postgres://no_such_role:pw@{host}/postgres"),
        ],
    );
    assert!(
        stderr.contains("PostgreSQL refused the user name or password"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(":pw@"),
        "the password is not echoed: {stderr}"
    );
    assert!(took < Duration::from_secs(8), "{took:?}");
    let (stderr, _) = fails_to_start(
        dir.path(),
        &[
            "--database-url",
            &format!("postgres://postgres@{host}/no_such_database_here"),
        ],
    );
    assert!(stderr.contains("does not exist"), "{stderr}");
}

async fn whoami(url: &str, token: &str) -> u16 {
    common::client()
        .post(format!("{url}/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": "{ activeUser { id } }"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Creates and revokes tokens in a loop while the server is killed with SIGKILL, restarts it on
/// the same data and checks every acknowledged creation and revocation.
async fn kill_during_writes(dir: &std::path::Path, args: &[&str]) {
    let (mut server, url) = start(dir, args);
    let client = common::client();
    let res = client
        .post(format!("{url}/auth/local/register?challenge=kill"))
        .json(&json!({"email": "kill@example.org", "password": "password123", "name": "K"}))
        .send()
        .await
        .unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let pair = exchange(&url, &access_code(&location), "kill").await;
    let web = pair["token"].as_str().unwrap().to_owned();

    let writer = tokio::spawn({
        let (url, web) = (url.clone(), web.clone());
        async move {
            let (mut alive, mut revoked) = (Vec::new(), Vec::new());
            for i in 0.. {
                let created = gql(
                    &url,
                    &web,
                    "mutation($t: ApiTokenCreateInput!) { apiTokenCreate(token: $t) }",
                    json!({"t": {"name": format!("t{i}"), "scopes": ["profile:read"]}}),
                )
                .await;
                let Some(token) = created
                    .ok()
                    .and_then(|b| b["data"]["apiTokenCreate"].as_str().map(str::to_owned))
                else {
                    break;
                };
                if i % 2 == 1 {
                    let answer = gql(
                        &url,
                        &web,
                        "mutation($t: String!) { apiTokenRevoke(token: $t) }",
                        json!({"t": token}),
                    )
                    .await;
                    match answer {
                        Ok(b) if b["data"]["apiTokenRevoke"] == true => revoked.push(token),
                        // Not acknowledged: either outcome is allowed.
                        _ => break,
                    }
                } else {
                    alive.push(token);
                }
            }
            (alive, revoked)
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    Command::new("kill")
        .args(["-KILL", &server.id().to_string()])
        .status()
        .unwrap();
    server.wait().unwrap();
    let (alive, revoked) = writer.await.unwrap();
    assert!(
        alive.len() + revoked.len() >= 4,
        "the loop ran before the kill"
    );

    let (mut again, url) = start(dir, args);
    for token in &alive {
        assert_eq!(
            whoami(&url, token).await,
            200,
            "an acknowledged token survives"
        );
    }
    for token in &revoked {
        assert_eq!(
            whoami(&url, token).await,
            403,
            "an acknowledged revocation survives"
        );
    }
    again.kill().unwrap();
    again.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_kill_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    kill_during_writes(dir.path(), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_kill_on_postgres() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let name = format!("tessera_kill_{}", std::process::id());
    let url = fresh_postgres(&admin, &name);
    let dir = tempfile::tempdir().unwrap();
    kill_during_writes(dir.path(), &["--database-url", &url]).await;
    drop_postgres(&admin, &name);
}
