//! The load generator: one connected UDP socket on 127.0.0.1, [`WINDOW`]
//! requests in flight, a new one sent for each answer (and the window
//! refilled after a quiet 50 ms, for a lost datagram).
//!
//! NTS requests need keys and cookies from the server being measured:
//! before its round the generator runs NTS-KE with it once, and checks
//! that its answer to one request authenticates before the warm-up.

use core::net::SocketAddr;
use core::time::Duration;
use std::io;
use std::net::{TcpStream, UdpSocket};
use std::time::{Instant, SystemTime};

use ntp_client::ntp_auth::{Key, KeyId, KeyType};
use ntp_client::ntp_proto::{Date, HEADER_LEN};
use ntp_client::sntp::{Request, SntpConfig};
use ntp_nts::client::{COOKIE_JAR_CAPACITY, MAX_REQUEST_LEN, NtsClientSession, RequestState};
use ntp_nts::tls::{self, KeClient, KeOutcome};
use ntp_nts::{AeadAlgorithm, Cookie, SessionKeys};
use rand_chacha::ChaCha12Rng;
use rand_core::SeedableRng;

use crate::{Round, WINDOW};

/// Distinct requests cycled through (servers keep no per-nonce state; the
/// variety keeps the data from being one cache line).
const REQUESTS: usize = 256;

/// A wait this long with requests in flight counts them lost.
const QUIET: Duration = Duration::from_millis(50);

/// The longest a whole NTS-KE exchange may take, connecting included.
const KE_TIMEOUT: Duration = Duration::from_secs(5);

/// How many times the first NTS request is sent, [`QUIET`] apart, before
/// a round fails for want of an answer to check.
const CHECK_TRIES: usize = 20;

/// A server as the generator reaches it: its NTP address, and what the
/// `nts` kind needs to run NTS-KE with it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target<'a> {
    /// NTP, UDP.
    pub(crate) ntp: SocketAddr,
    /// NTS-KE, TCP.
    pub(crate) ke: SocketAddr,
    /// The name checked against the NTS-KE server's certificate.
    pub(crate) ke_name: &'a str,
    /// That certificate, PEM: the one trust anchor.
    pub(crate) cert_pem: &'a str,
}

/// What the requests carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// 48 octets, no MAC.
    Plain,
    /// AES128-CMAC (RFC 8573), key 1 of the key file.
    Aes128,
    /// MD5, key 2 of the key file.
    Md5,
    /// NTS (RFC 8915) with AEAD_AES_SIV_CMAC_256: the header, a Unique
    /// Identifier, one cookie and the NTS Authenticator, with the keys and
    /// cookies of one NTS-KE with the server per round.
    Nts,
}

/// The key file both servers read (chrony's format).
pub(crate) const KEY_FILE: &str = "\
1 AES128 HEX:000102030405060708090A0B0C0D0E0F
2 MD5 HEX:101112131415161718191A1B1C1D1E1F
";

impl Kind {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        match text {
            "plain" => Ok(Self::Plain),
            "aes128" => Ok(Self::Aes128),
            "md5" => Ok(Self::Md5),
            "nts" => Ok(Self::Nts),
            _ => Err(format!(
                "--kinds: {text:?} is not plain, aes128, md5 or nts"
            )),
        }
    }

    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Aes128 => "AES128-CMAC",
            Self::Md5 => "MD5",
            Self::Nts => "NTS (AES-SIV-CMAC-256)",
        }
    }

    /// The key of [`KEY_FILE`] that signs these requests.
    fn key(self) -> Result<Option<Key>, String> {
        let (id, kind, secret): (u32, KeyType, &[u8]) = match self {
            Self::Plain | Self::Nts => return Ok(None),
            Self::Aes128 => (
                1,
                KeyType::Aes128Cmac,
                &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
            ),
            Self::Md5 => (
                2,
                KeyType::Md5,
                &[
                    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c,
                    0x1d, 0x1e, 0x1f,
                ],
            ),
        };
        let id = KeyId::new(id).ok_or("key id 0")?;
        Key::new(id, kind, secret)
            .map(Some)
            .map_err(|error| error.to_string())
    }
}

/// Builds the requests (for NTS, after NTS-KE with the server), then
/// drives the server at `target`: for NTS, a check that it answers a
/// request authentically; a warm-up, then `duration` measured; `cpu`
/// reads the server's CPU seconds.
pub(crate) fn drive(
    target: &Target<'_>,
    kind: Kind,
    warmup: Duration,
    duration: Duration,
    cpu: impl Fn() -> Result<f64, String>,
) -> Result<Round, String> {
    let server = target.ntp;
    let Requests { datagrams, check } = requests(kind, target)?;
    let socket = UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.connect(server).map(|()| socket))
        .map_err(|error| format!("generator socket: {error}"))?;
    socket
        .set_read_timeout(Some(QUIET))
        .map_err(|error| error.to_string())?;
    if let Some(check) = check {
        check_first_answer(
            &socket,
            datagrams.first().map_or(&[][..], Vec::as_slice),
            check,
        )
        .map_err(|error| format!("{server} ({}): {error}", kind.name()))?;
    }
    let mut load = Load {
        socket,
        requests: datagrams,
        next: 0,
    };
    load.run(warmup).map_err(|error| error.to_string())?;
    let cpu_before = cpu()?;
    let start = Instant::now();
    let (answers, lost) = load.run(duration).map_err(|error| error.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = cpu()? - cpu_before;
    if answers == 0 {
        return Err(format!("no answer from {server} ({})", kind.name()));
    }
    Ok(Round {
        answers,
        seconds,
        cpu_seconds,
        lost,
    })
}

/// The requests of a round.
struct Requests {
    /// [`REQUESTS`] datagrams, sent in turn.
    datagrams: Vec<Vec<u8>>,
    /// For NTS: how to check the answer to the first datagram.
    check: Option<NtsCheck>,
}

/// The session that wrote the first NTS request, and the unique
/// identifier its answer must echo.
struct NtsCheck {
    session: NtsClientSession,
    state: RequestState,
}

/// [`REQUESTS`] datagrams of `kind`, each with its own nonce; for NTS,
/// after NTS-KE with `target`.
fn requests(kind: Kind, target: &Target<'_>) -> Result<Requests, String> {
    let mut rng = ChaCha12Rng::seed_from_u64(24);
    let now = Date::try_from(SystemTime::now()).map_err(|error| error.to_string())?;
    if kind == Kind::Nts {
        let outcome = key_exchange(target)?;
        return nts_requests(&outcome.keys, &outcome.cookies, &mut rng, now);
    }
    let mut config = SntpConfig::default();
    config.key = kind.key()?;
    let datagrams = (0..REQUESTS)
        .map(|_| {
            Request::new(&mut rng, now)
                .encode(&config)
                .as_ref()
                .to_vec()
        })
        .collect();
    Ok(Requests {
        datagrams,
        check: None,
    })
}

/// [`REQUESTS`] NTS requests (RFC 8915 section 5.7) with `keys` and
/// `cookies` from NTS-KE. Each is a 48-octet client header with a
/// transmit timestamp of its own (a plain request's), a Unique Identifier
/// of its own, one cookie and the NTS Authenticator (C2S key), and no
/// cookie placeholders, so that the answer carries one cookie.
///
/// The cookies are used round-robin: request `i` carries cookie `i` mod
/// their number. A client spends each cookie once (so that its requests
/// cannot be linked, section 9); a server keeps no state per cookie or
/// per unique identifier (neither ours nor chronyd checks for replays:
/// cookies are stateless by design, section 6), so a cookie sent again
/// costs it what a new one would, and cycling measures the same work.
/// Each request comes from a session whose jar is full of copies of its
/// cookie: a full jar asks for no placeholders (`placeholders_wanted`).
fn nts_requests(
    keys: &SessionKeys,
    cookies: &[Cookie],
    rng: &mut ChaCha12Rng,
    now: Date,
) -> Result<Requests, String> {
    if cookies.is_empty() {
        return Err("NTS-KE gave no cookie".to_owned());
    }
    let plain = SntpConfig::default();
    let mut out = [0_u8; MAX_REQUEST_LEN];
    let mut datagrams = Vec::with_capacity(REQUESTS);
    let mut check = None;
    for cookie in cookies.iter().cycle().take(REQUESTS) {
        let encoded = Request::new(rng, now).encode(&plain);
        let header = <&[u8; HEADER_LEN]>::try_from(encoded.as_ref())
            .map_err(|_| "a plain request is not 48 octets".to_owned())?;
        let mut session = NtsClientSession::new(
            keys.clone(),
            core::iter::repeat_n(cookie.clone(), COOKIE_JAR_CAPACITY),
        );
        let (len, state) = session
            .write_request(header, rng, &mut out)
            .map_err(|error| format!("NTS request: {error}"))?;
        datagrams.push(out.get(..len).unwrap_or_default().to_vec());
        if check.is_none() {
            check = Some(NtsCheck { session, state });
        }
    }
    Ok(Requests { datagrams, check })
}

/// NTS-KE with `target` (RFC 8915 section 4), offering AEAD_AES_SIV_CMAC_256
/// alone and trusting only the target's certificate; the connection is
/// retried while refused (the server may open its NTP socket first), and
/// the whole exchange bounded by [`KE_TIMEOUT`].
fn key_exchange(target: &Target<'_>) -> Result<KeOutcome, String> {
    let fail = |error: &dyn core::fmt::Display| format!("NTS-KE with {}: {error}", target.ke);
    let deadline = Instant::now() + KE_TIMEOUT;
    let roots = tls::root_store_from_pem(target.cert_pem.as_bytes()).map_err(|e| fail(&e))?;
    let config = tls::client_config(roots).map_err(|e| fail(&e))?;
    let mut client = KeClient::new(target.ke_name, config, &[AeadAlgorithm::AesSivCmac256])
        .map_err(|e| fail(&e))?;
    let mut stream = loop {
        match TcpStream::connect_timeout(&target.ke, remaining(deadline).map_err(|e| fail(&e))?) {
            Ok(stream) => break stream,
            Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => return Err(fail(&error)),
        }
    };
    client
        .run_blocking(&mut stream, deadline)
        .map_err(|e| fail(&e))
}

/// The time left until `deadline`, never zero (a zero socket timeout is
/// an error).
fn remaining(deadline: Instant) -> Result<Duration, String> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|left| !left.is_zero())
        .ok_or_else(|| format!("timed out after {KE_TIMEOUT:?}"))
}

/// Sends `datagram`, the first NTS request, until an answer comes (at
/// most [`CHECK_TRIES`] times) and checks that the answer authenticates:
/// a server that answers NTS requests without NTS (a kiss-o'-death, an
/// unsigned answer) must not pass for a fast one. Then drains the
/// answers to the repeats.
fn check_first_answer(
    socket: &UdpSocket,
    datagram: &[u8],
    mut check: NtsCheck,
) -> Result<(), String> {
    let mut buf = [0_u8; ntp_nts::client::MAX_RESPONSE_LEN];
    let mut outcome = Err(format!(
        "no answer to an NTS request within {:?}",
        QUIET * u32::try_from(CHECK_TRIES).unwrap_or(u32::MAX)
    ));
    for _ in 0..CHECK_TRIES {
        socket.send(datagram).map_err(|error| error.to_string())?;
        match socket.recv(&mut buf) {
            Ok(len) => {
                outcome = authenticate(&mut check, buf.get(..len).unwrap_or_default());
                break;
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::ConnectionRefused
                ) => {}
            Err(error) => return Err(error.to_string()),
        }
    }
    while socket.recv(&mut buf).is_ok() {}
    outcome
}

/// Whether `answer` is an authentic answer to the request `check` wrote.
fn authenticate(check: &mut NtsCheck, answer: &[u8]) -> Result<(), String> {
    check
        .session
        .read_response(answer, &check.state)
        .map(|_cookies| ())
        .map_err(|error| {
            format!(
                "the answer ({} octets) to an NTS request is not authentic: {error}",
                answer.len()
            )
        })
}

struct Load {
    socket: UdpSocket,
    requests: Vec<Vec<u8>>,
    next: usize,
}

impl Load {
    fn send_one(&mut self) -> io::Result<()> {
        let request = self
            .requests
            .get(self.next % REQUESTS)
            .map_or(&[][..], Vec::as_slice);
        self.next = self.next.wrapping_add(1);
        match self.socket.send(request) {
            Ok(_) => Ok(()),
            // A full socket buffer: the answer to an earlier request
            // makes room.
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Keeps [`WINDOW`] requests in flight for `duration`: (answers,
    /// requests counted lost).
    fn run(&mut self, duration: Duration) -> io::Result<(u64, u64)> {
        let end = Instant::now() + duration;
        let (mut answers, mut lost) = (0_u64, 0_u64);
        let mut buf = [0_u8; 1024];
        for _ in 0..WINDOW {
            self.send_one()?;
        }
        while Instant::now() < end {
            match self.socket.recv(&mut buf) {
                Ok(len) if len >= 48 => {
                    answers += 1;
                    self.send_one()?;
                }
                Ok(_) => {}
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    lost += WINDOW as u64;
                    for _ in 0..WINDOW {
                        self.send_one()?;
                    }
                }
                // The server is not up yet (ICMP port unreachable).
                Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
                    std::thread::sleep(Duration::from_millis(10));
                    self.send_one()?;
                }
                Err(error) => return Err(error),
            }
        }
        // Drain what is still in flight, so that the next run starts
        // with an empty window.
        while self.socket.recv(&mut buf).is_ok() {}
        Ok((answers, lost))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use ntp_client::ntp_auth::{KeyFileFormat, KeyStore};
    use ntp_client::ntp_proto::{ExtensionFieldType, Mode, Packet, TrailerItem};
    use ntp_nts::cookie::CookieKeys;
    use ntp_nts::{AeadKey, ef, server};

    use super::*;

    /// Never reached: the kinds with a MAC need no NTS-KE.
    const NOWHERE: Target<'static> = Target {
        ntp: SocketAddr::new(core::net::IpAddr::V4(core::net::Ipv4Addr::LOCALHOST), 9),
        ke: SocketAddr::new(core::net::IpAddr::V4(core::net::Ipv4Addr::LOCALHOST), 9),
        ke_name: "localhost",
        cert_pem: "",
    };

    /// The generator signs with the keys both servers read from
    /// [`KEY_FILE`]: every signed request verifies against the file.
    #[test]
    fn signed_requests_verify_against_the_servers_key_file() {
        let keys: KeyStore<4> = KeyFileFormat::Chrony
            .parse(KEY_FILE)
            .unwrap_or_else(|e| panic!("{e}"));
        for (kind, len) in [(Kind::Plain, 48), (Kind::Aes128, 68), (Kind::Md5, 68)] {
            let requests = requests(kind, &NOWHERE).unwrap_or_else(|e| panic!("{e}"));
            assert!(requests.check.is_none(), "{kind:?}");
            let requests = requests.datagrams;
            assert_eq!(requests.len(), REQUESTS);
            for request in &requests {
                assert_eq!(request.len(), len, "{kind:?}");
                if kind != Kind::Plain {
                    assert!(keys.verify(request).is_ok(), "{kind:?}");
                }
            }
            // Distinct nonces.
            assert_ne!(requests.first(), requests.last());
        }
        assert_eq!(Kind::parse("md5"), Ok(Kind::Md5));
        assert_eq!(Kind::parse("nts"), Ok(Kind::Nts));
        assert!(Kind::parse("sha1").is_err());
    }

    /// What NTS-KE would give: fixed session keys, and three cookies
    /// sealed by a server holding `cookie_keys`.
    fn session(cookie_keys: &CookieKeys, rng: &mut ChaCha12Rng) -> (SessionKeys, Vec<Cookie>) {
        let key = |octet| AeadKey::new(&[octet; 32]).unwrap_or_else(|| panic!("key length"));
        let keys = SessionKeys {
            algorithm: AeadAlgorithm::AesSivCmac256,
            c2s: key(1),
            s2c: key(2),
        };
        let cookies = (0..3)
            .map(|_| {
                cookie_keys
                    .seal(&keys, rng)
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        (keys, cookies)
    }

    /// Each NTS request is a client header with its own transmit
    /// timestamp, then exactly a Unique Identifier of its own, one cookie
    /// (the cookies in turn) and the authenticator; the server's code
    /// verifies it and would answer with one cookie.
    #[test]
    fn nts_requests_carry_one_cookie_each_in_turn_and_verify() {
        let mut rng = ChaCha12Rng::seed_from_u64(7);
        let cookie_keys = CookieKeys::new(1, &[9; 32]);
        let (keys, cookies) = session(&cookie_keys, &mut rng);
        let now = Date::try_from(SystemTime::now()).unwrap_or_else(|e| panic!("{e}"));
        let requests =
            nts_requests(&keys, &cookies, &mut rng, now).unwrap_or_else(|e| panic!("{e}"));
        assert!(requests.check.is_some());
        assert_eq!(requests.datagrams.len(), REQUESTS);
        let cookie_len = cookies.first().map_or(0, Cookie::len);
        let expected_len = HEADER_LEN
            + ef::field_len(32)
            + ef::field_len(cookie_len)
            + ef::authenticator_len(AeadAlgorithm::AesSivCmac256.nonce_len(), 0);
        let (mut unique_ids, mut transmits) = (HashSet::new(), HashSet::new());
        for (i, request) in requests.datagrams.iter().enumerate() {
            assert_eq!(request.len(), expected_len, "request {i}");
            let packet = Packet::new_checked(request.as_slice()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((packet.version(), packet.mode()), (4, Mode::Client));
            assert!(transmits.insert(packet.transmit_timestamp()), "request {i}");
            let fields: Vec<_> = packet
                .extension_fields()
                .map(|item| match item {
                    Ok(TrailerItem::Field(field)) => (field.field_type(), field.value().to_vec()),
                    other => panic!("request {i}: {other:?}"),
                })
                .collect();
            let types: Vec<_> = fields.iter().map(|(kind, _)| *kind).collect();
            assert_eq!(
                types,
                [
                    ExtensionFieldType::UniqueIdentifier,
                    ExtensionFieldType::NtsCookie,
                    ExtensionFieldType::NtsAuthenticator,
                ],
                "request {i}"
            );
            let cookie = cookies.get(i % cookies.len()).map(Cookie::as_bytes);
            assert_eq!(fields.get(1).map(|(_, body)| body.as_slice()), cookie);
            let verified =
                server::verify_request(request, &cookie_keys).unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(verified.cookies_requested(), 1, "request {i}");
            assert!(
                unique_ids.insert(verified.unique_id().to_vec()),
                "request {i}"
            );
        }
    }

    /// The check before a round takes the server's authentic answer to
    /// the first request, and refuses a forged or unprotected one.
    #[test]
    fn the_first_answer_must_authenticate() {
        let mut rng = ChaCha12Rng::seed_from_u64(8);
        let cookie_keys = CookieKeys::new(1, &[9; 32]);
        let (keys, cookies) = session(&cookie_keys, &mut rng);
        let now = Date::try_from(SystemTime::now()).unwrap_or_else(|e| panic!("{e}"));
        let Requests { datagrams, check } =
            nts_requests(&keys, &cookies, &mut rng, now).unwrap_or_else(|e| panic!("{e}"));
        let mut check = check.unwrap_or_else(|| panic!("no check"));
        let first = datagrams.first().unwrap_or_else(|| panic!("no request"));
        let verified =
            server::verify_request(first, &cookie_keys).unwrap_or_else(|e| panic!("{e:?}"));
        let mut answer = [0_u8; 1280];
        if let Some(header) = answer.first_mut() {
            *header = 0x24; // NTPv4, server
        }
        let len = verified
            .write_response(&cookie_keys, &mut rng, &mut answer)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(len, first.len(), "one cookie back: as long as the request");
        let answer = answer.get(..len).unwrap_or_else(|| panic!("{len}"));

        let mut forged = answer.to_vec();
        if let Some(octet) = forged.last_mut() {
            *octet ^= 1;
        }
        assert!(authenticate(&mut check, &forged).is_err());
        let mut unprotected = [0_u8; 48];
        unprotected[0] = 0x24;
        assert!(authenticate(&mut check, &unprotected).is_err());
        authenticate(&mut check, answer).unwrap_or_else(|e| panic!("{e}"));
    }
}
