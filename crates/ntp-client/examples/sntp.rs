//! A one-shot SNTP client (RFC 4330) over a std `UdpSocket`: one
//! data-minimized request, one checked answer, then it prints the offset,
//! delay, stratum, reference id and leap indicator. It only reads this
//! machine's clock; it never sets it. It shows the sans-IO [`Request`]
//! at work; in a program of your own, `ntp_client::sntp::query` does all
//! of this in one call (see the `query` example).
//!
//! ```text
//! cargo run -p ntp-client --example sntp -- 127.0.0.1:11123
//! ```
//!
//! Usage: `sntp [--timeout SECONDS] [--json] [--keys FILE [--keys-format
//! chrony|ntpd] --key ID] [--ntp-version N] ADDRESS[:PORT]`, where the
//! address is an IP address (no name lookup) and the port defaults to 123.
//!
//! - `--timeout SECONDS` how long to wait for a valid answer (default 5).
//!   One request is sent, never more: a datagram that does not answer it
//!   (another source address, wrong origin, bad header) is ignored and
//!   waiting goes on until the deadline.
//! - `--json` print one JSON object instead of the text lines.
//! - `--keys FILE --key ID` authenticate with symmetric key `ID` of the key
//!   file (RFC 5905 section 7.3, RFC 8573): the request carries its MAC,
//!   and only an answer with a valid MAC from that key is used (an
//!   answer without one is ignored like a stray datagram, and the
//!   timeout message names the refusal). `--keys-format` says how the
//!   file is written: `chrony` (default, `chrony.keys`) or `ntpd`
//!   (`ntp.keys`, also NTPsec's).
//! - `--ntp-version N` send the request as NTP version 2, 3 or 4 (default:
//!   4, or 3 with a key whose digest is longer than 20 octets, as chrony;
//!   4 with a SHA-256 key truncates the MAC to 20 octets, which NTPsec
//!   needs).
//!
//! The socket is bound to the loopback address when the server is on the
//! loopback, and to the unspecified address otherwise, on an ephemeral
//! port, and connected to the server.
//!
//! Exit status: 0 with a measurement; 1 on a timeout, a kiss-o'-death, an
//! unsynchronized server or a socket error, with a one-line message on
//! stderr; 2 on bad arguments or a bad key file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "example code"
)]

use core::hash::BuildHasher;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::time::Duration;
use std::collections::hash_map::RandomState;
use std::io;
use std::net::UdpSocket;
use std::process::ExitCode;
use std::time::SystemTime;

use ntp_client::ntp_auth::{Key, KeyFileFormat, KeyId, KeyStore};
use ntp_client::sntp::{Measurement, Request, ResponseError, SntpConfig};
use ntp_proto::{Date, KissCode, LeapIndicator};
use rand_chacha::ChaCha12Rng;
use rand_core::SeedableRng;

/// The NTP port, used when the address has none.
const NTP_PORT: u16 = 123;

/// Default wait for an answer.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

struct Options {
    server: SocketAddr,
    timeout: Duration,
    json: bool,
    key: Option<Key>,
    version: Option<u8>,
}

const USAGE: &str = "usage: sntp [--timeout SECONDS] [--json] \
[--keys FILE [--keys-format chrony|ntpd] --key ID] [--ntp-version N] ADDRESS[:PORT]";

/// The key `id` of the key file `path`.
fn load_key(path: &str, format: KeyFileFormat, id: &str) -> Result<Key, String> {
    let id = id
        .parse::<u32>()
        .ok()
        .and_then(KeyId::new)
        .ok_or_else(|| format!("--key {id:?}: not a key id from 1 to 4294967295"))?;
    let keys: KeyStore<1024> =
        KeyStore::load(path, format).map_err(|e| format!("key file {path}: {e}"))?;
    keys.get(id)
        .cloned()
        .ok_or_else(|| format!("key file {path} has no key {id}"))
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut server = None;
    let mut timeout = DEFAULT_TIMEOUT;
    let mut json = false;
    let mut version = None;
    let (mut keys, mut key_id, mut format) = (None, None, KeyFileFormat::Chrony);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value; {USAGE}"))
        };
        match arg.as_str() {
            "--json" => json = true,
            "--keys" => keys = Some(value("--keys")?),
            "--key" => key_id = Some(value("--key")?),
            "--ntp-version" => {
                let text = value("--ntp-version")?;
                version = Some(
                    text.parse::<u8>()
                        .ok()
                        .filter(|v| (ntp_client::sntp::MIN_REQUEST_VERSION..=4).contains(v))
                        .ok_or_else(|| format!("--ntp-version {text:?}: 2, 3 or 4"))?,
                );
            }
            "--keys-format" => {
                format = match value("--keys-format")?.as_str() {
                    "chrony" => KeyFileFormat::Chrony,
                    "ntpd" => KeyFileFormat::Ntpd,
                    other => return Err(format!("--keys-format {other:?}: chrony or ntpd")),
                }
            }
            "--timeout" => {
                let value = value("--timeout")?;
                timeout = value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| *s > 0.0 && *s <= 3600.0)
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .ok_or_else(|| {
                        format!("--timeout {value:?}: not a number of seconds in (0, 3600]")
                    })?;
            }
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag}; {USAGE}")),
            address => {
                if server.is_some() {
                    return Err(format!("more than one server address; {USAGE}"));
                }
                server = Some(parse_address(address)?);
            }
        }
    }
    let server = server.ok_or_else(|| format!("no server address; {USAGE}"))?;
    let key = match (keys, key_id) {
        (Some(path), Some(id)) => Some(load_key(&path, format, &id)?),
        (None, None) => None,
        _ => return Err(format!("--keys and --key go together; {USAGE}")),
    };
    Ok(Options {
        server,
        timeout,
        json,
        key,
        version,
    })
}

/// `IP:PORT`, `[IPv6]:PORT`, or a bare IP address (port 123).
fn parse_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, NTP_PORT));
    }
    Err(format!(
        "{text:?} is not an IP address with an optional port"
    ))
}

fn bind_for(server: SocketAddr) -> io::Result<UdpSocket> {
    let local: IpAddr = match server.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => Ipv4Addr::LOCALHOST.into(),
        IpAddr::V6(ip) if ip.is_loopback() => Ipv6Addr::LOCALHOST.into(),
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    UdpSocket::bind(SocketAddr::new(local, 0))
}

/// This machine's clock as an NTP date.
fn clock() -> Date {
    Date::try_from(SystemTime::now()).unwrap_or(Date::UNIX_EPOCH)
}

/// A generator for the transmit nonce, seeded from std's per-process
/// random hasher keys (drawn from the operating system).
fn rng() -> ChaCha12Rng {
    let mut seed = [0u8; 32];
    for (i, chunk) in seed.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&RandomState::new().hash_one(i).to_le_bytes());
    }
    ChaCha12Rng::from_seed(seed)
}

/// Why no measurement came.
enum Failure {
    Io(io::Error),
    /// No valid answer before the deadline; the last refused datagram's
    /// reason, if any.
    Timeout(Option<ResponseError>),
    /// The server answered our request but said it cannot be used.
    Refused(ResponseError),
    /// The host said nothing listens on that port (ICMP port unreachable).
    PortUnreachable,
}

/// Sends one request and waits for its answer until `timeout`.
fn query(
    server: SocketAddr,
    timeout: Duration,
    key: Option<Key>,
    version: Option<u8>,
) -> Result<Measurement, Failure> {
    let socket = bind_for(server).map_err(Failure::Io)?;
    let mut config = SntpConfig::default();
    config.key = key;
    config.version = version;
    let request = Request::new(&mut rng(), clock());
    // Connected: the kernel drops datagrams from other addresses and
    // reports an ICMP port unreachable as an error.
    socket.connect(server).map_err(Failure::Io)?;
    // The header, and the MAC when a key is set.
    socket.send(&request.encode(&config)).map_err(Failure::Io)?;
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    let mut last_refusal = None;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(Failure::Timeout(last_refusal));
        }
        socket.set_read_timeout(Some(left)).map_err(Failure::Io)?;
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Failure::Timeout(last_refusal));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // An ICMP port unreachable answering our request shows up here
            // on Linux: nobody listens there.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(Failure::PortUnreachable);
            }
            Err(e) => return Err(Failure::Io(e)),
        };
        let t4 = clock();
        if from != server {
            continue;
        }
        match request.check_response(&buf[..len], t4, &config) {
            Ok(measurement) => return Ok(measurement),
            // Answers our request (the origin matched) but cannot be used.
            Err(e) if e.is_final() => return Err(Failure::Refused(e)),
            // Not an answer to our request: keep waiting.
            Err(e) => last_refusal = Some(e),
        }
    }
}

fn leap_text(leap: LeapIndicator) -> &'static str {
    match leap {
        LeapIndicator::NoWarning => "none",
        LeapIndicator::InsertSecond => "insert second",
        LeapIndicator::DeleteSecond => "delete second",
        LeapIndicator::Unsynchronized => "unsynchronized",
    }
}

fn print_text(server: SocketAddr, m: &Measurement, key: Option<&Key>) {
    println!("server      {server}");
    if let Some(key) = key {
        println!(
            "auth        key {} ({}), MAC verified",
            key.id(),
            key.key_type()
        );
    }
    println!("offset      {:+.9} s", m.offset);
    println!("delay       {:.9} s", m.delay);
    println!("dispersion  {:.9} s", m.dispersion);
    println!("stratum     {}", m.stratum.get());
    println!("refid       {}", m.reference_id.display(m.stratum));
    println!("leap        {} ({})", m.leap.to_bits(), leap_text(m.leap));
    println!(
        "root delay  {:.6} s, root dispersion {:.6} s, precision 2^{} s",
        m.root_delay.to_seconds_f64(),
        m.root_dispersion.to_seconds_f64(),
        m.precision
    );
}

fn print_json(server: SocketAddr, m: &Measurement, key: Option<&Key>) {
    let object = serde_json::json!({
        "server": server.to_string(),
        "key": key.map(|key| key.id().get()),
        "offset": m.offset,
        "delay": m.delay,
        "dispersion": m.dispersion,
        "stratum": m.stratum.get(),
        "refid": m.reference_id.display(m.stratum).to_string(),
        "leap": m.leap.to_bits(),
        "root_delay": m.root_delay.to_seconds_f64(),
        "root_dispersion": m.root_dispersion.to_seconds_f64(),
        "precision": m.precision,
        "root_distance": m.root_distance(),
    });
    println!("{object}");
}

fn kiss_message(code: KissCode) -> String {
    let advice = match code {
        KissCode::Deny | KissCode::Rstr => "; stop querying this server",
        KissCode::Rate => "; query less often",
        _ => "",
    };
    format!("kiss-o'-death {code} ({}){advice}", code.description())
}

fn main() -> ExitCode {
    if std::env::args()
        .skip(1)
        .any(|arg| arg == "--help" || arg == "-h")
    {
        println!("{}", USAGE);
        return ExitCode::SUCCESS;
    }
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("sntp: {message}");
            return ExitCode::from(2);
        }
    };
    let server = options.server;
    let key = options.key.as_ref();
    match query(
        server,
        options.timeout,
        options.key.clone(),
        options.version,
    ) {
        Ok(measurement) => {
            if options.json {
                print_json(server, &measurement, key);
            } else {
                print_text(server, &measurement, key);
            }
            ExitCode::SUCCESS
        }
        Err(failure) => {
            let message = match failure {
                Failure::Io(e) => format!("socket error: {e}"),
                Failure::Timeout(None) => {
                    format!("no answer within {:.1} s", options.timeout.as_secs_f64())
                }
                Failure::Timeout(Some(last)) => format!(
                    "no valid answer within {:.1} s (ignored a datagram: {last})",
                    options.timeout.as_secs_f64()
                ),
                Failure::Refused(ResponseError::KissOfDeath(code)) => kiss_message(code),
                Failure::Refused(e) => format!("answer refused: {e}"),
                Failure::PortUnreachable => "nothing listens there (port unreachable)".to_owned(),
            };
            eprintln!("sntp: {server}: {message}");
            ExitCode::from(1)
        }
    }
}
