//! The peer table, as `ntpq -p` prints it.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddr;

use ntp_proto::{KissCode, RefId, Stratum};
use ntp_select::Tally;
use rand_core::RngCore;

use crate::constants::poll_interval;
use crate::{Instant, SourceId, System};

/// One line of the peer table: the columns of `ntpq -p`.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct PeerRow {
    /// The source.
    pub id: SourceId,
    /// The tally code of the last selection (`*` system peer, `+`
    /// candidate, `x` falseticker, ...).
    pub tally: Tally,
    /// The server's address.
    pub remote: SocketAddr,
    /// Its reference id as `ntpq` shows it (`.GPS.`, `192.0.2.1`), or the
    /// kiss code that stopped it (`.DENY.`).
    pub refid: String,
    /// Its stratum (16 before the first reply).
    pub stratum: u8,
    /// Seconds since the last accepted reply.
    pub when: Option<u64>,
    /// The poll interval, seconds.
    pub poll: u64,
    /// The reach register (printed in octal).
    pub reach: u8,
    /// Peer delay, milliseconds (as `ntpq -p` shows it; the crate's other
    /// floating-point times are in seconds, see the crate docs on units).
    pub delay_ms: Option<f64>,
    /// Peer offset, milliseconds.
    pub offset_ms: Option<f64>,
    /// Peer jitter, milliseconds.
    pub jitter_ms: Option<f64>,
}

/// The peer table, one [`PeerRow`] per source. [`Display`](fmt::Display)
/// prints it like `ntpq -p`:
///
/// ```text
///      remote                refid      st t when poll reach   delay   offset  jitter
/// =====================================================================================
/// *127.0.0.1:11123       .LOCL.          1 u    3    4  377    0.081   -0.012   0.004
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct PeerTable {
    /// The rows, in the order the sources were added.
    pub rows: Vec<PeerRow>,
}

impl PeerRow {
    fn new(system_tally: Tally, source: &crate::Source, now: Instant) -> Self {
        let measurement = source.last_measurement();
        let stats = source.peer_stats();
        // The peer variables where there are some (a reference clock has
        // no measurement), else the last reply's header.
        let header = stats
            .map(|s| (s.stratum, s.reference_id))
            .or_else(|| measurement.map(|m| (m.stratum, m.reference_id)));
        let stratum = header.map_or(Stratum::UNSYNCHRONIZED, |(stratum, _)| stratum);
        // A reference clock (no address) shows its refid as text whatever
        // its stratum; a server above stratum 1 shows an address.
        let refclock = source.address().ip().is_unspecified() && measurement.is_none();
        let refid = match source.stopped_by() {
            Some(code) => kiss_text(code),
            None => header.map_or_else(
                || RefId::INIT.display(Stratum::UNSYNCHRONIZED).to_string(),
                |(stratum, refid)| {
                    let shown = if refclock { Stratum::PRIMARY } else { stratum };
                    refid.display(shown).to_string()
                },
            ),
        };
        let millis = |seconds: f64| seconds * 1e3;
        Self {
            id: source.id(),
            tally: system_tally,
            remote: source.address(),
            refid,
            stratum: stratum.get(),
            when: source
                .last_received()
                .map(|at| now.saturating_duration_since(at).as_secs()),
            poll: poll_interval(source.poll()).as_secs(),
            reach: source.reach(),
            delay_ms: stats.map(|s| millis(s.delay)),
            offset_ms: stats.map(|s| millis(s.offset)),
            jitter_ms: stats.map(|s| millis(s.jitter)),
        }
    }
}

fn kiss_text(code: KissCode) -> String {
    RefId::from_kiss_code(code)
        .display(Stratum::UNSPECIFIED)
        .to_string()
}

impl<R: RngCore> System<R> {
    /// The peer table at `now` (allocates; meant for display, not for the
    /// packet path).
    #[must_use]
    pub fn peer_table(&self, now: Instant) -> PeerTable {
        PeerTable {
            rows: self
                .slots()
                .iter()
                .map(|slot| PeerRow::new(slot.tally, &slot.source, now))
                .collect(),
        }
    }
}

const HEADER: &str =
    "     remote                refid      st t when poll reach   delay   offset  jitter";

impl fmt::Display for PeerRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Opt(Option<f64>);
        impl fmt::Display for Opt {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    Some(value) => write!(f, "{value:>8.3}"),
                    None => write!(f, "{:>8}", "-"),
                }
            }
        }
        struct When(Option<u64>);
        impl fmt::Display for When {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    Some(value) => write!(f, "{value:>4}"),
                    None => write!(f, "{:>4}", "-"),
                }
            }
        }
        write!(
            f,
            "{}{:<21} {:<15} {:>2} u {} {:>4} {:>5o} {} {} {}",
            self.tally.code(),
            self.remote.to_string(),
            self.refid,
            self.stratum,
            When(self.when),
            self.poll,
            self.reach,
            Opt(self.delay_ms),
            Opt(self.offset_ms),
            Opt(self.jitter_ms),
        )
    }
}

impl fmt::Display for PeerTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{HEADER}")?;
        writeln!(f, "{}", "=".repeat(HEADER.len()))?;
        for row in &self.rows {
            writeln!(f, "{row}")?;
        }
        Ok(())
    }
}
