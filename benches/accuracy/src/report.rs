//! The table: one row per scenario, seed and client, with the ratios of
//! ours to chronyd, as aligned text, CSV and markdown.

use core::fmt::Write as _;

use crate::scenario::Scenario;
use crate::stats::Figures;

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

fn ratio(ours: f64, reference: f64) -> f64 {
    if reference > 0.0 {
        ours / reference
    } else {
        f64::INFINITY
    }
}

/// Column headers (shared by the text and markdown tables).
const HEADERS: [&str; 13] = [
    "scenario",
    "seed",
    "client",
    "RMS offset (us)",
    "max |offset| (us)",
    "RMS freq (ppm)",
    "steps",
    "packets",
    "first <100us (s)",
    "stays <100us (s)",
    "event RMS (us)",
    "event max (us)",
    "ratio RMS/max/pkts",
];

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
    vec![
        row.scenario.clone(),
        row.seed.to_string(),
        row.client.clone(),
        format!("{:.1}", f.rms_offset * 1e6),
        format!("{:.1}", f.max_offset * 1e6),
        format!("{:.4}", f.rms_freq * 1e6),
        f.steps.to_string(),
        f.packets.to_string(),
        seconds(f.first_sync),
        seconds(f.stays_sync),
        event_rms,
        event_max,
        ratios,
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
            if index < 3 {
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
        "scenario,seed,client,rms_offset_s,max_offset_s,rms_freq,steps,packets,\
         first_sync_s,stays_sync_s,event_rms_s,event_max_s,\
         ratio_rms_offset,ratio_max_offset,ratio_packets\n",
    );
    let opt = |v: Option<String>| v.unwrap_or_default();
    for row in rows {
        let f = &row.figures;
        let ratios = row.ratios.map(|r| r.map(|v| format!("{v:.4}")));
        let ratio_cell = |i: usize| opt(ratios.as_ref().and_then(|r| r.get(i).cloned()));
        let _ = writeln!(
            out,
            "{},{},{},{:e},{:e},{:e},{},{},{},{},{},{},{},{},{}",
            row.scenario,
            row.seed,
            row.client,
            f.rms_offset,
            f.max_offset,
            f.rms_freq,
            f.steps,
            f.packets,
            opt(f.first_sync.map(|s| s.to_string())),
            opt(f.stays_sync.map(|s| s.to_string())),
            opt(f.event.map(|(rms, _)| format!("{rms:e}"))),
            opt(f.event.map(|(_, max)| format!("{max:e}"))),
            ratio_cell(0),
            ratio_cell(1),
            ratio_cell(2),
        );
    }
    out
}

/// Threshold checks of the ours rows (reported, not enforced yet).
pub(crate) fn threshold_notes(rows: &[Row], scenarios: &[Scenario]) -> Vec<String> {
    let mut notes = Vec::new();
    for row in rows {
        let (Some(ratios), Some(scenario)) = (
            row.ratios,
            scenarios.iter().find(|s| s.name == row.scenario),
        ) else {
            continue;
        };
        let t = &scenario.thresholds;
        let limits = [
            ("RMS offset", t.rms_offset_ratio),
            ("max offset", t.max_offset_ratio),
            ("packets", t.packets_ratio),
        ];
        for ((what, limit), value) in limits.iter().zip(ratios) {
            if let Some(limit) = limit {
                if value > *limit {
                    notes.push(format!(
                        "{} seed {}: {what} ratio {value:.2} above the limit {limit:.2}",
                        row.scenario, row.seed
                    ));
                }
            }
        }
    }
    notes
}

/// The markdown file: scenario descriptions, the table, notes.
pub(crate) fn markdown(rows: &[Row], scenarios: &[Scenario], notes: &[String]) -> String {
    let mut out = String::from("# Accuracy under clknetsim: our daemon and chronyd\n\n");
    out.push_str(
        "Generated by `ntp-accuracy` (benches/accuracy). True offsets and frequency \
         errors come from clknetsim's logs; statistics start after each scenario's \
         warm-up; ratios are ours / chronyd for the same scenario and seed (same \
         noise files).\n\n",
    );
    for scenario in scenarios {
        let _ = writeln!(
            out,
            "- `{}`: {} (warm-up {} s of {} s)",
            scenario.name, scenario.description, scenario.warmup, scenario.length
        );
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
            .map(|(i, _)| if i < 3 { "---|" } else { "---:|" })
            .collect::<String>()
    );
    for row in rows {
        let _ = writeln!(out, "| {} |", cells(row).join(" | "));
    }
    if !notes.is_empty() {
        out.push_str("\nThreshold notes (not enforced yet):\n\n");
        for note in notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Thresholds;

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
        }
    }

    #[test]
    fn ratios_tables_and_notes() {
        let mut rows = vec![row("chronyd", 10e-6, 100), row("ours", 15e-6, 50)];
        add_ratios(&mut rows);
        assert!(rows[0].ratios.is_none());
        let [rms, max, packets] = rows[1].ratios.unwrap();
        assert!((rms - 1.5).abs() < 1e-9 && (max - 1.5).abs() < 1e-9);
        assert!((packets - 0.5).abs() < 1e-9);

        let text = text_table(&rows);
        assert_eq!(text.lines().count(), 3);
        assert!(text.contains("1.50 / 1.50 / 0.50"));
        let csv = csv(&rows);
        assert!(
            csv.lines()
                .nth(2)
                .unwrap()
                .ends_with(",1.5000,1.5000,0.5000")
        );

        let scenario = Scenario {
            name: String::from("a"),
            thresholds: Thresholds {
                rms_offset_ratio: Some(1.2),
                ..Thresholds::default()
            },
            ..Scenario::default()
        };
        let notes = threshold_notes(&rows, core::slice::from_ref(&scenario));
        assert_eq!(notes.len(), 1);
        let md = markdown(&rows, &[scenario], &notes);
        assert!(md.contains("| a | 1 | ours | 15.0 | 30.0 |"));
        assert!(md.contains("| max \\|offset\\| (us) |"));
    }
}
