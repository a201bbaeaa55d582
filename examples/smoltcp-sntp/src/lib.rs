//! An embedded example: the SNTP one-shot exchange of
//! [`ntp_client::sntp`] over a [`smoltcp`] UDP socket, `no_std` and
//! without a heap.
//!
//! [`SntpOverSmoltcp`] sends one 48-octet request from a UDP socket that
//! the caller keeps in its own [`SocketSet`](smoltcp::iface::SocketSet)
//! and returns the checked [`Measurement`] of the answer (RFC 4330; the
//! on-wire calculations of RFC 5905, section 8). Like the cores it is
//! built on, it reads no clock and draws no random number: the caller
//! passes the 64-bit nonce (from its hardware generator), the wall-clock
//! dates T1 and T4 (from its RTC or its model of the time) and smoltcp's
//! monotonic [`Instant`]s, and runs the interface itself.
//!
//! # Contract
//!
//! 1. [`start`](SntpOverSmoltcp::start) with the socket, a nonce, T1 (the
//!    wall clock now) and `now`: binds the socket to the local port if it
//!    is not bound yet and queues the request; a request still in flight
//!    is forgotten (its late answer will be ignored).
//! 2. Then, in the main loop, after each
//!    [`Interface::poll`](smoltcp::iface::Interface::poll):
//!    [`poll`](SntpOverSmoltcp::poll) with the socket, T4 (the wall clock
//!    now) and `now`. It reads every datagram waiting in the socket:
//!    those from another address or port, and those that do not answer
//!    our request (truncated, wrong version or mode, another origin
//!    timestamp) are ignored and counted
//!    ([`ignored`](SntpOverSmoltcp::ignored)); the first answer returns
//!    `Ok(Some(measurement))` or, if the server refused or its answer is
//!    unusable, `Err(SntpError::Response(..))`. With nothing yet it
//!    returns `Ok(None)` until the reply timeout, then
//!    `Err(SntpError::Timeout)`. Either way the exchange is then over.
//! 3. Sleep until the earlier of
//!    [`Interface::poll_at`](smoltcp::iface::Interface::poll_at) and
//!    [`poll_at`](SntpOverSmoltcp::poll_at) (or until the network
//!    interrupt).
//!
//! # Example
//!
//! The run loop, generic over any smoltcp device; here driven on a
//! `Loopback` device (smoltcp with `alloc`) where no server listens,
//! so the exchange ends in a timeout after 4 s of virtual time. The test
//! `tests/loopback.rs` runs the same loop against `ntp-server`'s core
//! (`cargo test -p ntp-smoltcp-example`).
//!
//! ```
//! use ntp_client::{Date, Measurement, NtpDuration};
//! use ntp_smoltcp_example::{SntpError, SntpOverSmoltcp};
//! use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
//! use smoltcp::phy::{Device, Loopback, Medium};
//! use smoltcp::socket::udp;
//! use smoltcp::time::{Duration, Instant};
//! use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpEndpoint};
//!
//! /// One exchange; `wall_clock` maps smoltcp's time to the date of the
//! /// real-time clock. At most `max_polls` turns of the loop.
//! fn query<D: Device>(
//!     iface: &mut Interface,
//!     device: &mut D,
//!     sockets: &mut SocketSet<'_>,
//!     handle: SocketHandle,
//!     sntp: &mut SntpOverSmoltcp,
//!     nonce: u64,
//!     wall_clock: impl Fn(Instant) -> Date,
//!     mut now: Instant,
//!     max_polls: u32,
//! ) -> Result<Measurement, SntpError> {
//!     sntp.start(sockets.get_mut::<udp::Socket>(handle), nonce, wall_clock(now), now)?;
//!     for _ in 0..max_polls {
//!         iface.poll(now, device, sockets);
//!         let socket = sockets.get_mut::<udp::Socket>(handle);
//!         if let Some(measurement) = sntp.poll(socket, wall_clock(now), now)? {
//!             return Ok(measurement);
//!         }
//!         // On a board: sleep until this instant or the next interrupt.
//!         let wake = [iface.poll_at(now, sockets), sntp.poll_at()];
//!         now = wake.into_iter().flatten().min().unwrap_or(now + Duration::from_millis(1));
//!     }
//!     Err(SntpError::Timeout)
//! }
//!
//! let mut device = Loopback::new(Medium::Ip);
//! let mut iface = Interface::new(Config::new(HardwareAddress::Ip), &mut device, Instant::ZERO);
//! iface.update_ip_addrs(|addrs| {
//!     addrs.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8)).ok();
//! });
//! let (mut rx_meta, mut rx_data) = ([udp::PacketMetadata::EMPTY; 4], [0u8; 4 * 48]);
//! let (mut tx_meta, mut tx_data) = ([udp::PacketMetadata::EMPTY; 1], [0u8; 48]);
//! let socket = udp::Socket::new(
//!     udp::PacketBuffer::new(&mut rx_meta[..], &mut rx_data[..]),
//!     udp::PacketBuffer::new(&mut tx_meta[..], &mut tx_data[..]),
//! );
//! let mut storage: [_; 1] = Default::default();
//! let mut sockets = SocketSet::new(&mut storage[..]);
//! let handle = sockets.add(socket);
//!
//! let server = IpEndpoint::new(IpAddress::v4(127, 0, 0, 1), 123);
//! let mut sntp = SntpOverSmoltcp::new(server, 49_123);
//! let epoch = Date::from_unix(1_800_000_000, 0)?;
//! let wall_clock = |now: Instant| {
//!     epoch.checked_add(NtpDuration::from_nanos(now.total_micros() * 1_000)).unwrap_or(epoch)
//! };
//! let result = query(
//!     &mut iface, &mut device, &mut sockets, handle, &mut sntp,
//!     0x0123_4567_89ab_cdef, wall_clock, Instant::ZERO, 100,
//! );
//! assert_eq!(result, Err(SntpError::Timeout));
//! assert!(!sntp.is_pending()); // the client's deadline ended it, not `max_polls`
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # With embassy-net
//!
//! On an async embassy board the stack runs the interface, so the
//! exchange is the same two calls of [`ntp_client::sntp`] around one
//! `send_to` and a bounded `recv_from` (embassy-net 0.8, which uses
//! smoltcp 0.12 too; compiled as a doctest on the host, not run):
//!
//! ```no_run
//! use embassy_net::udp::{PacketMetadata, UdpSocket};
//! use embassy_net::{IpEndpoint, Stack};
//! use embassy_time::{Duration, Instant, with_deadline};
//! use ntp_client::sntp::{Measurement, Request, ResponseError, SntpConfig};
//! use ntp_client::Date;
//!
//! #[derive(Debug)]
//! enum QueryError {
//!     Socket,
//!     Timeout,
//!     Response(ResponseError),
//! }
//!
//! /// One SNTP exchange; `nonce` from the hardware generator,
//! /// `wall_clock` reads the real-time clock.
//! async fn sntp_query(
//!     stack: Stack<'_>,
//!     server: IpEndpoint,
//!     nonce: u64,
//!     wall_clock: impl Fn() -> Date,
//! ) -> Result<Measurement, QueryError> {
//!     let (mut rx_meta, mut rx_data) = ([PacketMetadata::EMPTY; 4], [0u8; 4 * 64]);
//!     let (mut tx_meta, mut tx_data) = ([PacketMetadata::EMPTY; 1], [0u8; 48]);
//!     let mut socket =
//!         UdpSocket::new(stack, &mut rx_meta, &mut rx_data, &mut tx_meta, &mut tx_data);
//!     socket.bind(49_123).map_err(|_| QueryError::Socket)?;
//!     let request = Request::with_nonce(nonce, wall_clock());
//!     let deadline = Instant::now() + Duration::from_secs(4);
//!     socket.send_to(&request.to_bytes(), server).await.map_err(|_| QueryError::Socket)?;
//!     let mut buf = [0u8; 64];
//!     // At most as many datagrams as the receive buffer holds, then give up.
//!     for _ in 0..socket.packet_recv_capacity() {
//!         let received = with_deadline(deadline, socket.recv_from(&mut buf)).await;
//!         let (len, meta) = received
//!             .map_err(|_| QueryError::Timeout)?
//!             .map_err(|_| QueryError::Socket)?;
//!         let t4 = wall_clock();
//!         if meta.endpoint != server {
//!             continue; // a stray from elsewhere
//!         }
//!         let data = buf.get(..len).unwrap_or_default();
//!         match request.check_response(data, t4, &SntpConfig::default()) {
//!             Ok(measurement) => return Ok(measurement),
//!             Err(error) if error.is_final() => return Err(QueryError::Response(error)),
//!             Err(_) => {} // not the answer to our request: keep waiting
//!         }
//!     }
//!     Err(QueryError::Timeout)
//! }
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use ntp_client::sntp::{Measurement, Request, ResponseError, SntpConfig};
use ntp_client::{DEFAULT_REPLY_TIMEOUT, Date};
use smoltcp::socket::udp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpEndpoint;

// So that a user names the very versions this crate was built with.
pub use ntp_client;
pub use smoltcp;

/// Why an exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SntpError {
    /// The socket could not be bound to the local port (port 0, or the
    /// socket is already bound elsewhere).
    #[error("cannot bind the UDP socket: {0}")]
    Bind(udp::BindError),
    /// The request could not be queued (no route to the server, or the
    /// socket's transmit buffer is full or smaller than 48 octets).
    #[error("cannot send the request: {0}")]
    Send(udp::SendError),
    /// [`poll`](SntpOverSmoltcp::poll) without a request in flight.
    #[error("no request in flight")]
    Idle,
    /// The server answered our request, but the answer cannot be used: a
    /// kiss-o'-death, an unsynchronized server, bad header values
    /// ([`ResponseError::is_final`]).
    #[error("response refused: {0}")]
    Response(#[from] ResponseError),
    /// No answer before the reply timeout.
    #[error("no answer before the reply timeout")]
    Timeout,
}

/// A request in flight.
#[derive(Clone, Copy, Debug)]
struct Pending {
    request: Request,
    deadline: Instant,
}

/// The SNTP client over one smoltcp UDP socket; see the
/// [crate documentation](crate) for the contract and the run loop.
///
/// It holds no reference to the socket: each call takes it from the
/// caller's socket set, so the socket can be reused between exchanges.
#[derive(Clone, Debug)]
pub struct SntpOverSmoltcp {
    server: IpEndpoint,
    local_port: u16,
    config: SntpConfig,
    timeout: Duration,
    pending: Option<Pending>,
    ignored: u32,
}

impl SntpOverSmoltcp {
    /// A client of the server at `server` (port 123 for NTP), sending from
    /// `local_port` (non-zero: smoltcp does not pick one), with the
    /// default response limits and a reply timeout of
    /// [`DEFAULT_REPLY_TIMEOUT`] (4 s).
    #[must_use]
    pub fn new(server: IpEndpoint, local_port: u16) -> Self {
        let micros = DEFAULT_REPLY_TIMEOUT.as_micros();
        Self {
            server,
            local_port,
            config: SntpConfig::default(),
            timeout: Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX)),
            pending: None,
            ignored: 0,
        }
    }

    /// Sets the limits the response is checked against, and the key that
    /// signs the request and must sign the answer
    /// ([`SntpConfig::key`](ntp_client::SntpConfig)), if any. A keyed
    /// request is longer than 48 octets (the MAC follows the header): the
    /// socket's transmit buffer then needs
    /// [`MAX_REQUEST_LEN`](ntp_client::sntp::MAX_REQUEST_LEN) octets.
    #[must_use]
    pub fn with_config(mut self, config: SntpConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets how long [`poll`](Self::poll) waits for the answer.
    #[must_use]
    pub const fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The server's address and port.
    #[must_use]
    pub const fn server(&self) -> IpEndpoint {
        self.server
    }

    /// Datagrams ignored so far: from another endpoint, or not an answer
    /// to the request in flight (a stray, late or spoofed packet).
    #[must_use]
    pub const fn ignored(&self) -> u32 {
        self.ignored
    }

    /// Whether a request is in flight.
    #[must_use]
    pub const fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// When [`poll`](Self::poll) must be called at the latest: the reply
    /// deadline of the request in flight, if any.
    #[must_use]
    pub fn poll_at(&self) -> Option<Instant> {
        self.pending.map(|pending| pending.deadline)
    }

    /// Binds `socket` to the local port if it is not bound yet and queues
    /// a request with transmit nonce `nonce` (from a cryptographically
    /// secure generator: who guesses it can forge the answer), sent at
    /// `t1` on the wall clock and `now` on smoltcp's clock. The packet
    /// leaves at the next [`Interface::poll`](smoltcp::iface::Interface::poll).
    /// Returns the request (its nonce and T1).
    ///
    /// # Errors
    ///
    /// [`SntpError::Bind`] or [`SntpError::Send`]; nothing is then in
    /// flight.
    pub fn start(
        &mut self,
        socket: &mut udp::Socket<'_>,
        nonce: u64,
        t1: Date,
        now: Instant,
    ) -> Result<Request, SntpError> {
        self.pending = None;
        if !socket.is_open() {
            socket.bind(self.local_port).map_err(SntpError::Bind)?;
        }
        let request = Request::with_nonce(nonce, t1);
        socket
            .send_slice(&request.encode(&self.config), self.server)
            .map_err(SntpError::Send)?;
        self.pending = Some(Pending {
            request,
            deadline: now + self.timeout,
        });
        Ok(request)
    }

    /// Reads the datagrams waiting in `socket` (at most as many as its
    /// receive buffer holds), with `t4` the wall clock now and `now`
    /// smoltcp's clock; call it right after
    /// [`Interface::poll`](smoltcp::iface::Interface::poll).
    ///
    /// `Ok(None)`: no answer yet. `Ok(Some(..))`: the measurement; the
    /// exchange is over.
    ///
    /// # Errors
    ///
    /// [`SntpError::Response`] if the server answered with a final refusal
    /// ([`ResponseError::is_final`]), [`SntpError::Timeout`] at the
    /// deadline without an answer (the exchange is then over), or
    /// [`SntpError::Idle`] if no request is in flight.
    pub fn poll(
        &mut self,
        socket: &mut udp::Socket<'_>,
        t4: Date,
        now: Instant,
    ) -> Result<Option<Measurement>, SntpError> {
        let pending = self.pending.ok_or(SntpError::Idle)?;
        // Bounded by the receive buffer: each turn dequeues one datagram.
        for _ in 0..socket.packet_recv_capacity() {
            let Ok((data, meta)) = socket.recv() else {
                break;
            };
            if meta.endpoint != self.server {
                self.ignored = self.ignored.saturating_add(1);
                continue;
            }
            match pending.request.check_response(data, t4, &self.config) {
                Ok(measurement) => {
                    self.pending = None;
                    return Ok(Some(measurement));
                }
                Err(error) if error.is_final() => {
                    self.pending = None;
                    return Err(SntpError::Response(error));
                }
                Err(_) => self.ignored = self.ignored.saturating_add(1),
            }
        }
        if now >= pending.deadline {
            self.pending = None;
            return Err(SntpError::Timeout);
        }
        Ok(None)
    }
}
