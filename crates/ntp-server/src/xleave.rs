//! What the server remembers of its recent clients for the interleaved
//! client/server mode (RFC 9769, section 2): for each, the receive
//! timestamp of its last request and the transmit timestamp of the answer
//! to it, as the caller reported it after sending
//! ([`Server::transmitted`](crate::Server::transmitted)).
//!
//! A client asks for the interleaved mode by putting the receive timestamp
//! of our last answer to it into the origin timestamp of its request. When
//! that matches what we kept, and the transmit time of that answer is
//! known, the answer carries it: a timestamp taken when the previous
//! answer left (by the kernel or the network card), more exact than any
//! that can be written into a packet before it is sent.
//!
//! Memory is fixed at construction: a direct-mapped table of
//! [`ServerConfig::interleave_clients`](crate::ServerConfig::interleave_clients)
//! slots, indexed by a keyed hash (SipHash-1-3 under the rate limiter's
//! secret key) of the client's address, so that nobody can aim at another
//! client's slot. Eviction: a client whose slot another address takes
//! loses its state; its next request is answered in basic mode and it is
//! interleaved again from the one after. Clients are told apart by address
//! alone (as chronyd does): a client may change its source port at every
//! request, and clients behind one address translator share a slot.

use alloc::vec::Vec;
use core::hash::Hasher;
use core::net::IpAddr;

use ntp_proto::Timestamp;
use siphasher::sip::SipHasher13;

use crate::prefix::canonical_ip;

/// One client's last exchange.
#[derive(Clone, Copy, Debug)]
struct Slot {
    ip: IpAddr,
    /// Receive timestamp of its last request (T2).
    rx: Timestamp,
    /// Transmit timestamp of the answer to it (T3), once reported.
    tx: Option<Timestamp>,
}

/// The interleaved-mode state of recent clients.
#[derive(Clone, Debug)]
pub(crate) struct InterleaveTable {
    slots: Vec<Option<Slot>>,
    hasher: SipHasher13,
}

impl InterleaveTable {
    /// A table of `capacity` slots (none: the interleaved mode is off).
    pub(crate) fn new(capacity: usize, key: &[u8; 16]) -> Self {
        Self {
            slots: alloc::vec![None; capacity],
            hasher: SipHasher13::new_with_key(key),
        }
    }

    /// Heap octets held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Option<Slot>>()
    }

    fn index(&self, ip: IpAddr) -> Option<usize> {
        let len = self.slots.len();
        if len == 0 {
            return None;
        }
        let mut hasher = self.hasher;
        match ip {
            IpAddr::V4(v4) => hasher.write(&v4.octets()),
            IpAddr::V6(v6) => hasher.write(&v6.octets()),
        }
        let hash = hasher.finish();
        usize::try_from(hash % u64::try_from(len).unwrap_or(u64::MAX)).ok()
    }

    /// A request from `ip` received at `rx` with origin timestamp
    /// `origin`: returns the transmit timestamp of our previous answer to
    /// it if the request asks for the interleaved mode and we have that
    /// timestamp, and remembers `rx` as the client's last request (its
    /// answer's transmit time unknown until reported).
    ///
    /// The request asks for it when `origin` is the receive timestamp we
    /// kept for the client, not zero (a first request, or one from a
    /// client in basic mode that leaves the field empty) and not equal to
    /// the transmit timestamp we reported (a basic-mode client of RFC 5905
    /// puts our last transmit timestamp there, which can equal the
    /// receive timestamp only if the answer was never stamped).
    pub(crate) fn exchange(
        &mut self,
        ip: IpAddr,
        origin: Timestamp,
        rx: Timestamp,
    ) -> Option<Timestamp> {
        let ip = canonical_ip(ip);
        let slot = self.index(ip).and_then(|index| self.slots.get_mut(index))?;
        let previous = slot
            .filter(|kept| kept.ip == ip && origin != Timestamp::ZERO && origin == kept.rx)
            .and_then(|kept| kept.tx)
            .filter(|&tx| tx != origin);
        *slot = Some(Slot { ip, rx, tx: None });
        previous
    }

    /// The answer to the request from `ip` received at `rx` left at `tx`.
    /// Ignored unless that request is still the client's last one here.
    pub(crate) fn transmitted(&mut self, ip: IpAddr, rx: Timestamp, tx: Timestamp) {
        let ip = canonical_ip(ip);
        let Some(Some(slot)) = self.index(ip).and_then(|index| self.slots.get_mut(index)) else {
            return;
        };
        if slot.ip == ip && slot.rx == rx {
            slot.tx = Some(tx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn ts(seconds: u32) -> Timestamp {
        Timestamp::new(seconds, 0)
    }

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

    #[test]
    fn the_second_request_gets_the_first_answers_transmit_time() {
        let mut table = InterleaveTable::new(16, &[7; 16]);
        assert_eq!(table.exchange(CLIENT, Timestamp::ZERO, ts(10)), None);
        table.transmitted(CLIENT, ts(10), ts(11));
        assert_eq!(table.exchange(CLIENT, ts(10), ts(20)), Some(ts(11)));
        // Unreported: basic.
        assert_eq!(table.exchange(CLIENT, ts(20), ts(30)), None);
        // A report for an older request changes nothing.
        table.transmitted(CLIENT, ts(20), ts(21));
        assert_eq!(table.exchange(CLIENT, ts(30), ts(40)), None);
    }

    #[test]
    fn mismatched_and_empty_origins_are_basic() {
        let mut table = InterleaveTable::new(16, &[7; 16]);
        table.exchange(CLIENT, Timestamp::ZERO, ts(10));
        table.transmitted(CLIENT, ts(10), ts(11));
        // A basic client echoing our transmit timestamp.
        assert_eq!(table.exchange(CLIENT, ts(11), ts(20)), None);
        table.transmitted(CLIENT, ts(20), ts(20));
        // An answer stamped with its receive time is never interleaved.
        assert_eq!(table.exchange(CLIENT, ts(20), ts(30)), None);
        let mut empty = InterleaveTable::new(0, &[7; 16]);
        assert_eq!(empty.exchange(CLIENT, Timestamp::ZERO, ts(1)), None);
        empty.transmitted(CLIENT, ts(1), ts(2));
        assert_eq!(empty.exchange(CLIENT, ts(1), ts(3)), None);
    }

    #[test]
    fn a_client_whose_slot_is_taken_is_basic_once() {
        let mut table = InterleaveTable::new(1, &[7; 16]);
        let other = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
        table.exchange(CLIENT, Timestamp::ZERO, ts(10));
        table.transmitted(CLIENT, ts(10), ts(11));
        table.exchange(other, Timestamp::ZERO, ts(12));
        // The other client cannot use ours, and ours lost its state.
        assert_eq!(table.exchange(other, ts(10), ts(13)), None);
        assert_eq!(table.exchange(CLIENT, ts(10), ts(20)), None);
        table.transmitted(CLIENT, ts(20), ts(21));
        assert_eq!(table.exchange(CLIENT, ts(20), ts(30)), Some(ts(21)));
        assert_eq!(table.heap_bytes(), size_of::<Option<Slot>>());
    }
}
