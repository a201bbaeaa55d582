//! Limits that keep an NTS-KE service up for good clients while others
//! hold connections open (RFC 8915 section 4.1.3 leaves the server's
//! timeouts to the implementation; section 8 asks servers to resist
//! denial of service):
//!
//! - at most [`MAX_CONNECTIONS`] exchanges at a time (chronyd's default
//!   `maxntsconnections`), and at most [`MAX_PER_ADDRESS`] from one IPv4
//!   address or one IPv6 /64 ([`ConnectionSlots`]), so that a few hosts
//!   cannot take every slot;
//! - [`IO_TIMEOUT`] per read or write, so an idle peer loses its slot
//!   within a second, and [`EXCHANGE_TIMEOUT`] in all, so a slow one (a
//!   byte now and then) does within a few.
//!
//! A server holds a [`Slot`] for each connection it serves; dropping the
//! slot gives it back.

use core::net::{IpAddr, Ipv6Addr};
use core::time::Duration;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The most NTS-KE connections served at once: 100, chronyd's default
/// `maxntsconnections`.
pub const MAX_CONNECTIONS: usize = 100;

/// The most NTS-KE connections served at once from one IPv4 address or
/// one IPv6 /64: 8. A client needs one; a network behind one NAT address
/// starting many clients at the same moment gets eight at a time, and the
/// rest retry.
pub const MAX_PER_ADDRESS: usize = 8;

/// The limit of one read or write on an NTS-KE connection: 1 s. The TLS
/// 1.3 handshake and the NTS-KE request take two round trips (section 4),
/// well under a second across the world; a peer silent for a second is
/// idle, and its slot goes to someone else.
pub const IO_TIMEOUT: Duration = Duration::from_secs(1);

/// The limit of a whole NTS-KE exchange, plus one read or write: 3 s.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a connection was refused a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The total is reached.
    Total,
    /// The peer's address (or /64) has its share.
    PerAddress,
}

/// The connections under way, in all and per client address (IPv4) or
/// /64 (IPv6). The map holds only addresses with connections under way,
/// so at most `total` entries.
#[derive(Debug)]
pub struct ConnectionSlots {
    total: usize,
    per_address: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// One connection's slot, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<ConnectionSlots>,
    key: IpAddr,
}

impl Default for ConnectionSlots {
    /// [`MAX_CONNECTIONS`] in all, [`MAX_PER_ADDRESS`] per address.
    fn default() -> Self {
        Self::new(MAX_CONNECTIONS, MAX_PER_ADDRESS)
    }
}

impl ConnectionSlots {
    /// At most `total` connections, `per_address` from one address.
    #[must_use]
    pub fn new(total: usize, per_address: usize) -> Self {
        Self {
            total,
            per_address,
            counts: Mutex::new(Counts::default()),
        }
    }

    /// A slot for a connection from `peer`, or why not.
    ///
    /// # Errors
    ///
    /// The [`Refusal`]: the total or the peer's share is reached.
    pub fn acquire(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refusal> {
        let key = address_key(peer);
        let mut counts = self.counts.lock().map_err(|_| Refusal::Total)?;
        if counts.total >= self.total {
            return Err(Refusal::Total);
        }
        let from_peer = counts.per_address.entry(key).or_insert(0);
        if *from_peer >= self.per_address {
            return Err(Refusal::PerAddress);
        }
        *from_peer += 1;
        counts.total += 1;
        Ok(Slot {
            slots: Arc::clone(self),
            key,
        })
    }

    /// Connections under way.
    #[must_use]
    pub fn in_use(&self) -> usize {
        self.counts.lock().map_or(0, |counts| counts.total)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Ok(mut counts) = self.slots.counts.lock() else {
            return;
        };
        counts.total = counts.total.saturating_sub(1);
        if let Some(count) = counts.per_address.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.per_address.remove(&self.key);
            }
        }
    }
}

/// The address a per-address limit counts by: an IPv4 address (or an
/// IPv4-mapped IPv6 one) itself, an IPv6 address's /64, which one host or
/// one customer's network usually holds whole.
#[must_use]
pub fn address_key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use std::format;
    use std::vec::Vec;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn slots_cap_each_address_and_the_total() {
        let slots = Arc::new(ConnectionSlots::default());
        let one: Vec<Slot> = (0..MAX_PER_ADDRESS)
            .filter_map(|_| slots.acquire(ip("192.0.2.1")).ok())
            .collect();
        assert_eq!(one.len(), MAX_PER_ADDRESS);
        assert_eq!(
            slots.acquire(ip("192.0.2.1")).err(),
            Some(Refusal::PerAddress)
        );
        // Another address still gets in; the same one as IPv4-mapped IPv6
        // does not.
        assert!(slots.acquire(ip("192.0.2.2")).is_ok());
        assert_eq!(
            slots.acquire(ip("::ffff:192.0.2.1")).err(),
            Some(Refusal::PerAddress)
        );
        // One /64 counts as one address.
        let v6: Vec<Slot> = (0..MAX_PER_ADDRESS)
            .filter_map(|i| slots.acquire(ip(&format!("2001:db8::{:x}", i + 1))).ok())
            .collect();
        assert_eq!(v6.len(), MAX_PER_ADDRESS);
        assert_eq!(
            slots.acquire(ip("2001:db8::ffff:1")).err(),
            Some(Refusal::PerAddress)
        );
        assert!(slots.acquire(ip("2001:db8:0:1::1")).is_ok());
        // Giving slots back frees them.
        drop(one);
        assert!(slots.acquire(ip("192.0.2.1")).is_ok());
        // The total.
        drop(v6);
        let many: Vec<Slot> = (0..=255u8)
            .flat_map(|a| (0..4).map(move |_| a))
            .filter_map(|a| slots.acquire(IpAddr::from([198, 51, 100, a])).ok())
            .collect();
        assert_eq!(many.len(), MAX_CONNECTIONS);
        assert_eq!(slots.in_use(), MAX_CONNECTIONS);
        assert_eq!(slots.acquire(ip("203.0.113.9")).err(), Some(Refusal::Total));
        drop(many);
        assert_eq!(slots.in_use(), 0);
        let counts = slots.counts.lock().unwrap_or_else(|_| unreachable!());
        assert!(counts.per_address.is_empty());
    }
}
