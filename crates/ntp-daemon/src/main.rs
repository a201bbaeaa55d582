//! `ntp-daemon`: a custom time daemon built from the NTP building blocks.
//!
//! It shows how the crates fit together in a program that keeps a clock:
//! `ntp-client`'s [`System`] polls the servers, selects, clusters,
//! combines and runs the RFC 5905 discipline; this program owns the
//! sockets (std UDP sockets, kernel receive timestamps through `nix`), the
//! clock (one small [`Clock`] seam: a model clock, or the kernel's
//! CLOCK_REALTIME through `clock-steering`), the drift file, the log, and
//! optionally an `ntp-server` that serves the system variables, with NTS
//! through an NTS-KE listener on its own thread (`nts_server.rs`).
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

mod clock;
mod drift;
mod log;
mod net;
mod nts;
mod nts_server;
mod options;
mod step_watch;
mod timex;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::collections::HashMap;
use std::io;
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::sync::Arc;

use ntp_client::ntp_auth::KeyStore;
use ntp_client::ntp_proto::{Date, Timestamp};
use ntp_client::{
    Event, Input, Instant, LeapEvent, NtsKeFailed, Output, SourceId, System, SystemConfig,
};
use rand_chacha::{ChaCha12Rng, ChaCha20Rng};
use rand_core::{RngCore, SeedableRng};
use serde_json::json;

use crate::clock::{Clock, KernelClock, ModelClock};
use crate::log::{Log, round};
use crate::net::{MAX_DATAGRAM, TimestampedSocket};
use crate::options::{ArgsError, ClockKind, Options};
use crate::step_watch::StepWatch;

/// The longest wait in `poll(2)`, so that a signal that arrives between
/// the flag check and the wait is seen soon.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Members of each `--pool`: 4, chrony's default `maxsources` and the
/// number of addresses the NTP Pool Project's names return.
const POOL_SIZE: usize = 4;

/// Capacity of the key store read from `--keys`: far more keys than a
/// daemon's servers and client groups use (ntpd's key ids stop at 65535,
/// but files hold a handful).
const MAX_KEYS: usize = 1024;

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

/// The sockets: one client socket per address family in use, and the
/// serving socket.
struct Sockets {
    v4: Option<TimestampedSocket>,
    v6: Option<TimestampedSocket>,
    serve: Option<TimestampedSocket>,
}

impl Sockets {
    fn open(options: &Options) -> io::Result<Self> {
        let client = |any: IpAddr| -> io::Result<Option<TimestampedSocket>> {
            let used = options
                .servers
                .iter()
                .any(|(_, address, _)| address.is_ipv4() == any.is_ipv4());
            if used {
                return TimestampedSocket::bind(SocketAddr::new(any, 0)).map(Some);
            }
            // A pool, or the NTP server an NTS-KE server names, may be of
            // either family: take the socket if the host has that family,
            // go without it otherwise (such addresses are then skipped).
            if options.pools.is_empty() && options.nts.is_empty() {
                return Ok(None);
            }
            Ok(TimestampedSocket::bind(SocketAddr::new(any, 0)).ok())
        };
        Ok(Self {
            v4: client(IpAddr::V4(Ipv4Addr::UNSPECIFIED))?,
            v6: client(IpAddr::V6(Ipv6Addr::UNSPECIFIED))?,
            serve: options.serve.map(TimestampedSocket::bind).transpose()?,
        })
    }

    fn client_for(&self, address: SocketAddr) -> Option<&TimestampedSocket> {
        if address.is_ipv4() {
            self.v4.as_ref()
        } else {
            self.v6.as_ref()
        }
    }

    /// Every socket, with whether it is the serving one.
    fn all(&self) -> Vec<(&TimestampedSocket, bool)> {
        let clients = self.v4.iter().chain(&self.v6).map(|socket| (socket, false));
        clients
            .chain(self.serve.iter().map(|socket| (socket, true)))
            .collect()
    }
}

/// The discipline's rate limits from the clock's range: the whole range
/// for the frequency, so that an oscillator far off its nominal frequency
/// is followed, and chronyd's 83 333 ppm ([`ntp_discipline::FAST_SLEW`])
/// for the phase slew, so that the default 0.1 s start offset is gone in
/// seconds, not minutes. `--makestep` lifts the panic threshold: the
/// operator wants large offsets stepped.
fn clock_limits(discipline: &mut ntp_discipline::Config, max_rate: f64, options: &Options) {
    discipline.max_rate = max_rate;
    discipline.max_frequency = max_rate;
    discipline.max_slew = ntp_discipline::FAST_SLEW.min(max_rate);
    if let Some(rule) = options.make_step {
        discipline.make_step = Some(rule);
        discipline.panic_threshold = None;
    }
}

/// Why the loop ended.
#[derive(Clone, Copy, Debug)]
enum StopReason {
    Duration,
    Signal,
}

fn run(options: &Options, clock: &mut dyn Clock) -> io::Result<()> {
    let log = Log {
        json: options.json,
        verbose: options.verbose,
    };
    let origin = std::time::Instant::now();
    let mono = || Instant::from_std(origin, std::time::Instant::now());
    // Seconds since start, for the log: the same monotonic clock.
    let elapsed = || mono().as_secs_f64();

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }

    let initial_drift = match &options.drift_file {
        Some(path) => drift::read(path, clock.max_rate()).unwrap_or_else(|error| {
            log.warn(0.0, &format!("drift file ignored: {error}"));
            None
        }),
        None => None,
    };
    let keys: Option<KeyStore<MAX_KEYS>> = match &options.keys {
        Some((path, format)) => Some(KeyStore::load(path, *format).map_err(|error| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("--keys {}: {error}", path.display()),
            )
        })?),
        None => None,
    };
    let mut config = SystemConfig::default().with_poll_range(options.min_poll, options.max_poll);
    let initial_frequency = initial_drift.map(|drift| drift.frequency);
    config.initial_frequency = initial_frequency;
    config.initial_frequency_sd = initial_drift.and_then(|drift| drift.sd);
    config.source.iburst = options.iburst;
    config.source.burst = options.burst;
    config.source.delay = options.delay;
    config.min_sources = options.min_sources;
    clock_limits(&mut config.discipline, clock.max_rate(), options);
    let rng = match options.seed {
        Some(seed) => ChaCha12Rng::seed_from_u64(seed),
        None => ChaCha12Rng::from_os_rng(),
    };
    let mut system = System::new(config, mono(), clock.now()?, rng)
        .map_err(|error| io::Error::other(format!("configuration: {error}")))?;
    let mut names = HashMap::new();
    for (name, address, key_id) in &options.servers {
        let mut source = system.config().source.clone();
        if let Some(key_id) = key_id {
            let key = keys
                .as_ref()
                .and_then(|keys| keys.get(*key_id))
                .ok_or_else(|| {
                    io::Error::other(format!("--server {name}: no key {key_id} in --keys"))
                })?;
            source.sntp.key = Some(key.clone());
        }
        let id = system
            .add_source_with(*address, source)
            .map_err(|error| io::Error::other(format!("--server {name}: {error}")))?;
        let auth = key_id.map_or_else(String::new, |id| format!(", key {id}"));
        names.insert(id, format!("{name} ({address}{auth})"));
    }
    for name in &options.pools {
        system
            .add_pool(name, POOL_SIZE)
            .map_err(|error| io::Error::other(format!("--pool {name}: {error}")))?;
    }
    let nts_config = match &options.nts_ca {
        Some(path) if !options.nts.is_empty() => Some(
            ntp_nts::tls::client_config_from_pem_file(path).map_err(|error| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("--nts-ca: {error}"))
            })?,
        ),
        _ => None,
    };
    for (host, port) in &options.nts {
        let id = system
            .add_nts_source(host, *port)
            .map_err(|error| io::Error::other(format!("--nts {host}:{port}: {error}")))?;
        names.insert(id, format!("{host}:{port} (NTS)"));
    }
    let name_of = |names: &HashMap<SourceId, String>, id: u64| {
        names
            .get(&SourceId::new(id))
            .cloned()
            .unwrap_or_else(|| format!("#{id}"))
    };

    let sockets = Sockets::open(options)?;
    let mut server = match options.serve {
        Some(_) => {
            let mut server = ntp_server::Server::new(
                &ntp_server::ServerConfig::default(),
                system.system_state(),
            )
            .map_err(|error| io::Error::other(format!("server: {error}")))?;
            // Clients that sign their requests with a key of the file get
            // signed answers; the others are answered as before.
            if let Some(keys) = &keys {
                server.set_keys(keys.clone());
            }
            Some(server)
        }
        None => None,
    };
    // NTS for --serve: the NTS-KE listener hands out cookies under master
    // keys the server shares, and names the --serve port.
    let ke_listener =
        match (&options.nts_serve, &mut server, &sockets.serve) {
            (Some(nts), Some(server), Some(socket)) => {
                let config = ntp_nts::tls::server_config_from_pem_files(&nts.cert, &nts.key)
                    .map_err(|error| {
                        io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("--nts-cert/--nts-key: {error}"),
                        )
                    })?;
                let ntp_port = socket.local_addr()?.port();
                let (listener, cookie_keys) =
                    nts_server::KeListener::start(nts.listen, config, ntp_port, log, origin)
                        .map_err(|error| {
                            io::Error::new(
                                error.kind(),
                                format!("--nts-ke-listen {}: {error}", nts.listen),
                            )
                        })?;
                // The nonces of answers and fresh cookies: never from --seed,
                // which makes the client's requests reproducible.
                let mut seed = [0; ntp_server::NTS_SEED_LEN];
                ChaCha20Rng::from_os_rng().fill_bytes(&mut seed);
                server.set_nts(cookie_keys, seed);
                Some((listener, ntp_port))
            }
            _ => None,
        };
    let timestamps = if sockets
        .all()
        .iter()
        .all(|(socket, _)| socket.kernel_timestamps())
    {
        "kernel (SO_TIMESTAMPING, software)"
    } else {
        "clock read after wakeup (SO_TIMESTAMPING refused)"
    };
    log.line(
        0.0,
        "start",
        &format!(
            "start: clock {}, {} server(s), {} NTS server(s), poll {}..{}, iburst {}, initial frequency {}, receive timestamps: {timestamps}{}",
            clock.name(),
            options.servers.len(),
            options.nts.len(),
            options.min_poll,
            options.max_poll,
            options.iburst,
            initial_frequency.map_or_else(|| "unknown".to_owned(), |f| format!("{:+.3} ppm", f * 1e6)),
            options
                .serve
                .map_or_else(String::new, |address| format!(", serving on {address}")),
        ),
        json!({
            "clock": clock.name(),
            "servers": options.servers.iter().map(|(n, a, _)| format!("{n} ({a})")).collect::<Vec<_>>(),
            "nts": options.nts.iter().map(|(h, p)| format!("{h}:{p}")).collect::<Vec<_>>(),
            "min_poll": options.min_poll,
            "max_poll": options.max_poll,
            "iburst": options.iburst,
            "initial_frequency_ppm": initial_frequency.map(|f| f * 1e6),
            "receive_timestamps": timestamps,
            "serve": options.serve.map(|a| a.to_string()),
        }),
    );
    let mut ke_listener = ke_listener.map(|(listener, ntp_port)| {
        log.line(
            0.0,
            "nts_ke_listen",
            &format!(
                "NTS-KE listening on {}, NTP port {ntp_port}",
                listener.local_addr()
            ),
            json!({
                "address": listener.local_addr().to_string(),
                "ntp_port": ntp_port,
            }),
        );
        listener
    });

    let mut buf = Vec::with_capacity(MAX_DATAGRAM);
    let mut datagram = [0u8; MAX_DATAGRAM];
    let mut reply = [0u8; MAX_DATAGRAM];
    let table_every = options.table_every.as_secs_f64();
    let mut next_table = table_every;
    let mut next_drift = drift::WRITE_INTERVAL;
    let mut frequency_known = initial_frequency.is_some();
    let mut step_watch = StepWatch::default();
    // The rate the clock can run at against the monotonic one: its
    // correction range, and the model's own drift.
    let clock_rate = clock.max_rate() + options.model_drift.abs();
    let reason = loop {
        watch_steps(&mut step_watch, &mut system, clock, clock_rate, log, mono())?;
        // Drain the system's output, applying every clock action at once.
        let wake = loop {
            match system.poll_output(mono(), clock.now()?, &mut buf) {
                Output::Transmit {
                    destination, len, ..
                } => {
                    let Some(socket) = sockets.client_for(destination) else {
                        continue;
                    };
                    if let Err(error) = socket.send_to(buf.get(..len).unwrap_or(&[]), destination) {
                        // Like a lost packet: the source's reply timeout
                        // and reach register deal with it.
                        log.warn(elapsed(), &format!("send to {destination}: {error}"));
                    }
                }
                Output::Event(event) => {
                    log.event(elapsed(), &event, |id| name_of(&names, id));
                    match event {
                        Event::PoolMemberAdded { pool, id, address } => {
                            let pool = system.pool_name(pool).unwrap_or("pool");
                            names.insert(id, format!("{pool} ({address})"));
                        }
                        Event::ClockStep(offset) => {
                            clock.step(offset)?;
                            step_watch.rebase();
                        }
                        Event::ClockAdjust(adjust) => clock.set_rate(adjust.rate())?,
                        Event::Leap(LeapEvent::Apply(leap)) => {
                            clock.step(leap.step())?;
                            step_watch.rebase();
                        }
                        Event::Synchronized { .. } => frequency_known = true,
                        Event::Panic { offset } => {
                            return Err(io::Error::other(format!(
                                "offset {offset:+.3} s beyond the panic threshold; \
                                 set the clock by hand and start again"
                            )));
                        }
                        _ => {}
                    }
                }
                Output::Timeout(at) => break at,
                Output::NtsKe { source } => {
                    let Some((host, port)) = system
                        .nts_ke_target(source)
                        .map(|(host, port)| (host.to_owned(), port))
                    else {
                        continue;
                    };
                    let name = name_of(&names, source.get());
                    // Blocking, for at most nts::KE_TIMEOUT: NTS-KE runs
                    // at start and when cookies run out, rarely.
                    let result = match &nts_config {
                        Some(config) => nts::key_exchange(config, &host, port, |address| {
                            sockets.client_for(address).is_some()
                        }),
                        None => Err("no --nts-ca".to_owned()),
                    };
                    match result {
                        Ok(established) => {
                            let address = established.outcome.ntp_address;
                            log.line(
                                elapsed(),
                                "nts_ke",
                                &format!(
                                    "NTS-KE {host}:{port}: {} cookie(s), {}, NTP server {address}{}",
                                    established.cookies,
                                    established.algorithm,
                                    established
                                        .named_server
                                        .as_ref()
                                        .map_or_else(String::new, |named| format!(" (named {named})")),
                                ),
                                json!({
                                    "source": name,
                                    "server": format!("{host}:{port}"),
                                    "ok": true,
                                    "cookies": established.cookies,
                                    "aead": established.algorithm.to_string(),
                                    "ntp_server": address.to_string(),
                                    "named_server": established.named_server,
                                }),
                            );
                            if let Err(error) =
                                system.handle_nts_ke(mono(), source, Ok(established.outcome))
                            {
                                log.warn(elapsed(), &format!("NTS-KE {host}:{port}: {error}"));
                            }
                            names.insert(source, format!("{host}:{port} (NTS, {address})"));
                        }
                        Err(error) => {
                            log.line(
                                elapsed(),
                                "nts_ke",
                                &format!("NTS-KE {host}:{port}: failed: {error}; retried later"),
                                json!({
                                    "source": name,
                                    "server": format!("{host}:{port}"),
                                    "ok": false,
                                    "error": error,
                                }),
                            );
                            let _ = system.handle_nts_ke(mono(), source, Err(NtsKeFailed));
                        }
                    }
                }
                Output::Resolve { pool } => {
                    let name = system.pool_name(pool).unwrap_or_default().to_owned();
                    // Blocking, like the resolution of --server at start:
                    // a daemon asks rarely (at most every 64 s per pool).
                    match name.to_socket_addrs() {
                        Ok(addresses) => {
                            let usable: Vec<SocketAddr> = addresses
                                .filter(|a| sockets.client_for(*a).is_some())
                                .collect();
                            let added = system.handle_resolved(mono(), pool, &usable).unwrap_or(0);
                            log.note(
                                elapsed(),
                                &format!(
                                    "pool {name}: {} address(es), {added} new member(s)",
                                    usable.len()
                                ),
                            );
                        }
                        Err(error) => {
                            log.warn(elapsed(), &format!("pool {name}: cannot resolve: {error}"));
                        }
                    }
                }
                _ => {}
            }
        };
        if let Some(server) = &mut server {
            server.set_system_state(system.system_state());
            // A rotation of the cookie master keys by the NTS-KE thread.
            if let Some(keys) = ke_listener.as_mut().and_then(|ke| ke.rotated_keys()) {
                server.set_cookie_keys(keys);
            }
        }

        let now = elapsed();
        if stop.load(Ordering::Relaxed) {
            break StopReason::Signal;
        }
        let remaining = options
            .duration
            .map(|duration| duration.as_secs_f64() - now);
        if remaining.is_some_and(|r| r <= 0.0) {
            break StopReason::Duration;
        }
        if now >= next_table {
            log.table(now, &system.peer_table(mono()));
            next_table += table_every;
        }
        if now >= next_drift {
            next_drift += drift::WRITE_INTERVAL;
            if let (Some(path), true) = (&options.drift_file, frequency_known) {
                save_drift(log, now, path, system.discipline().frequency());
            }
        }

        // Wait for a datagram, the system's timeout or the next chore.
        let mut wait = wake.saturating_duration_since(mono()).min(MAX_WAIT);
        for chore in [Some(next_table - now), Some(next_drift - now), remaining]
            .into_iter()
            .flatten()
        {
            wait = wait.min(Duration::try_from_secs_f64(chore.max(0.0)).unwrap_or(Duration::ZERO));
        }
        let all = sockets.all();
        let waiting: Vec<&TimestampedSocket> = all.iter().map(|(socket, _)| *socket).collect();
        let ready = net::wait(&waiting, wait)?;
        watch_steps(&mut step_watch, &mut system, clock, clock_rate, log, mono())?;
        for (&(socket, is_serve), _) in all.iter().zip(ready).filter(|(_, ready)| *ready) {
            let received = match socket.recv(&mut datagram) {
                Ok(received) => received,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(error) => {
                    log.warn(elapsed(), &format!("receive: {error}"));
                    continue;
                }
            };
            let rx_wall = match received.kernel_time {
                Some(time) => clock.reading_at_realtime(time)?,
                None => clock.now()?,
            };
            let data = datagram.get(..received.len).unwrap_or(&[]);
            if is_serve {
                if let Some(server) = &mut server {
                    answer(
                        server,
                        socket,
                        &received,
                        data,
                        rx_wall,
                        mono(),
                        clock,
                        &mut reply,
                    )?;
                }
                continue;
            }
            let input = Input::Datagram {
                from: received.from,
                data,
                rx_wall,
            };
            if let Err(error) = system.handle_input(mono(), input) {
                if log.verbose {
                    log.line(
                        elapsed(),
                        "refused",
                        &format!("refused a datagram from {}: {error}", received.from),
                        json!({ "from": received.from.to_string(), "error": error.to_string() }),
                    );
                }
            }
        }
        system.handle_timeout(mono());
    };

    // No more NTS-KE: the accept loop ends (exchanges under way finish
    // within their timeouts, or with the process).
    drop(ke_listener);

    // Leave the kernel free-running on the frequency estimate, without the
    // phase slew of the moment; keep the estimate for the next start.
    let frequency = system.discipline().frequency();
    clock.set_rate(frequency)?;
    if let (Some(path), true) = (&options.drift_file, frequency_known) {
        save_drift(log, elapsed(), path, frequency);
    }
    log.table(elapsed(), &system.peer_table(mono()));
    log.line(
        elapsed(),
        "stop",
        &format!(
            "stop ({reason:?}): frequency {:+.4} ppm, {}",
            frequency * 1e6,
            if system.is_synchronized() {
                "synchronized"
            } else {
                "unsynchronized"
            }
        ),
        json!({
            "reason": format!("{reason:?}"),
            "frequency_ppm": round(frequency * 1e6, 6),
            "synchronized": system.is_synchronized(),
        }),
    );
    Ok(())
}

/// Reports a step of the clock made by somebody else (see `step_watch`)
/// to the system, and logs it.
fn watch_steps(
    watch: &mut StepWatch,
    system: &mut System<ChaCha12Rng>,
    clock: &dyn Clock,
    max_rate: f64,
    log: Log,
    now: Instant,
) -> io::Result<()> {
    if let Some(by) = watch.observe(now, clock.now()?, max_rate) {
        let seconds = by.to_seconds_f64();
        log.line(
            now.as_secs_f64(),
            "external_step",
            &format!("the clock was stepped by {seconds:+.6} s by somebody else"),
            json!({ "offset_s": seconds }),
        );
        system.handle_clock_stepped(by);
    }
    Ok(())
}

fn save_drift(log: Log, t: f64, path: &std::path::Path, frequency: f64) {
    match drift::write(path, frequency) {
        Ok(()) => log.line(
            t,
            "drift",
            &format!("drift file: {:+.4} ppm written", frequency * 1e6),
            json!({ "frequency_ppm": frequency * 1e6 }),
        ),
        Err(error) => log.warn(t, &format!("drift file {}: {error}", path.display())),
    }
}

/// Answers one client on the serving socket with `ntp-server`.
#[allow(clippy::too_many_arguments, reason = "plain plumbing of one request")]
fn answer(
    server: &mut ntp_server::Server,
    socket: &TimestampedSocket,
    received: &net::Received,
    data: &[u8],
    rx_wall: Date,
    now: Instant,
    clock: &dyn Clock,
    out: &mut [u8],
) -> io::Result<()> {
    if let ntp_server::Action::Respond(reply) =
        server.handle(data, received.from, Timestamp::from(rx_wall), now, out)
    {
        let transmit = Timestamp::from(clock.now()?);
        let packet = server.finish(&reply, out, transmit);
        // A failed send is a lost reply; the client asks again.
        let _ = socket.send_to(packet, received.from);
    }
    Ok(())
}
