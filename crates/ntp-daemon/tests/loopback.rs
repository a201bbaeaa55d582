//! The daemon binary on 127.0.0.1: against an `ntp-server` on a thread it
//! synchronizes its model clock, logs JSON lines, writes the drift file
//! and stops by itself; bad arguments exit 2.

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

use ntp_client::ntp_proto::{LeapIndicator, RefId, Stratum, SystemState, Timestamp};

const DAEMON: &str = env!("CARGO_BIN_EXE_ntp-daemon");

/// A primary server serving this machine's clock until `stop` is set.
fn server(stop: Arc<AtomicBool>) -> core::net::SocketAddr {
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
        let config = ntp_server::ServerConfig {
            acl_default: ntp_server::AccessAction::Allow,
            ..Default::default()
        };
        let mut server = ntp_server::Server::new(&config, state).unwrap();
        let origin = std::time::Instant::now();
        let (mut buf, mut out) = ([0u8; 1024], [0u8; 48]);
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
                let _ = socket.send_to(reply.finish(&mut out, tx), from);
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
    let output = Command::new(DAEMON)
        .args(["--server", &address.to_string()])
        .args(["--min-poll", "1", "--max-poll", "2", "--duration", "14"])
        .args(["--model-offset", "20", "--model-drift", "10", "--json"])
        .arg("--drift-file")
        .arg(&drift)
        .output()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
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

#[test]
fn bad_arguments_exit_2_and_help_exits_0() {
    for args in [
        &[][..],
        &["--server"],
        &["--server", "127.0.0.1:123", "--clock", "atomic"],
        &["--server", "no-such-host.invalid:123"],
        &["--server", "127.0.0.1:123", "--unknown-flag"],
    ] {
        let output = Command::new(DAEMON).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
    let help = Command::new(DAEMON).arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--clock model|kernel"));
}
