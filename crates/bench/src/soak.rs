//! The soak (bench/README.md): a long run of mixed traffic, counting every failure and sampling
//! the process's resident memory. The traffic: wrk on the authenticated query at 16 connections
//! for the whole run; meanwhile one connection makes a personal access token, uses it and
//! revokes it, over and over (the token cache and the tokens table churn), and another renews
//! an app's pair again and again (refresh tokens rotate, rows pile up).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::json;

use crate::server::{self, Target};
use crate::tokens::rss_mb;
use crate::{workloads, wrk};

pub struct Outcome {
    pub seconds: f64,
    /// (seconds since the start, resident MB), every few seconds.
    pub rss: Vec<(f64, f64)>,
    pub graphql: wrk::Run,
    /// Tokens made, used and revoked.
    pub churned: u64,
    /// Pairs renewed.
    pub refreshed: u64,
    /// wrk's errors and non-2xx answers, and failed churn or refresh steps.
    pub failures: u64,
    /// Where the failures were, and what the first refused step said (empty when none).
    pub detail: String,
}

impl Outcome {
    /// Resident memory at the sample nearest to `t` seconds.
    pub fn rss_at(&self, t: f64) -> f64 {
        self.rss
            .iter()
            .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))
            .map_or(f64::NAN, |s| s.1)
    }
}

/// Make a token, use it, revoke it; an error if any step is refused.
async fn churn_once(http: &reqwest::Client, url: &str, owner: &str, n: u64) -> Result<()> {
    let made = server::graphql(
        http,
        url,
        owner,
        "mutation($t: ApiTokenCreateInput!) { apiTokenCreate(token: $t) }",
        json!({"t": {"name": format!("soak {n}"), "scopes": ["profile:read"]}}),
    )
    .await?;
    let Some(token) = made["apiTokenCreate"].as_str() else {
        bail!("apiTokenCreate answered {made}");
    };
    server::graphql(http, url, token, "{ activeUser { id } }", json!({})).await?;
    server::graphql(
        http,
        url,
        owner,
        "mutation($t: String!) { apiTokenRevoke(token: $t) }",
        json!({"t": token}),
    )
    .await?;
    Ok(())
}

pub async fn run(target: &Target, seconds: u64, scratch: &Path) -> Result<Outcome> {
    let app = server::create_app(&target.url, &target.token).await?;
    let http = server::http();
    let code = server::access_code(&http, &target.url, &app, &target.token).await?;
    let mut pair = server::exchange(&http, &target.url, &app, &code).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let churn_failed = Arc::new(AtomicU64::new(0));
    let renew_failed = Arc::new(AtomicU64::new(0));
    let first = workloads::FirstFailure::default();
    let started = Instant::now();

    let churn = {
        let (stop, failures, http) = (stop.clone(), churn_failed.clone(), http.clone());
        let (url, owner, first) = (target.url.clone(), target.token.clone(), first.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                match churn_once(&http, &url, &owner, n).await {
                    Ok(()) => n += 1,
                    Err(e) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        first.note(Some("token churn"), &e);
                    }
                }
            }
            n
        })
    };
    let renew = {
        let (stop, failures, http) = (stop.clone(), renew_failed.clone(), http.clone());
        let (url, first) = (target.url.clone(), first.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                match server::refresh(&http, &url, &app, &pair.1).await {
                    Ok(renewed) => {
                        pair = renewed;
                        n += 1;
                    }
                    Err(e) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        first.note(Some("refresh"), &e);
                    }
                }
            }
            n
        })
    };
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                samples.push((started.elapsed().as_secs_f64(), rss_mb()));
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            samples.push((started.elapsed().as_secs_f64(), rss_mb()));
            samples
        })
    };

    let graphql = workloads::graphql_under_wrk(target, 16, seconds as f64, scratch).await;
    stop.store(true, Ordering::Relaxed);
    let (churned, refreshed, rss) = (churn.await?, renew.await?, sampler.await?);
    let graphql = graphql?;
    let (churn_failed, renew_failed) = (
        churn_failed.load(Ordering::Relaxed),
        renew_failed.load(Ordering::Relaxed),
    );
    let failures = churn_failed + renew_failed + graphql.errors + graphql.non2xx;
    let detail = if failures > 0 {
        detail(&graphql, churn_failed, renew_failed, first.take())
    } else {
        String::new()
    };
    Ok(Outcome {
        seconds: started.elapsed().as_secs_f64(),
        rss,
        graphql,
        churned,
        refreshed,
        failures,
        detail,
    })
}

/// Where a soak's failures were, and what the first refused step said.
fn detail(
    graphql: &wrk::Run,
    churn_failed: u64,
    renew_failed: u64,
    first: Option<String>,
) -> String {
    let mut detail = format!(
        "wrk's errors {} ({}), non-2xx answers {}, refused token churn steps {churn_failed}, \
         refused refreshes {renew_failed}",
        graphql.errors,
        graphql.error_kinds(),
        graphql.non2xx
    );
    if let Some(first) = first {
        detail.push_str(&format!("; the first refused step: {first}"));
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detail_names_every_kind_of_failure_and_the_first_refused_step() {
        let run: wrk::Run = serde_json::from_str(
            r#"{"requests":10,"duration_us":1000000,"errors":3,"connect":0,"read":1,"write":0,
                "timeout":2,"non2xx":4,"p50_us":1.0,"p99_us":2.0}"#,
        )
        .unwrap();
        let first = workloads::FirstFailure::default();
        first.note(
            Some("refresh"),
            &anyhow::anyhow!("/auth/token answered 400"),
        );
        first.note(Some("token churn"), &anyhow::anyhow!("a later failure"));
        assert_eq!(
            detail(&run, 5, 6, first.take()),
            "wrk's errors 3 (connect 0, read 1, write 0, timeout 2), non-2xx answers 4, refused \
             token churn steps 5, refused refreshes 6; the first refused step: refresh: \
             /auth/token answered 400"
        );
        assert_eq!(first.take(), None, "taken once");
    }
}
