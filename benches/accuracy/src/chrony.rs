//! The checks of chrony's simulation suite (`test/simulation/test.common`
//! in chrony's repository), restated for both clients of a ported case.
//!
//! - sync: the client's first second from which its true offset stays
//!   within `time_max_limit` and its frequency error within
//!   `freq_max_limit` to the end of the run (clknetsim's `find_sync` with
//!   no smoothing) must lie between `min_sync_time` and `max_sync_time`;
//!   from `max_sync_time` on (clknetsim's statistics, reset there) the
//!   maximum and RMS offset and frequency error must be within the
//!   limits. The lower bound checks chronyd's own start-up pace: for our
//!   daemon it is reported, not judged.
//! - source selection: chronyd's log says it selected a source and never
//!   that it could not for want of a majority or of selectable sources;
//!   our daemon's log names a system peer, never a falseticker.
//! - exit: the client ran to the end, rather than give up (chronyd's
//!   `maxchange` exit; ours' panic exit, accepted as a finished run only
//!   where the case expects it).
//! - packet interval (the client's part): mean intervals of incoming and
//!   outgoing packets at least 0.1 s, the mean outgoing interval between
//!   `client_min_mean_out_interval` and the mean incoming one, the
//!   shortest outgoing interval between 1.8 s (0.18 s with several
//!   servers) and `client_max_min_out_interval`; intervals over the whole
//!   run.
//!
//! A case states for each check whether it must pass, must fail (the
//! suite's `check_sync && test_fail`) or is not made. Comparisons allow
//! the suite's relative slack of 1e-6 (and, where it adds one, ten times
//! the jitter).

use core::net::IpAddr;

use serde::Deserialize;

use crate::daemon_log::SystemPeers;
use crate::stats::NodeStats;
use crate::verdict::Outcome;

/// What a check of a ported case must come to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Expect {
    /// The check must pass (the suite's `check_x || test_fail`).
    #[default]
    Pass,
    /// The check must fail (`check_x && test_fail`).
    Fail,
    /// The case does not make this check.
    Skip,
}

/// The `[chrony]` table of a ported case: the upstream test and its
/// limits. Defaults are `test.common`'s.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ChronyTest {
    /// The upstream test file (e.g. `003-largefreqoffset`) and which of
    /// its cases, in words.
    pub(crate) test: String,
    /// Earliest second at which chronyd may be synchronised.
    pub(crate) min_sync_time: u32,
    /// Latest second at which the client must be synchronised; the
    /// statistics (and the runner's warm-up) start here.
    pub(crate) max_sync_time: u32,
    /// Maximum |offset| after `max_sync_time`, seconds; also the offset
    /// bound of the sync time.
    pub(crate) time_max_limit: f64,
    /// Maximum |frequency error| after `max_sync_time`; also the
    /// frequency bound of the sync time.
    pub(crate) freq_max_limit: f64,
    /// RMS offset after `max_sync_time`, seconds.
    pub(crate) time_rms_limit: f64,
    /// RMS frequency error after `max_sync_time`.
    pub(crate) freq_rms_limit: f64,
    /// Lower bound of the client's mean outgoing packet interval, seconds.
    pub(crate) client_min_mean_out_interval: f64,
    /// Upper bound of the client's shortest outgoing interval, seconds.
    pub(crate) client_max_min_out_interval: f64,
    /// The sync check.
    pub(crate) sync: Expect,
    /// The source selection check.
    pub(crate) source_selection: Expect,
    /// The packet interval check.
    pub(crate) packet_interval: Expect,
    /// The exit check (the suite's `check_chronyd_exit`): the client runs
    /// to the end rather than give up (chronyd's `maxchange` exit, ours'
    /// panic).
    pub(crate) exit: Expect,
    /// The case makes a falseticker the source the client must select:
    /// 120-selectoptions cases 6-8 configure it so (only the falseticker
    /// has a key, and `authselectmode` lets only authenticated sources
    /// steer), and in case 2 the falsetickers are the majority (two of
    /// three), so that the one whose interval holds both cliques'
    /// intersections is the selection's only truechimer. Our daemon's
    /// system peer may then be a falseticker, which otherwise fails the
    /// selection check whatever is expected; the sync check is expected
    /// to fail.
    pub(crate) falseticker_selected: bool,
}

impl Default for ChronyTest {
    fn default() -> Self {
        ChronyTest {
            test: String::new(),
            min_sync_time: 120,
            max_sync_time: 210,
            time_max_limit: 1e-3,
            freq_max_limit: 5e-4,
            time_rms_limit: 3e-4,
            freq_rms_limit: 1e-5,
            client_min_mean_out_interval: 0.0,
            client_max_min_out_interval: f64::INFINITY,
            sync: Expect::Pass,
            source_selection: Expect::Pass,
            packet_interval: Expect::Pass,
            exit: Expect::Pass,
            falseticker_selected: false,
        }
    }
}

impl ChronyTest {
    pub(crate) fn validate(&self, length: u32) -> Result<(), String> {
        if self.test.is_empty() {
            return Err(String::from("[chrony] needs test = \"NNN-name ...\""));
        }
        if self.min_sync_time > self.max_sync_time || self.max_sync_time >= length {
            return Err(String::from(
                "[chrony] needs min_sync_time <= max_sync_time < length",
            ));
        }
        let limits = [
            self.time_max_limit,
            self.freq_max_limit,
            self.time_rms_limit,
            self.freq_rms_limit,
        ];
        if !limits.iter().all(|limit| *limit > 0.0) {
            return Err(String::from("[chrony] limits must be positive"));
        }
        if self.falseticker_selected && self.sync != Expect::Fail {
            return Err(String::from(
                "[chrony] falseticker_selected needs sync = \"fail\"",
            ));
        }
        Ok(())
    }
}

/// What a client's log says about source selection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Selection {
    /// chronyd: whether it logged a selected source, and whether it
    /// logged that it could not synchronise (no majority, no selectable
    /// sources).
    Chronyd {
        /// "Selected source" appears.
        selected: bool,
        /// "no majority" or "no selectable sources" appears.
        complaint: bool,
    },
    /// Our daemon: its system peers.
    Ours(SystemPeers),
}

/// chronyd's log lines about selection.
pub(crate) fn chronyd_selection(log: &str) -> Selection {
    Selection::Chronyd {
        selected: log.contains("Selected source"),
        complaint: log.contains("no majority") || log.contains("no selectable sources"),
    }
}

/// The figures of a client that the checks need.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChronyFigures {
    /// The first second of the final stretch within the sync limits (the
    /// run's length when the last second is outside them).
    pub(crate) sync_time: u32,
    /// clknetsim's statistics of the client node.
    pub(crate) stats: NodeStats,
    /// What its log says about selection.
    pub(crate) selection: Selection,
    /// It gave up before the end: chronyd logged that an adjustment
    /// exceeded its `maxchange` and it was exiting; our daemon exited
    /// with an error before the simulation ended.
    pub(crate) gave_up: bool,
}

/// Whether chronyd's log says it gave up: the suite's
/// `Adjustment.*exceeds.*exiting` (chronyd 4.3 words it "Adjustment of
/// -1.178 seconds exceeds the allowed maximum of 0.100 seconds
/// (exiting)").
pub(crate) fn chronyd_gave_up(log: &str) -> bool {
    log.lines().any(|line| {
        line.find("Adjustment")
            .and_then(|at| line.get(at..))
            .and_then(|rest| rest.find("exceeds").and_then(|at| rest.get(at..)))
            .is_some_and(|rest| rest.contains("exiting"))
    })
}

/// check_chronyd_exit: the client ran to the end.
pub(crate) fn exit(test: &ChronyTest, figures: &ChronyFigures) -> (Outcome, String) {
    let values = if figures.gave_up {
        String::from("gave up before the end")
    } else {
        String::from("ran to the end")
    };
    expected(test.exit, !figures.gave_up, values)
}

/// clknetsim's `find_sync` without smoothing: the second after the last
/// one whose |offset| exceeds `time_limit` or whose |frequency error|
/// exceeds `freq_limit` (0 when none does; line `i` is second `i`).
pub(crate) fn find_sync(offset: &[f64], freq: &[f64], time_limit: f64, freq_limit: f64) -> u32 {
    let last = offset
        .iter()
        .zip(freq)
        .rposition(|(o, f)| o.abs() > time_limit || f.abs() > freq_limit);
    last.map_or(0, |index| u32::try_from(index + 1).unwrap_or(u32::MAX))
}

/// The suite's `check_stat`: `min <= value <= max` with a relative slack
/// of 1e-6 and an absolute `tolerance`; an infinite value passes any
/// lower bound and only an infinite upper bound.
pub(crate) fn within(value: f64, min: f64, max: f64, tolerance: f64) -> bool {
    let infinite = |x: f64| x.is_infinite() && x > 0.0;
    let slack = value / 1e6 + tolerance;
    let above = infinite(value) || value + slack >= min;
    let below = infinite(max) || (!infinite(value) && value - slack <= max);
    above && below
}

/// The outcome of a check against what the case expects, with the values.
fn expected(expect: Expect, passed: bool, values: String) -> (Outcome, String) {
    let outcome = match (expect, passed) {
        (Expect::Pass, true) | (Expect::Fail, false) => Outcome::Pass,
        _ => Outcome::Fail,
    };
    let word = match (expect, passed) {
        (Expect::Fail, true) => "passes, expected to fail: ",
        (Expect::Fail, false) => "fails as expected: ",
        _ => "",
    };
    (outcome, format!("{word}{values}"))
}

/// `value` with a `!` when it is out of its limits (the suite's marks).
fn mark(ok: bool) -> &'static str {
    if ok { "" } else { "!" }
}

/// check_sync. `judge_min` makes the lower bound of the sync time count
/// (chronyd); otherwise it is only marked with `(early)`.
pub(crate) fn sync(
    test: &ChronyTest,
    figures: &ChronyFigures,
    judge_min: bool,
) -> (Outcome, String) {
    let t = test;
    let s = &figures.stats;
    let sync = f64::from(figures.sync_time);
    let early = !within(sync, f64::from(t.min_sync_time), f64::INFINITY, 0.0);
    let late = !within(sync, 0.0, f64::from(t.max_sync_time), 0.0);
    let in_time = !(late || (judge_min && early));
    let max_time = within(s.max_offset, 0.0, t.time_max_limit, 0.0);
    let max_freq = within(s.max_freq, 0.0, t.freq_max_limit, 0.0);
    let rms_time = within(s.rms_offset, 0.0, t.time_rms_limit, 0.0);
    let rms_freq = within(s.rms_freq, 0.0, t.freq_rms_limit, 0.0);
    let passed = in_time && max_time && max_freq && rms_time && rms_freq;
    let early_note = if early && !judge_min { " (early)" } else { "" };
    let values = format!(
        "sync {}{}{early_note} s, max {:.2e}{} s, max freq {:.2e}{}, rms {:.2e}{} s, rms freq {:.2e}{}",
        figures.sync_time,
        mark(in_time),
        s.max_offset,
        mark(max_time),
        s.max_freq,
        mark(max_freq),
        s.rms_offset,
        mark(rms_time),
        s.rms_freq,
        mark(rms_freq),
    );
    expected(t.sync, passed, values)
}

/// check_source_selection; `liars` are the falsetickers' addresses.
pub(crate) fn source_selection(
    test: &ChronyTest,
    figures: &ChronyFigures,
    liars: &[IpAddr],
) -> (Outcome, String) {
    match &figures.selection {
        Selection::Chronyd {
            selected,
            complaint,
        } => {
            let passed = *selected && !complaint;
            let values = format!(
                "{}{}",
                if *selected {
                    "selected a source"
                } else {
                    "never selected a source"
                },
                if *complaint {
                    ", could not synchronise (no majority or no selectable sources)"
                } else {
                    ""
                }
            );
            expected(test.source_selection, passed, values)
        }
        Selection::Ours(peers) => {
            let liar = liars
                .iter()
                .find_map(|&liar| peers.first_time(liar).map(|t| (liar, t)));
            if let Some((address, t)) = liar.filter(|_| !test.falseticker_selected) {
                // A falseticker as system peer fails whatever is expected.
                return (
                    Outcome::Fail,
                    format!("falseticker {address} system peer at {t:.0} s"),
                );
            }
            // A reference clock is named, not addressed.
            let passed = !peers.addresses.is_empty() || !peers.unreadable.is_empty();
            let values = match (peers.addresses.first(), peers.unreadable.first()) {
                (Some((address, t)), _) => format!("system peer {address} from {t:.0} s"),
                (None, Some(name)) => format!("system peer {name}"),
                (None, None) => String::from("never a system peer"),
            };
            expected(test.source_selection, passed, values)
        }
    }
}

/// check_packet_interval, the client's part; `servers` is the number of
/// servers, `jitter` the scenario's (the suite allows 10 x jitter on the
/// mean outgoing interval).
pub(crate) fn packet_interval(
    test: &ChronyTest,
    figures: &ChronyFigures,
    servers: usize,
    jitter: f64,
) -> (Outcome, String) {
    let s = &figures.stats;
    let shortest = if servers > 1 { 0.18 } else { 1.8 };
    let means = within(s.mean_in_interval, 0.1, f64::INFINITY, 0.0)
        && within(s.mean_out_interval, 0.1, f64::INFINITY, 0.0);
    let out_vs_in = within(
        s.mean_out_interval,
        test.client_min_mean_out_interval,
        s.mean_in_interval,
        10.0 * jitter,
    );
    let min_out = within(
        s.min_out_interval,
        shortest,
        test.client_max_min_out_interval,
        0.0,
    );
    let values = format!(
        "mean in {:.2e} s, mean out {:.2e}{} s, min out {:.2e}{} s",
        s.mean_in_interval,
        s.mean_out_interval,
        mark(means && out_vs_in),
        s.min_out_interval,
        mark(min_out),
    );
    expected(test.packet_interval, means && out_vs_in && min_out, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> NodeStats {
        NodeStats {
            rms_offset: 1e-4,
            max_offset: 5e-4,
            rms_freq: 1e-6,
            max_freq: 2e-5,
            mean_in_interval: 64.0,
            mean_out_interval: 64.0,
            min_out_interval: 2.0,
        }
    }

    fn figures(sync_time: u32, selection: Selection) -> ChronyFigures {
        ChronyFigures {
            sync_time,
            stats: stats(),
            selection,
            gave_up: false,
        }
    }

    #[test]
    fn exit_of_both_clients() {
        let log = "2010-01-01T00:05:27Z Adjustment of -0.676 seconds exceeds the allowed maximum of 0.100 seconds (ignored)\n\
                   2010-01-01T00:08:40Z Adjustment of -1.178 seconds exceeds the allowed maximum of 0.100 seconds (exiting)\n";
        assert!(chronyd_gave_up(log));
        assert!(!chronyd_gave_up(
            "Adjustment of 1.0 seconds exceeds the allowed maximum of 0.1 seconds (ignored)\nchronyd exiting\n"
        ));
        let test = ChronyTest {
            test: String::from("131-maxchange"),
            exit: Expect::Fail,
            ..ChronyTest::default()
        };
        let mut figures = figures(150, chronyd_selection(""));
        assert_eq!(exit(&test, &figures).0, Outcome::Fail);
        figures.gave_up = true;
        assert_eq!(exit(&test, &figures).0, Outcome::Pass);
        let runs_on = ChronyTest {
            exit: Expect::Pass,
            ..test
        };
        assert_eq!(exit(&runs_on, &figures).0, Outcome::Fail);
    }

    #[test]
    fn find_sync_is_the_start_of_the_last_stretch_within_limits() {
        let offset = [0.1, 0.01, 1e-4, 2e-3, 1e-4, 1e-4];
        let freq = [1e-4, 1e-4, 1e-4, 1e-5, 1e-3, 1e-6];
        assert_eq!(find_sync(&offset, &freq, 1e-3, 5e-4), 5);
        assert_eq!(find_sync(&[0.0; 3], &[0.0; 3], 1e-3, 5e-4), 0);
        // Never within: the length of the log.
        assert_eq!(find_sync(&[1.0; 4], &[0.0; 4], 1e-3, 5e-4), 4);
    }

    #[test]
    fn check_stat_slack() {
        assert!(within(210.0002, 120.0, 210.0, 0.0));
        assert!(!within(210.001, 120.0, 210.0, 0.0));
        assert!(within(f64::INFINITY, 0.1, f64::INFINITY, 0.0));
        assert!(!within(f64::INFINITY, 0.0, 5.0, 0.0));
        assert!(within(5.5, 0.0, 5.0, 1.0));
    }

    #[test]
    fn sync_judges_the_lower_bound_for_chronyd_only() {
        let test = ChronyTest {
            test: String::from("001-defaults"),
            ..ChronyTest::default()
        };
        let selected = Selection::Chronyd {
            selected: true,
            complaint: false,
        };
        let on_time = figures(150, selected.clone());
        assert_eq!(sync(&test, &on_time, true).0, Outcome::Pass);
        let early = figures(30, selected.clone());
        let (outcome, values) = sync(&test, &early, true);
        assert_eq!(outcome, Outcome::Fail);
        assert!(values.starts_with("sync 30! s"), "{values}");
        let (outcome, values) = sync(&test, &early, false);
        assert_eq!(outcome, Outcome::Pass);
        assert!(values.starts_with("sync 30 (early) s"), "{values}");
        assert_eq!(sync(&test, &figures(211, selected), false).0, Outcome::Fail);

        let never = ChronyTest {
            sync: Expect::Fail,
            ..test
        };
        let (outcome, values) = sync(
            &never,
            &figures(10_000, Selection::Ours(SystemPeers::default())),
            false,
        );
        assert_eq!(outcome, Outcome::Pass);
        assert!(values.starts_with("fails as expected: sync 10000! s"));
    }

    #[test]
    fn selection_of_both_clients() {
        let test = ChronyTest {
            test: String::from("009-sourceselection"),
            ..ChronyTest::default()
        };
        let chronyd = |log: &str| figures(150, chronyd_selection(log));
        let good = "Selected source 192.168.123.3\n";
        let bad = "Selected source 192.168.123.3\nCan't synchronise: no majority\n";
        assert_eq!(
            source_selection(&test, &chronyd(good), &[]).0,
            Outcome::Pass
        );
        assert_eq!(source_selection(&test, &chronyd(bad), &[]).0, Outcome::Fail);
        assert_eq!(source_selection(&test, &chronyd(""), &[]).0, Outcome::Fail);

        let liar: IpAddr = "192.168.123.1".parse().unwrap();
        let truthful: IpAddr = "192.168.123.3".parse().unwrap();
        let ours = |addresses: Vec<(IpAddr, f64)>| {
            figures(
                150,
                Selection::Ours(SystemPeers {
                    addresses,
                    unreadable: Vec::new(),
                    complete: true,
                }),
            )
        };
        let honest = ours(vec![(truthful, 10.0)]);
        assert_eq!(source_selection(&test, &honest, &[liar]).0, Outcome::Pass);
        let fooled = ours(vec![(truthful, 10.0), (liar, 90.0)]);
        assert_eq!(source_selection(&test, &fooled, &[liar]).0, Outcome::Fail);
        let none = ours(Vec::new());
        assert_eq!(source_selection(&test, &none, &[liar]).0, Outcome::Fail);
        // Where selection must fail, never choosing passes, a liar never.
        let refuse = ChronyTest {
            source_selection: Expect::Fail,
            ..test
        };
        assert_eq!(source_selection(&refuse, &none, &[liar]).0, Outcome::Pass);
        assert_eq!(source_selection(&refuse, &fooled, &[liar]).0, Outcome::Fail);
        // Where the configuration leaves only the liar to select, choosing
        // it is the selection the case expects.
        let only_liar = ChronyTest {
            sync: Expect::Fail,
            falseticker_selected: true,
            ..refuse.clone()
        };
        let only_liar = ChronyTest {
            source_selection: Expect::Pass,
            ..only_liar
        };
        assert!(only_liar.validate(10_000).is_ok());
        assert_eq!(
            source_selection(&only_liar, &fooled, &[liar]).0,
            Outcome::Pass
        );
        assert_eq!(
            source_selection(&only_liar, &none, &[liar]).0,
            Outcome::Fail
        );
        let unsound = ChronyTest {
            sync: Expect::Pass,
            ..only_liar
        };
        assert!(unsound.validate(10_000).is_err());
    }

    #[test]
    fn packet_intervals() {
        let test = ChronyTest {
            test: String::from("001-defaults"),
            ..ChronyTest::default()
        };
        let selection = Selection::Ours(SystemPeers::default());
        let mut run = figures(150, selection);
        assert_eq!(packet_interval(&test, &run, 1, 1e-4).0, Outcome::Pass);
        run.stats.min_out_interval = 1.0;
        assert_eq!(packet_interval(&test, &run, 1, 1e-4).0, Outcome::Fail);
        assert_eq!(packet_interval(&test, &run, 3, 1e-4).0, Outcome::Pass);
        run.stats.mean_out_interval = 65.0;
        assert_eq!(packet_interval(&test, &run, 3, 1e-4).0, Outcome::Fail);
        // Ten times the jitter of slack.
        assert_eq!(packet_interval(&test, &run, 3, 0.1).0, Outcome::Pass);
    }
}
