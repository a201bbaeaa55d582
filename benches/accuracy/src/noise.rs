//! Noise generated once per scenario and seed, written as one value per
//! line for clknetsim's `(file "path")` generator.
//!
//! clknetsim draws frequency walk and packet delays from one random stream,
//! so two clients that send different numbers of packets would see
//! different frequency walks. Pre-generated files give both clients the
//! same walk (one value per simulated second) and the same delay sequence
//! on every link (one value per packet, each link its own file).
//!
//! Each series comes from its own ChaCha8 stream of the seed: stream 0 is
//! the client's frequency, streams `1 + 2i` and `2 + 2i` the delays to and
//! from server `i`. A series therefore depends only on the seed and its
//! own parameters, not on how many servers a scenario has.
//!
//! Jitter asymmetry scales the jitter of the requests by `1 - 2a` and of
//! the replies by `1 + 2a` (chrony's `jitter_asymmetry`). With random
//! loss each delay is followed by a uniform draw that loses the packet
//! (a negative delay) with the scenario's probability; without it no
//! draw is made, so the series of scenarios without loss stay as they
//! were.

use core::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Exp1, StandardNormal, Uniform};

use crate::scenario::Scenario;

/// Paths of the noise files of one scenario and seed.
#[derive(Debug, Clone)]
pub(crate) struct NoiseFiles {
    /// Client clock frequency error, one value per simulated second.
    pub(crate) freq: PathBuf,
    /// Delay client -> server i, one value per packet.
    pub(crate) up: Vec<PathBuf>,
    /// Delay server i -> client, one value per packet.
    pub(crate) down: Vec<PathBuf>,
    /// The reference clock's noise, one value per simulated second, when
    /// the scenario has one.
    pub(crate) refclock: Option<PathBuf>,
}

/// Random stream of one series.
fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Client frequency for seconds `0..=length + 1`: the initial error plus a
/// random walk of `wander * N(0, 1)` per second, plus the scenario's
/// frequency steps from their second on, plus `client_freq_ramp` times
/// `i + 1`, plus the `client_freq_sine` term. Value `i` is used at second
/// `i`.
pub(crate) fn freq_series(scenario: &Scenario, seed: u64) -> Vec<f64> {
    let mut rng = stream(seed, 0);
    let mut walk = 0.0;
    (0..=scenario.length.saturating_add(1))
        .map(|second| {
            walk += scenario.wander * rng.sample::<f64, _>(StandardNormal);
            let steps: f64 = scenario
                .freq_steps
                .iter()
                .filter(|step| second >= step.time)
                .map(|step| step.step)
                .sum();
            let ramp = scenario.client_freq_ramp * f64::from(second + 1);
            let sine = scenario.client_freq_sine.map_or(0.0, |sine| {
                sine.amplitude * (core::f64::consts::TAU * f64::from(second) / sine.period).sin()
            });
            scenario.client_freq + walk + steps + ramp + sine
        })
        .collect()
}

/// Delay written for a lost packet (any negative value loses it).
const LOST: f64 = -1.0;

/// The shape of the delays of one link direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LinkNoise {
    /// Fixed one-way delay, seconds.
    pub(crate) delay: f64,
    /// Mean of the exponential jitter, seconds.
    pub(crate) jitter: f64,
    /// Probability that a packet is lost.
    pub(crate) loss: f64,
}

/// `count` one-way delays: `delay + jitter * Exp(1)`, or lost.
pub(crate) fn delay_series(seed: u64, stream_id: u64, count: usize, link: LinkNoise) -> Vec<f64> {
    let mut rng = stream(seed, stream_id);
    let unit = Uniform::new(0.0, 1.0).ok();
    (0..count)
        .map(|_| {
            let delay = link.delay + link.jitter * rng.sample::<f64, _>(Exp1);
            match unit {
                Some(unit) if link.loss > 0.0 && rng.sample(unit) < link.loss => LOST,
                _ => delay,
            }
        })
        .collect()
}

/// Writes the series one value per line (`%lf` readable).
fn write_series(path: &Path, values: &[f64]) -> Result<(), String> {
    let mut text = String::with_capacity(values.len() * 20);
    for value in values {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "{value:.12e}");
    }
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Generates the noise files of a scenario and seed into `dir`.
pub(crate) fn generate(scenario: &Scenario, seed: u64, dir: &Path) -> Result<NoiseFiles, String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let freq = dir.join("freq");
    write_series(&freq, &freq_series(scenario, seed))?;
    // One delay per packet; the file loops, so one per second of the run
    // is plenty (a client polling every 16 s uses about 1/16 of it).
    let count = usize::try_from(scenario.length).unwrap_or(usize::MAX);
    let mut up = Vec::new();
    let mut down = Vec::new();
    for (index, stream_base) in (0..scenario.servers).zip((1_u64..).step_by(2)) {
        let server = index + 1;
        let up_path = dir.join(format!("up.{server}"));
        let down_path = dir.join(format!("down.{server}"));
        let link = |factor: f64| LinkNoise {
            delay: scenario.delay,
            jitter: scenario.jitter * factor,
            loss: scenario.random_loss,
        };
        let asymmetry = 2.0 * scenario.jitter_asymmetry;
        let up_values = delay_series(seed, stream_base, count, link(1.0 - asymmetry));
        let down_values = delay_series(seed, stream_base + 1, count, link(1.0 + asymmetry));
        write_series(&up_path, &up_values)?;
        write_series(&down_path, &down_values)?;
        up.push(up_path);
        down.push(down_path);
    }
    let refclock = match scenario.refclock_jitter {
        Some(jitter) => {
            let path = dir.join("refclock");
            write_series(&path, &refclock_series(seed, count, jitter))?;
            Some(path)
        }
        None => None,
    };
    Ok(NoiseFiles {
        freq,
        up,
        down,
        refclock,
    })
}

/// Stream of the reference clock's noise: far from the links' (1, 2, ...).
const REFCLOCK_STREAM: u64 = 1 << 32;

/// `count` normal values of standard deviation `jitter`.
fn refclock_series(seed: u64, count: usize, jitter: f64) -> Vec<f64> {
    let mut rng = stream(seed, REFCLOCK_STREAM);
    (0..count)
        .map(|_| jitter * rng.sample::<f64, _>(StandardNormal))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::FreqStep;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ntp-accuracy-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn same_seed_same_files_other_seed_other_files() {
        let scenario = Scenario {
            length: 100,
            servers: 2,
            ..Scenario::default()
        };
        let dir = temp_dir("noise");
        let a = generate(&scenario, 7, &dir.join("a")).unwrap();
        let b = generate(&scenario, 7, &dir.join("b")).unwrap();
        let c = generate(&scenario, 8, &dir.join("c")).unwrap();
        let read = |path: &Path| fs::read_to_string(path).unwrap();
        assert_eq!(read(&a.freq), read(&b.freq));
        assert_eq!(read(&a.up[1]), read(&b.up[1]));
        assert_ne!(read(&a.freq), read(&c.freq));
        assert_ne!(read(&a.up[0]), read(&a.down[0]));
        assert_ne!(read(&a.up[0]), read(&a.up[1]));
        assert_eq!(read(&a.freq).lines().count(), 102);
        assert_eq!(read(&a.up[0]).lines().count(), 100);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn server_delays_do_not_depend_on_the_server_count() {
        let link = LinkNoise {
            delay: 500e-6,
            jitter: 100e-6,
            loss: 0.0,
        };
        let one = delay_series(3, 1, 50, link);
        let again = delay_series(3, 1, 50, link);
        assert_eq!(one, again);
        assert!(one.iter().all(|d| *d >= 500e-6 && *d < 0.01));
    }

    #[test]
    fn loss_and_asymmetry() {
        let link = LinkNoise {
            delay: 1e-4,
            jitter: 1e-4,
            loss: 0.3,
        };
        let delays = delay_series(5, 1, 10_000, link);
        let lost = delays.iter().filter(|d| **d < 0.0).count();
        assert!((2700..3300).contains(&lost), "{lost}");
        let scenario = Scenario {
            length: 20_000,
            jitter_asymmetry: 0.25,
            ..Scenario::default()
        };
        let dir = temp_dir("asymmetry");
        let files = generate(&scenario, 1, &dir).unwrap();
        let mean_jitter = |path: &Path| {
            let text = fs::read_to_string(path).unwrap();
            let values: Vec<f64> = text.lines().map(|l| l.parse().unwrap()).collect();
            values.iter().map(|v| v - scenario.delay).sum::<f64>() / values.len() as f64
        };
        // Requests 0.5 x 100 us, replies 1.5 x 100 us on average.
        assert!((mean_jitter(&files.up[0]) - 50e-6).abs() < 3e-6);
        assert!((mean_jitter(&files.down[0]) - 150e-6).abs() < 6e-6);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn frequency_walk_and_step() {
        let plain = Scenario {
            length: 40,
            ..Scenario::default()
        };
        let stepped = Scenario {
            freq_steps: vec![FreqStep {
                time: 20,
                step: 2e-6,
            }],
            ..plain.clone()
        };
        let a = freq_series(&plain, 1);
        let b = freq_series(&stepped, 1);
        for (second, (x, y)) in a.iter().zip(&b).enumerate() {
            let expected = if second >= 20 { 2e-6 } else { 0.0 };
            assert!((y - x - expected).abs() < 1e-15, "second {second}");
            // A 1e-9/s walk stays near 20 ppm over 40 s.
            assert!((x - 20e-6).abs() < 1e-7);
        }
    }
}
