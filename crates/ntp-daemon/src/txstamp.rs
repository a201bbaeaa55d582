//! Matching transmit timestamps to the datagrams sent.
//!
//! The kernel gives a datagram's transmit timestamp back on the socket's
//! error queue, with the datagram itself behind the headers it added
//! ([`crate::net`]). [`Sent`] keeps, for the last few datagrams sent on a
//! socket, what the caller needs to report the time (a source and its
//! request's nonce, or a client and the server's answer), with the
//! datagram's length and its transmit timestamp field (octets 40 to 47:
//! a client request's random nonce, a server answer's stamp), which
//! together pick the datagram out of the looped frame. A datagram whose
//! timestamp never comes is pushed out by newer ones: its exchange keeps
//! the time read before sending.

use core::net::SocketAddr;

use ntp_client::SourceId;
use ntp_client::ntp_proto::{Date, NtpDuration, Timestamp};
use ntp_server::Reply;

use crate::hwclock::StampKind;
use crate::net::{Looped, MAX_DATAGRAM, MAX_LOOPED_HEADERS, TimestampedSocket};

/// Datagrams waited on per socket: the daemon reads the queue right
/// after each send, so only a timestamp that comes late (a busy device)
/// needs a slot for longer.
const SLOTS: usize = 16;

/// The transmit timestamp field of an NTP header (RFC 5905, section 7.3).
const TRANSMIT_FIELD: core::ops::Range<usize> = 40..48;

/// One datagram sent, waiting for its timestamp.
#[derive(Clone, Copy, Debug)]
struct Waiting<T> {
    tag: T,
    len: usize,
    transmit: [u8; 8],
}

/// The last [`SLOTS`] datagrams sent on one socket whose timestamps have
/// not come; `T` says whose they are.
#[derive(Debug)]
pub(crate) struct Sent<T> {
    slots: [Option<Waiting<T>>; SLOTS],
    next: usize,
}

impl<T: Copy> Default for Sent<T> {
    fn default() -> Self {
        Self {
            slots: [None; SLOTS],
            next: 0,
        }
    }
}

impl<T: Copy> Sent<T> {
    /// Records `datagram`, just sent, as `tag`'s (the oldest waiting one
    /// makes room). A datagram too short for an NTP header is not kept.
    pub(crate) fn push(&mut self, tag: T, datagram: &[u8]) {
        let Some(transmit) = datagram
            .get(TRANSMIT_FIELD)
            .and_then(|field| <[u8; 8]>::try_from(field).ok())
        else {
            return;
        };
        if let Some(slot) = self.slots.get_mut(self.next) {
            *slot = Some(Waiting {
                tag,
                len: datagram.len(),
                transmit,
            });
        }
        self.next = (self.next + 1) % SLOTS;
    }

    /// The tag and transmit timestamp field of the waiting datagram that
    /// `frame` (a looped frame: headers, then the datagram) ends with,
    /// which stops waiting unless `keep` (a software timestamp when the
    /// card's is to follow).
    pub(crate) fn take(&mut self, frame: &[u8], keep: bool) -> Option<(T, Timestamp)> {
        let slot = self.slots.iter_mut().find(|slot| {
            slot.is_some_and(|waiting| {
                frame
                    .len()
                    .checked_sub(waiting.len)
                    .and_then(|start| frame.get(start + TRANSMIT_FIELD.start..)?.get(..8))
                    .is_some_and(|field| field == waiting.transmit)
            })
        })?;
        let waiting = if keep { *slot } else { slot.take() };
        waiting.map(|waiting| {
            let field = Timestamp::from_bits(u64::from_be_bytes(waiting.transmit));
            (waiting.tag, field)
        })
    }
}

/// A buffer for one looped frame: the longest datagram and its headers.
pub(crate) type FrameBuffer = [u8; MAX_DATAGRAM + MAX_LOOPED_HEADERS];

/// A [`FrameBuffer`] on the heap (2 KiB: kept off the loop's stack).
pub(crate) fn frame_buffer() -> Box<FrameBuffer> {
    Box::new([0; MAX_DATAGRAM + MAX_LOOPED_HEADERS])
}

/// Reads one message of `socket`'s error queue, if there is one, and
/// hands its timestamp to `found` with the tag and transmit timestamp
/// field of its datagram in `sent` (a frame of a datagram no longer
/// waited on is dropped).
///
/// One message per call: the daemon reads right after each send (where
/// the kernel stamps the datagram inside `sendto`, its own timestamp is
/// there), and once per `POLLERR` (`poll(2)` reports it again while the
/// queue holds more). clknetsim, which simulates one transmit timestamp
/// per socket, answers a read of an empty error queue with the next
/// datagram received, so the daemon never reads the queue on a guess.
pub(crate) fn read<T: Copy>(
    socket: &TimestampedSocket,
    sent: &mut Sent<T>,
    frame: &mut FrameBuffer,
    found: impl FnOnce(T, Timestamp, Looped),
) {
    if !socket.transmit_timestamps() {
        return;
    }
    if let Ok(Some(looped)) = socket.recv_looped(frame) {
        let bytes = frame.get(..looped.len).unwrap_or(&[]);
        // Linux loops a datagram back once per kind of timestamp: the
        // software one first, the card's when its transmission completes.
        let keep = socket.hardware() && looped.hardware.is_none();
        if let Some((tag, field)) = sent.take(bytes, keep) {
            found(tag, field, looped);
        }
    }
}

/// The last [`SLOTS`] kernel or hardware transmit timestamps reported to
/// the client system, so that a sample's log line can say where its T1
/// was taken (`K` or `H`, `D` for the clock read before sending), as
/// chronyd's measurements log does.
#[derive(Debug, Default)]
pub(crate) struct Reported {
    dates: [Option<(Date, StampKind)>; SLOTS],
    next: usize,
}

impl Reported {
    pub(crate) fn push(&mut self, t1: Date, kind: StampKind) {
        if let Some(slot) = self.dates.get_mut(self.next) {
            *slot = Some((t1, kind));
        }
        self.next = (self.next + 1) % SLOTS;
    }

    /// Where `t1` was taken. A measurement's T1 is the reported one moved
    /// by what the discipline slewed while the request was out
    /// (`Source::set_slewed`: microseconds), and requests to a
    /// source leave a second apart at least: the reported T1 within
    /// [`SAME_T1`] is its own.
    pub(crate) fn kind_of(&self, t1: Date) -> StampKind {
        let near = |date: &Date| {
            let apart = match date.checked_duration_since(t1) {
                Some(after) => after,
                None => t1.checked_duration_since(*date).unwrap_or(NtpDuration::MAX),
            };
            apart.to_seconds_f64().abs() <= SAME_T1
        };
        self.dates
            .iter()
            .flatten()
            .find(|(date, _)| near(date))
            .map_or(StampKind::Daemon, |&(_, kind)| kind)
    }
}

/// How far a measurement's T1 may lie from the transmit timestamp
/// reported for its request, seconds (see [`Reported::kind_of`]).
const SAME_T1: f64 = 1e-3;

/// The daemon loop's waits on transmit timestamps: its requests, the
/// answers of `--serve` from the loop, and a frame buffer for both.
pub(crate) struct Transmits {
    pub(crate) client: Sent<SourceId>,
    pub(crate) serve: Sent<(SocketAddr, Reply)>,
    pub(crate) frame: Box<FrameBuffer>,
    pub(crate) reported: Reported,
}

impl Default for Transmits {
    fn default() -> Self {
        Self {
            client: Sent::default(),
            serve: Sent::default(),
            frame: frame_buffer(),
            reported: Reported::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    use std::time::SystemTime;

    use super::*;

    fn datagram(nonce: u8, len: usize) -> Vec<u8> {
        let mut data = vec![0x23; len];
        if let Some(field) = data.get_mut(TRANSMIT_FIELD) {
            field.fill(nonce);
        }
        data
    }

    fn framed(datagram: &[u8]) -> Vec<u8> {
        let mut frame = vec![0xee; 42];
        frame.extend_from_slice(datagram);
        frame
    }

    #[test]
    fn a_frame_is_matched_by_its_tail() {
        let mut sent = Sent::default();
        sent.push(1, &datagram(1, 48));
        sent.push(2, &datagram(2, 68));
        sent.push(3, &datagram(3, 48));
        assert_eq!(
            sent.take(&framed(&datagram(2, 68)), true).map(|t| t.0),
            Some(2)
        );
        // Kept once, then taken.
        assert_eq!(
            sent.take(&framed(&datagram(2, 68)), false).map(|t| t.0),
            Some(2)
        );
        assert_eq!(sent.take(&framed(&datagram(2, 68)), false), None);
        // The same field at another length is another datagram.
        assert_eq!(sent.take(&framed(&datagram(1, 68)), false), None);
        assert_eq!(
            sent.take(&framed(&datagram(3, 48)), false).map(|t| t.0),
            Some(3)
        );
        // Short frames and short datagrams are no match and no panic.
        assert_eq!(sent.take(&[0; 10], false), None);
        sent.push(4, &[0; 20]);
        assert_eq!(sent.take(&[0; 20], false), None);
        assert_eq!(
            sent.take(&framed(&datagram(1, 48)), false).map(|t| t.0),
            Some(1)
        );
    }

    #[test]
    fn a_slightly_moved_t1_keeps_its_kind() {
        let t1 = Date::from_unix(1_700_000_000, 0).unwrap_or(Date::MAX);
        let moved = |seconds: f64| {
            NtpDuration::from_seconds_f64(seconds)
                .ok()
                .and_then(|by| t1.checked_add(by))
                .unwrap_or(Date::MAX)
        };
        let mut reported = Reported::default();
        reported.push(t1, StampKind::Hardware);
        assert_eq!(reported.kind_of(moved(17e-6)), StampKind::Hardware);
        assert_eq!(reported.kind_of(moved(-17e-6)), StampKind::Hardware);
        assert_eq!(reported.kind_of(moved(1.0)), StampKind::Daemon);
    }

    #[test]
    fn the_oldest_makes_room() {
        let mut sent = Sent::default();
        for nonce in 0..=u8::try_from(SLOTS).unwrap_or(u8::MAX) {
            sent.push(nonce, &datagram(nonce, 48));
        }
        assert_eq!(sent.take(&framed(&datagram(0, 48)), false), None);
        assert_eq!(
            sent.take(&framed(&datagram(1, 48)), false).map(|t| t.0),
            Some(1)
        );
    }

    #[test]
    fn loopback_gives_each_datagram_its_transmit_time() {
        let any = "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!());
        let a = TimestampedSocket::bind(any, false).unwrap_or_else(|e| unreachable!("{e}"));
        let b = TimestampedSocket::bind(any, false).unwrap_or_else(|e| unreachable!("{e}"));
        let to = b.local_addr().unwrap_or_else(|e| unreachable!("{e}"));
        if !a.transmit_timestamps() {
            return; // a kernel without SO_TIMESTAMPING
        }
        let mut sent = Sent::default();
        let mut frame = [0; MAX_DATAGRAM + MAX_LOOPED_HEADERS];
        let mut times = Vec::new();
        for nonce in 1..=3 {
            let data = datagram(nonce, 48);
            let before = SystemTime::now();
            a.send_to(&data, to).unwrap_or_else(|e| unreachable!("{e}"));
            sent.push(nonce, &data);
            read(&a, &mut sent, &mut frame, |tag, field, looped| {
                assert_eq!(field, Timestamp::from_bits(u64::from_be_bytes([nonce; 8])));
                times.push((tag, before, looped.time));
                assert_eq!(looped.hardware, None);
            });
        }
        // Loopback stamps the datagram inside sendto.
        assert_eq!(times.iter().map(|t| t.0).collect::<Vec<_>>(), [1, 2, 3]);
        for (_, before, time) in times {
            let after = time
                .unwrap_or_else(|| unreachable!("no software timestamp"))
                .duration_since(before)
                .unwrap_or_else(|e| unreachable!("stamped before sending: {e}"));
            assert!(after < Duration::from_secs(1), "{after:?}");
        }
        // Nothing is left to report, and nothing blocks.
        read(&a, &mut sent, &mut frame, |_, _, _| {
            unreachable!("a timestamp twice")
        });
    }
}
