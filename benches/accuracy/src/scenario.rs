//! Scenario files: one small TOML file per scenario stating only what
//! differs from the reference scenario ([`Scenario::default`]).
//!
//! The shape follows chrony's `test/simulation/`: the defaults describe one
//! server, a client clock 20 ppm fast with a 1e-9/s random walk, 500 us
//! one-way delay plus exponential jitter, and a file changes only the
//! parameters its case is about.
//!
//! A file with a `[chrony]` table is a port of one case of chrony's
//! `test/simulation/` suite: its defaults are that suite's
//! ([`CHRONY_DEFAULTS`]: 10 000 s, client 0.1 s and 100 ppm off, 100 us
//! delay plus 100 us jitter, no iburst), the warm-up is the table's
//! `max_sync_time`, and the table carries the case's pass criteria
//! ([`crate::chrony`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::chrony::ChronyTest;

/// What a `[chrony]` file does not state: the defaults of chrony's
/// simulation suite (its `test.common`), as scenario keys. The warm-up is
/// not here: it is the `[chrony]` table's `max_sync_time`.
pub(crate) const CHRONY_DEFAULTS: &str = "\
length = 10000
client_offset = 0.1
client_freq = 1e-4
wander = 1e-9
delay = 1e-4
jitter = 1e-4
chronyd_server_options = \"\"
";

/// Everything that describes one simulated case. Field defaults are the
/// reference scenario; a scenario file overrides any subset of them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Scenario {
    /// Name of the scenario: the file stem, never read from the file.
    #[serde(skip)]
    pub(crate) name: String,
    /// One line saying what the case tests (shown in the markdown table).
    pub(crate) description: String,
    /// Simulated length in seconds (`clknetsim -l`).
    pub(crate) length: u32,
    /// Statistics start after this many seconds (`clknetsim -r`).
    pub(crate) warmup: u32,
    /// Number of servers (nodes 1..=servers); the client is the next node.
    pub(crate) servers: usize,
    /// Constant clock offset of each server in seconds, in node order;
    /// servers without an entry keep offset 0 (true time).
    pub(crate) server_offsets: Vec<f64>,
    /// The first `falsetickers` servers are falsetickers: server `i`
    /// (1-based) is `i` seconds ahead, as in chrony's suite. Exclusive
    /// with `server_offsets`.
    pub(crate) falsetickers: usize,
    /// Fixed one-way network delay in seconds, each direction.
    pub(crate) delay: f64,
    /// Mean of the exponential jitter added to every one-way delay, seconds.
    pub(crate) jitter: f64,
    /// Asymmetry `a` of the jitter (chrony's `jitter_asymmetry`): the
    /// requests' jitter is scaled by `1 - 2a`, the replies' by `1 + 2a`.
    pub(crate) jitter_asymmetry: f64,
    /// Probability that a packet is lost, each link and direction on its
    /// own (drawn into the noise files, so both clients lose the same).
    pub(crate) random_loss: f64,
    /// Only every `n`th request to a server reaches it (counted per
    /// server, the others are lost); 0 or 1: every request does.
    pub(crate) requests_pass_every: u32,
    /// Constant delays added to a server's link.
    pub(crate) link_delays: Vec<LinkDelay>,
    /// Initial offset of the client clock in seconds.
    pub(crate) client_offset: f64,
    /// Initial frequency error of the client clock (1e-6 = 1 ppm fast).
    pub(crate) client_freq: f64,
    /// Standard deviation of the client's per-second frequency random walk.
    pub(crate) wander: f64,
    /// The client's frequency error grows by this much every second
    /// (chrony's `(sum RAMP)` frequency), on top of `client_freq`.
    pub(crate) client_freq_ramp: f64,
    /// A sinusoidal term of the client's frequency error (chrony's
    /// `(* AMPLITUDE (sine PERIOD))`), on top of the rest.
    pub(crate) client_freq_sine: Option<FreqSine>,
    /// Frequency steps of the client clock.
    pub(crate) freq_steps: Vec<FreqStep>,
    /// Steps of the client clock's time (made by the simulator, as an
    /// outside program would set the clock).
    pub(crate) client_steps: Vec<ClockStep>,
    /// A clknetsim expression stepping every server's clock, evaluated
    /// once a simulated second (chrony's `server_step`, e.g. `"(pulse 64
    /// 64)"`: +1 s a second for 64 s, then -1 s a second for 64 s). The
    /// same for both clients: it is a function of time, not noise.
    pub(crate) server_step: Option<String>,
    /// Windows in which every packet between client and servers is lost.
    pub(crate) outages: Vec<Outage>,
    /// Options after `server ADDRESS` in chronyd's configuration.
    pub(crate) chronyd_server_options: String,
    /// Extra lines for chronyd's client configuration (e.g. `makestep`).
    pub(crate) chronyd_extra_conf: Vec<String>,
    /// Extra lines for the chronyd servers' configuration (chrony's
    /// `server_conf`, e.g. `hwtimestamp eth0`).
    pub(crate) chronyd_server_conf: Vec<String>,
    /// Serve with our daemon instead of chronyd: its arguments after
    /// [`crate::sim::DAEMON_SERVER_ARGS`] (e.g. `--hwtimestamp`). Both
    /// clients then ask our server: with the same scenario served by
    /// chronyd, the four pairs of client and server.
    pub(crate) daemon_server_args: Option<Vec<String>>,
    /// Extra arguments for our daemon after the `--server` list.
    pub(crate) daemon_args: Vec<String>,
    /// chronyd's source lines in place of `server ADDRESS OPTIONS` per
    /// server (chrony's `client_server_conf`, e.g. a `pool` line).
    pub(crate) chronyd_sources: Vec<String>,
    /// Our daemon's source arguments in place of the `--server` list (e.g.
    /// `["--pool", "nodes-1-2-3.net1.clk"]`).
    pub(crate) daemon_sources: Vec<String>,
    /// Environment for every process of the run (clknetsim's switches,
    /// e.g. `CLKNETSIM_START_DATE`, `CLKNETSIM_RECV_MULTIPLY`).
    pub(crate) clknetsim_env: BTreeMap<String, String>,
    /// Contents of a drift file (chronyd's form: frequency in ppm, skew)
    /// written before the client starts and given to both clients
    /// (chronyd `driftfile`, ours `--drift-file`).
    pub(crate) drift_file: Option<String>,
    /// The client's reference clock (clknetsim's `refclock`, which its
    /// SHM, PHC and PPS devices read): the standard deviation of its
    /// normal noise, seconds, drawn into a noise file so that both
    /// clients see the same. `None`: no reference clock.
    pub(crate) refclock_jitter: Option<f64>,
    /// A constant error of that reference clock, seconds.
    pub(crate) refclock_offset: f64,
    /// Contents of a symmetric key file in chrony's format (`ID TYPE
    /// HEX:KEY` lines), written before the run and given to every chronyd
    /// (`keyfile`, servers and client alike) and to our daemon (`--keys`);
    /// the sources name their keys (`key 1`, `--key 1`).
    pub(crate) key_file: Option<String>,
    /// The servers do not get `key_file` (the clients still do): a
    /// server that does not know the client's key.
    pub(crate) key_file_clients_only: bool,
    /// A window reported separately (e.g. the hour after an event).
    pub(crate) event: Option<EventWindow>,
    /// What our daemon must achieve; judged in the report and, with
    /// `--check`, in the exit status.
    pub(crate) thresholds: Thresholds,
    /// A port of a chrony simulation test: its limits and which of its
    /// checks must pass or fail (both clients are judged).
    pub(crate) chrony: Option<ChronyTest>,
    /// Why our daemon is expected to fail this scenario today: its
    /// failures are reported as known and do not fail `--check`.
    pub(crate) known_failure: Option<String>,
    /// Thresholds our daemon is expected to fail today, by key (e.g.
    /// `freq_rms_vs_chronyd`), each with the reason.
    pub(crate) known_failure_thresholds: BTreeMap<String, String>,
    /// chronyd options the case needs that our daemon has no flag for
    /// (e.g. `makestep 1 3`): left out of `daemon_args`, listed in the
    /// report.
    pub(crate) missing_daemon_options: Vec<String>,
}

/// A constant delay added to the link of one server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkDelay {
    /// Server node (1-based).
    pub(crate) server: usize,
    /// Added to every request (client to server), seconds.
    #[serde(default)]
    pub(crate) up: f64,
    /// Added to every reply (server to client), seconds.
    #[serde(default)]
    pub(crate) down: f64,
}

/// A step of the client clock: once at `time`, or at every multiple of
/// `every` seconds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClockStep {
    /// Simulated second of the only step.
    pub(crate) time: Option<u32>,
    /// Period of repeated steps, seconds (first at `every`).
    pub(crate) every: Option<u32>,
    /// The step, seconds (positive: the clock jumps ahead).
    pub(crate) step: f64,
}

/// A sinusoidal frequency error: `amplitude * sin(2 pi second / period)`,
/// zero at second 0, as clknetsim's `sine` generator, which counts one per
/// second of the frequency's update.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FreqSine {
    /// Peak frequency error (1e-6 = 1 ppm).
    pub(crate) amplitude: f64,
    /// Period, seconds.
    pub(crate) period: f64,
}

/// A step of the client clock's frequency.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FreqStep {
    /// Simulated second at which the step applies.
    pub(crate) time: u32,
    /// Frequency change (1e-6 = 1 ppm).
    pub(crate) step: f64,
}

/// A window of lost packets (both directions), of all servers or some.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Outage {
    /// First second of the outage.
    pub(crate) start: u32,
    /// Second at which the servers become reachable again (default: the
    /// end of the run).
    #[serde(default)]
    pub(crate) end: Option<u32>,
    /// The window repeats with this period, seconds (`start` and `end`
    /// within the first period).
    #[serde(default)]
    pub(crate) every: Option<u32>,
    /// Server nodes (1-based) the outage cuts off; empty: all.
    #[serde(default)]
    pub(crate) servers: Vec<usize>,
}

impl Outage {
    /// The end of the window: `end`, else the end of the period, else the
    /// end of the run.
    pub(crate) fn end_within(&self, length: u32) -> u32 {
        self.end.or(self.every).unwrap_or(length)
    }
}

/// A time window with its own RMS and maximum offset in the report.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventWindow {
    /// What the window is (e.g. "hour after the step").
    pub(crate) label: String,
    /// First second of the window.
    pub(crate) start: u32,
    /// Length of the window in seconds.
    #[serde(default = "default_event_length")]
    pub(crate) length: u32,
}

/// What our daemon must achieve in a scenario (only ours is judged, never
/// chronyd). Ratios are ours / chronyd in the same run: same scenario and
/// seed, so the same noise files. Every limit is optional; a scenario
/// without any is reported but not judged.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Thresholds {
    /// Upper limit on RMS offset after the warm-up, ours / chronyd.
    pub(crate) rms_offset_ratio: Option<f64>,
    /// Upper limit on maximum |offset| after the warm-up, ours / chronyd.
    pub(crate) max_offset_ratio: Option<f64>,
    /// Upper limit on packets sent over the whole run, ours / chronyd.
    pub(crate) packets_ratio: Option<f64>,
    /// Upper limit on RMS offset in the `[event]` window, ours / chronyd.
    pub(crate) event_rms_offset_ratio: Option<f64>,
    /// Exact number of clock steps of ours over the whole run.
    pub(crate) steps: Option<u32>,
    /// Ours must first have |offset| under 100 us at or before this
    /// second of the run.
    pub(crate) first_sync_within_s: Option<u32>,
    /// No server with a nonzero `server_offsets` entry (a liar) may ever
    /// be our system peer, from the first selection on.
    pub(crate) liar_never_system_peer: bool,
    /// Upper limit on the median of the RMS offset ratios over the rows of
    /// this scenario's seeds, or over every row of every scenario naming
    /// the same `median_group`.
    pub(crate) median_rms_offset_ratio: Option<f64>,
    /// Scenarios with the same group share one median (their limits must
    /// agree); without it the median is over this scenario's seeds.
    pub(crate) median_group: Option<String>,
    /// RMS frequency error after the warm-up <= max(2 x chronyd's,
    /// 0.5 ppm) ([`FREQ_RMS_FACTOR`], [`FREQ_RMS_FLOOR`]).
    pub(crate) freq_rms_vs_chronyd: bool,
    /// Maximum |frequency error| after the warm-up <= max(3 x chronyd's,
    /// 5 ppm) ([`FREQ_MAX_FACTOR`], [`FREQ_MAX_FLOOR`]).
    pub(crate) freq_max_vs_chronyd: bool,
}

/// `freq_rms_vs_chronyd`: ours may have this many times chronyd's RMS
/// frequency error ...
pub(crate) const FREQ_RMS_FACTOR: f64 = 2.0;
/// ... or this much (0.5 ppm), whichever is larger.
pub(crate) const FREQ_RMS_FLOOR: f64 = 0.5e-6;
/// `freq_max_vs_chronyd`: ours may have this many times chronyd's maximum
/// |frequency error| ...
pub(crate) const FREQ_MAX_FACTOR: f64 = 3.0;
/// ... or this much (5 ppm), whichever is larger.
pub(crate) const FREQ_MAX_FLOOR: f64 = 5e-6;

/// The keys a `known_failure_thresholds` table may name: every threshold
/// and every chrony check.
pub(crate) const THRESHOLD_KEYS: [&str; 14] = [
    "rms_offset_ratio",
    "max_offset_ratio",
    "packets_ratio",
    "event_rms_offset_ratio",
    "steps",
    "first_sync_within_s",
    "liar_never_system_peer",
    "freq_rms_vs_chronyd",
    "freq_max_vs_chronyd",
    "sync",
    "source_selection",
    "packet_interval",
    "exit",
    "run",
];

impl Thresholds {
    fn validate(&self, scenario: &Scenario) -> Result<(), String> {
        let ratios = [
            ("rms_offset_ratio", self.rms_offset_ratio),
            ("max_offset_ratio", self.max_offset_ratio),
            ("packets_ratio", self.packets_ratio),
            ("event_rms_offset_ratio", self.event_rms_offset_ratio),
            ("median_rms_offset_ratio", self.median_rms_offset_ratio),
        ];
        for (key, limit) in ratios {
            if limit.is_some_and(|limit| !(limit.is_finite() && limit > 0.0)) {
                return Err(format!("thresholds.{key} must be a positive number"));
            }
        }
        if self.event_rms_offset_ratio.is_some() && scenario.event.is_none() {
            return Err(String::from(
                "thresholds.event_rms_offset_ratio needs an [event] window",
            ));
        }
        if self.liar_never_system_peer && scenario.liars().is_empty() {
            return Err(String::from(
                "thresholds.liar_never_system_peer needs a nonzero server_offsets entry",
            ));
        }
        if self.median_group.is_some() && self.median_rms_offset_ratio.is_none() {
            return Err(String::from(
                "thresholds.median_group needs median_rms_offset_ratio",
            ));
        }
        if self
            .first_sync_within_s
            .is_some_and(|second| second > scenario.length)
        {
            return Err(String::from(
                "thresholds.first_sync_within_s lies after the end of the run",
            ));
        }
        Ok(())
    }
}

fn default_event_length() -> u32 {
    3600
}

impl Default for Scenario {
    /// The reference scenario (ACCURACY.md, "Reference runs").
    fn default() -> Self {
        Scenario {
            name: String::from("default"),
            description: String::new(),
            length: 20_000,
            warmup: 2000,
            servers: 1,
            server_offsets: Vec::new(),
            falsetickers: 0,
            delay: 500e-6,
            jitter: 100e-6,
            jitter_asymmetry: 0.0,
            random_loss: 0.0,
            requests_pass_every: 0,
            link_delays: Vec::new(),
            client_offset: 0.01,
            client_freq: 20e-6,
            wander: 1e-9,
            client_freq_ramp: 0.0,
            client_freq_sine: None,
            freq_steps: Vec::new(),
            client_steps: Vec::new(),
            server_step: None,
            outages: Vec::new(),
            chronyd_server_options: String::from("iburst"),
            chronyd_extra_conf: Vec::new(),
            chronyd_server_conf: Vec::new(),
            daemon_server_args: None,
            daemon_args: Vec::new(),
            chronyd_sources: Vec::new(),
            daemon_sources: Vec::new(),
            key_file: None,
            key_file_clients_only: false,
            refclock_jitter: None,
            refclock_offset: 0.0,
            clknetsim_env: BTreeMap::new(),
            drift_file: None,
            event: None,
            thresholds: Thresholds::default(),
            chrony: None,
            known_failure: None,
            known_failure_thresholds: BTreeMap::new(),
            missing_daemon_options: Vec::new(),
        }
    }
}

impl Scenario {
    /// Parses a scenario from TOML text, filling the defaults, and checks it.
    pub(crate) fn parse(name: &str, text: &str) -> Result<Self, String> {
        let error = |e: &dyn core::fmt::Display| format!("{name}: {e}");
        let mut table: toml::Table = text.parse().map_err(|e| error(&e))?;
        let chrony = table.contains_key("chrony");
        if chrony {
            if table.contains_key("warmup") {
                return Err(error(
                    &"a [chrony] file takes its warm-up from max_sync_time",
                ));
            }
            let mut merged: toml::Table = CHRONY_DEFAULTS.parse().map_err(|e| error(&e))?;
            merged.extend(table);
            table = merged;
        }
        let mut scenario: Scenario = toml::Value::Table(table)
            .try_into()
            .map_err(|e| error(&e))?;
        scenario.name = String::from(name);
        if let Some(test) = &scenario.chrony {
            scenario.warmup = test.max_sync_time;
        }
        if scenario.falsetickers > 0 {
            if !scenario.server_offsets.is_empty() {
                return Err(error(&"falsetickers and server_offsets exclude each other"));
            }
            scenario.server_offsets = (1..=scenario.falsetickers).map(|i| i as f64).collect();
        }
        scenario.validate().map_err(|e| error(&e))?;
        Ok(scenario)
    }

    /// Reads and parses a scenario file; the name is the file stem.
    pub(crate) fn load(path: &Path) -> Result<Self, String> {
        let name = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .ok_or_else(|| format!("{}: not a scenario file name", path.display()))?;
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(name, &text)
    }

    /// Offset of server `index` (0-based) in seconds.
    pub(crate) fn server_offset(&self, index: usize) -> f64 {
        self.server_offsets.get(index).copied().unwrap_or(0.0)
    }

    /// Node numbers of the servers whose clock is off (a nonzero
    /// `server_offsets` entry): the falsetickers.
    pub(crate) fn liars(&self) -> Vec<usize> {
        (0..self.servers)
            .filter(|&index| self.server_offset(index) != 0.0)
            .map(|index| index + 1)
            .collect()
    }

    /// Node number of the client (servers are 1..=servers).
    pub(crate) fn client_node(&self) -> usize {
        self.servers + 1
    }

    fn validate(&self) -> Result<(), String> {
        if self.servers > 16 || (self.servers == 0 && self.refclock_jitter.is_none()) {
            return Err(format!(
                "servers = {}: must be 1 to 16 (0 with a refclock_jitter)",
                self.servers
            ));
        }
        if !self
            .refclock_jitter
            .is_none_or(|jitter| jitter.is_finite() && jitter >= 0.0)
            || !self.refclock_offset.is_finite()
        {
            return Err(String::from(
                "refclock_jitter must be >= 0 and refclock_offset finite",
            ));
        }
        if self.server_offsets.len() > self.servers {
            return Err(String::from("more server_offsets than servers"));
        }
        if self.length < 10 || self.warmup >= self.length {
            return Err(String::from("need 10 <= length and warmup < length"));
        }
        if !(self.delay >= 0.0 && self.jitter >= 0.0 && self.delay + self.jitter > 0.0) {
            return Err(String::from(
                "delay and jitter must be >= 0, and not both 0",
            ));
        }
        if self
            .client_freq_sine
            .is_some_and(|sine| !(sine.amplitude.is_finite() && sine.period > 0.0))
        {
            return Err(String::from(
                "client_freq_sine needs a finite amplitude and a period > 0",
            ));
        }
        if !(0.0..0.5).contains(&self.jitter_asymmetry) || !(0.0..1.0).contains(&self.random_loss) {
            return Err(String::from(
                "need 0 <= jitter_asymmetry < 0.5 and 0 <= random_loss < 1",
            ));
        }
        if let Some(step) = &self.server_step {
            let balanced = step.chars().try_fold(0_i32, |depth, c| match c {
                '(' => Some(depth + 1),
                ')' => (depth > 0).then(|| depth - 1),
                '\n' | '"' => None,
                _ => Some(depth),
            });
            if step.trim().is_empty() || balanced != Some(0) {
                return Err(String::from(
                    "server_step must be one clknetsim expression (balanced parentheses, one line, no quotes)",
                ));
            }
        }
        let server_ok = |server: &usize| (1..=self.servers).contains(server);
        for outage in &self.outages {
            let end = outage.end_within(self.length);
            if outage.start >= end || outage.every.is_some_and(|every| end > every) {
                return Err(String::from(
                    "an outage must have start < end (and end <= every)",
                ));
            }
            if !outage.servers.iter().all(server_ok) {
                return Err(String::from("an outage names a server that does not exist"));
            }
        }
        if !self.link_delays.iter().all(|link| server_ok(&link.server)) {
            return Err(String::from(
                "link_delays names a server that does not exist",
            ));
        }
        if self
            .client_steps
            .iter()
            .any(|step| step.time.is_some() == step.every.is_some() || step.every == Some(0))
        {
            return Err(String::from(
                "a client step needs exactly one of time and every (> 0)",
            ));
        }
        for key in self.known_failure_thresholds.keys() {
            if !THRESHOLD_KEYS.contains(&key.as_str()) {
                return Err(format!("known_failure_thresholds: unknown threshold {key}"));
            }
        }
        if let Some(test) = &self.chrony {
            test.validate(self.length)?;
        }
        if let Some(event) = &self.event {
            if event.length == 0 || event.start.saturating_add(event.length) > self.length {
                return Err(String::from("event window must lie inside the run"));
            }
        }
        self.thresholds.validate(self)
    }
}

/// The `*.toml` files under a folder and its subfolders.
fn scenario_files(dir: &Path, paths: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.is_dir() {
            scenario_files(&path, paths)?;
        } else if path.extension().is_some_and(|ext| ext == "toml") {
            paths.push(path);
        }
    }
    Ok(())
}

/// Loads every `*.toml` file under a folder (subfolders included), sorted
/// by path: the folder's own files, then each subfolder's.
pub(crate) fn load_dir(dir: &Path) -> Result<Vec<Scenario>, String> {
    let mut paths = Vec::new();
    scenario_files(dir, &mut paths)?;
    paths.sort_by(|a, b| (a.components().count(), a).cmp(&(b.components().count(), b)));
    paths.iter().map(|path| Scenario::load(path)).collect()
}

/// Scenario names must be unique (they name the run folders and rows).
pub(crate) fn check_unique(scenarios: &[Scenario]) -> Result<(), String> {
    for (index, scenario) in scenarios.iter().enumerate() {
        let earlier = scenarios.get(..index).unwrap_or(&[]);
        if earlier.iter().any(|other| other.name == scenario.name) {
            return Err(format!("two scenarios are named {}", scenario.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_step_must_be_one_expression() {
        for bad in [
            "",
            "(pulse 64 64",
            "(pulse 64 64))",
            "(file \"x\")",
            "(a)\n(b)",
        ] {
            let scenario = Scenario {
                server_step: Some(String::from(bad)),
                ..Scenario::default()
            };
            assert!(scenario.validate().is_err(), "{bad:?}");
        }
        let good = Scenario {
            server_step: Some(String::from("(pulse 64 64)")),
            ..Scenario::default()
        };
        assert_eq!(good.validate(), Ok(()));
    }

    #[test]
    fn empty_file_is_the_reference_scenario() {
        let scenario = Scenario::parse("ref", "").unwrap();
        let expected = Scenario {
            name: String::from("ref"),
            ..Scenario::default()
        };
        assert_eq!(scenario, expected);
        assert_eq!(scenario.client_node(), 2);
    }

    #[test]
    fn a_file_overrides_only_what_it_states() {
        let text = r#"
            servers = 3
            server_offsets = [0.0, 0.0, 0.05]
            daemon_args = ["--min-poll", "4"]
            [event]
            label = "hour after the step"
            start = 10000
            [thresholds]
            rms_offset_ratio = 2.0
        "#;
        let scenario = Scenario::parse("liar", text).unwrap();
        assert_eq!(scenario.servers, 3);
        assert_eq!(scenario.client_node(), 4);
        assert!((scenario.server_offset(2) - 0.05).abs() < 1e-12);
        assert!(scenario.server_offset(7).abs() < 1e-12);
        assert_eq!(scenario.daemon_args, ["--min-poll", "4"]);
        assert_eq!(scenario.event.map(|e| e.length), Some(3600));
        assert_eq!(scenario.thresholds.rms_offset_ratio, Some(2.0));
        // Untouched fields keep the reference values.
        assert_eq!(scenario.length, 20_000);
        assert_eq!(scenario.chronyd_server_options, "iburst");
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        assert!(Scenario::parse("x", "lenght = 5").is_err());
        assert!(Scenario::parse("x", "servers = 0").is_err());
        assert!(Scenario::parse("x", "warmup = 30000").is_err());
        assert!(Scenario::parse("x", "server_offsets = [0.1, 0.2]").is_err());
    }

    #[test]
    fn thresholds_parse_and_are_checked() {
        let text = r#"
            servers = 5
            server_offsets = [0.0, 0.0, 0.0, 0.05, -0.05]
            [thresholds]
            liar_never_system_peer = true
            steps = 0
            first_sync_within_s = 60
            median_rms_offset_ratio = 0.8
            median_group = "a+b"
        "#;
        let scenario = Scenario::parse("liars", text).unwrap();
        assert_eq!(scenario.liars(), [4, 5]);
        let t = &scenario.thresholds;
        assert!(t.liar_never_system_peer);
        assert_eq!((t.steps, t.first_sync_within_s), (Some(0), Some(60)));
        assert_eq!(t.median_group.as_deref(), Some("a+b"));
        assert_eq!(t.rms_offset_ratio, None);

        for bad in [
            "[thresholds]\nliar_never_system_peer = true",
            "[thresholds]\nevent_rms_offset_ratio = 1.0",
            "[thresholds]\nmedian_group = \"g\"",
            "[thresholds]\nrms_offset_ratio = -1.0",
            "[thresholds]\nrms_offset_ratio = nan",
            "[thresholds]\nfirst_sync_within_s = 30000",
            "[thresholds]\nsteps = -1",
            "[thresholds]\nmax_rms = 1.0",
        ] {
            assert!(Scenario::parse("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_chrony_file_starts_from_the_suites_defaults() {
        let text =
            "servers = 5\nfalsetickers = 2\n[chrony]\ntest = \"009\"\nmax_sync_time = 1000\n";
        let scenario = Scenario::parse("009", text).unwrap();
        assert_eq!((scenario.length, scenario.warmup), (10_000, 1000));
        assert!((scenario.client_offset - 0.1).abs() < 1e-12);
        assert!((scenario.client_freq - 1e-4).abs() < 1e-15);
        assert!((scenario.delay - 1e-4).abs() < 1e-15);
        assert_eq!(scenario.chronyd_server_options, "");
        assert_eq!(scenario.liars(), [1, 2]);
        assert_eq!(scenario.server_offsets, [1.0, 2.0]);
        let test = scenario.chrony.unwrap();
        assert_eq!((test.min_sync_time, test.max_sync_time), (120, 1000));
        assert!(test.client_max_min_out_interval.is_infinite());

        for bad in [
            "[chrony]\nmax_sync_time = 100",
            "warmup = 5\n[chrony]\ntest = \"x\"",
            "[chrony]\ntest = \"x\"\nsync = \"maybe\"",
            "[chrony]\ntest = \"x\"\nmax_sync_time = 20000",
            "servers = 2\nfalsetickers = 1\nserver_offsets = [1.0]",
            "outages = [{ start = 5, every = 4 }]",
            "outages = [{ start = 5, servers = [2] }]",
            "link_delays = [{ server = 3, up = 1.0 }]",
            "client_steps = [{ step = 1.0 }]",
            "[known_failure_thresholds]\nrms = \"x\"",
        ] {
            assert!(Scenario::parse("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn committed_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let scenarios = load_dir(&dir).unwrap();
        assert!(scenarios.len() >= 7);
        let named = |name: &str| scenarios.iter().find(|s| s.name == name).unwrap();
        assert_eq!(named("falseticker3").liars(), [3]);
        assert!(named("falseticker5").thresholds.liar_never_system_peer);
        assert_eq!(named("large-offset").thresholds.steps, Some(1));
        assert_eq!(named("a").thresholds.median_group.as_deref(), Some("a+b"));
        // The chrony ports live in a subfolder; every scenario judges the
        // frequency errors against chronyd's.
        assert!(named("001-defaults").chrony.is_some());
        assert_eq!(named("003-largefreqoffset-1").warmup, 1000);
        for scenario in &scenarios {
            let t = &scenario.thresholds;
            assert!(
                t.freq_rms_vs_chronyd && t.freq_max_vs_chronyd,
                "{}",
                scenario.name
            );
        }
        check_unique(&scenarios).unwrap();
    }
}
