//! The verdict: each scenario's `[thresholds]` applied to our daemon's
//! rows, against chronyd's row of the same scenario and seed (same noise
//! files). Only ours is judged, never chronyd.
//!
//! A criterion passes, fails or is unknown: unknown when the evidence is
//! missing (no chronyd row to divide by, no event window, a daemon log
//! that names no system peer). Unknown is never a pass: `--check` treats
//! it like a failure, since a gate that cannot look must not say yes.

use core::net::IpAddr;
use std::collections::BTreeMap;

use crate::report::Row;
use crate::scenario::{Scenario, Thresholds};
use crate::sim::node_ip;
use crate::stats::{Figures, ratio};

/// How a criterion came out; ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Outcome {
    /// Within the limit.
    Pass,
    /// Could not be judged.
    Unknown,
    /// Beyond the limit.
    Fail,
}

impl Outcome {
    /// The word for the summary.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Outcome::Pass => "holds",
            Outcome::Unknown => "unknown",
            Outcome::Fail => "FAILS",
        }
    }
}

/// One limit of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Criterion {
    /// RMS offset after the warm-up, ratio to chronyd.
    RmsOffset,
    /// Maximum |offset| after the warm-up, ratio to chronyd.
    MaxOffset,
    /// Packets sent, ratio to chronyd.
    Packets,
    /// RMS offset in the event window, ratio to chronyd.
    EventRmsOffset,
    /// Number of clock steps, exact.
    Steps,
    /// First second with |offset| under 100 us.
    FirstSync,
    /// No falseticker ever became the system peer.
    Liar,
}

impl Criterion {
    /// Every criterion, in table order.
    const ALL: [Criterion; 7] = [
        Criterion::RmsOffset,
        Criterion::MaxOffset,
        Criterion::Packets,
        Criterion::EventRmsOffset,
        Criterion::Steps,
        Criterion::FirstSync,
        Criterion::Liar,
    ];

    /// Short name for the verdict column.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Criterion::RmsOffset => "rms",
            Criterion::MaxOffset => "max",
            Criterion::Packets => "packets",
            Criterion::EventRmsOffset => "event rms",
            Criterion::Steps => "steps",
            Criterion::FirstSync => "first",
            Criterion::Liar => "liar",
        }
    }

    /// The limit `thresholds` sets for this criterion, in words; `None`
    /// when it sets none.
    pub(crate) fn limit(self, thresholds: &Thresholds) -> Option<String> {
        let t = thresholds;
        match self {
            Criterion::RmsOffset => t
                .rms_offset_ratio
                .map(|limit| format!("RMS offset <= {limit:.2} x chronyd")),
            Criterion::MaxOffset => t
                .max_offset_ratio
                .map(|limit| format!("max offset <= {limit:.2} x chronyd")),
            Criterion::Packets => t
                .packets_ratio
                .map(|limit| format!("packets <= {limit:.2} x chronyd")),
            Criterion::EventRmsOffset => t
                .event_rms_offset_ratio
                .map(|limit| format!("event RMS offset <= {limit:.2} x chronyd")),
            Criterion::Steps => t.steps.map(|steps| format!("steps = {steps}")),
            Criterion::FirstSync => t
                .first_sync_within_s
                .map(|second| format!("first offset < 100 us by {second} s")),
            Criterion::Liar => t
                .liar_never_system_peer
                .then(|| String::from("no liar ever system peer")),
        }
    }
}

/// A criterion applied to one row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Check {
    /// Which limit.
    pub(crate) criterion: Criterion,
    /// How it came out.
    pub(crate) outcome: Outcome,
    /// The measured value, or why it could not be judged.
    pub(crate) value: String,
}

/// The checks of one of our rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Verdict {
    /// One per limit the scenario sets.
    pub(crate) checks: Vec<Check>,
}

impl Verdict {
    /// `pass`, `FAIL: rms, max`, `unknown: liar` or both lists.
    pub(crate) fn text(&self) -> String {
        let names = |outcome: Outcome| {
            self.checks
                .iter()
                .filter(|check| check.outcome == outcome)
                .map(|check| check.criterion.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (failed, unknown) = (names(Outcome::Fail), names(Outcome::Unknown));
        match (failed.is_empty(), unknown.is_empty()) {
            (true, true) => String::from("pass"),
            (false, true) => format!("FAIL: {failed}"),
            (true, false) => format!("unknown: {unknown}"),
            (false, false) => format!("FAIL: {failed}; unknown: {unknown}"),
        }
    }
}

/// `ours / reference <= limit`; unknown without a reference.
fn ratio_check(criterion: Criterion, limit: f64, ours: f64, reference: Option<f64>) -> Check {
    let Some(reference) = reference else {
        return Check {
            criterion,
            outcome: Outcome::Unknown,
            value: String::from("no chronyd row"),
        };
    };
    let value = ratio(ours, reference);
    Check {
        criterion,
        outcome: if value <= limit {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        value: format!("{value:.2}"),
    }
}

/// Whether a liar (one of `liars`) was ever the system peer.
fn liar_check(liars: &[IpAddr], figures: &Figures) -> Check {
    let check = |outcome, value: String| Check {
        criterion: Criterion::Liar,
        outcome,
        value,
    };
    let Some(peers) = &figures.system_peers else {
        return check(Outcome::Unknown, String::from("no daemon log"));
    };
    let violations: Vec<String> = liars
        .iter()
        .filter_map(|&liar| {
            peers
                .first_time(liar)
                .map(|t| format!("{liar} at {t:.0} s"))
        })
        .collect();
    if !violations.is_empty() {
        return check(Outcome::Fail, violations.join(" and "));
    }
    if !peers.complete {
        return check(
            Outcome::Unknown,
            String::from("no system_peer field in the daemon log"),
        );
    }
    if let Some(unreadable) = peers.unreadable.first() {
        return check(
            Outcome::Unknown,
            format!("system peer {unreadable:?} names no address"),
        );
    }
    check(Outcome::Pass, String::from("never"))
}

/// Applies `thresholds` to our figures, with chronyd's of the same
/// scenario and seed when there are any. `liars` are the falsetickers'
/// addresses.
pub(crate) fn check_row(
    thresholds: &Thresholds,
    liars: &[IpAddr],
    ours: &Figures,
    chronyd: Option<&Figures>,
) -> Vec<Check> {
    let t = thresholds;
    let mut checks = Vec::new();
    if let Some(limit) = t.rms_offset_ratio {
        let reference = chronyd.map(|c| c.rms_offset);
        checks.push(ratio_check(
            Criterion::RmsOffset,
            limit,
            ours.rms_offset,
            reference,
        ));
    }
    if let Some(limit) = t.max_offset_ratio {
        let reference = chronyd.map(|c| c.max_offset);
        checks.push(ratio_check(
            Criterion::MaxOffset,
            limit,
            ours.max_offset,
            reference,
        ));
    }
    if let Some(limit) = t.packets_ratio {
        let reference = chronyd.map(|c| c.packets as f64);
        checks.push(ratio_check(
            Criterion::Packets,
            limit,
            ours.packets as f64,
            reference,
        ));
    }
    if let Some(limit) = t.event_rms_offset_ratio {
        let criterion = Criterion::EventRmsOffset;
        let reference = chronyd.and_then(|c| c.event).map(|(rms, _)| rms);
        checks.push(match ours.event {
            Some((rms, _)) => ratio_check(criterion, limit, rms, reference),
            None => Check {
                criterion,
                outcome: Outcome::Unknown,
                value: String::from("no event window"),
            },
        });
    }
    if let Some(expected) = t.steps {
        checks.push(Check {
            criterion: Criterion::Steps,
            outcome: if ours.steps == expected {
                Outcome::Pass
            } else {
                Outcome::Fail
            },
            value: ours.steps.to_string(),
        });
    }
    if let Some(within) = t.first_sync_within_s {
        let (outcome, value) = match ours.first_sync {
            Some(second) if second <= within => (Outcome::Pass, format!("{second} s")),
            Some(second) => (Outcome::Fail, format!("{second} s")),
            None => (Outcome::Fail, String::from("never")),
        };
        checks.push(Check {
            criterion: Criterion::FirstSync,
            outcome,
            value,
        });
    }
    if t.liar_never_system_peer {
        checks.push(liar_check(liars, ours));
    }
    checks
}

/// chronyd's figures for the scenario and seed of `row`.
fn reference<'a>(rows: &'a [Row], row: &Row) -> Option<&'a Figures> {
    rows.iter()
        .find(|r| r.client == "chronyd" && r.scenario == row.scenario && r.seed == row.seed)
        .map(|r| &r.figures)
}

/// Sets the verdict of every row of ours whose scenario sets a limit.
pub(crate) fn judge(rows: &mut [Row], scenarios: &[Scenario]) {
    let verdicts: Vec<Option<Verdict>> = rows
        .iter()
        .map(|row| {
            if row.client == "chronyd" {
                return None;
            }
            let scenario = scenarios.iter().find(|s| s.name == row.scenario)?;
            let liars: Vec<IpAddr> = scenario.liars().into_iter().map(node_ip).collect();
            let checks = check_row(
                &scenario.thresholds,
                &liars,
                &row.figures,
                reference(rows, row),
            );
            (!checks.is_empty()).then_some(Verdict { checks })
        })
        .collect();
    for (row, verdict) in rows.iter_mut().zip(verdicts) {
        row.verdict = verdict;
    }
}

/// The median; the mean of the two middle values of an even count.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted.get(middle).copied()
    } else {
        let low = sorted.get(middle.checked_sub(1)?)?;
        let high = sorted.get(middle)?;
        Some((low + high) / 2.0)
    }
}

/// A median group: its limit and member scenarios.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MedianGroup {
    /// Upper limit on the median RMS offset ratio.
    pub(crate) limit: f64,
    /// Names of the scenarios in the group.
    pub(crate) members: Vec<String>,
}

/// The median groups of the scenarios, by name; an error when members
/// state different limits.
pub(crate) fn median_groups(
    scenarios: &[Scenario],
) -> Result<BTreeMap<String, MedianGroup>, String> {
    let mut groups: BTreeMap<String, MedianGroup> = BTreeMap::new();
    for scenario in scenarios {
        let Some(limit) = scenario.thresholds.median_rms_offset_ratio else {
            continue;
        };
        let name = scenario
            .thresholds
            .median_group
            .clone()
            .unwrap_or_else(|| scenario.name.clone());
        let group = groups.entry(name.clone()).or_insert(MedianGroup {
            limit,
            members: Vec::new(),
        });
        if (group.limit - limit).abs() > f64::EPSILON * limit {
            return Err(format!(
                "median_group {name}: {} states median_rms_offset_ratio {limit}, {} states {}",
                scenario.name,
                group.members.join(", "),
                group.limit
            ));
        }
        group.members.push(scenario.name.clone());
    }
    Ok(groups)
}

/// One line of the summary: a limit of a scenario (over its seeds) or of
/// a median group.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    /// Scenario or median group.
    pub(crate) subject: String,
    /// The limit in words.
    pub(crate) limit: String,
    /// The values per seed, or the median and how many rows it covers.
    pub(crate) values: String,
    /// Worst outcome over the rows.
    pub(crate) outcome: Outcome,
}

/// Every limit of every scenario over its seeds, then every median group.
/// Needs the verdicts from [`judge`].
pub(crate) fn summary(rows: &[Row], scenarios: &[Scenario]) -> Result<Vec<Finding>, String> {
    let ours = |row: &&Row| row.client != "chronyd";
    let mut findings = Vec::new();
    for scenario in scenarios {
        let scenario_rows: Vec<&Row> = rows
            .iter()
            .filter(ours)
            .filter(|row| row.scenario == scenario.name)
            .collect();
        for criterion in Criterion::ALL {
            let Some(limit) = criterion.limit(&scenario.thresholds) else {
                continue;
            };
            let mut outcome = if scenario_rows.is_empty() {
                Outcome::Unknown
            } else {
                Outcome::Pass
            };
            let mut values = Vec::new();
            for row in &scenario_rows {
                let check = row
                    .verdict
                    .as_ref()
                    .and_then(|v| v.checks.iter().find(|c| c.criterion == criterion));
                let (this, value) = check.map_or((Outcome::Unknown, "not judged"), |c| {
                    (c.outcome, c.value.as_str())
                });
                outcome = outcome.max(this);
                let mark = if this == Outcome::Fail { " (fail)" } else { "" };
                values.push(format!("seed {}: {value}{mark}", row.seed));
            }
            if values.is_empty() {
                values.push(String::from("no runs of ours"));
            }
            findings.push(Finding {
                subject: scenario.name.clone(),
                limit,
                values: values.join("; "),
                outcome,
            });
        }
    }
    for (name, group) in median_groups(scenarios)? {
        let ratios: Vec<f64> = rows
            .iter()
            .filter(ours)
            .filter(|row| group.members.contains(&row.scenario))
            .filter_map(|row| {
                reference(rows, row)
                    .map(|chronyd| ratio(row.figures.rms_offset, chronyd.rms_offset))
            })
            .collect();
        let (outcome, values) = match median(&ratios) {
            Some(value) => (
                if value <= group.limit {
                    Outcome::Pass
                } else {
                    Outcome::Fail
                },
                format!(
                    "{value:.2}, median of {} row{} ({})",
                    ratios.len(),
                    if ratios.len() == 1 { "" } else { "s" },
                    group.members.join(", ")
                ),
            ),
            None => (Outcome::Unknown, String::from("no rows with a chronyd row")),
        };
        findings.push(Finding {
            subject: name,
            limit: format!("median RMS offset ratio <= {:.2}", group.limit),
            values,
            outcome,
        });
    }
    Ok(findings)
}

/// The worst outcome of the summary (`Pass` when nothing is judged).
pub(crate) fn overall(findings: &[Finding]) -> Outcome {
    findings
        .iter()
        .map(|finding| finding.outcome)
        .max()
        .unwrap_or(Outcome::Pass)
}

#[cfg(test)]
mod tests;
