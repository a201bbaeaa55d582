//! chrony's selection options on virtual time: `trust`, `prefer`,
//! `require` and `noselect` per source, and `authselectmode` for the
//! system.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

mod common;

use common::*;
use ntp_client::{
    AuthSelectMode, IgnoreReason, SelectOptions, SourceConfig, SystemConfig, Tally, UpdateOutcome,
    UpdateReport,
};

const PREFER: SelectOptions = SelectOptions {
    prefer: true,
    ..SelectOptions::NONE
};
const TRUST: SelectOptions = SelectOptions {
    trust: true,
    ..SelectOptions::NONE
};
const REQUIRE: SelectOptions = SelectOptions {
    require: true,
    ..SelectOptions::NONE
};

/// A client whose clock starts right, with one server per offset, each
/// with its options and `noselect` flag, run for two hours.
fn run(config: SystemConfig, servers: &[(f64, SelectOptions, bool)]) -> Harness {
    let mut h = Harness::new(config, 0.0, 7);
    for &(offset, options, noselect) in servers {
        let index = h.add_server_only(Behaviour::Ntp(open_server(primary())), offset);
        let mut source = SourceConfig::default();
        source.select = options;
        source.noselect = noselect;
        h.client
            .add_source_with(h.servers[index].address, source)
            .unwrap();
    }
    h.run_until(2.0 * 3_600.0);
    h
}

fn tallies(h: &Harness) -> Vec<Tally> {
    let ids: Vec<_> = h.client.sources().map(ntp_client::Source::id).collect();
    ids.iter().map(|&id| h.client.tally(id).unwrap()).collect()
}

#[test]
fn a_trusted_server_outweighs_two_that_agree_on_another_time() {
    let none = SelectOptions::NONE;
    // Without trust the two that agree win, and the clock follows them.
    let outvoted = run(
        fset(),
        &[(0.3, none, false), (0.3, none, false), (0.0, none, false)],
    );
    assert_eq!(tallies(&outvoted)[2], Tally::Falseticker);
    assert!((outvoted.clock.phase_at(outvoted.now) - 0.3).abs() < 0.01);
    let h = run(
        fset(),
        &[(0.3, none, false), (0.3, none, false), (0.0, TRUST, false)],
    );
    assert_eq!(
        tallies(&h),
        [Tally::Falseticker, Tally::Falseticker, Tally::SystemPeer]
    );
    let phase = h.clock.phase_at(h.now);
    assert!(phase.abs() < 0.001, "clock {phase} s off");
}

#[test]
fn the_preferred_server_is_the_system_peer_and_combined_alone() {
    let none = SelectOptions::NONE;
    let h = run(
        fset(),
        &[
            (0.0, none, false),
            (0.0, none, false),
            (0.000_5, PREFER, false),
        ],
    );
    assert_eq!(
        tallies(&h),
        [Tally::Backup, Tally::Backup, Tally::SystemPeer]
    );
    // A preferred liar is still a falseticker.
    let h = run(
        fset(),
        &[(0.0, none, false), (0.0, none, false), (0.3, PREFER, false)],
    );
    assert_eq!(tallies(&h)[2], Tally::Falseticker);
    assert!(h.clock.phase_at(h.now).abs() < 0.001);
}

#[test]
fn the_clock_follows_the_preferred_server_not_the_median_of_steady_biases() {
    // Three servers a millisecond or two apart, steady: the median one
    // (1 ms ahead) is the reference of the others' biases, but with
    // `prefer` on the one 2 ms ahead, that one is: its samples are
    // never moved toward the others.
    let none = SelectOptions::NONE;
    let h = run(
        fset(),
        &[
            (0.001, none, false),
            (-0.001, none, false),
            (0.002, PREFER, false),
        ],
    );
    assert_eq!(tallies(&h)[2], Tally::SystemPeer);
    let phase = h.clock.phase_at(h.now);
    assert!((phase - 0.002).abs() < 0.000_2, "clock {phase} s off");
}

#[test]
fn a_required_liar_keeps_the_clock_unsteered() {
    let none = SelectOptions::NONE;
    let h = run(
        fset(),
        &[
            (0.0, none, false),
            (0.0, none, false),
            (0.3, REQUIRE, false),
        ],
    );
    assert_eq!(h.client.system_peer(), None);
    assert_eq!(tallies(&h)[2], Tally::Falseticker);
    let h = run(
        fset(),
        &[
            (0.3, none, false),
            (0.0, none, false),
            (0.0, REQUIRE, false),
        ],
    );
    assert!(h.client.system_peer().is_some());
}

#[test]
fn a_required_server_without_samples_keeps_the_clock_unsteered() {
    // The required server never answers; the two that do agree on a time
    // 0.3 s away. chrony's `require`: the clock is updated only while a
    // required source is selectable, and one with no sample is not.
    let mut h = Harness::new(fset(), 0.0, 7);
    for (behaviour, offset, options) in [
        (
            Behaviour::Ntp(open_server(primary())),
            0.3,
            SelectOptions::NONE,
        ),
        (
            Behaviour::Ntp(open_server(primary())),
            0.3,
            SelectOptions::NONE,
        ),
        (Behaviour::Dead, 0.0, REQUIRE),
    ] {
        let index = h.add_server_only(behaviour, offset);
        let mut source = SourceConfig::default();
        source.select = options;
        h.client
            .add_source_with(h.servers[index].address, source)
            .unwrap();
    }
    h.run_until(3_600.0);
    assert_eq!(h.client.system_peer(), None);
    assert!(!tallies(&h).contains(&Tally::SystemPeer));
    let phase = h.clock.phase_at(h.now);
    assert!(phase.abs() < 0.001, "clock {phase} s off");
}

#[test]
fn a_noselect_server_is_polled_but_never_selected() {
    let none = SelectOptions::NONE;
    let h = run(fset(), &[(0.0, none, false), (0.3, none, true)]);
    assert_eq!(tallies(&h), [Tally::SystemPeer, Tally::Rejected]);
    assert!(h.servers[1].requests.len() > 5);
    assert!(h.clock.phase_at(h.now).abs() < 0.001);
}

#[test]
fn auth_select_modes_with_no_authenticated_source_change_nothing() {
    // No source has a key: every mode but `require` selects them all.
    let none = SelectOptions::NONE;
    for mode in [
        AuthSelectMode::Prefer,
        AuthSelectMode::Mix,
        AuthSelectMode::Ignore,
    ] {
        let mut config = fset();
        config.auth_select = mode;
        let h = run(config, &[(0.0, none, false), (0.0, none, false)]);
        assert!(h.client.system_peer().is_some(), "{mode:?}");
    }
    let mut config = fset();
    config.auth_select = AuthSelectMode::Require;
    let h = run(config, &[(0.0, none, false), (0.0, none, false)]);
    assert_eq!(h.client.system_peer(), None);
    assert_eq!(tallies(&h), [Tally::Rejected, Tally::Rejected]);
}

#[test]
fn servers_1_1_s_away_need_a_max_distance_above_the_rfc_one() {
    // 2.2 s round trip: a root distance of 1.1 s, over RFC 5905's 1 s.
    let run = |config: SystemConfig| {
        let mut config = config;
        config.source.iburst = false;
        let mut h = Harness::new(config, 0.0, 7);
        h.delay = core::time::Duration::from_millis(1100);
        for _ in 0..3 {
            h.add_server(Behaviour::Ntp(open_server(primary())), 0.0);
        }
        h.run_until(600.0);
        h
    };
    let refused = run(fset());
    assert!(refused.client.sources().all(|s| s.reach() == 0));
    assert_eq!(refused.client.system_peer(), None);
    let reached = run(fset().with_max_distance(3.0));
    assert!(reached.client.sources().all(|s| s.reach() != 0));
    assert!(reached.client.system_peer().is_some());
}

#[test]
fn two_liars_and_a_preferred_server_leave_only_the_server_between_them() {
    // chrony's 120-selectoptions case 2: liars 1 s and 2 s ahead, the
    // preferred server right, 1.2 s round trips (intervals of about
    // +-0.6 s). Two cliques of two, [0.4, 0.6] and [1.4, 1.6]: only the
    // +1 s server's interval holds both, so it is followed, the first
    // selection steps to it, and the selection after that step waits for
    // every source's answer on the new timescale instead of learning the
    // frequency from the first two (+0 s and +1 s again: 1 s over a
    // minute).
    for seed in 1..=4 {
        let mut config = SystemConfig::default();
        config.source.iburst = false;
        let mut h = Harness::new(config, 0.0, seed);
        h.delay = core::time::Duration::from_millis(600);
        for (offset, options) in [
            (1.0, SelectOptions::NONE),
            (2.0, SelectOptions::NONE),
            (0.0, PREFER),
        ] {
            let index = h.add_server_only(Behaviour::Ntp(open_server(primary())), offset);
            let mut source = SourceConfig::default();
            source.select = options;
            h.client
                .add_source_with(h.servers[index].address, source)
                .unwrap();
        }
        h.run_until(2.0 * 3_600.0);
        assert_eq!(
            tallies(&h),
            [Tally::SystemPeer, Tally::Falseticker, Tally::Falseticker],
            "seed {seed}"
        );
        let phase = h.clock.phase_at(h.now);
        assert!(
            (phase - 1.0).abs() < 0.01,
            "seed {seed}: clock {phase} s off"
        );
        let updates: Vec<_> = h
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                ntp_client::Event::DisciplineUpdate(report) => Some(report),
                _ => None,
            })
            .collect();
        // One step, at the first selection (its batch of three samples
        // a source, the step at the last); every later update is near
        // +1 s.
        let is_step = |r: &&&UpdateReport| matches!(r.outcome, Ok(UpdateOutcome::Step(_)));
        assert_eq!(updates.iter().filter(is_step).count(), 1, "seed {seed}");
        let step = updates.iter().position(|r| is_step(&r)).unwrap();
        for report in &updates[..step] {
            assert_eq!(
                report.outcome,
                Ok(UpdateOutcome::Ignored(IgnoreReason::Batched)),
                "seed {seed}"
            );
        }
        for report in &updates[step + 1..] {
            assert!(report.offset.abs() < 0.01, "seed {seed}: {report:?}");
            assert!(report.frequency.abs() < 1e-6, "seed {seed}: {report:?}");
        }
    }
}
