//! NTS-KE client and server over TLS 1.3 (RFC 8915 sections 3 and 4), as
//! sans-IO state machines on rustls.
//!
//! The caller owns the TCP stream (port [`NTS_KE_PORT`](crate::ke::NTS_KE_PORT))
//! and moves its bytes: [`read_tls`](KeClient::read_tls) feeds what arrived,
//! [`write_tls`](KeClient::write_tls) drains what is to be sent, and
//! [`process`](KeClient::process) advances the exchange:
//!
//! 1. the TLS 1.3 handshake, with ALPN `ntske/1` required on both sides
//!    (section 3; a peer that does not negotiate it is refused after the
//!    handshake, since rustls accepts a peer that does not use ALPN at all);
//! 2. the client's request ([`ke::encode_client_request`]), the server's
//!    choice ([`ke::negotiate`]) and response, each read until its End of
//!    Message record and never longer than [`MAX_MESSAGE_LEN`];
//! 3. the keys, exported on both sides with the label
//!    `EXPORTER-network-time-security` and the context of section 5.1
//!    ([`ke::exporter_context`]);
//! 4. `close_notify` (section 4): the server sends it right after its
//!    response, the client once the response is complete.
//!
//! Nothing here reads a clock: the server's "implementation-defined
//! timeout" (section 4.1.3) is the caller's, who calls
//! [`KeServer::handle_timeout`] when it expires.
//!
//! The config helpers build TLS 1.3-only configs with the ring provider and
//! ALPN `ntske/1` from PEM certificates and keys ([`client_config`],
//! [`server_config`] and their `_pem` and `_pem_file` forms).
//!
//! A std program serving NTS-KE over a blocking `TcpStream` need not write
//! the byte-moving loop: [`KeServer::run_blocking`] runs one exchange with
//! the caller's socket timeouts and deadline, and [`limits`] has the
//! connection caps and timeouts that keep such a service up under abuse.

mod blocking;
pub mod limits;

use core::fmt;
use std::borrow::ToOwned;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::string::String;
use std::sync::Arc;
use std::vec;
use std::vec::Vec;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, ConnectionCommon, ProtocolVersion, RootCertStore, ServerConfig,
    ServerConnection, SideData,
};
use zeroize::Zeroize;

use crate::ke::{
    self, ALPN_NTSKE, ClientRequest, DEFAULT_NTP_PORT, EXPORTER_LABEL, ErrorCode, KeError,
    KeyDirection, Negotiation, RECOMMENDED_COOKIES, ServerResponse,
};
use crate::{
    AeadAlgorithm, AeadKey, Cookie, CookieIssuer, MAX_COOKIE_LEN, MAX_KEY_LEN, SessionKeys,
};

/// The longest request a [`KeServer`] reads and the longest response a
/// [`KeClient`] reads, octets: 64 KiB, the length clients should accept
/// (RFC 8915 section 4, [`MIN_RESPONSE_LIMIT`](ke::MIN_RESPONSE_LIMIT)),
/// far above the 1024 octets servers must accept. A message that has not
/// ended within it is an error, not a reason to grow a buffer.
pub const MAX_MESSAGE_LEN: usize = 65536;

/// How far an exchange got, from [`KeClient::process`] and
/// [`KeServer::process`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Progress<T> {
    /// More bytes must move: write while `wants_write`, read when
    /// `wants_read`, then process again.
    Pending,
    /// The exchange is over: flush `write_tls` while `wants_write` (the
    /// `close_notify`, the server's response), then close the stream.
    Done(T),
}

/// Why an NTS-KE exchange failed.
///
/// After an error, flush [`write_tls`](KeClient::write_tls) while
/// `wants_write` (rustls may have queued an alert, or the state machine a
/// `close_notify`) and close the stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// TLS failed: handshake, certificate verification (a wrong server
    /// name or an untrusted certificate is
    /// `rustls::Error::InvalidCertificate`), an alert from the peer, or
    /// key export.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// The peer did not negotiate ALPN `ntske/1` (RFC 8915 section 3 and
    /// section 4: the client offers it, the server accepts it).
    #[error("the peer did not negotiate ALPN ntske/1")]
    NoAlpn,
    /// The server's config does not offer ALPN `ntske/1`, so no client
    /// could ever be served.
    #[error("the server config does not offer ALPN ntske/1")]
    AlpnNotConfigured,
    /// The session is not TLS 1.3 (RFC 8915 section 3: "MUST NOT negotiate
    /// TLS versions earlier than 1.3").
    #[error("the session is not TLS 1.3")]
    NotTls13,
    /// The server's response is malformed, refuses (an Error or Warning
    /// record), does not choose NTPv4 or an offered algorithm, or has no
    /// cookie; or a request or name given to this crate is invalid.
    #[error("NTS-KE: {0}")]
    Ke(#[from] KeError),
    /// The peer's message did not end within [`MAX_MESSAGE_LEN`] octets.
    #[error("the NTS-KE message did not end within {limit} octets")]
    MessageTooLong {
        /// The limit, octets.
        limit: usize,
    },
    /// The peer closed the connection before its message ended.
    #[error("the peer closed the connection before End of Message")]
    Closed,
    /// A cookie longer than this crate keeps ([`MAX_COOKIE_LEN`]).
    #[error("cookie of {len} octets exceeds {MAX_COOKIE_LEN}")]
    CookieTooLong {
        /// The cookie's length.
        len: usize,
    },
    /// The server name is neither a DNS name nor an IP address.
    #[error("invalid server name {0:?}")]
    InvalidServerName(String),
    /// `process` was called again after the exchange ended.
    #[error("the exchange has already ended")]
    Finished,
    /// Reading or writing the caller's stream failed.
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    /// [`KeClient::run_blocking`]'s deadline passed before the exchange
    /// ended.
    #[error("no answer before the deadline")]
    TimedOut,
}

/// What a successful NTS-KE exchange gives the client (RFC 8915 sections
/// 4.1 and 5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeOutcome {
    /// The negotiated algorithm and the C2S and S2C keys.
    pub keys: SessionKeys,
    /// The server's cookies, in order, at most [`RECOMMENDED_COOKIES`];
    /// never empty.
    pub cookies: Vec<Cookie>,
    /// The NTPv4 server to use, as the server wrote it (RFC 8915 section
    /// 4.1.7: a host name to treat as fully qualified, or an IP address);
    /// `None` means the NTS-KE server's address.
    pub ntp_server: Option<String>,
    /// The NTPv4 port the server named (RFC 8915 section 4.1.8).
    pub ntp_port: Option<u16>,
}

impl KeOutcome {
    /// The NTPv4 port to use: the server's, else 123 (RFC 8915 section
    /// 4.1.8).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.ntp_port.unwrap_or(DEFAULT_NTP_PORT)
    }
}

/// The session is TLS 1.3 with ALPN `ntske/1` (RFC 8915 section 3).
fn check_session<D: SideData>(tls: &ConnectionCommon<D>) -> Result<(), ExchangeError> {
    if tls.protocol_version() != Some(ProtocolVersion::TLSv1_3) {
        return Err(ExchangeError::NotTls13);
    }
    if tls.alpn_protocol() != Some(ALPN_NTSKE) {
        return Err(ExchangeError::NoAlpn);
    }
    Ok(())
}

/// The C2S and S2C keys of `algorithm` (RFC 8915 section 5.1), each
/// exported at the algorithm's key length (the exporter's output depends
/// on its length, so a longer export cut short would be a different key).
fn export_keys<D: SideData>(
    tls: &ConnectionCommon<D>,
    algorithm: AeadAlgorithm,
) -> Result<SessionKeys, ExchangeError> {
    let key = |direction| -> Result<AeadKey, ExchangeError> {
        let mut buffer = [0; MAX_KEY_LEN];
        let context = ke::exporter_context(algorithm, direction);
        let out = buffer.get_mut(..algorithm.key_len()).unwrap_or(&mut []);
        let exported = tls
            .export_keying_material(&mut *out, EXPORTER_LABEL, Some(&context))
            .map(|out| AeadKey::new(out));
        buffer.zeroize();
        exported?.ok_or_else(|| {
            ExchangeError::Tls(rustls::Error::General("key longer than MAX_KEY_LEN".into()))
        })
    };
    Ok(SessionKeys {
        algorithm,
        c2s: key(KeyDirection::ClientToServer)?,
        s2c: key(KeyDirection::ServerToClient)?,
    })
}

/// Moves decrypted octets into `received` until it holds a whole message;
/// returns its length, or `None` while more must arrive.
fn read_message(
    reader: &mut dyn Read,
    received: &mut Vec<u8>,
) -> Result<Option<usize>, ExchangeError> {
    let mut chunk = [0; 4096];
    loop {
        if let Some(len) = ke::find_end_of_message(received) {
            return Ok(Some(len));
        }
        if received.len() > MAX_MESSAGE_LEN {
            return Err(ExchangeError::MessageTooLong {
                limit: MAX_MESSAGE_LEN,
            });
        }
        match reader.read(&mut chunk) {
            Ok(0) => return Err(ExchangeError::Closed),
            Ok(len) => received.extend_from_slice(chunk.get(..len).unwrap_or(&[])),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(ExchangeError::Closed);
            }
            Err(error) => return Err(ExchangeError::Io(error)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Handshaking,
    Exchanging,
    Ended,
}

/// The client side of NTS-KE (RFC 8915 section 4): a TLS 1.3 client that
/// sends one request, reads the response and exports the keys.
///
/// The caller connects a TCP stream to the server (port 4460) and loops:
/// call [`process`](Self::process), write while
/// [`wants_write`](Self::wants_write), then stop if `process` returned
/// [`Progress::Done`] or an error, else read when
/// [`wants_read`](Self::wants_read). (Writing before reading matters: over
/// a blocking stream, what `process` queued must leave before the read
/// waits for the answer to it.) The caller should bound the whole exchange
/// with its own timeout.
///
/// ```no_run
/// use std::net::TcpStream;
/// use ntp_nts::AeadAlgorithm;
/// use ntp_nts::tls::{self, KeClient, Progress};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = tls::client_config_from_pem_file("ca.pem")?;
/// let mut client = KeClient::new("nts.example.net", config, &[AeadAlgorithm::AesSivCmac256])?;
/// let mut stream = TcpStream::connect(("nts.example.net", 4460))?;
/// stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
/// let outcome = loop {
///     let progress = client.process()?;
///     while client.wants_write() {
///         client.write_tls(&mut stream)?;
///     }
///     if let Progress::Done(outcome) = progress {
///         break outcome;
///     }
///     if client.wants_read() {
///         client.read_tls(&mut stream)?;
///     }
/// };
/// println!("{} cookies for port {}", outcome.cookies.len(), outcome.port());
/// # Ok(())
/// # }
/// ```
pub struct KeClient {
    tls: ClientConnection,
    aeads: Vec<AeadAlgorithm>,
    state: State,
    received: Vec<u8>,
}

impl fmt::Debug for KeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeClient")
            .field("aeads", &self.aeads)
            .field("state", &self.state)
            .field("received", &self.received.len())
            .finish_non_exhaustive()
    }
}

impl KeClient {
    /// A client for the NTS-KE server `server_name` (a DNS name or an IP
    /// address, checked against its certificate), offering `aeads` in
    /// decreasing preference. ALPN `ntske/1` is offered whatever `config`
    /// says; the config should allow TLS 1.3 only ([`client_config`]
    /// builds one), and a session of another version is refused anyway.
    ///
    /// # Errors
    ///
    /// [`ExchangeError::InvalidServerName`], [`KeError::EmptyAead`] if
    /// `aeads` is empty, [`ExchangeError::Tls`] if rustls refuses the
    /// config.
    pub fn new(
        server_name: &str,
        config: Arc<ClientConfig>,
        aeads: &[AeadAlgorithm],
    ) -> Result<Self, ExchangeError> {
        if aeads.is_empty() {
            return Err(KeError::EmptyAead.into());
        }
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| ExchangeError::InvalidServerName(server_name.to_owned()))?;
        let tls = ClientConnection::new_with_alpn(config, name, vec![ALPN_NTSKE.to_vec()])?;
        Ok(Self {
            tls,
            aeads: aeads.to_vec(),
            state: State::Handshaking,
            received: Vec::new(),
        })
    }

    /// Reads TLS records from the server's stream (one read call).
    ///
    /// # Errors
    ///
    /// As rustls' `read_tls`: the stream's errors, or too much unprocessed
    /// data (call [`process`](Self::process) between reads).
    pub fn read_tls(&mut self, stream: &mut dyn Read) -> io::Result<usize> {
        self.tls.read_tls(stream)
    }

    /// Writes pending TLS records to the server's stream (one write call).
    ///
    /// # Errors
    ///
    /// The stream's errors.
    pub fn write_tls(&mut self, stream: &mut dyn Write) -> io::Result<usize> {
        self.tls.write_tls(stream)
    }

    /// Whether TLS records are waiting for [`write_tls`](Self::write_tls).
    #[must_use]
    pub fn wants_write(&self) -> bool {
        self.tls.wants_write()
    }

    /// Whether the exchange needs more from the server.
    #[must_use]
    pub fn wants_read(&self) -> bool {
        self.state != State::Ended && self.tls.wants_read()
    }

    /// Processes what was read: completes the handshake, checks ALPN and
    /// TLS 1.3, sends the request, and once the response has ended,
    /// validates it and exports the keys. Returns [`Progress::Done`] once;
    /// the `close_notify` is then queued.
    ///
    /// # Errors
    ///
    /// [`ExchangeError::Tls`] (certificate, handshake, alerts),
    /// [`ExchangeError::NoAlpn`], [`ExchangeError::NotTls13`],
    /// [`ExchangeError::Ke`] (malformed response, [`KeError::ServerError`],
    /// [`KeError::UnrecognizedCritical`], no NTPv4, no offered algorithm,
    /// no cookie), [`ExchangeError::MessageTooLong`],
    /// [`ExchangeError::Closed`], [`ExchangeError::CookieTooLong`];
    /// [`ExchangeError::Finished`] if called after the end. Every error
    /// ends the exchange.
    pub fn process(&mut self) -> Result<Progress<KeOutcome>, ExchangeError> {
        if self.state == State::Ended {
            return Err(ExchangeError::Finished);
        }
        let progress = self.step();
        if !matches!(progress, Ok(Progress::Pending)) {
            self.state = State::Ended;
            self.tls.send_close_notify();
        }
        progress
    }

    /// Runs the whole exchange over a connected blocking `stream`: the
    /// loop of [`process`](Self::process), [`write_tls`](Self::write_tls)
    /// and [`read_tls`](Self::read_tls) that a program with a thread to
    /// spare would write, each read and write bounded by the time left
    /// before `deadline`. The `close_notify` is sent (as far as the
    /// stream takes it) before the outcome is returned.
    ///
    /// # Errors
    ///
    /// As [`process`](Self::process); [`ExchangeError::Io`] when the
    /// stream fails, [`ExchangeError::TimedOut`] when `deadline` passes,
    /// [`ExchangeError::Closed`] when the server closes the connection
    /// before its response ended.
    pub fn run_blocking(
        &mut self,
        stream: &mut std::net::TcpStream,
        deadline: std::time::Instant,
    ) -> Result<KeOutcome, ExchangeError> {
        let remaining = || {
            deadline
                .checked_duration_since(std::time::Instant::now())
                .filter(|left| !left.is_zero())
                .ok_or(ExchangeError::TimedOut)
        };
        loop {
            let progress = self.process()?;
            stream.set_write_timeout(Some(remaining()?))?;
            let mut flushed = Ok(());
            while flushed.is_ok() && self.wants_write() {
                flushed = self.write_tls(stream).map(|_| ());
            }
            if let Progress::Done(outcome) = progress {
                // The close_notify is best effort: the server may have
                // closed already.
                return Ok(outcome);
            }
            flushed?;
            if !self.wants_read() {
                continue;
            }
            stream.set_read_timeout(Some(remaining()?))?;
            let read = self.read_tls(stream).map_err(|error| match error.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ExchangeError::TimedOut,
                _ => ExchangeError::Io(error),
            })?;
            if read == 0 {
                // The peer closed: what it sent before may still end the
                // response.
                return match self.process()? {
                    Progress::Done(outcome) => Ok(outcome),
                    Progress::Pending => Err(ExchangeError::Closed),
                };
            }
        }
    }

    fn step(&mut self) -> Result<Progress<KeOutcome>, ExchangeError> {
        self.tls.process_new_packets()?;
        if self.tls.is_handshaking() {
            return Ok(Progress::Pending);
        }
        if self.state == State::Handshaking {
            check_session(&self.tls)?;
            let mut request = vec![0; 16 + 2 * self.aeads.len()];
            let len = ke::encode_client_request(&self.aeads, &mut request)?;
            self.tls
                .writer()
                .write_all(request.get(..len).unwrap_or(&[]))?;
            self.state = State::Exchanging;
        }
        let Some(len) = read_message(&mut self.tls.reader(), &mut self.received)? else {
            return Ok(Progress::Pending);
        };
        let message = self.received.get(..len).unwrap_or(&[]);
        let response = ServerResponse::parse(message)?;
        let algorithm = response.negotiated(&self.aeads)?;
        let cookies = response
            .cookies
            .clone()
            .take(RECOMMENDED_COOKIES)
            .map(|cookie| {
                Cookie::new(cookie).ok_or(ExchangeError::CookieTooLong { len: cookie.len() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let outcome = KeOutcome {
            keys: export_keys(&self.tls, algorithm)?,
            cookies,
            ntp_server: response.ntp_server.map(ToOwned::to_owned),
            ntp_port: response.ntp_port,
        };
        Ok(Progress::Done(outcome))
    }
}

/// What an NTS-KE server advertises besides keys and cookies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeServerSettings {
    /// The NTPv4 server clients should use (RFC 8915 section 4.1.7), if
    /// not this server's address: an ASCII host name or IP address.
    pub ntp_server: Option<String>,
    /// The NTPv4 port clients should use (RFC 8915 section 4.1.8), if not
    /// 123.
    pub ntp_port: Option<u16>,
}

/// Why a server answered Bad Request (RFC 8915 section 4.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestFault {
    /// The request is not a well-formed request (answered Unrecognized
    /// Critical Record for [`KeError::UnrecognizedCritical`]).
    Malformed(KeError),
    /// It did not end within [`MAX_MESSAGE_LEN`] octets.
    TooLong,
    /// The client closed the connection before End of Message.
    Closed,
    /// The caller's timeout expired first ([`KeServer::handle_timeout`]).
    TimedOut,
}

/// What a server answered, for the caller's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerOutcome {
    /// The answer: the algorithm, a decline, or an error code.
    pub negotiation: Negotiation,
    /// How many cookies the response carries.
    pub cookies: usize,
    /// Why the request was refused, when it was.
    pub fault: Option<RequestFault>,
}

/// The server side of NTS-KE (RFC 8915 section 4): a TLS 1.3 server that
/// reads one request, answers it and closes.
///
/// One `KeServer` per accepted connection. The caller loops as for
/// [`KeClient`], passing the cookie issuer to each
/// [`process`](Self::process) (so many connections can share one issuer
/// under the caller's lock), and calls
/// [`handle_timeout`](Self::handle_timeout) when its deadline for the
/// request passes. On [`Progress::Done`] the response and the
/// `close_notify` are queued: flush them and close the stream.
///
/// Over a blocking std stream, [`run_blocking`](Self::run_blocking) is
/// that loop.
///
/// The answer follows [`ke::negotiate`]: NTPv4 with the first of
/// [`AeadAlgorithm::ALL`] the client offers, the keys exported as the
/// client does, and [`RECOMMENDED_COOKIES`] cookies from the issuer
/// (section 4.1.6: "SHOULD send eight"); if the issuer gives none, Internal
/// Server Error (section 4.1.3).
///
/// ```no_run
/// use std::net::TcpListener;
/// use ntp_nts::tls::{self, KeServer, KeServerSettings, Progress};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let mut issuer: Box<dyn ntp_nts::CookieIssuer> = unimplemented!();
/// let config = tls::server_config_from_pem_files("cert.pem", "key.pem")?;
/// let listener = TcpListener::bind(("0.0.0.0", 4460))?;
/// let (mut stream, _) = listener.accept()?;
/// stream.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
/// let mut server = KeServer::new(config, KeServerSettings::default())?;
/// let outcome = loop {
///     let progress = server.process(&mut *issuer)?;
///     while server.wants_write() {
///         server.write_tls(&mut stream)?;
///     }
///     if let Progress::Done(outcome) = progress {
///         break outcome;
///     }
///     if server.wants_read() && server.read_tls(&mut stream).is_err() {
///         // The read timed out: answer Bad Request.
///         let outcome = server.handle_timeout();
///         while server.wants_write() {
///             server.write_tls(&mut stream)?;
///         }
///         break outcome.expect("not done yet");
///     }
/// };
/// println!("answered {:?}", outcome.negotiation);
/// # Ok(())
/// # }
/// ```
pub struct KeServer {
    tls: ServerConnection,
    settings: KeServerSettings,
    state: State,
    received: Vec<u8>,
}

impl fmt::Debug for KeServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeServer")
            .field("settings", &self.settings)
            .field("state", &self.state)
            .field("received", &self.received.len())
            .finish_non_exhaustive()
    }
}

impl KeServer {
    /// A server for one connection. `config` must offer ALPN `ntske/1`
    /// ([`server_config`] builds one, TLS 1.3 only).
    ///
    /// # Errors
    ///
    /// [`ExchangeError::AlpnNotConfigured`]; [`KeError::BadServerName`] for
    /// a settings server name that is not an ASCII host name or address;
    /// [`ExchangeError::Tls`] if rustls refuses the config.
    pub fn new(
        config: Arc<ServerConfig>,
        settings: KeServerSettings,
    ) -> Result<Self, ExchangeError> {
        if !config
            .alpn_protocols
            .iter()
            .any(|protocol| protocol == ALPN_NTSKE)
        {
            return Err(ExchangeError::AlpnNotConfigured);
        }
        if let Some(name) = &settings.ntp_server {
            ke::RecordWriter::new(&mut [0; 4 + ke::MAX_SERVER_NAME_LEN]).ntp_server(name, true)?;
        }
        Ok(Self {
            tls: ServerConnection::new(config)?,
            settings,
            state: State::Handshaking,
            received: Vec::new(),
        })
    }

    /// Reads TLS records from the client's stream (one read call).
    ///
    /// # Errors
    ///
    /// As rustls' `read_tls`: the stream's errors, or too much unprocessed
    /// data (call [`process`](Self::process) between reads).
    pub fn read_tls(&mut self, stream: &mut dyn Read) -> io::Result<usize> {
        self.tls.read_tls(stream)
    }

    /// Writes pending TLS records to the client's stream (one write call).
    ///
    /// # Errors
    ///
    /// The stream's errors.
    pub fn write_tls(&mut self, stream: &mut dyn Write) -> io::Result<usize> {
        self.tls.write_tls(stream)
    }

    /// Whether TLS records are waiting for [`write_tls`](Self::write_tls).
    #[must_use]
    pub fn wants_write(&self) -> bool {
        self.tls.wants_write()
    }

    /// Whether the exchange needs more from the client.
    #[must_use]
    pub fn wants_read(&self) -> bool {
        self.state != State::Ended && self.tls.wants_read()
    }

    /// Processes what was read: completes the handshake, checks ALPN and
    /// TLS 1.3, and once the request has ended (or cannot: too long, or
    /// closed), answers it and queues `close_notify`. Cookies come from
    /// `issuer`. Returns [`Progress::Done`] once.
    ///
    /// # Errors
    ///
    /// [`ExchangeError::Tls`] (handshake, alerts),
    /// [`ExchangeError::NoAlpn`] (a client without ALPN `ntske/1` is
    /// closed without an answer), [`ExchangeError::NotTls13`],
    /// [`ExchangeError::Io`]; [`ExchangeError::Finished`] if called after
    /// the end. A bad request is not an error: it is answered.
    pub fn process(
        &mut self,
        issuer: &mut dyn CookieIssuer,
    ) -> Result<Progress<ServerOutcome>, ExchangeError> {
        if self.state == State::Ended {
            return Err(ExchangeError::Finished);
        }
        let progress = self.step(issuer);
        if !matches!(progress, Ok(Progress::Pending)) {
            self.state = State::Ended;
            self.tls.send_close_notify();
        }
        progress
    }

    /// The caller's deadline for the request passed (RFC 8915 section
    /// 4.1.3: Bad Request "upon the expiration of an implementation-defined
    /// timeout"): answers Bad Request if the handshake is complete, and
    /// queues `close_notify`. Returns the outcome, or `None` if the
    /// exchange had already ended (then this is a no-op).
    pub fn handle_timeout(&mut self) -> Option<ServerOutcome> {
        if self.state == State::Ended {
            return None;
        }
        let negotiation = Negotiation::Refuse(ErrorCode::BadRequest);
        if !self.tls.is_handshaking() {
            // Best effort: the connection is being abandoned either way.
            let _ = self.respond(negotiation, &[]);
        }
        self.state = State::Ended;
        self.tls.send_close_notify();
        Some(ServerOutcome {
            negotiation,
            cookies: 0,
            fault: Some(RequestFault::TimedOut),
        })
    }

    fn step(
        &mut self,
        issuer: &mut dyn CookieIssuer,
    ) -> Result<Progress<ServerOutcome>, ExchangeError> {
        self.tls.process_new_packets()?;
        if self.tls.is_handshaking() {
            return Ok(Progress::Pending);
        }
        if self.state == State::Handshaking {
            check_session(&self.tls)?;
            self.state = State::Exchanging;
        }
        let len = match read_message(&mut self.tls.reader(), &mut self.received) {
            Ok(Some(len)) => len,
            Ok(None) => return Ok(Progress::Pending),
            Err(ExchangeError::MessageTooLong { .. }) => {
                return self.refuse(RequestFault::TooLong);
            }
            Err(ExchangeError::Closed) => return self.refuse(RequestFault::Closed),
            Err(error) => return Err(error),
        };
        let message = self.received.get(..len).unwrap_or(&[]);
        let (mut negotiation, fault) = match ClientRequest::parse(message) {
            Ok(request) => (request.negotiate(), None),
            Err(error) => (
                Negotiation::Refuse(ErrorCode::for_request_error(&error)),
                Some(RequestFault::Malformed(error)),
            ),
        };
        let mut cookies = Vec::new();
        if let Negotiation::Accept(algorithm) = negotiation {
            // A failed export is the server's fault, not the client's.
            if let Ok(keys) = export_keys(&self.tls, algorithm) {
                cookies.extend((0..RECOMMENDED_COOKIES).map_while(|_| issuer.issue(&keys)));
            }
            if cookies.is_empty() {
                negotiation = Negotiation::Refuse(ErrorCode::InternalServerError);
            }
        }
        self.respond(negotiation, &cookies)?;
        Ok(Progress::Done(ServerOutcome {
            negotiation,
            cookies: if matches!(negotiation, Negotiation::Accept(_)) {
                cookies.len()
            } else {
                0
            },
            fault,
        }))
    }

    fn refuse(&mut self, fault: RequestFault) -> Result<Progress<ServerOutcome>, ExchangeError> {
        let negotiation = Negotiation::Refuse(ErrorCode::BadRequest);
        self.respond(negotiation, &[])?;
        Ok(Progress::Done(ServerOutcome {
            negotiation,
            cookies: 0,
            fault: Some(fault),
        }))
    }

    fn respond(
        &mut self,
        negotiation: Negotiation,
        cookies: &[Cookie],
    ) -> Result<(), ExchangeError> {
        let ntp_server = self.settings.ntp_server.as_deref();
        let ntp_port = self.settings.ntp_port;
        let mut response =
            vec![0; ke::server_response_len(negotiation, cookies, ntp_server, ntp_port)];
        let len =
            ke::encode_server_response(negotiation, cookies, ntp_server, ntp_port, &mut response)?;
        self.tls
            .writer()
            .write_all(response.get(..len).unwrap_or(&[]))?;
        Ok(())
    }
}

/// Why a TLS config could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A PEM file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The PEM data is malformed, or holds no private key.
    #[error("PEM: {0}")]
    Pem(#[from] pem::Error),
    /// The PEM data holds no certificate.
    #[error("no certificate in the PEM data")]
    NoCertificates,
    /// rustls refused a certificate, the key or the protocol versions.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

fn read_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })
}

fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certificates = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>()?;
    if certificates.is_empty() {
        return Err(ConfigError::NoCertificates);
    }
    Ok(certificates)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client config for NTS-KE: the ring provider, TLS 1.3 only (RFC 8915
/// section 3), server certificates verified against `roots` (RFC 5280 and
/// RFC 6125, as section 3 asks), no client certificate, ALPN `ntske/1`.
///
/// # Errors
///
/// [`ConfigError::Tls`] if the provider cannot do TLS 1.3.
pub fn client_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, ConfigError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_NTSKE.to_vec()];
    Ok(Arc::new(config))
}

/// The trust anchors in PEM `CERTIFICATE` sections.
///
/// # Errors
///
/// [`ConfigError::Pem`], [`ConfigError::NoCertificates`],
/// [`ConfigError::Tls`] for a certificate that is not a valid anchor.
pub fn root_store_from_pem(pem: &[u8]) -> Result<RootCertStore, ConfigError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(pem)? {
        roots.add(certificate)?;
    }
    Ok(roots)
}

/// The trust anchors in a PEM file (a CA bundle).
///
/// # Errors
///
/// [`ConfigError::Io`], and as [`root_store_from_pem`].
pub fn root_store_from_pem_file(path: impl AsRef<Path>) -> Result<RootCertStore, ConfigError> {
    root_store_from_pem(&read_file(path.as_ref())?)
}

/// [`client_config`] trusting the certificates of a PEM file.
///
/// # Errors
///
/// As [`root_store_from_pem_file`] and [`client_config`].
pub fn client_config_from_pem_file(
    ca_path: impl AsRef<Path>,
) -> Result<Arc<ClientConfig>, ConfigError> {
    client_config(root_store_from_pem_file(ca_path)?)
}

/// A server config for NTS-KE: the ring provider, TLS 1.3 only (RFC 8915
/// section 3), the certificate chain `certificates` (leaf first) with its
/// private `key`, no client authentication, ALPN `ntske/1`.
///
/// # Errors
///
/// [`ConfigError::Tls`] if the key does not suit the provider or the
/// certificate.
pub fn server_config(
    certificates: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, ConfigError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(certificates, key)?;
    config.alpn_protocols = vec![ALPN_NTSKE.to_vec()];
    Ok(Arc::new(config))
}

/// [`server_config`] from PEM: the certificate chain (leaf first) and the
/// private key (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
///
/// [`ConfigError::Pem`] (also for no key), [`ConfigError::NoCertificates`],
/// and as [`server_config`].
pub fn server_config_from_pem(
    certificate_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<ServerConfig>, ConfigError> {
    server_config(
        certificates(certificate_pem)?,
        PrivateKeyDer::from_pem_slice(key_pem)?,
    )
}

/// [`server_config`] from PEM files: the certificate chain (leaf first)
/// and the private key.
///
/// # Errors
///
/// [`ConfigError::Io`], and as [`server_config_from_pem`].
pub fn server_config_from_pem_files(
    certificate_path: impl AsRef<Path>,
    key_path: impl AsRef<Path>,
) -> Result<Arc<ServerConfig>, ConfigError> {
    let certificate_pem = read_file(certificate_path.as_ref())?;
    let mut key_pem = read_file(key_path.as_ref())?;
    let config = server_config_from_pem(&certificate_pem, &key_pem);
    key_pem.zeroize();
    config
}
