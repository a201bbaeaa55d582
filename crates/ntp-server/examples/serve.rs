//! A UDP NTP server over the `ntp-server` core, serving this machine's
//! clock. It only reads the clock; it never sets it.
//!
//! ```text
//! cargo run --release -p ntp-server --example serve -- --listen 127.0.0.1:11123
//! ```
//!
//! Options:
//!
//! - `--listen ADDR:PORT` (default `127.0.0.1:11123`; port 0 picks one)
//! - `--threads N` worker threads, each with its own `SO_REUSEPORT`
//!   socket on the same port, and its own core (the kernel sends a given
//!   client to the same socket, so per-thread rate limiting holds)
//! - `--stratum N` (default 1), `--refid TEXT` (default `LOCL`)
//! - `--duration SECONDS` stop after that long (default: until Ctrl-C)
//! - `--default-action ACTION` (`allow`, `ignore`, `deny`, `restrict`,
//!   `limited`; default `allow`), `--rule PREFIX=ACTION` (repeatable)
//! - `--rate INTERVAL,BURST,LEAK` rate-limiter settings for `limited`
//! - `--symmetric answer|drop` whether symmetric-active (mode 1) requests,
//!   as Windows' W32Time sends, get a mode-2 answer (default `answer`)
//! - `--keys FILE` symmetric keys (RFC 5905 section 7.3, RFC 8573): a
//!   request signed with one of them is answered with a MAC from the same
//!   key; `--keys-format chrony|ntpd` says how the file is written
//!   (chrony's `keyfile` or ntpd's `ntp.keys`; default `chrony`). A file
//!   that does not load is one line on stderr and exit code 2.
//! - `--mac-policy nak|drop|answer` what a request whose MAC does not
//!   verify gets: the answer with a crypto-NAK (default, RFC 5905 section
//!   9.2), nothing, or a plain answer
//! - `--nts-ke-listen ADDR:PORT`, `--nts-cert FILE`, `--nts-key FILE`:
//!   Network Time Security (RFC 8915). An NTS-KE server (TLS 1.3 over TCP,
//!   section 4; the certificate chain and private key in PEM) on its own
//!   thread hands out cookies sealed under a master key the NTP workers
//!   share, and names the NTP port when it is not 123 (section 4.1.8; the
//!   NTP server is the same address, as the client sees it). Each
//!   connection gets its own thread, at most 100 at a time and 8 from one
//!   address or IPv6 /64 (ntp-nts's `tls::limits`), and 1 s per read or
//!   write, 3 s in all. The master key is rotated every
//!   `--nts-rotate SECONDS` (default 86400, daily, section 6), keeping
//!   the two previous keys, so cookies live two to three days; the keys
//!   are random at start and live only in memory (a restart makes every
//!   client run NTS-KE again, after an NTS NAK).
//!
//! It prints `listening on ADDR` when ready (then `NTS-KE listening on
//! ADDR` with NTS), and its counters when it stops.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "example code"
)]

use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;
use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use ntp_nts::tls::{self, KeServer, KeServerSettings, ServerOutcome, limits};
use ntp_proto::{Date, RefId, Stratum, SystemState, Timestamp};
use ntp_server::ntp_auth::KeyFileFormat;
use ntp_server::{
    AccessAction, AclRule, Action, CookieKeys, Counters, Instant, KeyStore, MAX_RESPONSE_LEN,
    MacPolicy, NTS_SEED_LEN, Server, ServerConfig, SymmetricPolicy,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use socket2::{Domain, Protocol, Socket, Type};

/// Precision we advertise: 2^-20 s (about 1 µs), what `SystemTime` on
/// Linux resolves comfortably.
const PRECISION: i8 = -20;

/// How often a worker wakes up to check whether it should stop.
const POLL_STOP: Duration = Duration::from_millis(100);

/// The most keys a key file may hold: generous (deployments use a
/// handful); the store is read once, then copied into the server.
const MAX_KEYS: usize = 1024;

struct Options {
    listen: SocketAddr,
    threads: usize,
    stratum: u8,
    refid: RefId,
    duration: Option<Duration>,
    config: ServerConfig,
    keys: Option<String>,
    keys_format: KeyFileFormat,
    nts_ke_listen: Option<SocketAddr>,
    nts_cert: Option<String>,
    nts_key: Option<String>,
    nts_rotate: Duration,
}

const HELP: &str = "\
Serves this machine's clock over NTP with the ntp-server core (never sets it).
  --listen ADDR:PORT      where to listen (default 127.0.0.1:11123; port 0 picks one)
  --threads N             worker threads sharing the port with SO_REUSEPORT (default 1)
  --stratum N             stratum to advertise, 1 to 15 (default 1); 16 plays an
                          unsynchronized server (leap indicator 3)
  --refid TEXT            reference id (default LOCL)
  --duration SECONDS      stop after that long (default: until Ctrl-C)
  --default-action ACTION allow, ignore, deny, restrict or limited (default allow)
  --rule PREFIX=ACTION    an access rule, longest prefix wins (repeatable)
  --rate INTERVAL,BURST,LEAK  rate limiter for limited clients
  --symmetric POLICY      answer (default) or drop symmetric-active (mode 1) requests
  --keys FILE             symmetric keys: a request signed with one of them gets an
                          answer signed with the same key
  --keys-format FORMAT    chrony (default: chrony's keyfile) or ntpd (ntp.keys)
  --mac-policy POLICY     for a request whose MAC does not verify: nak (default:
                          answer with a crypto-NAK), drop, or answer (unsigned)
  --nts-ke-listen ADDR:PORT  serve NTS-KE (RFC 8915) over TLS 1.3 on this TCP address,
                          and answer NTS requests; needs --nts-cert and --nts-key
  --nts-cert FILE         the NTS-KE certificate chain, PEM, leaf first
  --nts-key FILE          its private key, PEM
  --nts-rotate SECONDS    rotate the cookie master key this often (default 86400)
  --help                  this text";

fn usage() -> &'static str {
    "usage: serve [--listen ADDR:PORT] [--threads N] [--stratum N] [--refid TEXT] \
     [--duration SECONDS] [--default-action ACTION] [--rule PREFIX=ACTION]... \
     [--rate INTERVAL,BURST,LEAK] [--symmetric answer|drop] [--keys FILE] \
     [--keys-format chrony|ntpd] [--mac-policy nak|drop|answer] \
     [--nts-ke-listen ADDR:PORT --nts-cert FILE --nts-key FILE [--nts-rotate SECONDS]]"
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        listen: "127.0.0.1:11123".parse().unwrap(),
        threads: 1,
        stratum: 1,
        refid: RefId::LOCL,
        duration: None,
        config: {
            let mut config = ServerConfig::default();
            config.acl_default = AccessAction::Allow;
            config
        },
        keys: None,
        keys_format: KeyFileFormat::Chrony,
        nts_ke_listen: None,
        nts_cert: None,
        nts_key: None,
        nts_rotate: Duration::from_secs(86400),
    };
    while let Some(flag) = args.next() {
        const FLAGS: [&str; 16] = [
            "--listen",
            "--threads",
            "--stratum",
            "--refid",
            "--duration",
            "--default-action",
            "--rule",
            "--rate",
            "--symmetric",
            "--keys",
            "--keys-format",
            "--mac-policy",
            "--nts-ke-listen",
            "--nts-cert",
            "--nts-key",
            "--nts-rotate",
        ];
        if !FLAGS.contains(&flag.as_str()) {
            return Err(format!("unknown flag {flag}; {}", usage()));
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value; {}", usage()))?;
        let bad = |what: &str| format!("{flag} {value:?}: {what}");
        match flag.as_str() {
            "--listen" => options.listen = value.parse().map_err(|_| bad("not ADDR:PORT"))?,
            "--threads" => {
                options.threads = value.parse().map_err(|_| bad("not a number"))?;
                if !(1..=256).contains(&options.threads) {
                    return Err(bad("must be 1 to 256"));
                }
            }
            "--stratum" => {
                options.stratum = value.parse().map_err(|_| bad("not a number"))?;
                if !(1..=16).contains(&options.stratum) {
                    return Err(bad("must be 1 to 16"));
                }
            }
            "--refid" => {
                options.refid = RefId::from_ascii(value.as_bytes())
                    .ok_or_else(|| bad("1 to 4 ASCII characters"))?;
            }
            "--duration" => {
                let seconds: f64 = value.parse().map_err(|_| bad("not a number"))?;
                options.duration =
                    Some(Duration::try_from_secs_f64(seconds).map_err(|_| bad("out of range"))?);
            }
            "--default-action" => {
                options.config.acl_default = value.parse().map_err(|_| bad("unknown action"))?;
            }
            "--rule" => {
                let (prefix, action) = value
                    .split_once('=')
                    .ok_or_else(|| bad("not PREFIX=ACTION"))?;
                options.config.acl_rules.push(AclRule::new(
                    prefix.parse().map_err(|e| bad(&format!("{e}")))?,
                    action.parse().map_err(|_| bad("unknown action"))?,
                ));
            }
            "--rate" => {
                let parts: Vec<&str> = value.split(',').collect();
                let [interval, burst, leak] = parts[..] else {
                    return Err(bad("not INTERVAL,BURST,LEAK"));
                };
                let rate = &mut options.config.rate_limit;
                rate.interval = interval.parse().map_err(|_| bad("bad interval"))?;
                rate.burst = burst.parse().map_err(|_| bad("bad burst"))?;
                rate.leak = leak.parse().map_err(|_| bad("bad leak"))?;
            }
            "--symmetric" => {
                options.config.symmetric = match value.as_str() {
                    "answer" => SymmetricPolicy::Answer,
                    "drop" => SymmetricPolicy::Drop,
                    _ => return Err(bad("answer or drop")),
                };
            }
            "--keys" => options.keys = Some(value),
            "--keys-format" => {
                options.keys_format = match value.as_str() {
                    "chrony" => KeyFileFormat::Chrony,
                    "ntpd" => KeyFileFormat::Ntpd,
                    _ => return Err(bad("chrony or ntpd")),
                };
            }
            "--mac-policy" => {
                options.config.mac = match value.as_str() {
                    "nak" => MacPolicy::CryptoNak,
                    "drop" => MacPolicy::Drop,
                    "answer" => MacPolicy::AnswerUnauthenticated,
                    _ => return Err(bad("nak, drop or answer")),
                };
            }
            "--nts-ke-listen" => {
                options.nts_ke_listen = Some(value.parse().map_err(|_| bad("not ADDR:PORT"))?);
            }
            "--nts-cert" => options.nts_cert = Some(value),
            "--nts-key" => options.nts_key = Some(value),
            "--nts-rotate" => {
                let seconds: f64 = value.parse().map_err(|_| bad("not a number"))?;
                options.nts_rotate = Duration::try_from_secs_f64(seconds)
                    .ok()
                    .filter(|d| *d >= Duration::from_secs(1))
                    .ok_or_else(|| bad("at least 1 second"))?;
            }
            _ => return Err(format!("unknown flag {flag}; {}", usage())),
        }
    }
    let nts_files = options.nts_cert.is_some() || options.nts_key.is_some();
    if options.nts_ke_listen.is_some() != nts_files
        || options.nts_cert.is_some() != options.nts_key.is_some()
    {
        return Err(format!(
            "--nts-ke-listen, --nts-cert and --nts-key go together; {}",
            usage()
        ));
    }
    Ok(options)
}

fn clock() -> Timestamp {
    Date::try_from(SystemTime::now()).map_or(Timestamp::ZERO, Date::to_timestamp)
}

fn system_state(options: &Options) -> SystemState {
    if options.stratum >= 16 {
        // Unsynchronized: leap indicator 3, stratum 16 (RFC 5905, 7.3).
        return SystemState::unsynchronized(PRECISION);
    }
    let mut state = SystemState::primary(options.refid, clock());
    state.stratum = Stratum::new(options.stratum);
    state.precision = PRECISION;
    state
}

fn bind(addr: SocketAddr, reuse_port: bool) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    // Room for bursts while the worker is descheduled.
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(POLL_STOP))?;
    Ok(socket)
}

fn worker(
    socket: UdpSocket,
    mut server: Server,
    nts: Option<Arc<SharedKeys>>,
    origin: std::time::Instant,
    stop: Arc<AtomicBool>,
) -> Counters {
    let mut buf = [0u8; 2048];
    let mut out = [0u8; MAX_RESPONSE_LEN];
    let mut last_reftime = std::time::Instant::now();
    let mut generation = 0;
    while !stop.load(Ordering::Relaxed) {
        // Pick up a rotation of the cookie master keys (one atomic load
        // per datagram; the copy only when they changed).
        if let Some(shared) = &nts {
            let current = shared.generation.load(Ordering::Acquire);
            if current != generation {
                if let Ok(keys) = shared.keys.read() {
                    server.set_cookie_keys(keys.clone());
                }
                generation = current;
            }
        }
        let (len, source) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                eprintln!("serve: receive failed: {e}");
                break;
            }
        };
        let rx_time = clock();
        let now = std::time::Instant::now();
        // The local clock is our reference: it was "set" just now.
        if now.duration_since(last_reftime) > Duration::from_secs(16) {
            let mut state = *server.system_state();
            state.reference_time = rx_time;
            server.set_system_state(state);
            last_reftime = now;
        }
        let action = server.handle(
            &buf[..len],
            source,
            rx_time,
            Instant::from_std(origin, now),
            &mut out,
        );
        if let Action::Respond(reply) = action {
            let datagram = server.finish(&reply, &mut out, clock());
            if let Err(e) = socket.send_to(datagram, source) {
                eprintln!("serve: send to {source} failed: {e}");
            }
        }
    }
    *server.counters()
}

/// 32 octets from the operating system's generator.
fn os_seed() -> [u8; NTS_SEED_LEN] {
    let mut seed = [0; NTS_SEED_LEN];
    getrandom::fill(&mut seed).expect("the operating system's generator");
    seed
}

/// The cookie master keys the NTS-KE thread seals cookies under and the
/// NTP workers open them with (RFC 8915 section 6), and a generation
/// number bumped at each rotation.
struct SharedKeys {
    keys: RwLock<CookieKeys>,
    generation: AtomicU64,
}

/// What the NTS-KE side did, for the last line.
#[derive(Default)]
struct KeCounters {
    accepted: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
    refused_busy: AtomicU64,
}

/// Makes the NTS-KE server of one connection (the TLS config and the
/// settings inside).
type NewKe = Arc<dyn Fn() -> Result<KeServer, String> + Send + Sync>;

/// One NTS-KE exchange over `stream` (RFC 8915 section 4), run by
/// [`KeServer::run_blocking`] with cookies under a copy of the shared
/// keys (so a rotation never waits for it), at most
/// [`limits::EXCHANGE_TIMEOUT`] in all (plus one read or write).
fn ke_exchange(
    mut stream: TcpStream,
    new_ke: &NewKe,
    shared: &SharedKeys,
) -> Result<ServerOutcome, String> {
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(limits::IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(limits::IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + limits::EXCHANGE_TIMEOUT;
    let mut ke = new_ke()?;
    let mut rng = ChaCha20Rng::from_seed(os_seed());
    let keys = shared
        .keys
        .read()
        .map_err(|_| "keys poisoned".to_owned())?
        .clone();
    let mut issuer = keys.issuer(&mut rng);
    ke.run_blocking(&mut stream, &mut issuer, deadline)
        .map_err(|e| e.to_string())
}

/// The NTS-KE accept loop, until `stop`: a thread per connection, within
/// ntp-nts's [`limits`] (100 at a time, 8 per address or IPv6 /64);
/// rotates the master key every `rotate`.
fn ke_listener(
    listener: TcpListener,
    new_ke: NewKe,
    shared: Arc<SharedKeys>,
    rotate: Duration,
    counters: Arc<KeCounters>,
    stop: Arc<AtomicBool>,
) {
    let slots = Arc::new(limits::ConnectionSlots::default());
    let mut rng = ChaCha20Rng::from_seed(os_seed());
    let mut rotated = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if rotated.elapsed() >= rotate {
            if let Ok(mut keys) = shared.keys.write() {
                let id = keys.rotate_random(&mut rng);
                shared.generation.fetch_add(1, Ordering::Release);
                println!("NTS-KE: cookie master key rotated, now {id:#010x}");
            }
            rotated = std::time::Instant::now();
        }
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => {
                eprintln!("serve: NTS-KE accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        let Ok(slot) = slots.acquire(peer.ip()) else {
            counters.refused_busy.fetch_add(1, Ordering::Relaxed);
            continue; // dropping the stream closes it
        };
        let new_ke = Arc::clone(&new_ke);
        let (shared, counters) = (Arc::clone(&shared), Arc::clone(&counters));
        std::thread::spawn(move || {
            match ke_exchange(stream, &new_ke, &shared) {
                Ok(outcome) if outcome.fault.is_none() && outcome.cookies > 0 => {
                    counters.answered.fetch_add(1, Ordering::Relaxed);
                }
                Ok(outcome) => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!("serve: NTS-KE refused: {outcome:?}");
                }
                Err(e) => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!("serve: NTS-KE failed: {e}");
                }
            }
            drop(slot);
        });
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--help" || arg == "-h") {
        println!("{}\n\n{HELP}", usage());
        return ExitCode::SUCCESS;
    }
    let options = match parse_args(args.into_iter()) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("serve: {message}");
            return ExitCode::from(2);
        }
    };
    // The default rate limiter already has a random hash key (std).
    let config = options.config.clone();
    let state = system_state(&options);
    let mut template = match Server::new(&config, state) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("serve: bad configuration: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(path) = &options.keys {
        match KeyStore::<MAX_KEYS>::load(path, options.keys_format) {
            // Every worker's core is a clone of this one, keys included.
            Ok(keys) => template.set_keys(keys),
            Err(e) => {
                eprintln!("serve: {path}: {e}");
                return ExitCode::from(2);
            }
        }
    }

    // The first socket fixes the port; the others join it. Linux may give a
    // SO_REUSEPORT socket bound to port 0 a port that another process's
    // SO_REUSEPORT socket already holds, and would then share our traffic
    // with it. So port 0 is resolved by a plain socket first, released, and
    // that port is then bound with SO_REUSEPORT.
    let reuse = options.threads > 1;
    let mut listen = options.listen;
    if reuse && listen.port() == 0 {
        match bind(listen, false).and_then(|probe| probe.local_addr()) {
            Ok(free) => listen = free,
            Err(e) => {
                eprintln!("serve: cannot bind {listen}: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let first = match bind(listen, reuse) {
        Ok(socket) => socket,
        Err(e) => {
            eprintln!("serve: cannot bind {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    let local = first.local_addr().unwrap();
    let mut sockets = vec![first];
    for _ in 1..options.threads {
        match bind(local, true) {
            Ok(socket) => sockets.push(socket),
            Err(e) => {
                eprintln!("serve: cannot bind {local}: {e}");
                return ExitCode::from(1);
            }
        }
    }

    // NTS: the TLS config, the shared master keys, the TCP listener.
    let mut nts = None;
    if let (Some(ke_listen), Some(cert), Some(key)) =
        (options.nts_ke_listen, &options.nts_cert, &options.nts_key)
    {
        let config = match tls::server_config_from_pem_files(cert, key) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("serve: NTS certificate or key: {e}");
                return ExitCode::from(2);
            }
        };
        let listener = match TcpListener::bind(ke_listen).and_then(|listener| {
            listener.set_nonblocking(true)?;
            Ok(listener)
        }) {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("serve: cannot bind NTS-KE {ke_listen}: {e}");
                return ExitCode::from(1);
            }
        };
        let mut rng = ChaCha20Rng::from_seed(os_seed());
        let shared = Arc::new(SharedKeys {
            keys: RwLock::new(CookieKeys::random(&mut rng)),
            generation: AtomicU64::new(0),
        });
        // Clients use the NTS-KE server's address; the port only when it
        // is not 123 (RFC 8915 section 4.1.8).
        let settings = KeServerSettings {
            ntp_port: (local.port() != 123).then_some(local.port()),
            ..KeServerSettings::default()
        };
        let port = settings.ntp_port.unwrap_or(123);
        let new_ke: NewKe = Arc::new(move || {
            KeServer::new(Arc::clone(&config), settings.clone()).map_err(|e| e.to_string())
        });
        nts = Some((listener, new_ke, port, shared));
    }

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        if let Err(e) = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed)) {
            eprintln!("serve: cannot install the Ctrl-C handler: {e}");
            return ExitCode::from(1);
        }
    }
    println!(
        "listening on {local} with {} thread(s), stratum {} refid {}, {} key(s)",
        options.threads,
        options.stratum,
        options.refid.display(Stratum::new(options.stratum)),
        template.keys().len()
    );
    let ke_counters = Arc::new(KeCounters::default());
    let mut ke_thread = None;
    let mut shared_keys = None;
    if let Some((listener, new_ke, port, shared)) = nts {
        match listener.local_addr() {
            Ok(addr) => println!("NTS-KE listening on {addr}, NTP port {port}"),
            Err(e) => eprintln!("serve: NTS-KE listener: {e}"),
        }
        let (shared_ke, counters, stop) = (
            Arc::clone(&shared),
            Arc::clone(&ke_counters),
            Arc::clone(&stop),
        );
        let rotate = options.nts_rotate;
        ke_thread = Some(std::thread::spawn(move || {
            ke_listener(listener, new_ke, shared_ke, rotate, counters, stop);
        }));
        shared_keys = Some(shared);
    }

    let origin = std::time::Instant::now();
    let workers: Vec<_> = sockets
        .into_iter()
        .map(|socket| {
            let mut server = template.clone();
            let nts = shared_keys.clone();
            if let Some(shared) = &nts {
                // Each worker its own generator seed (RFC 8915 nonces).
                let keys = shared.keys.read().map(|keys| keys.clone()).unwrap();
                server.set_nts(keys, os_seed());
            }
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || worker(socket, server, nts, origin, stop))
        })
        .collect();
    let deadline = options.duration.map(|d| origin + d);
    while !stop.load(Ordering::Relaxed) {
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            stop.store(true, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut total = Counters::default();
    for handle in workers {
        match handle.join() {
            Ok(counters) => total += &counters,
            Err(_) => eprintln!("serve: a worker thread panicked"),
        }
    }
    if let Some(handle) = ke_thread {
        if handle.join().is_err() {
            eprintln!("serve: the NTS-KE thread panicked");
        }
        let c = &ke_counters;
        println!(
            "nts-ke: accepted={} answered={} failed={} refused_busy={}",
            c.accepted.load(Ordering::Relaxed),
            c.answered.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed),
            c.refused_busy.load(Ordering::Relaxed)
        );
    }
    println!("counters: {total}");
    ExitCode::SUCCESS
}
