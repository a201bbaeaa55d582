//! The table: one row per scenario, seed and client, with the ratios of
//! ours to chronyd and the verdict, as aligned text, CSV and markdown, and
//! the summary of every threshold.

use core::fmt::Write as _;

use crate::scenario::Scenario;
use crate::stats::{Figures, ratio};
use crate::verdict::{Finding, Outcome, Verdict, overall};

/// One measured row.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// Scenario name.
    pub(crate) scenario: String,
    /// Seed of the noise.
    pub(crate) seed: u64,
    /// Client name (`chronyd` or `ours`).
    pub(crate) client: String,
    /// The figures.
    pub(crate) figures: Figures,
    /// Ratios ours/chronyd of RMS offset, max offset and packets (ours
    /// rows with a chronyd row of the same scenario and seed only).
    pub(crate) ratios: Option<[f64; 3]>,
    /// The scenario's thresholds applied (ours rows of scenarios that set
    /// any; see [`crate::verdict::judge`]).
    pub(crate) verdict: Option<Verdict>,
    /// Why the run broke (our daemon exited early, ...): the figures are
    /// then empty and every check of the row fails.
    pub(crate) broken: Option<String>,
}

/// Fills in the ratios of every `ours` row against its chronyd row.
pub(crate) fn add_ratios(rows: &mut [Row]) {
    let references: Vec<(String, u64, Figures)> = rows
        .iter()
        .filter(|row| row.client == "chronyd")
        .map(|row| (row.scenario.clone(), row.seed, row.figures.clone()))
        .collect();
    for row in rows.iter_mut().filter(|row| row.client != "chronyd") {
        let reference = references
            .iter()
            .find(|(scenario, seed, _)| *scenario == row.scenario && *seed == row.seed);
        row.ratios = reference.map(|(_, _, chronyd)| {
            [
                ratio(row.figures.rms_offset, chronyd.rms_offset),
                ratio(row.figures.max_offset, chronyd.max_offset),
                ratio(row.figures.packets as f64, chronyd.packets as f64),
            ]
        });
    }
}

/// Column headers (shared by the text and markdown tables).
const HEADERS: [&str; 16] = [
    "scenario",
    "seed",
    "client",
    "RMS offset (us)",
    "max |offset| (us)",
    "RMS freq (ppm)",
    "max |freq| (ppm)",
    "sync (s)",
    "steps",
    "packets",
    "first <100us (s)",
    "stays <100us (s)",
    "event RMS (us)",
    "event max (us)",
    "ratio RMS/max/pkts",
    "verdict",
];

/// Whether column `index` is text (left-aligned): the first three and the
/// verdict.
fn left_aligned(index: usize) -> bool {
    index < 3 || index + 1 == HEADERS.len()
}

fn seconds(value: Option<u32>) -> String {
    value.map_or_else(|| String::from("never"), |s| s.to_string())
}

/// The cells of a row, formatted.
fn cells(row: &Row) -> Vec<String> {
    let f = &row.figures;
    let (event_rms, event_max) = f.event.map_or_else(
        || (String::from("-"), String::from("-")),
        |(rms, max)| (format!("{:.1}", rms * 1e6), format!("{:.1}", max * 1e6)),
    );
    let ratios = row.ratios.map_or_else(
        || String::from("-"),
        |[rms, max, packets]| format!("{rms:.2} / {max:.2} / {packets:.2}"),
    );
    let verdict = row
        .verdict
        .as_ref()
        .map_or_else(|| String::from("-"), Verdict::text);
    if row.broken.is_some() {
        let mut cells = vec![
            row.scenario.clone(),
            row.seed.to_string(),
            row.client.clone(),
        ];
        cells.resize(HEADERS.len() - 1, String::from("-"));
        cells.push(verdict);
        return cells;
    }
    vec![
        row.scenario.clone(),
        row.seed.to_string(),
        row.client.clone(),
        format!("{:.1}", f.rms_offset * 1e6),
        format!("{:.1}", f.max_offset * 1e6),
        format!("{:.4}", f.rms_freq * 1e6),
        format!("{:.4}", f.max_freq * 1e6),
        f.chrony
            .as_ref()
            .map_or_else(|| String::from("-"), |c| c.sync_time.to_string()),
        f.steps.to_string(),
        f.packets.to_string(),
        seconds(f.first_sync),
        seconds(f.stays_sync),
        event_rms,
        event_max,
        ratios,
        verdict,
    ]
}

/// The table as aligned text for the terminal.
pub(crate) fn text_table(rows: &[Row]) -> String {
    let headers: Vec<String> = HEADERS.iter().map(|h| String::from(*h)).collect();
    let body: Vec<Vec<String>> = rows.iter().map(cells).collect();
    let mut widths: Vec<usize> = headers.iter().map(String::len).collect();
    for line in &body {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for line in core::iter::once(&headers).chain(&body) {
        let mut text = String::new();
        for (index, (cell, width)) in line.iter().zip(&widths).enumerate() {
            if left_aligned(index) {
                let _ = write!(text, "{cell:<width$}  ");
            } else {
                let _ = write!(text, "{cell:>width$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// The table as CSV, raw values in SI units (seconds, s/s, counts;
/// empty = none).
pub(crate) fn csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "scenario,seed,client,rms_offset_s,max_offset_s,rms_freq,max_freq,sync_s,steps,packets,\
         first_sync_s,stays_sync_s,event_rms_s,event_max_s,\
         ratio_rms_offset,ratio_max_offset,ratio_packets,verdict\n",
    );
    let opt = |v: Option<String>| v.unwrap_or_default();
    for row in rows {
        let f = &row.figures;
        let ratios = row.ratios.map(|r| r.map(|v| format!("{v:.4}")));
        let ratio_cell = |i: usize| opt(ratios.as_ref().and_then(|r| r.get(i).cloned()));
        let _ = writeln!(
            out,
            "{},{},{},{:e},{:e},{:e},{:e},{},{},{},{},{},{},{},{},{},{},{}",
            row.scenario,
            row.seed,
            row.client,
            f.rms_offset,
            f.max_offset,
            f.rms_freq,
            f.max_freq,
            opt(f.chrony.as_ref().map(|c| c.sync_time.to_string())),
            f.steps,
            f.packets,
            opt(f.first_sync.map(|s| s.to_string())),
            opt(f.stays_sync.map(|s| s.to_string())),
            opt(f.event.map(|(rms, _)| format!("{rms:e}"))),
            opt(f.event.map(|(_, max)| format!("{max:e}"))),
            ratio_cell(0),
            ratio_cell(1),
            ratio_cell(2),
            csv_field(&opt(row.verdict.as_ref().map(Verdict::text))),
        );
    }
    out
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        String::from(text)
    }
}

/// The overall verdict in one line.
fn overall_line(findings: &[Finding]) -> String {
    let count = |outcome: Outcome| findings.iter().filter(|f| f.outcome == outcome).count();
    let known = count(Outcome::KnownFail);
    match overall(findings) {
        _ if findings.is_empty() => String::from("no thresholds set"),
        Outcome::Pass => format!("pass: all {} thresholds hold", findings.len()),
        Outcome::KnownFail => format!(
            "pass: {} of {} thresholds hold, {known} fail as known",
            findings.len() - known,
            findings.len()
        ),
        worst => format!(
            "{}: {} of {} thresholds fail, {} unknown{}",
            if worst == Outcome::Fail {
                "FAIL"
            } else {
                "unknown"
            },
            count(Outcome::Fail),
            findings.len(),
            count(Outcome::Unknown),
            if known > 0 {
                format!(", {known} fail as known")
            } else {
                String::new()
            }
        ),
    }
}

/// The scenarios' `missing_daemon_options`, one line each (none: empty).
pub(crate) fn missing_options_text(scenarios: &[Scenario]) -> String {
    let mut out = String::new();
    for scenario in scenarios {
        if !scenario.missing_daemon_options.is_empty() {
            let _ = writeln!(
                out,
                "missing daemon options: {}: {}",
                scenario.name,
                scenario.missing_daemon_options.join(", ")
            );
        }
    }
    out
}

/// The summary as text for the terminal, one threshold a line.
pub(crate) fn summary_text(findings: &[Finding]) -> String {
    let mut out = String::new();
    for finding in findings {
        let _ = writeln!(
            out,
            "threshold {}: {}: {} ({})",
            finding.subject,
            finding.limit,
            finding.outcome.word(),
            finding.values
        );
    }
    let _ = writeln!(out, "verdict: {}", overall_line(findings));
    out
}

/// The markdown file: scenario descriptions, the table, the summary.
pub(crate) fn markdown(rows: &[Row], scenarios: &[Scenario], findings: &[Finding]) -> String {
    let mut out = String::from("# Accuracy under clknetsim: our daemon and chronyd\n\n");
    out.push_str(
        "Generated by `ntp-accuracy` (benches/accuracy). True offsets and frequency \
         errors come from clknetsim's logs; statistics start after each scenario's \
         warm-up; ratios are ours / chronyd for the same scenario and seed (same \
         noise files). The verdict applies each scenario's `[thresholds]` to our \
         daemon only.\n\n",
    );
    for scenario in scenarios {
        let _ = write!(
            out,
            "- `{}`: {} (warm-up {} s of {} s)",
            scenario.name, scenario.description, scenario.warmup, scenario.length
        );
        if !scenario.missing_daemon_options.is_empty() {
            let _ = write!(
                out,
                "; ours lacks: `{}`",
                scenario.missing_daemon_options.join("`, `")
            );
        }
        if let Some(reason) = &scenario.known_failure {
            let _ = write!(out, "; known failure of ours: {reason}");
        }
        for (key, reason) in &scenario.known_failure_thresholds {
            let _ = write!(out, "; known failure of ours in `{key}`: {reason}");
        }
        out.push('\n');
    }
    out.push('\n');
    let headers = &HEADERS;
    let escaped: Vec<String> = headers.iter().map(|h| h.replace('|', "\\|")).collect();
    let _ = writeln!(out, "| {} |", escaped.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        headers
            .iter()
            .enumerate()
            .map(|(i, _)| if left_aligned(i) { "---|" } else { "---:|" })
            .collect::<String>()
    );
    for row in rows {
        let _ = writeln!(out, "| {} |", cells(row).join(" | "));
    }
    out.push_str("\n## Thresholds\n\n");
    if findings.is_empty() {
        out.push_str("No scenario sets thresholds.\n");
        return out;
    }
    out.push_str(
        "\
         Each scenario's `[thresholds]` over its seeds (a row's verdict names the \
         criteria it fails), then each median group. Unknown: not judged for want \
         of evidence (no chronyd row, no system peer in the daemon's log).\n\n\
         | scenario | threshold | result | values |\n|---|---|---|---|\n",
    );
    for finding in findings {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            finding.subject,
            finding.limit,
            finding.outcome.word(),
            finding.values.replace('|', "\\|")
        );
    }
    let _ = writeln!(out, "\nVerdict: {}.", overall_line(findings));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Thresholds;
    use crate::verdict::{judge, summary};

    fn row(client: &str, rms: f64, packets: u64) -> Row {
        Row {
            scenario: String::from("a"),
            seed: 1,
            client: String::from(client),
            figures: Figures {
                rms_offset: rms,
                max_offset: 2.0 * rms,
                packets,
                first_sync: Some(34),
                ..Figures::default()
            },
            ratios: None,
            verdict: None,
            broken: None,
        }
    }

    #[test]
    fn ratios_tables_and_verdicts() {
        let mut rows = vec![row("chronyd", 10e-6, 100), row("ours", 15e-6, 50)];
        add_ratios(&mut rows);
        assert!(rows[0].ratios.is_none());
        let [rms, max, packets] = rows[1].ratios.unwrap();
        assert!((rms - 1.5).abs() < 1e-9 && (max - 1.5).abs() < 1e-9);
        assert!((packets - 0.5).abs() < 1e-9);

        let scenario = Scenario {
            name: String::from("a"),
            thresholds: Thresholds {
                rms_offset_ratio: Some(1.2),
                max_offset_ratio: Some(1.5),
                ..Thresholds::default()
            },
            ..Scenario::default()
        };
        let scenarios = core::slice::from_ref(&scenario);
        judge(&mut rows, scenarios);
        let findings = summary(&rows, scenarios).unwrap();

        let text = text_table(&rows);
        assert_eq!(text.lines().count(), 3);
        assert!(text.contains("1.50 / 1.50 / 0.50  FAIL: rms"));
        let csv = csv(&rows);
        assert!(
            csv.lines()
                .next()
                .unwrap()
                .ends_with(",ratio_packets,verdict")
        );
        assert!(csv.lines().nth(1).unwrap().ends_with(",,,,"));
        assert!(
            csv.lines()
                .nth(2)
                .unwrap()
                .ends_with(",1.5000,1.5000,0.5000,FAIL: rms")
        );
        assert_eq!(csv_field("FAIL: rms, max"), "\"FAIL: rms, max\"");

        let summary = summary_text(&findings);
        assert!(
            summary
                .contains("threshold a: RMS offset <= 1.20 x chronyd: FAILS (seed 1: 1.50 (fail))")
        );
        assert!(summary.contains("threshold a: max offset <= 1.50 x chronyd: holds"));
        assert!(summary.ends_with("verdict: FAIL: 1 of 3 thresholds fail, 0 unknown\n"));
        let md = markdown(&rows, &[scenario], &findings);
        assert!(md.contains("| a | 1 | ours | 15.0 | 30.0 |"));
        assert!(md.contains("| 1.50 / 1.50 / 0.50 | FAIL: rms |"));
        assert!(md.contains("| max \\|offset\\| (us) |"));
        assert!(md.contains("---:|---|\n"));
        assert!(md.contains("| a | RMS offset <= 1.20 x chronyd | FAILS | seed 1: 1.50 (fail) |"));
        assert!(md.contains("Verdict: FAIL: 1 of 3 thresholds fail, 0 unknown."));
    }
}
