//! The daemon binary on 127.0.0.1: against an `ntp-server` on a thread it
//! synchronizes its model clock, logs JSON lines, writes the drift file
//! and stops by itself; it uses NTS sources and serves NTS (`--serve`
//! with `--nts-ke-listen`) to our ntp-nts client; bad arguments exit 2.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::net::UdpSocket;
use std::process::Command;
use std::sync::Arc;
use std::time::SystemTime;

use ntp_client::ntp_auth::{KeyFileFormat, KeyId, KeyStore};
use ntp_client::ntp_proto::{Date, LeapIndicator, RefId, Stratum, SystemState, Timestamp};
use rand_core::SeedableRng;

const DAEMON: &str = env!("CARGO_BIN_EXE_ntp-daemon");

/// A primary server serving this machine's clock until `stop` is set.
fn server(stop: Arc<AtomicBool>) -> core::net::SocketAddr {
    server_with_keys(stop, None)
}

/// [`server`], answering requests signed with one of `keys` with signed
/// replies.
fn server_with_keys(stop: Arc<AtomicBool>, keys: Option<KeyStore>) -> core::net::SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let address = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let state = SystemState {
            leap: LeapIndicator::NoWarning,
            stratum: Stratum::PRIMARY,
            reference_id: RefId::LOCL,
            ..SystemState::default()
        };
        let config = {
            let mut config = ntp_server::ServerConfig::default();
            config.acl_default = ntp_server::AccessAction::Allow;
            config
        };
        let mut server = ntp_server::Server::new(&config, state).unwrap();
        if let Some(keys) = keys {
            server.set_keys(keys);
        }
        let origin = std::time::Instant::now();
        let (mut buf, mut out) = ([0u8; 1024], [0u8; ntp_server::MAX_RESPONSE_LEN]);
        // Bounded: the test ends in well under two minutes.
        let deadline = origin + Duration::from_secs(120);
        while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
            let Ok((len, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let rx = Timestamp::from(SystemTime::now());
            let now = ntp_server::Instant::from_std(origin, std::time::Instant::now());
            if let ntp_server::Action::Respond(reply) =
                server.handle(&buf[..len], from, rx, now, &mut out)
            {
                let tx = Timestamp::from(SystemTime::now());
                let _ = socket.send_to(server.finish(&reply, &mut out, tx), from);
            }
        }
    });
    address
}

/// One SNTP query of `to`, at most three tries of a second each.
fn query(to: core::net::SocketAddr) -> Option<ntp_client::Measurement> {
    query_with(to, &ntp_client::SntpConfig::default())
}

/// [`query`] under `config` (with its key, if any).
fn query_with(
    to: core::net::SocketAddr,
    config: &ntp_client::SntpConfig,
) -> Option<ntp_client::Measurement> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let wall = || Date::try_from(SystemTime::now()).unwrap();
    let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(5);
    for _ in 0..3 {
        let request = ntp_client::Request::new(&mut rng, wall());
        socket.send_to(&request.encode(config), to).unwrap();
        let mut buf = [0u8; 1024];
        if let Ok((len, _)) = socket.recv_from(&mut buf) {
            if let Ok(measurement) = request.check_response(&buf[..len], wall(), config) {
                return Some(measurement);
            }
        }
    }
    None
}

#[test]
fn model_clock_synchronizes_and_keeps_its_drift_file() {
    let stop = Arc::new(AtomicBool::new(false));
    let address = server(Arc::clone(&stop));
    let dir = std::env::temp_dir().join(format!("ntp-daemon-loopback-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let drift = dir.join("drift");
    // As if from the last run: the discipline starts in FSET and the
    // first update synchronizes (without it, RFC 5905 trains the
    // frequency for 900 s first).
    std::fs::write(&drift, "0.000\n").unwrap();
    // A free port for --serve (released just before the daemon binds it).
    let serve = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let child = Command::new(DAEMON)
        .args(["--server", &address.to_string()])
        .args(["--min-poll", "1", "--max-poll", "2", "--duration", "14"])
        .args(["--model-offset", "20", "--model-drift", "10", "--json"])
        .args(["--serve", &serve.to_string()])
        .arg("--drift-file")
        .arg(&drift)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once synchronized (iburst: about 6 s), the daemon serves as stratum
    // 2 with the server's address as reference id.
    std::thread::sleep(Duration::from_secs(10));
    let served = query(serve);
    let output = child.wait_with_output().unwrap();
    stop.store(true, Ordering::Relaxed);
    let served = served.expect("an answer from --serve");
    assert_eq!(served.stratum, Stratum::new(2));
    assert_eq!(served.reference_id, RefId::from_ip(address.ip()));
    assert_eq!(served.leap, LeapIndicator::NoWarning);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds = |kind: &'static str| lines.iter().filter(move |l| l["type"] == kind);
    assert_eq!(kinds("start").count(), 1);
    assert!(
        kinds("state").any(|l| l["state"] == "synchronized"),
        "{stdout}"
    );
    // The model clock started 20 ms ahead: the first update sees about
    // -20 ms and slews it (below the 128 ms step threshold).
    let first = kinds("update").next().expect("an update");
    let offset = first["offset_s"].as_f64().unwrap();
    assert!((-0.025..-0.015).contains(&offset), "{offset}");
    assert_eq!(kinds("step").count(), 0);
    let stop_line = kinds("stop").next().expect("a stop line");
    assert_eq!(stop_line["reason"], "Duration");
    assert_eq!(stop_line["synchronized"], true);
    let written: f64 = std::fs::read_to_string(&drift)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let final_ppm = stop_line["frequency_ppm"].as_f64().unwrap();
    assert!(
        (written - final_ppm).abs() < 1e-3,
        "{written} vs {final_ppm}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the daemon for 12 s against `server` with `--key 1` of the chrony
/// key file holding `secret`, serving on a free port, in verbose JSON;
/// returns its JSON lines and what a client keyed with `secret` measured
/// from its --serve socket at 10 s.
fn keyed_daemon(
    server: core::net::SocketAddr,
    dir: &std::path::Path,
    secret: &str,
) -> (Vec<serde_json::Value>, Option<ntp_client::Measurement>) {
    let file = dir.join(format!("keys-{secret}"));
    std::fs::write(&file, format!("# test keys\n1 AES128 HEX:{secret}\n")).unwrap();
    let serve = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let child = Command::new(DAEMON)
        .args(["--server", &server.to_string(), "--key", "1"])
        .arg("--keys")
        .arg(&file)
        .args(["--min-poll", "1", "--max-poll", "2", "--duration", "12"])
        .args(["--json", "--verbose", "--serve", &serve.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(10));
    let keys: KeyStore<4> = KeyStore::load(&file, KeyFileFormat::Chrony).unwrap();
    let key = keys.get(KeyId::new(1).unwrap()).unwrap().clone();
    let served = query_with(serve, &ntp_client::SntpConfig::default().with_key(key));
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let lines = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (lines, served)
}

/// Symmetric-key authentication end to end: with the server's key the
/// daemon synchronizes and its --serve answers a keyed client with a MAC
/// that verifies; with the wrong secret under the same key id every reply
/// is refused ("authentication failed") and it never synchronizes.
#[test]
fn a_keyed_server_is_used_only_with_the_right_key() {
    const SECRET: &str = "000102030405060708090a0b0c0d0e0f";
    const WRONG: &str = "000102030405060708090a0b0c0d0eff";
    let stop = Arc::new(AtomicBool::new(false));
    let dir = std::env::temp_dir().join(format!("ntp-daemon-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let server_keys = KeyStore::from_chrony_keys(&format!("1 AES128 HEX:{SECRET}\n")).unwrap();
    let address = server_with_keys(Arc::clone(&stop), Some(server_keys));
    let wrong = std::thread::scope(|scope| {
        let wrong = scope.spawn(|| keyed_daemon(address, &dir, WRONG));
        let (lines, served) = keyed_daemon(address, &dir, SECRET);
        let synchronized = lines
            .iter()
            .any(|l| l["type"] == "state" && l["state"] == "synchronized");
        assert!(synchronized, "{lines:?}");
        let served = served.expect("a signed answer from --serve");
        assert_eq!(served.stratum, Stratum::new(2));
        wrong.join().unwrap()
    });
    stop.store(true, Ordering::Relaxed);
    let (lines, served) = wrong;
    assert!(
        !lines
            .iter()
            .any(|l| l["type"] == "state" && l["state"] == "synchronized"),
        "synchronized with the wrong key: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l["type"] == "refused"
            && l["error"]
                .as_str()
                .is_some_and(|m| m.contains("authentication failed"))),
        "no refusal logged: {lines:?}"
    );
    // Its --serve is unsynchronized: a keyed client gets no usable time.
    assert!(served.is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_arguments_exit_2_and_help_exits_0() {
    for args in [
        &[][..],
        &["--server"],
        &["--server", "127.0.0.1:123", "--clock", "atomic"],
        &["--server", "no-such-host.invalid:123"],
        &["--server", "127.0.0.1:123", "--unknown-flag"],
        &[
            "--server",
            "127.0.0.1:123",
            "--nts-ke-listen",
            "127.0.0.1:4460",
        ],
        &[
            "--server",
            "127.0.0.1:123",
            "--nts-ke-listen",
            "127.0.0.1:4460",
            "--nts-cert",
            "c.pem",
            "--nts-key",
            "k.pem",
        ],
    ] {
        let output = Command::new(DAEMON).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
    let help = Command::new(DAEMON).arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--clock model|kernel"));
    assert!(help.contains("--nts-ke-listen ADDR:PORT"));
}

/// What the in-test NTS server saw.
#[derive(Default)]
struct NtsSeen {
    authentic: core::sync::atomic::AtomicUsize,
    naks: core::sync::atomic::AtomicUsize,
    exchanges: core::sync::atomic::AtomicUsize,
}

/// A small NTS server built from ntp-nts on 127.0.0.1: NTS-KE (TLS 1.3
/// with the certificate `cert_pem`/`key_pem`) on a TCP port, naming its
/// NTP port in a Port Negotiation record, and NTS-protected NTP on UDP
/// answering with this machine's clock as a primary server. Returns the
/// NTS-KE address. Runs until `stop` (at most two minutes).
fn nts_server(
    stop: Arc<AtomicBool>,
    cert_pem: &str,
    key_pem: &str,
    seen: Arc<NtsSeen>,
) -> core::net::SocketAddr {
    use ntp_client::ntp_proto::{Mode, Packet, Repr, ShortTime, Version};
    use ntp_nts::cookie::CookieKeys;
    use ntp_nts::server::{RequestError, verify_request};
    use ntp_nts::tls::{self, KeServer, KeServerSettings, Progress};

    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(13);
    let cookie_keys: Arc<CookieKeys> = Arc::new(CookieKeys::random(&mut rng));
    let config = tls::server_config_from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let ntp_port = udp.local_addr().unwrap().port();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let ke_address = listener.local_addr().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);

    let (ke_stop, ke_keys, ke_seen) = (
        Arc::clone(&stop),
        Arc::clone(&cookie_keys),
        Arc::clone(&seen),
    );
    std::thread::spawn(move || {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(14);
        while !ke_stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let settings = KeServerSettings {
                ntp_server: None,
                ntp_port: Some(ntp_port),
            };
            let mut server = KeServer::new(Arc::clone(&config), settings).unwrap();
            let mut issuer = ke_keys.issuer(&mut rng);
            loop {
                let Ok(progress) = server.process(&mut issuer) else {
                    break;
                };
                while server.wants_write() {
                    if server.write_tls(&mut stream).is_err() {
                        break;
                    }
                }
                if let Progress::Done(_) = progress {
                    ke_seen.exchanges.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                if server.wants_read() && matches!(server.read_tls(&mut stream), Err(_) | Ok(0)) {
                    // A client that gave up (the wrong CA): done.
                    let _ = server.handle_timeout();
                    while server.wants_write() && server.write_tls(&mut stream).is_ok() {}
                    break;
                }
            }
        }
    });

    std::thread::spawn(move || {
        let (mut buf, mut out) = ([0u8; 2048], [0u8; 2048]);
        while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
            let Ok((len, from)) = udp.recv_from(&mut buf) else {
                continue;
            };
            let request = &buf[..len];
            let rx = Timestamp::from(SystemTime::now());
            let Ok(packet) = Packet::new_checked(request) else {
                continue;
            };
            let header = Repr {
                leap: LeapIndicator::NoWarning,
                version: Version::V4,
                mode: Mode::Server,
                stratum: Stratum::PRIMARY,
                poll: packet.poll(),
                precision: -20,
                root_delay: ShortTime::ZERO,
                root_dispersion: ShortTime::ZERO,
                reference_id: RefId::LOCL,
                reference_timestamp: rx,
                origin_timestamp: packet.transmit_timestamp(),
                receive_timestamp: rx,
                transmit_timestamp: Timestamp::from(SystemTime::now()),
            };
            out[..48].copy_from_slice(&header.to_bytes());
            let len = match verify_request(request, &cookie_keys) {
                Ok(nts) => {
                    seen.authentic.fetch_add(1, Ordering::Relaxed);
                    nts.write_response(&*cookie_keys, &mut rng, &mut out)
                        .unwrap()
                }
                Err(RequestError::Nak(nak)) => {
                    seen.naks.fetch_add(1, Ordering::Relaxed);
                    nak.write(&mut out).unwrap()
                }
                Err(_) => continue,
            };
            let _ = udp.send_to(&out[..len], from);
        }
    });
    ke_address
}

/// Runs the daemon for 12 s as NTS client of `ke` trusting `ca_pem`;
/// returns its JSON lines.
fn nts_daemon(
    ke: core::net::SocketAddr,
    dir: &std::path::Path,
    ca_pem: &str,
    tag: &str,
) -> Vec<serde_json::Value> {
    let ca = dir.join(format!("ca-{tag}.pem"));
    std::fs::write(&ca, ca_pem).unwrap();
    let output = Command::new(DAEMON)
        .args(["--nts", &ke.to_string()])
        .arg("--nts-ca")
        .arg(&ca)
        .args(["--min-poll", "1", "--max-poll", "2", "--duration", "12"])
        .args(["--json", "--verbose"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// NTS end to end: trusting the server's certificate the daemon gets
/// eight cookies and the NTP port from NTS-KE and synchronizes on
/// authenticated replies; trusting another certificate NTS-KE fails, is
/// retried, and it never synchronizes nor sends a request.
#[test]
fn an_nts_server_is_used_only_after_a_verified_key_exchange() {
    let stop = Arc::new(AtomicBool::new(false));
    let dir = std::env::temp_dir().join(format!("ntp-daemon-nts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names.clone()).unwrap();
    let other = rcgen::generate_simple_self_signed(names).unwrap();
    let seen = Arc::new(NtsSeen::default());
    let ke = nts_server(
        Arc::clone(&stop),
        &certified.cert.pem(),
        &certified.key_pair.serialize_pem(),
        Arc::clone(&seen),
    );
    let (good, wrong) = std::thread::scope(|scope| {
        let wrong = scope.spawn(|| nts_daemon(ke, &dir, &other.cert.pem(), "wrong"));
        let good = nts_daemon(ke, &dir, &certified.cert.pem(), "good");
        (good, wrong.join().unwrap())
    });
    stop.store(true, Ordering::Relaxed);

    let ke_lines: Vec<_> = good.iter().filter(|l| l["type"] == "nts_ke").collect();
    assert_eq!(ke_lines.len(), 1, "{good:?}");
    let line = ke_lines[0];
    assert_eq!(line["ok"], true);
    assert_eq!(line["cookies"], 8);
    assert_eq!(line["aead"], "AEAD_AES_SIV_CMAC_256");
    assert!(
        line["ntp_server"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert!(
        good.iter()
            .any(|l| l["type"] == "state" && l["state"] == "synchronized"),
        "{good:?}"
    );
    assert!(!good.iter().any(|l| l["type"] == "refused"), "{good:?}");
    assert!(seen.authentic.load(Ordering::Relaxed) >= 4);
    assert_eq!(seen.naks.load(Ordering::Relaxed), 0);

    let failures: Vec<_> = wrong.iter().filter(|l| l["type"] == "nts_ke").collect();
    assert!(failures.len() >= 2, "retried: {wrong:?}");
    assert!(failures.iter().all(|l| l["ok"] == false), "{wrong:?}");
    assert!(
        failures[0]["error"]
            .as_str()
            .unwrap()
            .contains("certificate"),
        "{wrong:?}"
    );
    assert!(
        !wrong
            .iter()
            .any(|l| l["type"] == "state" && l["state"] == "synchronized"),
        "{wrong:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Our NTS-KE client over TCP against `ke`, trusting `ca_pem`, retried
/// while the daemon is not yet listening (at most 5 s).
fn ke_client(ke: core::net::SocketAddr, ca_pem: &str) -> ntp_nts::tls::KeOutcome {
    use ntp_nts::tls::{self, KeClient, Progress};

    let roots = tls::root_store_from_pem(ca_pem.as_bytes()).unwrap();
    let config = tls::client_config(roots).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut stream = loop {
        match std::net::TcpStream::connect_timeout(&ke, Duration::from_secs(1)) {
            Ok(stream) => break stream,
            Err(error) => {
                assert!(std::time::Instant::now() < deadline, "NTS-KE: {error}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut client = KeClient::new("127.0.0.1", config, &ntp_nts::AeadAlgorithm::ALL).unwrap();
    loop {
        let progress = client.process().unwrap();
        // Best effort once done: the server may have closed already.
        while client.wants_write() && client.write_tls(&mut stream).is_ok() {}
        if let Progress::Done(outcome) = progress {
            return outcome;
        }
        if client.wants_read() {
            assert_ne!(client.read_tls(&mut stream).unwrap(), 0, "closed early");
        }
    }
}

/// The daemon's --serve with NTS: synchronized to a plain server, it
/// hands our NTS-KE client eight cookies and its NTP port, and answers an
/// NTS-protected request with an answer our client session accepts (and
/// that carries a fresh cookie), as stratum 2.
#[test]
fn the_daemon_serves_nts_to_our_client() {
    use ntp_client::ntp_proto::{Mode, Packet, Repr, ShortTime, Version};
    use ntp_nts::client::NtsClientSession;

    let stop = Arc::new(AtomicBool::new(false));
    let address = server(Arc::clone(&stop));
    let dir = std::env::temp_dir().join(format!("ntp-daemon-nts-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    // Free ports (released just before the daemon binds them).
    let serve = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let ke = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let start = std::time::Instant::now();
    let child = Command::new(DAEMON)
        .args(["--server", &address.to_string()])
        .args(["--min-poll", "1", "--max-poll", "2", "--duration", "14"])
        .args(["--json", "--verbose", "--serve", &serve.to_string()])
        .args(["--nts-ke-listen", &ke.to_string()])
        .arg("--nts-cert")
        .arg(&cert)
        .arg("--nts-key")
        .arg(&key)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let outcome = ke_client(ke, &certified.cert.pem());
    assert_eq!(outcome.cookies.len(), 8);
    assert_eq!(outcome.port(), serve.port());
    assert_eq!(outcome.ntp_server, None);

    // Once synchronized (iburst: about 6 s), an NTS-protected request.
    std::thread::sleep(Duration::from_secs(10).saturating_sub(start.elapsed()));
    let mut session = NtsClientSession::new(outcome.keys, outcome.cookies);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(21);
    let mut answer = None;
    for _ in 0..3 {
        let transmit = Timestamp::from(SystemTime::now());
        let header = Repr {
            leap: LeapIndicator::Unsynchronized,
            version: Version::V4,
            mode: Mode::Client,
            stratum: Stratum::UNSPECIFIED,
            poll: 1,
            precision: -20,
            root_delay: ShortTime::ZERO,
            root_dispersion: ShortTime::ZERO,
            reference_id: RefId::ZERO,
            reference_timestamp: Timestamp::ZERO,
            origin_timestamp: Timestamp::ZERO,
            receive_timestamp: Timestamp::ZERO,
            transmit_timestamp: transmit,
        }
        .to_bytes();
        let mut request = [0u8; 1024];
        let (len, state) = session
            .write_request(&header, &mut rng, &mut request)
            .unwrap();
        socket.send_to(&request[..len], serve).unwrap();
        let mut buf = [0u8; 2048];
        if let Ok((len, _)) = socket.recv_from(&mut buf) {
            let cookies = session.read_response(&buf[..len], &state).unwrap();
            let packet = Packet::new_checked(&buf[..len]).unwrap();
            answer = Some((
                cookies,
                packet.mode(),
                packet.stratum(),
                packet.origin_timestamp(),
                transmit,
            ));
            break;
        }
    }
    let output = child.wait_with_output().unwrap();
    stop.store(true, Ordering::Relaxed);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (cookies, mode, stratum, origin, transmit) = answer.expect("an NTS answer from --serve");
    assert!(cookies >= 1, "{cookies} cookies");
    assert_eq!(mode, Mode::Server);
    assert_eq!(stratum, Stratum::new(2));
    assert_eq!(origin, transmit);

    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let listen: Vec<_> = lines
        .iter()
        .filter(|l| l["type"] == "nts_ke_listen")
        .collect();
    assert_eq!(listen.len(), 1, "{stdout}");
    assert_eq!(listen[0]["address"], ke.to_string());
    assert_eq!(listen[0]["ntp_port"], serve.port());
    // Our one exchange succeeded: no failure logged (--verbose).
    assert!(
        !lines.iter().any(|l| l["type"] == "nts_ke_served"),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "state" && l["state"] == "synchronized"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
