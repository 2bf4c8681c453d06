//! CI runs the bench's smallest workloads once, so the bench cannot rot: it starts Tessera, seeds
//! it, drives GraphQL and the trivial route with wrk, seeds 2,000 tokens straight into a store,
//! soaks for a few seconds, and writes a report and a plot. Nothing here
//! looks at how fast anything was.

use std::process::Command;

#[test]
fn the_smallest_workload_runs_and_writes_a_report() {
    let wrk_here = Command::new("wrk").arg("--version").output().is_ok();
    if !wrk_here {
        assert!(
            std::env::var_os("TESSERA_TEST_REQUIRE_ALL").is_none(),
            "wrk is not installed and TESSERA_TEST_REQUIRE_ALL is set: apt-get install wrk"
        );
        eprintln!(
            "SKIPPED: wrk is not installed (apt-get install wrk); the bench smoke test did not run"
        );
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_tessera-bench"))
        .arg("--smoke")
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let report = std::fs::read_to_string(out.path().join("RESULTS.md")).unwrap();
    let row = report
        .lines()
        .find(|l| l.starts_with("| 1 |"))
        .unwrap_or_else(|| panic!("no row for one connection:\n{report}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    let requests_per_second: f64 = cells[2].parse().unwrap();
    assert!(requests_per_second > 0.0, "{row}");
    assert_eq!(cells.last().copied(), Some(""), "{row}");
    assert_eq!(cells[cells.len() - 2], "0", "no errors or refusals: {row}");
    // The tokens workload and the soak ran too, small, and nothing failed.
    let section = |title: &str| {
        let start = report
            .find(&format!("## {title}"))
            .unwrap_or_else(|| panic!("no section {title}:\n{report}"));
        let rest = &report[start + 3..];
        rest[..rest.find("\n## ").unwrap_or(rest.len())].to_owned()
    };
    let tokens = section("2000 tokens, 200 in use");
    assert!(tokens.contains("Requests not answered 200: 0."), "{tokens}");
    assert!(tokens.contains("it read the store 0 times"), "{tokens}");
    let soak = section("Soak");
    assert!(soak.contains("refused steps): **0**"), "{soak}");
    let plot = std::fs::read_to_string(out.path().join("plot.svg")).unwrap();
    assert!(plot.starts_with("<svg") && plot.contains("requests per second"));

    // A bad flag is a usage error, not a run.
    let bad = Command::new(env!("CARGO_BIN_EXE_tessera-bench"))
        .args(["--runs", "0", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("at least 1"));
}
