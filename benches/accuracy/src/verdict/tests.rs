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
        broken: None,
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
    // Five limits and the run per scenario, then the group median.
    assert_eq!(findings.len(), 13);
    assert_eq!(findings[5].limit, "our daemon runs to the end");
    let b_max = &findings[7];
    assert_eq!(
        (b_max.subject.as_str(), b_max.outcome),
        ("b", Outcome::Fail)
    );
    assert_eq!(b_max.values, "seed 1: 2.00 (fail); seed 2: no chronyd row");
    let b_rms = &findings[6];
    assert_eq!(b_rms.outcome, Outcome::Unknown);
    let group = &findings[12];
    assert_eq!(group.subject, "a+b");
    assert_eq!(group.limit, "median RMS offset ratio <= 0.80");
    assert_eq!(group.outcome, Outcome::Pass);
    assert_eq!(group.values, "0.70, median of 3 rows (a, b)");
    assert_eq!(overall(&findings), Outcome::Fail);

    // With b's first ratio at 1.0 the median of 0.5, 0.9, 1.0 is 0.9.
    rows[5].figures.rms_offset = 100e-6;
    judge(&mut rows, &scenarios);
    let findings = summary(&rows, &scenarios).unwrap();
    assert_eq!(findings[12].outcome, Outcome::Fail);
    assert_eq!(findings[12].values, "0.90, median of 3 rows (a, b)");
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

#[test]
fn frequency_errors_against_chronyd() {
    let thresholds = Thresholds {
        freq_rms_vs_chronyd: true,
        freq_max_vs_chronyd: true,
        ..Thresholds::default()
    };
    let freq = |rms_ppm: f64, max_ppm: f64| Figures {
        rms_freq: rms_ppm * 1e-6,
        max_freq: max_ppm * 1e-6,
        ..Figures::default()
    };
    // chronyd 0.1/1 ppm: the floors (0.5, 5 ppm) are the limits.
    let chronyd = freq(0.1, 1.0);
    let checks = check_row(&thresholds, &[], &freq(0.5, 5.0), Some(&chronyd));
    assert_eq!(
        outcomes(&checks),
        [("freq rms", Outcome::Pass), ("freq max", Outcome::Pass)]
    );
    assert_eq!(checks[0].value, "0.500 ppm (limit 0.500)");
    let checks = check_row(&thresholds, &[], &freq(0.6, 5.1), Some(&chronyd));
    assert_eq!(
        outcomes(&checks),
        [("freq rms", Outcome::Fail), ("freq max", Outcome::Fail)]
    );
    // chronyd 1/10 ppm: 2 and 3 times chronyd's.
    let chronyd = freq(1.0, 10.0);
    let checks = check_row(&thresholds, &[], &freq(1.9, 31.0), Some(&chronyd));
    assert_eq!(
        outcomes(&checks),
        [("freq rms", Outcome::Pass), ("freq max", Outcome::Fail)]
    );
    let checks = check_row(&thresholds, &[], &freq(0.1, 1.0), None);
    assert_eq!(checks[0].outcome, Outcome::Unknown);
}

fn chrony_scenario(text: &str) -> Scenario {
    Scenario::parse("009-sourceselection-1", text).unwrap()
}

fn chrony_figures(sync_time: u32, selection: chrony::Selection) -> Figures {
    Figures {
        chrony: Some(chrony::ChronyFigures {
            sync_time,
            stats: crate::stats::NodeStats {
                rms_offset: 1e-4,
                max_offset: 5e-4,
                rms_freq: 1e-6,
                max_freq: 2e-5,
                mean_in_interval: 64.0,
                mean_out_interval: 64.0,
                min_out_interval: 64.0,
            },
            selection,
            gave_up: false,
        }),
        ..Figures::default()
    }
}

#[test]
fn chrony_checks_known_failures_and_surprises() {
    use crate::chrony::Selection;
    let text = "servers = 5\nfalsetickers = 1\n\
                known_failure = \"too slow\"\n[chrony]\ntest = \"009\"\n";
    let scenario = chrony_scenario(text);
    let chronyd = chrony_figures(
        130,
        Selection::Chronyd {
            selected: true,
            complaint: false,
        },
    );
    let checks = chrony_checks(&scenario, &chronyd, true);
    assert_eq!(
        outcomes(&checks),
        [
            ("sync", Outcome::Pass),
            ("selection", Outcome::Pass),
            ("intervals", Outcome::Pass),
            ("exit", Outcome::Pass)
        ]
    );
    // Ours follows the falseticker and synchronises late: known failures.
    let peers = SystemPeers {
        addresses: vec![(node_ip(1), 70.0)],
        unreadable: Vec::new(),
        complete: true,
    };
    let ours = chrony_figures(300, Selection::Ours(peers.clone()));
    let mut rows = vec![
        row("009-sourceselection-1", 1, "chronyd", chronyd.clone()),
        row("009-sourceselection-1", 1, "ours", ours),
    ];
    let scenarios = [scenario.clone()];
    judge(&mut rows, &scenarios);
    assert_eq!(rows[0].verdict.as_ref().unwrap().text(), "pass");
    assert_eq!(
        rows[1].verdict.as_ref().unwrap().text(),
        "FAIL (known: too slow): sync, selection"
    );
    let findings = summary(&rows, &scenarios).unwrap();
    assert_eq!(overall(&findings), Outcome::KnownFail);
    assert!(unexpected_passes(&rows, &scenarios).is_empty());

    // A passing ours in a known_failure scenario is a surprise; a
    // failing chronyd is never excused.
    rows[1].figures = chrony_figures(
        130,
        Selection::Ours(SystemPeers {
            addresses: vec![(node_ip(3), 70.0)],
            ..peers
        }),
    );
    rows[0].figures.chrony.as_mut().unwrap().sync_time = 100;
    judge(&mut rows, &scenarios);
    assert_eq!(rows[0].verdict.as_ref().unwrap().text(), "FAIL: sync");
    assert_eq!(rows[1].verdict.as_ref().unwrap().text(), "pass");
    let surprises = unexpected_passes(&rows, &scenarios);
    assert_eq!(surprises.len(), 1);
    assert!(surprises[0].starts_with("UNEXPECTED PASS: 009-sourceselection-1"));
    let findings = summary(&rows, &scenarios).unwrap();
    assert_eq!(overall(&findings), Outcome::Fail);

    // A broken run of ours fails every row check, known here.
    rows[1].broken = Some(String::from("exited"));
    judge(&mut rows, &scenarios);
    assert_eq!(
        rows[1].verdict.as_ref().unwrap().text(),
        "FAIL (known: too slow): run"
    );
}

#[test]
fn a_known_threshold_is_excused_alone() {
    let text = "freq_steps = []\n[thresholds]\nfreq_rms_vs_chronyd = true\nsteps = 0\n\
                [known_failure_thresholds]\nfreq_rms_vs_chronyd = \"slow loop\"\n";
    let scenario = Scenario::parse("a", text).unwrap();
    let mut ours = figures(10.0, 30.0, 100);
    ours.rms_freq = 2e-6;
    ours.steps = 1;
    let mut rows = vec![
        row("a", 1, "chronyd", figures(10.0, 30.0, 100)),
        row("a", 1, "ours", ours),
    ];
    let scenarios = [scenario];
    judge(&mut rows, &scenarios);
    assert_eq!(
        rows[1].verdict.as_ref().unwrap().text(),
        "FAIL: steps; FAIL (known: slow loop): freq rms"
    );
    rows[1].figures.rms_freq = 0.1e-6;
    judge(&mut rows, &scenarios);
    let surprises = unexpected_passes(&rows, &scenarios);
    assert_eq!(surprises.len(), 1);
    assert!(surprises[0].contains("freq_rms_vs_chronyd holds"));
}
