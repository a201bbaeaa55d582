//! The daemon's loop, in named parts: the system's output (datagrams to
//! send, clock actions, NTS-KE and pool lookups, which run in the
//! background: see `background`), the periodic chores (the
//! peer table, the drift file), the wait, the datagrams received (for the
//! client system or the server), and the end, which leaves the clock on
//! its frequency estimate and saves that on every exit, errors included.

use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::io;
use std::path::Path;
use std::sync::Arc;

use ntp_client::ntp_proto::{Date, RefId, Stratum, SystemState, Timestamp};
use ntp_client::{
    DatagramError, Event, Input, Instant, LeapEvent, NtsKeFailed, Output, PoolId, ReplyOutcome,
    SourceId, System,
};
use rand_chacha::ChaCha12Rng;
use serde_json::json;

use crate::background::{Background, Done, LOOKUP_GRACE_YIELDS};
use crate::clock::{Clock, ReadClock, Snapshot};
use crate::drift;
use crate::hwclock::{self, HwClock, StampKind};
use crate::log::{Log, round};
use crate::net::{
    self, Looped, MAX_DATAGRAM, Ready, Received, RecvBatch, Sockets, TimestampedSocket,
};
use crate::nts::{self, Established};
use crate::nts_server::KeListener;
use crate::options::Options;
use crate::refclocks::Refclocks;
use crate::serving::{self, Outbox, Serving, Stamping};
use crate::setup::Names;
use crate::step_watch::StepWatch;
use crate::txstamp::{self, Transmits};

/// The longest wait in `poll(2)`, so that a signal that arrives between
/// the flag check and the wait is seen soon.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// The longest wait in `poll(2)` while background jobs are under way, so
/// that their results are picked up soon after they come in.
const BACKGROUND_WAIT: Duration = Duration::from_millis(50);

/// Why the loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// `--duration` ran out.
    Duration,
    /// SIGINT or SIGTERM.
    Signal,
    /// An error ended the loop (the daemon exits with it).
    Error,
}

/// When the periodic chores are next due, seconds since the start.
#[derive(Clone, Copy, Debug)]
struct Chores {
    table_every: f64,
    next_table: f64,
    next_drift: f64,
}

/// Everything the loop owns.
pub(crate) struct Daemon<'a> {
    pub(crate) options: &'a Options,
    pub(crate) log: Log,
    pub(crate) clock: &'a mut dyn Clock,
    /// The start: the monotonic clock's zero.
    pub(crate) origin: std::time::Instant,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) system: System<ChaCha12Rng>,
    pub(crate) names: Names,
    /// NTS-KE exchanges and pool lookups under way.
    pub(crate) background: Background,
    pub(crate) sockets: Sockets,
    pub(crate) serving: Option<Serving>,
    pub(crate) ke_listener: Option<KeListener>,
    /// The `--refclock` drivers.
    pub(crate) refclocks: Refclocks,
    /// The network card's clock, with `--hwtimestamp`.
    pub(crate) hwclock: Option<HwClock>,
}

/// The loop's working state besides the parts.
struct Loop {
    buf: Vec<u8>,
    datagram: [u8; MAX_DATAGRAM],
    /// Answers waiting to go out together.
    outbox: Outbox,
    chores: Chores,
    step_watch: StepWatch,
    /// The datagrams sent whose transmit timestamps are awaited.
    transmits: Transmits,
    /// Requests read with one `recvmmsg(2)`.
    batch: RecvBatch,
    /// The rate the clock can run at against the monotonic one: its
    /// correction range, and the model's own drift.
    clock_rate: f64,
}

impl Daemon<'_> {
    /// Runs until `--duration` or a signal, then leaves the clock on the
    /// frequency estimate and saves it; on an error too, before returning
    /// it.
    pub(crate) fn run(mut self) -> io::Result<()> {
        let table_every = self.options.table_every.as_secs_f64();
        let mut state = Loop {
            buf: Vec::with_capacity(MAX_DATAGRAM),
            datagram: [0; MAX_DATAGRAM],
            outbox: Outbox::new(),
            chores: Chores {
                table_every,
                next_table: table_every,
                next_drift: drift::WRITE_INTERVAL,
            },
            step_watch: StepWatch::default(),
            transmits: Transmits::default(),
            batch: RecvBatch::new(),
            clock_rate: self.clock.max_rate() + self.options.model_drift.abs(),
        };
        let result = self.run_loop(&mut state);
        self.finish(result)
    }

    fn mono(&self) -> Instant {
        Instant::from_std(self.origin, std::time::Instant::now())
    }

    /// Seconds since start, for the log: the same monotonic clock.
    fn elapsed(&self) -> f64 {
        self.mono().as_secs_f64()
    }

    fn run_loop(&mut self, state: &mut Loop) -> io::Result<StopReason> {
        loop {
            self.watch_steps(&mut state.step_watch, state.clock_rate)?;
            self.refresh_hwclock();
            while let Some(done) = self.background.try_done() {
                self.finished(done);
            }
            let wake = self.drain_output(state)?;
            self.refresh_server()?;
            let now = self.elapsed();
            if let Some(reason) = self.stop_reason(now) {
                return Ok(reason);
            }
            self.chores(&mut state.chores, now);
            let ready = self.wait(wake, &state.chores, now)?;
            self.watch_steps(&mut state.step_watch, state.clock_rate)?;
            self.receive_all(&ready, state)?;
            // The loop wakes at least every MAX_WAIT: reference clocks
            // (a sample a second) are read at every turn.
            let now = self.mono();
            self.refclocks
                .read(&mut self.system, &*self.clock, now, self.log);
            self.system.handle_timeout(self.mono());
        }
    }

    /// Reads the network card's clock against the system's, once a
    /// second (`--hwtimestamp`).
    fn refresh_hwclock(&mut self) {
        let Some(hw) = &mut self.hwclock else {
            return;
        };
        if let Some(error) = hw.refresh(std::time::Instant::now()) {
            self.log.warn(self.elapsed(), &error);
        }
    }

    /// Reports a step of the clock made by somebody else (see
    /// `step_watch`) to the system, and logs it.
    fn watch_steps(&mut self, watch: &mut StepWatch, max_rate: f64) -> io::Result<()> {
        let now = self.mono();
        if let Some(by) = watch.observe(now, self.clock.now()?, max_rate) {
            let seconds = by.to_seconds_f64();
            self.log.line(
                now.as_secs_f64(),
                "external_step",
                &format!("the clock was stepped by {seconds:+.6} s by somebody else"),
                json!({ "offset_s": seconds }),
            );
            self.system.handle_clock_stepped(by);
        }
        Ok(())
    }

    /// Drains the system's output, applying every clock action at once;
    /// returns when it next wants to run.
    fn drain_output(&mut self, state: &mut Loop) -> io::Result<Instant> {
        loop {
            let output = self
                .system
                .poll_output(self.mono(), self.clock.now()?, &mut state.buf);
            match output {
                Output::Transmit {
                    source,
                    destination,
                    len,
                } => {
                    let payload = state.buf.get(..len).unwrap_or(&[]);
                    self.transmit(source, destination, payload, &mut state.transmits);
                }
                Output::Event(event) => self.handle_event(&event, &mut state.step_watch)?,
                Output::Timeout(at) => return Ok(at),
                Output::NtsKe { source } => self.start_key_exchange(source),
                Output::Resolve { pool } => self.start_lookup(pool),
                _ => {}
            }
        }
    }

    /// Sends a request of `source`, and reports its kernel transmit
    /// timestamp when the kernel has it at once (loopback and most
    /// drivers); a later one comes with `POLLERR`. A failure is like a
    /// lost packet: the source's reply timeout and reach register deal
    /// with it.
    fn transmit(
        &mut self,
        source: SourceId,
        destination: SocketAddr,
        payload: &[u8],
        transmits: &mut Transmits,
    ) {
        let Some(socket) = self.sockets.client_for(destination) else {
            return;
        };
        if let Err(error) = socket.send_to(payload, destination) {
            self.log
                .warn(self.elapsed(), &format!("send to {destination}: {error}"));
            return;
        }
        transmits.client.push(source, payload);
        let hw = self.hwclock.as_ref();
        report_requests(socket, &mut self.system, &*self.clock, hw, transmits);
    }

    /// Logs an event and carries out the clock actions it asks for.
    fn handle_event(&mut self, event: &Event, step_watch: &mut StepWatch) -> io::Result<()> {
        let names = &self.names;
        self.log.event(self.elapsed(), event, |id| names.of(id));
        match *event {
            Event::PoolMemberAdded { pool, id, address } => {
                let pool = self.system.pool_name(pool).unwrap_or("pool");
                let name = format!("{pool} ({address})");
                self.names.insert(id, name);
            }
            Event::ClockStep(offset) => {
                self.clock.step(offset)?;
                step_watch.rebase();
            }
            Event::ClockAdjust(adjust) => self.clock.set_rate(adjust.rate())?,
            Event::Leap(LeapEvent::Apply(leap)) => {
                self.clock.step(leap.step())?;
                step_watch.rebase();
            }
            Event::Panic { offset } => {
                return Err(io::Error::other(format!(
                    "offset {offset:+.3} s beyond the panic threshold or --maxchange; \
                     set the clock by hand and start again"
                )));
            }
            _ => {}
        }
        Ok(())
    }

    /// Starts NTS-KE for `source` in the background (see `background`).
    fn start_key_exchange(&mut self, source: SourceId) {
        let Some((host, port)) = self
            .system
            .nts_ke_target(source)
            .map(|(host, port)| (host.to_owned(), port))
        else {
            return;
        };
        self.background.key_exchange(source, host, port);
    }

    /// Starts the lookup of a pool's name in the background, and gives
    /// it [`LOOKUP_GRACE_YIELDS`] (other results that come in meanwhile
    /// are used too).
    fn start_lookup(&mut self, pool: PoolId) {
        let name = self.system.pool_name(pool).unwrap_or_default().to_owned();
        self.background.resolve(pool, name);
        while let Some(done) = self.background.wait_done(LOOKUP_GRACE_YIELDS) {
            let ours = matches!(&done, Done::Resolved { pool: p, .. } if *p == pool);
            self.finished(done);
            if ours {
                break;
            }
        }
    }

    /// Hands a finished background job to the system, and logs it.
    fn finished(&mut self, done: Done) {
        match done {
            Done::Resolved { pool, name, result } => self.resolved(pool, &name, result),
            Done::KeyExchanged {
                source,
                host,
                port,
                result,
            } => self.key_exchanged(source, &host, port, *result),
        }
    }

    /// The outcome of an NTS-KE exchange of `source` with `host`:`port`.
    fn key_exchanged(
        &mut self,
        source: SourceId,
        host: &str,
        port: u16,
        result: Result<Established, String>,
    ) {
        let name = self.names.of(source.get());
        let t = self.elapsed();
        match result {
            Ok(established) => {
                nts::log_established(self.log, t, &name, host, port, &established);
                let address = established.outcome.ntp_address;
                if let Err(error) =
                    self.system
                        .handle_nts_ke(self.mono(), source, Ok(established.outcome))
                {
                    self.log.warn(t, &format!("NTS-KE {host}:{port}: {error}"));
                }
                self.names
                    .insert(source, format!("{host}:{port} (NTS, {address})"));
            }
            Err(error) => {
                nts::log_failed(self.log, t, &name, host, port, &error);
                let _ = self
                    .system
                    .handle_nts_ke(self.mono(), source, Err(NtsKeFailed));
            }
        }
    }

    /// The usable addresses of a pool's name, or why there are none.
    fn resolved(&mut self, pool: PoolId, name: &str, result: Result<Vec<SocketAddr>, String>) {
        let t = self.elapsed();
        match result {
            Ok(usable) => {
                let added = self
                    .system
                    .handle_resolved(self.mono(), pool, &usable)
                    .unwrap_or(0);
                self.log.note(
                    t,
                    &format!(
                        "pool {name}: {} address(es), {added} new member(s)",
                        usable.len()
                    ),
                );
            }
            Err(error) => {
                self.log
                    .warn(t, &format!("pool {name}: cannot resolve: {error}"));
            }
        }
    }

    /// What `--serve` answers with: the system variables while the
    /// sources synchronize the clock; with `--local STRATUM` otherwise,
    /// this machine's clock at that stratum, reference id `LOCL` and the
    /// reference time now (chrony's `local stratum`; RFC 5905, section
    /// 7.3: a primary server's root delay and dispersion are its own,
    /// zero here).
    fn served_state(&self) -> io::Result<SystemState> {
        let state = self.system.system_state();
        match self.options.local {
            Some(stratum) if !state.is_synchronized() => {
                let now = Timestamp::from(self.clock.now()?);
                let mut local = SystemState::primary(RefId::LOCL, now);
                local.stratum = Stratum::new(stratum);
                local.precision = state.precision;
                Ok(local)
            }
            _ => Ok(state),
        }
    }

    /// Hands the server the system variables of the moment, and the
    /// cookie master keys when the NTS-KE thread rotated them.
    fn refresh_server(&mut self) -> io::Result<()> {
        if self.serving.is_none() {
            return Ok(());
        }
        let state = self.served_state()?;
        let rotated = self.ke_listener.as_mut().and_then(KeListener::rotated_keys);
        if let Some(serving) = &mut self.serving {
            serving.refresh(state, rotated);
        }
        Ok(())
    }

    /// Whether the loop should end at `now`, and why.
    fn stop_reason(&self, now: f64) -> Option<StopReason> {
        if self.stop.load(Ordering::Relaxed) {
            return Some(StopReason::Signal);
        }
        self.options
            .duration
            .is_some_and(|duration| duration.as_secs_f64() <= now)
            .then_some(StopReason::Duration)
    }

    /// The peer table and the drift file, when due.
    fn chores(&self, chores: &mut Chores, now: f64) {
        if now >= chores.next_table {
            self.log.table(now, &self.system.peer_table(self.mono()));
            chores.next_table += chores.table_every;
        }
        if now >= chores.next_drift {
            chores.next_drift += drift::WRITE_INTERVAL;
            self.save_drift(now);
        }
    }

    /// Waits for a datagram, the system's timeout (`wake`) or the next
    /// chore; one flag per socket of [`Sockets::iter`].
    fn wait(
        &self,
        wake: Instant,
        chores: &Chores,
        now: f64,
    ) -> io::Result<[Ready; net::MAX_POLLED]> {
        let remaining = self
            .options
            .duration
            .map(|duration| duration.as_secs_f64() - now);
        let longest = if self.background.pending() > 0 {
            BACKGROUND_WAIT
        } else {
            MAX_WAIT
        };
        let mut wait = wake.saturating_duration_since(self.mono()).min(longest);
        for chore in [
            Some(chores.next_table - now),
            Some(chores.next_drift - now),
            remaining,
        ]
        .into_iter()
        .flatten()
        {
            wait = wait.min(Duration::try_from_secs_f64(chore.max(0.0)).unwrap_or(Duration::ZERO));
        }
        net::wait(self.sockets.iter().map(|(socket, _)| socket), wait)
    }

    /// Reads the error queue (transmit timestamps) and then the
    /// datagrams of each ready socket: up to [`serving::BATCH`] requests
    /// for the server, [`net::RECV_BATCH`] to a `recvmmsg(2)`, and one
    /// reply for the client system.
    fn receive_all(&mut self, ready: &[Ready], state: &mut Loop) -> io::Result<()> {
        for (index, ready) in ready.iter().enumerate() {
            if ready.looped {
                self.read_looped(index, &mut state.transmits);
            }
            if !ready.data {
                continue;
            }
            match self.sockets.get(index) {
                Some((_, true)) => self.serve_batches(index, state)?,
                Some((_, false)) => self.receive_reply(index, state)?,
                None => {}
            }
        }
        Ok(())
    }

    /// One reply for the client system from client socket `index`.
    fn receive_reply(&mut self, index: usize, state: &mut Loop) -> io::Result<()> {
        let Some(received) = self.receive_from(index, &mut state.datagram) else {
            return Ok(());
        };
        let (rx_wall, rx_kind) = self.arrival(&received)?;
        let data = state.datagram.get(..received.len).unwrap_or(&[]);
        let reply = (&received, data, rx_wall, rx_kind);
        self.handle_reply(reply, &state.transmits.reported);
        Ok(())
    }

    /// Answers the requests on serving socket `index`, [`net::RECV_BATCH`]
    /// at a time, up to [`serving::BATCH`], until it has no more.
    fn serve_batches(&mut self, index: usize, state: &mut Loop) -> io::Result<()> {
        for _ in 0..serving::BATCH / net::RECV_BATCH {
            let Some((socket, _)) = self.sockets.get(index) else {
                return Ok(());
            };
            let count = match socket.recv_batch(&mut state.batch) {
                Ok(count) => count,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) => {
                    self.log.warn(self.elapsed(), &format!("receive: {error}"));
                    return Ok(());
                }
            };
            // What was answered goes out even if the clock failed midway.
            let answered = self.answer_batch(count, state);
            if let (Some(Serving::Inline(server)), Some(socket)) =
                (&mut self.serving, &self.sockets.serve)
            {
                state.outbox.flush(server, socket);
            }
            answered?;
            if count < net::RECV_BATCH {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Answers the first `count` requests of the receive batch into the
    /// outbox, with one reading of the clock for their receive
    /// timestamps and of the monotonic clock for their rate limits.
    fn answer_batch(&mut self, count: usize, state: &mut Loop) -> io::Result<()> {
        let clock = self.clock.snapshot()?;
        let now = self.mono();
        for slot in 0..count {
            let Some((received, data)) = state.batch.get(slot) else {
                continue;
            };
            let (rx_wall, _) = self.arrival_on(&received, &clock)?;
            self.answer(
                (&received, data, rx_wall),
                (&clock, now),
                &mut state.outbox,
                &mut state.transmits,
            )?;
        }
        Ok(())
    }

    /// When a datagram arrived, on our clock, and where that was stamped:
    /// the card's timestamp (through the PHC), the kernel's, or the clock
    /// read now.
    fn arrival(&self, received: &Received) -> io::Result<(Date, StampKind)> {
        self.arrival_on(received, &*self.clock)
    }

    /// [`arrival`](Self::arrival) on `clock` (the daemon's, or a
    /// snapshot of it).
    fn arrival_on(
        &self,
        received: &Received,
        clock: &dyn ReadClock,
    ) -> io::Result<(Date, StampKind)> {
        let stamps = (received.kernel_time, received.hardware);
        match hwclock::reading(clock, stamps, self.hwclock.as_ref()) {
            Some((rx_wall, kind)) => Ok((rx_wall?, kind)),
            None => Ok((clock.now()?, StampKind::Daemon)),
        }
    }

    /// The transmit timestamps on socket `index`'s error queue: of
    /// requests for the client system, of answers for the server.
    fn read_looped(&mut self, index: usize, transmits: &mut Transmits) {
        let Some((socket, is_serve)) = self.sockets.get(index) else {
            return;
        };
        let hw = self.hwclock.as_ref();
        if !is_serve {
            report_requests(socket, &mut self.system, &*self.clock, hw, transmits);
        } else if let Some(Serving::Inline(server)) = &mut self.serving {
            let stamping = Stamping {
                socket,
                hw,
                sent: &mut transmits.serve,
                frame: &mut transmits.frame,
            };
            serving::report_answers(stamping, server, &*self.clock);
        }
    }

    /// A datagram from socket `index` of [`Sockets::iter`] into
    /// `datagram`.
    fn receive_from(&self, index: usize, datagram: &mut [u8; MAX_DATAGRAM]) -> Option<Received> {
        let (socket, _) = self.sockets.get(index)?;
        match socket.recv(datagram) {
            Ok(received) => Some(received),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => None,
            Err(error) => {
                self.log.warn(self.elapsed(), &format!("receive: {error}"));
                None
            }
        }
    }

    /// A datagram for the client system, with where its arrival was
    /// stamped; samples are logged with `--json` or `--verbose` (chronyd's
    /// measurements log), refusals with `--verbose`.
    fn handle_reply(
        &mut self,
        (received, data, rx_wall, rx_kind): (&Received, &[u8], Date, StampKind),
        reported: &txstamp::Reported,
    ) {
        let input = Input::Datagram {
            from: received.from,
            data,
            rx_wall,
        };
        match self.system.handle_input(self.mono(), input) {
            Ok(ReplyOutcome::Sample { measurement, .. }) if self.log.verbose || self.log.json => {
                self.log.sample(
                    self.elapsed(),
                    received.from,
                    &measurement,
                    reported.kind_of(measurement.t1),
                    rx_kind,
                );
            }
            Ok(_) => {}
            Err(error) => self.log_refusal(received, &error),
        }
    }

    /// A refused datagram, with `--verbose`.
    fn log_refusal(&self, received: &Received, error: &DatagramError) {
        if self.log.verbose {
            self.log.line(
                self.elapsed(),
                "refused",
                &format!("refused a datagram from {}: {error}", received.from),
                json!({ "from": received.from.to_string(), "error": error.to_string() }),
            );
        }
    }

    /// Answers one client on the serving socket with `ntp-server`.
    fn answer(
        &mut self,
        (received, data, rx_wall): (&Received, &[u8], Date),
        (clock, now): (&Snapshot, Instant),
        outbox: &mut Outbox,
        transmits: &mut Transmits,
    ) -> io::Result<()> {
        let (Some(Serving::Inline(server)), Some(socket)) =
            (&mut self.serving, &self.sockets.serve)
        else {
            return Ok(());
        };
        let stamping = self.sockets.serve_stamped.as_ref().map(|twin| Stamping {
            socket: twin,
            hw: self.hwclock.as_ref(),
            sent: &mut transmits.serve,
            frame: &mut transmits.frame,
        });
        serving::respond(
            server,
            socket,
            clock,
            (received, data, rx_wall),
            now,
            outbox,
            stamping,
        )
    }

    /// Whether the frequency estimate is worth a drift file: known at
    /// least as well as a drift file is taken to be when read
    /// ([`ntp_discipline::DRIFT_FILE_FREQUENCY_SD`], 1 ppm). A few
    /// seconds of measurements are not; nor is a drift file's frequency
    /// that no measurement has confirmed yet.
    fn frequency_known(&self) -> bool {
        self.system
            .discipline()
            .frequency_sd()
            .is_some_and(|sd| sd <= ntp_discipline::DRIFT_FILE_FREQUENCY_SD)
    }

    /// Writes the drift file, if there is one and the estimate means
    /// something.
    fn save_drift(&self, t: f64) {
        let Some(path) = &self.options.drift_file else {
            return;
        };
        if self.frequency_known() {
            write_drift(self.log, t, path, self.system.discipline().frequency());
        } else {
            self.log.note(
                t,
                &format!(
                    "drift file {}: not written, the frequency is not known well enough yet",
                    path.display()
                ),
            );
        }
    }

    /// Stops NTS-KE and the server (its workers, if any) and logs what
    /// they did.
    fn stop_serving(&mut self, t: f64) {
        if let Some(counters) = self.refclocks.counters() {
            self.log.line(
                t,
                "refclock_counters",
                &format!("refclocks: {counters}"),
                json!({ "counters": counters }),
            );
        }
        if let Some(listener) = self.ke_listener.take() {
            // The accept loop ends (exchanges under way finish within
            // their timeouts, or with the process).
            let counters = listener.counters().to_string();
            drop(listener);
            self.log.line(
                t,
                "nts_ke_counters",
                &format!("NTS-KE: {counters}"),
                json!({ "counters": counters }),
            );
        }
        if let Some(serving) = self.serving.take() {
            let counters = serving.finish().to_string();
            self.log.line(
                t,
                "served",
                &format!("served: {counters}"),
                json!({ "counters": counters }),
            );
        }
    }

    /// The end, whatever ended the loop: no more NTS-KE; the kernel left
    /// free-running on the frequency estimate, without the phase slew of
    /// the moment; the estimate kept for the next start; the last table
    /// and the stop line. Returns the loop's error, if any.
    fn finish(mut self, result: io::Result<StopReason>) -> io::Result<()> {
        let reason = result.as_ref().map_or(StopReason::Error, |reason| *reason);
        let t = self.elapsed();
        self.stop_serving(t);
        let frequency = self.system.discipline().frequency();
        let rate_reset = self.clock.set_rate(frequency);
        if let Err(error) = &rate_reset {
            self.log.warn(
                t,
                &format!("cannot leave the clock at the frequency: {error}"),
            );
        }
        self.save_drift(t);
        self.log.table(t, &self.system.peer_table(self.mono()));
        let synchronized = self.system.is_synchronized();
        let error = result.as_ref().err().map(ToString::to_string);
        self.log.line(
            t,
            "stop",
            &format!(
                "stop ({reason:?}{}): frequency {:+.4} ppm, {}",
                error
                    .as_deref()
                    .map_or_else(String::new, |error| format!(": {error}")),
                frequency * 1e6,
                if synchronized {
                    "synchronized"
                } else {
                    "unsynchronized"
                }
            ),
            json!({
                "reason": format!("{reason:?}"),
                "error": error,
                "frequency_ppm": round(frequency * 1e6, 6),
                "clock_left_at_frequency": rate_reset.is_ok(),
                "synchronized": synchronized,
            }),
        );
        result.and(rate_reset).map(|_| ())
    }
}

/// Reads a client socket's error queue and hands each kernel (or, through
/// `hw`, hardware) transmit timestamp of a request to `system`,
/// remembering it for the log.
fn report_requests(
    socket: &TimestampedSocket,
    system: &mut System<ChaCha12Rng>,
    clock: &dyn Clock,
    hw: Option<&HwClock>,
    transmits: &mut Transmits,
) {
    let Transmits {
        client,
        frame,
        reported,
        ..
    } = transmits;
    txstamp::read(socket, client, frame, |source, nonce, looped: Looped| {
        if let Some((Ok(t1), kind)) = hwclock::reading(clock, (looped.time, looped.hardware), hw) {
            system.handle_transmitted(source, nonce, t1);
            reported.push(t1, kind);
        }
    });
}

/// Writes `frequency` to the drift file at `path` and logs it.
fn write_drift(log: Log, t: f64, path: &Path, frequency: f64) {
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
