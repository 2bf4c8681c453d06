//! The "many tokens, some in use" workload (bench/README.md): the cost of a cache miss when
//! the database holds a million tokens against when it holds a thousand, the cost of a hit, and
//! the memory the process needs meanwhile.
//!
//! The tokens are written straight into the SQLite file with `SqlStore::import_tokens` (the
//! statements of `Store::insert_token`, one transaction per batch) while the server is stopped:
//! through the API a million tokens would take a quarter of an hour of commits.

use std::time::Instant;

use anyhow::{Result, anyhow};
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use tessera_core::domain::auth::{TokenCache, TokenSource};
use tessera_core::model::{NewToken, TokenAuthRecord, TokenKind};
use tessera_core::service::{TOKEN_CACHE_CAPACITY, TOKEN_CACHE_TTL};
use tessera_core::store::Store;
use tessera_proto::{PlainToken, ScopeSet};
use tessera_server::clock::Clock;
use tessera_store::SqlStore;

use crate::report::median;
use crate::server::{self, Target};

/// How many tokens, and how many of them are presented.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// The small database the misses are compared with.
    pub small: usize,
    /// The large one.
    pub large: usize,
    /// Distinct tokens presented on the large one.
    pub in_use: usize,
}

/// What the workload measured: times in microseconds, one per presented token.
pub struct Outcome {
    pub sizes: Sizes,
    /// Rounds of misses in process, and misses on each store per round.
    pub rounds: usize,
    pub per_round: usize,
    /// The median of the large store's round medians over the small store's.
    pub miss_ratio: f64,
    /// Misses in process (parse, cache lookup, the database read, digest compare), small store,
    /// all rounds.
    pub miss_small: Vec<f64>,
    /// The same on the large store.
    pub miss_large: Vec<f64>,
    /// `POST /graphql` with a token the server has not seen, small store.
    pub http_miss_small: Vec<f64>,
    /// The same on the large store.
    pub http_miss_large: Vec<f64>,
    /// `POST /graphql` again with the tokens in use, once they have been seen.
    pub http_hit_large: Vec<f64>,
    /// A second pass in process over the tokens in use: hits.
    pub hit_large: Vec<f64>,
    /// How many times that pass read the store (0: every check was a hit).
    pub hit_reads: u64,
    /// Resident memory of this process (the server and the bench) after the passes, in MB.
    pub rss_mb: f64,
    /// The same before them, with the server started on the large store.
    pub rss_idle_mb: f64,
    /// Tokens written per second while seeding.
    pub seeded_per_second: f64,
    /// Requests that were not answered 200.
    pub failures: u64,
}

/// Token number `i`: distinct for every `i` below 2^40, with ids spread over the key space as
/// random ones are (multiplying by an odd number is a bijection on the low 40 bits too).
fn token(i: u64) -> PlainToken {
    let spread = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut bytes = [0x6b; 21];
    bytes[..8].copy_from_slice(&spread.to_le_bytes());
    bytes[8..16].copy_from_slice(&i.to_le_bytes());
    PlainToken::from_random_bytes(bytes)
}

/// Now, as the server's clock tells it.
fn now_ms() -> i64 {
    tessera_server::clock::SystemClock.now()
}

/// Writes tokens `from..to`, owned by `owner`, in batches of one transaction each.
async fn seed(store: &SqlStore, owner: &str, from: usize, to: usize) -> Result<()> {
    const BATCH: usize = 10_000;
    let created_at = now_ms();
    let scopes = ScopeSet::parse_names("profile:read streams:read").0;
    let mut start = from;
    while start < to {
        let end = (start + BATCH).min(to);
        let batch: Vec<NewToken> = (start..end)
            .map(|i| {
                let t = token(i as u64);
                NewToken {
                    id: t.id().into(),
                    digest: t.digest(),
                    owner_id: owner.into(),
                    name: format!("bench token {i}"),
                    last_chars: t.last_chars().to_owned(),
                    scopes,
                    kind: TokenKind::Personal,
                    app_id: None,
                    family_id: None,
                    lifespan: 365 * 24 * 3_600_000,
                    created_at,
                    resources: Vec::new(),
                }
            })
            .collect();
        store.import_tokens(&batch).await?;
        start = end;
    }
    Ok(())
}

/// The store, counting its reads.
struct Counting<'a> {
    store: &'a SqlStore,
    reads: AtomicU64,
}

#[async_trait::async_trait]
impl TokenSource for Counting<'_> {
    async fn token_for_auth(
        &self,
        id: &str,
    ) -> tessera_core::error::Result<Option<TokenAuthRecord>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Store::token_for_auth(self.store, id).await
    }

    async fn delete_token(
        &self,
        id: &str,
        owner_id: Option<&str>,
    ) -> tessera_core::error::Result<bool> {
        Store::delete_token(self.store, id, owner_id).await
    }
}

/// Two passes in process over the presented tokens, each presented once per pass, through a
/// fresh cache of the server's size in front of the store: microseconds per check of each pass
/// (the first all misses), and how many times the second read the store.
async fn in_process(
    store: &SqlStore,
    presented: &[PlainToken],
) -> Result<(Vec<f64>, Vec<f64>, u64)> {
    let cache = TokenCache::new(TOKEN_CACHE_CAPACITY, TOKEN_CACHE_TTL);
    let source = Counting {
        store,
        reads: AtomicU64::new(0),
    };
    let now = now_ms();
    let mut passes = Vec::new();
    for _ in 0..2 {
        let mut times = Vec::with_capacity(presented.len());
        for t in presented {
            let started = Instant::now();
            std::hint::black_box(cache.authenticate(&source, t.expose(), now).await?);
            times.push(started.elapsed().as_secs_f64() * 1e6);
        }
        passes.push(times);
    }
    let misses = source.reads.load(Ordering::Relaxed) as usize;
    let hit_reads = misses.saturating_sub(presented.len()) as u64;
    let hit = passes.pop().unwrap_or_default();
    let miss = passes.pop().unwrap_or_default();
    Ok((miss, hit, hit_reads))
}

/// One request per token, one after another: microseconds each, and how many were not 200.
async fn http_pass(target: &Target, presented: &[PlainToken]) -> Result<(Vec<f64>, u64)> {
    let http = server::http();
    let body = json!({"query": "{ activeUser { id } }"}).to_string();
    let url = format!("{}/graphql", target.url);
    let mut times = Vec::with_capacity(presented.len());
    let mut failures = 0;
    for t in presented {
        let started = Instant::now();
        let res = http
            .post(&url)
            .bearer_auth(t.expose())
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await?;
        let ok = res.status() == 200;
        let _ = res.bytes().await?;
        times.push(started.elapsed().as_secs_f64() * 1e6);
        failures += u64::from(!ok);
    }
    Ok((times, failures))
}

/// Resident memory of this process, in MB of 10^6 bytes (Linux; 0 elsewhere).
pub fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kib| kib * 1024.0 / 1e6)
}

/// Signs a user up on a server started in `dir` (then stopped): its token and id.
async fn owner_in(dir: &Path, workers: usize) -> Result<(String, String)> {
    let mut server = Target::start_in(dir, workers, String::new()).await?;
    let token = server::sign_up(&server.url, "tokens").await?.token;
    let me = server::graphql(
        &server::http(),
        &server.url,
        &token,
        "{ activeUser { id } }",
        json!({}),
    )
    .await?;
    let id = me["activeUser"]["id"]
        .as_str()
        .ok_or_else(|| anyhow!("activeUser answered {me}"))?
        .to_owned();
    server.stop();
    Ok((token, id))
}

/// Rounds of misses in process, alternating between the two stores.
const ROUNDS: usize = 5;

pub async fn run(sizes: Sizes, workers: usize) -> Result<Outcome> {
    // (main.rs has checked 0 < small ≤ large and 0 < in use ≤ large.)
    // Two stores side by side, each with its own owner.
    let (small_dir, large_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (small_url, large_url) = (
        Target::sqlite_url(small_dir.path()),
        Target::sqlite_url(large_dir.path()),
    );
    let (small_token, small_owner) = owner_in(small_dir.path(), workers).await?;
    let (large_token, large_owner) = owner_in(large_dir.path(), workers).await?;
    seed(
        &SqlStore::connect(&small_url).await?,
        &small_owner,
        0,
        sizes.small,
    )
    .await?;
    let started = Instant::now();
    seed(
        &SqlStore::connect(&large_url).await?,
        &large_owner,
        0,
        sizes.large,
    )
    .await?;
    let seeded_per_second = sizes.large as f64 / started.elapsed().as_secs_f64().max(1e-9);
    let small: Vec<PlainToken> = (0..sizes.small as u64).map(token).collect();
    // The tokens in use, spread evenly over all of them.
    let step = sizes.large / sizes.in_use;
    let in_use: Vec<PlainToken> = (0..sizes.in_use)
        .map(|i| token((i * step) as u64))
        .collect();

    // Over HTTP first, while nothing else in this process has held a cache of its own (freed
    // memory is not always handed back, and would count).
    let mut on_small = Target::start_in(small_dir.path(), workers, small_token).await?;
    let (http_miss_small, mut failures) = http_pass(&on_small, &small).await?;
    on_small.stop();
    let on_large = Target::start_in(large_dir.path(), workers, large_token).await?;
    let rss_idle_mb = rss_mb();
    let (http_miss_large, f) = http_pass(&on_large, &in_use).await?;
    failures += f;
    let (http_hit_large, f) = http_pass(&on_large, &in_use).await?;
    failures += f;
    let rss_mb = rss_mb();
    drop(on_large);

    // In process: rounds of fresh misses on either store in turn, so that both meet the same
    // machine; then the tokens in use on the large store, missed and hit.
    let (small_store, large_store) = (
        SqlStore::connect(&small_url).await?,
        SqlStore::connect(&large_url).await?,
    );
    let chunk = sizes.small.min(sizes.in_use / ROUNDS).max(1);
    let (mut miss_small, mut miss_large) = (Vec::new(), Vec::new());
    let (mut small_rounds, mut large_rounds) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (misses, _, _) = in_process(&small_store, &small[..chunk]).await?;
        small_rounds.push(median(&misses));
        miss_small.extend(misses);
        let from = (round * chunk) % in_use.len();
        let to = (from + chunk).min(in_use.len());
        let (misses, _, _) = in_process(&large_store, &in_use[from..to]).await?;
        large_rounds.push(median(&misses));
        miss_large.extend(misses);
    }
    let (_, hit_large, hit_reads) = in_process(&large_store, &in_use).await?;
    Ok(Outcome {
        sizes,
        rounds: ROUNDS,
        per_round: chunk,
        miss_ratio: median(&large_rounds) / median(&small_rounds),
        miss_small,
        miss_large,
        http_miss_small,
        http_miss_large,
        http_hit_large,
        hit_large,
        hit_reads,
        rss_mb,
        rss_idle_mb,
        seeded_per_second,
        failures,
    })
}
