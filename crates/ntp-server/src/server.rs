//! The sans-IO server core.

use core::net::{IpAddr, SocketAddr};

use ntp_auth::{KEY_ID_LEN, KeyId, KeyStore, MAX_DIGEST_LEN};
use ntp_proto::{
    ExtensionFields, HEADER_LEN, KissCode, LeapIndicator, Mode, Packet, RefId, Stratum,
    SystemState, Timestamp, TrailerItem,
};

use crate::auth::{Keys, Seal};
use crate::{
    AccessAction, Acl, ConfigError, Counters, DropReason, Instant, MacPolicy, RateLimiter,
    RateVerdict, ServerConfig, SymmetricPolicy, UnsynchronizedPolicy, Versions,
};

/// Length of an unauthenticated response: the 48-octet header, without
/// extension fields or MAC. Requests are at least this long, so such a
/// response is never longer than its request (amplification factor at
/// most 1, RFC 8633 section 3.4).
pub const RESPONSE_LEN: usize = HEADER_LEN;

/// The longest response, and so an output buffer size that always
/// suffices: the header and a MAC of the longest digest (48 + 4 + 64 =
/// 116 octets, an NTPv3 request signed with a SHA-512 key). A signed
/// response is header and MAC only, as long as the request's own MAC, so
/// it is never longer than its request either.
pub const MAX_RESPONSE_LEN: usize = HEADER_LEN + KEY_ID_LEN + MAX_DIGEST_LEN;

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
    key_id: Option<KeyId>,
    crypto_nak: bool,
}

impl Reply {
    /// Octets of the datagram: [`RESPONSE_LEN`] (48) for an
    /// unauthenticated response, plus the MAC (4-octet key id and digest)
    /// of a signed one ([`key_id`](Self::key_id)) or the 4-octet
    /// crypto-NAK ([`crypto_nak`](Self::crypto_nak)). Never more than the
    /// request's length, nor than [`MAX_RESPONSE_LEN`].
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

    /// The key that signs this reply: the key whose MAC the request
    /// carried and that verified (RFC 5905, section 9.2).
    /// [`Server::finish`] writes the MAC.
    #[must_use]
    pub const fn key_id(&self) -> Option<KeyId> {
        self.key_id
    }

    /// Whether the reply ends in a crypto-NAK (RFC 5905, section 7.3): the
    /// request's MAC did not verify and [`MacPolicy::CryptoNak`] is in
    /// force.
    #[must_use]
    pub const fn crypto_nak(&self) -> bool {
        self.crypto_nak
    }
}

/// The sans-IO NTP server: one call per received datagram, no socket, no
/// clock, no allocation per request.
///
/// # Contract
///
/// - For each datagram, call [`handle`](Self::handle) with its payload,
///   source address, the receive time `T2` read from the system clock as
///   close to its arrival as possible (for example a kernel timestamp), the
///   monotonic time `now`, and a buffer of [`MAX_RESPONSE_LEN`] octets
///   (a shorter one drops the requests whose answer does not fit, with
///   [`DropReason::BufferTooSmall`]). On [`Action::Respond`] call
///   [`Server::finish`] with the reply, the same buffer and the transmit
///   time, and send the returned octets to the source address; on
///   [`Action::Drop`] send nothing.
/// - `now` must not go backwards; if it does, the core uses the latest
///   `now` it has seen.
/// - The system state ([`set_system_state`](Self::set_system_state)) may
///   be replaced between any two calls; each response uses the state
///   current at its `handle` call. The keys ([`set_keys`](Self::set_keys))
///   too, but a signed reply is signed in `finish` with the key of its id
///   held then: if that key is gone, `finish` returns nothing to send.
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
/// - Versions 3 and 4 are answered; symmetric-active requests get a
///   mode-2 answer.
/// - The server holds no keys until [`set_keys`](Self::set_keys). A
///   request whose MAC verifies with one of its keys is answered with a
///   MAC from the same key; a request whose MAC does not verify (every MAC
///   while there are no keys) is answered with a crypto-NAK
///   ([`MacPolicy::CryptoNak`], RFC 5905 section 9.2, as ntpd does), which
///   tells a keyed client that authentication failed.
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
/// 2. Access control ([`Acl`]): `ignore` drops.
/// 3. Authentication (RFC 5905, section 9.2 and appendix A.5.1,
///    `receive()`): a request without a MAC goes on unauthenticated. A
///    request that carries a crypto-NAK is dropped
///    ([`DropReason::Authenticated`]): only a failed MAC earns a
///    crypto-NAK, and a crypto-NAK earns nothing (A.5.1: `A_CRYPTO` is not
///    answered). A MAC that verifies with the key its key id names makes
///    the answer, Kiss-o'-Death included, signed with that key. A MAC
///    that does not (unknown key id, digest of the wrong length for the
///    key in this version, wrong digest) is counted in
///    [`Counters::bad_mac`](crate::Counters::bad_mac) and handled by the
///    [`MacPolicy`]: answered with a crypto-NAK after the header, dropped,
///    or answered as if it carried no MAC. The response's length is then
///    known: an output buffer shorter than it drops the request
///    ([`DropReason::BufferTooSmall`]); a response longer than the
///    request, which the arithmetic rules out, would be dropped as
///    [`DropReason::BadPacket`] rather than sent.
/// 4. Access control again: `deny` and `restrict` answer with KoD `DENY`
///    / `RSTR`, metered by the rate limiter (a sender over the limit gets
///    nothing), so a denied address cannot use us as a reflector either.
/// 5. An unsynchronized server under [`UnsynchronizedPolicy::Drop`] drops.
/// 6. `limited` clients go through the rate limiter, authenticated or not:
///    within the limit they are answered with a poll of at least the
///    limiter's interval; over it, 1 in `leak` gets a KoD `RATE` and the
///    rest are dropped.
/// 7. The response (RFC 5905, appendix A.5.3 `fast_xmit()`, figure 31):
///    version of the request, mode 4, poll of the request, leap indicator,
///    stratum, precision, root delay and dispersion, reference id and time
///    from the system state, origin = the request's transmit timestamp,
///    receive = `rx_time`, transmit = the time given to
///    [`Server::finish`]; then the MAC, which `finish` computes over the
///    48-octet header once the transmit timestamp is in it, or the
///    crypto-NAK. Extension fields are never sent. The stratum is sent as
///    the state holds it: unlike `fast_xmit()`, which maps 16 (MAXSTRAT)
///    to 0, we keep 16, since a stratum 0 packet is a Kiss-o'-Death (RFC
///    5905, section 7.4).
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
    /// Symmetric keys; `Debug` shows ids and types, never secrets.
    keys: Keys,
    counters: Counters,
    last_now: Instant,
}

impl Server {
    /// Builds a server without keys: compiles the access-control list and
    /// allocates the rate-limit table (the only allocations it makes,
    /// besides [`set_keys`](Self::set_keys)).
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
            keys: Keys::default(),
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

    /// Replaces the symmetric keys (RFC 5905, section 7.3; RFC 8573) with
    /// those of `keys`: requests whose MAC verifies with one of them are
    /// answered with a MAC from the same key, the others follow the
    /// [`MacPolicy`].
    ///
    /// The keys are copied into one allocation of their exact size (no
    /// allocation per request: lookups are binary searches), then `keys`
    /// is dropped, which zeroes its secrets; the keys replaced are zeroed
    /// as they drop. A reply from [`handle`](Self::handle) not yet
    /// [`finish`](Self::finish)ed is signed with the key of its id held at
    /// `finish` time, or not sent if there is none.
    pub fn set_keys<const N: usize>(&mut self, keys: KeyStore<N>) {
        self.keys = Keys::from_store(keys);
    }

    /// The ids of the keys held, in ascending order. The keys themselves
    /// stay inside the server.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = KeyId> + '_ {
        self.keys.ids()
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
    /// contract and the order of checks. Writes at most
    /// [`MAX_RESPONSE_LEN`] octets into `out`, never more than
    /// `request.len()`, and nothing when it drops the request.
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
                let add = |counter: &mut u64| *counter = counter.wrapping_add(1);
                if reply.mode == Mode::SymmetricPassive {
                    add(&mut self.counters.symmetric);
                }
                if reply.len > RESPONSE_LEN {
                    if reply.key_id.is_some() {
                        add(&mut self.counters.authenticated);
                    } else if reply.crypto_nak {
                        add(&mut self.counters.crypto_nak);
                    }
                }
                add(match reply.kiss {
                    None => &mut self.counters.answered,
                    Some(KissCode::Deny) => &mut self.counters.kiss.deny,
                    Some(KissCode::Rstr) => &mut self.counters.kiss.rstr,
                    Some(_) => &mut self.counters.kiss.rate,
                });
                Action::Respond(reply)
            }
            Err(reason) => {
                self.counters.drop(reason);
                Action::Drop(reason)
            }
        }
    }

    /// Stamps the transmit timestamp into the reply [`handle`](Self::handle)
    /// wrote into `out`, signs it if it is to be signed, and returns the
    /// datagram to send.
    ///
    /// Call it on the buffer `handle` wrote, as late as possible before
    /// sending: the transmit timestamp is `T3` of the on-wire protocol (RFC
    /// 5905, section 8), and every nanosecond between stamping and sending
    /// is error. Until then the transmit timestamp holds the receive
    /// timestamp, a valid if less exact value. Kiss-o'-Death packets keep
    /// the transmit timestamp of the request (as NTPsec sends them), so
    /// `transmit` is not written into them.
    ///
    /// A reply with a [`key_id`](Reply::key_id) is then signed: the MAC of
    /// that key over the 48-octet header, transmit timestamp included, is
    /// written after it (RFC 5905, section 7.3: key id, then the digest,
    /// of the length the key type has in the request's version). Signing
    /// costs one digest; a crypto-NAK was already written by `handle`.
    ///
    /// The result is empty, and nothing should be sent, if `out` is shorter
    /// than [`Reply::len`], or if the server no longer holds a key of the
    /// reply's id with a MAC of the same length ([`set_keys`](Self::set_keys)
    /// replaced the keys in between).
    #[inline]
    pub fn finish<'a>(&self, reply: &Reply, out: &'a mut [u8], transmit: Timestamp) -> &'a [u8] {
        let Some(datagram) = out.get_mut(..reply.len) else {
            return &[];
        };
        let Some((header, mac)) = datagram.split_first_chunk_mut::<HEADER_LEN>() else {
            return &[];
        };
        if reply.kiss.is_none() {
            Packet::new_unchecked(&mut header[..]).set_transmit_timestamp(transmit);
        }
        if let Some(key_id) = reply.key_id {
            let Some(key) = self.keys.get(key_id.get()) else {
                return &[];
            };
            match key.sign(header, mac) {
                Ok(len) if len == mac.len() => {}
                _ => return &[],
            }
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
        let packet = Packet::new_unchecked(header);
        let mode = match packet.mode() {
            Mode::Client => Mode::Server,
            Mode::SymmetricActive if self.symmetric == SymmetricPolicy::Answer => {
                Mode::SymmetricPassive
            }
            _ => return Err(DropReason::Mode),
        };
        let version = packet.version();
        if !self.versions.contains(version) {
            return Err(DropReason::Version);
        }
        let (out, trailer_room) = out
            .split_first_chunk_mut::<HEADER_LEN>()
            .ok_or(DropReason::BufferTooSmall)?;
        let trailer = if payload.is_empty() {
            None
        } else {
            ExtensionFields::new(payload, version)
                .trailer()
                .map_err(|_| DropReason::BadPacket)?
        };

        self.last_now = self.last_now.max(now);
        let now = self.last_now;
        let access = self.acl.lookup(ip);
        if access == AccessAction::Ignore {
            return Err(DropReason::Acl);
        }
        let seal = match trailer {
            Some(item) => self.authenticate(request, version, item)?,
            None => Seal::Plain,
        };
        let trailer_out: &mut [u8] = match seal {
            Seal::Plain => &mut [],
            sealed => {
                // Header and MAC (as long as the request's own MAC) or a
                // 4-octet crypto-NAK (shorter than the MAC it answers):
                // never longer than the request. Checked anyway, so that
                // no future path can make us an amplifier.
                if sealed.response_len() > request.len() {
                    return Err(DropReason::BadPacket);
                }
                trailer_room
                    .get_mut(..sealed.trailer_len())
                    .ok_or(DropReason::BufferTooSmall)?
            }
        };

        let limited = match access {
            AccessAction::Allow | AccessAction::Ignore => false,
            AccessAction::Limited => true,
            action @ (AccessAction::Deny | AccessAction::Restrict) => {
                if let RateVerdict::Limit { .. } = self.limiter.check(ip, now) {
                    return Err(DropReason::RateLimited);
                }
                let code = if action == AccessAction::Deny {
                    KissCode::Deny
                } else {
                    KissCode::Rstr
                };
                kiss(&packet, mode, code, packet.poll(), out);
                seal.write(trailer_out);
                return Ok(reply(seal, Some(code), mode));
            }
        };
        if !self.synchronized && self.unsynchronized == UnsynchronizedPolicy::Drop {
            return Err(DropReason::Unsynchronized);
        }
        let mut poll = packet.poll();
        if limited {
            poll = poll.max(self.limiter.interval());
            match self.limiter.check(ip, now) {
                RateVerdict::Allow => {}
                RateVerdict::Limit { kiss: true } => {
                    kiss(&packet, mode, KissCode::Rate, poll, out);
                    seal.write(trailer_out);
                    return Ok(reply(seal, Some(KissCode::Rate), mode));
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
        response.set_origin_timestamp(packet.transmit_timestamp());
        response.set_receive_timestamp(rx_time);
        response.set_transmit_timestamp(rx_time);
        seal.write(trailer_out);
        Ok(reply(seal, None, mode))
    }

    /// The verdict on a request's trailer (RFC 5905, appendix A.5.1,
    /// `receive()`): the seal of its answer, or why it gets none. Apart
    /// from the packet path, so that the unauthenticated path stays small
    /// enough to inline.
    #[inline(never)]
    fn authenticate(
        &mut self,
        request: &[u8],
        version: u8,
        trailer: TrailerItem<'_>,
    ) -> Result<Seal, DropReason> {
        match trailer {
            TrailerItem::Mac(mac) => {
                let covered = request.get(..mac.offset).unwrap_or(&[]);
                if let Some(seal) = self.keys.verify(covered, version, &mac) {
                    return Ok(seal);
                }
                self.counters.bad_mac = self.counters.bad_mac.wrapping_add(1);
                match self.mac {
                    MacPolicy::CryptoNak => Ok(Seal::CryptoNak),
                    MacPolicy::AnswerUnauthenticated => Ok(Seal::Plain),
                    MacPolicy::Drop => Err(DropReason::Authenticated),
                }
            }
            TrailerItem::CryptoNak { .. } => Err(DropReason::Authenticated),
            // `trailer()` returns no extension field; any other item one
            // day is no MAC either.
            _ => Ok(Seal::Plain),
        }
    }
}

/// The [`Reply`] for a response sealed with `seal`.
#[inline]
const fn reply(seal: Seal, kiss: Option<KissCode>, mode: Mode) -> Reply {
    Reply {
        len: seal.response_len(),
        kiss,
        mode,
        key_id: seal.key_id(),
        crypto_nak: matches!(seal, Seal::CryptoNak),
    }
}

/// Writes the header of a Kiss-o'-Death answer to `request` (RFC 5905,
/// section 7.4), in the form NTPsec sends: leap indicator 3, the request's
/// version, `mode` (4, or 2 for a symmetric-active request), stratum 0,
/// the kiss code as reference id, the request's precision, `poll`, zero
/// root delay, root dispersion and reference time, and the request's
/// transmit timestamp as origin, receive and transmit timestamps, so the
/// packet reveals nothing about our clock. A MAC or crypto-NAK follows as
/// for any answer.
fn kiss(
    request: &Packet<&[u8; HEADER_LEN]>,
    mode: Mode,
    code: KissCode,
    poll: i8,
    out: &mut [u8; HEADER_LEN],
) {
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
}
