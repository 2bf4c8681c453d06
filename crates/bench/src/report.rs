//! Medians, ratios, `RESULTS.md` and the plot. Every number in the report is measured in the run
//! that writes it; the targets are checked against those numbers, never written in by hand.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

use crate::workloads::Point;

pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// The value below which a fraction `q` of `values` lie (nearest rank).
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The medians of one concurrency.
#[derive(Debug, Clone, Copy)]
pub struct Medians {
    pub connections: usize,
    pub graphql_rps: f64,
    pub graphql_p50_ms: f64,
    pub graphql_p99_ms: f64,
    pub baseline_rps: f64,
    pub baseline_p99_ms: f64,
    /// Errors and non-2xx answers over all runs (both workloads).
    pub failures: u64,
}

impl Medians {
    pub fn of(point: &Point) -> Medians {
        let m = |runs: &[crate::wrk::Run], f: fn(&crate::wrk::Run) -> f64| {
            median(&runs.iter().map(f).collect::<Vec<_>>())
        };
        Medians {
            connections: point.connections,
            graphql_rps: m(&point.graphql, |r| r.per_second()),
            graphql_p50_ms: m(&point.graphql, |r| r.p50_us / 1000.0),
            graphql_p99_ms: m(&point.graphql, |r| r.p99_us / 1000.0),
            baseline_rps: m(&point.baseline, |r| r.per_second()),
            baseline_p99_ms: m(&point.baseline, |r| r.p99_us / 1000.0),
            failures: point
                .graphql
                .iter()
                .chain(&point.baseline)
                .map(|r| r.errors + r.non2xx)
                .sum(),
        }
    }

    pub fn ratio(&self) -> f64 {
        self.graphql_rps / self.baseline_rps
    }
}

/// One half of the plot: where, its title, and what it draws for GraphQL and the trivial route.
type Panel<'a, 'b> = (
    &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    &'static str,
    fn(&Medians) -> f64,
    fn(&Medians) -> f64,
);

/// A target from the issue, checked against a measured value.
pub struct Check {
    pub workload: String,
    pub target: String,
    pub measured: String,
    pub met: bool,
}

/// Everything one run of the bench measured.
#[derive(Default)]
pub struct Report {
    pub header: Vec<String>,
    pub http: Vec<Medians>,
    pub sections: Vec<(String, String)>,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut s = String::from("# Tessera benchmark results\n\n");
        s.push_str(
            "Written by `tessera-bench` (bench/README.md): every number below was measured in the \
             run that wrote this file, on the machine it names. Throughput and latency are medians \
             over the runs; ratios compare two medians of the same run.\n\n",
        );
        for line in &self.header {
            let _ = writeln!(s, "- {line}");
        }
        if !self.checks.is_empty() {
            s.push_str("\n## Targets\n\n| workload | target | measured | met |\n| --- | --- | --- | --- |\n");
            for c in &self.checks {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    c.workload,
                    c.target,
                    c.measured,
                    if c.met { "yes" } else { "**no**" }
                );
            }
        }
        if !self.http.is_empty() {
            s.push_str(
                "\n## Authenticated GraphQL against the trivial route\n\n![throughput and p99 \
                 against concurrency](plot.svg)\n\n| connections | GraphQL req/s | p50 ms | p99 ms | \
                 trivial route req/s | its p99 ms | ratio | errors |\n| --- | --- | --- | --- | --- | \
                 --- | --- | --- |\n",
            );
            for m in &self.http {
                let _ = writeln!(
                    s,
                    "| {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2}× | {} |",
                    m.connections,
                    m.graphql_rps,
                    m.graphql_p50_ms,
                    m.graphql_p99_ms,
                    m.baseline_rps,
                    m.baseline_p99_ms,
                    m.ratio(),
                    m.failures
                );
            }
        }
        for (title, body) in &self.sections {
            let _ = write!(s, "\n## {title}\n\n{body}\n");
        }
        s
    }

    /// Throughput and p99 of both workloads against concurrency, side by side.
    pub fn plot(&self, path: &Path) -> Result<()> {
        if self.http.is_empty() {
            return Ok(());
        }
        let root = SVGBackend::new(path, (960, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(480);
        let xs: Vec<f64> = self.http.iter().map(|m| m.connections as f64).collect();
        let x_max = xs.iter().copied().fold(1.0, f64::max) * 1.1;
        let series = |f: fn(&Medians) -> f64| -> Vec<(f64, f64)> {
            self.http
                .iter()
                .map(|m| (m.connections as f64, f(m)))
                .collect()
        };
        let panels: [Panel<'_, '_>; 2] = [
            (
                &left,
                "requests per second",
                |m| m.graphql_rps,
                |m| m.baseline_rps,
            ),
            (
                &right,
                "p99 latency, ms",
                |m| m.graphql_p99_ms,
                |m| m.baseline_p99_ms,
            ),
        ];
        for (area, title, graphql, baseline) in panels {
            let (g, b) = (series(graphql), series(baseline));
            let y_max = g.iter().chain(&b).map(|p| p.1).fold(0.0, f64::max) * 1.15 + 1e-9;
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(64)
                .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
            chart
                .configure_mesh()
                .x_desc("connections")
                .label_style(("sans-serif", 12))
                .draw()?;
            chart
                .draw_series(LineSeries::new(g, BLUE.stroke_width(2)))?
                .label("authenticated GraphQL")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
            chart
                .draw_series(LineSeries::new(b, RED.stroke_width(2)))?
                .label("trivial route")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED));
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 12))
                .draw()?;
        }
        root.present()?;
        Ok(())
    }
}
