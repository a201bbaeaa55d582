//! The NTS-KE server of `--serve` (RFC 8915 section 4), for
//! `--nts-ke-listen`: a TCP listener on its own thread hands out cookies
//! sealed under the cookie master keys that the `--serve` server opens
//! them with (section 6). (The client side, `--nts`, is in `nts.rs`.)
//!
//! Each connection gets its own thread, at most [`MAX_CONNECTIONS`] at a
//! time, [`IO_TIMEOUT`] per read or write and [`EXCHANGE_TIMEOUT`] in all,
//! and ntp-nts's [`KeServer::run_blocking`] runs the exchange. The master
//! key is random at start, lives only in memory (a restart makes every
//! client run NTS-KE again, after an NTS NAK), and is rotated every
//! [`KEY_ROTATION`], the two previous keys kept; the daemon's loop picks
//! the new keys up with [`KeListener::rotated_keys`] and gives them to its
//! server.

use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

use ntp_nts::rustls::ServerConfig;
use ntp_nts::tls::{KeServer, KeServerSettings, ServerOutcome};
use ntp_server::CookieKeys;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::json;

use crate::log::Log;

/// The most NTS-KE connections served at once; more are closed at once.
pub(crate) const MAX_CONNECTIONS: usize = 16;

/// The limit of one read or write on an NTS-KE connection.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// The limit of a whole NTS-KE exchange (RFC 8915 section 4.1.3 leaves the
/// timeout to the implementation), plus one read or write.
pub(crate) const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);

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

/// The running NTS-KE listener. Dropping it stops the accept loop (the
/// connections under way end within their timeouts).
pub(crate) struct KeListener {
    address: SocketAddr,
    shared: Arc<SharedKeys>,
    generation: u64,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
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
        log: Log,
        origin: std::time::Instant,
    ) -> io::Result<(Self, CookieKeys)> {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let mut rng = ChaCha20Rng::from_os_rng();
        let keys = CookieKeys::random(&mut rng);
        let shared = Arc::new(SharedKeys {
            keys: RwLock::new(keys.clone()),
            generation: AtomicU64::new(0),
        });
        let settings = KeServerSettings {
            ntp_server: None,
            ntp_port: (ntp_port != ntp_nts::ke::DEFAULT_NTP_PORT).then_some(ntp_port),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let accept = Accept {
            listener,
            config,
            settings,
            shared: Arc::clone(&shared),
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

    /// The master keys, if they were rotated since the last call: give
    /// them to the NTP server (`Server::set_cookie_keys`). One atomic load
    /// when they were not.
    pub(crate) fn rotated_keys(&mut self) -> Option<CookieKeys> {
        let current = self.shared.generation.load(Ordering::Acquire);
        if current == self.generation {
            return None;
        }
        let keys = self.shared.keys.read().ok()?.clone();
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

/// The accept loop's state, moved into its thread.
struct Accept {
    listener: TcpListener,
    config: Arc<ServerConfig>,
    settings: KeServerSettings,
    shared: Arc<SharedKeys>,
    rng: ChaCha20Rng,
    log: Log,
    origin: std::time::Instant,
    stop: Arc<AtomicBool>,
}

impl Accept {
    /// Accepts until `stop`, a thread per connection, and rotates the
    /// master key every [`KEY_ROTATION`].
    fn run(mut self) {
        let busy = Arc::new(AtomicUsize::new(0));
        let mut rotated = std::time::Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            if rotated.elapsed() >= KEY_ROTATION {
                self.rotate();
                rotated = std::time::Instant::now();
            }
            let (stream, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    std::thread::sleep(ACCEPT_POLL);
                    continue;
                }
                Err(error) => {
                    // Out of descriptors, say: wait, and try again.
                    self.failed(None, &format!("accept: {error}"));
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                busy.fetch_sub(1, Ordering::AcqRel);
                self.failed(Some(peer), "refused: too many connections");
                continue; // dropping the stream closes it
            }
            let server = match KeServer::new(Arc::clone(&self.config), self.settings.clone()) {
                Ok(server) => server,
                Err(error) => {
                    busy.fetch_sub(1, Ordering::AcqRel);
                    self.failed(Some(peer), &error.to_string());
                    continue;
                }
            };
            let shared = Arc::clone(&self.shared);
            let rng = ChaCha20Rng::from_rng(&mut self.rng);
            let (log, origin, count) = (self.log, self.origin, Arc::clone(&busy));
            let spawned = std::thread::Builder::new()
                .name("nts-ke-conn".to_owned())
                .spawn(move || {
                    let result = exchange(stream, server, &shared, rng);
                    count.fetch_sub(1, Ordering::AcqRel);
                    let problem = match result {
                        Ok(outcome) if outcome.fault.is_none() && outcome.cookies > 0 => None,
                        Ok(outcome) => Some(format!("refused: {outcome:?}")),
                        Err(error) => Some(error),
                    };
                    if let Some(problem) = problem {
                        log_failure(log, origin, Some(peer), &problem);
                    }
                });
            if let Err(error) = spawned {
                // The closure, and with it the stream and the count, is
                // gone: undo the count here.
                busy.fetch_sub(1, Ordering::AcqRel);
                self.failed(Some(peer), &format!("no thread: {error}"));
            }
        }
    }

    /// Makes a fresh master key current (RFC 8915 section 6) and bumps the
    /// generation the daemon's loop watches. Waits for the exchanges under
    /// way, which hold the read lock, at most [`EXCHANGE_TIMEOUT`] plus
    /// one I/O.
    fn rotate(&mut self) {
        let Ok(mut keys) = self.shared.keys.write() else {
            return;
        };
        let id = keys.rotate_random(&mut self.rng);
        drop(keys);
        self.shared.generation.fetch_add(1, Ordering::Release);
        self.log.line(
            self.origin.elapsed().as_secs_f64(),
            "nts_ke_rotate",
            &format!("NTS-KE: cookie master key rotated, now {id:#010x}"),
            json!({ "key_id": id }),
        );
    }

    fn failed(&self, peer: Option<SocketAddr>, problem: &str) {
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

/// One exchange over `stream` with cookies under the shared keys, whose
/// read lock is held until it ends.
fn exchange(
    mut stream: TcpStream,
    mut server: KeServer,
    shared: &SharedKeys,
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
    let keys = shared
        .keys
        .read()
        .map_err(|_| "cookie keys poisoned".to_owned())?;
    let mut issuer = keys.issuer(rng);
    server
        .run_blocking(&mut stream, &mut issuer, deadline)
        .map_err(|error| error.to_string())
}
