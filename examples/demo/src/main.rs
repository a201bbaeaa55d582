//! The loopback demo: four NTP servers and the full client system, over
//! real UDP on 127.0.0.1, steering a model clock. It never touches the
//! system clock.
//!
//! ```text
//! cargo run --release -p ntp-demo
//! ```
//!
//! It starts four `ntp-server` instances on their own threads, each on an
//! ephemeral port of 127.0.0.1, serving clocks +1 ms, -1 ms and +2 ms off
//! true time, and a falseticker +250 ms off. The client [`System`] polls
//! them with iburst and a 2 s to 4 s poll, and its discipline steers a
//! model of the client's clock: it starts 300 ms behind and its oscillator
//! runs 10 ppm fast. The demo prints the discipline's decisions (steps,
//! rate adjustments, synchronization) as they happen, the `ntpq -p` style
//! peer table every few seconds (the liar tallied `x`, the system peer
//! `*`), and a summary with the final offset of the model clock against
//! the honest servers. It ends by itself after `--duration` seconds.
//!
//! Options:
//!
//! - `--json` JSON lines instead of text (types `start`, `event`,
//!   `peers`, `summary`)
//! - `--duration SECONDS` how long to run (default 60, at most 600)
//! - `--table-every SECONDS` how often to print the peer table (default 5)
//! - `--initial-offset MS` the model clock's error at start (default -300)
//! - `--drift PPM` the model oscillator's frequency error (default +10)
//! - `--server ADDR:PORT` (repeatable, loopback addresses only): poll
//!   these servers instead of starting the four demo servers; "true
//!   time" is then this machine's clock (for interop with chronyd on
//!   127.0.0.1). Either way the client runs `SystemConfig::default()`
//!   with a 2 s to 4 s poll: no drift file, RFC 5905 selection limits.
//! - `--seed N` seed of the nonce and poll-jitter generator (default:
//!   random)
//! - `--all-adjustments` print every rate adjustment, not only the ones
//!   that change the frequency or the phase slew noticeably
//!
//! Exit status: 0 if the run ends synchronized, with no falseticker as
//! system peer and the model clock within 1 ms of the honest servers'
//! mean; 1
//! otherwise; 2 on bad arguments.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "example code"
)]

mod clock;
mod report;
mod servers;

use core::hash::BuildHasher;
use core::net::SocketAddr;
use core::time::Duration;
use std::collections::hash_map::RandomState;
use std::io;
use std::net::UdpSocket;
use std::process::ExitCode;

use ntp_client::{
    ClockAdjustment, Event, Input, Instant, LeapEvent, Output, SourceId, System, SystemConfig,
    Tally,
};
use ntp_proto::NtpDuration;
use rand_chacha::ChaCha12Rng;
use rand_core::SeedableRng;

use crate::clock::{ModelClock, TrueTime};
use crate::report::{Reporter, ServerLine, Summary};
use crate::servers::{RunningServer, ServerSpec};

/// The demo servers: name, reference id, offset from true time (ms), and
/// whether it is the falseticker.
const DEMO_SERVERS: [(&str, &[u8], f64, bool); 4] = [
    ("alpha", b"GPS", 1.0, false),
    ("bravo", b"PPS", -1.0, false),
    ("charlie", b"GAL", 2.0, false),
    ("liar", b"DCF", 250.0, true),
];

/// The poll exponents of the demo: 2 s to 4 s (the minimum spacing of
/// requests to one server is 2 s whatever the poll).
const MIN_POLL: i8 = 1;
const MAX_POLL: i8 = 2;

/// The verdict's bound on the model clock's final error against the
/// honest servers.
const MAX_FINAL_ERROR: f64 = 0.001;

struct Options {
    json: bool,
    duration: Duration,
    table_every: Duration,
    initial_offset: f64,
    drift: f64,
    servers: Vec<SocketAddr>,
    seed: Option<u64>,
    all_adjustments: bool,
}

const USAGE: &str = "usage: demo [--json] [--duration SECONDS] [--table-every SECONDS] \
     [--initial-offset MS] [--drift PPM] [--server ADDR:PORT]... [--seed N] [--all-adjustments]";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        json: false,
        duration: Duration::from_secs(60),
        table_every: Duration::from_secs(5),
        initial_offset: -0.300,
        drift: 10e-6,
        servers: Vec::new(),
        seed: None,
        all_adjustments: false,
    };
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--json" => {
                options.json = true;
                continue;
            }
            "--all-adjustments" => {
                options.all_adjustments = true;
                continue;
            }
            "--duration" | "--table-every" | "--initial-offset" | "--drift" | "--server"
            | "--seed" => {}
            _ => return Err(format!("unknown argument {flag:?}; {USAGE}")),
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value; {USAGE}"))?;
        let number = |min: f64, max: f64| {
            value
                .parse::<f64>()
                .ok()
                .filter(|x| (min..=max).contains(x))
                .ok_or_else(|| format!("{flag} {value:?}: not a number from {min} to {max}"))
        };
        match flag.as_str() {
            "--duration" => options.duration = Duration::from_secs_f64(number(1.0, 600.0)?),
            "--table-every" => options.table_every = Duration::from_secs_f64(number(0.5, 600.0)?),
            "--initial-offset" => options.initial_offset = number(-10_000.0, 10_000.0)? / 1e3,
            "--drift" => options.drift = number(-100.0, 100.0)? / 1e6,
            "--seed" => {
                options.seed = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--seed {value:?}: not an unsigned integer"))?,
                );
            }
            _ => {
                let addr: SocketAddr = value
                    .parse()
                    .map_err(|_| format!("--server {value:?}: not ADDR:PORT"))?;
                if !addr.ip().is_loopback() {
                    return Err(format!("--server {addr}: the demo stays on the loopback"));
                }
                if options.servers.len() >= 8 {
                    return Err("--server: at most 8 servers".to_owned());
                }
                options.servers.push(addr);
            }
        }
    }
    Ok(options)
}

/// A seed from std's per-process random hasher keys (drawn from the
/// operating system).
fn random_seed() -> u64 {
    RandomState::new().hash_one(std::process::id())
}

/// Whether an adjustment is worth a line: the first one, or one that
/// moves the frequency by more than 0.01 ppm, or the phase slew by more
/// than 0.5 ppm and 10 % (between updates the slew decays by 1/(16 *
/// 2^poll) every second, 3 % at the demo's 2 s poll: not news).
fn noteworthy(last: Option<ClockAdjustment>, new: ClockAdjustment) -> bool {
    last.is_none_or(|last| {
        let slew_change = (new.phase_slew - last.phase_slew).abs();
        (new.frequency - last.frequency).abs() > 0.01e-6
            || (slew_change > 0.5e-6 && slew_change > 0.1 * last.phase_slew.abs())
    })
}

/// The servers the client polls, their descriptions and the demo's own
/// server threads (none with `--server`).
fn start_servers(
    options: &Options,
    truth: TrueTime,
) -> io::Result<(Vec<RunningServer>, Vec<ServerLine>)> {
    if !options.servers.is_empty() {
        let lines = options
            .servers
            .iter()
            .enumerate()
            .map(|(i, &address)| ServerLine {
                name: format!("server{}", i + 1),
                address,
                offset_ms: None,
                falseticker: false,
            })
            .collect();
        return Ok((Vec::new(), lines));
    }
    let mut running = Vec::new();
    let mut lines = Vec::new();
    for (name, refid, offset_ms, falseticker) in DEMO_SERVERS {
        let server = RunningServer::start(ServerSpec::primary(name, refid, offset_ms), truth)?;
        lines.push(ServerLine {
            name: name.to_owned(),
            address: server.addr(),
            offset_ms: Some(server.offset().to_seconds_f64() * 1e3),
            falseticker,
        });
        running.push(server);
    }
    Ok((running, lines))
}

fn run(options: &Options) -> Result<Summary, String> {
    let report = Reporter::new(options.json);
    let truth = TrueTime::start();
    let (servers, lines) =
        start_servers(options, truth).map_err(|e| format!("cannot start the servers: {e}"))?;
    let initial_offset = NtpDuration::from_seconds_f64(options.initial_offset)
        .map_err(|e| format!("--initial-offset: {e}"))?;
    let mut clock = ModelClock::new(truth, initial_offset, options.drift);
    report.start(
        &lines,
        options.initial_offset,
        clock.drift(),
        options.duration.as_secs_f64(),
    );

    let origin = std::time::Instant::now();
    let mono = || Instant::from_std(origin, std::time::Instant::now());
    let elapsed = || origin.elapsed().as_secs_f64();
    // The defaults a daemon would use, polling faster so that the demo
    // is short: no drift file, RFC 5905 selection limits. The first
    // selection waits until every server answered, so the liar is out of
    // it from the start.
    let config = SystemConfig::default().with_poll_range(MIN_POLL, MAX_POLL);
    let seed = options.seed.unwrap_or_else(random_seed);
    let mut system = System::new(
        config,
        mono(),
        clock.now(),
        ChaCha12Rng::seed_from_u64(seed),
    )
    .map_err(|e| format!("bad configuration: {e}"))?;
    let mut ids: Vec<(SourceId, SocketAddr)> = Vec::new();
    for line in &lines {
        let id = system
            .add_source(line.address)
            .map_err(|e| format!("cannot add {}: {e}", line.address))?;
        ids.push((id, line.address));
    }
    let name = |id: u64| {
        ids.iter()
            .find(|(source, _)| source.get() == id)
            .map_or_else(|| format!("#{id}"), |(_, addr)| addr.to_string())
    };

    let socket =
        UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("cannot bind 127.0.0.1: {e}"))?;
    let mut buf = Vec::with_capacity(64);
    let mut datagram = [0u8; 2048];
    let deadline = origin + options.duration;
    let mut next_table = origin + options.table_every;
    let (mut requests, mut replies, mut refused) = (0u64, 0u64, 0u64);
    let mut adjustments = 0u32;
    let mut last_adjust: Option<ClockAdjustment> = None;
    let mut panicked = false;

    loop {
        // Drain the output: send requests, apply clock actions at once.
        let wake = loop {
            match system.poll_output(mono(), clock.now(), &mut buf) {
                Output::Transmit {
                    destination, len, ..
                } => {
                    if let Err(e) = socket.send_to(&buf[..len], destination) {
                        eprintln!("demo: send to {destination} failed: {e}");
                    }
                    requests += 1;
                }
                Output::Event(event) => {
                    match event {
                        Event::ClockStep(offset) => clock.step(offset),
                        Event::ClockAdjust(adjust) => {
                            clock.set_correction(adjust.rate());
                            adjustments += 1;
                            if !options.all_adjustments && !noteworthy(last_adjust, adjust) {
                                continue;
                            }
                            last_adjust = Some(adjust);
                        }
                        Event::Leap(LeapEvent::Apply(leap)) => clock.step(leap.step()),
                        Event::Panic { .. } => panicked = true,
                        _ => {}
                    }
                    report.event(elapsed(), &event, name);
                }
                Output::Timeout(at) => break at,
                _ => {}
            }
        };

        let now = std::time::Instant::now();
        if now >= deadline || panicked {
            break;
        }
        if now >= next_table {
            report.table(elapsed(), &system.peer_table(mono()), clock.error_at(now));
            next_table += options.table_every;
        }

        // Wait for a datagram, the core's timeout, the next table or the end.
        let wait = wake
            .saturating_duration_since(mono())
            .min(next_table.saturating_duration_since(now))
            .min(deadline.saturating_duration_since(now))
            .max(Duration::from_millis(1));
        socket
            .set_read_timeout(Some(wait))
            .map_err(|e| format!("socket: {e}"))?;
        match socket.recv_from(&mut datagram) {
            Ok((len, from)) => {
                let input = Input::Datagram {
                    from,
                    data: &datagram[..len],
                    rx_wall: clock.now(),
                };
                // A refused datagram (late, duplicate, spoofed, from an
                // unknown address) changes nothing; it is only counted.
                match system.handle_input(mono(), input) {
                    Ok(_) => replies += 1,
                    Err(_) => refused += 1,
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                system.handle_timeout(mono());
            }
            // An ICMP error from an earlier send (nobody listening there):
            // the source just sees no reply.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(format!("receive failed: {e}")),
        }
    }

    let end = std::time::Instant::now();
    report.table(elapsed(), &system.peer_table(mono()), clock.error_at(end));
    let clock_error = clock.error_at(end);
    let honest: Vec<f64> = servers
        .iter()
        .zip(&lines)
        .filter(|(_, line)| !line.falseticker)
        .map(|(server, _)| server.offset().to_seconds_f64())
        .collect();
    #[allow(clippy::cast_precision_loss, reason = "a handful of servers")]
    let error_vs_honest = (!honest.is_empty())
        .then(|| clock_error - honest.iter().sum::<f64>() / honest.len() as f64);
    let falsetickers: Vec<SocketAddr> = ids
        .iter()
        .filter(|(id, _)| system.tally(*id) == Some(Tally::Falseticker))
        .map(|(_, addr)| *addr)
        .collect();
    let system_peer = system
        .system_peer()
        .and_then(|peer| ids.iter().find(|(id, _)| *id == peer).map(|(_, a)| *a));
    let state = system.system_state();
    for server in servers {
        let name = server.name();
        if server.stop().is_none() {
            eprintln!("demo: server {name} panicked");
        }
    }

    let liar_is_peer = lines
        .iter()
        .any(|line| line.falseticker && Some(line.address) == system_peer);
    let error = error_vs_honest.unwrap_or(clock_error);
    let verdict = if panicked {
        Err("the discipline refused a panic-sized offset".to_owned())
    } else if !system.is_synchronized() {
        Err("not synchronized at the end".to_owned())
    } else if liar_is_peer {
        Err("the falseticker is the system peer".to_owned())
    } else if error.is_nan() || error.abs() >= MAX_FINAL_ERROR {
        Err(format!(
            "the model clock is {:+.3} ms off, not within {} ms",
            error * 1e3,
            MAX_FINAL_ERROR * 1e3
        ))
    } else {
        Ok(())
    };
    Ok(Summary {
        elapsed: elapsed(),
        synchronized: system.is_synchronized(),
        stratum: state.stratum.get(),
        reference_id: state.reference_id.display(state.stratum).to_string(),
        system_peer,
        clock_error,
        error_vs_honest,
        steps: clock.steps(),
        adjustments,
        frequency_ppm: system.discipline().frequency() * 1e6,
        correction_ppm: clock.correction() * 1e6,
        requests,
        replies,
        refused,
        falsetickers,
        verdict,
    })
}

fn main() -> ExitCode {
    if std::env::args()
        .skip(1)
        .any(|arg| arg == "--help" || arg == "-h")
    {
        println!("{}", USAGE);
        return ExitCode::SUCCESS;
    }
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("demo: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(summary) => {
            Reporter::new(options.json).summary(&summary);
            if summary.verdict.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(message) => {
            eprintln!("demo: {message}");
            ExitCode::from(1)
        }
    }
}
