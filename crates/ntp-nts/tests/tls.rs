//! The NTS-KE client and server state machines (RFC 8915 sections 3, 4 and
//! 5.1) against each other, and against plain rustls peers that break the
//! rules, over in-memory pipes (no sockets), plus runs over TCP on
//! 127.0.0.1 (a hand-written server loop, and `KeServer::run_blocking`). Certificates are made at test time with rcgen: a CA and a
//! leaf for "localhost" and 127.0.0.1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "tests"
)]

use core::cell::{Cell, RefCell};
use core::time::Duration;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use ntp_nts::ke::{self, ErrorCode, KeError, Negotiation, RecordWriter};
use ntp_nts::tls::{
    self, ConfigError, ExchangeError, KeClient, KeOutcome, KeServer, KeServerSettings, Progress,
    RequestFault, ServerOutcome,
};
use ntp_nts::{AeadAlgorithm, Cookie, CookieIssuer, SessionKeys};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

// ------------------------------------------------------------ certificates

struct Pki {
    ca_pem: String,
    other_ca_pem: String,
    chain_pem: String,
    key_pem: String,
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    (params.self_signed(&key).unwrap(), key)
}

static PKI: LazyLock<Pki> = LazyLock::new(|| {
    let (ca_cert, ca_key) = ca("NTS test CA");
    let (other_ca, _) = ca("another CA");
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        other_ca_pem: other_ca.pem(),
        chain_pem: leaf.pem() + &ca_cert.pem(),
        key_pem: key.serialize_pem(),
    }
});

fn client_config() -> Arc<ClientConfig> {
    tls::client_config(tls::root_store_from_pem(PKI.ca_pem.as_bytes()).unwrap()).unwrap()
}

fn server_config() -> Arc<ServerConfig> {
    tls::server_config_from_pem(PKI.chain_pem.as_bytes(), PKI.key_pem.as_bytes()).unwrap()
}

/// The same configs without ALPN: what a peer that ignores section 3 has.
fn without_alpn<T: Clone>(config: &Arc<T>, alpn: impl FnOnce(&mut T)) -> Arc<T> {
    let mut config = T::clone(config);
    alpn(&mut config);
    Arc::new(config)
}

// ------------------------------------------------------------------ issuer

/// Issues distinct cookies (cookie n is n + 40 octets of n) and remembers
/// the keys it was given.
#[derive(Default)]
struct TestIssuer {
    limit: usize,
    issued: Vec<Cookie>,
    keys: Vec<SessionKeys>,
}

impl TestIssuer {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }
}

impl CookieIssuer for TestIssuer {
    fn issue(&mut self, keys: &SessionKeys) -> Option<Cookie> {
        if self.issued.len() >= self.limit {
            return None;
        }
        let n = self.issued.len() as u8;
        let cookie = Cookie::new(&vec![n; 40 + usize::from(n)]).unwrap();
        self.issued.push(cookie.clone());
        self.keys.push(keys.clone());
        Some(cookie)
    }
}

// ------------------------------------------------------------------- pipes

/// One direction of an in-memory TCP connection.
#[derive(Clone, Default)]
struct Pipe {
    bytes: Rc<RefCell<VecDeque<u8>>>,
    closed: Rc<Cell<bool>>,
}

/// One end of an in-memory TCP connection: reads `rx`, writes `tx`.
/// Reading an empty open pipe is `WouldBlock`, a closed one end of file.
struct End {
    rx: Pipe,
    tx: Pipe,
}

impl End {
    fn close(&self) {
        self.tx.closed.set(true);
    }
}

fn pair() -> (End, End) {
    let (a, b) = (Pipe::default(), Pipe::default());
    (
        End {
            rx: a.clone(),
            tx: b.clone(),
        },
        End { rx: b, tx: a },
    )
}

impl Read for End {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut bytes = self.rx.bytes.borrow_mut();
        if bytes.is_empty() {
            return if self.rx.closed.get() {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let len = buf.len().min(bytes.len());
        for (slot, byte) in buf.iter_mut().zip(bytes.drain(..len)) {
            *slot = byte;
        }
        Ok(len)
    }
}

impl Write for End {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx.bytes.borrow_mut().extend(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn ignore_would_block(result: io::Result<usize>) {
    match result {
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
        Err(error) => panic!("{error}"),
    }
}

// ----------------------------------------------------------------- drivers

/// One turn of the client: write, process, read. `Some` once it ended.
fn client_turn(client: &mut KeClient, end: &mut End) -> Option<Result<KeOutcome, ExchangeError>> {
    let result = match client.process() {
        Ok(Progress::Pending) => None,
        Ok(Progress::Done(outcome)) => Some(Ok(outcome)),
        Err(error) => Some(Err(error)),
    };
    while client.wants_write() {
        client.write_tls(end).unwrap();
    }
    if result.is_some() {
        end.close();
        return result;
    }
    if client.wants_read() {
        ignore_would_block(client.read_tls(end));
    }
    None
}

fn server_turn(
    server: &mut KeServer,
    end: &mut End,
    issuer: &mut dyn CookieIssuer,
) -> Option<Result<ServerOutcome, ExchangeError>> {
    let result = match server.process(issuer) {
        Ok(Progress::Pending) => None,
        Ok(Progress::Done(outcome)) => Some(Ok(outcome)),
        Err(error) => Some(Err(error)),
    };
    while server.wants_write() {
        server.write_tls(end).unwrap();
    }
    if result.is_some() {
        end.close();
        return result;
    }
    if server.wants_read() {
        ignore_would_block(server.read_tls(end));
    }
    None
}

/// What a [`RawPeer`] received before the other side closed, or its TLS
/// error; `None` while it goes on.
type PeerResult = Option<Result<Vec<u8>, rustls::Error>>;

/// A message as `(critical, type, body)` records.
type RecordList<'a> = &'a [(bool, u16, &'a [u8])];

/// A plain rustls peer following a script: after the handshake it sends
/// `send` (a server first waits for a whole NTS-KE message), then
/// collects what arrives until the other side closes.
struct RawPeer {
    tls: Connection,
    send: Vec<u8>,
    wait_for_message: bool,
    sent: bool,
    received: Vec<u8>,
}

impl RawPeer {
    fn client(config: Arc<ClientConfig>, send: Vec<u8>) -> Self {
        let tls = ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
        Self {
            tls: tls.into(),
            send,
            wait_for_message: false,
            sent: false,
            received: Vec::new(),
        }
    }

    fn server(config: Arc<ServerConfig>, send: Vec<u8>) -> Self {
        Self {
            tls: ServerConnection::new(config).unwrap().into(),
            send,
            wait_for_message: true,
            sent: false,
            received: Vec::new(),
        }
    }

    /// `Some` once the other side closed (with what arrived) or TLS failed.
    fn turn(&mut self, end: &mut End) -> PeerResult {
        while self.tls.wants_write() {
            self.tls.write_tls(end).unwrap();
        }
        match self.tls.read_tls(end) {
            Ok(0) => return Some(Ok(core::mem::take(&mut self.received))),
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => panic!("{error}"),
        }
        if let Err(error) = self.tls.process_new_packets() {
            while self.tls.wants_write() {
                self.tls.write_tls(end).unwrap();
            }
            return Some(Err(error));
        }
        let mut chunk = [0; 4096];
        loop {
            match self.tls.reader().read(&mut chunk) {
                Ok(0) => return Some(Ok(core::mem::take(&mut self.received))),
                Ok(len) => self.received.extend_from_slice(&chunk[..len]),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) => panic!("{error}"),
            }
        }
        let ready = !self.wait_for_message || ke::find_end_of_message(&self.received).is_some();
        if !self.tls.is_handshaking() && !self.sent && ready {
            self.tls.writer().write_all(&self.send).unwrap();
            self.sent = true;
            if self.wait_for_message {
                // A server closes after its response (section 4).
                self.tls.send_close_notify();
            }
            while self.tls.wants_write() {
                self.tls.write_tls(end).unwrap();
            }
            if self.wait_for_message {
                end.close();
            }
        }
        None
    }
}

const ROUNDS: usize = 50;

type Results = (
    Option<Result<KeOutcome, ExchangeError>>,
    Option<Result<ServerOutcome, ExchangeError>>,
);

fn run(client: &mut KeClient, server: &mut KeServer, issuer: &mut dyn CookieIssuer) -> Results {
    let (mut client_end, mut server_end) = pair();
    let (mut client_result, mut server_result) = (None, None);
    for _ in 0..ROUNDS {
        if client_result.is_none() {
            client_result = client_turn(client, &mut client_end);
        }
        if server_result.is_none() {
            server_result = server_turn(server, &mut server_end, issuer);
        }
        if client_result.is_some() && server_result.is_some() {
            break;
        }
    }
    (client_result, server_result)
}

fn run_client_against(
    client: &mut KeClient,
    peer: &mut RawPeer,
) -> Result<KeOutcome, ExchangeError> {
    let (mut client_end, mut peer_end) = pair();
    for _ in 0..ROUNDS {
        if let Some(result) = client_turn(client, &mut client_end) {
            return result;
        }
        let _ = peer.turn(&mut peer_end);
    }
    panic!("the client never ended");
}

fn run_server_against(
    server: &mut KeServer,
    peer: &mut RawPeer,
    issuer: &mut dyn CookieIssuer,
) -> (Result<ServerOutcome, ExchangeError>, PeerResult) {
    let (mut server_end, mut peer_end) = pair();
    let mut server_result = None;
    for _ in 0..ROUNDS {
        if let Some(result) = peer.turn(&mut peer_end) {
            return (server_result.expect("the peer ended first"), Some(result));
        }
        if server_result.is_none() {
            server_result = server_turn(server, &mut server_end, issuer);
        }
    }
    (server_result.expect("the server never ended"), None)
}

fn new_client(aeads: &[AeadAlgorithm]) -> KeClient {
    KeClient::new("localhost", client_config(), aeads).unwrap()
}

fn new_server(settings: KeServerSettings) -> KeServer {
    KeServer::new(server_config(), settings).unwrap()
}

fn request() -> Vec<u8> {
    let mut out = [0; 64];
    let len = ke::encode_client_request(&[AeadAlgorithm::AesSivCmac256], &mut out).unwrap();
    out[..len].to_vec()
}

// ------------------------------------------------------------------- tests

#[test]
fn both_sides_export_the_same_keys_and_the_client_gets_the_issued_cookies() {
    let mut client = new_client(&[AeadAlgorithm::AesSivCmac256, AeadAlgorithm::Aes128GcmSiv]);
    let settings = KeServerSettings {
        ntp_server: Some("ntp.example.com".to_owned()),
        ntp_port: Some(11123),
    };
    let mut server = new_server(settings);
    let mut issuer = TestIssuer::new(100);
    let (client_result, server_result) = run(&mut client, &mut server, &mut issuer);
    let outcome = client_result.unwrap().unwrap();
    let served = server_result.unwrap().unwrap();

    assert_eq!(
        served,
        ServerOutcome {
            negotiation: Negotiation::Accept(AeadAlgorithm::AesSivCmac256),
            cookies: 8,
            fault: None,
        }
    );
    assert_eq!(outcome.keys.algorithm, AeadAlgorithm::AesSivCmac256);
    assert_eq!(outcome.keys.c2s.as_bytes().len(), 32);
    assert_eq!(outcome.keys.s2c.as_bytes().len(), 32);
    assert_ne!(outcome.keys.c2s, outcome.keys.s2c);
    // The server exported the same keys and sealed them into each cookie.
    assert_eq!(issuer.keys.len(), 8);
    for keys in &issuer.keys {
        assert_eq!(*keys, outcome.keys);
    }
    assert_eq!(outcome.cookies, issuer.issued);
    assert_eq!(outcome.ntp_server.as_deref(), Some("ntp.example.com"));
    assert_eq!(outcome.ntp_port, Some(11123));
    assert_eq!(outcome.port(), 11123);

    // Each side's exchange is over.
    assert!(matches!(client.process(), Err(ExchangeError::Finished)));
    assert!(matches!(
        server.process(&mut issuer),
        Err(ExchangeError::Finished)
    ));
    assert!(!client.wants_read());
    assert!(!server.wants_read());
    assert_eq!(server.handle_timeout(), None);
}

#[test]
fn every_algorithm_exports_keys_of_its_length_and_sessions_differ() {
    let mut previous: Option<SessionKeys> = None;
    for algorithm in AeadAlgorithm::ALL {
        let mut client = new_client(&[algorithm]);
        let mut server = new_server(KeServerSettings::default());
        let mut issuer = TestIssuer::new(8);
        let (client_result, _) = run(&mut client, &mut server, &mut issuer);
        let outcome = client_result.unwrap().unwrap();
        assert_eq!(outcome.keys.algorithm, algorithm);
        assert_eq!(outcome.keys.c2s.as_bytes().len(), algorithm.key_len());
        assert_eq!(outcome.keys.s2c.as_bytes().len(), algorithm.key_len());
        assert_eq!(issuer.keys[0], outcome.keys);
        assert_eq!(outcome.ntp_server, None);
        assert_eq!(outcome.ntp_port, None);
        assert_eq!(outcome.port(), 123);
        if let Some(previous) = previous {
            assert_ne!(
                previous.c2s.as_bytes()[..16],
                outcome.keys.c2s.as_bytes()[..16]
            );
        }
        previous = Some(outcome.keys);
    }
}

#[test]
fn fewer_cookies_are_passed_on_and_none_is_an_internal_server_error() {
    let mut client = new_client(&[AeadAlgorithm::AesSivCmac256]);
    let mut server = new_server(KeServerSettings::default());
    let mut issuer = TestIssuer::new(3);
    let (client_result, server_result) = run(&mut client, &mut server, &mut issuer);
    assert_eq!(client_result.unwrap().unwrap().cookies, issuer.issued);
    assert_eq!(server_result.unwrap().unwrap().cookies, 3);

    let mut client = new_client(&[AeadAlgorithm::AesSivCmac256]);
    let mut server = new_server(KeServerSettings::default());
    let (client_result, server_result) = run(&mut client, &mut server, &mut TestIssuer::new(0));
    assert!(matches!(
        client_result.unwrap(),
        Err(ExchangeError::Ke(KeError::ServerError(
            ErrorCode::InternalServerError
        )))
    ));
    assert_eq!(
        server_result.unwrap().unwrap(),
        ServerOutcome {
            negotiation: Negotiation::Refuse(ErrorCode::InternalServerError),
            cookies: 0,
            fault: None,
        }
    );
}

#[test]
fn a_server_refuses_a_client_without_alpn() {
    let config = without_alpn(&client_config(), |c| c.alpn_protocols.clear());
    let mut peer = RawPeer::client(config, request());
    let mut server = new_server(KeServerSettings::default());
    let mut issuer = TestIssuer::new(8);
    let (result, peer_result) = run_server_against(&mut server, &mut peer, &mut issuer);
    assert!(matches!(result, Err(ExchangeError::NoAlpn)), "{result:?}");
    // No answer, no cookie: the client only sees the connection close.
    assert_eq!(peer_result.unwrap().unwrap(), b"");
    assert!(issuer.issued.is_empty());
}

#[test]
fn a_server_refuses_a_client_offering_only_another_protocol() {
    let config = without_alpn(&client_config(), |c| {
        c.alpn_protocols = vec![b"http/1.1".to_vec()];
    });
    let mut peer = RawPeer::client(config, request());
    let mut server = new_server(KeServerSettings::default());
    let (result, peer_result) = run_server_against(&mut server, &mut peer, &mut TestIssuer::new(8));
    // rustls itself refuses it during the handshake.
    assert!(
        matches!(
            result,
            Err(ExchangeError::Tls(rustls::Error::NoApplicationProtocol))
        ),
        "{result:?}"
    );
    assert!(peer_result.unwrap().is_err());
}

#[test]
fn a_client_refuses_a_server_that_does_not_select_alpn() {
    let config = without_alpn(&server_config(), |c| c.alpn_protocols.clear());
    let mut response = vec![0; 512];
    let cookies = [Cookie::new(&[1; 40]).unwrap()];
    let negotiation = Negotiation::Accept(AeadAlgorithm::AesSivCmac256);
    let len = ke::encode_server_response(negotiation, &cookies, None, None, &mut response).unwrap();
    response.truncate(len);
    let mut peer = RawPeer::server(config.clone(), response);
    let mut client = new_client(&[AeadAlgorithm::AesSivCmac256]);
    let result = run_client_against(&mut client, &mut peer);
    assert!(matches!(result, Err(ExchangeError::NoAlpn)), "{result:?}");
    // Nor can such a config make a KeServer.
    assert!(matches!(
        KeServer::new(config, KeServerSettings::default()),
        Err(ExchangeError::AlpnNotConfigured)
    ));
}

#[test]
fn a_wrong_server_name_or_an_unknown_ca_fails_certificate_verification() {
    let mut client = KeClient::new(
        "nts.example.org",
        client_config(),
        &[AeadAlgorithm::AesSivCmac256],
    )
    .unwrap();
    let mut server = new_server(KeServerSettings::default());
    let mut issuer = TestIssuer::new(8);
    let (client_result, server_result) = run(&mut client, &mut server, &mut issuer);
    let error = client_result.unwrap().unwrap_err();
    assert!(
        matches!(
            error,
            ExchangeError::Tls(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. }
            ))
        ),
        "{error:?}"
    );
    // The server learns it from the client's alert, and issued nothing.
    assert!(matches!(
        server_result.unwrap(),
        Err(ExchangeError::Tls(rustls::Error::AlertReceived(_)))
    ));
    assert!(issuer.issued.is_empty());

    // The certificate's IP address is a valid name.
    let mut client = KeClient::new(
        "127.0.0.1",
        client_config(),
        &[AeadAlgorithm::AesSivCmac256],
    )
    .unwrap();
    let mut server = new_server(KeServerSettings::default());
    let (client_result, _) = run(&mut client, &mut server, &mut TestIssuer::new(8));
    assert!(client_result.unwrap().is_ok());

    let other =
        tls::client_config(tls::root_store_from_pem(PKI.other_ca_pem.as_bytes()).unwrap()).unwrap();
    let mut client = KeClient::new("localhost", other, &[AeadAlgorithm::AesSivCmac256]).unwrap();
    let mut server = new_server(KeServerSettings::default());
    let (client_result, _) = run(&mut client, &mut server, &mut TestIssuer::new(8));
    assert!(matches!(
        client_result.unwrap(),
        Err(ExchangeError::Tls(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        )))
    ));
}

/// A response the client must refuse, from a server that otherwise follows
/// the protocol.
fn client_against_response(records: RecordList<'_>) -> Result<KeOutcome, ExchangeError> {
    let mut response = vec![0; 1024];
    let mut writer = RecordWriter::new(&mut response);
    for &(critical, record_type, body) in records {
        writer.record(critical, record_type.into(), body).unwrap();
    }
    let len = writer.finish();
    response.truncate(len);
    let mut peer = RawPeer::server(server_config(), response);
    let mut client = new_client(&[AeadAlgorithm::AesSivCmac256]);
    run_client_against(&mut client, &mut peer)
}

#[test]
fn a_client_refuses_unknown_critical_records_errors_and_bad_choices() {
    const NTPV4: (bool, u16, &[u8]) = (true, 1, &[0, 0]);
    const SIV256: (bool, u16, &[u8]) = (true, 4, &[0, 15]);
    const COOKIE: (bool, u16, &[u8]) = (false, 5, &[9; 64]);
    const EOM: (bool, u16, &[u8]) = (true, 0, &[]);

    let result = client_against_response(&[NTPV4, SIV256, (true, 0x4321, &[1, 2]), COOKIE, EOM]);
    assert!(
        matches!(
            result,
            Err(ExchangeError::Ke(KeError::UnrecognizedCritical {
                raw_type: 0x4321,
                ..
            }))
        ),
        "{result:?}"
    );
    // The same record without the critical bit is ignored.
    let outcome =
        client_against_response(&[NTPV4, SIV256, (false, 0x4321, &[1, 2]), COOKIE, EOM]).unwrap();
    assert_eq!(outcome.cookies.len(), 1);
    assert_eq!(outcome.cookies[0].as_bytes(), [9; 64]);

    let cases: [(RecordList<'_>, KeError); 6] = [
        (
            &[(true, 2, &[0, 1]), EOM],
            KeError::ServerError(ErrorCode::BadRequest),
        ),
        (
            &[NTPV4, SIV256, (true, 3, &[0, 9]), COOKIE, EOM],
            KeError::ServerWarning(ke::WarningCode(9)),
        ),
        (&[(true, 1, &[]), EOM], KeError::NoCommonProtocol),
        (&[NTPV4, (true, 4, &[]), EOM], KeError::NoCommonAead),
        (
            &[NTPV4, (true, 4, &[0, 30]), COOKIE, EOM],
            KeError::AeadNotOffered(30),
        ),
        (&[NTPV4, SIV256, EOM], KeError::NoCookies),
    ];
    for (records, expected) in cases {
        let result = client_against_response(records);
        assert!(
            matches!(&result, Err(ExchangeError::Ke(error)) if *error == expected),
            "{expected:?}: {result:?}"
        );
    }

    // A cookie longer than a client keeps.
    let long = [7; 300];
    let result = client_against_response(&[NTPV4, SIV256, (false, 5, &long), EOM]);
    assert!(matches!(
        result,
        Err(ExchangeError::CookieTooLong { len: 300 })
    ));
    // More than eight cookies: the client keeps eight.
    let outcome = client_against_response(&[
        NTPV4, SIV256, COOKIE, COOKIE, COOKIE, COOKIE, COOKIE, COOKIE, COOKIE, COOKIE, COOKIE,
        COOKIE, EOM,
    ])
    .unwrap();
    assert_eq!(outcome.cookies.len(), 8);
    // A server that closes before End of Message.
    let result = client_against_response(&[NTPV4, SIV256, COOKIE]);
    assert!(matches!(result, Err(ExchangeError::Closed)), "{result:?}");
}

#[test]
fn a_server_answers_bad_requests_with_their_error_codes() {
    let unknown_critical = {
        let mut out = [0; 64];
        let mut writer = RecordWriter::new(&mut out);
        writer.next_protocols([0]).unwrap();
        writer.aead_algorithms([15]).unwrap();
        writer.record(true, 0x1234.into(), &[]).unwrap();
        writer.end_of_message().unwrap();
        let len = writer.finish();
        out[..len].to_vec()
    };
    let without_protocol = [0x80, 0x04, 0x00, 0x02, 0x00, 0x0f, 0x80, 0x00, 0x00, 0x00].to_vec();
    let no_ntpv4 = [0x80, 0x01, 0x00, 0x02, 0x80, 0x00, 0x80, 0x00, 0x00, 0x00].to_vec();
    let cases = [
        (
            unknown_critical,
            Negotiation::Refuse(ErrorCode::UnrecognizedCriticalRecord),
            Err(KeError::ServerError(ErrorCode::UnrecognizedCriticalRecord)),
        ),
        (
            without_protocol,
            Negotiation::Refuse(ErrorCode::BadRequest),
            Err(KeError::ServerError(ErrorCode::BadRequest)),
        ),
        (
            no_ntpv4,
            Negotiation::NoCommonProtocol,
            Ok(&[0x80, 0x01, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00][..]),
        ),
    ];
    for (request, negotiation, answer) in cases {
        let mut peer = RawPeer::client(client_config(), request.clone());
        let mut server = new_server(KeServerSettings::default());
        let mut issuer = TestIssuer::new(8);
        let (result, peer_result) = run_server_against(&mut server, &mut peer, &mut issuer);
        let outcome = result.unwrap();
        assert_eq!(outcome.negotiation, negotiation);
        assert_eq!(outcome.cookies, 0);
        assert_eq!(
            outcome.fault.is_some(),
            matches!(negotiation, Negotiation::Refuse(_))
        );
        let response = peer_result.unwrap().unwrap();
        match answer {
            Ok(bytes) => assert_eq!(response, bytes),
            Err(error) => assert_eq!(ke::parse_server_response(&response), Err(error)),
        }
        assert!(issuer.issued.is_empty());
    }
}

#[test]
fn a_request_that_never_ends_is_bounded() {
    // 70 000 octets of ignorable records and no End of Message.
    let mut flood = vec![0; 70_000];
    let mut writer = RecordWriter::new(&mut flood);
    while writer.len() + 1004 <= 70_000 {
        writer.record(false, 0x4000.into(), &[0; 1000]).unwrap();
    }
    let len = writer.finish();
    flood.truncate(len);
    let mut peer = RawPeer::client(client_config(), flood);
    peer.tls.set_buffer_limit(None);
    let mut server = new_server(KeServerSettings::default());
    let (result, peer_result) = run_server_against(&mut server, &mut peer, &mut TestIssuer::new(8));
    assert_eq!(
        result.unwrap(),
        ServerOutcome {
            negotiation: Negotiation::Refuse(ErrorCode::BadRequest),
            cookies: 0,
            fault: Some(RequestFault::TooLong),
        }
    );
    assert_eq!(
        ke::parse_server_response(&peer_result.unwrap().unwrap()),
        Err(KeError::ServerError(ErrorCode::BadRequest))
    );
}

#[test]
fn a_silent_or_closing_client_gets_bad_request() {
    // The client completes the handshake and sends half a request.
    let half = request()[..7].to_vec();
    let mut peer = RawPeer::client(client_config(), half.clone());
    let mut server = new_server(KeServerSettings::default());
    let (mut server_end, mut peer_end) = pair();
    let mut issuer = TestIssuer::new(8);
    for _ in 0..10 {
        assert!(peer.turn(&mut peer_end).is_none());
        assert!(server_turn(&mut server, &mut server_end, &mut issuer).is_none());
    }
    assert!(server.wants_read());
    let outcome = server.handle_timeout().unwrap();
    assert_eq!(outcome.fault, Some(RequestFault::TimedOut));
    assert_eq!(
        outcome.negotiation,
        Negotiation::Refuse(ErrorCode::BadRequest)
    );
    assert_eq!(server.handle_timeout(), None);
    while server.wants_write() {
        server.write_tls(&mut server_end).unwrap();
    }
    let response = peer.turn(&mut peer_end).unwrap().unwrap();
    assert_eq!(
        ke::parse_server_response(&response),
        Err(KeError::ServerError(ErrorCode::BadRequest))
    );

    // The client sends half a request and close_notify.
    let mut peer = RawPeer::client(client_config(), half);
    let mut server = new_server(KeServerSettings::default());
    let (mut server_end, mut peer_end) = pair();
    let mut server_result = None;
    for _ in 0..ROUNDS {
        assert!(peer.turn(&mut peer_end).is_none());
        if peer.sent {
            peer.tls.send_close_notify();
        }
        server_result = server_turn(&mut server, &mut server_end, &mut issuer);
        if server_result.is_some() {
            break;
        }
    }
    let outcome = server_result.unwrap().unwrap();
    assert_eq!(outcome.fault, Some(RequestFault::Closed));
    assert!(issuer.issued.is_empty());
}

#[test]
fn constructors_check_their_arguments() {
    assert!(matches!(
        KeClient::new("localhost", client_config(), &[]),
        Err(ExchangeError::Ke(KeError::EmptyAead))
    ));
    assert!(matches!(
        KeClient::new("not a name", client_config(), &[AeadAlgorithm::AesSivCmac256]),
        Err(ExchangeError::InvalidServerName(name)) if name == "not a name"
    ));
    let settings = KeServerSettings {
        ntp_server: Some("fe80::1%eth0".to_owned()),
        ntp_port: None,
    };
    assert!(matches!(
        KeServer::new(server_config(), settings),
        Err(ExchangeError::Ke(KeError::BadServerName))
    ));
}

#[test]
fn configs_come_from_pem_files() {
    let dir = std::env::temp_dir().join(format!("ntp-nts-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca = write("ca.pem", &PKI.ca_pem);
    let chain = write("chain.pem", &PKI.chain_pem);
    let key = write("key.pem", &PKI.key_pem);
    let empty = write("empty.pem", "");

    let client_config = tls::client_config_from_pem_file(&ca).unwrap();
    assert_eq!(client_config.alpn_protocols, [b"ntske/1".to_vec()]);
    assert_eq!(tls::root_store_from_pem_file(&ca).unwrap().len(), 1);
    let server_config = tls::server_config_from_pem_files(&chain, &key).unwrap();
    assert_eq!(server_config.alpn_protocols, [b"ntske/1".to_vec()]);

    let mut client =
        KeClient::new("localhost", client_config, &[AeadAlgorithm::Aes128GcmSiv]).unwrap();
    let mut server = KeServer::new(server_config, KeServerSettings::default()).unwrap();
    let (client_result, _) = run(&mut client, &mut server, &mut TestIssuer::new(8));
    assert_eq!(
        client_result.unwrap().unwrap().keys.algorithm,
        AeadAlgorithm::Aes128GcmSiv
    );

    assert!(matches!(
        tls::root_store_from_pem_file(dir.join("missing.pem")),
        Err(ConfigError::Io { .. })
    ));
    assert!(matches!(
        tls::root_store_from_pem_file(&empty),
        Err(ConfigError::NoCertificates)
    ));
    assert!(matches!(
        tls::server_config_from_pem_files(&chain, &empty),
        Err(ConfigError::Pem(
            rustls::pki_types::pem::Error::NoItemsFound
        ))
    ));
    assert!(matches!(
        tls::server_config_from_pem_files(&empty, &key),
        Err(ConfigError::NoCertificates)
    ));
    // A key that does not match the certificate.
    let other_key = write(
        "other-key.pem",
        &KeyPair::generate().unwrap().serialize_pem(),
    );
    assert!(matches!(
        tls::server_config_from_pem_files(&chain, &other_key),
        Err(ConfigError::Tls(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

// --------------------------------------------------------------------- TCP

const TIMEOUT: Duration = Duration::from_secs(5);

fn serve_one(listener: &TcpListener) -> (ServerOutcome, Vec<SessionKeys>, Vec<Cookie>) {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no connection");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(error) => panic!("{error}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    let settings = KeServerSettings {
        ntp_server: None,
        ntp_port: Some(4123),
    };
    let mut server = KeServer::new(server_config(), settings).unwrap();
    let mut issuer = TestIssuer::new(8);
    let outcome = loop {
        let progress = server.process(&mut issuer).unwrap();
        while server.wants_write() {
            server.write_tls(&mut stream).unwrap();
        }
        if let Progress::Done(outcome) = progress {
            break outcome;
        }
        if server.wants_read() && server.read_tls(&mut stream).is_err() {
            break server.handle_timeout().unwrap();
        }
    };
    (outcome, issuer.keys, issuer.issued)
}

#[test]
fn one_exchange_over_tcp_on_loopback() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || serve_one(&listener));

    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    let mut client = KeClient::new(
        "localhost",
        client_config(),
        &[AeadAlgorithm::AesSivCmac512, AeadAlgorithm::AesSivCmac256],
    )
    .unwrap();
    let outcome = loop {
        let progress = client.process().unwrap();
        // Best effort once done: the server may have closed already.
        while client.wants_write() && client.write_tls(&mut stream).is_ok() {}
        if let Progress::Done(outcome) = progress {
            break outcome;
        }
        if client.wants_read() {
            client.read_tls(&mut stream).unwrap();
        }
    };
    let (served, server_keys, issued) = server.join().unwrap();

    assert_eq!(
        served.negotiation,
        Negotiation::Accept(AeadAlgorithm::AesSivCmac256)
    );
    assert_eq!(served.cookies, 8);
    assert_eq!(outcome.keys.algorithm, AeadAlgorithm::AesSivCmac256);
    assert_eq!(server_keys[0], outcome.keys);
    assert_eq!(outcome.cookies, issued);
    assert_eq!(outcome.port(), 4123);
}

/// Our client's side of one exchange over `stream`, with its own
/// blocking loop.
fn client_over_tcp(stream: &mut TcpStream) -> Result<KeOutcome, ExchangeError> {
    let mut client = KeClient::new(
        "localhost",
        client_config(),
        &[AeadAlgorithm::AesSivCmac256],
    )?;
    client.run_blocking(stream, Instant::now() + TIMEOUT)
}

/// Accepts one connection and serves it with `run_blocking`, `io` per read
/// or write and `exchange` in all; returns the result, the issued cookies
/// and how long it took.
fn run_blocking_one(
    listener: TcpListener,
    io: Duration,
    exchange: Duration,
) -> std::thread::JoinHandle<(Result<ServerOutcome, ExchangeError>, Vec<Cookie>, Duration)> {
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let start = Instant::now();
        stream.set_read_timeout(Some(io)).unwrap();
        stream.set_write_timeout(Some(io)).unwrap();
        let settings = KeServerSettings {
            ntp_server: None,
            ntp_port: Some(4123),
        };
        let mut server = KeServer::new(server_config(), settings).unwrap();
        let mut issuer = TestIssuer::new(8);
        let result = server.run_blocking(&mut stream, &mut issuer, start + exchange);
        (result, issuer.issued, start.elapsed())
    })
}

fn connect(address: core::net::SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&address, TIMEOUT).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream
}

#[test]
fn run_blocking_serves_our_client_over_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = run_blocking_one(listener, Duration::from_secs(2), TIMEOUT);

    let outcome = client_over_tcp(&mut connect(address)).unwrap();
    let (served, issued, _) = server.join().unwrap();
    let served = served.unwrap();

    assert_eq!(
        served.negotiation,
        Negotiation::Accept(AeadAlgorithm::AesSivCmac256)
    );
    assert_eq!((served.cookies, served.fault), (8, None));
    assert_eq!(outcome.keys.algorithm, AeadAlgorithm::AesSivCmac256);
    assert_eq!(outcome.cookies, issued);
    assert_eq!(outcome.port(), 4123);
}

#[test]
fn a_client_run_blocking_gives_up_at_its_deadline_or_when_the_server_hangs_up() {
    // A server that accepts and never answers the ClientHello.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut stream = connect(silent.local_addr().unwrap());
    let _accepted = silent.accept().unwrap();
    let mut client = new_client(&[AeadAlgorithm::AesSivCmac256]);
    let start = Instant::now();
    let result = client.run_blocking(&mut stream, start + Duration::from_millis(200));
    assert!(matches!(result, Err(ExchangeError::TimedOut)), "{result:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // A server that hangs up at once.
    let rude = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut stream = connect(rude.local_addr().unwrap());
    drop(rude.accept().unwrap());
    let mut client = new_client(&[AeadAlgorithm::AesSivCmac256]);
    let result = client.run_blocking(&mut stream, Instant::now() + TIMEOUT);
    assert!(
        matches!(result, Err(ExchangeError::Closed | ExchangeError::Io(_))),
        "{result:?}"
    );
}

#[test]
fn run_blocking_answers_a_silent_client_bad_request_within_its_timeouts() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let io = Duration::from_millis(200);
    let server = run_blocking_one(listener, io, Duration::from_secs(1));

    // The handshake completes, then the client never sends its request.
    let mut stream = connect(address);
    let mut tls = ClientConnection::new_with_alpn(
        client_config(),
        "localhost".try_into().unwrap(),
        vec![ke::ALPN_NTSKE.to_vec()],
    )
    .unwrap();
    while tls.is_handshaking() {
        tls.complete_io(&mut stream).unwrap();
    }
    let (served, issued, took) = server.join().unwrap();
    let served = served.unwrap();
    assert_eq!(served.fault, Some(RequestFault::TimedOut));
    assert_eq!(
        served.negotiation,
        Negotiation::Refuse(ErrorCode::BadRequest)
    );
    assert!(issued.is_empty());
    assert!(took < Duration::from_secs(1) + 2 * io, "took {took:?}");
    // The Bad Request answer and the close_notify reached the client.
    // (The server has closed the stream: reading ends.)
    let mut response = Vec::new();
    while tls.read_tls(&mut stream).is_ok_and(|len| len > 0) {
        tls.process_new_packets().unwrap();
        // Appends what is there, then WouldBlock or the end.
        let _ = tls.reader().read_to_end(&mut response);
    }
    assert!(ke::find_end_of_message(&response).is_some(), "{response:?}");
}

#[test]
fn run_blocking_ends_when_the_client_closes_mid_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = run_blocking_one(listener, Duration::from_secs(2), TIMEOUT);

    let mut stream = connect(address);
    stream.write_all(&[0x16, 0x03, 0x01]).unwrap(); // a record cut short
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let (served, _, took) = server.join().unwrap();
    assert!(
        matches!(served, Err(ExchangeError::Closed | ExchangeError::Tls(_))),
        "{served:?}"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
}
