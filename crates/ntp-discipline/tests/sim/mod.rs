//! A deterministic model of a local oscillator, a network path and a caller
//! that applies the discipline's actions to the modelled clock.
//!
//! - True time runs from the scenario start; the reference (the NTP
//!   timescale the servers keep) is true time minus the leap seconds that
//!   have passed.
//! - The local clock reads `true time + phase`. Its phase drifts at the
//!   oscillator's frequency error (a random walk) plus the rate correction
//!   of the last [`Output::Adjust`]; steps and leap seconds add to it.
//! - Every poll interval (on the local clock) the caller measures the
//!   offset through a path with independent one-way delays of `base +
//!   Exp(jitter_mean)` each way, optionally passes it through ntp-select's
//!   clock filter, and hands it to the discipline.
//! - About once a second (the discipline's timeout) it calls
//!   `handle_timeout`; the callback sees the state right after.

use ntp_discipline::{Config, Discipline, LeapEvent, LeapSecond, Output, Update, UpdateOutcome};
use ntp_proto::{Date, LeapIndicator, NtpDuration};
use ntp_select::{ClockFilter, FilterSample};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, StandardNormal};

/// The local oscillator.
#[derive(Clone, Copy, Debug)]
pub struct Oscillator {
    /// Frequency error, s/s (positive: the clock runs fast).
    pub frequency: f64,
    /// RMS of the frequency random walk per second, s/s.
    pub wander: f64,
}

/// The network path.
#[derive(Clone, Copy, Debug)]
pub struct Network {
    /// Fixed one-way delay, s.
    pub base_delay: f64,
    /// Mean of the exponential one-way jitter, s.
    pub jitter_mean: f64,
}

/// Everything a run needs.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// True (and reference) time at the start.
    pub start: Date,
    /// Local clock minus true time at the start, s.
    pub phase: f64,
    pub oscillator: Oscillator,
    pub network: Network,
    pub config: Config,
    /// A drift file's frequency: start in FSET.
    pub initial_frequency: Option<f64>,
    /// Pass the measurements through ntp-select's clock filter.
    pub filter: bool,
    pub seed: u64,
}

impl Scenario {
    pub fn new(start: Date, phase: f64, oscillator: Oscillator) -> Self {
        Self {
            start,
            phase,
            oscillator,
            network: Network {
                base_delay: 500e-6,
                jitter_mean: 100e-6,
            },
            config: Config::rfc5905(),
            initial_frequency: None,
            filter: false,
            seed: 1,
        }
    }
}

/// A step or leap applied, with the local reading just before it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Applied {
    Step { local: Date, offset: NtpDuration },
    Leap { local: Date, leap: LeapSecond },
}

pub struct Sim {
    pub scenario: Scenario,
    pub discipline: Discipline,
    rng: ChaCha8Rng,
    exp: Exp<f64>,
    filter: ClockFilter,
    /// True seconds since the start.
    pub elapsed: f64,
    /// Local clock minus true time, s.
    pub phase: f64,
    /// Current oscillator frequency error, s/s.
    pub oscillator_frequency: f64,
    /// Rate correction being applied, s/s.
    pub rate: f64,
    /// Frequency part of the last adjustment, s/s.
    pub frequency: f64,
    next_timeout: Date,
    /// Local seconds since the start at which the next poll is due.
    next_poll: f64,
    /// Leap indicator the servers send.
    pub leap_indicator: LeapIndicator,
    /// A leap second the reference takes: (true elapsed, seconds added to
    /// the reference's offset from true time).
    pub reference_leap: Option<(f64, f64)>,
    /// The next measured offset is replaced by this value.
    pub inject: Option<f64>,
    pub applied: Vec<Applied>,
    pub outcomes: Vec<(f64, UpdateOutcome)>,
    pub panics: usize,
    pub max_adjust_frequency: f64,
}

fn seconds(s: f64) -> NtpDuration {
    NtpDuration::from_seconds_f64(s).unwrap()
}

impl Sim {
    pub fn new(scenario: Scenario) -> Self {
        let local = scenario.start.checked_add(seconds(scenario.phase)).unwrap();
        let discipline = match scenario.initial_frequency {
            Some(frequency) => Discipline::with_frequency(scenario.config, local, frequency),
            None => Discipline::new(scenario.config, local),
        }
        .unwrap();
        let mut sim = Self {
            scenario,
            discipline,
            rng: ChaCha8Rng::seed_from_u64(scenario.seed),
            exp: Exp::new(1.0 / scenario.network.jitter_mean).unwrap(),
            filter: ClockFilter::new(),
            elapsed: 0.0,
            phase: scenario.phase,
            oscillator_frequency: scenario.oscillator.frequency,
            rate: 0.0,
            frequency: 0.0,
            next_timeout: local,
            next_poll: scenario.phase,
            leap_indicator: LeapIndicator::NoWarning,
            reference_leap: None,
            inject: None,
            applied: Vec::new(),
            outcomes: Vec::new(),
            panics: 0,
            max_adjust_frequency: 0.0,
        };
        sim.drain();
        sim
    }

    /// Local clock reading, seconds since the scenario start.
    pub fn local(&self) -> f64 {
        self.elapsed + self.phase
    }

    pub fn local_date(&self) -> Date {
        self.scenario
            .start
            .checked_add(seconds(self.local()))
            .unwrap()
    }

    /// The reference (NTP timescale) minus true time, s.
    fn reference_shift(&self) -> f64 {
        match self.reference_leap {
            Some((at, shift)) if self.elapsed >= at => shift,
            _ => 0.0,
        }
    }

    /// Time error: local clock minus reference, s.
    pub fn time_error(&self) -> f64 {
        self.phase - self.reference_shift()
    }

    /// Frequency error of the disciplined clock, s/s.
    pub fn frequency_error(&self) -> f64 {
        self.oscillator_frequency + self.frequency
    }

    fn drain(&mut self) {
        loop {
            match self.discipline.poll_output() {
                Output::Step(offset) => {
                    self.applied.push(Applied::Step {
                        local: self.local_date(),
                        offset,
                    });
                    self.phase += offset.to_seconds_f64();
                }
                Output::Adjust(adjust) => {
                    self.rate = adjust.rate();
                    self.frequency = adjust.frequency;
                    self.max_adjust_frequency =
                        self.max_adjust_frequency.max(adjust.frequency.abs());
                }
                Output::Leap(LeapEvent::Apply(leap)) => {
                    self.applied.push(Applied::Leap {
                        local: self.local_date(),
                        leap,
                    });
                    self.phase += leap.step().to_seconds_f64();
                }
                Output::Leap(_) => {}
                Output::Panic { .. } => self.panics += 1,
                Output::Timeout(at) => {
                    self.next_timeout = at;
                    return;
                }
                other => panic!("unknown output {other:?}"),
            }
        }
    }

    /// Advances true time by `dt` seconds.
    fn advance(&mut self, dt: f64) {
        let walk: f64 = StandardNormal.sample(&mut self.rng);
        self.phase += (self.oscillator_frequency + self.rate) * dt;
        self.oscillator_frequency += walk * self.scenario.oscillator.wander * dt.sqrt();
        self.elapsed += dt;
    }

    fn poll(&mut self) {
        let network = self.scenario.network;
        let forward = network.base_delay + self.exp.sample(&mut self.rng);
        let back = network.base_delay + self.exp.sample(&mut self.rng);
        let true_offset = -self.time_error();
        let mut offset = true_offset + (forward - back) / 2.0;
        if let Some(injected) = self.inject.take() {
            offset = injected;
        }
        let update = if self.scenario.filter {
            // The filter keeps offsets on the unslewed timescale, so that
            // an old sample stays comparable with the current clock, and
            // tells the discipline how old the chosen sample is. The
            // filter's epochs are true (monotonic) seconds.
            let slewed = self.discipline.cumulative_slew();
            let sample = FilterSample::new(offset + slewed, forward + back, 1e-6).unwrap();
            self.filter
                .update(sample, self.elapsed)
                .unwrap()
                .map(|output| {
                    Update::new(output.offset - slewed, output.jitter)
                        .with_age(self.elapsed - output.epoch)
                })
        } else {
            Some(Update::new(offset, network.jitter_mean))
        };
        if let Some(update) = update {
            let outcome = self
                .discipline
                .handle_update(self.local_date(), update.with_leap(self.leap_indicator))
                .unwrap();
            self.outcomes.push((self.elapsed, outcome));
            self.drain();
        }
        let interval = self.discipline.poll_interval().to_seconds_f64();
        self.next_poll = self.local() + interval;
    }

    /// Runs until `end` true seconds since the start, calling `each_second`
    /// after every clock-adjust second.
    pub fn run_until(&mut self, end: f64, mut each_second: impl FnMut(&Self)) {
        while self.elapsed < end {
            let timeout = self
                .next_timeout
                .checked_duration_since(self.scenario.start)
                .unwrap()
                .to_seconds_f64();
            let next = timeout.min(self.next_poll);
            let wait = (next - self.local()).max(0.0);
            // Local seconds to true seconds, plus a nanosecond so that the
            // reading is not short of the deadline by rounding.
            let dt = wait / (1.0 + self.oscillator_frequency + self.rate) + 1e-9;
            self.advance(dt.min(end - self.elapsed + 1e-9));
            if self.local() >= self.next_poll {
                self.poll();
            }
            if self.local_date() >= self.next_timeout {
                self.discipline.handle_timeout(self.local_date());
                self.drain();
                each_second(self);
            }
        }
    }

    pub fn steps(&self) -> usize {
        self.applied
            .iter()
            .filter(|applied| matches!(applied, Applied::Step { .. }))
            .count()
    }
}

/// Running statistics.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub count: usize,
    pub sum_squares: f64,
    pub max_abs: f64,
}

impl Stats {
    pub fn add(&mut self, x: f64) {
        self.count += 1;
        self.sum_squares += x * x;
        self.max_abs = self.max_abs.max(x.abs());
    }

    pub fn rms(&self) -> f64 {
        (self.sum_squares / self.count as f64).sqrt()
    }
}
