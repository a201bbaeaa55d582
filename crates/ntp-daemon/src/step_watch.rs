//! Steps of the clock made by somebody else, told from elapsed time.
//!
//! An operator's `date -s`, another time program or a resumed virtual
//! machine can step the system clock under the daemon. The measurements
//! show the offset such a step makes, but the clock discipline reads its
//! elapsed time off the same clock: without being told, a step of hours
//! forward reads as hours of slewing and frequency correction applied
//! (`ntp_client::System::handle_clock_stepped`). The monotonic clock is
//! never stepped; the disciplined clock differs from it only by its rate
//! (at most the clock's range, 10 % with the tick length) and by steps,
//! so a change of the difference beyond what the rate explains is a step.
//! The daemon's own steps (the discipline's and leap seconds) are not
//! reported: after applying one it calls [`StepWatch::rebase`].

use ntp_client::Instant;
use ntp_client::ntp_proto::{Date, NtpDuration};

/// The smallest step reported, seconds: 1 ms, well above the clocks'
/// reading jitter; smaller steps of somebody else's are left to the
/// measurements, as any offset is.
pub(crate) const MIN_STEP: f64 = 1e-3;

/// The last pair of readings of the monotonic and the disciplined clock.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StepWatch {
    last: Option<(Instant, Date)>,
}

impl StepWatch {
    /// Forgets the last readings: the next [`observe`](Self::observe)
    /// starts afresh (after a step of the daemon's own).
    pub(crate) fn rebase(&mut self) {
        self.last = None;
    }

    /// Takes a pair of readings, `mono` and `wall`, and returns the step
    /// since the last pair that a clock running within `max_rate` of the
    /// monotonic one cannot explain, if any.
    pub(crate) fn observe(
        &mut self,
        mono: Instant,
        wall: Date,
        max_rate: f64,
    ) -> Option<NtpDuration> {
        let last = self.last.replace((mono, wall));
        let (last_mono, last_wall) = last?;
        let elapsed = mono.saturating_duration_since(last_mono).as_secs_f64();
        let read = wall.checked_duration_since(last_wall)?.to_seconds_f64();
        let step = read - elapsed;
        if step.abs() <= (elapsed * max_rate).max(MIN_STEP) {
            return None;
        }
        NtpDuration::from_seconds_f64(step).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall(seconds: f64) -> Date {
        Date::from_unix(1_764_547_200, 0)
            .unwrap()
            .checked_add(NtpDuration::from_seconds_f64(seconds).unwrap())
            .unwrap()
    }

    #[test]
    fn only_what_the_rate_cannot_explain_is_a_step() {
        let mut watch = StepWatch::default();
        let mono = |s: u64| Instant::from_secs(s);
        assert_eq!(watch.observe(mono(0), wall(0.0), 0.1), None);
        // 10 s with the clock 10 % fast: its rate, not a step.
        assert_eq!(watch.observe(mono(10), wall(11.0), 0.1), None);
        // Somebody steps it 10 000 s ahead.
        let step = watch.observe(mono(11), wall(10_012.0), 0.1).unwrap();
        assert!((step.to_seconds_f64() - 10_000.0).abs() < 1e-6, "{step:?}");
        // And 1 h back.
        let step = watch.observe(mono(12), wall(6_413.0), 0.1).unwrap();
        assert!((step.to_seconds_f64() + 3_600.0).abs() < 1e-6, "{step:?}");
        // After a step of the daemon's own, the watch starts afresh.
        watch.rebase();
        assert_eq!(watch.observe(mono(13), wall(0.0), 0.1), None);
        assert_eq!(watch.observe(mono(14), wall(1.0005), 0.0), None);
    }
}
