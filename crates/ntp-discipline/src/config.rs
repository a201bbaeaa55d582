//! Discipline constants (RFC 5905, section 11.3, figure 27, and appendix
//! A.5.5.6) and the [`Config`] that carries them.

use thiserror::Error;

/// Step threshold STEPT: offsets above this, in seconds, are stepped
/// rather than slewed (RFC 5905, appendix A.5.5.6; 0.125 s in figure 27,
/// see the [`Config`] docs for the choice).
pub const STEPT: f64 = 0.128;

/// Stepout interval WATCH, in seconds: how long offsets above [`STEPT`]
/// must persist before the clock is stepped, and how long the frequency is
/// measured in the FREQ state (RFC 5905, section 11.3 figure 27 and
/// appendix A.5.5.6; 300 s in ntpd).
pub const WATCH: f64 = 900.0;

/// Panic threshold PANICT, in seconds: offsets above this are refused
/// outright (RFC 5905, section 11.3 figure 27 and appendix A.5.5.6).
pub const PANICT: f64 = 1000.0;

/// PLL loop gain scale (the time constant scale TC of RFC 5905, section
/// 11.3 figure 27): the phase time constant is `PLL * 2^poll` seconds.
/// Appendix A.5.5.6 writes 65 536, see the [`Config`] docs.
pub const PLL: f64 = 16.0;

/// FLL loop gain FLL = MAXPOLL + 1 (RFC 5905, appendix A.5.5.6): the FLL
/// weight at poll `p` is `1 / max(FLL - p, AVG)`.
pub const FLL: i8 = MAXPOLL + 1;

/// Averaging constant AVG of the jitter and wander exponential averages,
/// and the smallest FLL divisor (RFC 5905, section 11.3 figure 27; 4 in
/// appendix A.5.5.6).
pub const AVG: f64 = 8.0;

/// Allan intercept ALLAN, in seconds: above half of it the FLL contributes,
/// and the phase time constant stops growing at it (RFC 5905, appendix
/// A.5.5.6 and A.5.6.1 write 1500 s; ntpd uses 2^11 = 2048 s, see the
/// [`Config`] docs).
pub const ALLAN: f64 = 2048.0;

/// Poll-adjust hysteresis limit LIMIT (RFC 5905, section 11.3 figure 27 and
/// appendix A.5.5.6).
pub const LIMIT: i32 = 30;

/// Poll-adjust gate PGATE: the poll interval grows while the offset stays
/// below PGATE times the clock jitter (RFC 5905, section 11.3 figure 27 and
/// appendix A.5.5.6).
pub const PGATE: f64 = 4.0;

/// Frequency tolerance MAXFREQ, in seconds per second (500 ppm): the
/// frequency correction is clamped to ±MAXFREQ (RFC 5905, appendix
/// A.5.5.6).
pub const MAXFREQ: f64 = 500e-6;

/// Largest phase slew rate handed to the caller, in seconds per second
/// (500 ppm). RFC 5905 leaves the slew limit to the kernel's `adjtime()`
/// (appendix A.5.6.1), which traditionally slews at most 500 ppm; with the
/// default thresholds the amortization never reaches it (an offset of
/// [`STEPT`] at poll 4 gives exactly 500 ppm), so it only bounds what an
/// unusual [`Config`] can ask of the caller.
pub const MAXSLEW: f64 = 500e-6;

/// Minimum poll exponent MINPOLL, log2 seconds (64 s; RFC 5905, appendix
/// A.1.1). The default lower bound of the poll interval.
pub const MINPOLL: i8 = 6;

/// Maximum poll exponent MAXPOLL, log2 seconds (36.4 h; RFC 5905, appendix
/// A.1.1). The default upper bound of the poll interval, and the largest
/// one accepted.
pub const MAXPOLL: i8 = 17;

/// Smallest poll exponent a [`Config`] may ask for, log2 seconds (1 s).
/// RFC 5905 does not go below MINPOLL = 6 but allows it to be tuned;
/// below one second the once-per-second amortization makes no sense.
pub const MIN_POLL_LIMIT: i8 = 0;

/// Clock precision PRECISION, log2 seconds (about 3.8 µs; RFC 5905,
/// appendix A.2): the floor of each clock jitter sample.
pub const PRECISION: i8 = -18;

/// The finest precision the discipline takes, log2 seconds: 2^-30 s,
/// about 1 ns (the resolution of the kernel's clock readings). Not in
/// RFC 5905, whose precision field is a signed byte.
pub const MIN_PRECISION_LOG2: i8 = -30;

/// Largest offset magnitude, in seconds, the discipline accepts: 2^31 s,
/// the range of an [`NtpDuration`](ntp_proto::NtpDuration) (RFC 5905,
/// section 6: timestamp differences are 63-bit signed values, and
/// offsets in the 68-year range are already ambiguous).
pub const MAX_OFFSET: f64 = 2_147_483_648.0;

/// Largest rate correction a [`Config`] may allow, seconds per second
/// (50 %): far beyond any oscillator (Linux's tick length reaches ±10 %),
/// and small enough that a clock never runs backwards or twice as fast.
pub const MAX_RATE_LIMIT: f64 = 0.5;

/// Default largest phase slew rate of the [`Algorithm::Kalman`] estimator
/// on a clock whose [`Config::max_rate`] allows more than RFC 5905's
/// 500 ppm: 1/12 s/s (83 333 ppm), the default `maxslewrate` of chronyd,
/// whose slews this follows (RFC 5905 leaves the slew limit to the
/// kernel, appendix A.5.6.1). Callers that raise `max_rate` (a kernel
/// clock with a tick length) set [`Config::max_slew`] to this.
pub const FAST_SLEW: f64 = 1.0 / 12.0;

/// Initial spectral density of the frequency random walk the
/// [`Algorithm::Kalman`] estimator assumes, s²/s³. For random-walk FM the
/// Allan deviation is `sqrt(wander * τ / 3)`: 1e-17 is 1.8e-9 at 1 s and
/// 5.8e-8 at 1000 s, an uncompensated crystal in a machine whose
/// temperature follows its load (chrony's simulation suite gives its
/// clients 1e-18, a frequency random walk of 1e-9 per second: 1.8e-8 at
/// 1000 s). Not an RFC constant: RFC 5905 models the oscillator only
/// through its loop gains. The estimator learns the real density from its
/// innovations within [`WANDER_MIN`]..=[`WANDER_MAX`], so this only sets
/// the start.
pub const WANDER: f64 = 1e-17;

/// Smallest frequency wander the [`Algorithm::Kalman`] estimator learns,
/// s²/s³ (an Allan deviation of 1.8e-11 at 1 s and 5.8e-10 at 1000 s for
/// random-walk FM: a temperature-compensated or oven-controlled
/// oscillator).
pub const WANDER_MIN: f64 = 1e-21;

/// Largest frequency wander the [`Algorithm::Kalman`] estimator learns,
/// s²/s³ (an Allan deviation of 1.8e-7 at 1 s and 5.8e-6 at 1000 s for
/// random-walk FM: chrony's large-wander test, 007, runs its client at
/// 1e-14, and this leaves ten times that).
pub const WANDER_MAX: f64 = 1e-13;

/// Outlier gate of the [`Algorithm::Kalman`] estimator, in standard
/// deviations of the predicted offset: a measurement farther from the
/// prediction is held back until the next one confirms it (the role
/// RFC 5905's popcorn spike suppressor SGATE = 3 plays in appendix A.5.2,
/// on the filter's own uncertainty rather than a jitter average; 5 so that
/// honest noise, whose error is bounded by the caller's uncertainty, never
/// trips it).
pub const OUTLIER_GATE: f64 = 5.0;

/// Poll gate of the [`Algorithm::Kalman`] estimator: the poll interval is
/// the longest one over which the predicted phase variance grows by at
/// most this many typical measurement variances. 4, as RFC 5905's PGATE
/// (section 11.3, figure 27), which lets the poll climb while the offset
/// stays within 4 jitters: here the clock may drift between polls by up to
/// two standard deviations of one measurement's noise. Since the growth is
/// cubic in time, the mean drift over the interval is a quarter of that,
/// about one measurement's noise; polling faster would load the servers for
/// little, slower would let drift outgrow what one sample can correct.
pub const POLL_GATE: f64 = 4.0;

/// Hysteresis of the [`Algorithm::Kalman`] estimator's poll: the poll
/// climbs to the longest interval whose predicted phase growth is within
/// the poll gate, and drops only once the growth over the current
/// interval exceeds twice the gate. One step of the poll multiplies the
/// growth by about eight (it is cubic in the interval), so a poll that
/// just climbed sits well within the band; without it, the typical
/// measurement variance's own scatter moved the growth across the gate
/// and back, and the poll alternated between two exponents for hours
/// (the runner's case b: 256 s and 512 s, every few polls). RFC 5905's
/// poll has its hysteresis too, in the counter of section 11.3 (LIMIT).
pub const POLL_DROP: f64 = 2.0;

/// Largest accepted [`Config::poll_gate`]: a million measurement
/// variances, far beyond what any poll target asks for (2048).
pub const MAX_POLL_GATE: f64 = 1e6;

/// The measurement count that [`POLL_GATE`] stands for in
/// [`Config::with_poll_target`]: chrony's default `polltarget`, 8. Our
/// default poll gate is taken to be what chrony's default target asks
/// for; other targets scale from this pair.
pub const DEFAULT_POLL_TARGET: u32 = 8;

/// Accepted range of [`Config::with_poll_target`]: chrony documents 6 to
/// 60 as the useful range and its own tests use 1.
pub const POLL_TARGET_RANGE: core::ops::RangeInclusive<u32> = 1..=60;

/// Shortest phase slew of the [`Algorithm::Kalman`] estimator, seconds:
/// no offset estimate is slewed out faster, however far it stands out of
/// its noise (see [`CORRECTION_TIME_RATIO`]); RFC 5905 amortizes over
/// `16 * 2^poll`.
pub const MIN_SLEW_TIME: f64 = 1.0;

/// Correction time ratio of the [`Algorithm::Kalman`] estimator: an offset
/// estimate as large as its standard deviation (at least the typical
/// measurement's, as chrony's `offset_sd`) is slewed over this many half
/// update intervals, larger ones proportionally faster (the rule of
/// chrony's `corrtimeratio`, whose default, 3, this is). Not an
/// RFC constant: RFC 5905 slews every offset over `PLL * 2^poll`
/// (appendix A.5.6.1). Larger values keep the clock's rate steadier and
/// let noise-level offsets linger longer.
pub const CORRECTION_TIME_RATIO: f64 = 3.0;

/// Standard deviation of the frequency before any measurement without a
/// drift file, s/s (250 ppm: every legal frequency within ±[`MAXFREQ`] is
/// two standard deviations away at most). A [`Config::max_frequency`]
/// other than [`MAXFREQ`] scales it alike.
pub const INITIAL_FREQUENCY_SD: f64 = 250e-6;

/// Standard deviation of a drift file's frequency, s/s (1 ppm: a file
/// written at another temperature).
pub const DRIFT_FILE_FREQUENCY_SD: f64 = 1e-6;

/// The estimator that turns offsets into clock corrections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Algorithm {
    /// RFC 5905's hybrid PLL/FLL exactly as appendix A.5.5.6 writes it
    /// (with the choices of the table above), its frequency training in
    /// FREQ, and the once-a-second phase amortization of appendix
    /// A.5.6.1. Use [`Config::rfc5905`] for conformance tests.
    Rfc5905,
    /// The default: a Kalman filter over phase and frequency, fed every
    /// measurement with its own uncertainty, with the frequency learnt
    /// from the first measurements (no 900 s training), fast phase slews
    /// that never reach the frequency estimate, a poll interval chosen
    /// from what the filter knows, and an outlier gate. It keeps the
    /// RFC's states, step threshold, stepout and panic rules. The model
    /// and every constant are documented in the crate docs and on
    /// [`WANDER`], [`OUTLIER_GATE`], [`POLL_GATE`], [`MIN_SLEW_TIME`].
    #[default]
    Kalman,
}

/// Tunable discipline parameters. [`Config::default`] uses the
/// [`Algorithm::Kalman`] estimator with the RFC 5905 thresholds;
/// [`Config::rfc5905`] is RFC 5905's loop exactly.
///
/// [`Discipline::new`](crate::Discipline::new) checks them with
/// [`Config::validate`].
///
/// # Where the sources disagree
///
/// RFC 5905's body (section 11.3, figure 27), its code skeleton (appendix
/// A.5.5.6) and the reference implementation (ntpd) do not agree on every
/// number. The values chosen here, and why:
///
/// | Constant | Body | Appendix | ntpd | Chosen | Why |
/// |---|---|---|---|---|---|
/// | [`STEPT`] | 0.125 s | 0.128 s | 0.128 s | **0.128 s** | the appendix code and the deployed implementation agree, so a client steps exactly when the servers it is compared with do |
/// | [`WATCH`] | 900 s | 900 s | 300 s | **900 s** | body and appendix agree; the same interval also times frequency training, where 900 s gives a three times better first frequency estimate than 300 s |
/// | [`ALLAN`] | — | 1500 s | 2048 s | **2048 s** | a power of two lines up with poll exponents: the FLL joins from poll 11 (2048 s) on and the phase time constant stops growing at the same poll, instead of at a 1500 s value no poll interval has |
/// | [`AVG`] | 8 | 4 | 8 | **8** | body and ntpd agree; the longer average makes the jitter used by the poll gate steadier |
/// | [`PLL`] | 16 (TC) | 65 536 | 16 | **16** | the appendix's 65 536 is the 2^16 fixed-point scale of the kernel interface leaking into floating-point code: with it the phase time constant at poll 6 would be 48 days. Figure 27's TC = 16 and ntpd use 16 |
/// | poll hysteresis step | +1 / −2 | +poll / −2·poll | +poll / −2·poll | **+poll / −2·poll** | appendix and ntpd agree; with LIMIT = 30 the poll interval climbs after a few quiet updates instead of 30 |
///
/// The appendix also writes the clock wander as the RMS of the frequency
/// itself although its comment (and figure 27) says "RMS of exponentially
/// weighted frequency differences"; [`Discipline::wander`] follows the
/// comment. Where the appendix code has plain slips, the intent is
/// followed: the SYNC outlier case sets a local `state = SPIK` (the
/// discipline state is meant), the FREQ inlier case computes the frequency
/// but never calls `rstclock(SYNC, ...)` (it is called), and the step case
/// tests an unset local `state == NSET` (`c.state` is meant). Figure 28
/// says "step freq" for a step out of SPIK or SYNC, but the appendix code
/// only measures a frequency on the way out of FREQ; the code is followed,
/// since a step after a spike period usually means the time jumped, not
/// the frequency.
///
/// Non-exhaustive, so that new settings can come without breaking
/// callers: start from [`Default`] or [`Config::rfc5905`] and set the
/// fields or use the `with_*` methods.
///
/// [`Discipline::wander`]: crate::Discipline::wander
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Config {
    /// Step threshold in seconds, [`STEPT`] by default.
    pub step_threshold: f64,
    /// Stepout interval in seconds, [`WATCH`] by default.
    pub stepout: f64,
    /// Panic threshold in seconds, [`PANICT`] by default; `None` never
    /// panics.
    pub panic_threshold: Option<f64>,
    /// Whether the panic threshold also applies to the first update (in the
    /// NSET and FSET states). `true` by default, as in RFC 5905; `false`
    /// lets the first synchronization step the clock by any amount (what
    /// ntpd's `-g` option does).
    pub panic_on_first_update: bool,
    /// Allan intercept in seconds, [`ALLAN`] by default.
    pub allan_intercept: f64,
    /// PLL time constant scale, [`PLL`] by default: the phase time
    /// constant is `pll_gain * 2^poll` seconds and the PLL frequency gain
    /// `1 / (4 * pll_gain * 2^poll)^2`.
    pub pll_gain: f64,
    /// Lower bound of the poll exponent (log2 seconds), [`MINPOLL`] by
    /// default; the poll interval restarts here after a step.
    pub min_poll: i8,
    /// Upper bound of the poll exponent (log2 seconds), [`MAXPOLL`] by
    /// default.
    pub max_poll: i8,
    /// Precision of the local clock (log2 seconds), [`PRECISION`] by
    /// default; the floor of the clock jitter.
    pub precision: i8,
    /// Slew the initial offset outside the loop. `false` by default, as in
    /// RFC 5905.
    ///
    /// The offset left at the first update (FSET) or at the end of
    /// frequency training (FREQ) is mostly the phase the untrained
    /// frequency error piled up, not a sign of a frequency error still
    /// there. RFC 5905 slews it like any other offset, and the PLL
    /// integrates it while it is being slewed away: that winds the
    /// frequency up by about `offset / (16 * PLL * 2^poll)` (3.7 ppm for 15 ms at
    /// poll 4), which the loop then needs hours to unwind. With this
    /// option the same amount is slewed at the same per-second rate, but the
    /// PLL only integrates what the measured offsets show beyond the part
    /// still to be slewed — the way a step (RFC 5905, appendix A.5.5.6)
    /// never reaches the integrator.
    pub open_loop_initial_offset: bool,
    /// The estimator, [`Algorithm::Kalman`] by default.
    pub algorithm: Algorithm,
    /// Initial frequency wander of the [`Algorithm::Kalman`] estimator,
    /// s²/s³, [`WANDER`] by default; learnt from the measurements within
    /// [`WANDER_MIN`]..=[`WANDER_MAX`].
    pub wander: f64,
    /// Largest frequency correction, seconds per second: [`MAXFREQ`]
    /// (500 ppm, RFC 5905 appendix A.5.5.6) by default. A caller whose
    /// clock can run faster (Linux's tick length takes the kernel clock
    /// to ±10 %) raises it, up to [`max_rate`](Self::max_rate), so that an
    /// oscillator far off its nominal frequency can still be followed.
    pub max_frequency: f64,
    /// Largest phase slew rate, seconds per second: [`MAXSLEW`] by
    /// default. The [`Algorithm::Kalman`] estimator slews at most this
    /// fast, and never beyond [`max_rate`](Self::max_rate) in total.
    pub max_slew: f64,
    /// Largest total rate correction (frequency plus phase slew) the
    /// caller's clock can apply, seconds per second: [`MAXFREQ`] by
    /// default (Linux's `ADJ_FREQUENCY` alone); at most
    /// [`MAX_RATE_LIMIT`].
    pub max_rate: f64,
    /// chrony's `makestep THRESHOLD LIMIT`: during the first `limit`
    /// accepted updates (every update when `limit` is `None`), an offset
    /// estimate above `threshold` seconds is stepped at once instead of
    /// slewed. Updates count toward `limit` only once the frequency's
    /// standard deviation times the poll interval is within `threshold`
    /// (chronyd's first update comes once it knows the frequency). `None` (the default) keeps RFC 5905's step rules alone
    /// (section 11.3: above [`step_threshold`](Self::step_threshold) at
    /// the first update or after the stepout interval). Used by the
    /// [`Algorithm::Kalman`] estimator.
    pub make_step: Option<MakeStep>,
    /// Poll gate of the [`Algorithm::Kalman`] estimator: the poll interval
    /// is the longest over which the predicted phase variance grows by at
    /// most this many typical measurement variances. [`POLL_GATE`] by
    /// default; larger values poll less often (fewer requests, a less
    /// accurate clock). [`Config::with_poll_target`] sets it from chrony's
    /// `polltarget`. Ignored by [`Algorithm::Rfc5905`], whose poll follows
    /// RFC 5905's hysteresis. Missing in serialized data means the
    /// default.
    #[cfg_attr(feature = "serde", serde(default = "default_poll_gate"))]
    pub poll_gate: f64,
    /// How slowly the [`Algorithm::Kalman`] estimator slews an estimate
    /// that does not stand out of its noise: chrony's `corrtimeratio`,
    /// [`CORRECTION_TIME_RATIO`] (3) by default. The correction time is
    /// this ratio times half the estimate's standard deviation over the
    /// offset, in update intervals, at most this many update intervals; a
    /// huge value (chrony's tests use 1e10) slews everything over that
    /// longest time. At least 1, at most [`MAX_CORRECTION_TIME_RATIO`].
    /// Missing in serialized data means the default.
    #[cfg_attr(feature = "serde", serde(default = "default_correction_time_ratio"))]
    pub correction_time_ratio: f64,
    /// chrony's `maxchange OFFSET START IGNORE`: see [`MaxChange`]. `None`
    /// (the default) accepts any offset the other rules accept. Missing
    /// in serialized data means `None`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub max_change: Option<MaxChange>,
    /// chrony's `fallbackdrift MIN MAX`: see [`FallbackDrift`] and the
    /// `fallback` notes in [`Discipline`](crate::Discipline). `None` (the
    /// default) keeps the last frequency while no update comes. Used by
    /// the [`Algorithm::Kalman`] estimator. Missing in serialized data
    /// means `None`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub fallback_drift: Option<FallbackDrift>,
}

/// [`POLL_GATE`], for serde.
#[cfg(feature = "serde")]
const fn default_poll_gate() -> f64 {
    POLL_GATE
}

/// [`CORRECTION_TIME_RATIO`], for serde.
#[cfg(feature = "serde")]
const fn default_correction_time_ratio() -> f64 {
    CORRECTION_TIME_RATIO
}

/// Largest [`Config::correction_time_ratio`]: 1e12, beyond any slew a
/// clock finishes within its lifetime at the longest update interval.
pub const MAX_CORRECTION_TIME_RATIO: f64 = 1e12;

/// chrony's `maxchange` rule, see [`Config::max_change`]: once `start`
/// updates have changed the clock, an update whose offset is larger than
/// `offset` seconds is ignored ([`IgnoreReason::MaxChange`](crate::IgnoreReason::MaxChange)),
/// `ignore` times in all; the next one is a panic
/// ([`Output::Panic`](crate::Output::Panic)): the caller should give up
/// and exit, as chronyd does, rather than follow sources that moved that
/// far. `ignore` `None` ignores them forever (chrony's negative value).
/// Not in RFC 5905, whose panic threshold (1000 s) plays that part for
/// larger offsets.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MaxChange {
    /// Largest offset accepted, seconds.
    pub offset: f64,
    /// Clock updates before the rule applies (so that a large start
    /// offset can still be corrected).
    pub start: u32,
    /// Updates ignored before the panic; `None`: never panic.
    pub ignore: Option<u32>,
}

/// chrony's `fallbackdrift MIN MAX`, see [`Config::fallback_drift`]: the
/// clock falls back to its average frequency over the last 2^`min` to
/// 2^`max` seconds once its last update is that old. Not in RFC 5905
/// (section 11.3 keeps the last frequency while the sources are gone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FallbackDrift {
    /// Exponent of the shortest interval, log2 seconds (at least 1).
    pub min: u8,
    /// Exponent of the longest interval, log2 seconds (at most
    /// [`FALLBACK_DRIFT_MAX_EXPONENT`](crate::FALLBACK_DRIFT_MAX_EXPONENT)).
    pub max: u8,
}

/// chrony's `makestep` rule, see [`Config::make_step`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MakeStep {
    /// Offsets above this many seconds are stepped (0: every offset).
    pub threshold: f64,
    /// For this many accepted updates from the start; `None`: always.
    pub limit: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            step_threshold: STEPT,
            stepout: WATCH,
            panic_threshold: Some(PANICT),
            panic_on_first_update: true,
            allan_intercept: ALLAN,
            pll_gain: PLL,
            min_poll: MINPOLL,
            max_poll: MAXPOLL,
            precision: PRECISION,
            open_loop_initial_offset: false,
            algorithm: Algorithm::Kalman,
            wander: WANDER,
            max_frequency: MAXFREQ,
            max_slew: MAXSLEW,
            max_rate: MAXFREQ,
            make_step: None,
            poll_gate: POLL_GATE,
            correction_time_ratio: CORRECTION_TIME_RATIO,
            max_change: None,
            fallback_drift: None,
        }
    }
}

impl Config {
    /// RFC 5905's discipline exactly: the hybrid PLL/FLL of appendix
    /// A.5.5.6 with the constants chosen in the table above, frequency
    /// training in FREQ, once-a-second amortization. For conformance tests
    /// and comparisons; [`Config::default`] keeps time far better.
    #[must_use]
    pub fn rfc5905() -> Self {
        Self {
            algorithm: Algorithm::Rfc5905,
            ..Self::default()
        }
    }

    /// The same configuration with the poll exponent bounded to
    /// `min_poll..=max_poll` (log2 s).
    #[must_use]
    pub const fn with_poll_range(self, min_poll: i8, max_poll: i8) -> Self {
        Self {
            min_poll,
            max_poll,
            ..self
        }
    }

    /// The same configuration with the poll gate that matches chrony's
    /// `polltarget` (the number of measurements its regression should
    /// hold): `POLL_GATE * (DEFAULT_POLL_TARGET / target)^3`, so 2048 for
    /// a target of 1 and 0.0095 for 60. `None` when `target` is outside
    /// [`POLL_TARGET_RANGE`].
    ///
    /// Why the cube: with a random-walk frequency (wander `q`), the phase
    /// variance a poll interval `tau` adds grows as `q * tau^3 / 3`, and
    /// the gate `G` allows `G` measurement variances `s^2`, so
    /// `tau ∝ (G * s^2 / q)^(1/3)`. chrony keeps the samples whose
    /// residuals still look like noise, that is over a span where the same
    /// growth stays about `s^2`; with `N` samples in it, `tau ∝ 1 / N`.
    /// Equal poll intervals for equal noise then need `G ∝ N^-3`, pinned
    /// to our default at chrony's default target.
    #[must_use]
    pub fn with_poll_target(self, target: u32) -> Option<Self> {
        if !POLL_TARGET_RANGE.contains(&target) {
            return None;
        }
        let ratio = f64::from(DEFAULT_POLL_TARGET) / f64::from(target);
        Some(Self {
            poll_gate: POLL_GATE * ratio * ratio * ratio,
            ..self
        })
    }

    /// The same configuration with another estimator.
    #[must_use]
    pub const fn with_algorithm(self, algorithm: Algorithm) -> Self {
        Self { algorithm, ..self }
    }

    /// Checks that every field makes sense.
    ///
    /// # Errors
    ///
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = |x: f64| x.is_finite() && x > 0.0 && x <= MAX_OFFSET;
        if !positive(self.step_threshold) {
            return Err(ConfigError::StepThreshold);
        }
        if !(self.stepout.is_finite() && (0.0..=MAX_OFFSET).contains(&self.stepout)) {
            return Err(ConfigError::Stepout);
        }
        if let Some(panic) = self.panic_threshold {
            if !positive(panic) {
                return Err(ConfigError::PanicThreshold);
            }
        }
        if !positive(self.allan_intercept) {
            return Err(ConfigError::AllanIntercept);
        }
        if !(self.pll_gain.is_finite() && (1.0..=65_536.0).contains(&self.pll_gain)) {
            return Err(ConfigError::PllGain);
        }
        if self.min_poll < MIN_POLL_LIMIT
            || self.max_poll > MAXPOLL
            || self.min_poll > self.max_poll
        {
            return Err(ConfigError::PollRange {
                min_poll: self.min_poll,
                max_poll: self.max_poll,
            });
        }
        if !(MIN_PRECISION_LOG2..=0).contains(&self.precision) {
            return Err(ConfigError::Precision(self.precision));
        }
        if !(self.wander.is_finite() && (WANDER_MIN..=WANDER_MAX).contains(&self.wander)) {
            return Err(ConfigError::Wander);
        }
        let rate = |x: f64| x.is_finite() && x > 0.0 && x <= self.max_rate;
        let rates_valid = rate(self.max_rate)
            && self.max_rate <= MAX_RATE_LIMIT
            && rate(self.max_frequency)
            && rate(self.max_slew);
        if !rates_valid {
            return Err(ConfigError::RateLimits);
        }
        if !(self.poll_gate.is_finite() && self.poll_gate > 0.0 && self.poll_gate <= MAX_POLL_GATE)
        {
            return Err(ConfigError::PollGate);
        }
        if !(self.correction_time_ratio.is_finite()
            && (1.0..=MAX_CORRECTION_TIME_RATIO).contains(&self.correction_time_ratio))
        {
            return Err(ConfigError::CorrectionTimeRatio);
        }
        if let Some(rule) = self.max_change {
            if !(rule.offset.is_finite() && rule.offset > 0.0 && rule.offset <= MAX_OFFSET) {
                return Err(ConfigError::MaxChange);
            }
        }
        if let Some(rule) = self.fallback_drift {
            if !(1 <= rule.min
                && rule.min <= rule.max
                && rule.max <= crate::FALLBACK_DRIFT_MAX_EXPONENT)
            {
                return Err(ConfigError::FallbackDrift);
            }
        }
        if let Some(make_step) = self.make_step {
            if !(make_step.threshold.is_finite()
                && (0.0..=MAX_OFFSET).contains(&make_step.threshold))
            {
                return Err(ConfigError::MakeStep);
            }
        }
        Ok(())
    }
}

/// Why a [`Config`] or an initial frequency was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_rate` is not positive, finite and at most [`MAX_RATE_LIMIT`],
    /// or `max_frequency` or `max_slew` is not positive, finite and at
    /// most `max_rate`.
    #[error("rate limits must be positive, finite, at most max_rate, and max_rate at most 0.5")]
    RateLimits,
    /// The `make_step` threshold is negative, not finite or above
    /// [`MAX_OFFSET`].
    #[error("makestep threshold must be non-negative, finite and at most 2^31 s")]
    MakeStep,
    /// `correction_time_ratio` is not finite or outside 1 to
    /// [`MAX_CORRECTION_TIME_RATIO`].
    #[error("the correction time ratio must be finite, from 1 to 1e12")]
    CorrectionTimeRatio,
    /// The `fallback_drift` exponents are not `1 <= min <= max <= 30`.
    #[error("fallbackdrift needs 1 <= min <= max <= 30")]
    FallbackDrift,
    /// The `max_change` offset is not positive, finite and at most
    /// [`MAX_OFFSET`].
    #[error("maxchange offset must be positive, finite and at most 2^31 s")]
    MaxChange,
    /// The step threshold is not a positive, finite number of seconds up to
    /// [`MAX_OFFSET`].
    #[error("step threshold must be positive, finite and at most 2^31 s")]
    StepThreshold,
    /// The stepout interval is negative, not finite or above [`MAX_OFFSET`].
    #[error("stepout interval must be non-negative, finite and at most 2^31 s")]
    Stepout,
    /// The panic threshold is not a positive, finite number of seconds up
    /// to [`MAX_OFFSET`].
    #[error("panic threshold must be positive, finite and at most 2^31 s")]
    PanicThreshold,
    /// The Allan intercept is not a positive, finite number of seconds up
    /// to [`MAX_OFFSET`].
    #[error("Allan intercept must be positive, finite and at most 2^31 s")]
    AllanIntercept,
    /// The PLL gain is outside 1 to 65 536 or not finite.
    #[error("PLL gain must be finite and within 1..=65536")]
    PllGain,
    /// The poll range is empty or outside
    /// [`MIN_POLL_LIMIT`]..=[`MAXPOLL`].
    #[error("poll range {min_poll}..={max_poll} is empty or outside 0..=17")]
    PollRange {
        /// The configured lower bound.
        min_poll: i8,
        /// The configured upper bound.
        max_poll: i8,
    },
    /// The precision is outside -30..=0 (1 ns to 1 s).
    #[error("precision 2^{0} s is outside 2^-30..=2^0 s")]
    Precision(i8),
    /// The wander is outside [`WANDER_MIN`]..=[`WANDER_MAX`] or not finite.
    #[error("wander must be within 1e-21..=1e-13 s^2/s^3")]
    Wander,
    /// The poll gate is not positive, finite and at most
    /// [`MAX_POLL_GATE`].
    #[error("poll gate must be positive, finite and at most 1e6")]
    PollGate,
    /// The initial frequency is not finite or exceeds
    /// [`Config::max_frequency`] ([`MAXFREQ`] by default).
    #[error("initial frequency must be finite and within the configured maximum frequency")]
    InitialFrequency,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_chosen_rfc_values_and_valid() {
        let config = Config::default();
        assert_eq!(config.validate(), Ok(()));
        assert!((config.step_threshold - 0.128).abs() < 1e-15);
        assert!((config.stepout - 900.0).abs() < 1e-15);
        assert_eq!(config.panic_threshold, Some(1000.0));
        assert!((config.allan_intercept - 2048.0).abs() < 1e-15);
        assert_eq!((config.min_poll, config.max_poll), (6, 17));
        assert_eq!(FLL, 18);
    }

    #[test]
    fn bad_fields_are_named() {
        let base = Config::default();
        let cases = [
            (
                Config {
                    step_threshold: f64::NAN,
                    ..base
                },
                ConfigError::StepThreshold,
            ),
            (
                Config {
                    step_threshold: 0.0,
                    ..base
                },
                ConfigError::StepThreshold,
            ),
            (
                Config {
                    stepout: -1.0,
                    ..base
                },
                ConfigError::Stepout,
            ),
            (
                Config {
                    panic_threshold: Some(f64::INFINITY),
                    ..base
                },
                ConfigError::PanicThreshold,
            ),
            (
                Config {
                    allan_intercept: 0.0,
                    ..base
                },
                ConfigError::AllanIntercept,
            ),
            (
                Config {
                    pll_gain: 0.5,
                    ..base
                },
                ConfigError::PllGain,
            ),
            (
                Config {
                    min_poll: 11,
                    max_poll: 10,
                    ..base
                },
                ConfigError::PollRange {
                    min_poll: 11,
                    max_poll: 10,
                },
            ),
            (
                Config {
                    max_poll: 18,
                    ..base
                },
                ConfigError::PollRange {
                    min_poll: 6,
                    max_poll: 18,
                },
            ),
            (
                Config {
                    min_poll: -1,
                    ..base
                },
                ConfigError::PollRange {
                    min_poll: -1,
                    max_poll: 17,
                },
            ),
            (
                Config {
                    precision: 3,
                    ..base
                },
                ConfigError::Precision(3),
            ),
        ];
        for (config, error) in cases {
            assert_eq!(config.validate(), Err(error), "{config:?}");
        }
        // Zero stepout and no panic threshold are allowed.
        let lenient = Config {
            stepout: 0.0,
            panic_threshold: None,
            ..base
        };
        assert_eq!(lenient.validate(), Ok(()));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn config_round_trips_through_serde() {
        let config = Config {
            panic_threshold: None,
            min_poll: 4,
            open_loop_initial_offset: true,
            ..Config::default()
        };
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains("\"step_threshold\":0.128"), "{json}");
        assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), config);
    }
}
