//! `ntp-daemon`: a custom time daemon built from the NTP building blocks.
//!
//! It shows how the crates fit together in a program that keeps a clock:
//! `ntp-client`'s [`System`](ntp_client::System) polls the servers, selects, clusters,
//! combines and runs the RFC 5905 discipline; this program owns the
//! sockets (std UDP sockets, kernel receive timestamps through `nix`), the
//! clock (one small [`Clock`] seam: a model clock, or the kernel's
//! CLOCK_REALTIME through `clock-steering`), the drift file, the log, and
//! optionally an `ntp-server` that serves the system variables, with NTS
//! through an NTS-KE listener on its own thread (`nts_server.rs`).
//!
//! Where things are: `options.rs` reads the command line; `setup.rs`
//! builds the key store, the client system, the server and the NTS-KE
//! service; `daemon.rs` is the loop, in named parts (output, events,
//! chores, wait, receive, serve, and the end that leaves the clock on its
//! frequency); `background.rs` runs NTS-KE exchanges and pool lookups on
//! threads of their own; `clock.rs`, `net.rs`, `drift.rs`,
//! `step_watch.rs` and `master_keys.rs` are the clock, the sockets, the
//! drift file, steps made by others and the NTS master key file, the two
//! files written through `files.rs`.
//!
//! ```text
//! # Steer a model clock (the system clock is never touched):
//! cargo run --release -p ntp-daemon -- --server 127.0.0.1:11123 --min-poll 1 --max-poll 3
//! # Steer the kernel clock (root), keep a drift file, serve on port 123:
//! ntp-daemon --clock kernel --server time.example:123 --drift-file /var/lib/ntp-daemon/drift \
//!     --serve 0.0.0.0:123
//! ```
//!
//! The loop is a plain `poll(2)` over std sockets, so the program also
//! runs under clknetsim (which simulates `poll()`, not epoll); the accuracy
//! runner in `benches/accuracy` measures it there beside chronyd. Clock
//! actions are applied exactly as `ntp-discipline` asks: a step adds the
//! offset at once (`ADJ_SETOFFSET`), an adjustment runs the clock at
//! [`ClockAdjustment::rate`](ntp_client::ClockAdjustment::rate) until the
//! next one (the tick length and `ADJ_FREQUENCY`, ±10 %, the kernel's own
//! PLL off; with the default
//! Kalman discipline that is one call per update and one at the end of its
//! phase slew, not one a second), a
//! leap second is applied as a step when the discipline says it is due.

mod background;
mod clock;
mod daemon;
mod drift;
mod files;
mod hwclock;
mod log;
mod master_keys;
mod net;
mod nts;
mod nts_server;
mod options;
mod refclock_options;
mod refclocks;
mod serving;
mod setup;
mod step_watch;
mod timex;
mod txstamp;

use core::sync::atomic::AtomicBool;
use std::io;
use std::process::ExitCode;
use std::sync::Arc;

use ntp_client::Instant;

use crate::background::Background;
use crate::clock::{Clock, KernelClock, ModelClock};
use crate::daemon::Daemon;
use crate::log::Log;
use crate::net::Sockets;
use crate::options::{ArgsError, ClockKind, Options};
use crate::refclocks::Refclocks;

fn main() -> ExitCode {
    let options = match options::parse(std::env::args_os().skip(1)) {
        Ok(options) => options,
        Err(ArgsError::Help) => {
            print!("{}", options::HELP);
            return ExitCode::SUCCESS;
        }
        Err(ArgsError::Bad(message)) => {
            eprintln!("ntp-daemon: {message}");
            return ExitCode::from(2);
        }
    };
    let mut clock: Box<dyn Clock> = match options.clock {
        ClockKind::Model => match ModelClock::new(options.model_offset, options.model_drift) {
            Ok(clock) => Box::new(clock),
            Err(error) => {
                eprintln!("ntp-daemon: model clock: {error}");
                return ExitCode::FAILURE;
            }
        },
        ClockKind::Kernel => match KernelClock::new() {
            Ok(clock) => Box::new(clock),
            Err(error) => {
                eprintln!(
                    "ntp-daemon: --clock kernel: cannot control CLOCK_REALTIME: {error} \
                     (needs CAP_SYS_TIME, for example root)"
                );
                return ExitCode::from(2);
            }
        },
    };
    match run(&options, clock.as_mut()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ntp-daemon: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the daemon from `options` (see `setup`) and runs its loop (see
/// `daemon`) on `clock`.
fn run(options: &Options, clock: &mut dyn Clock) -> io::Result<()> {
    let log = Log {
        json: options.json,
        verbose: options.verbose,
    };
    let origin = std::time::Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let drift = match &options.drift_file {
        Some(path) => drift::read(path, clock.max_rate()).unwrap_or_else(|error| {
            log.warn(0.0, &format!("drift file ignored: {error}"));
            None
        }),
        None => None,
    };
    let keys = setup::load_keys(options)?;
    let now = Instant::from_std(origin, std::time::Instant::now());
    let mut client = setup::client(options, keys.as_deref(), drift, clock, now)?;
    let precision = setup::refclock_precision(options, clock, log);
    let refclocks = Refclocks::open(options, &mut client.system, &mut client.names, precision)?;
    let mut sockets = Sockets::open(options)?;
    let mut server = setup::server(options, keys.as_deref(), client.system.system_state())?;
    setup::log_start(log, options, clock, &sockets, drift.map(|d| d.frequency));
    let ke_listener = setup::nts_service(options, server.as_mut(), &sockets, log, origin)?;
    let serving = setup::serving(server, &mut sockets, clock, log, origin)?;
    let hwclock = setup::hwclock(options, log)?;
    Daemon {
        options,
        log,
        clock,
        origin,
        stop,
        system: client.system,
        names: client.names,
        background: Background::new(sockets.families(), client.nts_config),
        sockets,
        serving,
        ke_listener,
        refclocks,
        hwclock,
    }
    .run()
}
