//! UDP sockets with kernel receive timestamps, and the wait in `poll(2)`.
//!
//! Receive timestamps: software `SO_TIMESTAMPING` (what chronyd uses, and
//! what clknetsim simulates), read from the `SCM_TIMESTAMPING` control
//! message of `recvmsg`. Where the option is refused, or a datagram comes
//! without the message, the clock is read right after the wakeup instead.
//!
//! Transmit timestamps: with `SOF_TIMESTAMPING_TX_SOFTWARE` the kernel
//! loops each datagram sent back to the socket's error queue, with the
//! time the network device took it (for loopback and most drivers,
//! before `sendto` returns). The daemon reads the queue right after
//! sending, and again whenever `poll(2)` reports `POLLERR` (a late
//! timestamp), one message at a time, and matches the datagram to what
//! it sent ([`crate::txstamp`]). The packet comes back with the headers the
//! kernel added (link, IP, UDP), so the datagram is the frame's tail.
//!
//! The wait is a plain `poll(2)` over std sockets: no async runtime and no
//! epoll, so the daemon also runs under clknetsim, which simulates
//! `poll()` but not epoll.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::time::Duration;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::UdpSocket;
use std::os::fd::{AsFd, AsRawFd};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, MultiHeaders, SockFlag, SockType,
    SockaddrStorage, TimestampingFlag, bind, recvmmsg, recvmsg, sendmmsg, setsockopt, socket,
    sockopt,
};
use nix::sys::time::TimeSpec;

use crate::background::Families;
use crate::options::Options;

/// Datagrams longer than this are cut: an NTP reply with a MAC fits
/// easily, and so does an NTS one (as long as our request, at most
/// `ntp_client::MAX_NTS_REQUEST_LEN`, 1280 octets, and for 3 octets of
/// padding, RFC 8915 section 8.4: `ntp_nts::client::MAX_RESPONSE_LEN`).
/// It is also the request buffer's capacity and the size of the buffer
/// `--serve` answers into, which must hold the server's longest answer
/// (`ntp_server::MAX_RESPONSE_LEN`, 1532 octets, to a request at least as
/// long).
pub(crate) const MAX_DATAGRAM: usize = 2048;

const _: () = assert!(
    MAX_DATAGRAM >= ntp_nts::client::MAX_RESPONSE_LEN
        && MAX_DATAGRAM >= ntp_client::MAX_NTS_REQUEST_LEN
        && MAX_DATAGRAM >= ntp_server::MAX_RESPONSE_LEN,
    "MAX_DATAGRAM must hold every datagram the daemon reads or writes"
);

/// The receive buffer asked for on `--serve`'s sockets, octets: several
/// thousand requests with the kernel's overhead per datagram, room for a
/// burst while the server is busy or descheduled.
const SERVING_RECEIVE_BUFFER: usize = 4 << 20;

/// Room for the link, IP and UDP headers in front of a datagram looped
/// back to the error queue with its transmit timestamp: Ethernet (14
/// octets, 18 with a VLAN tag), IPv6 with some extension headers, UDP.
pub(crate) const MAX_LOOPED_HEADERS: usize = 128;

/// `ee_info` of a timestamp taken when the device sent the datagram
/// (`linux/errqueue.h`; `SCM_TSTAMP_SCHED`, 1, and `SCM_TSTAMP_ACK`, 2,
/// are not asked for). The `libc` crate does not name it.
const SCM_TSTAMP_SND: u32 = 0;

/// A UDP socket that reads kernel receive and transmit timestamps where
/// it can.
#[derive(Debug)]
pub(crate) struct TimestampedSocket {
    socket: UdpSocket,
    kernel_timestamps: bool,
    transmit_timestamps: bool,
    /// Hardware timestamps asked for (`--hwtimestamp`).
    hardware: bool,
}

/// One datagram received.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Received {
    pub(crate) len: usize,
    pub(crate) from: SocketAddr,
    /// The kernel's receive timestamp (CLOCK_REALTIME), if it gave one.
    pub(crate) kernel_time: Option<SystemTime>,
    /// The network card's, on its own clock, if it gave one.
    pub(crate) hardware: Option<PhcStamp>,
}

/// A hardware timestamp: a reading of the network card's PTP clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PhcStamp {
    pub(crate) seconds: i64,
    pub(crate) nanos: i64,
}

impl PhcStamp {
    /// `None` for the zero timestamp (none taken).
    fn from_timespec(time: TimeSpec) -> Option<Self> {
        (time.tv_sec() != 0 || time.tv_nsec() != 0).then(|| Self {
            seconds: time.tv_sec(),
            nanos: time.tv_nsec(),
        })
    }
}

impl TimestampedSocket {
    /// Binds `address` and asks for software receive and transmit
    /// timestamps, and hardware ones too if `hardware`.
    pub(crate) fn bind(address: SocketAddr, hardware: bool) -> io::Result<Self> {
        Self::timestamped(UdpSocket::bind(address)?, hardware, true)
    }

    /// Binds `--serve`'s `address`, with `SO_REUSEPORT` if `shared` (one
    /// socket per worker, or the loop's pair, on the same address), and a
    /// receive buffer of [`SERVING_RECEIVE_BUFFER`] (as the kernel allows)
    /// for bursts while the server is busy or descheduled; software
    /// receive timestamps, transmit timestamps if `transmit`, and the
    /// card's with `hardware`.
    pub(crate) fn bind_serving(
        address: SocketAddr,
        shared: bool,
        (hardware, transmit): (bool, bool),
    ) -> io::Result<Self> {
        let family = if address.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        let fd = socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
            .map_err(io::Error::from)?;
        if shared {
            setsockopt(&fd, sockopt::ReusePort, &true).map_err(io::Error::from)?;
        }
        // Best effort: the kernel caps it at net.core.rmem_max.
        let _ = setsockopt(&fd, sockopt::RcvBuf, &SERVING_RECEIVE_BUFFER);
        bind(fd.as_raw_fd(), &SockaddrStorage::from(address)).map_err(io::Error::from)?;
        Self::timestamped(UdpSocket::from(fd), hardware, transmit)
    }

    /// Asks `socket` for software receive timestamps, and transmit
    /// timestamps if `transmit` (receive timestamps alone where the kernel
    /// refuses both); with `hardware`, for the network card's too (raw:
    /// on its own clock).
    fn timestamped(socket: UdpSocket, hardware: bool, transmit: bool) -> io::Result<Self> {
        let receive = TimestampingFlag::SOF_TIMESTAMPING_RX_SOFTWARE
            | TimestampingFlag::SOF_TIMESTAMPING_SOFTWARE;
        let mut both = receive;
        let mut card = TimestampingFlag::SOF_TIMESTAMPING_RX_HARDWARE
            | TimestampingFlag::SOF_TIMESTAMPING_RAW_HARDWARE;
        if transmit {
            both |= TimestampingFlag::SOF_TIMESTAMPING_TX_SOFTWARE;
            card |= TimestampingFlag::SOF_TIMESTAMPING_TX_HARDWARE;
        }
        let hardware =
            hardware && setsockopt(&socket, sockopt::Timestamping, &(both | card)).is_ok();
        let with_both = hardware || setsockopt(&socket, sockopt::Timestamping, &both).is_ok();
        let transmit_timestamps = transmit && with_both;
        let kernel_timestamps =
            with_both || setsockopt(&socket, sockopt::Timestamping, &receive).is_ok();
        Ok(Self {
            socket,
            kernel_timestamps,
            transmit_timestamps,
            hardware,
        })
    }

    /// Whether the socket asked for hardware timestamps.
    pub(crate) const fn hardware(&self) -> bool {
        self.hardware
    }

    /// Whether the kernel accepted `SO_TIMESTAMPING` (receive timestamps).
    pub(crate) const fn kernel_timestamps(&self) -> bool {
        self.kernel_timestamps
    }

    /// Whether the kernel also gives transmit timestamps.
    pub(crate) const fn transmit_timestamps(&self) -> bool {
        self.transmit_timestamps
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    pub(crate) fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.socket.send_to(data, to)
    }

    /// Reads one message of the error queue into `buf`: a datagram sent
    /// and looped back with its transmit timestamp (the octets the kernel
    /// returned, headers first), or `None` for a message without one.
    /// `WouldBlock` when the queue is empty.
    pub(crate) fn recv_looped(&self, buf: &mut [u8]) -> io::Result<Option<Looped>> {
        let mut iov = [IoSliceMut::new(buf)];
        let mut control = nix::cmsg_space!(
            nix::sys::socket::Timestamps,
            libc::sock_extended_err,
            libc::sockaddr_in6
        );
        let message = recvmsg::<SockaddrStorage>(
            self.socket.as_raw_fd(),
            &mut iov,
            Some(&mut control),
            MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        let (mut time, mut hardware) = (None, None);
        let mut is_timestamp = false;
        if let Ok(messages) = message.cmsgs() {
            for cmsg in messages {
                match cmsg {
                    ControlMessageOwned::ScmTimestampsns(stamps) => {
                        time = timespec_time(stamps.system);
                        hardware = PhcStamp::from_timespec(stamps.hw_raw);
                    }
                    ControlMessageOwned::Ipv4RecvErr(error, _)
                    | ControlMessageOwned::Ipv6RecvErr(error, _) => {
                        is_timestamp = error.ee_origin == libc::SO_EE_ORIGIN_TIMESTAMPING
                            && error.ee_info == SCM_TSTAMP_SND;
                    }
                    _ => {}
                }
            }
        }
        let truncated = message.flags.contains(MsgFlags::MSG_TRUNC);
        let stamped = time.is_some() || hardware.is_some();
        Ok((is_timestamp && stamped && !truncated).then_some(Looped {
            len: message.bytes,
            time,
            hardware,
        }))
    }

    /// Reads up to [`RECV_BATCH`] datagrams with one `recvmmsg(2)` into
    /// `batch`; returns how many came (`WouldBlock` for none). A datagram
    /// without a source address is skipped (`None` in its place).
    pub(crate) fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        let RecvBatch {
            headers,
            buffers,
            received,
        } = batch;
        let mut iovs = buffers.each_mut().map(|buffer| [IoSliceMut::new(buffer)]);
        let results = recvmmsg(
            self.socket.as_raw_fd(),
            headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        let mut count = 0;
        for (slot, message) in received.iter_mut().zip(results) {
            *slot = received_of(&message);
            count += 1;
        }
        Ok(count)
    }

    /// Sends every datagram waiting in `batch`, with one `sendmmsg(2)`
    /// when there are several, and empties it; `sent` gets the tag of each
    /// datagram the kernel took. A datagram the kernel refuses is tried
    /// once more with `sendto(2)`, then dropped (a lost answer: the client
    /// asks again), and the rest go on; so is every datagram where
    /// `sendmmsg` fails as a whole (clknetsim, which simulates `recvmmsg`
    /// but not `sendmmsg`, reads one request per call, so it only ever
    /// sees `sendto`).
    pub(crate) fn send_batch<T>(&self, batch: &mut SendBatch<T>, mut sent: impl FnMut(T)) {
        let count = batch.count;
        batch.count = 0;
        let mut start = 0;
        while start < count {
            let taken = if count - start > 1 {
                self.send_many(batch, start..count)
            } else {
                0
            };
            for tag in batch.tags.iter_mut().take(start + taken).skip(start) {
                if let Some(tag) = tag.take() {
                    sent(tag);
                }
            }
            start += taken;
            if taken == 0 {
                // One by one: what sendmmsg refused, or a single datagram.
                if let Some(tag) = self.send_one(batch, start) {
                    sent(tag);
                }
                start += 1;
            }
        }
    }

    /// Datagram `index` of `batch` with `sendto(2)`: its tag if the
    /// kernel took it.
    fn send_one<T>(&self, batch: &mut SendBatch<T>, index: usize) -> Option<T> {
        let tag = batch.tags.get_mut(index).and_then(Option::take)?;
        let len = *batch.lens.get(index)?;
        let datagram = batch.buffers.get(index)?.get(..len)?;
        let to = socket_addr(batch.to.get(index)?.as_ref()?)?;
        self.socket.send_to(datagram, to).ok().map(|_| tag)
    }

    /// One `sendmmsg(2)` of `batch`'s datagrams in `range`: how many the
    /// kernel took (0 when it refused the first, or the call failed).
    fn send_many<T>(&self, batch: &mut SendBatch<T>, range: core::ops::Range<usize>) -> usize {
        let SendBatch {
            headers,
            buffers,
            lens,
            to,
            ..
        } = batch;
        let iovs: [[IoSlice<'_>; 1]; RECV_BATCH] = core::array::from_fn(|index| {
            let len = lens.get(index).copied().unwrap_or(0);
            [IoSlice::new(
                buffers
                    .get(index)
                    .and_then(|buffer| buffer.get(..len))
                    .unwrap_or(&[]),
            )]
        });
        let (Some(iovs), Some(to)) = (iovs.get(range.clone()), to.get(range)) else {
            return 0;
        };
        let cmsgs: [ControlMessage<'_>; 0] = [];
        loop {
            match sendmmsg(
                self.socket.as_raw_fd(),
                headers,
                iovs,
                to,
                cmsgs,
                MsgFlags::empty(),
            ) {
                Ok(results) => return results.count(),
                Err(Errno::EINTR) => {}
                Err(_) => return 0,
            }
        }
    }

    /// Reads one datagram into `buf` (call after `poll` said readable).
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let mut iov = [IoSliceMut::new(buf)];
        let mut control = nix::cmsg_space!(nix::sys::socket::Timestamps);
        let message = recvmsg::<SockaddrStorage>(
            self.socket.as_raw_fd(),
            &mut iov,
            Some(&mut control),
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        received_of(&message).ok_or_else(|| io::Error::other("datagram without a source address"))
    }
}

/// Datagrams one `recvmmsg(2)` reads at most on a serving socket.
pub(crate) const RECV_BATCH: usize = 16;

/// Room for [`TimestampedSocket::recv_batch`]: the buffers, and the
/// message headers (allocated once).
pub(crate) struct RecvBatch {
    headers: MultiHeaders<SockaddrStorage>,
    buffers: Box<[[u8; MAX_DATAGRAM]; RECV_BATCH]>,
    received: [Option<Received>; RECV_BATCH],
}

impl RecvBatch {
    pub(crate) fn new() -> Self {
        Self {
            headers: MultiHeaders::preallocate(
                RECV_BATCH,
                Some(nix::cmsg_space!(nix::sys::socket::Timestamps)),
            ),
            buffers: Box::new([[0; MAX_DATAGRAM]; RECV_BATCH]),
            received: [None; RECV_BATCH],
        }
    }

    /// Datagram `index` of the last batch: what came and its octets.
    pub(crate) fn get(&self, index: usize) -> Option<(Received, &[u8])> {
        let received = (*self.received.get(index)?)?;
        let data = self.buffers.get(index)?.get(..received.len)?;
        Some((received, data))
    }
}

/// Datagrams sent together with one `sendmmsg(2)`, each with a tag of
/// the caller's (`T`) handed back when the kernel took it; written in
/// place, into buffers allocated once.
pub(crate) struct SendBatch<T> {
    headers: MultiHeaders<SockaddrStorage>,
    buffers: Box<[[u8; MAX_DATAGRAM]; RECV_BATCH]>,
    lens: [usize; RECV_BATCH],
    to: [Option<SockaddrStorage>; RECV_BATCH],
    tags: [Option<T>; RECV_BATCH],
    count: usize,
}

impl<T> SendBatch<T> {
    pub(crate) fn new() -> Self {
        Self {
            headers: MultiHeaders::preallocate(RECV_BATCH, None),
            buffers: Box::new([[0; MAX_DATAGRAM]; RECV_BATCH]),
            lens: [0; RECV_BATCH],
            to: [None; RECV_BATCH],
            tags: core::array::from_fn(|_| None),
            count: 0,
        }
    }

    /// How many datagrams wait.
    pub(crate) const fn len(&self) -> usize {
        self.count
    }

    /// The buffer the next datagram is written into; `None` when the
    /// batch is full.
    pub(crate) fn buffer(&mut self) -> Option<&mut [u8; MAX_DATAGRAM]> {
        self.buffers.get_mut(self.count)
    }

    /// Queues the first `len` octets of [`buffer`](Self::buffer) for
    /// `to`; false (nothing queued) when the batch is full.
    pub(crate) fn push(&mut self, len: usize, to: SocketAddr, tag: T) -> bool {
        let (Some(slot_len), Some(slot_to), Some(slot_tag)) = (
            self.lens.get_mut(self.count),
            self.to.get_mut(self.count),
            self.tags.get_mut(self.count),
        ) else {
            return false;
        };
        *slot_len = len.min(MAX_DATAGRAM);
        *slot_to = Some(SockaddrStorage::from(to));
        *slot_tag = Some(tag);
        self.count += 1;
        true
    }
}

/// What a received datagram's message says: its length, source and
/// receive timestamps; `None` without a source address.
fn received_of(message: &nix::sys::socket::RecvMsg<'_, '_, SockaddrStorage>) -> Option<Received> {
    let (mut kernel_time, mut hardware) = (None, None);
    if let Ok(messages) = message.cmsgs() {
        for cmsg in messages {
            if let ControlMessageOwned::ScmTimestampsns(stamps) = cmsg {
                kernel_time = timespec_time(stamps.system);
                hardware = PhcStamp::from_timespec(stamps.hw_raw);
            }
        }
    }
    let from = message.address.as_ref().and_then(socket_addr)?;
    Some(Received {
        len: message.bytes,
        from,
        kernel_time,
        hardware,
    })
}

/// A datagram sent, as the error queue gave it back (at least one of the
/// timestamps is there).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Looped {
    /// Octets of the frame: headers, then the datagram.
    pub(crate) len: usize,
    /// When it left (CLOCK_REALTIME), by the kernel's software timestamp.
    pub(crate) time: Option<SystemTime>,
    /// When it left by the network card's clock.
    pub(crate) hardware: Option<PhcStamp>,
}

fn timespec_time(time: TimeSpec) -> Option<SystemTime> {
    system_time(time.tv_sec(), time.tv_nsec())
}

/// A `timespec` as a `SystemTime`; `None` for zero (no timestamp) or a
/// negative or malformed one.
fn system_time(seconds: i64, nanos: i64) -> Option<SystemTime> {
    let seconds = u64::try_from(seconds).ok()?;
    let nanos = u32::try_from(nanos).ok().filter(|n| *n < 1_000_000_000)?;
    if seconds == 0 && nanos == 0 {
        return None;
    }
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
}

fn socket_addr(storage: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = storage.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    storage.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

/// The daemon's sockets: one client socket per address family in use,
/// and the serving socket (polled by the loop), or the `--serve` workers'
/// sockets (which the workers take).
pub(crate) struct Sockets {
    v4: Option<TimestampedSocket>,
    v6: Option<TimestampedSocket>,
    pub(crate) serve: Option<TimestampedSocket>,
    /// The serving socket's twin on the same address (`SO_REUSEPORT`)
    /// with transmit timestamps, for the answers in the interleaved mode
    /// (see [`crate::serving::respond`]).
    pub(crate) serve_stamped: Option<TimestampedSocket>,
    pub(crate) serve_workers: Vec<TimestampedSocket>,
    /// Where `--serve` listens (its port picked, if it said 0).
    pub(crate) serve_address: Option<SocketAddr>,
}

impl Sockets {
    /// Binds what the options need.
    pub(crate) fn open(options: &Options) -> io::Result<Self> {
        let hardware = options.hwtimestamp.is_some();
        let client = |any: IpAddr| -> io::Result<Option<TimestampedSocket>> {
            let used = options
                .servers
                .iter()
                .any(|server| server.address.is_ipv4() == any.is_ipv4());
            if used {
                return TimestampedSocket::bind(SocketAddr::new(any, 0), hardware).map(Some);
            }
            // A pool, or the NTP server an NTS-KE server names, may be of
            // either family: take the socket if the host has that family,
            // go without it otherwise (such addresses are then skipped).
            if options.pools.is_empty() && options.nts.is_empty() {
                return Ok(None);
            }
            Ok(TimestampedSocket::bind(SocketAddr::new(any, 0), hardware).ok())
        };
        let (serve, serve_stamped, serve_workers) = match options.serve {
            Some(address) if options.serve_threads > 0 => (
                None,
                None,
                crate::serving::bind_workers(address, options.serve_threads)?,
            ),
            Some(address) => {
                let plain = TimestampedSocket::bind_serving(address, true, (hardware, false))?;
                let at = plain.local_addr()?;
                let stamped = TimestampedSocket::bind_serving(at, true, (hardware, true))?;
                (Some(plain), Some(stamped), Vec::new())
            }
            None => (None, None, Vec::new()),
        };
        let serve_address = match (&serve, serve_workers.first()) {
            (Some(socket), _) | (None, Some(socket)) => Some(socket.local_addr()?),
            (None, None) => None,
        };
        Ok(Self {
            v4: client(IpAddr::V4(Ipv4Addr::UNSPECIFIED))?,
            v6: client(IpAddr::V6(Ipv6Addr::UNSPECIFIED))?,
            serve,
            serve_stamped,
            serve_workers,
            serve_address,
        })
    }

    /// Whether every socket that sends what it wants stamped has the
    /// kernel's transmit timestamps: the client sockets and the serving
    /// twin (the serving socket itself and the workers' go without).
    pub(crate) fn transmit_timestamps(&self) -> bool {
        self.v4
            .iter()
            .chain(&self.v6)
            .chain(&self.serve_stamped)
            .all(TimestampedSocket::transmit_timestamps)
    }

    /// The client socket for `address`'s family, if the daemon has one.
    pub(crate) fn client_for(&self, address: SocketAddr) -> Option<&TimestampedSocket> {
        if address.is_ipv4() {
            self.v4.as_ref()
        } else {
            self.v6.as_ref()
        }
    }

    /// The address families the daemon has a client socket for.
    pub(crate) const fn families(&self) -> Families {
        Families {
            v4: self.v4.is_some(),
            v6: self.v6.is_some(),
        }
    }

    /// Socket `index` of [`iter`](Self::iter).
    pub(crate) fn get(&self, index: usize) -> Option<(&TimestampedSocket, bool)> {
        self.iter().nth(index)
    }

    /// Every socket the loop polls (at most [`MAX_POLLED`]), with whether
    /// it is a serving one.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&TimestampedSocket, bool)> {
        let clients = self.v4.iter().chain(&self.v6).map(|socket| (socket, false));
        let serving = self.serve.iter().chain(&self.serve_stamped);
        clients.chain(serving.map(|socket| (socket, true)))
    }
}

/// Most sockets one wait polls: the client's IPv4 and IPv6 sockets and the
/// serving pair ([`Sockets`]).
pub(crate) const MAX_POLLED: usize = 4;

/// What a wait found on one socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ready {
    /// A datagram to read (`POLLIN`).
    pub(crate) data: bool,
    /// Something on the error queue (`POLLERR`, or `POLLPRI` under
    /// clknetsim): transmit timestamps.
    pub(crate) looped: bool,
}

/// Waits until one of `sockets` (the first [`MAX_POLLED`]) is readable or
/// has something on its error queue, or `timeout` passes; returns what
/// each socket has, in order. A signal ends the wait early (no socket
/// ready). Nothing is allocated: the loop calls this on every turn.
pub(crate) fn wait<'a>(
    sockets: impl IntoIterator<Item = &'a TimestampedSocket>,
    timeout: Duration,
) -> io::Result<[Ready; MAX_POLLED]> {
    // Rounded up: a wait cut short of its deadline would only come back
    // to wait again (and under clknetsim, where time moves only inside
    // waits, spin).
    let millis = timeout.as_micros().div_ceil(1000).min(60_000);
    let millis = i32::try_from(millis).unwrap_or(60_000);
    let timeout = PollTimeout::try_from(millis).unwrap_or(PollTimeout::NONE);
    let mut ready = [Ready::default(); MAX_POLLED];
    let mut sockets = sockets.into_iter().take(MAX_POLLED);
    let Some(first) = sockets.next() else {
        return match nix::poll::poll(&mut [], timeout) {
            Ok(_) | Err(Errno::EINTR) => Ok(ready),
            Err(error) => Err(io::Error::from(error)),
        };
    };
    // POLLPRI: what clknetsim reports for the error queue (as Linux does
    // with SO_SELECT_ERR_QUEUE); Linux always reports it as POLLERR.
    let events = PollFlags::POLLIN | PollFlags::POLLPRI;
    let first_fd = PollFd::new(first.socket.as_fd(), events);
    let mut all: [PollFd<'_>; MAX_POLLED] = core::array::from_fn(|_| first_fd.clone());
    let mut stamped = [first.transmit_timestamps; MAX_POLLED];
    let mut count = 1;
    for ((slot, flag), socket) in all.iter_mut().zip(&mut stamped).skip(1).zip(sockets) {
        *slot = PollFd::new(socket.socket.as_fd(), events);
        *flag = socket.transmit_timestamps;
        count += 1;
    }
    let fds = all.get_mut(..count).unwrap_or_default();
    match nix::poll::poll(fds, timeout) {
        Ok(_) => {
            for ((flag, fd), stamped) in ready.iter_mut().zip(fds.iter()).zip(stamped) {
                let events = fd.revents().unwrap_or(PollFlags::empty());
                let error = events.intersects(PollFlags::POLLERR | PollFlags::POLLPRI);
                // Without transmit timestamps an error is a pending
                // socket error, which the next receive returns (and
                // clears).
                *flag = Ready {
                    data: events.contains(PollFlags::POLLIN) || (error && !stamped),
                    looped: error && stamped,
                };
            }
            Ok(ready)
        }
        Err(Errno::EINTR) => Ok(ready),
        Err(error) => Err(io::Error::from(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_convert() {
        assert_eq!(system_time(0, 0), None);
        assert_eq!(system_time(-1, 0), None);
        assert_eq!(system_time(1, 1_000_000_000), None);
        assert_eq!(
            system_time(1, 5),
            SystemTime::UNIX_EPOCH.checked_add(Duration::new(1, 5))
        );
    }

    #[test]
    fn a_batch_reads_every_waiting_datagram_in_one_call() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!());
        let a = TimestampedSocket::bind(any, false).unwrap_or_else(|e| unreachable!("{e}"));
        let b = TimestampedSocket::bind_serving(any, true, (false, false))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let to = b.local_addr().unwrap_or_else(|e| unreachable!("{e}"));
        let mut batch = RecvBatch::new();
        assert_eq!(
            b.recv_batch(&mut batch).map_err(|e| e.kind()),
            Err(io::ErrorKind::WouldBlock)
        );
        for len in [48, 68, 90] {
            a.send_to(&vec![7; len], to)
                .unwrap_or_else(|e| unreachable!("{e}"));
        }
        let ready = wait([&b], Duration::from_secs(2)).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(ready.first().is_some_and(|r| r.data));
        let from = a.local_addr().unwrap_or_else(|e| unreachable!("{e}"));
        let mut lens = Vec::new();
        while lens.len() < 3 {
            let count = b
                .recv_batch(&mut batch)
                .unwrap_or_else(|e| unreachable!("{e}"));
            for index in 0..count {
                let (received, data) = batch.get(index).unwrap_or_else(|| unreachable!());
                assert_eq!(received.from, from);
                assert!(data.iter().all(|octet| *octet == 7));
                lens.push(data.len());
            }
        }
        assert_eq!(lens, [48, 68, 90]);
        assert!(batch.get(RECV_BATCH).is_none());
    }

    /// Several datagrams go out with one call, in order, each tag
    /// reported; one the kernel refuses (an IPv6 destination from an IPv4
    /// socket) is dropped alone, and a single one goes by `sendto`.
    #[test]
    fn a_send_batch_sends_all_it_can_and_drops_what_the_kernel_refuses() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!());
        let a = TimestampedSocket::bind_serving(any, false, (false, false))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let b = TimestampedSocket::bind_serving(any, false, (false, false))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let to = b.local_addr().unwrap_or_else(|e| unreachable!("{e}"));
        let refused: SocketAddr = "[::1]:9".parse().unwrap_or_else(|_| unreachable!());
        let mut batch = SendBatch::new();
        for (tag, (len, dest)) in [(48, to), (60, refused), (72, to), (90, to)]
            .into_iter()
            .enumerate()
        {
            let buffer = batch.buffer().unwrap_or_else(|| unreachable!());
            buffer.fill(u8::try_from(tag).unwrap_or(0));
            assert!(batch.push(len, dest, tag));
        }
        let mut sent = Vec::new();
        a.send_batch(&mut batch, |tag| sent.push(tag));
        assert_eq!(sent, [0, 2, 3]);
        assert_eq!(batch.len(), 0);
        let buffer = batch.buffer().unwrap_or_else(|| unreachable!());
        buffer.fill(9);
        assert!(batch.push(50, to, 4));
        a.send_batch(&mut batch, |tag| sent.push(tag));
        assert_eq!(sent, [0, 2, 3, 4]);

        let mut got = Vec::new();
        let mut buf = [0u8; MAX_DATAGRAM];
        for _ in 0..100 {
            match b.recv(&mut buf) {
                Ok(received) => got.push((received.len, buf.first().copied())),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if got.len() == 4 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(error) => unreachable!("{error}"),
            }
        }
        assert_eq!(
            got,
            [(48, Some(0)), (72, Some(2)), (90, Some(3)), (50, Some(9))]
        );
        // A full batch takes no more.
        for tag in 0..RECV_BATCH {
            assert!(batch.buffer().is_some());
            assert!(batch.push(48, to, tag));
        }
        assert!(batch.buffer().is_none());
        assert!(!batch.push(48, to, RECV_BATCH));
    }

    #[test]
    fn loopback_datagram_has_a_source_and_maybe_a_kernel_time() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!());
        let a = TimestampedSocket::bind(any, false).unwrap_or_else(|e| unreachable!("{e}"));
        let b = TimestampedSocket::bind(any, true).unwrap_or_else(|e| unreachable!("{e}"));
        let to = b.local_addr().unwrap_or_else(|e| unreachable!("{e}"));
        // Linux turns receive timestamping on in a deferred work item
        // (net_enable_timestamp): give it a moment before the datagram.
        std::thread::sleep(Duration::from_millis(100));
        a.send_to(b"hello", to)
            .unwrap_or_else(|e| unreachable!("{e}"));
        // The socket with the datagram is flagged, the quiet one is not.
        let ready = wait([&a, &b], Duration::from_secs(2)).unwrap_or_else(|e| unreachable!("{e}"));
        let data: Vec<bool> = ready.iter().map(|r| r.data).collect();
        assert_eq!(data, [false, true, false, false]);
        // No socket: a plain sleep.
        let none: [&TimestampedSocket; 0] = [];
        assert_eq!(
            wait(none, Duration::from_millis(1)).ok(),
            Some([Ready::default(); MAX_POLLED])
        );
        let mut buf = [0u8; MAX_DATAGRAM];
        let got = b.recv(&mut buf).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(buf.get(..got.len), Some(&b"hello"[..]));
        assert_eq!(
            got.from,
            a.local_addr().unwrap_or_else(|e| unreachable!("{e}"))
        );
        if b.kernel_timestamps() {
            let age = got
                .kernel_time
                .and_then(|t| SystemTime::now().duration_since(t).ok());
            assert!(age.is_some_and(|a| a < Duration::from_secs(2)), "{age:?}");
        }
    }
}
