//! The daemon with a SOCK reference clock on this machine: a thread plays
//! gpsd, sending chrony's socket records of the system clock (taken as
//! true) to the daemon's socket; the daemon disciplines its model clock,
//! which starts 30 ms ahead, and serves stratum 1 with refid GPS. Garbage
//! on the socket is counted and refused without stopping it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use core::time::Duration;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Instant, SystemTime};

use ntp_client::ntp_proto::{RefId, Stratum};
use ntp_client::refclock::sock::SockSample;

mod common;

use common::{free_udp, query};

const DAEMON: &str = env!("CARGO_BIN_EXE_ntp-daemon");

/// The system clock now as a SOCK record with no offset.
fn record_now() -> [u8; 40] {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    SockSample::new(
        i64::try_from(now.as_secs()).unwrap(),
        now.subsec_micros(),
        0.0,
    )
    .to_bytes()
}

#[test]
fn a_gps_on_the_sock_socket_makes_a_stratum_1_server() {
    let dir = std::env::temp_dir().join(format!("ntp-daemon-refclock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("chrony.ttyS0.sock");
    // A stale socket from an earlier run is replaced.
    drop(UnixDatagram::bind(&path).unwrap());
    let serve = free_udp();
    let child = Command::new(DAEMON)
        .arg("--refclock")
        .arg(format!("SOCK:{},refid=GPS,poll=1", path.display()))
        .args(["--serve", &serve.to_string(), "--default-action", "allow"])
        .args(["--model-offset", "30", "--duration", "14", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let gpsd = UnixDatagram::unbound().unwrap();
    let start = Instant::now();
    let mut connected = false;
    while start.elapsed() < Duration::from_secs(11) {
        std::thread::sleep(Duration::from_millis(100));
        if gpsd.send_to(&record_now(), &path).is_ok() {
            connected = true;
        }
        // Garbage now and then: wrong size, wrong magic.
        if start.elapsed().as_millis() % 1000 < 100 {
            let _ = gpsd.send_to(b"not a record", &path);
            let mut wrong = record_now();
            wrong[36] ^= 0xff;
            let _ = gpsd.send_to(&wrong, &path);
        }
    }
    assert!(connected, "the daemon never bound {}", path.display());
    let answer = query(serve);
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let answer = answer.unwrap_or_else(|| panic!("no answer: {stdout}"));
    assert_eq!(answer.stratum, Stratum::PRIMARY, "{stdout}");
    assert_eq!(answer.reference_id, RefId::from_ascii(b"GPS").unwrap());
    // The model clock started 30 ms ahead; it now follows the "GPS".
    assert!(answer.offset.abs() < 0.005, "{} {stdout}", answer.offset);
    let counters = stdout
        .lines()
        .find(|line| line.contains("\"refclock_counters\""))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(counters.contains("refused="), "{counters}");
    assert!(!counters.contains("refused=0"), "{counters}");
    assert!(!counters.contains("accepted=0"), "{counters}");
    // The socket file is removed at the end.
    assert!(!path.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_path_that_is_not_a_socket_is_refused() {
    let dir = std::env::temp_dir().join(format!("ntp-daemon-refclock-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("not-a-socket");
    std::fs::write(&path, "keep me").unwrap();
    let output = Command::new(DAEMON)
        .arg("--refclock")
        .arg(format!("SOCK:{}", path.display()))
        .args(["--duration", "1"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a socket"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_devices_are_refused_and_tried_again_without_stopping_the_daemon() {
    let dir = std::env::temp_dir().join(format!(
        "ntp-daemon-refclock-missing-{}",
        std::process::id()
    ));
    let (phc, pps) = (dir.join("ptp9"), dir.join("pps7"));
    let output = Command::new(DAEMON)
        .arg("--refclock")
        .arg(format!("PHC:{},refid=PHC", phc.display()))
        .arg("--refclock")
        .arg(format!("PPS:{},refid=PPS", pps.display()))
        .args(["--duration", "3", "--json", "--table-every", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    for path in [&phc, &pps] {
        let warning = stdout
            .lines()
            .find(|line| line.contains("\"warning\"") && line.contains(&*path.to_string_lossy()))
            .unwrap_or_else(|| panic!("no warning for {}: {stdout}", path.display()));
        assert!(warning.contains("cannot open the device"), "{warning}");
    }
    // Both sources are in the peer table, never reached.
    let table = stdout
        .lines()
        .find(|line| line.contains("\"peers\""))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(table.matches("\"reach\":0").count(), 2, "{table}");
}
