//! The verdict: each scenario's `[thresholds]` applied to our daemon's
//! rows, against chronyd's row of the same scenario and seed (same noise
//! files), and the checks of a ported chrony case (`[chrony]`) applied to
//! both clients' rows. chronyd is judged by those checks only: they
//! validate the port.
//!
//! A criterion passes, fails or is unknown: unknown when the evidence is
//! missing (no chronyd row to divide by, no event window, a daemon log
//! that names no system peer). Unknown is never a pass: `--check` treats
//! it like a failure, since a gate that cannot look must not say yes.
//! A failure or unknown of ours in a scenario with `known_failure` (or of
//! a threshold in `known_failure_thresholds`) is a known failure: shown
//! with its reason, not counted by `--check`. chronyd's are never excused.

use core::net::IpAddr;
use std::collections::BTreeMap;

use crate::chrony;
use crate::report::Row;
use crate::scenario::{
    FREQ_MAX_FACTOR, FREQ_MAX_FLOOR, FREQ_RMS_FACTOR, FREQ_RMS_FLOOR, Scenario, Thresholds,
};
use crate::sim::node_ip;
use crate::stats::{Figures, ratio};

/// How a criterion came out; ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Outcome {
    /// Within the limit.
    Pass,
    /// Failed or could not be judged where the scenario expects that of
    /// our daemon today (`known_failure`).
    KnownFail,
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
            Outcome::KnownFail => "FAILS (known)",
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
    /// RMS frequency error after the warm-up against chronyd's.
    FreqRms,
    /// Maximum |frequency error| after the warm-up against chronyd's.
    FreqMax,
    /// chrony's check_sync.
    Sync,
    /// chrony's check_source_selection.
    Selection,
    /// chrony's check_packet_interval (the client's part).
    PacketInterval,
    /// chrony's check_chronyd_exit: the client ran to the end.
    Exit,
    /// Our daemon's run ended normally (it did not exit early, unless the
    /// case expects it to give up).
    Run,
}

impl Criterion {
    /// Every criterion, in table order.
    const ALL: [Criterion; 14] = [
        Criterion::RmsOffset,
        Criterion::MaxOffset,
        Criterion::Packets,
        Criterion::EventRmsOffset,
        Criterion::Steps,
        Criterion::FirstSync,
        Criterion::Liar,
        Criterion::FreqRms,
        Criterion::FreqMax,
        Criterion::Sync,
        Criterion::Selection,
        Criterion::PacketInterval,
        Criterion::Exit,
        Criterion::Run,
    ];

    /// The chrony checks, the only ones applied to chronyd.
    const CHRONY: [Criterion; 4] = [
        Criterion::Sync,
        Criterion::Selection,
        Criterion::PacketInterval,
        Criterion::Exit,
    ];

    /// The key of the criterion in scenario files (`[thresholds]`,
    /// `[chrony]`, `known_failure_thresholds`).
    pub(crate) fn key(self) -> &'static str {
        match self {
            Criterion::RmsOffset => "rms_offset_ratio",
            Criterion::MaxOffset => "max_offset_ratio",
            Criterion::Packets => "packets_ratio",
            Criterion::EventRmsOffset => "event_rms_offset_ratio",
            Criterion::Steps => "steps",
            Criterion::FirstSync => "first_sync_within_s",
            Criterion::Liar => "liar_never_system_peer",
            Criterion::FreqRms => "freq_rms_vs_chronyd",
            Criterion::FreqMax => "freq_max_vs_chronyd",
            Criterion::Sync => "sync",
            Criterion::Selection => "source_selection",
            Criterion::PacketInterval => "packet_interval",
            Criterion::Exit => "exit",
            Criterion::Run => "run",
        }
    }

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
            Criterion::FreqRms => "freq rms",
            Criterion::FreqMax => "freq max",
            Criterion::Sync => "sync",
            Criterion::Selection => "selection",
            Criterion::PacketInterval => "intervals",
            Criterion::Exit => "exit",
            Criterion::Run => "run",
        }
    }

    /// The limit `scenario` sets for this criterion, in words; `None`
    /// when it sets none.
    pub(crate) fn limit(self, scenario: &Scenario) -> Option<String> {
        let t = &scenario.thresholds;
        let chrony = |name: &str, expect: fn(&chrony::ChronyTest) -> chrony::Expect| {
            scenario
                .chrony
                .as_ref()
                .and_then(|test| match expect(test) {
                    chrony::Expect::Pass => Some(format!("chrony {name} passes")),
                    chrony::Expect::Fail => Some(format!("chrony {name} fails (as upstream)")),
                    chrony::Expect::Skip => None,
                })
        };
        match self {
            Criterion::FreqRms => t.freq_rms_vs_chronyd.then(|| {
                format!(
                    "RMS freq <= max({FREQ_RMS_FACTOR} x chronyd, {} ppm)",
                    FREQ_RMS_FLOOR * 1e6
                )
            }),
            Criterion::FreqMax => t.freq_max_vs_chronyd.then(|| {
                format!(
                    "max |freq| <= max({FREQ_MAX_FACTOR} x chronyd, {} ppm)",
                    FREQ_MAX_FLOOR * 1e6
                )
            }),
            Criterion::Sync => chrony("check_sync", |test| test.sync),
            Criterion::Selection => chrony("check_source_selection", |test| test.source_selection),
            Criterion::PacketInterval => {
                chrony("check_packet_interval", |test| test.packet_interval)
            }
            Criterion::Exit => chrony("check_chronyd_exit", |test| test.exit),
            Criterion::Run => Some(String::from("our daemon runs to the end")),
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
    /// How it came out (never `KnownFail`: see [`Check::effective`]).
    pub(crate) outcome: Outcome,
    /// The measured value, or why it could not be judged.
    pub(crate) value: String,
    /// Why a failure of this check is expected today, if it is.
    pub(crate) known: Option<String>,
}

impl Check {
    fn new(criterion: Criterion, outcome: Outcome, value: String) -> Self {
        Check {
            criterion,
            outcome,
            value,
            known: None,
        }
    }

    /// The outcome with a known failure excused.
    pub(crate) fn effective(&self) -> Outcome {
        match (self.outcome, &self.known) {
            (Outcome::Fail | Outcome::Unknown, Some(_)) => Outcome::KnownFail,
            (outcome, _) => outcome,
        }
    }
}

/// The checks of one of our rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Verdict {
    /// One per limit the scenario sets.
    pub(crate) checks: Vec<Check>,
}

impl Verdict {
    /// `pass`, `FAIL: rms, max`, `unknown: liar`, `FAIL (known:
    /// REASON): sync`, or several of them joined by `; `.
    pub(crate) fn text(&self) -> String {
        let names = |outcome: Outcome| {
            self.checks
                .iter()
                .filter(|check| check.effective() == outcome)
                .map(|check| check.criterion.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        let failed = names(Outcome::Fail);
        if !failed.is_empty() {
            parts.push(format!("FAIL: {failed}"));
        }
        let unknown = names(Outcome::Unknown);
        if !unknown.is_empty() {
            parts.push(format!("unknown: {unknown}"));
        }
        let mut reasons: Vec<&str> = Vec::new();
        for check in &self.checks {
            if let (Outcome::KnownFail, Some(reason)) = (check.effective(), &check.known) {
                if !reasons.contains(&reason.as_str()) {
                    reasons.push(reason);
                }
            }
        }
        for reason in reasons {
            let criteria: Vec<&str> = self
                .checks
                .iter()
                .filter(|c| {
                    c.effective() == Outcome::KnownFail && c.known.as_deref() == Some(reason)
                })
                .map(|c| c.criterion.name())
                .collect();
            parts.push(format!("FAIL (known: {reason}): {}", criteria.join(", ")));
        }
        if parts.is_empty() {
            String::from("pass")
        } else {
            parts.join("; ")
        }
    }
}

/// `ours / reference <= limit`; unknown without a reference.
fn ratio_check(criterion: Criterion, limit: f64, ours: f64, reference: Option<f64>) -> Check {
    let Some(reference) = reference else {
        return Check::new(criterion, Outcome::Unknown, String::from("no chronyd row"));
    };
    let value = ratio(ours, reference);
    let outcome = if value <= limit {
        Outcome::Pass
    } else {
        Outcome::Fail
    };
    Check::new(criterion, outcome, format!("{value:.2}"))
}

/// `ours <= max(factor x reference, floor)` for a frequency error; values
/// in ppm.
fn freq_check(
    criterion: Criterion,
    (factor, floor): (f64, f64),
    ours: f64,
    reference: Option<f64>,
) -> Check {
    let Some(reference) = reference else {
        return Check::new(criterion, Outcome::Unknown, String::from("no chronyd row"));
    };
    let limit = (factor * reference).max(floor);
    let outcome = if ours <= limit {
        Outcome::Pass
    } else {
        Outcome::Fail
    };
    let value = format!("{:.3} ppm (limit {:.3})", ours * 1e6, limit * 1e6);
    Check::new(criterion, outcome, value)
}

/// Whether a liar (one of `liars`) was ever the system peer.
fn liar_check(liars: &[IpAddr], figures: &Figures) -> Check {
    let check = |outcome, value: String| Check::new(Criterion::Liar, outcome, value);
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
            None => Check::new(criterion, Outcome::Unknown, String::from("no event window")),
        });
    }
    if let Some(expected) = t.steps {
        let outcome = if ours.steps == expected {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        checks.push(Check::new(
            Criterion::Steps,
            outcome,
            ours.steps.to_string(),
        ));
    }
    if let Some(within) = t.first_sync_within_s {
        let (outcome, value) = match ours.first_sync {
            Some(second) if second <= within => (Outcome::Pass, format!("{second} s")),
            Some(second) => (Outcome::Fail, format!("{second} s")),
            None => (Outcome::Fail, String::from("never")),
        };
        checks.push(Check::new(Criterion::FirstSync, outcome, value));
    }
    if t.liar_never_system_peer {
        checks.push(liar_check(liars, ours));
    }
    if t.freq_rms_vs_chronyd {
        let reference = chronyd.map(|c| c.rms_freq);
        let limit = (FREQ_RMS_FACTOR, FREQ_RMS_FLOOR);
        checks.push(freq_check(
            Criterion::FreqRms,
            limit,
            ours.rms_freq,
            reference,
        ));
    }
    if t.freq_max_vs_chronyd {
        let reference = chronyd.map(|c| c.max_freq);
        let limit = (FREQ_MAX_FACTOR, FREQ_MAX_FLOOR);
        checks.push(freq_check(
            Criterion::FreqMax,
            limit,
            ours.max_freq,
            reference,
        ));
    }
    checks
}

/// The checks of a ported chrony case on one client's row. chronyd's
/// sync time must not come before `min_sync_time`; ours may.
pub(crate) fn chrony_checks(
    scenario: &Scenario,
    figures: &Figures,
    is_chronyd: bool,
) -> Vec<Check> {
    let Some(test) = &scenario.chrony else {
        return Vec::new();
    };
    let liars: Vec<IpAddr> = scenario.liars().into_iter().map(node_ip).collect();
    let mut checks = Vec::new();
    for criterion in Criterion::CHRONY {
        let expect = match criterion {
            Criterion::Sync => test.sync,
            Criterion::Selection => test.source_selection,
            Criterion::Exit => test.exit,
            _ => test.packet_interval,
        };
        if expect == chrony::Expect::Skip {
            continue;
        }
        let Some(run) = &figures.chrony else {
            checks.push(Check::new(
                criterion,
                Outcome::Unknown,
                String::from("no chrony figures"),
            ));
            continue;
        };
        let (outcome, value) = match criterion {
            Criterion::Sync => chrony::sync(test, run, is_chronyd),
            Criterion::Selection => chrony::source_selection(test, run, &liars),
            Criterion::Exit => chrony::exit(test, run),
            _ => chrony::packet_interval(test, run, scenario.servers, scenario.jitter),
        };
        checks.push(Check::new(criterion, outcome, value));
    }
    checks
}

/// Marks the checks of ours that the scenario expects to fail today.
fn excuse(scenario: &Scenario, checks: &mut [Check]) {
    for check in checks {
        check.known = scenario.known_failure.clone().or_else(|| {
            scenario
                .known_failure_thresholds
                .get(check.criterion.key())
                .cloned()
        });
    }
}

/// chronyd's figures for the scenario and seed of `row`.
fn reference<'a>(rows: &'a [Row], row: &Row) -> Option<&'a Figures> {
    rows.iter()
        .find(|r| r.client == "chronyd" && r.scenario == row.scenario && r.seed == row.seed)
        .map(|r| &r.figures)
}

/// Sets the verdict of every row of ours whose scenario sets a limit, and
/// of every chronyd row of a ported chrony case.
pub(crate) fn judge(rows: &mut [Row], scenarios: &[Scenario]) {
    let verdicts: Vec<Option<Verdict>> = rows
        .iter()
        .map(|row| {
            let scenario = scenarios.iter().find(|s| s.name == row.scenario)?;
            if row.client == "chronyd" {
                let checks = chrony_checks(scenario, &row.figures, true);
                return (!checks.is_empty()).then_some(Verdict { checks });
            }
            if let Some(why) = &row.broken {
                let mut checks = vec![Check::new(Criterion::Run, Outcome::Fail, why.clone())];
                excuse(scenario, &mut checks);
                return Some(Verdict { checks });
            }
            let liars: Vec<IpAddr> = scenario.liars().into_iter().map(node_ip).collect();
            let mut checks = check_row(
                &scenario.thresholds,
                &liars,
                &row.figures,
                reference(rows, row),
            );
            checks.extend(chrony_checks(scenario, &row.figures, false));
            checks.push(Check::new(
                Criterion::Run,
                Outcome::Pass,
                String::from("to the end"),
            ));
            excuse(scenario, &mut checks);
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

/// The finding of one criterion over the rows of one client in a scenario.
fn finding(
    scenario: &Scenario,
    client: &str,
    criterion: Criterion,
    limit: String,
    rows: &[&Row],
) -> Finding {
    let mut outcome = if rows.is_empty() {
        Outcome::Unknown
    } else {
        Outcome::Pass
    };
    let mut values = Vec::new();
    let mut known = None;
    for row in rows {
        // A broken run has only its run check: it stands for every
        // criterion of the row.
        let find = |wanted: Criterion| {
            row.verdict
                .as_ref()
                .and_then(|v| v.checks.iter().find(|c| c.criterion == wanted))
        };
        let check =
            find(criterion).or_else(|| row.broken.as_ref().and_then(|_| find(Criterion::Run)));
        let (this, value) = check.map_or((Outcome::Unknown, "not judged"), |c| {
            (c.effective(), c.value.as_str())
        });
        if this == Outcome::KnownFail {
            known = check.and_then(|c| c.known.clone());
        }
        outcome = outcome.max(this);
        let mark = match this {
            Outcome::Fail => " (fail)",
            Outcome::KnownFail => " (known fail)",
            _ => "",
        };
        values.push(format!("seed {}: {value}{mark}", row.seed));
    }
    if values.is_empty() {
        values.push(format!("no runs of {client}"));
    }
    let mut values = values.join("; ");
    if let Some(reason) = known {
        values.push_str(&format!("; known: {reason}"));
    }
    Finding {
        subject: if client == "chronyd" {
            format!("{} (chronyd)", scenario.name)
        } else {
            scenario.name.clone()
        },
        limit,
        values,
        outcome,
    }
}

/// Known failures that did not happen: a scenario with `known_failure`
/// whose every check of ours passed on every seed, or a threshold in
/// `known_failure_thresholds` that held on every seed. Each is a line to
/// print, so that the key can be removed.
pub(crate) fn unexpected_passes(rows: &[Row], scenarios: &[Scenario]) -> Vec<String> {
    let mut lines = Vec::new();
    for scenario in scenarios {
        let checks: Vec<&Check> = rows
            .iter()
            .filter(|row| row.client != "chronyd" && row.scenario == scenario.name)
            .filter_map(|row| row.verdict.as_ref())
            .flat_map(|verdict| &verdict.checks)
            .collect();
        if checks.is_empty() {
            continue;
        }
        if scenario.known_failure.is_some() && checks.iter().all(|c| c.outcome == Outcome::Pass) {
            lines.push(format!(
                "UNEXPECTED PASS: {} passes every check of ours on the seeds run; \
                 remove its known_failure if it passes on every seed",
                scenario.name
            ));
        }
        for key in scenario.known_failure_thresholds.keys() {
            let of_key: Vec<&&Check> = checks.iter().filter(|c| c.criterion.key() == key).collect();
            if !of_key.is_empty() && of_key.iter().all(|c| c.outcome == Outcome::Pass) {
                lines.push(format!(
                    "UNEXPECTED PASS: {}: {key} holds on the seeds run; \
                     remove it from known_failure_thresholds if it holds on every seed",
                    scenario.name
                ));
            }
        }
    }
    lines
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
        for client in ["ours", "chronyd"] {
            let is_chronyd = client == "chronyd";
            let scenario_rows: Vec<&Row> = rows
                .iter()
                .filter(|row| {
                    row.scenario == scenario.name && (row.client == "chronyd") == is_chronyd
                })
                .collect();
            let criteria: &[Criterion] = if is_chronyd {
                &Criterion::CHRONY
            } else {
                &Criterion::ALL
            };
            for &criterion in criteria {
                let Some(limit) = criterion.limit(scenario) else {
                    continue;
                };
                findings.push(finding(scenario, client, criterion, limit, &scenario_rows));
            }
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
