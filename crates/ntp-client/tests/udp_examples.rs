//! The `sntp` and `query` examples as programs, over real UDP on 127.0.0.1
//! against `ntp-server` threads in this test process. The example binaries
//! are the ones `cargo test` builds beside this test (with `--test`, build
//! them first: `cargo build -p ntp-client --examples`).

#![cfg(feature = "std")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

#[allow(dead_code, reason = "shared with the demo, which uses all of it")]
#[path = "../../../examples/demo/src/clock.rs"]
mod clock;
#[allow(dead_code, reason = "shared with the demo, which uses all of it")]
#[path = "../../../examples/demo/src/servers.rs"]
mod servers;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Output};

use ntp_server::AccessAction;
use serde_json::Value;

use crate::clock::TrueTime;
use crate::servers::{RunningServer, ServerSpec};

fn example(name: &str) -> PathBuf {
    // target/debug/deps/udp_examples-HASH -> target/debug/examples/NAME
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
        "{} missing: run through `cargo test`, or `cargo build -p ntp-client --examples` first",
        path.display()
    );
    path
}

fn run(name: &str, args: &[&str]) -> (Output, String, String) {
    let output = Command::new(example(name)).args(args).output().unwrap();
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    (output, stdout, stderr)
}

#[test]
fn sntp_prints_the_measurement() {
    let truth = TrueTime::start();
    let mut spec = ServerSpec::primary("ahead", b"GPS", 0.0);
    // The example reads this machine's clock, which true time started
    // from; serve it 80 ms ahead.
    spec.offset = ntp_proto::NtpDuration::from_seconds_f64(0.080).unwrap();
    let server = RunningServer::start(spec, truth).unwrap();
    let address = server.addr().to_string();

    let (output, stdout, stderr) = run("sntp", &["--timeout", "10", &address]);
    assert!(output.status.success(), "{stdout}{stderr}");
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} line in {stdout}"))
            .trim()
            .to_owned()
    };
    assert_eq!(field("server"), address);
    let offset: f64 = field("offset").trim_end_matches(" s").parse().unwrap();
    let delay: f64 = field("delay").trim_end_matches(" s").parse().unwrap();
    assert!((offset - 0.080).abs() < delay / 2.0 + 0.002, "{stdout}");
    assert_eq!(field("stratum"), "1");
    assert_eq!(field("refid"), ".GPS.");
    assert_eq!(field("leap"), "0 (none)");

    let (output, stdout, stderr) = run("sntp", &["--json", "--timeout", "10", &address]);
    assert!(output.status.success(), "{stdout}{stderr}");
    let json: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(json["stratum"], 1);
    assert_eq!(json["refid"], ".GPS.");
    assert_eq!(json["leap"], 0);
    assert!(
        (json["offset"].as_f64().unwrap() - 0.080).abs() < 0.005,
        "{json}"
    );
    assert_eq!(server.stop().unwrap().answered, 2);
}

#[test]
fn sntp_fails_clearly_on_kiss_of_death_timeout_and_bad_arguments() {
    let truth = TrueTime::start();
    let mut spec = ServerSpec::primary("denies", b"GPS", 0.0);
    spec.config.acl_default = AccessAction::Deny;
    let denies = RunningServer::start(spec, truth).unwrap();
    let (output, stdout, stderr) = run("sntp", &["--timeout", "10", &denies.addr().to_string()]);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("kiss-o'-death DENY"), "{stderr}");
    assert_eq!(denies.stop().unwrap().kiss.deny, 1);

    // A socket that never answers: a timeout.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = std::time::Instant::now();
    let (output, _, stderr) = run(
        "sntp",
        &[
            "--timeout",
            "0.5",
            &silent.local_addr().unwrap().to_string(),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no answer within 0.5 s"), "{stderr}");
    assert!(started.elapsed().as_secs_f64() >= 0.5);
    let mut request = [0u8; 100];
    silent.set_nonblocking(true).unwrap();
    let (len, _) = silent.recv_from(&mut request).unwrap();
    assert_eq!(len, 48);
    // Data minimization: LI 0, v4, client; precision 0x20; the rest zero
    // but the nonce.
    assert_eq!(request[0], 0x23);
    assert!(
        request[1..40]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == if i == 2 { 0x20 } else { 0 })
    );
    assert!(
        silent.recv_from(&mut request).is_err(),
        "a second request was sent"
    );

    // A port nobody listens on (just released): the host says so at once.
    let closed = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (output, _, stderr) = run("sntp", &["--timeout", "10", &closed.to_string()]);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("port unreachable"), "{stderr}");

    for args in [
        &[][..],
        &["--bogus", "127.0.0.1"][..],
        &["127.0.0.1:123", "127.0.0.2:123"][..],
        &["not-an-address"][..],
        &["--timeout", "-1", "127.0.0.1"][..],
        &["--timeout"][..],
    ] {
        let (output, stdout, stderr) = run("sntp", args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("sntp: "), "{stderr}");
    }
}

#[test]
fn query_prints_one_line_and_every_example_answers_help() {
    let truth = TrueTime::start();
    let server = RunningServer::start(ServerSpec::primary("ahead", b"GPS", 30.0), truth).unwrap();
    let address = server.addr().to_string();
    let (output, stdout, stderr) = run("query", &[address.as_str()]);
    assert!(output.status.success(), "{stderr}");
    // "offset +0.030012 s, delay ...": 30 ms within half the loopback
    // delay, which a loaded machine can stretch to a few ms.
    let offset: f64 = stdout
        .strip_prefix("offset ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no offset in {stdout:?}"));
    assert!((offset - 0.030).abs() < 0.01, "{stdout}");
    assert!(stdout.contains("stratum 1"), "{stdout}");
    server.stop();
    for name in ["query", "sntp"] {
        let (output, stdout, stderr) = run(name, &["--help"]);
        assert!(output.status.success(), "{name}: {stderr}");
        assert!(stdout.starts_with("usage: "), "{name}: {stdout}");
    }
}
