//! The `ntp-server` core over a UDP socket, in one thread: the shortest
//! complete server of this machine's clock. It only reads the clock.
//!
//! ```text
//! cargo run --release -p ntp-server --example serve -- --listen 127.0.0.1:11123
//! ```
//!
//! Options: `--listen ADDR:PORT` (default `127.0.0.1:11123`; port 0 picks
//! one), `--stratum N` (default 1; 16 plays an unsynchronized server),
//! `--keys FILE` (chrony's key file format: requests signed with one of
//! its keys get answers signed with it), `--duration SECONDS` (default:
//! until killed).
//!
//! It prints `listening on ADDR` when ready and its counters when it
//! stops. The program to run is `ntp-daemon --serve ADDR --local 1`: the
//! same core with worker threads, access rules, rate limits, NTS and a
//! clock it keeps in time; this example shows the loop that daemon runs:
//! receive, [`Server::handle`], stamp the transmit time,
//! [`Server::finish`], send.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "example code"
)]

use core::net::SocketAddr;
use core::time::Duration;
use std::io::ErrorKind;
use std::net::UdpSocket;
use std::process::ExitCode;
use std::time::SystemTime;

use ntp_proto::{Date, RefId, Stratum, SystemState, Timestamp};
use ntp_server::ntp_auth::{KeyFileFormat, KeyStore};
use ntp_server::{AccessAction, Action, Instant, MAX_RESPONSE_LEN, Server, ServerConfig};

/// Precision we advertise: 2^-20 s (about 1 µs), what `SystemTime` on
/// Linux resolves comfortably.
const PRECISION: i8 = -20;

/// The most keys the key file may hold.
const MAX_KEYS: usize = 64;

struct Options {
    listen: SocketAddr,
    stratum: u8,
    keys: Option<String>,
    duration: Option<Duration>,
}

const USAGE: &str =
    "usage: serve [--listen ADDR:PORT] [--stratum N] [--keys FILE] [--duration SECONDS]";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        listen: "127.0.0.1:11123".parse().unwrap(),
        stratum: 1,
        keys: None,
        duration: None,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag}: needs a value; {USAGE}"))?;
        let bad = |what: &str| format!("{flag} {value:?}: {what}");
        match flag.as_str() {
            "--listen" => options.listen = value.parse().map_err(|_| bad("not ADDR:PORT"))?,
            "--stratum" => {
                options.stratum = value
                    .parse()
                    .ok()
                    .filter(|stratum| (1..=16).contains(stratum))
                    .ok_or_else(|| bad("1 to 16"))?;
            }
            "--keys" => options.keys = Some(value),
            "--duration" => {
                let seconds: f64 = value.parse().map_err(|_| bad("not a number"))?;
                let duration = Duration::try_from_secs_f64(seconds).map_err(|_| bad("range"))?;
                options.duration = Some(duration);
            }
            _ => return Err(format!("unknown flag {flag}; {USAGE}")),
        }
    }
    Ok(options)
}

fn clock() -> Timestamp {
    Date::try_from(SystemTime::now()).map_or(Timestamp::ZERO, Date::to_timestamp)
}

/// A primary server of the local clock at `stratum`, or, at 16, an
/// unsynchronized one (leap indicator 3; RFC 5905, section 7.3).
fn system_state(stratum: u8) -> SystemState {
    if stratum >= 16 {
        return SystemState::unsynchronized(PRECISION);
    }
    let mut state = SystemState::primary(RefId::LOCL, clock());
    state.stratum = Stratum::new(stratum);
    state.precision = PRECISION;
    state
}

fn server(options: &Options) -> Result<Server, String> {
    // Every client answered, none rate-limited: a demonstration.
    let mut config = ServerConfig::default();
    config.acl_default = AccessAction::Allow;
    let mut server = Server::new(&config, system_state(options.stratum))
        .map_err(|error| format!("server: {error}"))?;
    if let Some(path) = &options.keys {
        let keys = KeyStore::<MAX_KEYS>::load(path, KeyFileFormat::Chrony)
            .map_err(|error| format!("{path}: {error}"))?;
        server.set_keys(&keys);
    }
    Ok(server)
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("serve: {message}");
            return ExitCode::from(2);
        }
    };
    let mut server = match server(&options) {
        Ok(server) => server,
        Err(message) => {
            eprintln!("serve: {message}");
            return ExitCode::from(2);
        }
    };
    let socket = match UdpSocket::bind(options.listen) {
        Ok(socket) => socket,
        Err(error) => {
            eprintln!("serve: cannot bind {}: {error}", options.listen);
            return ExitCode::from(1);
        }
    };
    // Wake up now and then to look at the deadline.
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    println!("listening on {}", socket.local_addr().unwrap());

    let origin = std::time::Instant::now();
    let mut request = [0u8; 2048];
    let mut out = [0u8; MAX_RESPONSE_LEN];
    while options.duration.is_none_or(|d| origin.elapsed() < d) {
        let (len, client) = match socket.recv_from(&mut request) {
            Ok(received) => received,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => {
                eprintln!("serve: receive: {e}");
                return ExitCode::from(1);
            }
        };
        let rx = clock();
        let now = Instant::from_std(origin, std::time::Instant::now());
        if let Action::Respond(reply) = server.handle(&request[..len], client, rx, now, &mut out) {
            // The transmit timestamp goes in last, as late as it can.
            let datagram = server.finish(&reply, &mut out, clock());
            if let Err(e) = socket.send_to(datagram, client) {
                eprintln!("serve: send to {client}: {e}");
            }
        }
    }
    println!("counters: {}", server.counters());
    ExitCode::SUCCESS
}
