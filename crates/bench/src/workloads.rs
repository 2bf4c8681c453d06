//! The workloads (bench/README.md says what each measures and why). Each returns raw runs; the
//! report takes medians and ratios.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};
use tessera_core::domain::auth::{TokenCache, TokenSource};
use tessera_core::model::TokenAuthRecord;
use tessera_proto::{PlainToken, ScopeSet, ServerRole};

use crate::server::{self, PASSWORD, Target};
use crate::wrk;

/// The authenticated query of the issue, as a Speckle client's "who am I, where am I".
pub const QUERY: &str =
    "{ activeUser { id name email } serverInfo { name version scopes { name } } }";

pub fn graphql_body() -> String {
    json!({ "query": QUERY }).to_string()
}

/// Checks once, before measuring, that the query answers 200 with the user: a benchmark of
/// refusals would be worthless.
pub async fn check_graphql(target: &Target) -> Result<()> {
    let res = server::http()
        .post(format!("{}/graphql", target.url))
        .bearer_auth(&target.token)
        .header("content-type", "application/json")
        .body(graphql_body())
        .send()
        .await?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status != 200 || body["data"]["activeUser"]["id"].as_str().is_none() {
        bail!("the GraphQL workload is refused ({status}): {body}");
    }
    Ok(())
}

/// One wrk run of the authenticated query at `connections`, off the async threads.
pub async fn graphql_under_wrk(
    target: &Target,
    connections: usize,
    seconds: f64,
    scratch: &Path,
) -> Result<wrk::Run> {
    let body = graphql_body();
    let (url, token, scratch) = (target.url.clone(), target.token.clone(), scratch.to_owned());
    tokio::task::spawn_blocking(move || {
        let request = wrk::Request {
            method: "POST",
            path: "/graphql",
            body: Some(&body),
            bearer: Some(&token),
        };
        wrk::run(&url, &request, connections, seconds, &scratch)
    })
    .await?
}

/// Throughput and latency of the authenticated query and of the same server's trivial route, at
/// one concurrency: `runs` of each, interleaved so that drift hits both alike.
pub struct Point {
    pub connections: usize,
    pub graphql: Vec<wrk::Run>,
    pub baseline: Vec<wrk::Run>,
}

pub fn http_pair(
    target: &Target,
    baseline_path: &str,
    connections: &[usize],
    runs: usize,
    seconds: f64,
    scratch: &Path,
) -> Result<Vec<Point>> {
    let body = graphql_body();
    let graphql = wrk::Request {
        method: "POST",
        path: "/graphql",
        body: Some(&body),
        bearer: Some(&target.token),
    };
    let baseline = wrk::Request {
        method: "GET",
        path: baseline_path,
        body: None,
        bearer: None,
    };
    // Warm up: connections, caches, the allocator.
    wrk::run(&target.url, &graphql, 4, 1.0, scratch)?;
    let mut points: Vec<Point> = connections
        .iter()
        .map(|&c| Point {
            connections: c,
            graphql: Vec::new(),
            baseline: Vec::new(),
        })
        .collect();
    for _ in 0..runs {
        for point in &mut points {
            point.baseline.push(wrk::run(
                &target.url,
                &baseline,
                point.connections,
                seconds,
                scratch,
            )?);
            point.graphql.push(wrk::run(
                &target.url,
                &graphql,
                point.connections,
                seconds,
                scratch,
            )?);
        }
    }
    Ok(points)
}

/// Tokens in memory for the in-process check (a hit never reaches them).
struct InMemory(HashMap<String, TokenAuthRecord>);

#[async_trait::async_trait]
impl TokenSource for InMemory {
    async fn token_for_auth(
        &self,
        id: &str,
    ) -> tessera_core::error::Result<Option<TokenAuthRecord>> {
        Ok(self.0.get(id).cloned())
    }

    async fn delete_token(&self, _: &str, _: Option<&str>) -> tessera_core::error::Result<bool> {
        Ok(false)
    }
}

/// Nanoseconds per bearer check that hits the cache (parse, SHA-256, lookup, digest compare,
/// the caller's `Auth` cloned), one run per entry, with 100,000 tokens cached.
pub async fn bearer_in_process(runs: usize, checks_per_run: usize) -> Result<Vec<f64>> {
    const CACHED: usize = 100_000;
    let tokens: Vec<PlainToken> = (0..CACHED as u64)
        .map(|i| {
            let mut bytes = [0x5a; 21];
            bytes[..8].copy_from_slice(&i.to_le_bytes());
            PlainToken::from_random_bytes(bytes)
        })
        .collect();
    let records = tokens
        .iter()
        .map(|t| {
            let record = TokenAuthRecord {
                id: t.id().into(),
                digest: t.digest(),
                owner_id: "bench-user".into(),
                owner_role: ServerRole::User,
                scopes: ScopeSet::registered(),
                app_id: None,
                created_at: 0,
                lifespan: i64::MAX,
                name: "bench".into(),
                resources: Vec::new(),
            };
            (t.id().to_owned(), record)
        })
        .collect();
    let source = InMemory(records);
    let cache = TokenCache::new(CACHED * 2, 3_600_000);
    for t in &tokens {
        cache.authenticate(&source, t.expose(), 1).await?;
    }
    // The presented tokens, one after another in one buffer, as a request's token sits in the
    // request just read; the cache entries they hit are spread over the whole cache.
    let presented: String = (0..checks_per_run.min(CACHED))
        .map(|i| tokens[(i * 7919) % CACHED].expose())
        .collect();
    const LEN: usize = tessera_proto::token::TOKEN_LEN;
    let texts: Vec<&str> = (0..presented.len() / LEN)
        .map(|i| &presented[i * LEN..(i + 1) * LEN])
        .collect();
    let mut per_check = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        for i in 0..checks_per_run {
            let t = texts[i % texts.len()];
            std::hint::black_box(cache.authenticate(&source, t, 2).await?);
        }
        per_check.push(started.elapsed().as_nanos() as f64 / checks_per_run as f64);
    }
    Ok(per_check)
}

/// How often a piece of work completed, and how it failed when it did.
#[derive(Debug, Default)]
pub struct Rate {
    pub per_second: f64,
    pub failed: u64,
    /// What went wrong the first time, so a failure in the report can be looked into.
    pub first_failure: Option<String>,
}

/// The first failure message of work that runs on several tasks at once; later ones are counted
/// elsewhere, not kept.
#[derive(Clone, Default)]
pub struct FirstFailure(Arc<std::sync::Mutex<Option<String>>>);

impl FirstFailure {
    /// Keeps `e` (with `step` before it, when given) unless a failure was kept already.
    pub fn note(&self, step: Option<&str>, e: &anyhow::Error) {
        let mut first = self.0.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(|| match step {
            Some(step) => format!("{step}: {e:#}"),
            None => format!("{e:#}"),
        });
    }

    pub fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// The failures of several runs, for the report.
#[derive(Debug, Default)]
pub struct Failures {
    pub count: u64,
    pub first: Option<String>,
}

impl Failures {
    /// Counts `rate`'s failures (keeping the first message seen) and returns its rate.
    pub fn add(&mut self, rate: Rate) -> f64 {
        self.count += rate.failed;
        if self.first.is_none() {
            self.first = rate.first_failure;
        }
        rate.per_second
    }
}

impl std::fmt::Display for Failures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.first {
            Some(first) if self.count > 0 => write!(f, "{} (the first: {first})", self.count),
            _ => write!(f, "{}", self.count),
        }
    }
}

/// Runs `work` on `tasks` tasks for `seconds`: how many times it completed per second, and how
/// many times it failed.
async fn per_second<F, Fut>(tasks: usize, seconds: f64, work: F) -> Result<Rate>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let work = Arc::new(work);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let first_failure = FirstFailure::default();
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut handles = Vec::new();
    for task in 0..tasks {
        let (work, done, failed, first) = (
            work.clone(),
            done.clone(),
            failed.clone(),
            first_failure.clone(),
        );
        handles.push(tokio::spawn(async move {
            while Instant::now() < until {
                match work(task).await {
                    Ok(()) => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        first.note(None, &e);
                    }
                }
            }
        }));
    }
    for h in handles {
        h.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Rate {
        per_second: done.load(Ordering::Relaxed) as f64 / elapsed,
        failed: failed.load(Ordering::Relaxed),
        first_failure: first_failure.take(),
    })
}

/// Access codes exchanged per second (`/auth/accesscode` then `/auth/token`), on `tasks`
/// connections.
pub async fn exchanges(
    target: &Target,
    app: &server::App,
    tasks: usize,
    seconds: f64,
) -> Result<Rate> {
    let (url, token, app) = (target.url.clone(), target.token.clone(), app.clone());
    let http = server::http();
    per_second(tasks, seconds, move |_| {
        let (http, url, token, app) = (http.clone(), url.clone(), token.clone(), app.clone());
        async move {
            let code = server::access_code(&http, &url, &app, &token).await?;
            server::exchange(&http, &url, &app, &code).await.map(|_| ())
        }
    })
    .await
}

/// Refreshes per second: each task renews its own pair over and over (refresh tokens rotate,
/// so each renewal uses the token the last one returned).
pub async fn refreshes(
    target: &Target,
    app: &server::App,
    tasks: usize,
    seconds: f64,
) -> Result<Rate> {
    let http = server::http();
    let mut pairs = Vec::new();
    for _ in 0..tasks {
        let code = server::access_code(&http, &target.url, app, &target.token).await?;
        pairs.push(tokio::sync::Mutex::new(
            server::exchange(&http, &target.url, app, &code).await?.1,
        ));
    }
    let pairs = Arc::new(pairs);
    let (url, app) = (target.url.clone(), app.clone());
    per_second(tasks, seconds, move |task| {
        let (http, url, pairs, app) = (http.clone(), url.clone(), pairs.clone(), app.clone());
        async move {
            let mut refresh = pairs[task].lock().await;
            let renewed = server::refresh(&http, &url, &app, &refresh).await?;
            *refresh = renewed.1;
            Ok(())
        }
    })
    .await
}

/// Sign-ins with the right password per second (each costs one argon2 verification), on
/// `tasks` connections.
pub async fn sign_ins(target: &Target, email: &str, tasks: usize, seconds: f64) -> Result<Rate> {
    let http = server::http();
    let (url, email) = (target.url.clone(), email.to_owned());
    per_second(tasks, seconds, move |_| {
        let (http, url, email) = (http.clone(), url.clone(), email.clone());
        async move {
            let res = http
                .post(format!("{url}/auth/local/login?challenge=bench"))
                .form(&[("email", email.as_str()), ("password", PASSWORD)])
                .send()
                .await?;
            if res.status() != 302 {
                bail!("sign-in answered {}", res.status());
            }
            Ok(())
        }
    })
    .await
}

/// One argon2 hash with Tessera's parameters, in milliseconds (median of `n`), on this machine.
pub async fn argon2_ms(n: usize) -> Result<f64> {
    let passwords = tessera_core::domain::passwords::Passwords::new(1)?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        passwords.hash("a bench password".into()).await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(crate::report::median(&times))
}

/// While `flooders` tasks send wrong-password sign-ins as fast as they are answered, wrk
/// measures the authenticated query at `connections`: its runs, and the sign-ins answered.
pub async fn during_flood(
    target: &Target,
    email: &str,
    flooders: usize,
    connections: usize,
    seconds: f64,
    scratch: &Path,
) -> Result<(wrk::Run, u64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..flooders {
        let (stop, answered) = (stop.clone(), answered.clone());
        let (http, url, email) = (server::http(), target.url.clone(), email.to_owned());
        handles.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let sent = http
                    .post(format!("{url}/auth/local/login?challenge=bench"))
                    .form(&[("email", email.as_str()), ("password", "not the password")])
                    .send()
                    .await;
                if sent.is_ok() {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Let the flood fill the hashers' queue first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let run = graphql_under_wrk(target, connections, seconds, scratch).await;
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.await;
    }
    Ok((run?, answered.load(Ordering::Relaxed)))
}

/// Milliseconds from a revocation acknowledged by replica A to the first refusal of the token by
/// replica B (which had it cached), `rounds` times. B is asked every millisecond.
pub async fn revocation_across_replicas(a: &Target, b: &Target, rounds: usize) -> Result<Vec<f64>> {
    let http = server::http();
    let whoami = async |url: &str, token: &str| -> Result<u16> {
        Ok(http
            .post(format!("{url}/graphql"))
            .bearer_auth(token)
            .json(&json!({"query": "{ activeUser { id } }"}))
            .send()
            .await?
            .status()
            .as_u16())
    };
    let mut times = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let made = server::graphql(
            &http,
            &a.url,
            &a.token,
            "mutation($t: ApiTokenCreateInput!) { apiTokenCreate(token: $t) }",
            json!({"t": {"name": format!("replica round {round}"), "scopes": ["profile:read"]}}),
        )
        .await?;
        let Some(token) = made["apiTokenCreate"].as_str() else {
            bail!("apiTokenCreate answered {made}");
        };
        if whoami(&b.url, token).await? != 200 {
            bail!("replica B refused a fresh token");
        }
        server::graphql(
            &http,
            &a.url,
            &a.token,
            "mutation($t: String!) { apiTokenRevoke(token: $t) }",
            json!({"t": token}),
        )
        .await?;
        let revoked = Instant::now();
        loop {
            if whoami(&b.url, token).await? == 403 {
                break;
            }
            if revoked.elapsed() > Duration::from_secs(120) {
                bail!("replica B still accepts a token revoked on A two minutes ago");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        times.push(revoked.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_of_several_runs_add_up_and_keep_the_first_message() {
        let mut failures = Failures::default();
        assert_eq!(failures.to_string(), "0");
        let quiet = Rate {
            per_second: 10.0,
            ..Rate::default()
        };
        assert_eq!(failures.add(quiet), 10.0);
        let first = FirstFailure::default();
        first.note(None, &anyhow::anyhow!("sign-in answered 500"));
        first.note(None, &anyhow::anyhow!("a later one"));
        let failing = Rate {
            per_second: 8.0,
            failed: 2,
            first_failure: first.take(),
        };
        assert_eq!(failures.add(failing), 8.0);
        let again = Rate {
            per_second: 9.0,
            failed: 1,
            first_failure: Some("not kept".into()),
        };
        failures.add(again);
        assert_eq!(failures.to_string(), "3 (the first: sign-in answered 500)");
    }
}
