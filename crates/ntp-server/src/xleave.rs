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
//! slots, indexed by a multiplicative hash of the client's address under
//! the rate limiter's secret key. Not a cryptographic hash (SipHash-1-3
//! made each request 25 ns dearer): the worst that someone who found
//! colliding addresses could do is take a client's slot, and so make its
//! next answer basic, which anybody who can send a request in the
//! client's name can do anyway. Eviction: a client whose slot another
//! address takes loses its state; its next request is answered in basic
//! mode and it is interleaved again from the one after. Clients are told apart by address
//! alone (as chronyd does): a client may change its source port at every
//! request, and clients behind one address translator share a slot.

use alloc::vec::Vec;
use core::net::IpAddr;

use ntp_proto::Timestamp;

use crate::prefix::canonical_ip;

/// One client's last exchange.
#[derive(Clone, Copy, Debug)]
struct Slot {
    ip: IpAddr,
    /// Receive timestamp of its last request (T2).
    rx: Timestamp,
    /// Transmit timestamp of the answer to it (T3), once reported; zero
    /// until then (a zero timestamp is "unknown" in NTP, RFC 5905 section
    /// 6, and an interleaved answer never carries it).
    tx: Timestamp,
}

/// The interleaved-mode state of recent clients.
#[derive(Clone, Debug)]
pub(crate) struct InterleaveTable {
    slots: Vec<Option<Slot>>,
    /// Key of the hash: an offset and an odd multiplier.
    key: (u64, u64),
}

impl InterleaveTable {
    /// A table of `capacity` slots (none: the interleaved mode is off).
    pub(crate) fn new(capacity: usize, key: &[u8; 16]) -> Self {
        let bits = u128::from_be_bytes(*key);
        #[allow(clippy::cast_possible_truncation, reason = "the two halves")]
        Self {
            slots: alloc::vec![None; capacity],
            key: ((bits >> 64) as u64, bits as u64 | 1),
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
        let bits = match ip {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        };
        #[allow(clippy::cast_possible_truncation, reason = "the two halves")]
        let folded = (bits as u64) ^ ((bits >> 64) as u64).rotate_left(32);
        let hash = (folded ^ self.key.0).wrapping_mul(self.key.1);
        // hash * len / 2^64: an index below len without a division.
        let len = u128::try_from(len).unwrap_or(u128::MAX);
        usize::try_from((u128::from(hash) * len) >> 64).ok()
    }

    /// A request from `ip` received at `rx` with origin timestamp
    /// `origin`: returns the transmit timestamp of our previous answer to
    /// it if the request asks for the interleaved mode and we have that
    /// timestamp, and remembers `rx` as the client's last request (its
    /// answer's transmit time unknown until reported), in the slot whose
    /// index it returns too (for [`transmitted`](Self::transmitted)).
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
    ) -> (Option<Timestamp>, Option<usize>) {
        let ip = canonical_ip(ip);
        let Some(index) = self.index(ip) else {
            return (None, None);
        };
        let Some(slot) = self.slots.get_mut(index) else {
            return (None, None);
        };
        let previous = slot
            .filter(|kept| kept.ip == ip && origin != Timestamp::ZERO && origin == kept.rx)
            .map(|kept| kept.tx)
            .filter(|&tx| tx != origin && tx != Timestamp::ZERO);
        *slot = Some(Slot {
            ip,
            rx,
            tx: Timestamp::ZERO,
        });
        (previous, Some(index))
    }

    /// The answer to the request from `ip` received at `rx`, kept in slot
    /// `index` by [`exchange`](Self::exchange), left at `tx`. Ignored
    /// unless that request is still the client's last one there.
    pub(crate) fn transmitted(&mut self, index: usize, ip: IpAddr, rx: Timestamp, tx: Timestamp) {
        let ip = canonical_ip(ip);
        let Some(Some(slot)) = self.slots.get_mut(index) else {
            return;
        };
        if slot.ip == ip && slot.rx == rx {
            slot.tx = tx;
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

    impl InterleaveTable {
        /// `exchange`'s timestamp alone.
        fn exchange_at(
            &mut self,
            ip: IpAddr,
            origin: Timestamp,
            rx: Timestamp,
        ) -> Option<Timestamp> {
            self.exchange(ip, origin, rx).0
        }

        /// `transmitted` in the slot the address hashes to.
        fn transmitted_at(&mut self, ip: IpAddr, rx: Timestamp, tx: Timestamp) {
            if let Some(index) = self.index(canonical_ip(ip)) {
                self.transmitted(index, ip, rx, tx);
            }
        }
    }

    #[test]
    fn the_second_request_gets_the_first_answers_transmit_time() {
        let mut table = InterleaveTable::new(16, &[7; 16]);
        assert_eq!(table.exchange_at(CLIENT, Timestamp::ZERO, ts(10)), None);
        table.transmitted_at(CLIENT, ts(10), ts(11));
        assert_eq!(table.exchange_at(CLIENT, ts(10), ts(20)), Some(ts(11)));
        // Unreported: basic.
        assert_eq!(table.exchange_at(CLIENT, ts(20), ts(30)), None);
        // A report for an older request changes nothing.
        table.transmitted_at(CLIENT, ts(20), ts(21));
        assert_eq!(table.exchange_at(CLIENT, ts(30), ts(40)), None);
    }

    #[test]
    fn mismatched_and_empty_origins_are_basic() {
        let mut table = InterleaveTable::new(16, &[7; 16]);
        table.exchange_at(CLIENT, Timestamp::ZERO, ts(10));
        table.transmitted_at(CLIENT, ts(10), ts(11));
        // A basic client echoing our transmit timestamp.
        assert_eq!(table.exchange_at(CLIENT, ts(11), ts(20)), None);
        table.transmitted_at(CLIENT, ts(20), ts(20));
        // An answer stamped with its receive time is never interleaved.
        assert_eq!(table.exchange_at(CLIENT, ts(20), ts(30)), None);
        let mut empty = InterleaveTable::new(0, &[7; 16]);
        assert_eq!(empty.exchange_at(CLIENT, Timestamp::ZERO, ts(1)), None);
        empty.transmitted_at(CLIENT, ts(1), ts(2));
        assert_eq!(empty.exchange_at(CLIENT, ts(1), ts(3)), None);
    }

    #[test]
    fn a_client_whose_slot_is_taken_is_basic_once() {
        let mut table = InterleaveTable::new(1, &[7; 16]);
        let other = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
        table.exchange_at(CLIENT, Timestamp::ZERO, ts(10));
        table.transmitted_at(CLIENT, ts(10), ts(11));
        table.exchange_at(other, Timestamp::ZERO, ts(12));
        // The other client cannot use ours, and ours lost its state.
        assert_eq!(table.exchange_at(other, ts(10), ts(13)), None);
        assert_eq!(table.exchange_at(CLIENT, ts(10), ts(20)), None);
        table.transmitted_at(CLIENT, ts(20), ts(21));
        assert_eq!(table.exchange_at(CLIENT, ts(20), ts(30)), Some(ts(21)));
        assert_eq!(table.heap_bytes(), size_of::<Option<Slot>>());
    }
}
