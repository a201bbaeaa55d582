//! `--serve`: answering NTP clients with the `ntp-server` core, either
//! from the daemon's loop or on worker threads (`--serve-threads N`).
//!
//! - **From the loop** (the default, as chronyd serves): the serving
//!   socket is polled with the client sockets, and each request is
//!   answered as it is read. One thread, no locks, and the same run under
//!   clknetsim twice gives the same result.
//! - **On workers**: each thread owns a socket bound to the same address
//!   with `SO_REUSEPORT` (the kernel spreads clients over them by their
//!   address and port) and its own copy of the server (access list, keys;
//!   NTS nonces from a seed of its own), all sharing one rate limiter
//!   ([`Server::share_rate_limiter`]): a client that changes its source
//!   port, and so reaches another worker, still gets no more than its
//!   limit. The loop publishes
//!   what they answer with on a [`Board`]: the system variables and the
//!   cookie master keys, each change under a generation number that a
//!   worker checks with one atomic load per batch of datagrams. Workers
//!   read the loop's clock through [`ReadClock`], so a model clock's steps
//!   and rate changes reach them too.

use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;
use std::io;
use std::sync::{Arc, PoisonError, RwLock};
use std::thread::JoinHandle;

use ntp_client::ntp_proto::{Date, SystemState, Timestamp};
use ntp_server::{Action, CookieKeys, Counters, Instant, Reply, Server};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::clock::{ReadClock, Snapshot};
use crate::hwclock::{self, HwClock};
use crate::log::Log;
use crate::net::{self, RECV_BATCH, Received, RecvBatch, SendBatch, TimestampedSocket};
use crate::txstamp::{self, FrameBuffer, Sent};

/// The most worker threads `--serve-threads` takes.
pub(crate) const MAX_SERVE_THREADS: usize = 64;

/// How long a worker waits for a datagram before it looks at the stop
/// flag again.
const WORKER_WAIT: Duration = Duration::from_millis(100);

/// The most requests a worker (or the loop) reads after one wakeup before
/// it checks the board and the stop flag (or its other work) again, in
/// `recvmmsg(2)` calls of [`RECV_BATCH`]: a busy server makes one
/// `poll(2)` per batch, an idle one answers each request as it comes (a
/// `recvmmsg` returns what is there, without waiting for more).
pub(crate) const BATCH: usize = 64;

/// How `--serve` answers: from the loop, or on workers.
pub(crate) enum Serving {
    /// From the loop, on the serving socket of `net::Sockets`.
    Inline(Box<Server>),
    /// On worker threads with sockets of their own.
    Workers(Box<Workers>),
}

impl Serving {
    /// Hands the server(s) the system variables of the moment, and the
    /// cookie master keys when they were rotated (`Some`).
    pub(crate) fn refresh(&mut self, state: SystemState, rotated: Option<CookieKeys>) {
        match self {
            Self::Inline(server) => {
                server.set_system_state(state);
                if let Some(keys) = rotated {
                    server.set_cookie_keys(keys);
                }
            }
            Self::Workers(workers) => workers.publish(state, rotated),
        }
    }

    /// Stops serving; the counters of all that was served.
    pub(crate) fn finish(self) -> Counters {
        match self {
            Self::Inline(server) => *server.counters(),
            Self::Workers(workers) => workers.stop(),
        }
    }
}

/// The loop's way to the transmit timestamps of its interleaved answers:
/// the serving socket's twin that has them, the card's clock with
/// `--hwtimestamp`, and the answers waiting for their stamps.
pub(crate) struct Stamping<'a> {
    pub(crate) socket: &'a TimestampedSocket,
    pub(crate) hw: Option<&'a HwClock>,
    pub(crate) sent: &'a mut Sent<(SocketAddr, Reply)>,
    pub(crate) frame: &'a mut FrameBuffer,
}

/// How long an answer may wait in the [`Outbox`] after it was handled:
/// its transmit timestamp was read when it was finished, so every
/// nanosecond it waits is error in the client's measurement (as a longer
/// path back, RFC 5905 section 8). A busy server handles a plain request
/// in about 0.3 us of user time (a whole receive batch in under 5 us) and
/// a MAC-signed or NTS one in 1-3 us, so the limit keeps batches of the
/// cheaper kinds whole, and the wait within the jitter of a software
/// timestamp; an idle server never waits (a batch is what one
/// `recvmmsg(2)` returned).
pub(crate) const MAX_SEND_WAIT: Duration = Duration::from_micros(5);

/// Answers waiting to go out together ([`TimestampedSocket::send_batch`]),
/// each with its client, reply and transmit timestamp for
/// [`Server::transmitted`].
pub(crate) struct Outbox {
    batch: SendBatch<(SocketAddr, Reply, Timestamp)>,
    /// The transmit timestamps of the first and the last answer waiting.
    first: Timestamp,
    last: Timestamp,
}

impl Outbox {
    pub(crate) fn new() -> Self {
        Self {
            batch: SendBatch::new(),
            first: Timestamp::ZERO,
            last: Timestamp::ZERO,
        }
    }

    /// Whether the answers waiting must go before another is handled:
    /// the batch is full, or the first has waited [`MAX_SEND_WAIT`] (by
    /// the transmit timestamps; a step of the clock in between also sends
    /// them).
    fn due(&mut self) -> bool {
        if self.batch.len() == 0 {
            return false;
        }
        let waited = (self.last - self.first).to_seconds_f64();
        self.batch.buffer().is_none() || !(0.0..=MAX_SEND_WAIT.as_secs_f64()).contains(&waited)
    }

    /// Sends every answer waiting on `socket`, and reports each one the
    /// kernel took to `server` (with the timestamp it was finished with).
    pub(crate) fn flush(&mut self, server: &mut Server, socket: &TimestampedSocket) {
        socket.send_batch(&mut self.batch, |(client, reply, transmit)| {
            server.transmitted(client, &reply, transmit);
        });
    }
}

/// Answers one request read at `rx_wall` on `socket` with `server` (`now`
/// for its rate limit: the receive batch's): the answer is finished with
/// the transmit timestamp read from `clock` (the batch's
/// [`Snapshot`]), and waits in `outbox` for the
/// rest of its receive batch (the caller flushes after each), at most
/// [`MAX_SEND_WAIT`] and one request's handling. When it left, the
/// server hears of it ([`Server::transmitted`]) for a client in the
/// interleaved mode (RFC 9769), which gets that time one exchange later.
/// With `stamping` (the loop), an answer in the interleaved mode goes out
/// at once on the twin socket instead, and the kernel's (or the card's)
/// timestamp of it is reported when it comes (see [`report_answers`]);
/// every other answer reports the stamp read before sending, so that the
/// kernel loops back no datagram for the clients that never use it (a
/// third of a plain answer's CPU time). A client's first interleaved
/// request is answered with that stamp, the following ones with the
/// kernel's. A failed send is a lost answer: the client asks again.
pub(crate) fn respond(
    server: &mut Server,
    socket: &TimestampedSocket,
    clock: &dyn ReadClock,
    request: (&Received, &[u8], Date),
    now: Instant,
    outbox: &mut Outbox,
    stamping: Option<Stamping<'_>>,
) -> io::Result<()> {
    let (received, data, rx_wall) = request;
    if outbox.due() {
        outbox.flush(server, socket);
    }
    let Some(out) = outbox.batch.buffer() else {
        return Ok(());
    };
    let Action::Respond(reply) =
        server.handle(data, received.from, Timestamp::from(rx_wall), now, out)
    else {
        return Ok(());
    };
    let transmit = Timestamp::from(clock.now()?);
    let len = server.finish(&reply, out, transmit).len();
    if len == 0 {
        // The server could not finish it (see `Server::finish`).
        return Ok(());
    }
    match stamping.filter(|_| reply.interleaved()) {
        Some(stamping) => {
            let packet = out.get(..len).unwrap_or_default();
            if stamping.socket.send_to(packet, received.from).is_ok() {
                server.transmitted(received.from, &reply, transmit);
                stamping.sent.push((received.from, reply), packet);
                report_answers(stamping, server, clock);
            }
        }
        None => {
            if outbox.batch.len() == 0 {
                outbox.first = transmit;
            }
            outbox.last = transmit;
            outbox
                .batch
                .push(len, received.from, (received.from, reply, transmit));
        }
    }
    Ok(())
}

/// Reads the twin socket's error queue and reports each kernel (or,
/// through the card's clock, hardware) transmit timestamp of an answer
/// waiting in `stamping` to `server`.
pub(crate) fn report_answers(stamping: Stamping<'_>, server: &mut Server, clock: &dyn ReadClock) {
    let Stamping {
        socket,
        hw,
        sent,
        frame,
    } = stamping;
    txstamp::read(socket, sent, frame, |(client, reply), _, looped| {
        if let Some((Ok(tx), _)) = hwclock::reading(clock, (looped.time, looped.hardware), hw) {
            server.transmitted(client, &reply, Timestamp::from(tx));
        }
    });
}

/// What the loop publishes for the workers.
#[derive(Clone)]
struct Published {
    state: SystemState,
    /// The cookie master keys, and how many rotations they have seen.
    cookie_keys: Option<(u64, CookieKeys)>,
}

/// Where the loop publishes and the workers read: [`Published`] and a
/// generation number bumped at each change.
struct Board {
    generation: AtomicU64,
    published: RwLock<Published>,
}

impl Board {
    /// Brings `server` up to date if the board changed since `seen`, the
    /// generation it last saw; `keys_seen` is the rotation of its keys.
    fn update(&self, server: &mut Server, seen: &mut u64, keys_seen: &mut u64) {
        let generation = self.generation.load(Ordering::Acquire);
        if generation == *seen {
            return;
        }
        *seen = generation;
        let published = self
            .published
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        server.set_system_state(published.state);
        if let Some((rotation, keys)) = &published.cookie_keys {
            if rotation != keys_seen {
                server.set_cookie_keys(keys.clone());
                *keys_seen = *rotation;
            }
        }
    }
}

/// `--serve` on worker threads.
pub(crate) struct Workers {
    board: Arc<Board>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Counters>>,
    /// What the board holds, to publish changes only.
    last: Published,
}

/// Binds `count` sockets to `address` with `SO_REUSEPORT`: the first
/// picks the port when `address` names port 0, the others take it.
pub(crate) fn bind_workers(
    address: SocketAddr,
    count: usize,
) -> io::Result<Vec<TimestampedSocket>> {
    let mut sockets = Vec::with_capacity(count);
    let mut address = address;
    for _ in 0..count {
        // Workers read no hardware timestamps: one thread (the loop)
        // keeps the card's clock.
        // Nor transmit timestamps: a datagram looped back per answer
        // costs a third of a plain answer's CPU time.
        let socket = TimestampedSocket::bind_serving(address, true, (false, false))?;
        address = socket.local_addr()?;
        sockets.push(socket);
    }
    Ok(sockets)
}

/// One worker's parts.
struct Worker {
    server: Server,
    socket: TimestampedSocket,
    board: Arc<Board>,
    clock: Arc<dyn ReadClock>,
    origin: std::time::Instant,
    stop: Arc<AtomicBool>,
    log: Log,
}

impl Workers {
    /// Starts a worker per socket, each with a copy of `template` (its NTS
    /// nonces seeded anew from the operating system), the copies sharing
    /// one rate limiter.
    pub(crate) fn start(
        template: &Server,
        sockets: Vec<TimestampedSocket>,
        clock: &Arc<dyn ReadClock>,
        origin: std::time::Instant,
        log: Log,
    ) -> io::Result<Self> {
        let last = Published {
            state: *template.system_state(),
            cookie_keys: template.cookie_keys().map(|keys| (0, keys.clone())),
        };
        let board = Arc::new(Board {
            generation: AtomicU64::new(0),
            published: RwLock::new(last.clone()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Self {
            board,
            stop,
            threads: Vec::with_capacity(sockets.len()),
            last,
        };
        let mut template = template.clone();
        template.share_rate_limiter();
        for (index, socket) in sockets.into_iter().enumerate() {
            let mut server = template.clone();
            if let Some(keys) = template.cookie_keys() {
                let mut seed = [0; ntp_server::NTS_SEED_LEN];
                ChaCha20Rng::from_os_rng().fill_bytes(&mut seed);
                server.set_nts(keys.clone(), seed);
            }
            let worker = Worker {
                server,
                socket,
                board: Arc::clone(&workers.board),
                clock: Arc::clone(clock),
                origin,
                stop: Arc::clone(&workers.stop),
                log,
            };
            let thread = std::thread::Builder::new()
                .name(format!("serve-{index}"))
                .spawn(move || worker.run());
            match thread {
                Ok(thread) => workers.threads.push(thread),
                Err(error) => {
                    workers.stop();
                    return Err(error);
                }
            }
        }
        Ok(workers)
    }

    /// Publishes the system variables, and the cookie master keys when
    /// they were rotated (`Some`), if either changed.
    pub(crate) fn publish(&mut self, state: SystemState, rotated: Option<CookieKeys>) {
        let rotated = rotated.map(|keys| {
            let rotation = self.last.cookie_keys.as_ref().map_or(0, |(n, _)| n + 1);
            (rotation, keys)
        });
        if state == self.last.state && rotated.is_none() {
            return;
        }
        self.last.state = state;
        if rotated.is_some() {
            self.last.cookie_keys = rotated;
        }
        let mut published = self
            .board
            .published
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        published.clone_from(&self.last);
        drop(published);
        self.board.generation.fetch_add(1, Ordering::Release);
    }

    /// Stops the workers and returns their counters, summed.
    pub(crate) fn stop(self) -> Counters {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Counters::default();
        for thread in self.threads {
            // A worker that panicked took its counters with it.
            if let Ok(counters) = thread.join() {
                total += &counters;
            }
        }
        total
    }
}

impl Worker {
    /// Answers until the stop flag, then returns the counters.
    fn run(mut self) -> Counters {
        let mut batch = RecvBatch::new();
        let mut outbox = Outbox::new();
        let (mut seen, mut keys_seen) = (0, 0);
        while !self.stop.load(Ordering::Relaxed) {
            match net::wait([&self.socket], WORKER_WAIT) {
                // No transmit timestamps on a worker's socket: nothing
                // comes on its error queue.
                Ok([ready, ..]) if ready.data => {}
                Ok(_) => continue,
                Err(error) => {
                    self.log.warn(self.elapsed(), &format!("serve: {error}"));
                    std::thread::sleep(WORKER_WAIT);
                    continue;
                }
            }
            self.board
                .update(&mut self.server, &mut seen, &mut keys_seen);
            for _ in 0..BATCH / RECV_BATCH {
                let count = match self.socket.recv_batch(&mut batch) {
                    Ok(count) => count,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                    Err(error) => {
                        self.log
                            .warn(self.elapsed(), &format!("serve: receive: {error}"));
                        break;
                    }
                };
                // One reading of the clock for the batch's receive
                // timestamps, and of the monotonic clock for its rate
                // limits: a batch is read in microseconds.
                let Ok(clock) = self.clock.snapshot() else {
                    break;
                };
                let now = Instant::from_std(self.origin, std::time::Instant::now());
                for (received, data) in (0..count).filter_map(|index| batch.get(index)) {
                    self.answer(&received, data, (&clock, now), &mut outbox);
                }
                outbox.flush(&mut self.server, &self.socket);
                if count < RECV_BATCH {
                    break;
                }
            }
        }
        *self.server.counters()
    }

    fn elapsed(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }

    /// Answers one datagram of the batch read at `now`, on `clock` as
    /// it was then; one the clock cannot stamp is dropped.
    fn answer(
        &mut self,
        received: &Received,
        data: &[u8],
        (clock, now): (&Snapshot, Instant),
        outbox: &mut Outbox,
    ) {
        let Ok(rx_wall) = clock.received_at(received.kernel_time) else {
            return;
        };
        let _ = respond(
            &mut self.server,
            &self.socket,
            clock,
            (received, data, rx_wall),
            now,
            outbox,
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    use ntp_client::ntp_proto::{RefId, Stratum};

    use super::*;

    fn template() -> Server {
        let mut server = Server::new(
            &ntp_server::ServerConfig::default(),
            SystemState::unsynchronized(-20),
        )
        .unwrap();
        server.set_nts(CookieKeys::new(1, &[1; 32]), [0; ntp_server::NTS_SEED_LEN]);
        server
    }

    /// What the loop publishes reaches a worker's server once, and only
    /// changes are published: the state at each change, the keys at each
    /// rotation.
    #[test]
    fn the_board_carries_state_and_rotated_keys() {
        let server = template();
        let mut workers = Workers::start(
            &server,
            Vec::new(),
            &(Arc::new(crate::clock::ModelClock::new(0.0, 0.0).unwrap()) as Arc<dyn ReadClock>),
            std::time::Instant::now(),
            Log {
                json: false,
                verbose: false,
            },
        )
        .unwrap();
        let mut worker_server = server.clone();
        let (mut seen, mut keys_seen) = (0, 0);
        workers.publish(*server.system_state(), None);
        assert_eq!(workers.board.generation.load(Ordering::Relaxed), 0);

        let mut state = SystemState::primary(RefId::LOCL, Timestamp::ZERO);
        state.stratum = Stratum::new(3);
        workers.publish(state, None);
        workers
            .board
            .update(&mut worker_server, &mut seen, &mut keys_seen);
        assert_eq!(seen, 1);
        assert_eq!(worker_server.system_state().stratum, Stratum::new(3));
        assert_eq!(worker_server.cookie_keys().unwrap().current_key_id(), 1);

        let mut rotated = CookieKeys::new(1, &[1; 32]);
        rotated.rotate(2, &[2; 32]).unwrap();
        workers.publish(state, Some(rotated));
        workers
            .board
            .update(&mut worker_server, &mut seen, &mut keys_seen);
        assert_eq!(worker_server.cookie_keys().unwrap().current_key_id(), 2);
        assert!(worker_server.cookie_keys().unwrap().contains(1));
        assert_eq!(keys_seen, 1);
        assert_eq!(workers.stop().received, 0);
    }
}
