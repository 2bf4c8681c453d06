//! `tessera-bench`: measures Tessera side by side with a baseline of the same run (bench/README.md).
//!
//! ```sh
//! cargo run -p tessera-bench --release                 # every workload, 3 runs, writes bench/RESULTS.md
//! cargo run -p tessera-bench --release -- --smoke      # the smallest workload once (what CI runs)
//! cargo run -p tessera-bench --release -- --against https://speckle.example.org --token <token>
//! ```

mod report;
mod server;
mod soak;
mod tokens;
mod workloads;
mod wrk;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

use report::{Check, Medians, Report, median, percentile};
use server::Target;

/// Speckle's own server on this kind of machine (../shared/reference/anchors.md): the query of
/// the GraphQL workload, authenticated, at c=16.
const SPECKLE_GRAPHQL_RPS: f64 = 26.5;
/// Speckle's access code exchanges per second (two bcrypts and their writes each).
const SPECKLE_EXCHANGES_PER_SECOND: f64 = 8.0;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Workload {
    /// Authenticated GraphQL and the trivial route, at each --connections
    Graphql,
    /// A bearer check that hits the cache, in process
    Bearer,
    /// Access code exchanges and refreshes per second
    Exchange,
    /// Sign-ins per second against the argon2 limit
    Signin,
    /// GraphQL latency while 50 wrong-password sign-ins run at once
    Flood,
    /// Two replicas on one PostgreSQL: revocation on one to rejection on the other (needs
    /// --database-url postgres://…)
    Replicas,
    /// --tokens in an SQLite store, --tokens-in-use of them presented: miss and hit latency
    /// against a store of --tokens-small, and memory
    Tokens,
    /// --soak-seconds of mixed traffic: failures, and memory over time
    Soak,
}

/// Starts Tessera (or uses --against), drives the workloads with wrk on loopback, and writes a
/// report of medians and ratios with a plot.
#[derive(Parser, Debug)]
#[command(
    version,
    after_help = "Examples:\n  tessera-bench                              every workload, writes bench/RESULTS.md and bench/plot.svg\n  tessera-bench --only graphql --runs 5      one workload, more runs\n  tessera-bench --database-url postgres://postgres@127.0.0.1/bench\n  tessera-bench --against http://localhost:3000 --token <token>   another server, same workloads\n  tessera-bench --smoke --out /tmp/bench     the smallest workload once\n\nNeeds wrk (Debian: apt-get install wrk)."
)]
struct Args {
    /// Measure this Speckle-compatible server instead of starting Tessera (Speckle's own, an
    /// older Tessera): the GraphQL workload only, with --token as the caller
    #[arg(long, value_name = "URL")]
    against: Option<String>,
    /// With --against: a token that may read the profile (profile:read)
    #[arg(
        long,
        env = "SPECKLE_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// The trivial route the GraphQL throughput is compared with
    #[arg(long, default_value = "/liveness", value_name = "PATH")]
    baseline_path: String,
    /// Start Tessera on this PostgreSQL database instead of a fresh embedded SQLite file
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Runs of each measurement; the report shows medians
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds each run lasts
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Connections for the GraphQL workload (comma-separated)
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16, 64])]
    connections: Vec<usize>,
    /// Only these workloads (comma-separated) [default: all]
    #[arg(long, value_delimiter = ',')]
    only: Vec<Workload>,
    /// Runtime threads of the Tessera it starts [default: the cores]
    #[arg(long)]
    workers: Option<usize>,
    /// The folder RESULTS.md and plot.svg are written to
    #[arg(long, default_value = "bench", value_name = "DIR")]
    out: PathBuf,
    /// Tokens in the large store of the tokens workload
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    tokens: usize,
    /// Tokens in the small store its misses are compared with
    #[arg(long, default_value_t = 1_000, value_name = "N")]
    tokens_small: usize,
    /// Distinct tokens presented on the large store
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    tokens_in_use: usize,
    /// How long the soak lasts
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    soak_seconds: u64,
    /// The smallest workloads once: GraphQL at one connection for one second, the tokens
    /// workload with 2,000 tokens, and a soak of 3 s
    #[arg(long)]
    smoke: bool,
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{} cores, {model}", cores())
}

fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

async fn run(args: Args) -> Result<()> {
    if args.runs == 0
        || args.seconds == 0
        || args.connections.contains(&0)
        || args.soak_seconds == 0
    {
        bail!("--runs, --seconds, --soak-seconds and every --connections must be at least 1");
    }
    let sizes = if args.smoke {
        tokens::Sizes {
            small: 200,
            large: 2_000,
            in_use: 200,
        }
    } else {
        tokens::Sizes {
            small: args.tokens_small,
            large: args.tokens,
            in_use: args.tokens_in_use,
        }
    };
    if sizes.small == 0
        || sizes.in_use == 0
        || sizes.small > sizes.large
        || sizes.in_use > sizes.large
    {
        bail!(
            "the token counts must be 0 < --tokens-small ≤ --tokens and 0 < --tokens-in-use ≤ --tokens"
        );
    }
    let soak_seconds = if args.smoke { 3 } else { args.soak_seconds };
    if !wrk::available() {
        bail!("wrk is not installed: apt-get install wrk (Debian), brew install wrk (macOS)");
    }
    let (runs, seconds, connections) = if args.smoke {
        (1, 1.0, vec![1])
    } else {
        (args.runs, args.seconds as f64, args.connections.clone())
    };
    let wanted = |w: Workload| {
        if args.smoke {
            matches!(w, Workload::Graphql | Workload::Tokens | Workload::Soak)
        } else {
            args.only.is_empty() || args.only.contains(&w)
        }
    };
    let workers = args.workers.unwrap_or_else(cores);
    let mut target = match &args.against {
        Some(url) => {
            let token = args.token.clone().context(
                "--against needs --token (or SPECKLE_TOKEN): a token that may read the profile",
            )?;
            Target::against(url, token)
        }
        None => Target::start(args.database_url.as_deref(), workers).await?,
    };
    workloads::check_graphql(&target).await?;
    let scratch = tempfile::tempdir()?;
    let mut report = Report::default();
    report.header.push(format!(
        "Machine: {}; load generator wrk on the same cores, loopback",
        machine()
    ));
    report.header.push(format!(
        "Server: {} (bench at commit {}), {}",
        if target.ours {
            "Tessera started by the bench"
        } else {
            "an external server"
        },
        commit(),
        match (&args.against, &args.database_url) {
            (Some(url), _) => format!("at {url}"),
            (None, Some(_)) => format!("PostgreSQL, {workers} runtime threads, rate limits off"),
            (None, None) => format!("embedded SQLite, {workers} runtime threads, rate limits off"),
        }
    ));
    report.header.push(format!(
        "{runs} run(s) of {seconds} s per measurement; the trivial route is `GET {}`",
        args.baseline_path
    ));
    report
        .header
        .push(format!("The query: `{}`", workloads::QUERY));

    if wanted(Workload::Graphql) {
        eprintln!("graphql: {connections:?} connections, {runs} run(s) of {seconds} s");
        let points = {
            let (url, token) = (target.url.clone(), target.token.clone());
            let (path, connections, dir) = (
                args.baseline_path.clone(),
                connections.clone(),
                scratch.path().to_owned(),
            );
            tokio::task::spawn_blocking(move || {
                let view = Target::against(&url, token);
                workloads::http_pair(&view, &path, &connections, runs, seconds, &dir)
            })
            .await??
        };
        report.http = points.iter().map(Medians::of).collect();
        if let Some(m) = report.http.iter().find(|m| m.connections == 16) {
            report.checks.push(Check {
                workload: "authenticated GraphQL, c=16".into(),
                target: "≥ 0.25× the trivial route; ≥ 500× Speckle's 26.5 req/s; p99 ≤ 3 ms".into(),
                measured: format!(
                    "{:.2}× the trivial route ({:.0} / {:.0} req/s); {:.0}× Speckle; p99 {:.2} ms",
                    m.ratio(),
                    m.graphql_rps,
                    m.baseline_rps,
                    m.graphql_rps / SPECKLE_GRAPHQL_RPS,
                    m.graphql_p99_ms
                ),
                met: m.ratio() >= 0.25
                    && m.graphql_rps >= 500.0 * SPECKLE_GRAPHQL_RPS
                    && m.graphql_p99_ms <= 3.0
                    && m.failures == 0,
            });
        }
    }
    if !target.ours {
        eprintln!(
            "--against: only the GraphQL workload runs (the others need a server this bench seeds)"
        );
    }
    let ours = target.ours;
    if ours && wanted(Workload::Bearer) {
        eprintln!("bearer: in process, {runs} run(s)");
        let per_check = workloads::bearer_in_process(runs.max(3), 1_000_000).await?;
        let ns = median(&per_check);
        report.sections.push((
            "Bearer check in process".into(),
            format!(
                "A check that hits the cache (parse, SHA-256 of the secret, lookup among 100,000 \
                 cached tokens, constant-time compare, the caller cloned): **{ns:.0} ns** median \
                 over {} runs of 1,000,000 checks.",
                per_check.len()
            ),
        ));
        report.checks.push(Check {
            workload: "bearer check in process (cache hit)".into(),
            target: "≤ 1 µs".into(),
            measured: format!("{ns:.0} ns"),
            met: ns <= 1_000.0,
        });
    }
    if ours && wanted(Workload::Exchange) {
        eprintln!("exchange: {runs} run(s) of {seconds} s");
        let app = server::create_app(&target.url, &target.token).await?;
        let mut exchanged = Vec::new();
        let mut renewed = Vec::new();
        let mut failed = workloads::Failures::default();
        for _ in 0..runs {
            exchanged.push(failed.add(workloads::exchanges(&target, &app, 4, seconds).await?));
            renewed.push(failed.add(workloads::refreshes(&target, &app, 4, seconds).await?));
        }
        let (e, r) = (median(&exchanged), median(&renewed));
        report.sections.push((
            "Code exchange and refresh".into(),
            format!(
                "A third-party app (a connector), on 4 connections. An exchange is two requests (`GET /auth/accesscode` with a \
                 token, then `POST /auth/token`); a refresh is one (`POST /auth/token` with the \
                 refresh token the last one returned: they rotate). Every write is committed \
                 as the server commits it in production.\n\n| | per second (median) | × Speckle's ~8/s |\n\
                 | --- | --- | --- |\n| exchange | {e:.0} | {:.0}× |\n| refresh | {r:.0} | {:.0}× |\n\n\
                 Failed: {failed}.",
                e / SPECKLE_EXCHANGES_PER_SECOND,
                r / SPECKLE_EXCHANGES_PER_SECOND
            ),
        ));
        report.checks.push(Check {
            workload: "code exchange / refresh".into(),
            target: "≥ 100× Speckle's ~8/s".into(),
            measured: format!(
                "{:.0}× / {:.0}×",
                e / SPECKLE_EXCHANGES_PER_SECOND,
                r / SPECKLE_EXCHANGES_PER_SECOND
            ),
            met: e >= 800.0 && r >= 800.0 && failed.count == 0,
        });
    }
    let needs_user = ours && (wanted(Workload::Signin) || wanted(Workload::Flood));
    let person = if needs_user {
        Some(server::sign_up(&target.url, "signin").await?)
    } else {
        None
    };
    if let (Some(person), true) = (&person, wanted(Workload::Signin)) {
        eprintln!("signin: {runs} run(s) of {seconds} s");
        let hash_ms = workloads::argon2_ms(9).await?;
        let limit = cores() as f64 * 1000.0 / hash_ms;
        let mut rates = Vec::new();
        let mut failed = workloads::Failures::default();
        for _ in 0..runs {
            rates.push(
                failed
                    .add(workloads::sign_ins(&target, &person.email, 4 * cores(), seconds).await?),
            );
        }
        let rate = median(&rates);
        report.sections.push((
            "Sign-in".into(),
            format!(
                "One argon2id hash with Tessera's parameters takes {hash_ms:.1} ms here, so {} \
                 cores allow at most {limit:.0} sign-ins per second. Measured, on {} \
                 connections, right password: **{rate:.0}/s** ({:.2}× the limit). Failed: {failed}.",
                cores(),
                4 * cores(),
                rate / limit
            ),
        ));
        report.checks.push(Check {
            workload: "sign-in".into(),
            target: "≥ 0.8× (cores ÷ one argon2 hash time)".into(),
            measured: format!("{:.2}× ({rate:.0}/s of {limit:.0}/s)", rate / limit),
            met: rate >= 0.8 * limit && failed.count == 0,
        });
    }
    if let (Some(person), true) = (&person, wanted(Workload::Flood)) {
        eprintln!("flood: {runs} run(s) of {seconds} s, with and without");
        let mut quiet = Vec::new();
        let mut flooded = Vec::new();
        let mut answered = 0;
        for _ in 0..runs {
            quiet.push(workloads::graphql_under_wrk(&target, 16, seconds, scratch.path()).await?);
            let (run, n) =
                workloads::during_flood(&target, &person.email, 50, 16, seconds, scratch.path())
                    .await?;
            flooded.push(run);
            answered += n;
        }
        let p99 =
            |runs: &[wrk::Run]| median(&runs.iter().map(|r| r.p99_us / 1000.0).collect::<Vec<_>>());
        let rps =
            |runs: &[wrk::Run]| median(&runs.iter().map(wrk::Run::per_second).collect::<Vec<_>>());
        let failures: u64 = quiet
            .iter()
            .chain(&flooded)
            .map(|r| r.errors + r.non2xx)
            .sum();
        let (q, f) = (p99(&quiet), p99(&flooded));
        report.sections.push((
            "API latency during a sign-in flood".into(),
            format!(
                "Authenticated GraphQL at 16 connections, alone and while 50 connections send \
                 wrong-password sign-ins as fast as they are answered ({answered} answered in \
                 all), rate limits off.\n\n| | req/s | p99 ms |\n| --- | --- | --- |\n| alone | \
                 {:.0} | {q:.2} |\n| during the flood | {:.0} | {f:.2} |\n\nErrors and non-2xx \
                 answers: {failures}.",
                rps(&quiet),
                rps(&flooded)
            ),
        ));
        report.checks.push(Check {
            workload: "API p99 during a sign-in flood".into(),
            target: "≤ 10 ms, and ≤ 2× its p99 without the flood".into(),
            measured: format!("{f:.2} ms, {:.2}× ({q:.2} ms alone)", f / q),
            met: f <= 10.0 && f <= 2.0 * q && failures == 0,
        });
    }
    let on_postgres = args
        .database_url
        .as_deref()
        .is_some_and(|u| u.starts_with("postgres"));
    if ours && wanted(Workload::Replicas) {
        if let (true, Some(url)) = (on_postgres, args.database_url.as_deref()) {
            eprintln!("replicas: 100 revocations");
            let mut b = target.replica(url, workers).await?;
            let times = workloads::revocation_across_replicas(&target, &b, 100).await?;
            b.stop();
            let mut sorted = times.clone();
            sorted.sort_by(f64::total_cmp);
            let p99 = sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)];
            let (p50, max) = (median(&times), sorted[sorted.len() - 1]);
            report.sections.push((
                "Revocation across two replicas".into(),
                format!(
                    "Two Tessera servers on one PostgreSQL database. Each round makes a token on \
                     A, uses it on B (so B has it cached), revokes it on A, and asks B every \
                     millisecond until B refuses it. Over {} rounds: p50 **{p50:.1} ms**, p99 \
                     **{p99:.1} ms**, worst {max:.1} ms (PostgreSQL LISTEN/NOTIFY).",
                    times.len()
                ),
            ));
            report.checks.push(Check {
                workload: "revocation across two replicas".into(),
                target: "p99 ≤ 1 s".into(),
                measured: format!("p99 {p99:.1} ms"),
                met: p99 <= 1_000.0,
            });
        } else if args.only.contains(&Workload::Replicas) {
            bail!("the replicas workload needs --database-url postgres://…");
        } else {
            eprintln!("replicas: left out (it needs --database-url postgres://…)");
        }
    }
    if ours && wanted(Workload::Soak) {
        eprintln!("soak: {soak_seconds} s");
        let soaked = soak::run(&target, soak_seconds, scratch.path()).await?;
        let first_minute = soaked.rss_at(60.0_f64.min(soaked.seconds));
        let end = soaked.rss.last().map_or(f64::NAN, |s| s.1);
        let mut table = String::from("| after | resident MB |\n| --- | --- |\n");
        let minutes = (soaked.seconds / 60.0).floor() as usize;
        for t in (0..=minutes).map(|m| m as f64 * 60.0) {
            let _ = writeln!(table, "| {t:.0} s | {:.1} |", soaked.rss_at(t));
        }
        let _ = writeln!(table, "| {:.0} s (end) | {end:.1} |", soaked.seconds);
        report.sections.push((
            "Soak".into(),
            format!(
                "{:.0} s of mixed traffic on one server: authenticated GraphQL at 16 connections \
                 the whole time ({} requests, {:.0} req/s, p99 {:.2} ms); meanwhile one \
                 connection made, used and revoked {} personal access tokens, and another \
                 renewed an app's pair {} times (refresh tokens rotate). Failures of any kind \
                 (wrk's errors and non-2xx answers, refused steps): **{}**{}. Resident memory of \
                 the process (server and bench):\n\n{table}",
                soaked.seconds,
                soaked.graphql.requests,
                soaked.graphql.per_second(),
                soaked.graphql.p99_us / 1000.0,
                soaked.churned,
                soaked.refreshed,
                soaked.failures,
                if soaked.detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", soaked.detail)
                },
            ),
        ));
        report.checks.push(Check {
            workload: format!("soak ({:.0} s)", soaked.seconds),
            target: "0 errors; RSS at the end ≤ 1.2× RSS after the first minute".into(),
            measured: format!(
                "{} errors; {end:.1} MB at the end, {:.2}× the {first_minute:.1} MB after the first minute",
                soaked.failures,
                end / first_minute
            ),
            met: soaked.failures == 0 && end <= 1.2 * first_minute,
        });
    }
    target.stop();
    if ours && wanted(Workload::Tokens) {
        eprintln!(
            "tokens: {} then {} tokens, {} in use",
            sizes.small, sizes.large, sizes.in_use
        );
        let t = tokens::run(sizes, workers).await?;
        let us = |v: &[f64]| format!("{:.1} / {:.1}", median(v), percentile(v, 0.99));
        let (miss_ratio, http_ratio) = (
            t.miss_ratio,
            median(&t.http_miss_large) / median(&t.http_miss_small),
        );
        report.sections.push((
            format!("{} tokens, {} in use", t.sizes.large, t.sizes.in_use),
            format!(
                "Two embedded SQLite stores side by side, one holding {} tokens and one {} \
                 (seeded at {:.0} tokens/s, in transactions of 10,000). In process is the \
                 server's bearer check (parse, cache lookup, on a miss the database read, digest \
                 compare) with a fresh cache of the server's size in front of the store: misses \
                 in {} rounds of {} on either store in turn (the ratio is of the rounds' \
                 medians), then the {} tokens in use on the large store twice, the second pass \
                 all hits (it read the store {} times). Over HTTP \
                 is `POST /graphql` `{{ activeUser {{ id }} }}`, one request at a time, to a \
                 freshly started server: first with tokens it has not seen, then the same again \
                 in the same order.\n\n\
                 | µs, median / p99 | {} tokens | {} tokens | ratio |\n| --- | --- | --- | --- |\n\
                 | miss, in process | {} | {} | {miss_ratio:.2}× |\n\
                 | hit, in process | | {} | |\n\
                 | miss, over HTTP | {} | {} | {http_ratio:.2}× |\n\
                 | hit, over HTTP | | {} | |\n\n\
                 Resident memory of the process (the server with its caches, and the bench \
                 holding the {} tokens it presents): {:.0} MB with the server just started on \
                 the large store, **{:.0} MB** after the passes. Requests not answered 200: {}.",
                t.sizes.small,
                t.sizes.large,
                t.seeded_per_second,
                t.rounds,
                t.per_round,
                t.sizes.in_use,
                t.hit_reads,
                t.sizes.small,
                t.sizes.large,
                us(&t.miss_small),
                us(&t.miss_large),
                us(&t.hit_large),
                us(&t.http_miss_small),
                us(&t.http_miss_large),
                us(&t.http_hit_large),
                t.sizes.in_use,
                t.rss_idle_mb,
                t.rss_mb,
                t.failures,
            ),
        ));
        report.checks.push(Check {
            workload: format!("{} tokens, {} in use", t.sizes.large, t.sizes.in_use),
            target: format!(
                "miss latency ≤ 2× that with {} tokens; RSS ≤ 300 MB",
                t.sizes.small
            ),
            measured: format!(
                "miss {miss_ratio:.2}× in process, {http_ratio:.2}× over HTTP; RSS {:.0} MB",
                t.rss_mb
            ),
            met: miss_ratio <= 2.0
                && http_ratio <= 2.0
                && t.rss_mb <= 300.0
                && t.failures == 0
                && t.hit_reads == 0,
        });
    }

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let results = args.out.join("RESULTS.md");
    std::fs::write(&results, report.markdown())
        .with_context(|| format!("cannot write {}", results.display()))?;
    report.plot(&args.out.join("plot.svg"))?;
    println!("{}", report.markdown());
    eprintln!("wrote {}", results.display());
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
