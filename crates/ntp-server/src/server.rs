//! The sans-IO server core.

use core::net::{IpAddr, SocketAddr};

use ntp_proto::{
    ExtensionFields, HEADER_LEN, KissCode, LeapIndicator, Mode, Packet, RefId, Stratum,
    SystemState, Timestamp, TrailerItem,
};

use crate::{
    AccessAction, Acl, ConfigError, Counters, DropReason, Instant, MacPolicy, RateLimiter,
    RateVerdict, ServerConfig, SymmetricPolicy, UnsynchronizedPolicy, Versions,
};

/// Length of every response: the 48-octet header, without extension
/// fields or MAC. Requests are at least this long, so a response is never
/// longer than its request (amplification factor at most 1, RFC 8633
/// section 3.4).
pub const RESPONSE_LEN: usize = HEADER_LEN;

/// The core's answer to one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Send the first [`Reply::len`] octets of the output buffer back to
    /// the client, after [`Server::finish`].
    Respond(Reply),
    /// Send nothing.
    Drop(DropReason),
}

/// A response written into the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reply {
    len: usize,
    kiss: Option<KissCode>,
    mode: Mode,
}

impl Reply {
    /// Octets written ([`RESPONSE_LEN`]).
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Always false: a reply has a header.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The kiss code if this is a Kiss-o'-Death packet.
    #[must_use]
    pub const fn kiss(&self) -> Option<KissCode> {
        self.kiss
    }

    /// The mode of the response: [`Mode::Server`] for a client request,
    /// [`Mode::SymmetricPassive`] for a symmetric-active one
    /// ([`SymmetricPolicy`]).
    #[must_use]
    pub const fn mode(&self) -> Mode {
        self.mode
    }
}

/// The sans-IO NTP server: one call per received datagram, no socket, no
/// clock, no allocation after construction.
///
/// # Contract
///
/// - For each datagram, call [`handle`](Self::handle) with its payload,
///   source address, the receive time `T2` read from the system clock as
///   close to its arrival as possible (for example a kernel timestamp), the
///   monotonic time `now`, and a buffer of at least [`RESPONSE_LEN`]
///   octets. On [`Action::Respond`] call [`Server::finish`] with the
///   transmit time and send the returned octets to the source address; on
///   [`Action::Drop`] send nothing.
/// - `now` must not go backwards; if it does, the core uses the latest
///   `now` it has seen.
/// - The system state ([`set_system_state`](Self::set_system_state)) may
///   be replaced between any two calls; each response uses the state
///   current at its `handle` call.
/// - Bad input never panics and never changes anything but the counters
///   and the sender's rate-limit entry.
///
/// # What the defaults do
///
/// - [`ServerConfig::default()`] meters **every** client
///   ([`AccessAction::Limited`](crate::AccessAction::Limited), RFC 8633
///   section 5.4): a client may send [`DEFAULT_RATE_BURST`](crate::ratelimit::DEFAULT_RATE_BURST)
///   requests back to back and then one per 2^[`DEFAULT_RATE_INTERVAL`](crate::ratelimit::DEFAULT_RATE_INTERVAL)
///   s on average; beyond that it gets a KoD `RATE` now and then and
///   nothing otherwise. A test client that polls faster (a loopback demo)
///   needs `acl_default = AccessAction::Allow` or a rule for its address.
///   The rate limiter's hash key is random with `std`.
/// - [`SystemState::default()`](ntp_proto::SystemState) is an
///   **unsynchronized** clock (leap 3, stratum 16): clients are answered
///   but refuse the time. Serve [`SystemState::primary`](ntp_proto::SystemState::primary)
///   for a reference clock, or the state of an `ntp-client` `System`
///   (its `system_state()`) for a secondary server.
/// - Versions 3 and 4 are answered, requests with a MAC are dropped (no
///   keys), symmetric-active requests get a mode-2 answer.
///
/// # Order of checks
///
/// 1. At least 48 octets, else [`DropReason::BadPacket`]; mode 3 (client),
///    or mode 1 (symmetric active) under [`SymmetricPolicy::Answer`], else
///    [`DropReason::Mode`]; a configured version, else
///    [`DropReason::Version`]; an output buffer of 48 octets, else
///    [`DropReason::BufferTooSmall`]; extension fields and MAC well formed
///    (RFC 7822), else [`DropReason::BadPacket`]. Unknown extension fields
///    are ignored.
/// 2. Access control ([`Acl`]): `ignore` drops; `deny` and `restrict`
///    answer with KoD `DENY` / `RSTR`, metered by the rate limiter (a
///    sender over the limit gets nothing), so a denied address cannot use
///    us as a reflector either.
/// 3. A request with a MAC under [`MacPolicy::Drop`] is dropped; an
///    unsynchronized server under [`UnsynchronizedPolicy::Drop`] drops.
/// 4. `limited` clients go through the rate limiter: within the limit they
///    are answered with a poll of at least the limiter's interval; over it,
///    1 in `leak` gets a KoD `RATE` and the rest are dropped.
/// 5. The response (RFC 5905, appendix A.5.3 `fast_xmit()`, figure 31):
///    version of the request, mode 4, poll of the request, leap indicator,
///    stratum, precision, root delay and dispersion, reference id and time
///    from the system state, origin = the request's transmit timestamp,
///    receive = `rx_time`, transmit = the time given to
///    [`Server::finish`]. The stratum is sent as the state holds it: unlike
///    `fast_xmit()`, which maps 16 (MAXSTRAT) to 0, we keep 16, since a
///    stratum 0 packet is a Kiss-o'-Death (RFC 5905, section 7.4).
///
/// A symmetric-active request (mode 1, as Windows' W32Time sends) goes
/// through the same checks and gets the same answer in mode 2 (symmetric
/// passive), Kiss-o'-Death packets included; no association is made
/// ([`SymmetricPolicy`]). Its other fields (leap indicator, stratum, root
/// delay and dispersion, reference id, reference and origin timestamps)
/// are ignored like a client's: only its version, poll and transmit
/// timestamp shape the answer.
///
/// # Example
///
/// A whole server turn over std sockets on the loopback interface:
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::net::UdpSocket;
/// use std::time::SystemTime;
/// use ntp_proto::{Date, RefId, SystemState, Timestamp};
/// use ntp_server::{Action, Instant, Server, ServerConfig};
///
/// let clock = || -> Timestamp { Date::try_from(SystemTime::now()).unwrap().to_timestamp() };
/// // A primary server on this machine's clock.
/// let state = SystemState::primary(RefId::LOCL, clock());
/// let mut server = Server::new(&ServerConfig::default(), state)?;
/// let socket = UdpSocket::bind("127.0.0.1:0")?;
/// let client = UdpSocket::bind("127.0.0.1:0")?;
/// let mut request = [0u8; 48];
/// request[0] = 0x23; // NTPv4, client
/// request[40..].copy_from_slice(&0x1234_5678_9abc_def0_u64.to_be_bytes());
/// client.send_to(&request, socket.local_addr()?)?;
///
/// let origin = std::time::Instant::now();
/// let (mut buf, mut out) = ([0u8; 1024], [0u8; 1024]);
/// let (len, source) = socket.recv_from(&mut buf)?;
/// let rx_time = clock();
/// let now = Instant::from_std(origin, std::time::Instant::now());
/// if let Action::Respond(reply) = server.handle(&buf[..len], source, rx_time, now, &mut out) {
///     socket.send_to(server.finish(&reply, &mut out, clock()), source)?;
/// }
///
/// let (len, _) = client.recv_from(&mut buf)?;
/// assert_eq!(len, 48);
/// assert_eq!(buf[0], 0x24); // no leap warning, NTPv4, server
/// assert_eq!(buf[1], 1); // stratum 1
/// assert_eq!(buf[24..32], request[40..48]); // origin = our transmit
/// assert_eq!(server.counters().answered, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Server {
    versions: Versions,
    acl: Acl,
    limiter: RateLimiter,
    unsynchronized: UnsynchronizedPolicy,
    mac: MacPolicy,
    symmetric: SymmetricPolicy,
    state: SystemState,
    /// The response header with the system variables filled in.
    template: [u8; HEADER_LEN],
    synchronized: bool,
    counters: Counters,
    last_now: Instant,
}

impl Server {
    /// Builds a server: compiles the access-control list and allocates the
    /// rate-limit table (the only allocations it ever makes).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for the first invalid setting.
    pub fn new(config: &ServerConfig, state: SystemState) -> Result<Self, ConfigError> {
        let acl = Acl::new(config.acl_default, &config.acl_rules)?;
        let limiter = RateLimiter::new(&config.rate_limit)?;
        let mut server = Self {
            versions: config.versions,
            acl,
            limiter,
            unsynchronized: config.unsynchronized,
            mac: config.mac,
            symmetric: config.symmetric,
            state,
            template: [0; HEADER_LEN],
            synchronized: false,
            counters: Counters::default(),
            last_now: Instant::ZERO,
        };
        server.set_system_state(state);
        Ok(server)
    }

    /// The system state copied into responses.
    #[must_use]
    pub const fn system_state(&self) -> &SystemState {
        &self.state
    }

    /// Replaces the system state; the next response uses it.
    pub fn set_system_state(&mut self, state: SystemState) {
        self.state = state;
        self.synchronized = state.is_synchronized();
        let mut template = [0; HEADER_LEN];
        let mut packet = Packet::new_unchecked(&mut template[..]);
        packet.set_leap_indicator(state.leap);
        packet.set_mode(Mode::Server);
        packet.set_stratum(state.stratum);
        packet.set_precision(state.precision);
        packet.set_root_delay(state.root_delay);
        packet.set_root_dispersion(state.root_dispersion);
        packet.set_reference_id(state.reference_id);
        packet.set_reference_timestamp(state.reference_time);
        self.template = template;
    }

    /// The counters.
    #[must_use]
    pub const fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Returns the counters and sets them to zero.
    pub fn take_counters(&mut self) -> Counters {
        core::mem::take(&mut self.counters)
    }

    /// The compiled access-control list.
    #[must_use]
    pub const fn acl(&self) -> &Acl {
        &self.acl
    }

    /// The rate limiter.
    #[must_use]
    pub const fn rate_limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// Handles one datagram; see the [type documentation](Self) for the
    /// contract and the order of checks. Writes at most [`RESPONSE_LEN`]
    /// octets into `out`, never more than `request.len()`.
    #[inline]
    pub fn handle(
        &mut self,
        request: &[u8],
        client: SocketAddr,
        rx_time: Timestamp,
        now: Instant,
        out: &mut [u8],
    ) -> Action {
        self.counters.received = self.counters.received.wrapping_add(1);
        match self.process(request, client.ip(), rx_time, now, out) {
            Ok(reply) => {
                if reply.mode == Mode::SymmetricPassive {
                    self.counters.symmetric = self.counters.symmetric.wrapping_add(1);
                }
                let counter = match reply.kiss {
                    None => &mut self.counters.answered,
                    Some(KissCode::Deny) => &mut self.counters.kiss.deny,
                    Some(KissCode::Rstr) => &mut self.counters.kiss.rstr,
                    Some(_) => &mut self.counters.kiss.rate,
                };
                *counter = counter.wrapping_add(1);
                Action::Respond(reply)
            }
            Err(reason) => {
                self.counters.drop(reason);
                Action::Drop(reason)
            }
        }
    }

    /// Stamps the transmit timestamp into the reply [`handle`](Self::handle)
    /// wrote into `out` and returns the datagram to send.
    ///
    /// Call it on the buffer `handle` wrote, as late as possible before
    /// sending: the transmit timestamp is `T3` of the on-wire protocol (RFC
    /// 5905, section 8), and every nanosecond between stamping and sending
    /// is error. Until then the transmit timestamp holds the receive
    /// timestamp, a valid if less exact value. Kiss-o'-Death packets keep
    /// the transmit timestamp of the request (as NTPsec sends them), so
    /// `transmit` is not written into them.
    ///
    /// If `out` is shorter than [`Reply::len`], nothing is written and the
    /// result is empty.
    #[inline]
    pub fn finish<'a>(&self, reply: &Reply, out: &'a mut [u8], transmit: Timestamp) -> &'a [u8] {
        let Some(datagram) = out.get_mut(..reply.len) else {
            return &[];
        };
        if reply.kiss.is_none() {
            Packet::new_unchecked(&mut *datagram).set_transmit_timestamp(transmit);
        }
        datagram
    }

    #[inline]
    fn process(
        &mut self,
        request: &[u8],
        ip: IpAddr,
        rx_time: Timestamp,
        now: Instant,
        out: &mut [u8],
    ) -> Result<Reply, DropReason> {
        let header: &[u8; HEADER_LEN] = request.first_chunk().ok_or(DropReason::BadPacket)?;
        let payload = request.get(HEADER_LEN..).unwrap_or(&[]);
        let request = Packet::new_unchecked(header);
        let mode = match request.mode() {
            Mode::Client => Mode::Server,
            Mode::SymmetricActive if self.symmetric == SymmetricPolicy::Answer => {
                Mode::SymmetricPassive
            }
            _ => return Err(DropReason::Mode),
        };
        let version = request.version();
        if !self.versions.contains(version) {
            return Err(DropReason::Version);
        }
        let out: &mut [u8; HEADER_LEN] = out.first_chunk_mut().ok_or(DropReason::BufferTooSmall)?;
        let trailer = packet_trailer(payload, version)?;

        self.last_now = self.last_now.max(now);
        let now = self.last_now;
        let limited = match self.acl.lookup(ip) {
            AccessAction::Allow => false,
            AccessAction::Limited => true,
            AccessAction::Ignore => return Err(DropReason::Acl),
            action @ (AccessAction::Deny | AccessAction::Restrict) => {
                if let RateVerdict::Limit { .. } = self.limiter.check(ip, now) {
                    return Err(DropReason::RateLimited);
                }
                let code = if action == AccessAction::Deny {
                    KissCode::Deny
                } else {
                    KissCode::Rstr
                };
                return Ok(kiss(&request, mode, code, request.poll(), out));
            }
        };
        if trailer && self.mac == MacPolicy::Drop {
            return Err(DropReason::Authenticated);
        }
        if !self.synchronized && self.unsynchronized == UnsynchronizedPolicy::Drop {
            return Err(DropReason::Unsynchronized);
        }
        let mut poll = request.poll();
        if limited {
            poll = poll.max(self.limiter.interval());
            match self.limiter.check(ip, now) {
                RateVerdict::Allow => {}
                RateVerdict::Limit { kiss: true } => {
                    return Ok(kiss(&request, mode, KissCode::Rate, poll, out));
                }
                RateVerdict::Limit { kiss: false } => return Err(DropReason::RateLimited),
            }
        }

        *out = self.template;
        let mut response = Packet::new_unchecked(&mut out[..]);
        if mode != Mode::Server {
            response.set_mode(mode);
        }
        response.set_version(version);
        response.set_poll(poll);
        response.set_origin_timestamp(request.transmit_timestamp());
        response.set_receive_timestamp(rx_time);
        response.set_transmit_timestamp(rx_time);
        Ok(Reply {
            len: RESPONSE_LEN,
            kiss: None,
            mode,
        })
    }
}

/// Whether the octets after the header end in a MAC or crypto-NAK.
#[inline]
fn packet_trailer(payload: &[u8], version: u8) -> Result<bool, DropReason> {
    if payload.is_empty() {
        return Ok(false);
    }
    match ExtensionFields::new(payload, version).trailer() {
        Ok(Some(TrailerItem::Mac(_) | TrailerItem::CryptoNak { .. })) => Ok(true),
        Ok(_) => Ok(false),
        Err(_) => Err(DropReason::BadPacket),
    }
}

/// Writes a Kiss-o'-Death answer to `request` (RFC 5905, section 7.4), in
/// the form NTPsec sends: leap indicator 3, the request's version, `mode`
/// (4, or 2 for a symmetric-active request), stratum 0, the kiss code as reference id, the request's precision,
/// `poll`, zero root delay, root dispersion and reference time, and the
/// request's transmit timestamp as origin, receive and transmit
/// timestamps, so the packet reveals nothing about our clock.
fn kiss(
    request: &Packet<&[u8; HEADER_LEN]>,
    mode: Mode,
    code: KissCode,
    poll: i8,
    out: &mut [u8; HEADER_LEN],
) -> Reply {
    *out = [0; HEADER_LEN];
    let xmt = request.transmit_timestamp();
    let mut response = Packet::new_unchecked(&mut out[..]);
    response.set_leap_indicator(LeapIndicator::Unsynchronized);
    response.set_version(request.version());
    response.set_mode(mode);
    response.set_stratum(Stratum::UNSPECIFIED);
    response.set_poll(poll);
    response.set_precision(request.precision());
    response.set_reference_id(RefId::from_kiss_code(code));
    response.set_origin_timestamp(xmt);
    response.set_receive_timestamp(xmt);
    response.set_transmit_timestamp(xmt);
    Reply {
        len: RESPONSE_LEN,
        kiss: Some(code),
        mode,
    }
}
