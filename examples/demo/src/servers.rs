//! NTP servers on 127.0.0.1, each on its own thread, each serving a clock
//! offset from the demo's true time by a known amount.
//!
//! Every server is an `ntp-server` core behind a std `UdpSocket` bound to
//! an ephemeral loopback port. The clock it serves is [`TrueTime`] plus its
//! offset; it never reads or sets anything else. A server thread stops
//! when its [`RunningServer`] is stopped or dropped, and wakes up at least
//! every [`STOP_CHECK`] to notice.

use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::io;
use std::net::UdpSocket;
use std::sync::Arc;
use std::thread::JoinHandle;

use ntp_proto::{LeapIndicator, NtpDuration, RefId, ShortTime, Stratum, SystemState, Timestamp};
use ntp_server::{AccessAction, Action, Counters, Instant, Server, ServerConfig};

use crate::clock::TrueTime;

/// How often a server thread wakes up to check whether it should stop.
pub(crate) const STOP_CHECK: Duration = Duration::from_millis(50);

/// Precision the servers advertise: 2^-20 s (about 1 µs).
const PRECISION: i8 = -20;

/// What one server serves.
#[derive(Clone, Debug)]
pub(crate) struct ServerSpec {
    /// A short name for messages.
    pub(crate) name: &'static str,
    /// How far the served clock is ahead of true time (negative: behind).
    pub(crate) offset: NtpDuration,
    /// The system variables written into every response (the reference
    /// time is refreshed as the server runs).
    pub(crate) state: SystemState,
    /// The server's configuration (access control, rate limiting).
    pub(crate) config: ServerConfig,
}

impl ServerSpec {
    /// A synchronized stratum 1 server with reference id `refid` whose
    /// clock is `offset_ms` milliseconds ahead of true time, answering
    /// everyone without rate limiting.
    pub(crate) fn primary(name: &'static str, refid: &[u8], offset_ms: f64) -> Self {
        let offset = NtpDuration::from_seconds_f64(offset_ms / 1e3).unwrap_or(NtpDuration::ZERO);
        Self {
            name,
            offset,
            state: SystemState {
                leap: LeapIndicator::NoWarning,
                stratum: Stratum::PRIMARY,
                precision: PRECISION,
                root_delay: ShortTime::ZERO,
                root_dispersion: ShortTime::ZERO,
                reference_id: RefId::from_ascii(refid).unwrap_or(RefId::LOCL),
                reference_time: Timestamp::ZERO,
            },
            config: {
                let mut config = ServerConfig::default();
                config.acl_default = AccessAction::Allow;
                config
            },
        }
    }
}

/// A server thread and how to stop it.
#[derive(Debug)]
pub(crate) struct RunningServer {
    name: &'static str,
    addr: SocketAddr,
    offset: NtpDuration,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Counters>>,
}

impl RunningServer {
    /// Binds 127.0.0.1 on an ephemeral port and starts serving `spec`.
    pub(crate) fn start(spec: ServerSpec, truth: TrueTime) -> io::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(STOP_CHECK))?;
        let addr = socket.local_addr()?;
        let mut state = spec.state;
        state.reference_time = served_time(truth, spec.offset);
        let server = Server::new(&spec.config, state)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            let offset = spec.offset;
            std::thread::Builder::new()
                .name(format!("ntp-server {}", spec.name))
                .spawn(move || serve(&socket, server, truth, offset, &stop))?
        };
        Ok(Self {
            name: spec.name,
            addr,
            offset: spec.offset,
            stop,
            thread: Some(thread),
        })
    }

    /// The server's name.
    pub(crate) const fn name(&self) -> &'static str {
        self.name
    }

    /// The address it listens on.
    pub(crate) const fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How far its clock is ahead of true time.
    pub(crate) const fn offset(&self) -> NtpDuration {
        self.offset
    }

    /// Stops the thread and returns its counters (`None` if it panicked).
    pub(crate) fn stop(mut self) -> Option<Counters> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|thread| thread.join().ok())
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The time a server whose clock is `offset` ahead of true time reads now.
fn served_time(truth: TrueTime, offset: NtpDuration) -> Timestamp {
    let now = truth.now();
    now.checked_add(offset).unwrap_or(now).to_timestamp()
}

/// The server loop: one datagram, one `handle`, one reply; until `stop`.
fn serve(
    socket: &UdpSocket,
    mut server: Server,
    truth: TrueTime,
    offset: NtpDuration,
    stop: &AtomicBool,
) -> Counters {
    let origin = std::time::Instant::now();
    let mut last_reference = origin;
    let mut request = [0u8; 2048];
    let mut out = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let (len, client) = match socket.recv_from(&mut request) {
            Ok(received) => received,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                eprintln!("ntp-server: receive failed: {e}");
                break;
            }
        };
        let rx_time = served_time(truth, offset);
        let now = std::time::Instant::now();
        // The served clock is this server's reference: refresh the
        // reference time every few seconds, as a primary server does.
        if now.duration_since(last_reference) > Duration::from_secs(4) {
            let mut state = *server.system_state();
            state.reference_time = rx_time;
            server.set_system_state(state);
            last_reference = now;
        }
        let Some(request) = request.get(..len) else {
            continue;
        };
        let action = server.handle(
            request,
            client,
            rx_time,
            Instant::from_std(origin, now),
            &mut out,
        );
        if let Action::Respond(reply) = action {
            let datagram = server.finish(&reply, &mut out, served_time(truth, offset));
            if let Err(e) = socket.send_to(datagram, client) {
                eprintln!("ntp-server: send to {client} failed: {e}");
            }
        }
    }
    *server.counters()
}
