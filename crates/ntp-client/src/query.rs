//! One-call SNTP queries over the operating system's UDP sockets (feature
//! `std`, and `tokio` for [`query_async`]), and an OS-seeded random
//! generator for [`System`](crate::System).
//!
//! These are the few lines every caller of the sans-IO [`Request`] would
//! otherwise write: resolve the name, bind and connect a socket, send one
//! data-minimized request, wait for the answer while ignoring datagrams
//! that do not answer it ([`ResponseError::is_final`]), and try the next
//! address when one fails.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::time::Duration;
use std::io;
use std::net::{ToSocketAddrs, UdpSocket};
use std::time::SystemTime;

use ntp_proto::Date;
use rand_chacha::ChaCha12Rng;
use rand_core::{RngCore, SeedableRng};

use crate::sntp::{Measurement, Request, ResponseError, SntpConfig};

/// The NTP port, 123 (RFC 5905, section 7.2 and the IANA registry).
pub const NTP_PORT: u16 = 123;

/// Largest datagram read: the 48-octet header, extension fields and a MAC
/// fit many times over; a longer datagram is cut and refused by the
/// checks, never an error.
const RECEIVE_BUFFER: usize = 2048;

/// Why [`query`] (or `query_async`, feature `tokio`) got no measurement.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The server name could not be resolved.
    #[error("cannot resolve the server name: {0}")]
    Resolve(#[source] io::Error),
    /// The server name resolved to no address.
    #[error("the server name resolved to no address")]
    NoAddress,
    /// A socket operation failed.
    #[error("socket error: {0}")]
    Io(#[source] io::Error),
    /// The operating system's random generator failed (the nonce could not
    /// be drawn).
    #[error("operating system random generator: {0}")]
    Random(getrandom::Error),
    /// No answer to the request came in time. `ignored` is the reason the
    /// last datagram that did not answer it was refused, if any came.
    #[error("no valid answer in time{}", match .ignored {
        Some(reason) => alloc::format!(" (ignored a datagram: {reason})"),
        None => alloc::string::String::new(),
    })]
    Timeout {
        /// Why the last non-answer was refused.
        ignored: Option<ResponseError>,
    },
    /// The server answered but the answer cannot be used: a
    /// kiss-o'-death (`DENY` and `RSTR` mean stop asking, `RATE` ask less
    /// often), an unsynchronized server, or bad header values.
    #[error("answer refused: {0}")]
    Refused(#[source] ResponseError),
    /// Nothing listens at the server's port (an ICMP port unreachable
    /// answered the request).
    #[error("nothing listens at the server's port")]
    PortUnreachable,
}

impl QueryError {
    /// How informative the error is when several addresses failed: an
    /// answer from a server beats silence.
    const fn rank(&self) -> u8 {
        match self {
            Self::Refused(_) => 3,
            Self::PortUnreachable => 2,
            Self::Timeout { .. } => 1,
            _ => 0,
        }
    }
}

/// Queries `server` once (RFC 4330) and returns the checked measurement.
///
/// `server` is anything [`ToSocketAddrs`] takes: `"time.example.org:123"`,
/// `("time.example.org", NTP_PORT)`, a [`SocketAddr`]. Every address the
/// name resolves to is tried in turn, each with an equal share of the
/// time left of `timeout`, until one gives a measurement; otherwise the
/// most telling failure is returned (a refused answer before a port
/// unreachable before a timeout). One request is sent per address, never
/// more.
///
/// The request is data-minimized (only version, mode and a random nonce
/// from the operating system; T1 stays here), the socket is connected to
/// the address (bound to the loopback for a loopback server) and T1 and
/// T4 are read from [`SystemTime`]. This machine's clock is only read.
///
/// ```no_run
/// use std::time::Duration;
///
/// let m = ntp_client::sntp::query("pool.ntp.org:123", Duration::from_secs(5))?;
/// println!("offset {:+.6} s, delay {:.6} s, stratum {}", m.offset, m.delay, m.stratum);
/// # Ok::<(), ntp_client::sntp::QueryError>(())
/// ```
///
/// # Errors
///
/// A [`QueryError`]; [`QueryError::Refused`] carries the server's
/// kiss-o'-death code when there is one.
pub fn query<A: ToSocketAddrs>(server: A, timeout: Duration) -> Result<Measurement, QueryError> {
    query_with(server, timeout, &SntpConfig::default())
}

/// [`query`] under `config`: its limits, and its key
/// ([`SntpConfig::key`]), which signs the request and must sign the
/// answer. A reply that fails authentication is not the answer (an
/// on-path attacker can copy the nonce but not forge the MAC), so the
/// query waits on for the real one; if none comes, the timeout carries the
/// refusal ([`QueryError::Timeout`] with `ignored:
/// Some(ResponseError::Auth(_))`).
///
/// ```no_run
/// use std::time::Duration;
/// use ntp_client::sntp::{SntpConfig, query_with};
/// use ntp_client::ntp_auth::{KeyFileFormat, KeyId, KeyStore};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let keys: KeyStore = KeyStore::load("/etc/chrony/chrony.keys", KeyFileFormat::Chrony)?;
/// let key = keys.get(KeyId::new(1).ok_or("key id 0")?).ok_or("no key 1")?.clone();
/// let config = SntpConfig::default().with_key(key);
/// let m = query_with("ntp.example.net:123", Duration::from_secs(5), &config)?;
/// println!("authenticated offset {:+.6} s", m.offset);
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// As [`query`].
pub fn query_with<A: ToSocketAddrs>(
    server: A,
    timeout: Duration,
    config: &SntpConfig,
) -> Result<Measurement, QueryError> {
    let addresses: alloc::vec::Vec<SocketAddr> = server
        .to_socket_addrs()
        .map_err(QueryError::Resolve)?
        .collect();
    let deadline = std::time::Instant::now() + timeout;
    let mut worst: Option<QueryError> = None;
    for (index, address) in addresses.iter().enumerate() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let share = left / u32::try_from(addresses.len() - index).unwrap_or(u32::MAX);
        match query_address(*address, share, config) {
            Ok(measurement) => return Ok(measurement),
            Err(error) => keep_worst(&mut worst, error),
        }
    }
    Err(worst.unwrap_or(QueryError::NoAddress))
}

/// Keeps the more telling of two failures (the later one on a tie).
fn keep_worst(worst: &mut Option<QueryError>, error: QueryError) {
    if worst.as_ref().is_none_or(|w| error.rank() >= w.rank()) {
        *worst = Some(error);
    }
}

/// What a receive error means: `None` to wait again (a signal), else the
/// failure (an ICMP port unreachable reported on the connected socket, or
/// any other socket error).
fn receive_failure(error: io::Error) -> Option<QueryError> {
    match error.kind() {
        io::ErrorKind::Interrupted => None,
        io::ErrorKind::ConnectionRefused => Some(QueryError::PortUnreachable),
        _ => Some(QueryError::Io(error)),
    }
}

/// Checks a datagram against the request: `Ok(Some(_))` is the answer,
/// `Err(_)` a final refusal, `Ok(None)` not the answer (keep waiting; the
/// reason goes to `ignored`).
fn check_datagram(
    request: &Request,
    datagram: &[u8],
    config: &SntpConfig,
    ignored: &mut Option<ResponseError>,
) -> Result<Option<Measurement>, QueryError> {
    match request.check_response(datagram, wall_clock(), config) {
        Ok(measurement) => Ok(Some(measurement)),
        Err(e) if e.is_final() => Err(QueryError::Refused(e)),
        Err(e) => {
            *ignored = Some(e);
            Ok(None)
        }
    }
}

/// One request to one address, answered within `timeout`.
fn query_address(
    server: SocketAddr,
    timeout: Duration,
    config: &SntpConfig,
) -> Result<Measurement, QueryError> {
    let socket = UdpSocket::bind(local_for(server)).map_err(QueryError::Io)?;
    // Connected: the kernel drops datagrams from other addresses and
    // reports an ICMP port unreachable as an error.
    socket.connect(server).map_err(QueryError::Io)?;
    let nonce = getrandom::u64().map_err(QueryError::Random)?;
    let request = Request::with_nonce(nonce, wall_clock());
    socket
        .send(&request.encode(config))
        .map_err(QueryError::Io)?;
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = [0u8; RECEIVE_BUFFER];
    let mut ignored = None;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(QueryError::Timeout { ignored });
        }
        socket
            .set_read_timeout(Some(left))
            .map_err(QueryError::Io)?;
        let len = match socket.recv(&mut buf) {
            Ok(len) => len,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(QueryError::Timeout { ignored });
            }
            Err(e) => match receive_failure(e) {
                Some(failure) => return Err(failure),
                None => continue,
            },
        };
        if let Some(measurement) = check_datagram(
            &request,
            buf.get(..len).unwrap_or(&[]),
            config,
            &mut ignored,
        )? {
            return Ok(measurement);
        }
    }
}

/// The same as [`query`] on tokio's sockets and timer (feature `tokio`).
/// Name resolution uses tokio's resolver ([`tokio::net::lookup_host`]).
///
/// ```no_run
/// # async fn run() -> Result<(), ntp_client::sntp::QueryError> {
/// use std::time::Duration;
///
/// let m = ntp_client::sntp::query_async("pool.ntp.org:123", Duration::from_secs(5)).await?;
/// println!("offset {:+.6} s", m.offset);
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// As [`query`].
#[cfg(feature = "tokio")]
pub async fn query_async<A: tokio::net::ToSocketAddrs>(
    server: A,
    timeout: Duration,
) -> Result<Measurement, QueryError> {
    query_async_with(server, timeout, &SntpConfig::default()).await
}

/// [`query_async`] under `config`, as [`query_with`] (feature `tokio`).
///
/// # Errors
///
/// As [`query`].
#[cfg(feature = "tokio")]
pub async fn query_async_with<A: tokio::net::ToSocketAddrs>(
    server: A,
    timeout: Duration,
    config: &SntpConfig,
) -> Result<Measurement, QueryError> {
    let addresses: alloc::vec::Vec<SocketAddr> = tokio::net::lookup_host(server)
        .await
        .map_err(QueryError::Resolve)?
        .collect();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut worst: Option<QueryError> = None;
    for (index, address) in addresses.iter().enumerate() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let share = left / u32::try_from(addresses.len() - index).unwrap_or(u32::MAX);
        let result = tokio::time::timeout(share, query_address_async(*address, config))
            .await
            .unwrap_or(Err(QueryError::Timeout { ignored: None }));
        match result {
            Ok(measurement) => return Ok(measurement),
            Err(error) => keep_worst(&mut worst, error),
        }
    }
    Err(worst.unwrap_or(QueryError::NoAddress))
}

/// One request to one address; the caller bounds it in time.
#[cfg(feature = "tokio")]
async fn query_address_async(
    server: SocketAddr,
    config: &SntpConfig,
) -> Result<Measurement, QueryError> {
    let socket = tokio::net::UdpSocket::bind(local_for(server))
        .await
        .map_err(QueryError::Io)?;
    socket.connect(server).await.map_err(QueryError::Io)?;
    let nonce = getrandom::u64().map_err(QueryError::Random)?;
    let request = Request::with_nonce(nonce, wall_clock());
    socket
        .send(&request.encode(config))
        .await
        .map_err(QueryError::Io)?;
    let mut buf = [0u8; RECEIVE_BUFFER];
    // Not the answer: keep waiting (the caller's timeout ends it).
    let mut ignored = None;
    loop {
        let len = match socket.recv(&mut buf).await {
            Ok(len) => len,
            Err(e) => match receive_failure(e) {
                Some(failure) => return Err(failure),
                None => continue,
            },
        };
        if let Some(measurement) = check_datagram(
            &request,
            buf.get(..len).unwrap_or(&[]),
            config,
            &mut ignored,
        )? {
            return Ok(measurement);
        }
    }
}

/// The local address to bind for `server`: the loopback of the same
/// family for a loopback server, the unspecified address otherwise, on an
/// ephemeral port.
fn local_for(server: SocketAddr) -> SocketAddr {
    let ip: IpAddr = match server.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => Ipv4Addr::LOCALHOST.into(),
        IpAddr::V6(ip) if ip.is_loopback() => Ipv6Addr::LOCALHOST.into(),
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    SocketAddr::new(ip, 0)
}

/// This machine's clock as an NTP date (the Unix epoch if the clock reads
/// before it, which no measurement survives anyway).
fn wall_clock() -> Date {
    Date::try_from(SystemTime::now()).unwrap_or(Date::UNIX_EPOCH)
}

/// A random generator for [`System`](crate::System) and [`Request::new`]
/// seeded once from the operating system (ChaCha12, the generator of
/// `rand`'s `StdRng`): after [`new`](Self::new) it cannot fail. Keep your
/// own [`RngCore`] for tests (a fixed seed) and on `no_std`.
#[derive(Clone, Debug)]
pub struct OsSeededRng(ChaCha12Rng);

impl OsSeededRng {
    /// A generator seeded with 32 octets from the operating system.
    ///
    /// # Errors
    ///
    /// The operating system's generator failed.
    pub fn new() -> Result<Self, getrandom::Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)?;
        Ok(Self(ChaCha12Rng::from_seed(seed)))
    }
}

/// ChaCha12 seeded from the operating system is a cryptographic
/// generator, as NTS sources require
/// ([`System::add_nts_source`](crate::System::add_nts_source)).
impl rand_core::CryptoRng for OsSeededRng {}

impl RngCore for OsSeededRng {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }
}

/// The two clocks a [`System`](crate::System) caller passes in, from std:
/// the monotonic [`Instant`](crate::Instant) counted from when this
/// `StdClock` was made (no origin to carry around), and the wall clock as
/// a [`Date`].
///
/// ```
/// let clock = ntp_client::StdClock::new();
/// let now = clock.now(); // ntp_client::Instant, for the sans-IO cores
/// let wall = clock.wall(); // ntp_client::Date, this machine's clock
/// # let _ = (now, wall);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct StdClock {
    origin: std::time::Instant,
}

impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

impl StdClock {
    /// A clock whose [`Instant`](crate::Instant) zero is now.
    #[must_use]
    pub fn new() -> Self {
        Self {
            origin: std::time::Instant::now(),
        }
    }

    /// The monotonic time now.
    #[must_use]
    pub fn now(&self) -> crate::Instant {
        self.at(std::time::Instant::now())
    }

    /// A std instant (a deadline, a receive time) on the same scale
    /// (zero before this clock was made).
    #[must_use]
    pub fn at(&self, instant: std::time::Instant) -> crate::Instant {
        crate::Instant::from_std(self.origin, instant)
    }

    /// The std instant of a core [`Instant`](crate::Instant), for
    /// sleeping until an [`Output::Timeout`](crate::Output::Timeout);
    /// `None` if std cannot represent it (centuries ahead).
    #[must_use]
    pub fn to_std(&self, instant: crate::Instant) -> Option<std::time::Instant> {
        self.origin
            .checked_add(Duration::from_nanos(instant.as_nanos()))
    }

    /// This machine's wall clock now (the Unix epoch if it reads before).
    #[must_use]
    pub fn wall(&self) -> Date {
        wall_clock()
    }
}
