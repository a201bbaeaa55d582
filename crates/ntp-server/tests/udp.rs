//! The `serve` example over real UDP on 127.0.0.1, driven by a std-socket
//! client with bounded loops and timeouts. The example binary is the one
//! `cargo test` builds beside this test. (The server program, with worker
//! threads, access rules and NTS, is `ntp-daemon --serve`: its tests are
//! in `crates/ntp-daemon/tests/loopback.rs`.)

#![cfg(feature = "std")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::SystemTime;

use ntp_proto::{Date, Mode, Packet, RefId, Repr, Timestamp};
use ntp_server::KeyStore;

fn example(name: &str) -> PathBuf {
    // target/debug/deps/udp-HASH -> target/debug/examples/NAME
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} missing: run through cargo test",
        path.display()
    );
    path
}

/// Starts `serve` on an ephemeral loopback port; returns it and its address.
fn start(args: &[&str]) -> (Child, SocketAddr, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(example("serve"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    (child, addr, stdout)
}

fn now() -> Timestamp {
    Date::try_from(SystemTime::now()).unwrap().to_timestamp()
}

#[test]
fn serve_answers_a_std_socket_client() {
    let (mut child, server, mut stdout) = start(&["--duration", "4", "--stratum", "2"]);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 1024];
    let mut sent = 0;
    for i in 0..20u64 {
        let mut request = [0u8; 48];
        request[0] = if i % 2 == 0 { 0x23 } else { 0x1b }; // v4, v3
        let xmt = 0x1111_2222_3333_0000 + i;
        request[40..].copy_from_slice(&xmt.to_be_bytes());
        // UDP may lose a datagram: up to 3 tries, 2 s each. A signal (the
        // other test's children exiting) can interrupt the wait: keep
        // waiting then. An answer to an earlier try of an earlier request
        // (its origin is another nonce) is skipped.
        let mut answer = None;
        let mut before = now();
        'tries: for _ in 0..3 {
            before = now();
            client.send_to(&request, server).unwrap();
            sent += 1;
            loop {
                match client.recv_from(&mut buf) {
                    Ok((len, from)) => {
                        let origin = buf
                            .get(24..32)
                            .map(|o| u64::from_be_bytes(o.try_into().unwrap()));
                        if len >= 48 && origin == Some(xmt) {
                            answer = Some((len, from));
                            break 'tries;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        eprintln!("request {i}: no answer ({e}), sending again");
                        break;
                    }
                }
            }
        }
        let (len, from) = answer.unwrap_or_else(|| panic!("no answer to request {i}"));
        let after = now();
        assert_eq!(from, server);
        assert_eq!(len, 48);
        let r = Repr::parse(&Packet::new_checked(&buf[..len]).unwrap()).unwrap();
        assert_eq!(r.mode, Mode::Server);
        assert_eq!(r.version.to_bits(), if i % 2 == 0 { 4 } else { 3 });
        assert_eq!(r.stratum.get(), 2);
        assert_eq!(r.reference_id, RefId::LOCL);
        assert_eq!(r.origin_timestamp.to_bits(), xmt);
        // Receive and transmit read from this machine's clock, in order.
        let (rx, tx) = (
            r.receive_timestamp.to_bits(),
            r.transmit_timestamp.to_bits(),
        );
        assert!(
            before.to_bits() <= rx && rx <= tx && tx <= after.to_bits(),
            "{r:?}"
        );
    }
    // Control (mode 6) and private (mode 7) requests get nothing.
    client
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    for first in [0x16u8, 0x17, 0x24] {
        let mut request = [0u8; 48];
        request[0] = first;
        client.send_to(&request, server).unwrap();
        assert!(
            client.recv_from(&mut buf).is_err(),
            "answered first octet {first:#x}"
        );
    }
    // It stops by itself at --duration and prints its counters.
    let status = child.wait().unwrap();
    assert!(status.success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let counters = rest.lines().find(|l| l.starts_with("counters: ")).unwrap();
    let expected = format!("received={} answered={sent} ", sent + 3);
    assert!(counters.contains(&expected), "{counters}");
    assert!(counters.contains(" mode=3 "), "{counters}");
}

/// A W32Time-style symmetric-active request (NTPv3, LI 3, mode 1) is
/// answered in mode 2 (`SymmetricPolicy::Answer`, the default).
#[test]
fn serve_answers_symmetric_active() {
    let mut request = [0u8; 48];
    request[0] = 0xd9; // LI 3, NTPv3, mode 1
    request[1] = 2; // its own stratum
    request[2] = 10;
    request[40..].copy_from_slice(&0x1111_2222_3333_4444_u64.to_be_bytes());
    let (mut child, server, mut stdout) = start(&["--duration", "3"]);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 1024];
    let mut got = None;
    // UDP may lose a datagram: up to 3 tries.
    for _ in 0..3 {
        client.send_to(&request, server).unwrap();
        if let Ok((len, _)) = client.recv_from(&mut buf) {
            got = Some(Repr::parse(&Packet::new_checked(&buf[..len]).unwrap()).unwrap());
            break;
        }
    }
    let r = got.expect("an answer in mode 2");
    assert_eq!(r.mode, Mode::SymmetricPassive);
    assert_eq!(r.version.to_bits(), 3);
    assert_eq!(r.origin_timestamp.to_bits(), 0x1111_2222_3333_4444);
    assert!(child.wait().unwrap().success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let counters = rest.lines().find(|l| l.starts_with("counters: ")).unwrap();
    assert!(counters.contains(" symmetric=1 "), "{counters}");
}

#[test]
fn serve_rejects_bad_flags_and_unbindable_addresses() {
    for (args, code) in [
        (&["--threads", "2"][..], 2),
        (&["--bogus"][..], 2),
        (&["--stratum", "17"][..], 2),
        (&["--stratum", "zero"][..], 2),
        (&["--duration", "-1"][..], 2),
        (&["--keys", "/nonexistent/ntp.keys"][..], 2),
        // TEST-NET-1 is not assigned to this machine: bind fails, nothing is sent.
        (&["--listen", "192.0.2.1:11123"][..], 1),
    ] {
        // A --duration first: a flag taken by mistake cannot hang the test.
        let output = Command::new(example("serve"))
            .args(["--duration", "1"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(code), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("serve: "), "{stderr}");
    }
}

/// A key file whose path is unique to this test process.
fn key_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ntp-server-udp-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// Sends `request` until an answer whose origin is its transmit timestamp
/// comes back (UDP may lose a datagram: up to 3 tries).
fn exchange(client: &UdpSocket, server: SocketAddr, request: &[u8]) -> Option<Vec<u8>> {
    let mut buf = [0u8; 1024];
    for _ in 0..3 {
        client.send_to(request, server).unwrap();
        loop {
            match client.recv_from(&mut buf) {
                Ok((len, _)) if len >= 48 && buf[24..32] == request[40..48] => {
                    return Some(buf[..len].to_vec());
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
    None
}

/// `serve --keys` with a chrony key file answers signed requests with a
/// MAC from the same key, and an unknown key id with a crypto-NAK.
#[test]
fn serve_signs_answers_with_keys_from_a_chrony_key_file() {
    const KEYS: &str = "\
# chrony keyfile
1 MD5 HEX:00112233445566778899AABBCCDDEEFF
2 AES128 HEX:000102030405060708090A0B0C0D0E0F
";
    let path = key_file("chrony.keys", KEYS);
    let (mut child, server, mut stdout) =
        start(&["--duration", "3", "--keys", path.to_str().unwrap()]);
    let keys: KeyStore<4> = KeyStore::from_chrony_keys(KEYS).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut sent = 0;
    for (i, key) in keys.iter().enumerate() {
        let mut buffer = [0u8; 68];
        buffer[0] = 0x23;
        buffer[40..48].copy_from_slice(&(0x7777_0000_u64 + i as u64).to_be_bytes());
        let len = key.sign_in_place(&mut buffer, 48).unwrap();
        let answer = exchange(&client, server, &buffer[..len])
            .unwrap_or_else(|| panic!("no answer signed with key {}", key.id()));
        sent += 1;
        assert_eq!(answer.len(), 68, "key {}", key.id());
        key.verify(&answer).unwrap();
        let r = Repr::parse(&Packet::new_checked(&answer[..]).unwrap()).unwrap();
        assert_eq!(r.mode, Mode::Server);
        assert_eq!(r.stratum.get(), 1);
    }
    // Key id 7 is not in the file: the answer ends in a crypto-NAK.
    let mut unknown = [0u8; 68];
    unknown[0] = 0x23;
    unknown[40..48].copy_from_slice(&0x7777_0007_u64.to_be_bytes());
    unknown[48..52].copy_from_slice(&7u32.to_be_bytes());
    let answer = exchange(&client, server, &unknown).expect("no crypto-NAK answer");
    sent += 1;
    assert_eq!(answer.len(), 52);
    assert_eq!(answer[48..], [0; 4]);

    assert!(child.wait().unwrap().success());
    std::fs::remove_file(&path).unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let counters = rest.lines().find(|l| l.starts_with("counters: ")).unwrap();
    let count = |name: &str| -> u64 {
        let at = counters.find(&format!(" {name}=")).unwrap() + name.len() + 2;
        counters[at..].split(' ').next().unwrap().parse().unwrap()
    };
    // Retries may add answers; every request was counted.
    assert!(count("received") >= sent, "{counters}");
    assert!(count("authenticated") >= 2, "{counters}");
    assert!(count("crypto_nak") >= 1, "{counters}");
    assert_eq!(count("bad_mac"), count("crypto_nak"), "{counters}");
}

/// A key file that does not parse stops serve before it listens.
#[test]
fn serve_refuses_a_bad_key_file() {
    let path = key_file("bad.keys", "1 MD5 HEX:0011\n2 FOO HEX:00\n");
    let output = Command::new(example("serve"))
        .args(["--keys", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("serve: "), "{stderr}");
    assert!(stderr.contains("line"), "{stderr}");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn serve_plays_an_unsynchronized_server_at_stratum_16() {
    let (mut child, server, _stdout) = start(&["--duration", "4", "--stratum", "16"]);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut request = [0u8; 48];
    request[0] = 0x23;
    request[40..].copy_from_slice(&0x5555_6666_7777_8888_u64.to_be_bytes());
    let mut buf = [0u8; 1024];
    let mut answer = None;
    for _ in 0..3 {
        client.send_to(&request, server).unwrap();
        match client.recv_from(&mut buf) {
            Ok((len, _)) if len >= 48 && buf[24..32] == request[40..48] => {
                answer = Some(len);
                break;
            }
            _ => {}
        }
    }
    let len = answer.expect("no answer from serve --stratum 16");
    let r = Repr::parse(&Packet::new_checked(&buf[..len]).unwrap()).unwrap();
    assert_eq!(r.leap, ntp_proto::LeapIndicator::Unsynchronized);
    assert_eq!(r.stratum.get(), 16);
    let _ = child.kill();
    let _ = child.wait();
}
