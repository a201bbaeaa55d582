//! The NTS-KE server of `--serve` (RFC 8915 section 4), for
//! `--nts-ke-listen`: a TCP listener on its own thread hands out cookies
//! sealed under the cookie master keys that the `--serve` server opens
//! them with (section 6). (The client side, `--nts`, is in `nts.rs`.)
//!
//! Each connection gets its own thread and ntp-nts's
//! [`KeServer::run_blocking`] runs the exchange, within ntp-nts's limits
//! ([`ntp_nts::tls::limits`]): at most 100 connections at a time, 8 from
//! one IPv4 address or IPv6 /64 (more are closed at once), [`IO_TIMEOUT`]
//! per read or write and [`EXCHANGE_TIMEOUT`] in all.
//!
//! The master keys are random at start, or read from `--nts-key-file`
//! (see `master_keys.rs`) so that a restart keeps the clients' cookies
//! good; they are rotated every [`KEY_ROTATION`], the two previous keys
//! kept, and written back to the file. Each exchange seals its cookies
//! under a copy of the keys taken when it starts, so a rotation never
//! waits for the exchanges under way. The daemon's loop picks the new keys
//! up with [`KeListener::rotated_keys`] and gives them to its server.

use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

use ntp_nts::key_file::MasterKeyFile;
use ntp_nts::rustls::ServerConfig;
use ntp_nts::tls::limits::{ConnectionSlots, EXCHANGE_TIMEOUT, IO_TIMEOUT};
use ntp_nts::tls::{KeServer, KeServerSettings, ServerOutcome};
use ntp_server::CookieKeys;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::json;

use crate::log::Log;
use crate::master_keys;

/// How often the cookie master key is rotated: daily, the example of RFC
/// 8915 section 6. With the two previous keys kept (ntp-nts's default),
/// a cookie is accepted for two to three days.
pub(crate) const KEY_ROTATION: Duration = Duration::from_secs(86400);

/// How often the accept loop looks for a connection and at the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// The master keys the NTS-KE side seals cookies under, and a generation
/// number bumped at each rotation.
struct SharedKeys {
    keys: RwLock<CookieKeys>,
    generation: AtomicU64,
}

impl SharedKeys {
    /// A copy of the keys of the moment (the lock is held for the copy
    /// only).
    fn snapshot(&self) -> Option<CookieKeys> {
        self.keys.read().ok().map(|keys| keys.clone())
    }
}

/// What the NTS-KE listener did, counted as connections end (what
/// `chronyc serverstats` counts as NTS-KE connections accepted and
/// dropped).
#[derive(Debug, Default)]
pub(crate) struct KeCounters {
    /// Connections accepted from the TCP queue.
    accepted: AtomicU64,
    /// Exchanges that handed out cookies.
    answered: AtomicU64,
    /// Exchanges that failed or ended without cookies (a TLS error, a
    /// timeout, a request the server refused).
    failed: AtomicU64,
    /// Connections closed at once for want of a slot (the total or the
    /// per-address cap).
    refused: AtomicU64,
}

impl KeCounters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl core::fmt::Display for KeCounters {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        write!(
            f,
            "accepted={} answered={} failed={} refused={}",
            load(&self.accepted),
            load(&self.answered),
            load(&self.failed),
            load(&self.refused)
        )
    }
}

/// The running NTS-KE listener. Dropping it stops the accept loop (the
/// connections under way end within their timeouts).
pub(crate) struct KeListener {
    address: SocketAddr,
    counters: Arc<KeCounters>,
    shared: Arc<SharedKeys>,
    generation: u64,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Where the listener's master keys come from and go to.
pub(crate) struct KeyStorage {
    /// `--nts-key-file`, if given.
    pub(crate) file: Option<PathBuf>,
}

impl KeListener {
    /// Binds `listen` and starts the accept loop, serving with `config`
    /// and advertising `ntp_port` when it is not 123 (RFC 8915 section
    /// 4.1.8; clients use this listener's host for NTP, section 4.1.7).
    /// Returns the listener and the master keys the NTP server must open
    /// cookies with.
    pub(crate) fn start(
        listen: SocketAddr,
        config: Arc<ServerConfig>,
        ntp_port: u16,
        storage: KeyStorage,
        log: Log,
        origin: std::time::Instant,
    ) -> io::Result<(Self, CookieKeys)> {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let mut rng = ChaCha20Rng::from_os_rng();
        let master = initial_keys(storage.file.as_deref(), &mut rng, log, origin);
        let keys = master.cookie_keys();
        let shared = Arc::new(SharedKeys {
            keys: RwLock::new(keys.clone()),
            generation: AtomicU64::new(0),
        });
        let settings = KeServerSettings {
            ntp_server: None,
            ntp_port: (ntp_port != ntp_nts::ke::DEFAULT_NTP_PORT).then_some(ntp_port),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(KeCounters::default());
        let accept = Accept {
            counters: Arc::clone(&counters),
            listener,
            config,
            settings,
            shared: Arc::clone(&shared),
            master,
            key_file: storage.file,
            slots: Arc::new(ConnectionSlots::default()),
            rng,
            log,
            origin,
            stop: Arc::clone(&stop),
        };
        let thread = std::thread::Builder::new()
            .name("nts-ke".to_owned())
            .spawn(move || accept.run())?;
        let listener = Self {
            address,
            counters,
            shared,
            generation: 0,
            stop,
            thread: Some(thread),
        };
        Ok((listener, keys))
    }

    /// The address the listener is bound to.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// What the listener did so far (exchanges under way are counted when
    /// they end).
    pub(crate) fn counters(&self) -> &KeCounters {
        &self.counters
    }

    /// The master keys, if they were rotated since the last call: give
    /// them to the NTP server (`Server::set_cookie_keys`). One atomic load
    /// when they were not.
    pub(crate) fn rotated_keys(&mut self) -> Option<CookieKeys> {
        let current = self.shared.generation.load(Ordering::Acquire);
        if current == self.generation {
            return None;
        }
        let keys = self.shared.snapshot()?;
        self.generation = current;
        Some(keys)
    }
}

impl Drop for KeListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // Ends within ACCEPT_POLL; a panic there was already printed.
            let _ = thread.join();
        }
    }
}

/// Seconds since the Unix epoch on the system clock (the key file's
/// creation times).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The master keys at start: the file's when it has good ones (rotated
/// at once if the current one is older than [`KEY_ROTATION`]), fresh ones
/// otherwise; written back to the file.
fn initial_keys(
    file: Option<&Path>,
    rng: &mut ChaCha20Rng,
    log: Log,
    origin: std::time::Instant,
) -> MasterKeyFile {
    let now = unix_now();
    let t = origin.elapsed().as_secs_f64();
    let Some(path) = file else {
        return MasterKeyFile::fresh(rng, now);
    };
    let mut keys = match master_keys::load(path) {
        Ok(Some(keys)) => {
            log.note(
                t,
                &format!("NTS-KE: master keys read from {}", path.display()),
            );
            keys
        }
        Ok(None) => MasterKeyFile::fresh(rng, now),
        Err(error) => {
            log.warn(t, &format!("--nts-key-file: {error}; new keys made"));
            MasterKeyFile::fresh(rng, now)
        }
    };
    if keys.current_age(now) >= KEY_ROTATION.as_secs() {
        keys.rotate(rng, now);
    }
    save_keys(&keys, path, log, t);
    keys
}

/// Writes the keys to `path`; a failure is logged (the keys still serve,
/// they are only lost at the next restart).
fn save_keys(keys: &MasterKeyFile, path: &Path, log: Log, t: f64) {
    if let Err(error) = master_keys::save(keys, path) {
        log.warn(t, &format!("--nts-key-file {}: {error}", path.display()));
    }
}

/// The accept loop's state, moved into its thread.
struct Accept {
    listener: TcpListener,
    config: Arc<ServerConfig>,
    settings: KeServerSettings,
    shared: Arc<SharedKeys>,
    master: MasterKeyFile,
    key_file: Option<PathBuf>,
    slots: Arc<ConnectionSlots>,
    counters: Arc<KeCounters>,
    rng: ChaCha20Rng,
    log: Log,
    origin: std::time::Instant,
    stop: Arc<AtomicBool>,
}

impl Accept {
    /// Accepts until `stop`, a thread per connection, and rotates the
    /// master key every [`KEY_ROTATION`].
    fn run(mut self) {
        while !self.stop.load(Ordering::Relaxed) {
            if self.master.current_age(unix_now()) >= KEY_ROTATION.as_secs() {
                self.rotate();
            }
            match self.listener.accept() {
                Ok((stream, peer)) => self.serve(stream, peer),
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    std::thread::sleep(ACCEPT_POLL);
                }
                Err(error) => {
                    // Out of descriptors, say: wait, and try again.
                    log_failure(self.log, self.origin, None, &format!("accept: {error}"));
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// Serves one accepted connection on a thread of its own, if it gets
    /// a slot; dropping the stream closes it otherwise.
    fn serve(&mut self, stream: TcpStream, peer: SocketAddr) {
        KeCounters::bump(&self.counters.accepted);
        let slot = match self.slots.acquire(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                KeCounters::bump(&self.counters.refused);
                log_failure(
                    self.log,
                    self.origin,
                    Some(peer),
                    &format!("refused: {refusal:?} limit"),
                );
                return;
            }
        };
        let server = match KeServer::new(Arc::clone(&self.config), self.settings.clone()) {
            Ok(server) => server,
            Err(error) => {
                self.failed(Some(peer), &error.to_string());
                return;
            }
        };
        let Some(keys) = self.shared.snapshot() else {
            self.failed(Some(peer), "cookie keys poisoned");
            return;
        };
        let rng = ChaCha20Rng::from_rng(&mut self.rng);
        let (log, origin) = (self.log, self.origin);
        let counters = Arc::clone(&self.counters);
        let spawned = std::thread::Builder::new()
            .name("nts-ke-conn".to_owned())
            .spawn(move || {
                let result = exchange(stream, server, &keys, rng);
                drop(slot);
                let problem = match result {
                    Ok(outcome) if outcome.fault.is_none() && outcome.cookies > 0 => None,
                    Ok(outcome) => Some(format!("refused: {outcome:?}")),
                    Err(error) => Some(error),
                };
                match problem {
                    None => KeCounters::bump(&counters.answered),
                    Some(problem) => {
                        KeCounters::bump(&counters.failed);
                        log_failure(log, origin, Some(peer), &problem);
                    }
                }
            });
        if let Err(error) = spawned {
            // The closure, and with it the stream and the slot, is gone.
            self.failed(Some(peer), &format!("no thread: {error}"));
        }
    }

    /// Makes a fresh master key current (RFC 8915 section 6), keeps it in
    /// the key file, and bumps the generation the daemon's loop watches.
    /// The exchanges under way hold copies: nothing waits for them.
    fn rotate(&mut self) {
        let id = self.master.rotate(&mut self.rng, unix_now());
        let t = self.origin.elapsed().as_secs_f64();
        if let Some(path) = &self.key_file {
            save_keys(&self.master, path, self.log, t);
        }
        let keys = self.master.cookie_keys();
        let Ok(mut shared) = self.shared.keys.write() else {
            return;
        };
        *shared = keys;
        drop(shared);
        self.shared.generation.fetch_add(1, Ordering::Release);
        self.log.line(
            t,
            "nts_ke_rotate",
            &format!("NTS-KE: cookie master key rotated, now {id:#010x}"),
            json!({ "key_id": id }),
        );
    }

    /// A connection that got a slot but no exchange: counted and logged.
    fn failed(&self, peer: Option<SocketAddr>, problem: &str) {
        KeCounters::bump(&self.counters.failed);
        log_failure(self.log, self.origin, peer, problem);
    }
}

/// One line for a failed or refused exchange, in verbose mode only (any
/// client on the network can cause them).
fn log_failure(log: Log, origin: std::time::Instant, peer: Option<SocketAddr>, problem: &str) {
    if !log.verbose {
        return;
    }
    let from = peer.map_or_else(String::new, |peer| format!(" {peer}"));
    log.line(
        origin.elapsed().as_secs_f64(),
        "nts_ke_served",
        &format!("NTS-KE server:{from}: {problem}"),
        json!({
            "ok": false,
            "from": peer.map(|peer| peer.to_string()),
            "error": problem,
        }),
    );
}

/// One exchange over `stream`, its cookies sealed under `keys`.
fn exchange(
    mut stream: TcpStream,
    mut server: KeServer,
    keys: &CookieKeys,
    rng: ChaCha20Rng,
) -> Result<ServerOutcome, String> {
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + EXCHANGE_TIMEOUT;
    let mut issuer = keys.issuer(rng);
    server
        .run_blocking(&mut stream, &mut issuer, deadline)
        .map_err(|error| error.to_string())
}
