//! The drift file: the frequency correction in ppm as a decimal number,
//! read at start and written every hour and at exit, as ntpd keeps its
//! own. chronyd's files are read too: they hold two numbers, the clock's
//! own frequency error in ppm (the correction with the opposite sign) and
//! its skew, the error's uncertainty in ppm, which tells how far the
//! number can be trusted. The text is `ntp-discipline`'s
//! [`DriftFile`](ntp_discipline::DriftFile) (fuzzed there); this module
//! reads and writes the file.

use std::io;
use std::path::Path;

use crate::files::write_atomically;

#[cfg(doc)]
use crate::clock::TICK_MAX_RATE;

/// How often the drift file is written while running, seconds (ntpd and
/// chronyd: every hour).
pub(crate) const WRITE_INTERVAL: f64 = 3600.0;

/// What a drift file says: `ntp-discipline`'s [`DriftFile`].
pub(crate) use ntp_discipline::DriftFile as Drift;

/// The drift file's frequency, seconds per second; `Ok(None)` when there
/// is no file yet.
///
/// # Errors
///
/// Unreadable file, or a file that is neither one number (ntpd's and
/// ours) nor two (chronyd's) with the frequency within ±`max_rate` (the
/// clock's range: [`TICK_MAX_RATE`] with the tick length) and a positive
/// skew.
pub(crate) fn read(path: &Path, max_rate: f64) -> io::Result<Option<Drift>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    Drift::parse(&text, max_rate).map(Some).map_err(|error| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: {error} (a frequency in ppm within the clock's ±{} ppm, and for chronyd's form a skew)",
                path.display(),
                max_rate * 1e6
            ),
        )
    })
}

/// Writes `frequency` (seconds per second) as ppm, mode 0644, with
/// [`write_atomically`]: whole or not at all, never through a planted
/// link.
///
/// # Errors
///
/// As [`write_atomically`].
pub(crate) fn write(path: &Path, frequency: f64) -> io::Result<()> {
    let text = Drift {
        frequency,
        sd: None,
    }
    .to_string();
    write_atomically(path, text.as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, max_rate: f64) -> Option<Drift> {
        Drift::parse(text, max_rate).ok()
    }
    use crate::clock::{FREQUENCY_ONLY_MAX_RATE, TICK_MAX_RATE};

    #[test]
    fn parses_ntpd_and_chronyd_files() {
        let near = |got: Option<Drift>, want: f64, sd: Option<f64>| {
            got.is_some_and(|g| {
                (g.frequency - want).abs() < 1e-15
                    && match (g.sd, sd) {
                        (Some(a), Some(b)) => (a - b).abs() < 1e-15,
                        (None, None) => true,
                        _ => false,
                    }
            })
        };
        // ntpd's form: the correction.
        assert!(near(parse("12.5\n", TICK_MAX_RATE), 12.5e-6, None));
        // chronyd's: the clock's error (fast by 3.25 ppm: a correction of
        // -3.25 ppm) and the skew.
        assert!(near(
            parse("  3.25 0.016\n", TICK_MAX_RATE),
            -3.25e-6,
            Some(0.016e-6)
        ));
        assert!(near(parse("-100 1.0", TICK_MAX_RATE), 100e-6, Some(1e-6)));
        assert_eq!(parse("", TICK_MAX_RATE), None);
        assert_eq!(parse("abc", TICK_MAX_RATE), None);
        assert_eq!(parse("1 abc", TICK_MAX_RATE), None);
        assert_eq!(parse("1 0", TICK_MAX_RATE), None);
        assert_eq!(parse("1 -2", TICK_MAX_RATE), None);
        assert_eq!(parse("1 2 3", TICK_MAX_RATE), None);
        // Within the clock's range: the tick's ±10 % (100 000 ppm), or
        // ADJ_FREQUENCY's ±500 ppm alone.
        assert!(near(parse("600", TICK_MAX_RATE), 600e-6, None));
        assert_eq!(parse("600", FREQUENCY_ONLY_MAX_RATE), None);
        assert!(near(parse("-500", FREQUENCY_ONLY_MAX_RATE), -500e-6, None));
        assert!(near(parse("-50000", TICK_MAX_RATE), -0.05, None));
        assert_eq!(parse("100001", TICK_MAX_RATE), None);
        assert_eq!(parse("NaN", TICK_MAX_RATE), None);
    }

    #[test]
    fn round_trip_through_a_file() {
        let dir = std::env::temp_dir().join(format!("ntp-daemon-drift-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| unreachable!("{e}"));
        let path = dir.join("drift");
        assert_eq!(read(&path, TICK_MAX_RATE).ok(), Some(None));
        write(&path, -17.125e-6).unwrap_or_else(|e| unreachable!("{e}"));
        let back = read(&path, TICK_MAX_RATE)
            .ok()
            .flatten()
            .map_or(0.0, |d| d.frequency);
        assert!((back + 17.125e-6).abs() < 1e-12, "{back}");
        // A bad file says why.
        for (text, why) in [
            ("garbage", "not a number"),
            ("1 2 3", "not one number"),
            ("100001", "beyond the clock's range"),
            ("1 0", "skew not positive"),
        ] {
            std::fs::write(&path, text).unwrap_or_else(|e| unreachable!("{e}"));
            let error = read(&path, TICK_MAX_RATE).err().map(|e| e.to_string());
            assert!(
                error.as_deref().is_some_and(|e| e.contains(why)),
                "{text}: {error:?}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_link_planted_at_the_temporary_file_is_not_followed() {
        let dir = std::env::temp_dir().join(format!("ntp-daemon-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| unreachable!("{e}"));
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious\n").unwrap_or_else(|e| unreachable!("{e}"));
        let path = dir.join("drift");
        let planted = dir.join("drift.tmp");
        std::os::unix::fs::symlink(&victim, &planted).unwrap_or_else(|e| unreachable!("{e}"));
        write(&path, 4.5e-6).unwrap_or_else(|e| unreachable!("{e}"));
        // The target is untouched, the link gone, the drift file written.
        assert_eq!(
            std::fs::read_to_string(&victim).ok().as_deref(),
            Some("precious\n")
        );
        assert!(std::fs::symlink_metadata(&planted).is_err());
        let back = read(&path, TICK_MAX_RATE).ok().flatten();
        assert!(back.is_some_and(|d| (d.frequency - 4.5e-6).abs() < 1e-12));
        // A link at the drift file itself is replaced, not followed.
        std::fs::remove_file(&path).unwrap_or_else(|e| unreachable!("{e}"));
        std::os::unix::fs::symlink(&victim, &path).unwrap_or_else(|e| unreachable!("{e}"));
        write(&path, 1e-6).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            std::fs::read_to_string(&victim).ok().as_deref(),
            Some("precious\n")
        );
        assert!(std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
