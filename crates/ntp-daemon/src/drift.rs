//! The drift file: the frequency correction in ppm as a decimal number,
//! read at start and written every hour and at exit, as ntpd and chronyd
//! keep theirs (chronyd's second number, the skew, is read past and not
//! written).

use std::io;
use std::path::Path;

use crate::clock::TICK_MAX_RATE;

/// How often the drift file is written while running, seconds (ntpd and
/// chronyd: every hour).
pub(crate) const WRITE_INTERVAL: f64 = 3600.0;

/// The frequency in the file, seconds per second; `Ok(None)` when there is
/// no file yet.
///
/// # Errors
///
/// Unreadable file, or a first number that is not a frequency within
/// ±[`TICK_MAX_RATE`] (10 %, the widest clock range; the caller checks
/// its own clock's).
pub(crate) fn read(path: &Path) -> io::Result<Option<f64>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    parse(&text)
        .map(Some)
        .ok_or_else(|| io::Error::other(format!("{}: not a frequency in ppm", path.display())))
}

fn parse(text: &str) -> Option<f64> {
    let ppm: f64 = text.split_whitespace().next()?.parse().ok()?;
    let frequency = ppm * 1e-6;
    (frequency.is_finite() && frequency.abs() <= TICK_MAX_RATE).then_some(frequency)
}

/// Writes `frequency` (seconds per second) as ppm, through a temporary
/// file and a rename so that a crash never leaves half a file.
///
/// # Errors
///
/// The file system's.
pub(crate) fn write(path: &Path, frequency: f64) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, format!("{:.6}\n", frequency * 1e6))?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ntpd_and_chronyd_files() {
        let near = |got: Option<f64>, want: f64| got.is_some_and(|g| (g - want).abs() < 1e-15);
        assert!(near(parse("12.5\n"), 12.5e-6));
        assert!(near(parse("  -3.25 0.016\n"), -3.25e-6));
        assert_eq!(parse(""), None);
        assert_eq!(parse("abc"), None);
        // Up to the tick's ±10 % (100 000 ppm), beyond ADJ_FREQUENCY's
        // ±500 ppm; the caller checks its own clock's range.
        assert!(near(parse("600"), 600e-6));
        assert!(near(parse("-50000"), -0.05));
        assert_eq!(parse("100001"), None);
        assert_eq!(parse("NaN"), None);
    }

    #[test]
    fn round_trip_through_a_file() {
        let dir = std::env::temp_dir().join(format!("ntp-daemon-drift-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| unreachable!("{e}"));
        let path = dir.join("drift");
        assert_eq!(read(&path).ok(), Some(None));
        write(&path, -17.125e-6).unwrap_or_else(|e| unreachable!("{e}"));
        let back = read(&path).ok().flatten().unwrap_or(0.0);
        assert!((back + 17.125e-6).abs() < 1e-12, "{back}");
        std::fs::write(&path, "garbage").unwrap_or_else(|e| unreachable!("{e}"));
        assert!(read(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
