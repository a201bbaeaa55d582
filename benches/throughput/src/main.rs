//! Throughput runner: our server program (`ntp-daemon --serve`) against
//! chronyd on loopback, in interleaved rounds, with one load generator
//! (issue 24).
//!
//! Each round starts a fresh server (ours, then chronyd, then ours...),
//! pins it to CPU 0 and the generator to CPU 1 (on a machine with two
//! CPUs or more), lets the generator keep [`WINDOW`] requests in flight
//! for a warm-up and then for the measured time, and reads:
//! - the answers per second the generator got;
//! - the server's CPU time per answer: its threads' time on a CPU
//!   (`/proc/PID/task/*/schedstat`, nanoseconds) over the measured time,
//!   divided by the answers;
//! - the ratio of ours to chronyd's CPU per answer in the same round
//!   pair.
//!
//! Request kinds: `plain` (48 octets), `aes128` (AES128-CMAC, RFC 8573)
//! and `md5` (a keyed MD5 MAC), both servers reading the same chrony key
//! file, and `nts` (NTS, RFC 8915, with AEAD_AES_SIV_CMAC_256: one cookie
//! per request, one back per answer), with the keys and cookies of one
//! NTS-KE with the round's server on PORT+1 (a self-signed certificate
//! made for the run; both servers always serve NTS-KE). Both serve a
//! local clock at stratum 1 with every client allowed and no rate limit
//! (chronyd's default; ours `--default-action allow`). chronyd runs with
//! `-x`: it never touches the clock.
//!
//! The figures are CPU per answer, not answers per second: on a two-core
//! machine the generator, which sends and receives every datagram, is as
//! busy as the server, and the two compete for the same caches. A short
//! run (`--duration 1 --rounds 1`) is the CI smoke test: no thresholds on
//! a shared machine.

mod generator;
mod server;

use core::fmt::Write as _;
use core::time::Duration;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::generator::Kind;
use crate::server::{Program, Servers};

/// Requests in flight: enough to keep the server busy between the
/// generator's system calls, few enough that none is dropped by a
/// socket buffer.
pub(crate) const WINDOW: usize = 32;

const USAGE: &str = "usage: throughput [--duration SECONDS] [--warmup SECONDS] [--rounds N] \
[--kinds plain,aes128,md5,nts] [--daemon PATH] [--chronyd PATH] [--port N] [--out FILE]";

/// What the command line says.
#[derive(Debug)]
struct Options {
    duration: Duration,
    warmup: Duration,
    rounds: usize,
    kinds: Vec<Kind>,
    daemon: PathBuf,
    chronyd: Option<PathBuf>,
    port: u16,
    out: Option<PathBuf>,
}

fn parse() -> Result<Options, String> {
    use lexopt::prelude::*;
    let mut options = Options {
        duration: Duration::from_secs(5),
        warmup: Duration::from_millis(500),
        rounds: 3,
        kinds: vec![Kind::Plain, Kind::Aes128, Kind::Md5, Kind::Nts],
        daemon: PathBuf::from("target/release/ntp-daemon"),
        chronyd: server::find_chronyd(),
        port: 11_923,
        out: None,
    };
    let mut parser = lexopt::Parser::from_env();
    let seconds = |value: String, flag: &str| {
        value
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0 && *s <= 600.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("{flag} {value:?}: seconds, 0 to 600"))
    };
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        let value = |parser: &mut lexopt::Parser| -> Result<String, String> {
            parser
                .value()
                .map_err(|e| e.to_string())?
                .into_string()
                .map_err(|_| String::from("not UTF-8"))
        };
        match arg {
            Long("duration") => options.duration = seconds(value(&mut parser)?, "--duration")?,
            Long("warmup") => options.warmup = seconds(value(&mut parser)?, "--warmup")?,
            Long("rounds") => {
                let text = value(&mut parser)?;
                options.rounds = text
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| format!("--rounds {text:?}: 1 to 100"))?;
            }
            Long("kinds") => {
                options.kinds = value(&mut parser)?
                    .split(',')
                    .map(Kind::parse)
                    .collect::<Result<_, _>>()?;
            }
            Long("daemon") => options.daemon = value(&mut parser)?.into(),
            Long("chronyd") => options.chronyd = Some(value(&mut parser)?.into()),
            Long("port") => {
                let text = value(&mut parser)?;
                options.port = text
                    .parse()
                    .ok()
                    .filter(|p| *p > 1024 && *p < u16::MAX)
                    .ok_or_else(|| {
                        format!("--port {text:?}: 1025 to 65534 (NTS-KE on the next)")
                    })?;
            }
            Long("out") => options.out = Some(value(&mut parser)?.into()),
            Short('h') | Long("help") => return Err(USAGE.to_owned()),
            _ => return Err(format!("{}; {USAGE}", arg.unexpected())),
        }
    }
    Ok(options)
}

/// One measured round of one server.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Round {
    pub(crate) answers: u64,
    pub(crate) seconds: f64,
    pub(crate) cpu_seconds: f64,
    pub(crate) lost: u64,
}

impl Round {
    fn per_second(&self) -> f64 {
        self.answers as f64 / self.seconds
    }

    fn cpu_per_answer_us(&self) -> f64 {
        if self.answers == 0 {
            return f64::NAN;
        }
        self.cpu_seconds / self.answers as f64 * 1e6
    }
}

fn main() -> ExitCode {
    let options = match parse() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("throughput: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(table) => {
            print!("{table}");
            if let Some(path) = &options.out {
                if let Err(error) = std::fs::write(path, &table) {
                    eprintln!("throughput: {}: {error}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("throughput: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Every round of every kind; the table.
fn run(options: &Options) -> Result<String, String> {
    let servers = Servers::prepare(&options.daemon, options.chronyd.as_deref(), options.port)?;
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| requests | round | ours: answers/s | ours: CPU per answer | chronyd: answers/s | chronyd: CPU per answer | ours / chronyd |"
    );
    let _ = writeln!(table, "|---|---|---|---|---|---|---|");
    let load_before = server::load_average();
    for &kind in &options.kinds {
        for round in 1..=options.rounds {
            let ours = measure(&servers, Program::Ours, kind, options)?;
            let chronyd = match servers.has_chronyd() {
                true => Some(measure(&servers, Program::Chronyd, kind, options)?),
                false => None,
            };
            let (chronyd_rate, chronyd_cpu, ratio) = match chronyd {
                Some(c) => (
                    format!("{:.0}", c.per_second()),
                    format!("{:.2} us", c.cpu_per_answer_us()),
                    format!("{:.2}", ours.cpu_per_answer_us() / c.cpu_per_answer_us()),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            let _ = writeln!(
                table,
                "| {} | {round} | {:.0} | {:.2} us | {chronyd_rate} | {chronyd_cpu} | {ratio} |",
                kind.name(),
                ours.per_second(),
                ours.cpu_per_answer_us(),
            );
            eprintln!(
                "throughput: {} round {round}: ours {:.0}/s {:.2} us (lost {}), chronyd {}",
                kind.name(),
                ours.per_second(),
                ours.cpu_per_answer_us(),
                ours.lost,
                chronyd.map_or_else(
                    || "-".to_owned(),
                    |c| format!(
                        "{:.0}/s {:.2} us (lost {})",
                        c.per_second(),
                        c.cpu_per_answer_us(),
                        c.lost
                    )
                ),
            );
        }
    }
    let load_after = server::load_average();
    let _ = writeln!(
        table,
        "\n{} CPUs; load average {load_before} before, {load_after} after; {} s measured per round after {} s of warm-up, {WINDOW} requests in flight.",
        server::cpus(),
        options.duration.as_secs_f64(),
        options.warmup.as_secs_f64(),
    );
    Ok(table)
}

/// One round of `program` with requests of `kind`.
fn measure(
    servers: &Servers,
    program: Program,
    kind: Kind,
    options: &Options,
) -> Result<Round, String> {
    let mut running = servers.start(program)?;
    let result = generator::drive(
        &servers.target(),
        kind,
        options.warmup,
        options.duration,
        || running.cpu_seconds(),
    );
    running.stop();
    result
}
