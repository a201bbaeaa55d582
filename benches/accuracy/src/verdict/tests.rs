//! Tests of the threshold evaluation: pure functions on the figures.

use super::*;
use crate::daemon_log::SystemPeers;

/// The limits of cases a and b.
fn case_a() -> Thresholds {
    Thresholds {
        rms_offset_ratio: Some(1.0),
        max_offset_ratio: Some(1.5),
        packets_ratio: Some(1.25),
        steps: Some(0),
        first_sync_within_s: Some(60),
        median_rms_offset_ratio: Some(0.8),
        median_group: Some(String::from("a+b")),
        ..Thresholds::default()
    }
}

fn figures(rms_us: f64, max_us: f64, packets: u64) -> Figures {
    Figures {
        rms_offset: rms_us * 1e-6,
        max_offset: max_us * 1e-6,
        packets,
        first_sync: Some(34),
        ..Figures::default()
    }
}

fn outcomes(checks: &[Check]) -> Vec<(&'static str, Outcome)> {
    checks
        .iter()
        .map(|check| (check.criterion.name(), check.outcome))
        .collect()
}

#[test]
fn a_row_within_every_limit_passes() {
    let chronyd = figures(10.0, 30.0, 1238);
    // Equal to the limits counts as within them.
    let ours = figures(10.0, 45.0, 1547);
    let checks = check_row(&case_a(), &[], &ours, Some(&chronyd));
    assert_eq!(
        outcomes(&checks),
        [
            ("rms", Outcome::Pass),
            ("max", Outcome::Pass),
            ("packets", Outcome::Pass),
            ("steps", Outcome::Pass),
            ("first", Outcome::Pass),
        ]
    );
    assert_eq!(checks[0].value, "1.00");
    assert_eq!(Verdict { checks }.text(), "pass");
}

#[test]
fn a_row_beyond_a_ratio_fails_and_names_it() {
    let chronyd = figures(10.0, 30.0, 1238);
    let mut ours = figures(12.3, 46.0, 1220);
    ours.steps = 1;
    ours.first_sync = Some(61);
    let checks = check_row(&case_a(), &[], &ours, Some(&chronyd));
    assert_eq!(
        outcomes(&checks),
        [
            ("rms", Outcome::Fail),
            ("max", Outcome::Fail),
            ("packets", Outcome::Pass),
            ("steps", Outcome::Fail),
            ("first", Outcome::Fail),
        ]
    );
    assert_eq!(checks[0].value, "1.23");
    assert_eq!(Verdict { checks }.text(), "FAIL: rms, max, steps, first");

    ours = figures(9.0, 20.0, 1548);
    ours.first_sync = None;
    let checks = check_row(&case_a(), &[], &ours, Some(&chronyd));
    assert_eq!(Verdict { checks }.text(), "FAIL: packets, first");
}

#[test]
fn without_a_chronyd_row_ratios_are_unknown() {
    let ours = figures(1.0, 1.0, 10);
    let checks = check_row(&case_a(), &[], &ours, None);
    assert_eq!(checks[0].outcome, Outcome::Unknown);
    assert_eq!(checks[0].value, "no chronyd row");
    // Steps and the first sync need no reference.
    assert_eq!(Verdict { checks }.text(), "unknown: rms, max, packets");
}

#[test]
fn event_window_ratio() {
    let thresholds = Thresholds {
        event_rms_offset_ratio: Some(1.0),
        ..Thresholds::default()
    };
    let mut chronyd = figures(100.0, 300.0, 46);
    chronyd.event = Some((200e-6, 300e-6));
    let mut ours = figures(1000.0, 3000.0, 120);
    ours.event = Some((190e-6, 900e-6));
    let checks = check_row(&thresholds, &[], &ours, Some(&chronyd));
    assert_eq!(outcomes(&checks), [("event rms", Outcome::Pass)]);
    ours.event = Some((2000e-6, 900e-6));
    let checks = check_row(&thresholds, &[], &ours, Some(&chronyd));
    assert_eq!(outcomes(&checks), [("event rms", Outcome::Fail)]);
    ours.event = None;
    let checks = check_row(&thresholds, &[], &ours, Some(&chronyd));
    assert_eq!(outcomes(&checks), [("event rms", Outcome::Unknown)]);
}

#[test]
fn a_liar_as_system_peer_fails_a_missing_record_is_unknown() {
    let thresholds = Thresholds {
        liar_never_system_peer: true,
        ..Thresholds::default()
    };
    let liar = node_ip(3);
    let peers = |nodes: &[usize], complete| SystemPeers {
        addresses: nodes
            .iter()
            .map(|&n| (node_ip(n), 6.0 * n as f64))
            .collect(),
        unreadable: Vec::new(),
        complete,
    };
    let run = |system_peers: Option<SystemPeers>| {
        let ours = Figures {
            system_peers,
            ..Figures::default()
        };
        let checks = check_row(&thresholds, &[liar], &ours, None);
        assert_eq!(checks.len(), 1);
        (checks[0].outcome, checks[0].value.clone())
    };
    assert_eq!(
        run(Some(peers(&[1, 2], true))),
        (Outcome::Pass, String::from("never"))
    );
    assert_eq!(
        run(Some(peers(&[1, 3], true))),
        (Outcome::Fail, String::from("192.168.123.3 at 18 s"))
    );
    // A table snapshot alone shows a violation but cannot prove none.
    assert_eq!(run(Some(peers(&[3], false))).0, Outcome::Fail);
    assert_eq!(run(Some(peers(&[1], false))).0, Outcome::Unknown);
    assert_eq!(run(Some(SystemPeers::default())).0, Outcome::Unknown);
    assert_eq!(run(None).0, Outcome::Unknown);
    let mut odd = peers(&[1], true);
    odd.unreadable.push(String::from("#4"));
    assert_eq!(run(Some(odd)).0, Outcome::Unknown);
}

#[test]
fn medians() {
    assert_eq!(median(&[]), None);
    assert_eq!(median(&[3.0]), Some(3.0));
    assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    assert_eq!(
        median(&[0.9, 0.5, f64::INFINITY, 0.7, 0.6, 0.8]),
        Some(0.75)
    );
}

fn scenario(name: &str, thresholds: Thresholds) -> Scenario {
    Scenario {
        name: String::from(name),
        thresholds,
        ..Scenario::default()
    }
}

fn row(scenario: &str, seed: u64, client: &str, figures: Figures) -> Row {
    Row {
        scenario: String::from(scenario),
        seed,
        client: String::from(client),
        figures,
        ratios: None,
        verdict: None,
    }
}

#[test]
fn judge_and_summarise_a_group() {
    let scenarios = [scenario("a", case_a()), scenario("b", case_a())];
    // RMS ratios: a 0.5 and 0.9, b 0.7 and (no chronyd row) unknown.
    let mut rows = vec![
        row("a", 1, "chronyd", figures(10.0, 30.0, 100)),
        row("a", 1, "ours", figures(5.0, 30.0, 100)),
        row("a", 2, "chronyd", figures(10.0, 30.0, 100)),
        row("a", 2, "ours", figures(9.0, 30.0, 100)),
        row("b", 1, "chronyd", figures(100.0, 300.0, 40)),
        row("b", 1, "ours", figures(70.0, 600.0, 40)),
        row("b", 2, "ours", figures(70.0, 300.0, 40)),
    ];
    judge(&mut rows, &scenarios);
    let texts: Vec<String> = rows
        .iter()
        .map(|r| {
            r.verdict
                .as_ref()
                .map_or_else(|| String::from("-"), Verdict::text)
        })
        .collect();
    assert_eq!(
        texts,
        [
            "-",
            "pass",
            "-",
            "pass",
            "-",
            "FAIL: max",
            "unknown: rms, max, packets"
        ]
    );
    let findings = summary(&rows, &scenarios).unwrap();
    // Five limits per scenario, then the group median.
    assert_eq!(findings.len(), 11);
    let b_max = &findings[6];
    assert_eq!(
        (b_max.subject.as_str(), b_max.outcome),
        ("b", Outcome::Fail)
    );
    assert_eq!(b_max.values, "seed 1: 2.00 (fail); seed 2: no chronyd row");
    let b_rms = &findings[5];
    assert_eq!(b_rms.outcome, Outcome::Unknown);
    let group = &findings[10];
    assert_eq!(group.subject, "a+b");
    assert_eq!(group.limit, "median RMS offset ratio <= 0.80");
    assert_eq!(group.outcome, Outcome::Pass);
    assert_eq!(group.values, "0.70, median of 3 rows (a, b)");
    assert_eq!(overall(&findings), Outcome::Fail);

    // With b's first ratio at 1.0 the median of 0.5, 0.9, 1.0 is 0.9.
    rows[5].figures.rms_offset = 100e-6;
    judge(&mut rows, &scenarios);
    let findings = summary(&rows, &scenarios).unwrap();
    assert_eq!(findings[10].outcome, Outcome::Fail);
    assert_eq!(findings[10].values, "0.90, median of 3 rows (a, b)");
}

#[test]
fn runs_missing_or_limits_disagreeing() {
    let scenarios = [scenario("a", case_a())];
    let findings = summary(&[], &scenarios).unwrap();
    assert!(findings.iter().all(|f| f.outcome == Outcome::Unknown));
    assert_eq!(findings[0].values, "no runs of ours");
    assert_eq!(overall(&findings), Outcome::Unknown);
    assert_eq!(overall(&[]), Outcome::Pass);

    let stricter = Thresholds {
        median_rms_offset_ratio: Some(0.5),
        ..case_a()
    };
    let scenarios = [scenario("a", case_a()), scenario("b", stricter)];
    assert!(median_groups(&scenarios).is_err());
    let own = Thresholds {
        median_group: None,
        ..case_a()
    };
    let groups = median_groups(&[scenario("x", own)]).unwrap();
    assert_eq!(groups["x"].members, ["x"]);
}
