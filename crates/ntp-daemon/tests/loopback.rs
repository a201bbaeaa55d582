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
use ntp_client::ntp_proto::{LeapIndicator, RefId, Stratum, SystemState, Timestamp};
use rand_core::SeedableRng;

mod common;

use common::{free_udp, query, query_with};

const DAEMON: &str = env!("CARGO_BIN_EXE_ntp-daemon");

/// A free TCP port on 127.0.0.1, likewise.
fn free_tcp() -> core::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A self-signed certificate for localhost and 127.0.0.1, written to
/// `DIR/cert.pem` and `DIR/key.pem`: those paths and the certificate's
/// PEM.
fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    (cert, key, certified.cert.pem())
}

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
            server.set_keys(&keys);
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
    let serve = free_udp();
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
    // The daemon writes the drift file at its stop only when the
    // frequency is known to 1 ppm (`DRIFT_FILE_FREQUENCY_SD`), which 14 s
    // of one server reach on most runs but not on all (a loaded machine
    // delays the replies). Written, the file holds the final frequency;
    // not written, the daemon said why and the file is as it was.
    if kinds("drift").next().is_some() {
        assert!(
            (written - final_ppm).abs() < 1e-3,
            "{written} vs {final_ppm}"
        );
    } else {
        assert!(written.abs() < 1e-12, "{written}: {stdout}");
        assert!(
            kinds("note").any(|l| l["message"]
                .as_str()
                .is_some_and(|m| m.contains("not known well enough"))),
            "{stdout}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the daemon for `args` in JSON; its exit code and JSON lines.
fn daemon_lines(args: &[&str]) -> (Option<i32>, Vec<serde_json::Value>) {
    let output = Command::new(DAEMON)
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (output.status.code(), lines)
}

#[test]
fn a_short_run_writes_no_drift_file() {
    // Five seconds of iburst (three samples, the first selection's) measure
    // the frequency to tens of ppm, far worse than the drift file the next
    // start would take it for.
    let stop = Arc::new(AtomicBool::new(false));
    let address = server(Arc::clone(&stop)).to_string();
    let dir = std::env::temp_dir().join(format!("ntp-daemon-short-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let drift = dir.join("drift");
    let drift_arg = drift.to_str().unwrap();
    let (code, lines) = daemon_lines(&[
        "--server",
        &address,
        "--model-drift",
        "5",
        "--duration",
        "5",
        "--drift-file",
        drift_arg,
    ]);
    stop.store(true, Ordering::Relaxed);
    assert_eq!(code, Some(0), "{lines:?}");
    assert!(lines.iter().any(|l| l["type"] == "update"), "{lines:?}");
    assert!(!drift.exists(), "{lines:?}");
    assert!(lines.iter().any(|l| {
        l["type"] == "note"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.contains("not written"))
    }));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_error_exit_still_leaves_the_clock_on_its_frequency() {
    // 2000 s off: beyond the 1000 s panic threshold, the daemon gives up,
    // but first sets the clock's rate to the frequency estimate (no phase
    // slew left running) and says so.
    let stop = Arc::new(AtomicBool::new(false));
    let address = server(Arc::clone(&stop)).to_string();
    let (code, lines) = daemon_lines(&[
        "--server",
        &address,
        "--model-offset",
        "2000000",
        "--duration",
        "20",
    ]);
    stop.store(true, Ordering::Relaxed);
    assert_eq!(code, Some(1), "{lines:?}");
    let stop_line = lines
        .iter()
        .find(|l| l["type"] == "stop")
        .unwrap_or_else(|| panic!("a stop line: {lines:?}"));
    assert_eq!(stop_line["reason"], "Error");
    assert!(
        stop_line["error"]
            .as_str()
            .is_some_and(|e| e.contains("panic threshold"))
    );
    assert_eq!(stop_line["clock_left_at_frequency"], true);
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
    let serve = free_udp();
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
        &["--server", "127.0.0.1:123", "--serve-threads", "2"],
        &["--serve", "127.0.0.1:0", "--serve-threads", "65"],
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
    use ntp_nts::tls::{self, KeClient};

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
    let mut client = KeClient::new("127.0.0.1", config, &ntp_nts::AeadAlgorithm::ALL).unwrap();
    let exchange_deadline = std::time::Instant::now() + Duration::from_secs(5);
    client.run_blocking(&mut stream, exchange_deadline).unwrap()
}

/// The daemon's --serve with NTS, on two worker threads: synchronized to
/// a plain server, it hands our NTS-KE client eight cookies and its NTP
/// port, and answers an NTS-protected request with an answer our client
/// session accepts (and that carries a fresh cookie), as stratum 2 (the
/// loop published the system variables to the workers). The restart test
/// below serves NTS from the loop.
#[test]
fn the_daemon_serves_nts_to_our_client() {
    use ntp_client::ntp_proto::{Mode, Packet};
    use ntp_nts::client::NtsClientSession;

    let stop = Arc::new(AtomicBool::new(false));
    let address = server(Arc::clone(&stop));
    let dir = std::env::temp_dir().join(format!("ntp-daemon-nts-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key, cert_pem) = self_signed(&dir);
    let serve = free_udp();
    let ke = free_tcp();
    let start = std::time::Instant::now();
    let child = Command::new(DAEMON)
        .args(["--server", &address.to_string()])
        .args(["--min-poll", "1", "--max-poll", "2", "--duration", "14"])
        .args(["--json", "--verbose", "--serve", &serve.to_string()])
        .args(["--serve-threads", "2"])
        .args(["--nts-ke-listen", &ke.to_string()])
        .arg("--nts-cert")
        .arg(&cert)
        .arg("--nts-key")
        .arg(&key)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let outcome = ke_client(ke, &cert_pem);
    assert_eq!(outcome.cookies.len(), 8);
    assert_eq!(outcome.port(), serve.port());
    assert_eq!(outcome.ntp_server, None);

    // Once synchronized (iburst: about 6 s), an NTS-protected request.
    std::thread::sleep(Duration::from_secs(10).saturating_sub(start.elapsed()));
    let mut session = NtsClientSession::new(outcome.keys, outcome.cookies);
    let answer = nts_query(&mut session, serve);
    let output = child.wait_with_output().unwrap();
    stop.store(true, Ordering::Relaxed);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer = answer.expect("an NTS answer from --serve");
    let cookies = answer.verdict.unwrap();
    assert!(cookies >= 1, "{cookies} cookies");
    let packet = Packet::new_checked(&answer.packet[..]).unwrap();
    assert_eq!(packet.mode(), Mode::Server);
    assert_eq!(packet.stratum(), Stratum::new(2));
    assert_eq!(packet.origin_timestamp(), answer.transmit);

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
    let ke_counters = lines
        .iter()
        .find(|l| l["type"] == "nts_ke_counters")
        .and_then(|l| l["counters"].as_str())
        .unwrap_or_default();
    assert_eq!(
        ke_counters, "accepted=1 answered=1 failed=0 refused=0",
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

/// A TCP connection to `to` from the loopback address `from` (any of
/// 127.0.0.0/8 is local), or `None` if refused.
fn connect_from(from: [u8; 4], to: core::net::SocketAddr) -> Option<std::net::TcpStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};

    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .ok()?;
    let [a, b, c, d] = from;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::new(a, b, c, d, 0),
    )
    .ok()?;
    let core::net::SocketAddr::V4(to) = to else {
        return None;
    };
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(to)).ok()?;
    Some(std::net::TcpStream::from(fd))
}

/// Holds up to `count` NTS-KE connections from `from` to `ke`, opening
/// new ones as the server closes them, until `until`: idle ones, or, with
/// `trickle`, slow ones that send the start of a TLS record one octet
/// every 300 ms (each read of the server's gets something within its 1 s,
/// and only the 3 s deadline of the whole exchange ends them).
fn hold(
    from: [u8; 4],
    ke: core::net::SocketAddr,
    count: usize,
    until: std::time::Instant,
    trickle: bool,
) {
    const HELLO: [u8; 8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01];
    let mut held: Vec<(std::net::TcpStream, usize)> = Vec::new();
    let mut next_octet = std::time::Instant::now();
    while std::time::Instant::now() < until {
        // Drop the connections the server closed (a read returns 0, or a
        // write fails).
        held.retain(|(stream, _)| {
            stream.set_nonblocking(true).unwrap();
            let mut byte = [0u8; 1];
            !matches!(std::io::Read::read(&mut &*stream, &mut byte), Ok(0))
        });
        if trickle && std::time::Instant::now() >= next_octet {
            next_octet += Duration::from_millis(300);
            held.retain_mut(|(stream, sent)| {
                let octet = HELLO.get(*sent % HELLO.len()).copied().unwrap_or(0);
                *sent += 1;
                std::io::Write::write(&mut &*stream, &[octet]).is_ok()
            });
        }
        while held.len() < count {
            match connect_from(from, ke) {
                Some(stream) => held.push((stream, 0)),
                None => break,
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What one NTS-protected exchange brought: the response's verdict
/// (`Ok`: authentic, with that many new cookies), the answer's octets and
/// the request's transmit timestamp.
struct NtsAnswer {
    verdict: Result<usize, String>,
    packet: Vec<u8>,
    transmit: Timestamp,
}

/// One NTS-protected request with `session` to `to`, at most three tries
/// of a second each; `None` without an answer.
fn nts_query(
    session: &mut ntp_nts::client::NtsClientSession,
    to: core::net::SocketAddr,
) -> Option<NtsAnswer> {
    use ntp_client::ntp_proto::{Mode, Repr, ShortTime, Version};

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
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
        let Ok((len, state)) = session.write_request(&header, &mut rng, &mut request) else {
            return None;
        };
        socket.send_to(&request[..len], to).unwrap();
        let mut buf = [0u8; 2048];
        if let Ok((len, _)) = socket.recv_from(&mut buf) {
            let packet = buf[..len].to_vec();
            let verdict = session
                .read_response(&packet, &state)
                .map_err(|error| error.to_string());
            return Some(NtsAnswer {
                verdict,
                packet,
                transmit,
            });
        }
    }
    None
}

/// The daemon's NTS-KE under idle connections from two other addresses
/// and slow ones from a third (each far more than the per-address cap)
/// keeps serving a good client, and counts the refusals; and with
/// `--nts-key-file` the cookies it handed out still open after a restart.
#[test]
fn nts_ke_holds_under_idle_connections_and_keys_survive_a_restart() {
    let stop = Arc::new(AtomicBool::new(false));
    let address = server(Arc::clone(&stop));
    let dir = std::env::temp_dir().join(format!("ntp-daemon-nts-abuse-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key, cert_pem) = self_signed(&dir);
    let key_file = dir.join("nts-keys");
    let serve = free_udp();
    let ke = free_tcp();
    let daemon = |seconds: &str| {
        Command::new(DAEMON)
            .args(["--server", &address.to_string()])
            .args(["--duration", seconds, "--json"])
            .args(["--serve", &serve.to_string()])
            .args(["--nts-ke-listen", &ke.to_string()])
            .arg("--nts-cert")
            .arg(&cert)
            .arg("--nts-key")
            .arg(&key)
            .arg("--nts-key-file")
            .arg(&key_file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = daemon("9");
    // Wait for the listener with one good exchange.
    let outcome = ke_client(ke, &cert_pem);
    assert_eq!(outcome.cookies.len(), 8);
    let until = std::time::Instant::now() + Duration::from_secs(5);
    let attackers: Vec<_> = [
        ([127, 0, 0, 2], false),
        ([127, 0, 0, 3], false),
        ([127, 0, 0, 4], true),
    ]
    .into_iter()
    .map(|(from, trickle)| std::thread::spawn(move || hold(from, ke, 40, until, trickle)))
    .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut served = 0;
    let mut kept = None;
    for _ in 0..8 {
        let outcome = ke_client(ke, &cert_pem);
        if outcome.cookies.len() == 8 {
            served += 1;
        }
        kept = Some(outcome);
        std::thread::sleep(Duration::from_millis(300));
    }
    for attacker in attackers {
        attacker.join().unwrap();
    }
    assert_eq!(served, 8, "good client served {served} times in 8");
    let output = first.wait_with_output().unwrap();
    assert!(output.status.success());
    // Nine exchanges answered; the attackers' connections over the cap
    // refused at once, the rest timed out.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let counters = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["type"] == "nts_ke_counters")
        .and_then(|line| line["counters"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let count = |name: &str| -> u64 {
        counters
            .split(' ')
            .find_map(|field| field.strip_prefix(name)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(count("answered"), 9, "{counters}");
    assert!(count("refused") > 0, "{counters}");
    assert!(count("failed") >= 24, "{counters}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // A restart with the same key file opens the cookies of before.
    let second = daemon("4");
    let kept = kept.unwrap();
    let mut session = ntp_nts::client::NtsClientSession::new(kept.keys, kept.cookies);
    std::thread::sleep(Duration::from_millis(500));
    let verdict = nts_query(&mut session, serve).map(|answer| answer.verdict);
    let output = second.wait_with_output().unwrap();
    stop.store(true, Ordering::Relaxed);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        matches!(verdict, Some(Ok(cookies)) if cookies >= 1),
        "{verdict:?}\n{stdout}"
    );
    assert!(stdout.contains("master keys read from"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An NTS-KE server that accepts and then says nothing never holds up the
/// loop: the daemon answers on `--serve` meanwhile (before, each exchange
/// blocked it for the 5 s NTS-KE timeout).
#[test]
fn a_silent_nts_ke_server_does_not_stall_the_loop() {
    let stop = Arc::new(AtomicBool::new(false));
    let address = server(Arc::clone(&stop));
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_address = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        // Bounded: the daemon runs 8 s.
        for stream in silent.incoming().take(8) {
            held.push(stream);
        }
    });
    let dir = std::env::temp_dir().join(format!("ntp-daemon-silent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Trusted, but the silent server never gets as far as showing one.
    let (ca, _, _) = self_signed(&dir);
    let serve = free_udp();
    let child = Command::new(DAEMON)
        .args(["--server", &address.to_string()])
        .args(["--nts", &silent_address.to_string()])
        .arg("--nts-ca")
        .arg(&ca)
        .args(["--duration", "8", "--json"])
        .args(["--serve", &serve.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // Any answer will do (the daemon waits for its NTS source before it
    // synchronizes, and answers unsynchronized meanwhile).
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut request = [0u8; 48];
    request[0] = 0x23;
    request[40..48].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let asked = std::time::Instant::now();
    socket.send_to(&request, serve).unwrap();
    let mut buf = [0u8; 1024];
    let served = socket.recv_from(&mut buf).ok();
    let waited = asked.elapsed();
    let output = child.wait_with_output().unwrap();
    stop.store(true, Ordering::Relaxed);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(served.is_some(), "no answer from --serve: {stdout}");
    assert!(waited < Duration::from_secs(1), "answered after {waited:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `ntp-daemon --serve ADDR ARGS --json` for `seconds` with no
/// sources and queries it once it is up: the answer, if any, and the
/// daemon's standard output.
fn serve_alone(args: &[&str], seconds: &str) -> (Option<ntp_client::Measurement>, String) {
    let serve = free_udp();
    let child = Command::new(DAEMON)
        .args(["--serve", &serve.to_string()])
        .args(args)
        .args(["--duration", seconds, "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let answer = query(serve);
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}");
    (answer, stdout)
}

/// With no sources, `--serve --local 1` is a primary server of this
/// machine's clock, with the access list and the rate limiter of
/// `ntp-server`.
#[test]
fn the_daemon_serves_its_clock_as_a_primary_server() {
    let (answer, stdout) = serve_alone(&["--local", "1", "--default-action", "allow"], "4");
    let answer = answer.unwrap_or_else(|| panic!("no answer: {stdout}"));
    assert_eq!(answer.stratum, Stratum::PRIMARY);
    assert_eq!(answer.reference_id, RefId::LOCL);
    assert_eq!(answer.leap, LeapIndicator::NoWarning);
    assert!(answer.offset.abs() < 0.01, "{}", answer.offset);
    assert!(stdout.contains("answered=1"), "{stdout}");

    // Denied by a rule: a kiss-o'-death DENY, counted.
    let (answer, stdout) = serve_alone(&["--local", "3", "--rule", "127.0.0.0/8=deny"], "3");
    assert!(answer.is_none(), "{answer:?}");
    // One DENY per try of the query (three).
    assert!(stdout.contains("kod(deny=3 "), "{stdout}");
}

/// `--serve-threads 3`: the workers share the port, answer clients on
/// many source ports (the kernel spreads them over the workers), stamp
/// their answers on the daemon's clock (a model clock 0.5 s ahead of the
/// system's) and add their counters up at the end.
#[test]
fn worker_threads_serve_the_daemons_clock() {
    let serve = free_udp();
    let child = Command::new(DAEMON)
        .args(["--serve", &serve.to_string(), "--serve-threads", "3"])
        .args(["--local", "1", "--default-action", "allow"])
        .args(["--model-offset", "500", "--duration", "4", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Each query from a socket (and so a port) of its own.
    let answers: Vec<_> = (0..12).filter_map(|_| query(serve)).collect();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert_eq!(answers.len(), 12, "{stdout}");
    for answer in &answers {
        assert_eq!(answer.stratum, Stratum::PRIMARY);
        assert!((answer.offset - 0.5).abs() < 0.01, "{}", answer.offset);
    }
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let start = lines.iter().find(|l| l["type"] == "start").unwrap();
    assert_eq!(start["serve_threads"], 3, "{stdout}");
    assert_eq!(start["serve"], serve.to_string(), "{stdout}");
    let served = lines.iter().find(|l| l["type"] == "served").unwrap();
    let counters = served["counters"].as_str().unwrap();
    assert!(counters.contains("answered=12 "), "{counters}");
}

/// `--serve-threads 4` with a rate limit: a client that sends each
/// request from a new source port (which the kernel spreads over the four
/// workers' sockets) gets one burst in all, not one per worker; every
/// request beyond it gets a Kiss-o'-Death `RATE` (leak 1).
#[test]
fn a_client_rotating_its_port_gets_one_limit_from_all_workers() {
    let serve = free_udp();
    let child = Command::new(DAEMON)
        .args(["--serve", &serve.to_string(), "--serve-threads", "4"])
        .args(["--local", "1", "--default-action", "limited"])
        .args(["--rate", "4,4,1", "--duration", "4", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let mut request = [0_u8; 48];
    request[0] = 0x23; // NTPv4, client
    let (mut answers, mut kisses) = (0, 0);
    for sent in 0..40_u64 {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        request[40..].copy_from_slice(&(sent + 1).to_be_bytes());
        socket.send_to(&request, serve).unwrap();
        let mut reply = [0_u8; 128];
        if let Ok((len, _)) = socket.recv_from(&mut reply) {
            assert!(len >= 48 && reply[24..32] == request[40..48]);
            // Stratum 0: a Kiss-o'-Death.
            if reply[1] == 0 {
                assert_eq!(&reply[12..16], b"RATE");
                kisses += 1;
            } else {
                answers += 1;
            }
        }
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert_eq!((answers, kisses), (4, 36), "{stdout}");
}
