//! Test support shared by the store's conformance suite, the server's API tests and the SDK's
//! tests: the test Python (with specklepy), a database
//! that exists for one test (a temporary SQLite file, or a fresh PostgreSQL database when
//! `TESSERA_TEST_DATABASE_URL` is set), and the rule for tests whose dependency is missing: skip
//! loudly, or fail when `TESSERA_TEST_REQUIRE_ALL=1` (as CI sets it).

#![allow(clippy::unwrap_used)]

use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A dependency outside cargo is missing: skip with a reason, unless CI demands everything.
pub fn missing(what: &str) -> Option<()> {
    if std::env::var("TESSERA_TEST_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("{what} (TESSERA_TEST_REQUIRE_ALL=1, so this is a failure, not a skip)");
    }
    eprintln!("SKIPPED: {what}");
    None
}

/// The Python the client tests run (`TESSERA_TEST_PYTHON`, else the repository's `.venv`, which
/// `.ci/run` creates), if `module` imports there; otherwise a loud skip (a failure in CI).
pub fn python_with(module: &str) -> Option<std::path::PathBuf> {
    let python = std::env::var_os("TESSERA_TEST_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python").into());
    let ok = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    missing(&format!(
        "{module} is not importable with {} (set TESSERA_TEST_PYTHON or run .ci/run)",
        python.display()
    ))?;
    None
}

/// A database that disappears with the test.
pub enum TestDb {
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

pub async fn fresh_database(backend: Backend) -> Option<(String, TestDb)> {
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
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).expect("randomness");
            let name = format!("tessera_test_{}", hex::encode(bytes));
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
