//! NTS-KE for `--nts` sources (RFC 8915 section 4): the TLS 1.3 exchange
//! over a std `TcpStream`, bounded by a timeout, with ntp-nts's sans-IO
//! [`KeClient`], and the resolution of the NTPv4 server it names.
//!
//! The exchange takes at most [`KE_TIMEOUT`] (its name lookups aside); it
//! runs on a thread of its own (see `background`), never on the loop.

use core::net::SocketAddr;
use core::time::Duration;
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;

use ntp_client::NtsKeOutcome;
use ntp_nts::AeadAlgorithm;
use ntp_nts::rustls::ClientConfig;
use ntp_nts::tls::{ExchangeError, KeClient, KeOutcome};
use serde_json::json;

use crate::log::Log;

/// The longest an NTS-KE exchange may take, connection included.
pub(crate) const KE_TIMEOUT: Duration = Duration::from_secs(5);

/// A successful exchange: what the system needs, and what the log shows.
pub(crate) struct Established {
    pub(crate) outcome: NtsKeOutcome,
    /// The NTPv4 server as the NTS-KE server named it, `None` for itself.
    pub(crate) named_server: Option<String>,
    pub(crate) algorithm: AeadAlgorithm,
    pub(crate) cookies: usize,
}

/// Runs NTS-KE with `host`:`port` and resolves the NTPv4 server it names
/// (its Server Negotiation record, else `host`; its Port Negotiation
/// record, else 123: sections 4.1.7 and 4.1.8). `usable` says which
/// addresses the daemon has a socket for.
pub(crate) fn key_exchange(
    config: &Arc<ClientConfig>,
    host: &str,
    port: u16,
    usable: impl Fn(SocketAddr) -> bool,
) -> Result<Established, String> {
    let deadline = Instant::now() + KE_TIMEOUT;
    let outcome = exchange(config, host, port, deadline)?;
    let server = outcome.ntp_server.clone();
    let ntp_host = server.as_deref().unwrap_or(host);
    let ntp_port = outcome.port();
    let ntp_address = (bare(ntp_host), ntp_port)
        .to_socket_addrs()
        .map_err(|error| format!("NTP server {ntp_host}: cannot resolve: {error}"))?
        .find(|address| usable(*address))
        .ok_or_else(|| format!("NTP server {ntp_host}: no address of a usable family"))?;
    let algorithm = outcome.keys.algorithm;
    let cookies = outcome.cookies.len();
    Ok(Established {
        outcome: NtsKeOutcome::new(outcome.keys, outcome.cookies, ntp_address),
        named_server: server,
        algorithm,
        cookies,
    })
}

/// Logs a successful exchange of `source` (named `name`) with
/// `host`:`port`.
pub(crate) fn log_established(
    log: Log,
    t: f64,
    name: &str,
    host: &str,
    port: u16,
    established: &Established,
) {
    let address = established.outcome.ntp_address;
    log.line(
        t,
        "nts_ke",
        &format!(
            "NTS-KE {host}:{port}: {} cookie(s), {}, NTP server {address}{}",
            established.cookies,
            established.algorithm,
            established
                .named_server
                .as_ref()
                .map_or_else(String::new, |named| format!(" (named {named})")),
        ),
        json!({
            "source": name,
            "server": format!("{host}:{port}"),
            "ok": true,
            "cookies": established.cookies,
            "aead": established.algorithm.to_string(),
            "ntp_server": address.to_string(),
            "named_server": established.named_server,
        }),
    );
}

/// Logs a failed exchange of `source` (named `name`) with `host`:`port`.
pub(crate) fn log_failed(log: Log, t: f64, name: &str, host: &str, port: u16, error: &str) {
    log.line(
        t,
        "nts_ke",
        &format!("NTS-KE {host}:{port}: failed: {error}; retried later"),
        json!({
            "source": name,
            "server": format!("{host}:{port}"),
            "ok": false,
            "error": error,
        }),
    );
}

/// A host without the brackets of an IPv6 literal (`[::1]` → `::1`), for
/// the certificate name check and the resolver.
fn bare(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(host)
}

fn exchange(
    config: &Arc<ClientConfig>,
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<KeOutcome, String> {
    let name = bare(host);
    let mut client = KeClient::new(name, Arc::clone(config), &AeadAlgorithm::ALL)
        .map_err(|error| error.to_string())?;
    let addresses: Vec<SocketAddr> = (name, port)
        .to_socket_addrs()
        .map_err(|error| format!("cannot resolve: {error}"))?
        .collect();
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address");
    let mut stream = None;
    for address in addresses {
        let left = remaining(deadline)?;
        match TcpStream::connect_timeout(&address, left) {
            Ok(connected) => {
                stream = Some(connected);
                break;
            }
            Err(error) => last_error = error,
        }
    }
    let mut stream = stream.ok_or_else(|| format!("connect: {last_error}"))?;
    client
        .run_blocking(&mut stream, deadline)
        .map_err(|error| match error {
            ExchangeError::TimedOut => format!("no answer within {} s", KE_TIMEOUT.as_secs()),
            other => other.to_string(),
        })
}

/// The time left before `deadline`, or the timeout error.
fn remaining(deadline: Instant) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(format!("timed out after {} s", KE_TIMEOUT.as_secs()));
    }
    Ok(left)
}
