//! `--refclock KIND:ARGS`: a reference clock's device and options, as
//! chrony's `refclock` directive names them.

use std::path::PathBuf;

use ntp_client::{RefId, RefclockConfig, RefclockConfigError};

use crate::options::{ArgsError, Selection};

/// One `--refclock` and the selection flags that follow it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RefclockOption {
    /// As given.
    pub(crate) spec: String,
    /// The device and how to read it.
    pub(crate) driver: RefclockDriver,
    /// `refid=`, `poll=`, `filter=`, `delay=`, `offset=`, `precision=`,
    /// `stratum=`, `pps`.
    pub(crate) config: RefclockConfig,
    /// Whether `precision=` was given; without it the daemon sets the
    /// precision of its clock's readings (`clock::reading_precision`).
    pub(crate) precision_given: bool,
    /// The reference id as text (what `lock=` of a later one names).
    pub(crate) refid: String,
    /// `lock=REFID`: the reference clock given before that names the
    /// second of this PPS.
    pub(crate) lock: Option<String>,
    /// `--prefer`, `--trust`, `--require`, `--noselect`.
    pub(crate) selection: Selection,
}

/// How a reference clock is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RefclockDriver {
    /// chrony's socket protocol at this path (as gpsd writes it).
    Sock(PathBuf),
    /// A PTP hardware clock (`/dev/ptpN`).
    Phc(PathBuf),
    /// An RFC 2783 pulse per second (`/dev/ppsN`); `clear`: the clear
    /// edge marks the second instead of the assert edge.
    Pps { path: PathBuf, clear: bool },
}

impl RefclockOption {
    /// The configuration with the selection flags.
    pub(crate) fn config(&self) -> RefclockConfig {
        let mut config = self.config.clone();
        config.select = self.selection.options;
        config.noselect = self.selection.noselect;
        config
    }
}

/// Parses `SOCK:PATH`, `PHC:PATH` or `PPS:PATH[,clear]`: the driver and
/// its device, then the options, each after a comma: `refid=R`,
/// `poll=N`, `filter=N`, `delay=S`, `offset=S`, `precision=N`,
/// `stratum=N`, `pps`, `lock=R`.
///
/// # Errors
///
/// [`ArgsError::Bad`] naming the part that is wrong.
pub(crate) fn parse(text: &str) -> Result<RefclockOption, ArgsError> {
    let bad = |why: &str| ArgsError::Bad(format!("--refclock {text:?}: {why}"));
    let (kind, rest) = text
        .split_once(':')
        .ok_or_else(|| bad("not KIND:ARGS (SOCK:/run/chrony.ttyS0.sock)"))?;
    let mut parts = rest.split(',');
    let device = parts.next().unwrap_or_default();
    if device.is_empty() {
        return Err(bad("no device"));
    }
    let mut driver = match kind {
        "SOCK" => RefclockDriver::Sock(PathBuf::from(device)),
        "PHC" => RefclockDriver::Phc(PathBuf::from(device)),
        "PPS" => RefclockDriver::Pps {
            path: PathBuf::from(device),
            clear: false,
        },
        _ => return Err(bad("the driver must be SOCK, PHC or PPS")),
    };
    let mut config = RefclockConfig::default();
    let mut refid = String::from(kind);
    let mut lock = None;
    let mut precision_given = false;
    for part in parts {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let wrong = || bad(&format!("{key}={value:?}"));
        let number = || value.parse::<f64>().map_err(|_| wrong());
        let integer = || value.parse::<i64>().map_err(|_| wrong());
        match key {
            "refid" if (1..=4).contains(&value.len()) && value.is_ascii() => {
                value.clone_into(&mut refid);
            }
            "poll" => config.poll = i8::try_from(integer()?).map_err(|_| wrong())?,
            "filter" => config.filter = usize::try_from(integer()?).map_err(|_| wrong())?,
            "delay" => config.delay = number()?,
            "offset" => config.offset = number()?,
            "precision" => {
                config.precision = i8::try_from(integer()?).map_err(|_| wrong())?;
                precision_given = true;
            }
            "stratum" => config.stratum = u8::try_from(integer()?).map_err(|_| wrong())?,
            "pps" if value.is_empty() => config.pps = true,
            "clear" if value.is_empty() => match &mut driver {
                RefclockDriver::Pps { clear, .. } => *clear = true,
                _ => return Err(bad("clear is for a PPS device")),
            },
            "lock" if !value.is_empty() => lock = Some(value.to_owned()),
            _ => return Err(bad(&format!("unknown or bad option {part:?}"))),
        }
    }
    config.refid = RefId::from_ascii(refid.as_bytes()).ok_or_else(|| bad("refid"))?;
    // A PPS device gives pulses only.
    if matches!(driver, RefclockDriver::Pps { .. }) {
        config.pps = true;
    }
    if lock.is_some() && !config.pps {
        return Err(bad("lock= is for a pps reference clock"));
    }
    // The lock is resolved when the daemon starts.
    match config.validate() {
        Ok(()) | Err(RefclockConfigError::LockWithoutPps) => {}
        Err(error) => return Err(bad(&error.to_string())),
    }
    Ok(RefclockOption {
        spec: text.to_owned(),
        driver,
        config,
        precision_given,
        refid,
        lock,
        selection: Selection::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sock_with_chronys_options() {
        let option = parse("SOCK:/run/chrony.ttyS0.sock,refid=GPS,poll=3,delay=0.2,offset=0.1")
            .unwrap_or_else(|e| unreachable!("{e:?}"));
        assert_eq!(
            option.driver,
            RefclockDriver::Sock(PathBuf::from("/run/chrony.ttyS0.sock"))
        );
        assert_eq!(option.refid, "GPS");
        assert_eq!(option.config.poll, 3);
        assert!((option.config.delay - 0.2).abs() < 1e-12);
        assert!((option.config.offset - 0.1).abs() < 1e-12);
        // No precision given: the daemon sets its clock's.
        assert!(!option.precision_given);
        let precise =
            parse("PPS:/dev/pps0,precision=-22").unwrap_or_else(|e| unreachable!("{e:?}"));
        assert!(precise.precision_given);
        assert_eq!(precise.config.precision, -22);
        let pps = parse("SOCK:/run/chrony.pps0.sock,refid=PPS,pps,lock=GPS,stratum=1")
            .unwrap_or_else(|e| unreachable!("{e:?}"));
        assert!(pps.config.pps);
        assert_eq!(pps.lock.as_deref(), Some("GPS"));
        assert_eq!(pps.config.stratum, 1);
        // The default refid is the driver's name.
        assert_eq!(
            parse("SOCK:/x").map(|o| o.refid).ok().as_deref(),
            Some("SOCK")
        );
        for bad in [
            "SOCK",
            "SOCK:",
            "SHM:0",
            "PHC:",
            "SOCK:/x,refid=TOOLONG",
            "SOCK:/x,poll=-1",
            "SOCK:/x,filter=0",
            "SOCK:/x,delay=-1",
            "SOCK:/x,offset=nan",
            "SOCK:/x,stratum=16",
            "SOCK:/x,precision=-31",
            "SOCK:/x,precision=1",
            "SOCK:/x,lock=GPS",
            "SOCK:/x,bogus",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
