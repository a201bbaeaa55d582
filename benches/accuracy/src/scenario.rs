//! Scenario files: one small TOML file per scenario stating only what
//! differs from the reference scenario ([`Scenario::default`]).
//!
//! The shape follows chrony's `test/simulation/`: the defaults describe one
//! server, a client clock 20 ppm fast with a 1e-9/s random walk, 500 us
//! one-way delay plus exponential jitter, and a file changes only the
//! parameters its case is about.

use std::fs;
use std::path::Path;

use serde::Deserialize;

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
    /// Fixed one-way network delay in seconds, each direction.
    pub(crate) delay: f64,
    /// Mean of the exponential jitter added to every one-way delay, seconds.
    pub(crate) jitter: f64,
    /// Initial offset of the client clock in seconds.
    pub(crate) client_offset: f64,
    /// Initial frequency error of the client clock (1e-6 = 1 ppm fast).
    pub(crate) client_freq: f64,
    /// Standard deviation of the client's per-second frequency random walk.
    pub(crate) wander: f64,
    /// Frequency steps of the client clock.
    pub(crate) freq_steps: Vec<FreqStep>,
    /// Windows in which every packet between client and servers is lost.
    pub(crate) outages: Vec<Outage>,
    /// Options after `server ADDRESS` in chronyd's configuration.
    pub(crate) chronyd_server_options: String,
    /// Extra lines for chronyd's client configuration (e.g. `makestep`).
    pub(crate) chronyd_extra_conf: Vec<String>,
    /// Extra arguments for our daemon after the `--server` list.
    pub(crate) daemon_args: Vec<String>,
    /// A window reported separately (e.g. the hour after an event).
    pub(crate) event: Option<EventWindow>,
    /// What our daemon must achieve; judged in the report and, with
    /// `--check`, in the exit status.
    pub(crate) thresholds: Thresholds,
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

/// A window of lost packets (both directions, all servers).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Outage {
    /// First second of the outage.
    pub(crate) start: u32,
    /// Second at which the servers become reachable again.
    pub(crate) end: u32,
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
}

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
            delay: 500e-6,
            jitter: 100e-6,
            client_offset: 0.01,
            client_freq: 20e-6,
            wander: 1e-9,
            freq_steps: Vec::new(),
            outages: Vec::new(),
            chronyd_server_options: String::from("iburst"),
            chronyd_extra_conf: Vec::new(),
            daemon_args: Vec::new(),
            event: None,
            thresholds: Thresholds::default(),
        }
    }
}

impl Scenario {
    /// Parses a scenario from TOML text, filling the defaults, and checks it.
    pub(crate) fn parse(name: &str, text: &str) -> Result<Self, String> {
        let mut scenario: Scenario = toml::from_str(text).map_err(|e| format!("{name}: {e}"))?;
        scenario.name = String::from(name);
        scenario.validate().map_err(|e| format!("{name}: {e}"))?;
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
        if self.servers == 0 || self.servers > 16 {
            return Err(format!("servers = {}: must be 1 to 16", self.servers));
        }
        if self.server_offsets.len() > self.servers {
            return Err(String::from("more server_offsets than servers"));
        }
        if self.length < 10 || self.warmup >= self.length {
            return Err(String::from("need 10 <= length and warmup < length"));
        }
        if !(self.delay > 0.0 && self.jitter >= 0.0) {
            return Err(String::from("delay must be > 0 and jitter >= 0"));
        }
        if self.outages.iter().any(|o| o.start >= o.end) {
            return Err(String::from("an outage must have start < end"));
        }
        if let Some(event) = &self.event {
            if event.length == 0 || event.start.saturating_add(event.length) > self.length {
                return Err(String::from("event window must lie inside the run"));
            }
        }
        self.thresholds.validate(self)
    }
}

/// Loads every `*.toml` file of a folder, sorted by name.
pub(crate) fn load_dir(dir: &Path) -> Result<Vec<Scenario>, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            paths.push(path);
        }
    }
    paths.sort();
    paths.iter().map(|path| Scenario::load(path)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn committed_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let scenarios = load_dir(&dir).unwrap();
        assert!(scenarios.len() >= 7);
        let named = |name: &str| scenarios.iter().find(|s| s.name == name).unwrap();
        assert_eq!(named("falseticker3").liars(), [3]);
        assert!(named("falseticker5").thresholds.liar_never_system_peer);
        assert_eq!(named("large-offset").thresholds.steps, Some(1));
        assert_eq!(named("a").thresholds.median_group.as_deref(), Some("a+b"));
    }
}
