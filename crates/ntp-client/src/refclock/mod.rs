//! Reference clocks: a GPS receiver, a PPS signal, a PTP hardware clock,
//! a radio clock. The caller reads the device (sans IO, like the rest) and
//! hands the [`System`](crate::System) samples: the local clock's offset
//! from the reference at a local instant. At every poll of the reference
//! clock the samples of the interval become one (a median filter), which
//! goes through the clock filter and takes part in selection and combining
//! like a server's. A reference clock is stratum 0: while it is the system
//! peer the system is stratum 1 (or the configured stratum plus one) with
//! its reference id.
//!
//! RFC 5905 section 6 and Appendix A describe reference clocks only as a
//! stratum-0 source of the same peer variables; their drivers and filter
//! are the implementation's. The options and their defaults follow chrony's
//! `refclock` directive: `poll`, `filter`, `delay`, `offset`,
//! `precision`, `refid`, `stratum`, `lock`, `pps`, and the selection
//! options.
//!
//! # The filter
//!
//! Samples arrive faster than the poll (a GPS gives one a second; chrony's
//! default poll is 16 s). They wait in a
//! [`MedianFilter`] of at most
//! [`RefclockConfig::filter`] samples; at the poll the 60 % closest to
//! their median are kept and the poll's sample is their mean, timed at their
//! mean epoch (in the discipline's cumulative frame, so that the slews of
//! the poll do not scatter them), with the trimmed mean's standard error
//! as its dispersion. The median rejects a receiver's bad seconds on
//! either side, and the mean of the rest removes most of the serial-port
//! or interrupt noise: chrony discards about 40 % too, and averages. The
//! discipline times the sample by its epoch, as it times a network sample
//! by its own, so a clock whose frequency is not known yet is not
//! corrected by where it was half a poll ago. A poll without samples
//! counts as a missed poll in the reach register.
//!
//! # PPS
//!
//! A pulse per second marks the start of every second very precisely but
//! says nothing of which second it is: its sample is the offset within the
//! second, in (-0.5, 0.5]. Locked to another source
//! ([`RefclockConfig::lock`], a reference clock like the GPS's NMEA time,
//! or a server), the whole seconds come from that source's offset.
//! Without a lock the pulse is used only while the system clock is
//! synchronized (so within half a second).

#[cfg(feature = "alloc")]
use ntp_proto::LeapIndicator;
use ntp_proto::RefId;
use ntp_select::SelectOptions;
#[cfg(feature = "alloc")]
use ntp_select::{FilterSample, MedianFilter};

use crate::source::SourceId;

pub mod sock;

/// Most samples a reference clock's filter holds between two polls: 64,
/// chrony's default `filter` length.
pub const REFCLOCK_FILTER_MAX: usize = 64;

/// Default poll exponent of a reference clock: 4 (16 s), chrony's.
pub const REFCLOCK_DEFAULT_POLL: i8 = 4;

/// Shortest poll of a reference clock, log2 s: 1 (2 s): a GPS's one
/// sample a second then gives two per poll, for the median filter.
pub const REFCLOCK_MIN_POLL: i8 = 1;

/// Largest configured delay, offset correction or sample offset, seconds:
/// a reference clock further off than 2^31 s is not a clock.
const MAX_SECONDS: f64 = 2_147_483_648.0;

/// How one reference clock is used.
///
/// Non-exhaustive: start from [`Default`] (or [`RefclockConfig::new`])
/// and set the fields.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct RefclockConfig {
    /// The reference id it announces (`GPS`, `PPS`, `PHC0`, ...).
    pub refid: RefId,
    /// Poll exponent, log2 s: one sample for the clock filter every
    /// 2^`poll` seconds. [`REFCLOCK_DEFAULT_POLL`] by default.
    pub poll: i8,
    /// Most samples kept for one poll (the oldest make room):
    /// [`REFCLOCK_FILTER_MAX`] by default, 1 to that.
    pub filter: usize,
    /// The delay the samples are assumed to have, seconds: half of it is
    /// their share of the root distance (chrony's `delay`, 1e-9 s by
    /// default). Raise it for a source whose time may be off by more than
    /// its jitter shows (an NMEA sentence's latency).
    pub delay: f64,
    /// Added to every sample's offset, seconds: a known constant error of
    /// the device (chrony's `offset`, 0 by default).
    pub offset: f64,
    /// The device's precision, log2 s: -20 (about 1 us) by default.
    /// It floors each sample's dispersion and, as
    /// [`Update::precision`](ntp_discipline::Update::precision), the
    /// uncertainty of the updates it gives the discipline. chrony
    /// defaults it to the precision of the system clock's readings;
    /// the daemon sets that when it can measure it.
    pub precision: i8,
    /// The stratum it claims, 0 to 15 (chrony's `stratum`, 0 by default).
    pub stratum: u8,
    /// `prefer`, `trust`, `require`.
    pub select: SelectOptions,
    /// Polled and shown, never selected.
    pub noselect: bool,
    /// The samples are a pulse per second: offsets within the second.
    pub pps: bool,
    /// For a PPS: the source that names the second (chrony's `lock`).
    pub lock: Option<SourceId>,
}

impl RefclockConfig {
    /// The defaults with reference id `refid`.
    #[must_use]
    pub fn new(refid: RefId) -> Self {
        Self {
            refid,
            ..Self::default()
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`RefclockConfigError`] for the first field out of range.
    pub fn validate(&self) -> Result<(), RefclockConfigError> {
        if !(REFCLOCK_MIN_POLL..=crate::MAX_POLL).contains(&self.poll) {
            return Err(RefclockConfigError::Poll(self.poll));
        }
        if !(1..=REFCLOCK_FILTER_MAX).contains(&self.filter) {
            return Err(RefclockConfigError::Filter(self.filter));
        }
        if !(self.delay.is_finite() && (0.0..=MAX_SECONDS).contains(&self.delay)) {
            return Err(RefclockConfigError::Delay);
        }
        if !(self.offset.is_finite() && self.offset.abs() <= MAX_SECONDS) {
            return Err(RefclockConfigError::Offset);
        }
        if !(-30..=0).contains(&self.precision) {
            return Err(RefclockConfigError::Precision(self.precision));
        }
        if self.stratum > 15 {
            return Err(RefclockConfigError::Stratum(self.stratum));
        }
        if self.lock.is_some() && !self.pps {
            return Err(RefclockConfigError::LockWithoutPps);
        }
        Ok(())
    }
}

impl Default for RefclockConfig {
    fn default() -> Self {
        Self {
            refid: RefId::from_ascii(b"REF").unwrap_or(RefId::INIT),
            poll: REFCLOCK_DEFAULT_POLL,
            filter: REFCLOCK_FILTER_MAX,
            delay: 1e-9,
            offset: 0.0,
            precision: -20,
            stratum: 0,
            select: SelectOptions::NONE,
            noselect: false,
            pps: false,
            lock: None,
        }
    }
}

/// Why a [`RefclockConfig`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum RefclockConfigError {
    /// The poll exponent is outside 1 to 17.
    #[error("reference clock poll {0} is not within 1..=17")]
    Poll(i8),
    /// The filter length is 0 or above [`REFCLOCK_FILTER_MAX`].
    #[error("reference clock filter {0} is not within 1..=64")]
    Filter(usize),
    /// The delay is negative, not finite or beyond 2^31 s.
    #[error("reference clock delay must be finite and non-negative")]
    Delay,
    /// The offset correction is not finite or beyond 2^31 s.
    #[error("reference clock offset must be finite")]
    Offset,
    /// The precision is outside -30 to 0.
    #[error("reference clock precision {0} is not within -30..=0")]
    Precision(i8),
    /// The stratum is above 15.
    #[error("reference clock stratum {0} is above 15")]
    Stratum(u8),
    /// A lock is only for a PPS.
    #[error("only a PPS reference clock takes a lock source")]
    LockWithoutPps,
    /// The lock names no source of the system, or the reference clock
    /// itself.
    #[error("the lock source does not exist")]
    UnknownLock,
}

/// Why a sample was refused by
/// [`System::handle_refclock_sample`](crate::System::handle_refclock_sample).
/// A refused sample changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefclockError {
    /// No reference clock has this id.
    #[error("no reference clock with this id")]
    Unknown,
    /// The offset is not finite or beyond 2^31 s.
    #[error("sample offset not finite or out of range")]
    Offset,
    /// A PPS sample beyond half a second, or a PPS sample while neither its
    /// lock source nor the system clock says which second it is.
    #[error("PPS sample without a second to put it in (no lock, clock not synchronized)")]
    NoSecond,
}

/// The cumulative slew at each sample of a poll, by epoch (the newest
/// [`REFCLOCK_FILTER_MAX`]).
#[cfg(feature = "alloc")]
#[derive(Clone, Copy, Debug)]
struct Frames {
    entries: [(f64, f64); REFCLOCK_FILTER_MAX],
    len: usize,
    next: usize,
}

#[cfg(feature = "alloc")]
impl Frames {
    const fn new() -> Self {
        Self {
            entries: [(0.0, 0.0); REFCLOCK_FILTER_MAX],
            len: 0,
            next: 0,
        }
    }

    fn push(&mut self, epoch: f64, slew: f64) {
        if let Some(entry) = self.entries.get_mut(self.next) {
            *entry = (epoch, slew);
        }
        self.next = (self.next + 1) % REFCLOCK_FILTER_MAX;
        self.len = (self.len + 1).min(REFCLOCK_FILTER_MAX);
    }

    /// The slew at `epoch`: interpolated between the nearest entries
    /// before and after it, else the nearest one; 0 without entries.
    fn at(&self, epoch: f64) -> f64 {
        let entries = self.entries.get(..self.len).unwrap_or(&[]);
        let before = entries
            .iter()
            .filter(|(at, _)| *at <= epoch)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let after = entries
            .iter()
            .filter(|(at, _)| *at >= epoch)
            .min_by(|a, b| a.0.total_cmp(&b.0));
        match (before, after) {
            (Some(&(t0, s0)), Some(&(t1, s1))) if t1 > t0 => {
                s0 + (s1 - s0) * (epoch - t0) / (t1 - t0)
            }
            (Some(&(_, slew)), _) | (None, Some(&(_, slew))) => slew,
            (None, None) => 0.0,
        }
    }
}

/// A reference clock's state in the system: its configuration and the
/// samples of the current poll.
#[cfg(feature = "alloc")]
#[derive(Clone, Debug)]
pub(crate) struct RefclockState {
    pub(crate) config: RefclockConfig,
    samples: MedianFilter<REFCLOCK_FILTER_MAX>,
    /// The cumulative slew at each sample of this poll (see
    /// [`push`](Self::push)).
    frames: Frames,
    /// The epoch of the last poll's sample and its frame: the cumulative
    /// slew at that epoch (see [`frame_of`](Self::frame_of)).
    last_frame: Option<(f64, f64)>,
    /// The leap indicator of the newest sample that had one.
    pub(crate) leap: LeapIndicator,
    /// The dispersions of the last [`POOLED_POLLS`] polls' samples (see
    /// [`typical_dispersion`](Self::typical_dispersion)), oldest
    /// overwritten first.
    recent: [f64; POOLED_POLLS],
    /// How many polls gave a sample, saturating.
    polls: usize,
}

/// Polls whose sample dispersions [`RefclockState::typical_dispersion`]
/// pools: eight, RFC 5905's clock filter length (section 10), about two
/// minutes at the default poll of 16 s. Not an RFC rule.
#[cfg(feature = "alloc")]
const POOLED_POLLS: usize = 8;

#[cfg(feature = "alloc")]
impl RefclockState {
    pub(crate) fn new(config: RefclockConfig) -> Self {
        Self {
            config,
            samples: MedianFilter::new(),
            frames: Frames::new(),
            last_frame: None,
            leap: LeapIndicator::NoWarning,
            recent: [0.0; POOLED_POLLS],
            polls: 0,
        }
    }

    /// The median dispersion of the last [`POOLED_POLLS`] polls' samples
    /// (0 before the first). One poll's error is estimated from its own
    /// sixteen or so samples, with a tenth of their degrees of freedom: it
    /// says half the real error one poll in twenty, and a discipline that
    /// takes it at its word follows that poll's noise (chrony's
    /// 106-refclock-4 on seed 3: four polls in a row declared 8-20 us
    /// where their errors were 17-36 us, and the frequency learnt from
    /// them stayed 0.7 ppm off for a minute). A sample is doubted at
    /// least as much as the median poll of the last eight, which a wild
    /// poll or two do not move.
    pub(crate) fn typical_dispersion(&self) -> f64 {
        let count = self.polls.min(POOLED_POLLS);
        let mut recent = self.recent;
        let Some(recent) = recent.get_mut(..count) else {
            return 0.0;
        };
        recent.sort_unstable_by(f64::total_cmp);
        crate::median::median_by(recent, |&dispersion| dispersion).unwrap_or(0.0)
    }

    /// Keeps one sample: `offset` (already put in its second and
    /// corrected) measured at `epoch`, when the discipline had slewed the
    /// clock by `slew` since its start. The filter holds it in that
    /// cumulative frame (`offset + slew`), so that the slews of the poll
    /// do not scatter its samples. The configuration's filter length
    /// bounds what is kept.
    pub(crate) fn push(&mut self, offset: f64, epoch: f64, slew: f64) -> Result<(), RefclockError> {
        let offset = offset + slew;
        let dispersion = crate::sntp::log2_seconds(self.config.precision);
        let sample = FilterSample::new(offset, self.config.delay, dispersion)
            .map_err(|_| RefclockError::Offset)?;
        // The newest `filter` samples are kept.
        while self.samples.len() >= self.config.filter {
            if !self.samples.drop_oldest() {
                break;
            }
        }
        self.samples
            .push(sample, epoch)
            .map_err(|_| RefclockError::Offset)?;
        self.frames.push(epoch, slew);
        Ok(())
    }

    /// The poll's sample, if any came, and its epoch; the filter starts
    /// empty for the next poll. The sample is the mean of the kept samples
    /// at their mean epoch ([`MedianFilter::take`]), still in the
    /// cumulative frame (as the source's clock filter keeps samples);
    /// [`frame_of`](Self::frame_of) gives the slew that takes it back to
    /// the clock as it read at that epoch, so that the discipline times it
    /// by its epoch, as it times a network sample by its own. The mean's
    /// standard error is half that of a line through the same samples
    /// read at the poll's end, and the discipline learns the drift across
    /// polls better than one poll's samples show it.
    pub(crate) fn take(&mut self) -> Option<(FilterSample, f64)> {
        let frames = core::mem::replace(&mut self.frames, Frames::new());
        let out = self.samples.take()?;
        self.last_frame = Some((out.epoch, frames.at(out.epoch)));
        if let Some(slot) = self.recent.get_mut(self.polls % POOLED_POLLS) {
            *slot = out.sample.dispersion();
        }
        self.polls = self.polls.saturating_add(1);
        Some((out.sample, out.epoch))
    }

    /// The frame of the sample taken at `epoch`: the cumulative slew at
    /// that epoch, between those of the samples around it. The kept
    /// samples' mean in the cumulative frame is where the line through
    /// them passes at their mean epoch, and on that frame the clock
    /// without its slews drifts on a line, so taking the slew at that
    /// epoch off is exact however the slew went during the poll. `None`
    /// for any but the last sample taken.
    pub(crate) fn frame_of(&self, epoch: f64) -> Option<f64> {
        self.last_frame
            .filter(|(at, _)| at.to_bits() == epoch.to_bits())
            .map(|(_, frame)| frame)
    }

    /// Forgets the samples (after a clock step).
    pub(crate) fn clear(&mut self) {
        self.samples.clear();
        self.frames = Frames::new();
        self.last_frame = None;
    }
}

#[cfg(feature = "alloc")]
/// A PPS `offset` within its second, in (-0.5, 0.5], put in the second
/// that `reference` (another source's offset, or 0 for a synchronized
/// clock) names: the whole seconds that bring it nearest to `reference`.
pub(crate) fn pps_in_second(offset: f64, reference: f64) -> f64 {
    offset + libm::round(reference - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_is_checked() {
        assert!(RefclockConfig::default().validate().is_ok());
        let bad = [
            RefclockConfig {
                poll: 0,
                ..RefclockConfig::default()
            },
            RefclockConfig {
                filter: 0,
                ..RefclockConfig::default()
            },
            RefclockConfig {
                filter: 65,
                ..RefclockConfig::default()
            },
            RefclockConfig {
                delay: -1.0,
                ..RefclockConfig::default()
            },
            RefclockConfig {
                offset: f64::NAN,
                ..RefclockConfig::default()
            },
            RefclockConfig {
                precision: 1,
                ..RefclockConfig::default()
            },
            RefclockConfig {
                stratum: 16,
                ..RefclockConfig::default()
            },
            RefclockConfig {
                lock: Some(SourceId::new(1)),
                ..RefclockConfig::default()
            },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
    }

    #[test]
    fn pps_pulses_go_into_the_named_second() {
        // The NMEA time says the clock is 3.02 s behind; the pulse says
        // 0.0201 s within the second: 3.0201 s.
        assert!((pps_in_second(0.0201, 3.02) - 3.0201).abs() < 1e-12);
        assert!((pps_in_second(-0.49, -0.2) + 0.49).abs() < 1e-12);
        assert!((pps_in_second(0.3, 0.0) - 0.3).abs() < 1e-12);
        // A lock 0.35 s off (a slow NMEA sentence) still names the second.
        assert!((pps_in_second(0.001, 0.351) - 0.001).abs() < 1e-12);
    }

    #[test]
    fn a_poll_is_doubted_at_least_as_much_as_the_median_of_the_last_eight() {
        // Polls of five samples each, scattered in proportion to `spread`:
        // so is the dispersion of the poll's sample.
        let mut state = RefclockState::new(RefclockConfig::default());
        assert_eq!(state.typical_dispersion().to_bits(), 0.0_f64.to_bits());
        let mut epoch = 0.0;
        let mut poll = |state: &mut RefclockState, spread: f64| {
            for (i, offset) in [0.0, spread, -spread, 2.0 * spread, -2.0 * spread]
                .into_iter()
                .enumerate()
            {
                state.push(offset, epoch + i as f64, 0.0).unwrap();
            }
            epoch += 16.0;
            state.take().unwrap().0.dispersion()
        };
        let one = poll(&mut state, 2e-5);
        assert!((state.typical_dispersion() - one).abs() < 1e-15);
        // Seven more like it and a wild one: the median stays.
        for _ in 0..6 {
            poll(&mut state, 2e-5);
        }
        poll(&mut state, 1.0);
        assert!((state.typical_dispersion() - one).abs() < 1e-12);
        // A poll that happens to look tight is doubted at the median.
        let tight = poll(&mut state, 0.0);
        assert!(tight < one / 2.0, "{tight} {one}");
        assert!((state.typical_dispersion() - one).abs() < 1e-12);
        // Eight noisier polls: the median follows them.
        for _ in 0..8 {
            poll(&mut state, 2e-4);
        }
        assert!(state.typical_dispersion() > 5.0 * one);
    }

    #[test]
    fn the_filter_keeps_the_newest_samples_up_to_its_length() {
        let config = RefclockConfig {
            filter: 3,
            ..RefclockConfig::default()
        };
        let mut state = RefclockState::new(config);
        assert_eq!(state.take(), None);
        for (i, offset) in [9.0, 9.0, 1.0, 1.0, 1.0].into_iter().enumerate() {
            state.push(offset, i as f64, 0.0).unwrap();
        }
        let (sample, epoch) = state.take().unwrap();
        assert!((sample.offset() - 1.0).abs() < 1e-12, "{sample:?}");
        // The mean epoch of the two kept (60 % of three, the earlier of
        // equal offsets).
        assert!((epoch - 2.5).abs() < 1e-12, "{epoch}");
        assert_eq!(state.push(f64::NAN, 9.0, 0.0), Err(RefclockError::Offset));
        assert_eq!(state.take(), None);
    }

    #[test]
    fn samples_are_filtered_in_the_cumulative_frame_and_framed_at_their_epoch() {
        // The clock is 10 ms behind, and the discipline slews it by 2 ms a
        // second over seconds 1-4 of the poll: the measured offsets fall
        // from 10 ms to 2 ms while the frame (the cumulative slew) rises,
        // so in the frame every sample says 10 ms.
        let mut state = RefclockState::new(RefclockConfig::default());
        let slews = [0.0, 0.002, 0.004, 0.006, 0.008, 0.008, 0.008, 0.008];
        for (second, slew) in slews.into_iter().enumerate() {
            state.push(0.010 - slew, second as f64, slew).unwrap();
        }
        let (sample, epoch) = state.take().unwrap();
        assert!((sample.offset() - 0.010).abs() < 1e-12, "{sample:?}");
        // Five kept (60 % of eight, the earliest of equal offsets): mean
        // epoch 2 s, when the clock read 10 - 4 = 6 ms behind.
        assert!((epoch - 2.0).abs() < 1e-9, "{epoch}");
        let frame = state.frame_of(epoch).unwrap();
        assert!((frame - 0.004).abs() < 1e-12, "{frame}");
        assert_eq!(state.frame_of(epoch + 1.0), None);
        state.clear();
        assert_eq!(state.frame_of(epoch), None);
    }

    #[test]
    fn frames_are_interpolated_between_samples() {
        let mut frames = Frames::new();
        assert!(frames.at(1.0).abs() < 1e-15);
        frames.push(1.0, 0.002);
        frames.push(2.0, 0.004);
        assert!((frames.at(1.5) - 0.003).abs() < 1e-12);
        assert!((frames.at(0.0) - 0.002).abs() < 1e-12);
        assert!((frames.at(9.0) - 0.004).abs() < 1e-12);
        // The newest REFCLOCK_FILTER_MAX are kept.
        for i in 0..REFCLOCK_FILTER_MAX {
            frames.push(10.0 + i as f64, 1.0);
        }
        assert!((frames.at(1.5) - 1.0).abs() < 1e-12);
    }
}
