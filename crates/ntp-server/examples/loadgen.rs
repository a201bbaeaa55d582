//! A bounded NTP load generator for loopback measurements: sends a fixed
//! number of client requests from many sockets, keeping a window of
//! requests in flight on each, and counts the answers.
//!
//! ```text
//! cargo run --release -p ntp-server --example loadgen -- --target 127.0.0.1:11123
//! ```
//!
//! Options: `--target ADDR:PORT` (must be a loopback address),
//! `--requests N` (default 200000), `--sockets N` (default 32),
//! `--window N` requests in flight per socket (default 4),
//! `--loss-ms N` after which an unanswered window is written off
//! (default 20).
//!
//! It stops by itself: once every request is sent and answered or written
//! off, or after 120 s at most. It prints one line:
//! `sent=.. answered=.. kod=.. lost=.. seconds=.. rate=..` where rate is
//! answers per second.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "example code"
)]

use core::net::SocketAddr;
use core::time::Duration;
use std::net::UdpSocket;
use std::process::ExitCode;
use std::time::Instant;

/// Hard stop, whatever happens.
const MAX_RUN: Duration = Duration::from_secs(120);

struct Options {
    target: SocketAddr,
    requests: u64,
    sockets: usize,
    window: u32,
    loss: Duration,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut o = Options {
        target: "127.0.0.1:11123".parse().unwrap(),
        requests: 200_000,
        sockets: 32,
        window: 4,
        loss: Duration::from_millis(20),
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("{flag} {value:?}: invalid value");
        match flag.as_str() {
            "--target" => o.target = value.parse().map_err(|_| bad())?,
            "--requests" => o.requests = value.parse().map_err(|_| bad())?,
            "--sockets" => o.sockets = value.parse().map_err(|_| bad())?,
            "--window" => o.window = value.parse().map_err(|_| bad())?,
            "--loss-ms" => o.loss = Duration::from_millis(value.parse().map_err(|_| bad())?),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if !o.target.ip().is_loopback() {
        return Err(format!("{}: only loopback targets", o.target));
    }
    if o.sockets == 0 || o.sockets > 1024 || o.window == 0 {
        return Err("--sockets must be 1 to 1024 and --window at least 1".to_owned());
    }
    Ok(o)
}

struct Flow {
    socket: UdpSocket,
    in_flight: u32,
    last_activity: Instant,
}

fn main() -> ExitCode {
    if std::env::args()
        .skip(1)
        .any(|arg| arg == "--help" || arg == "-h")
    {
        println!(
            "usage: loadgen [--target ADDR:PORT (loopback only)] [--requests N] [--sockets N] [--window N] [--loss-ms MS]"
        );
        return ExitCode::SUCCESS;
    }
    let o = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let bind_addr: SocketAddr = if o.target.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    }
    .parse()
    .unwrap();
    let mut flows = Vec::new();
    for _ in 0..o.sockets {
        let socket = match UdpSocket::bind(bind_addr).and_then(|s| {
            s.connect(o.target)?;
            s.set_nonblocking(true)?;
            Ok(s)
        }) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("loadgen: cannot open a socket: {e}");
                return ExitCode::from(1);
            }
        };
        flows.push(Flow {
            socket,
            in_flight: 0,
            last_activity: Instant::now(),
        });
    }

    let mut request = [0u8; 48];
    request[0] = 0x23;
    request[3] = 0x20;
    let (mut sent, mut answered, mut kod, mut lost) = (0u64, 0u64, 0u64, 0u64);
    let mut buf = [0u8; 1024];
    let start = Instant::now();
    let mut last_answer = start;
    loop {
        let now = Instant::now();
        if now - start > MAX_RUN {
            eprintln!("loadgen: stopped after {MAX_RUN:?}");
            break;
        }
        let mut idle = true;
        for flow in &mut flows {
            while let Ok(len) = flow.socket.recv(&mut buf) {
                idle = false;
                flow.in_flight = flow.in_flight.saturating_sub(1);
                flow.last_activity = now;
                if len >= 48 && buf[0] & 7 == 4 {
                    if buf[1] == 0 {
                        kod += 1;
                    } else {
                        answered += 1;
                        last_answer = now;
                    }
                }
            }
            while flow.in_flight < o.window && sent < o.requests {
                request[40..].copy_from_slice(&sent.to_be_bytes());
                match flow.socket.send(&request) {
                    Ok(_) => {
                        sent += 1;
                        flow.in_flight += 1;
                        flow.last_activity = now;
                        idle = false;
                    }
                    Err(_) => break,
                }
            }
            if flow.in_flight > 0 && now - flow.last_activity > o.loss {
                lost += u64::from(flow.in_flight);
                flow.in_flight = 0;
            }
        }
        if sent == o.requests && flows.iter().all(|f| f.in_flight == 0) {
            break;
        }
        if idle {
            core::hint::spin_loop();
        }
    }
    let seconds = last_answer.duration_since(start).as_secs_f64();
    let rate = if seconds > 0.0 {
        answered as f64 / seconds
    } else {
        0.0
    };
    println!(
        "sent={sent} answered={answered} kod={kod} lost={lost} seconds={seconds:.3} rate={rate:.0}"
    );
    ExitCode::SUCCESS
}
