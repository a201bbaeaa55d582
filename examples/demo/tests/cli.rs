//! The demo as a program: JSON lines, the exit status, bad arguments and
//! `--help`. Runs the binary cargo built for this test
//! (`CARGO_BIN_EXE_ntp-demo`); every server is on 127.0.0.1 and the
//! system clock is only read.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use std::process::{Command, Output};

use serde_json::Value;

fn run(args: &[&str]) -> (Output, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ntp-demo"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    (output, stdout, stderr)
}

#[test]
fn demo_emits_json_lines_and_rejects_bad_arguments() {
    // Five seconds are too short to synchronize: the first selection
    // (three samples of each source, the third at 4 s) steps the model
    // clock's 300 ms error away, every clock filter restarts, and the next
    // samples come 2 s later. So the demo reports it and exits 1; the
    // start, event, peers and summary lines must all be there and parse.
    let (output, stdout, stderr) = run(&[
        "--json",
        "--duration",
        "5",
        "--table-every",
        "1",
        "--seed",
        "1",
    ]);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let of_type = |kind: &'static str| lines.iter().filter(move |l| l["type"] == kind);
    let start = of_type("start").next().unwrap();
    let servers = start["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 4);
    assert_eq!(
        servers.iter().filter(|s| s["falseticker"] == true).count(),
        1
    );
    for server in servers {
        assert!(
            server["address"]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:")
        );
    }
    assert!(of_type("event").any(|e| e["event"] == "source"));
    let tables: Vec<&Value> = of_type("peers").collect();
    assert!(tables.len() >= 2, "{stdout}");
    let last = tables.last().unwrap()["peers"].as_array().unwrap();
    assert_eq!(last.len(), 4);
    for row in last {
        // A number, or null for a filter emptied by the step.
        assert!(
            row["offset_ms"].is_number() || row["offset_ms"].is_null(),
            "{row}"
        );
        assert_eq!(row["reach"], "1", "{row}");
    }
    assert!(of_type("event").any(|e| e["event"] == "step"), "{stdout}");
    let summary = of_type("summary").next().unwrap();
    assert_eq!(summary["synchronized"], false);
    assert_eq!(summary["ok"], false);
    assert!(summary["requests"].as_u64().unwrap() >= 4);

    for args in [
        &["--duration", "0"][..],
        &["--server", "192.0.2.1:123"][..],
        &["--frobnicate"][..],
        &["--seed", "x"][..],
    ] {
        let (output, stdout, stderr) = run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("demo: "), "{stderr}");
    }
}

#[test]
fn demo_answers_help() {
    let (output, stdout, stderr) = run(&["--help"]);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.starts_with("usage: "), "{stdout}");
}
