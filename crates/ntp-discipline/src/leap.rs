//! Leap second scheduling (RFC 5905, sections 7.3 and 9.2: the leap
//! indicator warns of "an impending leap second to be inserted or deleted
//! in the last minute of the current month").

use core::fmt;

use ntp_proto::{Date, LeapIndicator, NtpDuration, UtcDateTime};

/// Whether a leap second is inserted or deleted (exhaustive: there is no
/// third kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum LeapKind {
    /// The last minute of the day has 61 seconds: 23:59:60 is inserted
    /// (leap indicator 1).
    Insert,
    /// The last minute of the day has 59 seconds: 23:59:59 is left out
    /// (leap indicator 2).
    Delete,
}

impl LeapKind {
    /// The kind a leap indicator announces, if any.
    #[must_use]
    pub const fn from_indicator(leap: LeapIndicator) -> Option<Self> {
        match leap {
            LeapIndicator::InsertSecond => Some(Self::Insert),
            LeapIndicator::DeleteSecond => Some(Self::Delete),
            LeapIndicator::NoWarning | LeapIndicator::Unsynchronized => None,
        }
    }
}

/// A scheduled leap second: what to do to the clock, and at which reading
/// of it.
///
/// The local clock keeps the NTP timescale, in which every day has 86 400
/// seconds (RFC 5905, section 6), so a leap second is applied as a one
/// second step at a precise moment:
///
/// - [`LeapKind::Insert`]: [`at`](Self::at) is the start of the UTC second
///   23:59:60 of the last day of June or December, which the NTP timescale
///   still calls 00:00:00 of the next day. Step the clock by
///   [`step`](Self::step) = −1 s there: it reads 23:59:59 once more (that
///   is the leap second), then 00:00:00 of the next day one second later.
/// - [`LeapKind::Delete`]: [`at`](Self::at) is 23:59:59 of the last day,
///   the second UTC leaves out. Step the clock by +1 s there, so that it
///   reads 00:00:00 of the next day.
///
/// Displays as the UTC label of the affected second:
/// `insert 2016-12-31T23:59:60Z`, `delete 2015-06-30T23:59:59Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LeapSecond {
    /// Insertion or deletion.
    pub kind: LeapKind,
    /// The reading of the local clock (NTP timescale, no leap seconds) at
    /// which to apply [`step`](Self::step).
    pub at: Date,
}

impl LeapSecond {
    /// The step to apply at [`at`](Self::at): −1 s for an insertion, +1 s
    /// for a deletion.
    #[must_use]
    pub const fn step(&self) -> NtpDuration {
        match self.kind {
            LeapKind::Insert => NtpDuration::from_seconds(-1),
            LeapKind::Delete => NtpDuration::ONE_SECOND,
        }
    }

    /// The leap second announced by `leap` at the local time `now`, if it
    /// may be armed: the indicator announces an insertion or deletion, the
    /// UTC month of `now` is June or December, and the leap moment of that
    /// month's end is still ahead of `now`. Indicators seen in any other
    /// month are ignored: leap seconds happen only at the end of June or
    /// December (ITU-R TF.460, as RFC 5905 section 7.3 lets a server
    /// announce them during the whole month).
    #[must_use]
    pub fn schedule(leap: LeapIndicator, now: Date) -> Option<Self> {
        let kind = LeapKind::from_indicator(leap)?;
        let utc = now.to_utc();
        let (year, month) = match utc.month {
            6 => (utc.year, 7),
            12 => (utc.year.checked_add(1)?, 1),
            _ => return None,
        };
        let next_month = UtcDateTime::new(year, month, 1, 0, 0, 0, 0).ok()?;
        let midnight = Date::from_utc(next_month).ok()?;
        let at = match kind {
            LeapKind::Insert => midnight,
            LeapKind::Delete => midnight.checked_sub(NtpDuration::ONE_SECOND)?,
        };
        (now < at).then_some(Self { kind, at })
    }
}

impl fmt::Display for LeapSecond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The last regular second of the day, 23:59:59 on the NTP timescale.
        let last = match self.kind {
            LeapKind::Insert => self.at.checked_sub(NtpDuration::ONE_SECOND),
            LeapKind::Delete => Some(self.at),
        };
        let Some(last) = last else {
            return write!(f, "{:?} at {}", self.kind, self.at);
        };
        let utc = last.to_utc();
        let (name, second) = match self.kind {
            LeapKind::Insert => ("insert", 60),
            LeapKind::Delete => ("delete", 59),
        };
        write!(
            f,
            "{name} {:04}-{:02}-{:02}T23:59:{second}Z",
            utc.year, utc.month, utc.day
        )
    }
}

/// A change in the leap second schedule, reported through
/// [`Output::Leap`](crate::Output::Leap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum LeapEvent {
    /// A leap second was armed (or changed): advance notice, nothing to do
    /// yet. A caller whose kernel applies leap seconds by itself may hand it
    /// over now.
    Armed(LeapSecond),
    /// The sources withdrew the announcement before the leap moment: the
    /// armed leap second is cancelled.
    Disarmed,
    /// The leap moment has come: step the clock by
    /// [`LeapSecond::step`] now. Reported once, by the
    /// [`handle_timeout`](crate::Discipline::handle_timeout) at
    /// [`LeapSecond::at`].
    Apply(LeapSecond),
}

impl fmt::Display for LeapEvent {
    /// A short text for logs: `armed (+1 s)`, `cancelled`, `now: step -1 s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Armed(second) => write!(f, "armed ({:+.0} s)", second.step().to_seconds_f64()),
            Self::Disarmed => f.write_str("cancelled"),
            Self::Apply(second) => write!(f, "now: step {:+.0} s", second.step().to_seconds_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    fn date(year: i64, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Date {
        Date::from_utc(UtcDateTime::new(year, month, day, hour, minute, second, 0).unwrap())
            .unwrap()
    }

    #[test]
    fn insertion_in_june_is_the_second_after_june_30_23_59_59() {
        let leap = LeapSecond::schedule(LeapIndicator::InsertSecond, date(2015, 6, 30, 12, 0, 0));
        let leap = leap.unwrap();
        assert_eq!(leap.kind, LeapKind::Insert);
        assert_eq!(leap.at, date(2015, 7, 1, 0, 0, 0));
        assert_eq!(leap.step(), NtpDuration::from_seconds(-1));
        assert_eq!(leap.to_string(), "insert 2015-06-30T23:59:60Z");
        assert_eq!(LeapEvent::Armed(leap).to_string(), "armed (-1 s)");
        assert_eq!(LeapEvent::Apply(leap).to_string(), "now: step -1 s");
        assert_eq!(LeapEvent::Disarmed.to_string(), "cancelled");
    }

    #[test]
    fn insertion_in_december_rolls_over_the_year() {
        let leap =
            LeapSecond::schedule(LeapIndicator::InsertSecond, date(2016, 12, 1, 0, 0, 0)).unwrap();
        assert_eq!(leap.at, date(2017, 1, 1, 0, 0, 0));
        assert_eq!(leap.to_string(), "insert 2016-12-31T23:59:60Z");
    }

    #[test]
    fn deletion_skips_23_59_59() {
        let leap =
            LeapSecond::schedule(LeapIndicator::DeleteSecond, date(2030, 6, 30, 23, 0, 0)).unwrap();
        assert_eq!(leap.kind, LeapKind::Delete);
        assert_eq!(leap.at, date(2030, 6, 30, 23, 59, 59));
        assert_eq!(leap.step(), NtpDuration::ONE_SECOND);
        assert_eq!(leap.to_string(), "delete 2030-06-30T23:59:59Z");
        // Once 23:59:59 has begun it is too late.
        assert_eq!(
            LeapSecond::schedule(LeapIndicator::DeleteSecond, date(2030, 6, 30, 23, 59, 59)),
            None
        );
    }

    #[test]
    fn indicators_outside_june_and_december_are_ignored() {
        for month in [1, 2, 3, 4, 5, 7, 8, 9, 10, 11] {
            let now = date(2016, month, 28, 12, 0, 0);
            assert_eq!(LeapSecond::schedule(LeapIndicator::InsertSecond, now), None);
            assert_eq!(LeapSecond::schedule(LeapIndicator::DeleteSecond, now), None);
        }
        // A stale indicator just after the leap (1 July) is ignored too.
        assert_eq!(
            LeapSecond::schedule(LeapIndicator::InsertSecond, date(2015, 7, 1, 0, 0, 1)),
            None
        );
    }

    #[test]
    fn no_warning_and_unsynchronized_schedule_nothing() {
        let now = date(2016, 12, 31, 0, 0, 0);
        assert_eq!(LeapSecond::schedule(LeapIndicator::NoWarning, now), None);
        assert_eq!(
            LeapSecond::schedule(LeapIndicator::Unsynchronized, now),
            None
        );
    }
}
