//! The sans-IO server core.

use core::net::{IpAddr, SocketAddr};

use alloc::boxed::Box;
use ntp_auth::{KEY_ID_LEN, KeyId, KeyStore, MAX_DIGEST_LEN};
use ntp_nts::cookie::CookieKeys;
use ntp_nts::server::UnverifiedRequest;
use ntp_proto::{
    ExtensionFields, HEADER_LEN, KissCode, LeapIndicator, Mac, Mode, Packet, RefId, Stratum,
    SystemState, Timestamp, TrailerItem,
};

use crate::auth::{Keys, MacCheck, Seal};
use crate::nts::{self, Found, MAX_NTS_RESPONSE_LEN, NTS_SEED_LEN, Nts, Verdict};
use crate::xleave::InterleaveTable;
use crate::{
    AccessAction, Acl, ConfigError, Counters, DropReason, Instant, MacPolicy, RateLimiter,
    RateVerdict, ServerConfig, SymmetricPolicy, UnsynchronizedPolicy, Versions,
};

/// The server's rate limiter: its own, or one it shares with the servers
/// cloned from it after [`Server::share_rate_limiter`].
#[derive(Clone, Debug)]
enum Limiter {
    Own(RateLimiter),
    #[cfg(feature = "std")]
    Shared(std::sync::Arc<crate::SharedRateLimiter>),
}

impl Limiter {
    #[inline]
    fn check(&mut self, ip: IpAddr, now: Instant) -> RateVerdict {
        match self {
            Self::Own(limiter) => limiter.check(ip, now),
            #[cfg(feature = "std")]
            Self::Shared(limiter) => limiter.check(ip, now),
        }
    }

    fn interval(&self) -> i8 {
        match self {
            Self::Own(limiter) => limiter.interval(),
            #[cfg(feature = "std")]
            Self::Shared(limiter) => limiter.interval(),
        }
    }
}

/// Length of an unauthenticated response: the 48-octet header, without
/// extension fields or MAC. Requests are at least this long, so such a
/// response is never longer than its request (amplification factor at
/// most 1, RFC 8633 section 3.4).
pub const RESPONSE_LEN: usize = HEADER_LEN;

/// The longest signed response: the header and a MAC of the longest
/// digest (48 + 4 + 64 = 116 octets, an NTPv3 request signed with a
/// SHA-512 key). A signed response is header and MAC only, as long as the
/// request's own MAC, so it is never longer than its request either.
pub const MAX_MAC_RESPONSE_LEN: usize = HEADER_LEN + KEY_ID_LEN + MAX_DIGEST_LEN;

/// The longest response, and so an output buffer size that always
/// suffices: an NTS response ([`MAX_NTS_RESPONSE_LEN`], 1532 octets,
/// RFC 8915 section 5.7), longer than any signed one
/// ([`MAX_MAC_RESPONSE_LEN`]). Every response is also at most as long as
/// its request. A buffer of [`MAX_MAC_RESPONSE_LEN`] serves everything
/// but NTS; for NTS a buffer as long as the request (at most 1280 octets
/// from our client, `ntp_nts::client::MAX_REQUEST_LEN`) lets the server
/// send every cookie asked for, and a shorter one fewer cookies.
pub const MAX_RESPONSE_LEN: usize = if MAX_NTS_RESPONSE_LEN > MAX_MAC_RESPONSE_LEN {
    MAX_NTS_RESPONSE_LEN
} else {
    MAX_MAC_RESPONSE_LEN
};

/// The NTP port (RFC 5905, section 7.2, `PORT`). A version-1 request in
/// mode 0 is a client request only from another source port (RFC 1305,
/// appendix D, item 1).
const NTP_PORT: u16 = 123;

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
    /// The ticket of the pending NTS request this reply answers.
    nts: Option<u32>,
    /// Whether the reply is in the interleaved mode.
    interleaved: bool,
    /// The receive timestamp of the request it answers.
    rx_time: Timestamp,
    /// The interleaved-mode slot of the client, for
    /// [`Server::transmitted`].
    slot: Option<usize>,
}

impl Reply {
    /// Octets of the datagram: [`RESPONSE_LEN`] (48) for an
    /// unauthenticated response, plus the MAC (4-octet key id and digest)
    /// of a signed one ([`key_id`](Self::key_id)), the 4-octet
    /// crypto-NAK ([`crypto_nak`](Self::crypto_nak)), or the NTS
    /// extension fields ([`nts`](Self::nts); the echoed Unique
    /// Identifier of a Kiss-o'-Death to an NTS request). Never more than
    /// the request's length, the output buffer's, nor
    /// [`MAX_RESPONSE_LEN`].
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Always false: a reply has a header.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether [`Server::transmitted`] keeps anything for this answer: it
    /// went to a client the interleaved mode's table holds. A caller may
    /// skip reading the transmit timestamp of any other.
    #[must_use]
    pub const fn keeps_transmit_time(&self) -> bool {
        self.slot.is_some()
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

    /// Whether the reply is in the interleaved client/server mode (RFC
    /// 9769, section 2): its transmit timestamp is that of our previous
    /// answer to the client, as [`Server::transmitted`] reported it, and
    /// [`Server::finish`] leaves it.
    #[must_use]
    pub const fn interleaved(&self) -> bool {
        self.interleaved
    }

    /// Whether the reply ends in a crypto-NAK (RFC 5905, section 7.3): the
    /// request's MAC did not verify and [`MacPolicy::CryptoNak`] is in
    /// force.
    #[must_use]
    pub const fn crypto_nak(&self) -> bool {
        self.crypto_nak
    }

    /// Whether the reply is NTS-protected (RFC 8915 section 5.7): the
    /// request's cookie and authenticator verified, and
    /// [`Server::finish`] appends the echoed Unique Identifier and the NTS
    /// Authenticator sealing fresh cookies. False for an NTS NAK and the
    /// other Kiss-o'-Death answers to NTS requests, which are not
    /// authenticated.
    #[must_use]
    pub const fn nts(&self) -> bool {
        self.nts.is_some()
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
///   monotonic time `now`, and a buffer of [`MAX_RESPONSE_LEN`] octets,
///   or at least as long as the request (a shorter one drops the requests
///   whose answer does not fit, with [`DropReason::BufferTooSmall`], and
///   sends fewer fresh cookies to NTS requests). On [`Action::Respond`] call
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
///   An NTS reply must be finished before the next `handle` (the server
///   keeps the session keys of the last NTS request only).
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
/// - Versions 1 to 4 are answered, each in its own version (RFC 5905,
///   section 9.2; RFC 4330, section 5: "Servers reply with the same
///   version as the request"), so Python's ntplib (NTPv2) and old SNTP
///   clients (NTPv3) get time; symmetric-active requests get a mode-2
///   answer.
/// - The server holds no keys until [`set_keys`](Self::set_keys). A
///   request whose MAC verifies with one of its keys is answered with a
///   MAC from the same key; a request whose MAC does not verify (every MAC
///   while there are no keys) is answered with a crypto-NAK
///   ([`MacPolicy::CryptoNak`], RFC 5905 section 9.2, as ntpd does), which
///   tells a keyed client that authentication failed.
/// - The server has no NTS until [`set_nts`](Self::set_nts): NTS requests
///   are dropped ([`DropReason::Nts`]).
///
/// # Order of checks
///
/// 1. At least 48 octets, else [`DropReason::BadPacket`]; mode 3 (client),
///    mode 1 (symmetric active) under [`SymmetricPolicy::Answer`], or a
///    version-1 request in mode 0 from a source port other than 123, else
///    [`DropReason::Mode`]. Version 1 had no mode field: its mode bits are
///    zero and the ports tell the mode (RFC 1305, appendix D, item 1: a
///    packet to port 123 from another port is a client's, one from port
///    123 symmetric active or passive, which cannot be told apart); such
///    a client request is answered in mode 4 like any, the ambiguous one
///    from port 123 is dropped, so that two servers cannot be made to
///    bounce packets between them. A configured version (by default 1 to
///    4, RFC 5905 section 9.2: "acceptable version number (1-4)"; see
///    [`Versions`]), else [`DropReason::Version`]; an output buffer of 48
///    octets, else [`DropReason::BufferTooSmall`]; extension fields and
///    MAC well formed (RFC 7822; versions 1 to 3 carry at most a MAC,
///    extension fields being NTPv4's), else [`DropReason::BadPacket`].
///    Unknown extension fields are ignored.
/// 2. Access control ([`Acl`]): `ignore` drops.
/// 3. What the request asks to be checked, told from its layout without
///    any cryptography: nothing (no MAC, no NTS), a MAC, or NTS. A request
///    that carries a crypto-NAK is dropped ([`DropReason::Authenticated`]):
///    only a failed MAC earns a crypto-NAK, and a crypto-NAK earns nothing
///    (RFC 5905, appendix A.5.1: `A_CRYPTO` is not answered). A request
///    with extension fields and no MAC that carries an NTS Cookie or NTS
///    Authenticator is an NTS request (RFC 8915 section 5.7), whose
///    fields `ntp_nts::server::parse_request` finds without opening
///    anything; a malformed one (section 5.7's rules: one Unique
///    Identifier of 32 to 64 octets, one cookie, the authenticator last
///    of them and parsing), an NTS request in symmetric mode, and any NTS
///    request while the server has no NTS are dropped
///    ([`DropReason::Nts`]): an unauthenticated answer would be discarded
///    by the client anyway (section 5.7).
/// 4. Access control again: `deny` and `restrict` answer with KoD `DENY`
///    / `RSTR`, metered by the rate limiter (a sender over the limit gets
///    nothing), so a denied address cannot use us as a reflector either.
/// 5. An unsynchronized server under [`UnsynchronizedPolicy::Drop`] drops.
/// 6. `limited` clients go through the rate limiter, authenticated or not:
///    within the limit they go on, to be answered with a poll of at least
///    the limiter's interval; over it, 1 in `leak` gets a KoD `RATE` and
///    the rest are dropped.
///
///    Steps 4 to 6 look at the source address and the header only, before
///    any MAC is computed or any cookie opened (RFC 5905, appendix A.5.1,
///    checks access before authentication; chronyd too limits first): a
///    request from a denied or restricted address, or over its rate
///    limit, costs the server no cryptography at all
///    ([`Counters::crypto_checks`](crate::Counters::crypto_checks) does
///    not count it). Their Kiss-o'-Death answers are therefore never
///    authenticated: to a request with or without a MAC, the 48-octet
///    header alone, no MAC and no crypto-NAK (its MAC was never checked,
///    and a KoD signed for an unchecked request would be a signature for
///    anyone), whatever the [`MacPolicy`]; to an NTS request, the header
///    and its echoed Unique Identifier, without cookies or authenticator.
///    RFC 8915 (section 5.7) asks the client to check the echo of such a
///    KoD and then obey it, and RFC 8633 (section 5.4) has clients accept
///    a KoD by its origin timestamp, which ours carries (the request's
///    transmit timestamp). A client that takes only authenticated packets
///    (ntpd with a key; chrony, which ignores unauthenticated KoDs other
///    than the NTS NAK) discards them: to it they are as good as a drop.
/// 7. Authentication (RFC 5905, section 9.2 and appendix A.5.1,
///    `receive()`; RFC 8915 section 5.7), for the requests that steps 4
///    to 6 let through, each counted in
///    [`Counters::crypto_checks`](crate::Counters::crypto_checks) (a MAC
///    whose key id names no key held costs nothing and is not). A MAC
///    that verifies with the key its key id names makes the answer signed
///    with that key. A MAC that does not (unknown key id, digest of the
///    wrong length for the key in this version, wrong digest) is counted
///    in [`Counters::bad_mac`](crate::Counters::bad_mac) and handled by
///    the [`MacPolicy`]: answered with a crypto-NAK after the header,
///    dropped, or answered as if it carried no MAC. An NTS request's
///    cookie is opened with the cookie master keys
///    ([`set_nts`](Self::set_nts)) and its authenticator checked with the
///    C2S key inside: an authentic one is answered with NTS; one whose
///    cookie does not open (unknown or rotated-out master key, forged,
///    damaged) or whose authenticator does not verify gets an NTS NAK (a
///    Kiss-o'-Death `NTSN` echoing its Unique Identifier, counted in
///    [`KissCounters::ntsn`](crate::KissCounters::ntsn)); one malformed in
///    a way only the opened cookie shows (nonce padding too short for its
///    AEAD, encrypted fields that do not parse) is dropped
///    ([`DropReason::Nts`]). The response's length is then known: an
///    output buffer shorter than it drops the request
///    ([`DropReason::BufferTooSmall`]); a response longer than the
///    request, which the arithmetic rules out, would be dropped as
///    [`DropReason::BadPacket`] rather than sent.
/// 8. The response (RFC 5905, appendix A.5.3 `fast_xmit()`, figure 31):
///    version of the request, mode 4, poll of the request, leap indicator,
///    stratum, precision, root delay and dispersion, reference id and time
///    from the system state, origin = the request's transmit timestamp,
///    receive = `rx_time`, transmit = the time given to
///    [`Server::finish`]; then the MAC, which `finish` computes over the
///    48-octet header once the transmit timestamp is in it, or the
///    crypto-NAK. To an authentic NTS request, `finish` appends the
///    echoed Unique Identifier and the NTS Authenticator encrypting fresh
///    cookies, sealed over the header the same way (RFC 8915 section
///    5.7); the response is never longer than the request: its
///    placeholders pay for the cookies, and fewer cookies are sent rather
///    than a longer answer. No other extension field is ever sent. The stratum is sent as
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
    limiter: Limiter,
    unsynchronized: UnsynchronizedPolicy,
    mac: MacPolicy,
    symmetric: SymmetricPolicy,
    state: SystemState,
    /// The response header with the system variables filled in.
    template: [u8; HEADER_LEN],
    synchronized: bool,
    /// Symmetric keys; `Debug` shows ids and types, never secrets.
    keys: Keys,
    /// NTS (RFC 8915): cookie master keys, generator and the request
    /// waiting for `finish`; `Debug` shows key ids only.
    nts: Option<Box<Nts>>,
    counters: Counters,
    last_now: Instant,
    /// The interleaved mode's memory of recent clients.
    xleave: InterleaveTable,
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
        let limiter = Limiter::Own(RateLimiter::new(&config.rate_limit)?);
        if config.interleave_clients > crate::MAX_INTERLEAVE_CLIENTS {
            return Err(ConfigError::InterleaveClients(config.interleave_clients));
        }
        let xleave = InterleaveTable::new(config.interleave_clients, &config.rate_limit.hash_key);
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
            nts: None,
            counters: Counters::default(),
            last_now: Instant::ZERO,
            xleave,
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
    /// allocation per request: lookups are binary searches), straight from
    /// the caller's store: it is borrowed, not moved, since moving a store
    /// would leave a bitwise copy of its secrets behind (the caller keeps
    /// and zeroes its own). The keys replaced are zeroed as they drop. A reply from [`handle`](Self::handle) not yet
    /// [`finish`](Self::finish)ed is signed with the key of its id held at
    /// `finish` time, or not sent if there is none.
    pub fn set_keys<const N: usize>(&mut self, keys: &KeyStore<N>) {
        self.keys = Keys::from_store(keys);
    }

    /// The ids of the keys held, in ascending order. The keys themselves
    /// stay inside the server.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = KeyId> + '_ {
        self.keys.ids()
    }

    /// Turns on Network Time Security (RFC 8915 section 5.7): requests
    /// carrying an NTS Cookie and an NTS Authenticator are verified with
    /// the cookie master keys `keys` and answered with NTS, or with an NTS
    /// NAK ([type documentation](Self), step 7).
    ///
    /// `keys` must be the master keys (ids and secrets) the NTS-KE server
    /// seals its cookies with (`ntp_nts::tls::KeServer` with
    /// [`CookieKeys::issuer`]): clone them, or load the same ones. The
    /// server keeps its own copy: when the NTS-KE side rotates (RFC 8915
    /// section 6, daily say, keeping the previous keys a while), give the
    /// new keys with [`set_cookie_keys`](Self::set_cookie_keys). Cookies
    /// under a key no longer held get an NTS NAK, and the client runs
    /// NTS-KE again.
    ///
    /// `seed` seeds the ChaCha20 generator of the nonces of answers and
    /// fresh cookies (the core has no randomness of its own): 32 octets
    /// from the operating system's generator. A clone of the server
    /// continues the same stream, so give each clone (one per worker
    /// thread, say) its own seed with `set_nts`; repeated nonces would not
    /// break the SIV AEADs of NTS (RFC 5297, RFC 8452: misuse resistant)
    /// but would make identical cookies recognizable.
    ///
    /// Allocates the NTS state once, replacing any earlier one (a reply
    /// from [`handle`](Self::handle) not yet [`finish`](Self::finish)ed
    /// is then not sent).
    pub fn set_nts(&mut self, keys: CookieKeys, seed: [u8; NTS_SEED_LEN]) {
        self.nts = Some(Box::new(Nts::new(keys, seed)));
    }

    /// Replaces the cookie master keys of a server with NTS (after a
    /// rotation), keeping its generator and a pending reply, which
    /// `finish` seals with cookies under the new current key. Returns
    /// false, and does nothing, if NTS is off
    /// ([`set_nts`](Self::set_nts)). No allocation.
    pub fn set_cookie_keys(&mut self, keys: CookieKeys) -> bool {
        match self.nts.as_deref_mut() {
            Some(nts) => {
                nts.keys = keys;
                true
            }
            None => false,
        }
    }

    /// Turns NTS off: NTS requests are dropped again
    /// ([`DropReason::Nts`]). The master keys and the pending session keys
    /// are zeroed as they drop.
    pub fn clear_nts(&mut self) {
        self.nts = None;
    }

    /// The cookie master keys, if NTS is on. `Debug` on them shows key ids
    /// only.
    #[must_use]
    pub fn cookie_keys(&self) -> Option<&CookieKeys> {
        self.nts.as_deref().map(|nts| &nts.keys)
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

    /// The rate limiter; `None` once it is shared (see
    /// `shared_rate_limiter`).
    #[must_use]
    pub const fn rate_limiter(&self) -> Option<&RateLimiter> {
        match &self.limiter {
            Limiter::Own(limiter) => Some(limiter),
            #[cfg(feature = "std")]
            Limiter::Shared(_) => None,
        }
    }

    /// The rate limiter this server shares with others, if it does.
    #[cfg(feature = "std")]
    #[must_use]
    pub fn shared_rate_limiter(&self) -> Option<&crate::SharedRateLimiter> {
        match &self.limiter {
            Limiter::Own(_) => None,
            Limiter::Shared(limiter) => Some(limiter),
        }
    }

    /// Makes the rate limiter one that every clone of this server made
    /// afterwards shares: threads that each answer on their own socket of
    /// one address (`SO_REUSEPORT`, where the kernel picks the socket by
    /// the client's address and port) then meter a client once, whatever
    /// port it sends from. The table keeps its settings and capacity, cut
    /// into [`RATE_SHARDS`](crate::RATE_SHARDS) shards behind locks
    /// ([`SharedRateLimiter`](crate::SharedRateLimiter)); the clients it
    /// held are forgotten. Allocates the new table; nothing happens when
    /// the limiter is already shared.
    #[cfg(feature = "std")]
    pub fn share_rate_limiter(&mut self) {
        if let Limiter::Own(own) = &self.limiter {
            let shared = crate::SharedRateLimiter::like(own);
            self.limiter = Limiter::Shared(std::sync::Arc::new(shared));
        }
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
        match self.process(request, client, rx_time, now, out) {
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
                    } else if reply.nts.is_some() {
                        add(&mut self.counters.nts);
                    }
                }
                add(match reply.kiss {
                    None => &mut self.counters.answered,
                    Some(KissCode::Deny) => &mut self.counters.kiss.deny,
                    Some(KissCode::Rstr) => &mut self.counters.kiss.rstr,
                    Some(KissCode::Ntsn) => &mut self.counters.kiss.ntsn,
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
    /// An [NTS reply](Reply::nts) is then sealed (RFC 8915 section 5.7):
    /// after the header, transmit timestamp included, come the echoed
    /// Unique Identifier and the NTS Authenticator, sealed with the
    /// session's S2C key over everything before it, encrypting fresh
    /// cookies (one per cookie asked for, as many as fit in the request's
    /// length and `out`) sealed under the current cookie master key held
    /// now. Nonces and cookie nonces come from the server's generator
    /// ([`set_nts`](Self::set_nts)), drawn in `handle`, so finishing the
    /// same reply twice writes the same nonces: finish a reply once.
    ///
    /// The result is empty, and nothing should be sent, if `out` is shorter
    /// than [`Reply::len`], if the server no longer holds a key of the
    /// reply's id with a MAC of the same length ([`set_keys`](Self::set_keys)
    /// replaced the keys in between), or, for an NTS reply, if `handle`
    /// has taken another NTS request since (the server keeps the session
    /// keys of the last one only: finish each reply before the next
    /// `handle`) or [`clear_nts`](Self::clear_nts) was called.
    #[inline]
    pub fn finish<'a>(&self, reply: &Reply, out: &'a mut [u8], transmit: Timestamp) -> &'a [u8] {
        let Some(datagram) = out.get_mut(..reply.len) else {
            return &[];
        };
        let Some((header, mac)) = datagram.split_first_chunk_mut::<HEADER_LEN>() else {
            return &[];
        };
        if reply.kiss.is_none() && !reply.interleaved {
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
        if let Some(ticket) = reply.nts {
            match self.nts.as_deref() {
                Some(nts) if nts.finish(ticket, datagram) => {}
                _ => return &[],
            }
        }
        datagram
    }

    /// Reports when the answer `reply` to `client` left: `tx` is the
    /// transmit time of the datagram [`finish`](Self::finish) returned, as
    /// precise as the caller can read it (a kernel or hardware transmit
    /// timestamp from the socket's error queue, or the timestamp given to
    /// `finish`). The server keeps it for the client's next request: when
    /// that asks for the interleaved mode (RFC 9769, section 2: its origin
    /// timestamp is this request's receive timestamp), the answer carries
    /// `tx` as its transmit timestamp.
    ///
    /// Without the report the client's next request is answered in basic
    /// mode, and the one after in interleaved mode again once its answer
    /// was reported. A report for a request that is no longer the client's
    /// last (a newer one came, or another client took its slot), for a
    /// Kiss-o'-Death, or with the interleaved mode off
    /// ([`ServerConfig::interleave_clients`] 0) changes nothing.
    pub fn transmitted(&mut self, client: SocketAddr, reply: &Reply, tx: Timestamp) {
        if let Some(slot) = reply.slot {
            self.xleave
                .transmitted(slot, client.ip(), reply.rx_time, tx);
        }
    }

    /// Heap octets of the interleaved mode's client table.
    #[must_use]
    pub fn interleave_heap_bytes(&self) -> usize {
        self.xleave.heap_bytes()
    }

    #[inline]
    fn process(
        &mut self,
        request: &[u8],
        client: SocketAddr,
        rx_time: Timestamp,
        now: Instant,
        out: &mut [u8],
    ) -> Result<Reply, DropReason> {
        let header: &[u8; HEADER_LEN] = request.first_chunk().ok_or(DropReason::BadPacket)?;
        let payload = request.get(HEADER_LEN..).unwrap_or(&[]);
        let packet = Packet::new_unchecked(header);
        let version = packet.version();
        let mode = match packet.mode() {
            Mode::Client => Mode::Server,
            Mode::SymmetricActive if self.symmetric == SymmetricPolicy::Answer => {
                Mode::SymmetricPassive
            }
            Mode::Reserved if version == 1 && client.port() != NTP_PORT => Mode::Server,
            _ => return Err(DropReason::Mode),
        };
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
        let ip = client.ip();
        let access = self.acl.lookup(ip);
        if access == AccessAction::Ignore {
            return Err(DropReason::Acl);
        }
        // What the request asks us to check, told from its layout alone.
        let check = match trailer {
            Some(TrailerItem::Mac(mac)) => Check::Mac(mac),
            Some(TrailerItem::CryptoNak { .. }) => return Err(DropReason::Authenticated),
            // `trailer()` returns no extension field; any other item one
            // day is no MAC either.
            Some(_) => Check::Plain,
            None if payload.is_empty() => Check::Plain,
            None => self.find_nts(request, payload, version, mode)?,
        };

        // Access control and rate limits, from the address alone: a
        // sender refused here costs no MAC and no AEAD, and its
        // Kiss-o'-Death is never signed or sealed.
        let poll = match self.fate(packet.poll(), access, ip, now)? {
            Fate::Kiss(code, poll) => {
                let at = Turn {
                    packet: &packet,
                    request_len: request.len(),
                    mode,
                    rx_time,
                };
                return match check {
                    Check::Nts(unverified) => {
                        nts_kiss(&at, code, poll, unverified.unique_id(), out, trailer_room)
                    }
                    Check::Plain | Check::Mac(_) => {
                        kiss(&packet, mode, code, poll, out);
                        Ok(reply(Seal::Plain, Some(code), mode, rx_time))
                    }
                };
            }
            Fate::Answer(poll) => poll,
        };

        let seal = match check {
            Check::Plain => Seal::Plain,
            Check::Mac(mac) => self.authenticate(request, version, &mac)?,
            Check::Nts(unverified) => {
                let at = Turn {
                    packet: &packet,
                    request_len: request.len(),
                    mode,
                    rx_time,
                };
                return self.answer_nts(&unverified, &at, poll, out, trailer_room);
            }
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
        // The interleaved mode answers client requests, once they are
        // authentic: a forged request cannot overwrite a client's state.
        let (previous, slot) = if mode == Mode::Server && !matches!(seal, Seal::CryptoNak) {
            self.xleave.exchange(ip, packet.origin_timestamp(), rx_time)
        } else {
            (None, None)
        };
        self.answer(&packet, mode, poll, rx_time, out);
        if let Some(previous_tx) = previous {
            interleave(&packet, previous_tx, out);
        }
        seal.write(trailer_out);
        Ok(Reply {
            interleaved: previous.is_some(),
            slot,
            ..reply(seal, None, mode, rx_time)
        })
    }

    /// Steps 4 to 6 of the order of checks: access control's
    /// Kiss-o'-Death, the unsynchronized policy and the rate limiter, all
    /// from the source address and the request's header, before any
    /// cryptography. `poll` is the request's.
    #[inline]
    fn fate(
        &mut self,
        poll: i8,
        access: AccessAction,
        ip: IpAddr,
        now: Instant,
    ) -> Result<Fate, DropReason> {
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
                return Ok(Fate::Kiss(code, poll));
            }
        };
        if !self.synchronized && self.unsynchronized == UnsynchronizedPolicy::Drop {
            return Err(DropReason::Unsynchronized);
        }
        let mut poll = poll;
        if limited {
            poll = poll.max(self.limiter.interval());
            match self.limiter.check(ip, now) {
                RateVerdict::Allow => {}
                RateVerdict::Limit { kiss: true } => return Ok(Fate::Kiss(KissCode::Rate, poll)),
                RateVerdict::Limit { kiss: false } => return Err(DropReason::RateLimited),
            }
        }
        Ok(Fate::Answer(poll))
    }

    /// Writes the header of an ordinary answer (step 8).
    #[inline]
    fn answer(
        &self,
        packet: &Packet<&[u8; HEADER_LEN]>,
        mode: Mode,
        poll: i8,
        rx_time: Timestamp,
        out: &mut [u8; HEADER_LEN],
    ) {
        *out = self.template;
        let mut response = Packet::new_unchecked(&mut out[..]);
        if mode != Mode::Server {
            response.set_mode(mode);
        }
        response.set_version(packet.version());
        response.set_poll(poll);
        response.set_origin_timestamp(packet.transmit_timestamp());
        response.set_receive_timestamp(rx_time);
        response.set_transmit_timestamp(rx_time);
    }

    /// What a request with extension fields and no MAC is (RFC 8915
    /// section 5.7), told from its fields without opening anything: plain
    /// NTP, an NTS request to verify once the sender may be answered, or
    /// a drop (malformed, symmetric mode, or NTS while the server has
    /// none). Apart from the packet path, like
    /// [`authenticate`](Self::authenticate).
    #[inline(never)]
    fn find_nts<'r>(
        &self,
        request: &'r [u8],
        payload: &[u8],
        version: u8,
        mode: Mode,
    ) -> Result<Check<'r>, DropReason> {
        if self.nts.is_none() {
            return if nts::carries_nts(payload, version) {
                Err(DropReason::Nts)
            } else {
                Ok(Check::Plain)
            };
        }
        match nts::find(request) {
            Found::NotNts => Ok(Check::Plain),
            // NTS is client-server only (RFC 8915 section 5.7).
            Found::Nts(_) if mode != Mode::Server => Err(DropReason::Nts),
            Found::Nts(unverified) => Ok(Check::Nts(unverified)),
            Found::Drop => Err(DropReason::Nts),
        }
    }

    /// Steps 7 and 8 for an NTS request that access control and the rate
    /// limiter let through (RFC 8915 section 5.7): the cookie is opened
    /// and the authenticator checked, then an NTS answer (header now, the
    /// NTS fields sealed by [`finish`](Self::finish)) or an NTS NAK
    /// echoing the Unique Identifier.
    #[inline(never)]
    fn answer_nts(
        &mut self,
        unverified: &UnverifiedRequest<'_>,
        at: &Turn<'_, '_>,
        poll: i8,
        out: &mut [u8; HEADER_LEN],
        trailer_room: &mut [u8],
    ) -> Result<Reply, DropReason> {
        let nts = self.nts.as_deref_mut().ok_or(DropReason::Nts)?;
        self.counters.crypto_checks = self.counters.crypto_checks.wrapping_add(1);
        let request = match nts.verify(unverified) {
            Verdict::Answer(request) => request,
            Verdict::Nak(nak) => {
                return nts_kiss(at, KissCode::Ntsn, poll, nak.unique_id(), out, trailer_room);
            }
            Verdict::Drop => return Err(DropReason::Nts),
        };
        let len = request
            .response_len(HEADER_LEN + trailer_room.len())
            .ok_or(DropReason::BufferTooSmall)?;
        if len > at.request_len {
            return Err(DropReason::BadPacket);
        }
        let trailer = trailer_room
            .get_mut(..len - HEADER_LEN)
            .ok_or(DropReason::BufferTooSmall)?;
        let ticket = nts.hold(request);
        // Zeros until `finish` seals them: a reply sent without `finish`
        // carries no stale buffer contents.
        trailer.fill(0);
        self.answer(at.packet, at.mode, poll, at.rx_time, out);
        Ok(Reply {
            len,
            kiss: None,
            mode: at.mode,
            key_id: None,
            crypto_nak: false,
            nts: Some(ticket),
            interleaved: false,
            rx_time: at.rx_time,
            slot: None,
        })
    }

    /// Step 7 for a request with a MAC that access control and the rate
    /// limiter let through (RFC 5905, appendix A.5.1, `receive()`): the
    /// seal of its answer, or why it gets none. Apart from the packet
    /// path, so that the unauthenticated path stays small enough to
    /// inline.
    #[inline(never)]
    fn authenticate(
        &mut self,
        request: &[u8],
        version: u8,
        mac: &Mac<'_>,
    ) -> Result<Seal, DropReason> {
        let covered = request.get(..mac.offset).unwrap_or(&[]);
        match self.keys.verify(covered, version, mac) {
            MacCheck::Verified(seal) => {
                self.counters.crypto_checks = self.counters.crypto_checks.wrapping_add(1);
                return Ok(seal);
            }
            MacCheck::Failed => {
                self.counters.crypto_checks = self.counters.crypto_checks.wrapping_add(1);
            }
            MacCheck::NoKey => {}
        }
        self.counters.bad_mac = self.counters.bad_mac.wrapping_add(1);
        match self.mac {
            MacPolicy::CryptoNak => Ok(Seal::CryptoNak),
            MacPolicy::AnswerUnauthenticated => Ok(Seal::Plain),
            MacPolicy::Drop => Err(DropReason::Authenticated),
        }
    }
}

/// What a request asks the server to check before it is answered, told
/// from its layout without any cryptography.
enum Check<'r> {
    /// Nothing: no MAC, no NTS.
    Plain,
    /// A MAC (RFC 5905, section 7.3).
    Mac(Mac<'r>),
    /// An NTS Cookie and Authenticator (RFC 8915 section 5.7).
    Nts(UnverifiedRequest<'r>),
}

/// The [`Reply`] for a response sealed with `seal`.
#[inline]
const fn reply(seal: Seal, kiss: Option<KissCode>, mode: Mode, rx_time: Timestamp) -> Reply {
    Reply {
        len: seal.response_len(),
        kiss,
        mode,
        key_id: seal.key_id(),
        crypto_nak: matches!(seal, Seal::CryptoNak),
        nts: None,
        interleaved: false,
        rx_time,
        slot: None,
    }
}

/// Whether a request is answered, and with what poll.
#[derive(Clone, Copy)]
enum Fate {
    /// A Kiss-o'-Death with this code.
    Kiss(KissCode, i8),
    /// An ordinary answer.
    Answer(i8),
}

/// What the NTS path needs of the request being handled.
struct Turn<'p, 'b> {
    packet: &'p Packet<&'b [u8; HEADER_LEN]>,
    request_len: usize,
    mode: Mode,
    rx_time: Timestamp,
}

/// A Kiss-o'-Death to an NTS request (RFC 8915 section 5.7): the header
/// of [`kiss`] and the echoed Unique Identifier, with no cookie and no
/// authenticator. The NTS NAK (`NTSN`) is one; `DENY`, `RSTR` and `RATE`
/// to NTS requests take the same unauthenticated form, which a client
/// checks by the echo (section 5.7).
fn nts_kiss(
    at: &Turn<'_, '_>,
    code: KissCode,
    poll: i8,
    unique_id: &[u8],
    out: &mut [u8; HEADER_LEN],
    trailer_room: &mut [u8],
) -> Result<Reply, DropReason> {
    let len = HEADER_LEN + ntp_nts::ef::field_len(unique_id.len());
    if len > at.request_len {
        return Err(DropReason::BadPacket);
    }
    let echo = trailer_room
        .get_mut(..len - HEADER_LEN)
        .ok_or(DropReason::BufferTooSmall)?;
    nts::echo_unique_id(echo, unique_id).ok_or(DropReason::BufferTooSmall)?;
    kiss(at.packet, at.mode, code, poll, out);
    Ok(Reply {
        len,
        kiss: Some(code),
        mode: at.mode,
        key_id: None,
        crypto_nak: false,
        nts: None,
        interleaved: false,
        rx_time: at.rx_time,
        slot: None,
    })
}

/// Turns the basic answer `handle` wrote into `out` into an interleaved
/// one (RFC 9769, section 2): its origin timestamp is the request's
/// receive timestamp (the client's receive time of our previous answer,
/// by which it tells this answer from a basic one), and its transmit
/// timestamp is `previous_tx`, when our previous answer to the client
/// really left. The receive timestamp stays this request's.
fn interleave(
    request: &Packet<&[u8; HEADER_LEN]>,
    previous_tx: Timestamp,
    out: &mut [u8; HEADER_LEN],
) {
    let mut response = Packet::new_unchecked(&mut out[..]);
    response.set_origin_timestamp(request.receive_timestamp());
    response.set_transmit_timestamp(previous_tx);
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
