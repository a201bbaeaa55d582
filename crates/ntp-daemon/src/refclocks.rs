//! Reference clock drivers (`--refclock`). The library keeps the samples,
//! filters them and selects among them (`ntp_client::refclock`); this
//! module reads the devices.
//!
//! - `SOCK:PATH`: chrony's socket protocol, as gpsd writes it to
//!   `/run/chrony.DEVICE.sock`. The daemon binds a Unix datagram socket at
//!   `PATH` (a stale socket left there is replaced; any other file is
//!   refused) and reads [`SockSample`] records from it. Each record says
//!   when, on the system clock, the reference was this far off; the
//!   daemon turns that into its own clock's offset (the model clock may
//!   differ from the system's).
//!
//! - `PHC:PATH`: a PTP hardware clock, read at most once a second with
//!   `PTP_SYS_OFFSET` (the system clock read just before and after the
//!   hardware clock, the middle taken), through `clock-steering`: ten
//!   readings, the mean of those whose windows are within twice the
//!   shortest; where the ioctl is missing, `clock_gettime` of the device
//!   between two of the system clock. `clock-steering` puts the system readings in TAI
//!   when the kernel knows the TAI offset, so a PHC that keeps TAI (as
//!   `ptp4l` leaves it) reads right; a PHC in UTC then needs `offset=`.
//!   The more precise `PTP_SYS_OFFSET_PRECISE` and `_EXTENDED` are not
//!   used: no maintained crate wraps them, and their ioctls need `unsafe`.
//!
//! - `PPS:PATH`: an RFC 2783 pulse per second (`/dev/ppsN`), through the
//!   `pps-time` crate: the assert (or, with `clear`, the clear) edge's
//!   system time, fetched without blocking once a second; a new pulse
//!   says the true second began then, so the offset is how far that
//!   moment lies from the nearest whole second. The whole seconds come
//!   from the `lock=` source or a synchronized clock (the library's
//!   rule).
//!
//! Bad records (wrong size, magic, leap; a time more than a second ahead
//! of the system clock or more than four behind it; a pulse on a
//! reference clock that is not a PPS) and PHC or PPS devices that cannot
//! be opened (tried again every 16 s: a receiver plugged in later is
//! used) are counted and logged, never fatal; a reference clock without
//! good samples becomes unreachable in the peer table.

use core::time::Duration;
use std::io;
use std::os::unix::fs::FileTypeExt as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clock_steering::unix::UnixClock;
use ntp_client::refclock::sock::SockSample;
use ntp_client::{Instant, SourceId, System};
use ntp_proto::{Date, LeapIndicator};
use pps_time::{PpsDevice, pps};
use rand_chacha::ChaCha12Rng;

use crate::clock::Clock;
use crate::log::Log;
use crate::options::Options;
use crate::refclock_options::RefclockDriver;
use crate::setup::Names;

/// Largest datagram read from a SOCK socket: a record is 40 octets; one
/// larger than any record is refused by its length.
const SOCK_READ: usize = 64;

/// Records read from one socket per loop turn at most (gpsd writes one a
/// second; the bound keeps a flooding writer from holding the loop).
const SOCK_BATCH: usize = 64;

/// What one driver did with its samples, and its device for the log.
struct Counts {
    path: PathBuf,
    accepted: u64,
    refused: u64,
}

impl Counts {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            accepted: 0,
            refused: 0,
        }
    }

    /// Hands `offset` (or the reason there is none) to `system` for
    /// reference clock `id`, and counts the outcome; a refusal is logged
    /// the first time and then at every power of two.
    fn hand(
        &mut self,
        system: &mut System<ChaCha12Rng>,
        id: SourceId,
        now: Instant,
        sample: Result<(f64, Option<LeapIndicator>), String>,
        log: Log,
    ) {
        let result = sample.and_then(|(offset, leap)| {
            system
                .handle_refclock_sample(id, now, offset, leap)
                .map_err(|error| error.to_string())
        });
        match result {
            Ok(()) => self.accepted = self.accepted.saturating_add(1),
            Err(why) => self.refuse(log, now, &why),
        }
    }

    fn refuse(&mut self, log: Log, now: Instant, why: &str) {
        self.refused = self.refused.saturating_add(1);
        if self.refused.is_power_of_two() {
            log.warn(
                now.as_secs_f64(),
                &format!(
                    "refclock {}: refused ({} so far): {why}",
                    self.path.display(),
                    self.refused
                ),
            );
        }
    }
}

/// Whether a device read at `last` is due again at `now` (once a second).
fn due(last: &mut Option<Instant>, now: Instant) -> bool {
    if last.is_some_and(|last| now < last.saturating_add(READ_INTERVAL)) {
        return false;
    }
    *last = Some(now);
    true
}

/// One SOCK reference clock.
struct SockDriver {
    id: SourceId,
    socket: UnixDatagram,
    pps: bool,
    counts: Counts,
}

impl Drop for SockDriver {
    fn drop(&mut self) {
        // The socket file is ours; leave no stale one behind.
        let _ = std::fs::remove_file(&self.counts.path);
    }
}

/// A device that may be missing (a USB receiver not plugged in yet, a
/// card whose driver is not loaded): opened when first read, and again
/// every [`REOPEN_INTERVAL`] while it fails. Meanwhile its reference clock
/// gets no samples and shows as unreachable.
struct Device<T> {
    path: PathBuf,
    device: Option<T>,
    last_try: Option<Instant>,
}

impl<T> Device<T> {
    fn missing(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            device: None,
            last_try: None,
        }
    }

    /// The device, opened with `open` if it is not yet and a try is due;
    /// a failure is counted and logged as a refusal.
    fn get(
        &mut self,
        now: Instant,
        counts: &mut Counts,
        log: Log,
        open: impl FnOnce(&Path) -> io::Result<T>,
    ) -> Option<&mut T> {
        if self.device.is_none()
            && self
                .last_try
                .is_none_or(|last| now >= last.saturating_add(REOPEN_INTERVAL))
        {
            self.last_try = Some(now);
            match open(&self.path) {
                Ok(device) => self.device = Some(device),
                Err(error) => counts.refuse(
                    log,
                    now,
                    &format!(
                        "cannot open the device ({error}); trying again every {} s",
                        REOPEN_INTERVAL.as_secs()
                    ),
                ),
            }
        }
        self.device.as_mut()
    }
}

/// How often a missing PHC or PPS device is tried again.
const REOPEN_INTERVAL: Duration = Duration::from_secs(16);

/// One PHC reference clock.
struct PhcDriver {
    id: SourceId,
    clock: Device<UnixClock>,
    /// When it was last read (once a second at most).
    last_read: Option<Instant>,
    counts: Counts,
}

/// One PPS reference clock.
struct PpsDriver {
    id: SourceId,
    device: Device<PpsDevice>,
    clear: bool,
    /// The sequence number of the last pulse used.
    sequence: Option<u32>,
    last_read: Option<Instant>,
    counts: Counts,
}

/// Every reference clock driver of the daemon.
#[derive(Default)]
pub(crate) struct Refclocks {
    sock: Vec<SockDriver>,
    phc: Vec<PhcDriver>,
    pps: Vec<PpsDriver>,
}

impl Refclocks {
    /// Adds every `--refclock` to `system` and opens its device. Locks
    /// name other reference clocks by refid. A reference clock without
    /// `precision=` gets `clock_precision`, the precision of the clock's
    /// readings (chrony's default), when it was measured.
    ///
    /// # Errors
    ///
    /// A reference clock the system refuses (its configuration), a lock
    /// that names no earlier reference clock, or a socket that cannot be
    /// bound.
    pub(crate) fn open(
        options: &Options,
        system: &mut System<ChaCha12Rng>,
        names: &mut Names,
        clock_precision: Option<i8>,
    ) -> io::Result<Self> {
        let mut refclocks = Self::default();
        let mut by_refid: Vec<(String, SourceId)> = Vec::new();
        for refclock in &options.refclocks {
            let named = |error: io::Error| {
                io::Error::new(
                    error.kind(),
                    format!("--refclock {}: {error}", refclock.spec),
                )
            };
            let mut config = refclock.config();
            if let Some(precision) = clock_precision.filter(|_| !refclock.precision_given) {
                config.precision = precision;
            }
            if let Some(lock) = &refclock.lock {
                config.lock = by_refid
                    .iter()
                    .find(|(refid, _)| refid == lock)
                    .map(|(_, id)| *id);
                if config.lock.is_none() {
                    return Err(io::Error::other(format!(
                        "--refclock {}: lock={lock} names no --refclock before it",
                        refclock.spec
                    )));
                }
            }
            let pps = config.pps;
            let id = system.add_refclock(config).map_err(|error| {
                io::Error::other(format!("--refclock {}: {error}", refclock.spec))
            })?;
            by_refid.push((refclock.refid.clone(), id));
            names.insert(id, format!("{} ({})", refclock.refid, refclock.spec));
            match &refclock.driver {
                RefclockDriver::Sock(path) => {
                    let socket = bind(path).map_err(named)?;
                    refclocks.sock.push(SockDriver {
                        id,
                        socket,
                        pps,
                        counts: Counts::new(path),
                    });
                }
                RefclockDriver::Pps { path, clear } => {
                    refclocks.pps.push(PpsDriver {
                        id,
                        device: Device::missing(path),
                        clear: *clear,
                        sequence: None,
                        last_read: None,
                        counts: Counts::new(path),
                    });
                }
                RefclockDriver::Phc(path) => {
                    refclocks.phc.push(PhcDriver {
                        id,
                        clock: Device::missing(path),
                        last_read: None,
                        counts: Counts::new(path),
                    });
                }
            }
        }
        Ok(refclocks)
    }

    /// Reads every device (the sockets at every call, the PHC and PPS
    /// devices once a second) and hands the samples to `system` at `now`.
    /// Bad samples are logged (the first, then at every power of two) and
    /// counted.
    pub(crate) fn read(
        &mut self,
        system: &mut System<ChaCha12Rng>,
        clock: &dyn Clock,
        now: Instant,
        log: Log,
    ) {
        self.read_socks(system, clock, now, log);
        self.read_phcs(system, clock, now, log);
        self.read_ppss(system, clock, now, log);
    }

    /// What the SOCK sockets have received.
    fn read_socks(
        &mut self,
        system: &mut System<ChaCha12Rng>,
        clock: &dyn Clock,
        now: Instant,
        log: Log,
    ) {
        let mut buf = [0_u8; SOCK_READ];
        for driver in &mut self.sock {
            for _ in 0..SOCK_BATCH {
                let len = match driver.socket.recv(&mut buf) {
                    Ok(len) => len,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                    Err(error) => {
                        driver.counts.refuse(log, now, &format!("read: {error}"));
                        break;
                    }
                };
                let record = buf.get(..len).unwrap_or(&[]);
                let sample = sock_offset(record, driver.pps, clock);
                driver.counts.hand(system, driver.id, now, sample, log);
            }
        }
    }

    /// `path: accepted=N refused=M` for every driver, for the log at the
    /// end.
    pub(crate) fn counters(&self) -> Option<String> {
        let each: Vec<String> = self
            .sock
            .iter()
            .map(|d| &d.counts)
            .chain(self.phc.iter().map(|d| &d.counts))
            .chain(self.pps.iter().map(|d| &d.counts))
            .map(|c| {
                format!(
                    "{}: accepted={} refused={}",
                    c.path.display(),
                    c.accepted,
                    c.refused
                )
            })
            .collect();
        (!each.is_empty()).then(|| each.join(", "))
    }

    /// Reads every PHC due (once a second) and hands the offsets to
    /// `system`.
    fn read_phcs(
        &mut self,
        system: &mut System<ChaCha12Rng>,
        clock: &dyn Clock,
        now: Instant,
        log: Log,
    ) {
        for driver in &mut self.phc {
            if !due(&mut driver.last_read, now) {
                continue;
            }
            let Some(phc) = driver
                .clock
                .get(now, &mut driver.counts, log, |path| UnixClock::open(path))
            else {
                continue;
            };
            let sample = phc_offset(phc, clock).map(|offset| (offset, None));
            driver.counts.hand(system, driver.id, now, sample, log);
        }
    }

    /// Fetches the newest pulse of every PPS device (once a second at
    /// most) and hands a new one to `system`.
    fn read_ppss(
        &mut self,
        system: &mut System<ChaCha12Rng>,
        clock: &dyn Clock,
        now: Instant,
        log: Log,
    ) {
        for driver in &mut self.pps {
            if !due(&mut driver.last_read, now) {
                continue;
            }
            let clear = driver.clear;
            let Some(device) = driver
                .device
                .get(now, &mut driver.counts, log, |path| open_pps(path, clear))
            else {
                continue;
            };
            let (sequence, time) = match device.fetch_non_blocking() {
                Ok(data) if driver.clear => (data.info.clear_sequence, data.info.clear_tu),
                Ok(data) => (data.info.assert_sequence, data.info.assert_tu),
                Err(error) => {
                    driver.counts.refuse(log, now, &format!("fetch: {error}"));
                    continue;
                }
            };
            if time.sec == 0 && time.nsec == 0 || driver.sequence == Some(sequence) {
                // No pulse yet, or none since the last.
                continue;
            }
            driver.sequence = Some(sequence);
            let sample = pulse_offset(time.sec, time.nsec, clock).map(|offset| (offset, None));
            driver.counts.hand(system, driver.id, now, sample, log);
        }
    }
}

/// Opens a PPS device and has it capture the assert (or clear) edge with
/// `struct timespec` times.
fn open_pps(path: &Path, clear: bool) -> io::Result<PpsDevice> {
    let device = PpsDevice::new(path.to_path_buf())?;
    let capability = device.get_cap()?;
    let edge = if clear {
        pps::PPS_CAPTURECLEAR
    } else {
        pps::PPS_CAPTUREASSERT
    };
    if capability & edge == 0 {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{} cannot capture the {} edge",
                path.display(),
                if clear { "clear" } else { "assert" }
            ),
        ));
    }
    let mut params = device.get_params()?;
    let mode = u32::try_from(params.mode).unwrap_or(0) | edge | pps::PPS_TSFMT_TSPEC;
    params.mode = i32::try_from(mode).unwrap_or(params.mode);
    device.set_params(&mut params)?;
    Ok(device)
}

/// A pulse at system time `seconds`.`nanos` as our clock's offset within
/// the second: the true second began then, so the system clock was off by
/// the distance to the nearest whole second.
fn pulse_offset(seconds: i64, nanos: i32, clock: &dyn Clock) -> Result<f64, String> {
    let seconds_u = u64::try_from(seconds).map_err(|_| String::from("time before 1970"))?;
    let nanos_u = u32::try_from(nanos)
        .ok()
        .filter(|&n| n < 1_000_000_000)
        .ok_or_else(|| String::from("nanoseconds beyond a second"))?;
    // The system clock read `seconds.nanos` when the true time was the
    // nearest whole second.
    let fraction = f64::from(nanos_u) * 1e-9;
    let system_offset = if fraction < 0.5 {
        -fraction
    } else {
        1.0 - fraction
    };
    ours_offset(system_offset, unix_time(seconds_u, nanos_u)?, clock)
}

/// How often a PHC or PPS device is read: once a second, as chronyd's
/// default.
pub(crate) const READ_INTERVAL: Duration = Duration::from_secs(1);

/// Readings of a PHC per sample: a reading's error is the delay of the
/// device read around it (PCIe or the network card's bus, microseconds,
/// varying), so several are taken and ...
const PHC_READINGS: usize = 10;

/// ... the mean of those whose system-clock window is at most
/// `PHC_WINDOW_FACTOR` times the narrowest is the sample: a short window
/// bounds the read delay, a reading delayed on the bus (a window several
/// times the usual) is left out, and every reading as good as the best
/// is averaged. Keeping a fixed five of the ten, the narrowest, threw
/// away half of the readings when their windows were all alike (a
/// simulated PHC with 100 us of noise on each reading: 45 us a sample
/// instead of 32; chrony's 106-refclock-4 moved from 9.0 to 5.7 us RMS,
/// the mean of seeds 1-9, and the PHC beside three servers from
/// 1.12-1.17 to 0.76-0.95 us). Ten `PTP_SYS_OFFSET` calls a second cost
/// tens of microseconds.
const PHC_WINDOW_FACTOR: i128 = 2;

/// The PHC's offset from our clock: the hardware clock minus the system
/// clock read around it (see [`PHC_READINGS`]), turned into our clock's
/// offset.
fn phc_offset(phc: &UnixClock, clock: &dyn Clock) -> Result<f64, String> {
    let sample = phc_sample(|| phc_reading(phc))?;
    #[allow(clippy::cast_precision_loss, reason = "an offset, not a date")]
    let offset = sample.offset as f64 * 1e-9;
    let middle = u128::try_from(sample.middle).map_err(|_| String::from("time before 1970"))?;
    let seconds =
        u64::try_from(middle / 1_000_000_000).map_err(|_| String::from("time out of range"))?;
    let nanos = u32::try_from(middle % 1_000_000_000).unwrap_or(0);
    ours_offset(offset, unix_time(seconds, nanos)?, clock)
}

/// One sample of a PHC against another clock: the mean of the
/// [`PHC_READINGS`] readings (from `read`) whose windows are within
/// [`PHC_WINDOW_FACTOR`] of the narrowest (`window` is then the widest
/// window kept).
pub(crate) fn phc_sample(
    mut read: impl FnMut() -> Result<PhcReading, String>,
) -> Result<PhcReading, String> {
    let mut readings = [PhcReading::default(); PHC_READINGS];
    for reading in &mut readings {
        *reading = read()?;
    }
    readings.sort_unstable_by_key(|reading| reading.window);
    let narrowest = readings.first().map_or(0, |reading| reading.window).max(0);
    let within = readings
        .iter()
        .take_while(|reading| reading.window <= narrowest.saturating_mul(PHC_WINDOW_FACTOR))
        .count()
        .max(1);
    let kept = readings.get(..within).unwrap_or(&readings);
    let count = i128::try_from(kept.len()).unwrap_or(1).max(1);
    Ok(PhcReading {
        window: kept.last().map_or(0, |reading| reading.window),
        offset: kept.iter().map(|reading| reading.offset).sum::<i128>() / count,
        middle: kept.iter().map(|reading| reading.middle).sum::<i128>() / count,
    })
}

/// One PHC reading, in nanoseconds: the other clock's window around the
/// device read, the device minus the window's middle, and that middle
/// (of the Unix epoch for the system clock).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PhcReading {
    pub(crate) window: i128,
    pub(crate) offset: i128,
    pub(crate) middle: i128,
}

/// Reads the PHC once (`PTP_SYS_OFFSET` through `clock-steering`).
fn phc_reading(phc: &UnixClock) -> Result<PhcReading, String> {
    let (before, device, after) = phc.system_offset().map_err(|error| error.to_string())?;
    // In whole nanoseconds: seconds of the epoch as f64 would keep only
    // a quarter of a microsecond.
    let nanos =
        |t: clock_steering::Timestamp| i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
    let middle = (nanos(before) + nanos(after)) / 2;
    Ok(PhcReading {
        window: nanos(after) - nanos(before),
        offset: nanos(device) - middle,
        middle,
    })
}

/// `seconds`.`nanos` of the Unix epoch as a system time.
fn unix_time(seconds: u64, nanos: u32) -> Result<SystemTime, String> {
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::new(seconds, nanos))
        .ok_or_else(|| String::from("time out of range"))
}

/// `system_offset` (true time minus the system clock when that read
/// `realtime`) as our clock's offset: the model clock may differ from the
/// system's.
fn ours_offset(system_offset: f64, realtime: SystemTime, clock: &dyn Clock) -> Result<f64, String> {
    let ours = clock
        .reading_at_realtime(realtime)
        .map_err(|error| error.to_string())?;
    let system = Date::try_from(realtime).map_err(|error| error.to_string())?;
    let ours_behind = system
        .checked_duration_since(ours)
        .ok_or_else(|| String::from("our clock is 68 years from the system's"))?
        .to_seconds_f64();
    Ok(system_offset + ours_behind)
}

/// Binds the SOCK socket at `path`, replacing a stale socket; refuses to
/// replace anything else.
fn bind(path: &Path) -> io::Result<UnixDatagram> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let socket = UnixDatagram::bind(path)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// One SOCK record as our clock's offset (true time minus our clock at
/// the record's moment) and its leap indicator.
fn sock_offset(
    record: &[u8],
    pps: bool,
    clock: &dyn Clock,
) -> Result<(f64, Option<LeapIndicator>), String> {
    let sample = SockSample::parse(record).map_err(|error| error.to_string())?;
    if sample.pulse && !pps {
        return Err(String::from(
            "a pulse (PPS) record on a reference clock without pps",
        ));
    }
    let seconds = u64::try_from(sample.seconds).map_err(|_| String::from("negative time"))?;
    let realtime = unix_time(seconds, sample.micros.saturating_mul(1_000))?;
    check_record_time(realtime, SystemTime::now())?;
    Ok((
        ours_offset(sample.offset, realtime, clock)?,
        Some(sample.leap),
    ))
}

/// How far ahead of the system clock a SOCK record's time may be: gpsd
/// stamps a record with the system clock when the event happened, so any
/// later time is a writer's error (a clock of its own, a forged record).
const SOCK_MAX_AHEAD: Duration = Duration::from_secs(1);

/// How old a SOCK record may be: gpsd writes within a second of the event
/// (the NMEA sentence, the pulse); an older record is stale (a writer
/// that stalled, a replay), and is not taken as a sample of now.
const SOCK_MAX_AGE: Duration = Duration::from_secs(4);

/// Refuses a record whose time (on the system clock) lies more than
/// [`SOCK_MAX_AHEAD`] after `now` or more than [`SOCK_MAX_AGE`] before
/// it.
fn check_record_time(time: SystemTime, now: SystemTime) -> Result<(), String> {
    match time.duration_since(now) {
        Ok(ahead) if ahead > SOCK_MAX_AHEAD => Err(format!(
            "a record {:.1} s in the future of the system clock",
            ahead.as_secs_f64()
        )),
        Ok(_) => Ok(()),
        Err(behind) if behind.duration() > SOCK_MAX_AGE => Err(format!(
            "a stale record, {:.1} s old",
            behind.duration().as_secs_f64()
        )),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phc_sample_averages_every_reading_as_good_as_the_best() {
        // Windows in ns; a reading delayed on the bus (5 us, 20 us) is off
        // by half its extra delay and is left out; the eight alike are
        // averaged, not the narrowest five.
        let windows = [1000, 1100, 900, 5000, 950, 1050, 980, 20_000, 1000, 990];
        let mut next = windows.iter().enumerate();
        let sample = phc_sample(|| {
            let (i, &window) = next.next().ok_or_else(|| String::from("no more"))?;
            let i = i128::try_from(i).map_err(|_| String::from("index"))?;
            Ok(PhcReading {
                window,
                offset: 100 + (window - 1000) / 2 + if i % 2 == 0 { 10 } else { -10 },
                middle: 1_000_000 * i,
            })
        })
        .unwrap();
        assert_eq!(sample.window, 1100);
        // The eight within 2 x 900 ns: 110, 140, 60, 85, 115, 100, 110, 85.
        assert_eq!(sample.offset, 805 / 8);
        // All alike: all ten.
        let mut count = 0;
        let sample = phc_sample(|| {
            count += 1;
            Ok(PhcReading {
                window: 1000,
                offset: count,
                middle: 0,
            })
        })
        .unwrap();
        assert_eq!(sample.offset, 55 / 10);
        // A failed read fails the sample.
        assert!(phc_sample(|| Err(String::from("gone"))).is_err());
    }

    #[test]
    fn records_from_the_future_or_stale_ones_are_refused() {
        let now = SystemTime::UNIX_EPOCH + Duration::new(1_800_000_000, 500_000_000);
        let at = |seconds: u64, nanos: u32| {
            unix_time(seconds, nanos).and_then(|time| check_record_time(time, now))
        };
        assert!(at(1_800_000_000, 500_000_000).is_ok());
        // Within a second ahead (clock granularity) and 4 s behind.
        assert!(at(1_800_000_001, 400_000_000).is_ok());
        assert!(at(1_799_999_996, 600_000_000).is_ok());
        let ahead = at(1_800_000_010, 0).unwrap_err();
        assert!(ahead.contains("future"), "{ahead}");
        let stale = at(1_799_999_000, 0).unwrap_err();
        assert!(stale.contains("stale"), "{stale}");
        assert!(at(u64::MAX, 0).is_err());
    }
}
