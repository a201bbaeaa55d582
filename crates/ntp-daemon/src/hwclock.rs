//! Hardware timestamps (`--hwtimestamp IFACE`): the network card stamps
//! datagrams with its own PTP hardware clock (PHC), which the daemon
//! turns into system time.
//!
//! - **The card's clock against a steady one.** The system clock
//!   (`CLOCK_REALTIME`) is the one the daemon slews, up to 83 333 ppm at
//!   the start: no line fits it against the PHC. So once a second the PHC
//!   is read against `CLOCK_MONOTONIC_RAW`, the bare oscillator no
//!   adjustment touches (each PHC read between two raw reads; of ten,
//!   those whose window is within twice the narrowest, averaged), and
//!   the last [`SAMPLES`] samples are fitted with a line (least squares): the raw
//!   clock minus the PHC, as a function of the PHC's time. The fit
//!   averages the readings' noise and follows the two oscillators' rate
//!   difference (chronyd's "HW clock" regression does the same).
//! - **A stamp into system time.** The line gives the stamp's raw time;
//!   the system clock and the raw one are read together at the
//!   conversion, and the stamp is that many raw nanoseconds before the
//!   system reading. A stamp is microseconds old when it is converted
//!   (read right after the wakeup or the send), so the system clock's
//!   own rate over that age (at most the slew limit) is left out: under
//!   a nanosecond at 83 333 ppm for a 10 us old stamp.
//! - **Which PHC.** `/sys/class/net/IFACE/device/ptp/ptpN` names it
//!   (`/dev/ptpN`); `phc=PATH` overrides that (clknetsim has no sysfs).
//! - **What the daemon does not do.** It does not switch the card's
//!   timestamping on: that is the `SIOCSHWTSTAMP` ioctl, which needs
//!   `unsafe` and no maintained crate wraps. `hwstamp_ctl -i IFACE -r 1
//!   -t 1` (linuxptp), or a running `ptp4l`, does it. Until the card
//!   stamps, datagrams carry only the kernel's software timestamps, which
//!   the daemon then uses. Nor does it move a receive timestamp from the
//!   frame's start to its end (chronyd does, by the link speed): with the
//!   card stamping both ends of every exchange the starts are consistent.
//!   `PTP_SYS_OFFSET_*` are not used: `clock_gettime` of the PHC is the
//!   one read against the raw clock that needs no `unsafe`.

use core::time::Duration;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clock_steering::Clock as _;
use clock_steering::unix::UnixClock;
use nix::time::{ClockId, clock_gettime};

use ntp_client::ntp_proto::Date;

use crate::clock::ReadClock;
use crate::net::PhcStamp;
use crate::refclocks::{PhcReading, READ_INTERVAL, phc_sample};

/// Where a timestamp was taken, as chronyd's measurements log marks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StampKind {
    /// The daemon read its clock (`D`).
    Daemon,
    /// The kernel stamped the datagram (`K`).
    Kernel,
    /// The network card did (`H`).
    Hardware,
}

impl StampKind {
    pub(crate) const fn letter(self) -> &'static str {
        match self {
            Self::Daemon => "D",
            Self::Kernel => "K",
            Self::Hardware => "H",
        }
    }
}

/// The best of a datagram's timestamps as a reading of `clock`, and
/// where it was taken: the card's, converted through `hw` to system time,
/// else the kernel's; `None` without either.
pub(crate) fn reading(
    clock: &dyn ReadClock,
    (software, hardware): (Option<SystemTime>, Option<PhcStamp>),
    hw: Option<&HwClock>,
) -> Option<(io::Result<Date>, StampKind)> {
    let card = hardware.and_then(|stamp| hw?.to_realtime(stamp.seconds, stamp.nanos));
    let (time, kind) = match (card, software) {
        (Some(time), _) => (time, StampKind::Hardware),
        (None, Some(time)) => (time, StampKind::Kernel),
        (None, None) => return None,
    };
    Some((clock.reading_at_realtime(time), kind))
}

/// PHC samples in the fit: 16, a quarter of a minute at one a second,
/// short enough that the system clock's rate, which the discipline
/// changes, is one line over it.
const SAMPLES: usize = 16;

/// One PHC sample: the PHC's time and the raw clock's then, ns.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    phc: i128,
    raw: i128,
}

/// The network card's clock and its relation to the system clock.
#[derive(Debug)]
pub(crate) struct HwClock {
    phc: UnixClock,
    path: PathBuf,
    samples: [Option<Sample>; SAMPLES],
    next: usize,
    last_read: Option<std::time::Instant>,
    /// The last reading failed.
    failing: bool,
}

impl HwClock {
    /// Opens the PHC at `path`.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let phc = UnixClock::open(path).map_err(|error| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("--hwtimestamp: PTP clock {}: {error}", path.display()),
            )
        })?;
        Ok(Self {
            phc,
            path: path.to_owned(),
            samples: [None; SAMPLES],
            next: 0,
            last_read: None,
            failing: false,
        })
    }

    /// The PHC's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the PHC if a second has passed since the last reading (`now`
    /// on the monotonic clock). A failed reading leaves the samples as
    /// they are; the first of a run of them is returned, for the log.
    pub(crate) fn refresh(&mut self, now: std::time::Instant) -> Option<String> {
        if self
            .last_read
            .is_some_and(|last| now.saturating_duration_since(last) < READ_INTERVAL)
        {
            return None;
        }
        self.last_read = Some(now);
        match self.read() {
            Ok(sample) => {
                if let Some(slot) = self.samples.get_mut(self.next) {
                    *slot = Some(sample);
                }
                self.next = (self.next + 1) % SAMPLES;
                self.failing = false;
                None
            }
            Err(error) if !self.failing => {
                self.failing = true;
                Some(format!("PTP clock {}: {error}", self.path.display()))
            }
            Err(_) => None,
        }
    }

    /// One sample: the PHC read between two reads of the raw clock, the
    /// best of several ([`phc_sample`], as the `PHC` reference clock).
    fn read(&self) -> Result<Sample, String> {
        let reading = phc_sample(|| {
            let before = raw_nanos()?;
            let phc = self.phc.now().map_err(|error| error.to_string())?;
            let after = raw_nanos()?;
            let phc = i128::from(phc.seconds) * 1_000_000_000 + i128::from(phc.nanos);
            let middle = (before + after) / 2;
            Ok(PhcReading {
                window: after - before,
                offset: phc - middle,
                middle,
            })
        })?;
        Ok(Sample {
            phc: reading.middle + reading.offset,
            raw: reading.middle,
        })
    }

    /// A hardware timestamp (`seconds`.`nanos` of the PHC) as system
    /// time, or `None` before the first PHC sample (or for a stamp out of
    /// range).
    pub(crate) fn to_realtime(&self, seconds: i64, nanos: i64) -> Option<SystemTime> {
        let stamp = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
        let raw = fit(self.samples.iter().flatten().copied(), stamp)?;
        // The system clock and the raw one now, the second read twice.
        let before = raw_nanos().ok()?;
        let realtime = clock_gettime(ClockId::CLOCK_REALTIME).ok()?;
        let after = raw_nanos().ok()?;
        let age = (before + after) / 2 - raw;
        let realtime =
            i128::from(realtime.tv_sec()) * 1_000_000_000 + i128::from(realtime.tv_nsec()) - age;
        let realtime = u128::try_from(realtime).ok()?;
        let seconds = u64::try_from(realtime / 1_000_000_000).ok()?;
        let nanos = u32::try_from(realtime % 1_000_000_000).ok()?;
        SystemTime::UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
    }
}

/// `CLOCK_MONOTONIC_RAW` in nanoseconds.
fn raw_nanos() -> Result<i128, String> {
    let time = clock_gettime(ClockId::CLOCK_MONOTONIC_RAW).map_err(|error| error.to_string())?;
    Ok(i128::from(time.tv_sec()) * 1_000_000_000 + i128::from(time.tv_nsec()))
}

/// The raw clock's time at PHC time `at`, by the least-squares line of
/// the raw clock minus the PHC against the PHC through `samples`; by
/// the one sample's difference when there is only one.
fn fit(samples: impl Iterator<Item = Sample> + Clone, at: i128) -> Option<i128> {
    let origin = samples.clone().max_by_key(|sample| sample.phc)?;
    let base = origin.raw - origin.phc;
    // Seconds from the newest sample, and nanoseconds from its
    // difference: small numbers for the sums.
    #[allow(clippy::cast_precision_loss, reason = "seconds and ns, not dates")]
    let (x, y) = (
        |phc: i128| (phc - origin.phc) as f64 * 1e-9,
        |sample: Sample| (sample.raw - sample.phc - base) as f64,
    );
    let (mut n, mut sum_x, mut sum_y) = (0.0, 0.0, 0.0);
    for sample in samples.clone() {
        n += 1.0;
        sum_x += x(sample.phc);
        sum_y += y(sample);
    }
    let (mean_x, mean_y) = (sum_x / n, sum_y / n);
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for sample in samples {
        let dx = x(sample.phc) - mean_x;
        sxx += dx * dx;
        sxy += dx * (y(sample) - mean_y);
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let difference = mean_y + slope * (x(at) - mean_x);
    #[allow(
        clippy::cast_possible_truncation,
        reason = "within the samples' spread of nanoseconds"
    )]
    let difference = difference.is_finite().then(|| difference.round() as i128)?;
    Some(at + base + difference)
}

/// The PHC of network interface `interface`: `/dev/ptpN` for the
/// `ptpN` that sysfs lists under the interface's device.
pub(crate) fn interface_phc(interface: &str) -> io::Result<PathBuf> {
    let dir = Path::new("/sys/class/net")
        .join(interface)
        .join("device")
        .join("ptp");
    let not_found = || {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "--hwtimestamp {interface}: no PTP clock under {} (name it with phc=PATH)",
                dir.display()
            ),
        )
    };
    let entries = std::fs::read_dir(&dir).map_err(|_| not_found())?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_str().is_some_and(|name| name.starts_with("ptp")) {
            return Ok(Path::new("/dev").join(name));
        }
    }
    Err(not_found())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPOCH: i128 = 1_700_000_000_000_000_000;

    /// A sample `seconds` after EPOCH on the PHC with the raw clock
    /// `difference` ns off a fixed origin.
    fn sample(seconds: i128, difference: i128) -> Sample {
        let phc = EPOCH + seconds * 1_000_000_000;
        Sample {
            phc,
            raw: phc - EPOCH + 5_000_000_000 + difference,
        }
    }

    #[test]
    fn the_fit_follows_a_rate_difference_and_averages_noise() {
        // The raw clock gains 50 ns a second on the PHC, readings +-20 ns
        // about that line.
        let samples: Vec<Sample> = (0..16)
            .map(|s| sample(s, 1000 + 50 * s + if s % 2 == 0 { 20 } else { -20 }))
            .collect();
        let at = EPOCH + 20_000_000_000;
        let raw = fit(samples.iter().copied(), at).unwrap_or_default();
        let expected = at - EPOCH + 5_000_000_000 + 1000 + 50 * 20;
        assert!((raw - expected).abs() < 10, "{}", raw - expected);
        // One sample: its difference; none: nothing.
        assert_eq!(
            fit([sample(3, 7)].into_iter(), at),
            Some(at - EPOCH + 5_000_000_000 + 7)
        );
        assert_eq!(fit([].into_iter(), at), None);
    }

    #[test]
    fn a_missing_interface_names_the_way_out() {
        let error = interface_phc("no-such-interface0")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("phc=PATH"), "{error}");
    }
}
