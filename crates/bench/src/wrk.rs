//! The HTTP load generator: wrk (Debian's `wrk` package), on keep-alive connections over
//! loopback. A Lua script sets the request and, when wrk is done, prints the exact numbers as one
//! JSON line (requests, duration, errors, non-2xx answers, latency percentiles in µs), so nothing
//! is scraped from wrk's human output.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// One request, as wrk will send it over and over.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub body: Option<&'a str>,
    pub bearer: Option<&'a str>,
}

/// What one wrk run measured.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Run {
    pub requests: u64,
    pub duration_us: u64,
    /// Connect, read, write and timeout errors, in all.
    pub errors: u64,
    /// The same errors by kind.
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
    /// Answers outside 2xx/3xx.
    pub non2xx: u64,
    pub p50_us: f64,
    pub p99_us: f64,
}

impl Run {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / (self.duration_us.max(1) as f64 / 1e6)
    }

    /// wrk's errors by kind, e.g. "connect 0, read 1, write 0, timeout 0".
    pub fn error_kinds(&self) -> String {
        format!(
            "connect {}, read {}, write {}, timeout {}",
            self.connect, self.read, self.write, self.timeout
        )
    }
}

fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn script(request: &Request<'_>) -> String {
    let mut s = format!("wrk.method = {}\n", lua_string(request.method));
    if let Some(body) = request.body {
        s.push_str(&format!("wrk.body = {}\n", lua_string(body)));
        s.push_str("wrk.headers[\"Content-Type\"] = \"application/json\"\n");
    }
    if let Some(token) = request.bearer {
        s.push_str(&format!(
            "wrk.headers[\"Authorization\"] = {}\n",
            lua_string(&format!("Bearer {token}"))
        ));
    }
    s.push_str(
        r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":%d,"connect":%d,"read":%d,"write":%d,' ..
      '"timeout":%d,"non2xx":%d,"p50_us":%f,"p99_us":%f}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"#,
    );
    s
}

/// Whether wrk is installed.
pub fn available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok_and(|o| !o.stdout.is_empty() || !o.stderr.is_empty())
}

/// Runs wrk for `seconds` with `connections` connections against `base` + the request's path.
pub fn run(
    base: &str,
    request: &Request<'_>,
    connections: usize,
    seconds: f64,
    scratch: &Path,
) -> Result<Run> {
    let file = scratch.join("request.lua");
    std::fs::write(&file, script(request))?;
    let threads = connections.clamp(1, 2);
    let out = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        // wrk takes whole seconds (s, m, h).
        .arg(format!("-d{}s", seconds.round().max(1.0) as u64))
        .arg("--timeout")
        .arg("5s")
        .arg("-s")
        .arg(&file)
        .arg(format!("{base}{}", request.path))
        .output()
        .context("cannot run wrk: install it (Debian: apt-get install wrk)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed: {}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("no summary in wrk's output: {stdout}"))?;
    Ok(serde_json::from_str(line)?)
}
