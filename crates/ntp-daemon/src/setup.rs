//! Building the daemon from its options: the key store, the client
//! [`System`] with its sources, the serving side (an `ntp-server` core and
//! the NTS-KE listener), and the start line of the log.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use ntp_client::ntp_auth::KeyStore;
use ntp_client::{SourceId, System, SystemConfig};
use ntp_nts::rustls::ClientConfig;
use rand_chacha::{ChaCha12Rng, ChaCha20Rng};
use rand_core::{RngCore, SeedableRng};
use serde_json::json;

use crate::clock::{self, Clock};
use crate::drift::Drift;
use crate::hwclock::HwClock;
use crate::log::Log;
use crate::net::Sockets;
use crate::nts_server::{KeListener, KeyStorage};
use crate::options::{NtsOption, Options, ServerOption};
use crate::serving::{Serving, Workers};

/// Capacity of the key store read from `--keys`: far more keys than a
/// daemon's servers and client groups use (ntpd's key ids stop at 65535,
/// but files hold a handful).
const MAX_KEYS: usize = 1024;

/// The log's names of the sources, by id.
#[derive(Debug, Default)]
pub(crate) struct Names(HashMap<SourceId, String>);

impl Names {
    pub(crate) fn insert(&mut self, id: SourceId, name: String) {
        self.0.insert(id, name);
    }

    /// The name of source `id`, or `#id`.
    pub(crate) fn of(&self, id: u64) -> String {
        self.0
            .get(&SourceId::new(id))
            .cloned()
            .unwrap_or_else(|| format!("#{id}"))
    }
}

/// The client side: the system, its sources' names, the NTS-KE client
/// configuration.
pub(crate) struct Client {
    pub(crate) system: System<ChaCha12Rng>,
    pub(crate) names: Names,
    pub(crate) nts_config: Option<Arc<ClientConfig>>,
}

/// The `--keys` file, if any.
///
/// The store is made empty on the heap and the file is read into it where
/// it stays (`load_into`): a `KeyStore<MAX_KEYS>` is some 90 KiB, and
/// returning it by value would move every secret, which can leave unwiped
/// copies on the stack.
pub(crate) fn load_keys(options: &Options) -> io::Result<Option<Box<KeyStore<MAX_KEYS>>>> {
    let Some((path, format)) = &options.keys else {
        return Ok(None);
    };
    let mut keys = Box::new(KeyStore::new());
    keys.load_into(path, *format).map_err(|error| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--keys {}: {error}", path.display()),
        )
    })?;
    Ok(Some(keys))
}

/// The system's configuration from the options, the drift file and the
/// clock's range.
fn system_config(options: &Options, drift: Option<Drift>, max_rate: f64) -> SystemConfig {
    let mut config = SystemConfig::default().with_poll_range(options.min_poll, options.max_poll);
    config.initial_frequency = drift.map(|drift| drift.frequency);
    config.initial_frequency_sd = drift.and_then(|drift| drift.sd);
    config.source.iburst = options.iburst;
    config.source.burst = options.burst;
    config.source.retry_burst = options.retry_burst;
    config.source.delay = options.delay;
    config.min_sources = options.min_sources;
    config.auth_select = options.auth_select;
    config.max_jitter = options.max_jitter;
    if let Some(seconds) = options.max_distance {
        config = config.with_max_distance(seconds);
    }
    clock_limits(&mut config.discipline, max_rate, options);
    poll_target(&mut config.discipline, options);
    if let Some(precision) = options.clock_precision {
        config.discipline.precision = precision;
    }
    config
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
    discipline.max_change = options.max_change;
    discipline.fallback_drift = options.fallback_drift;
    if let Some(ratio) = options.correction_time_ratio {
        discipline.correction_time_ratio = ratio;
    }
}

/// `--polltarget`: the discipline's poll gate from chrony's poll target
/// (its range was checked with the option).
fn poll_target(discipline: &mut ntp_discipline::Config, options: &Options) {
    if let Some(with_target) = options
        .poll_target
        .and_then(|target| discipline.with_poll_target(target))
    {
        *discipline = with_target;
    }
}

/// The client system with every `--server`, `--pool` and `--nts` source,
/// at monotonic time `now`.
pub(crate) fn client(
    options: &Options,
    keys: Option<&KeyStore<MAX_KEYS>>,
    drift: Option<Drift>,
    clock: &dyn Clock,
    now: ntp_client::Instant,
) -> io::Result<Client> {
    let config = system_config(options, drift, clock.max_rate());
    let rng = match options.seed {
        Some(seed) => ChaCha12Rng::seed_from_u64(seed),
        None => ChaCha12Rng::from_os_rng(),
    };
    let mut system = System::new(config, now, clock.now()?, rng)
        .map_err(|error| io::Error::other(format!("configuration: {error}")))?;
    let mut names = Names::default();
    for server in &options.servers {
        let id = add_server(&mut system, keys, server)?;
        let auth = server
            .key
            .map_or_else(String::new, |id| format!(", key {id}"));
        names.insert(id, format!("{} ({}{auth})", server.name, server.address));
    }
    for pool in &options.pools {
        let mut source = system.config().source.clone();
        pool.selection.apply(&mut source);
        system
            .add_pool_with(&pool.name, pool.max_sources, source)
            .map_err(|error| io::Error::other(format!("--pool {}: {error}", pool.name)))?;
    }
    let nts_config = match &options.nts_ca {
        Some(path) if !options.nts.is_empty() => Some(
            ntp_nts::tls::client_config_from_pem_file(path).map_err(|error| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("--nts-ca: {error}"))
            })?,
        ),
        _ => None,
    };
    for NtsOption {
        host,
        port,
        selection,
    } in &options.nts
    {
        let mut source = system.config().source.clone();
        source.sntp.version = None;
        selection.apply(&mut source);
        let id = system
            .add_nts_source_with(host, *port, source)
            .map_err(|error| io::Error::other(format!("--nts {host}:{port}: {error}")))?;
        names.insert(id, format!("{host}:{port} (NTS)"));
    }
    Ok(Client {
        system,
        names,
        nts_config,
    })
}

/// One `--server`, signed with its `--key` when it has one, in its
/// `--ntp-version`.
fn add_server(
    system: &mut System<ChaCha12Rng>,
    keys: Option<&KeyStore<MAX_KEYS>>,
    server: &ServerOption,
) -> io::Result<SourceId> {
    let name = &server.name;
    let mut source = system.config().source.clone();
    source.sntp.version = server.version;
    server.selection.apply(&mut source);
    if let Some(key_id) = server.key {
        let key = keys.and_then(|keys| keys.get(key_id)).ok_or_else(|| {
            io::Error::other(format!("--server {name}: no key {key_id} in --keys"))
        })?;
        source.sntp.key = Some(key.clone());
    }
    system
        .add_source_with(server.address, source)
        .map_err(|error| io::Error::other(format!("--server {name}: {error}")))
}

/// The `--serve` core, answering with `state`; clients that sign their
/// requests with a key of the file get signed answers.
pub(crate) fn server(
    options: &Options,
    keys: Option<&KeyStore<MAX_KEYS>>,
    state: ntp_server::SystemState,
) -> io::Result<Option<ntp_server::Server>> {
    if options.serve.is_none() {
        return Ok(None);
    }
    let mut server = ntp_server::Server::new(&options.server_config, state)
        .map_err(|error| io::Error::other(format!("server: {error}")))?;
    if let Some(keys) = keys {
        server.set_keys(keys);
    }
    Ok(Some(server))
}

/// How `--serve` answers, with `server` as built (NTS included): from the
/// loop, or on the workers, which take their sockets and read `clock`.
pub(crate) fn serving(
    server: Option<ntp_server::Server>,
    sockets: &mut Sockets,
    clock: &dyn Clock,
    log: Log,
    origin: std::time::Instant,
) -> io::Result<Option<Serving>> {
    let Some(server) = server else {
        return Ok(None);
    };
    if sockets.serve_workers.is_empty() {
        return Ok(Some(Serving::Inline(Box::new(server))));
    }
    let workers = core::mem::take(&mut sockets.serve_workers);
    Workers::start(&server, workers, &clock.reader(), origin, log)
        .map(|w| Some(Serving::Workers(Box::new(w))))
}

/// NTS for `--serve`: the NTS-KE listener hands out cookies under master
/// keys the server shares, and names the `--serve` port.
pub(crate) fn nts_service(
    options: &Options,
    server: Option<&mut ntp_server::Server>,
    sockets: &Sockets,
    log: Log,
    origin: std::time::Instant,
) -> io::Result<Option<KeListener>> {
    let (Some(nts), Some(server), Some(serve_address)) =
        (&options.nts_serve, server, sockets.serve_address)
    else {
        return Ok(None);
    };
    let config =
        ntp_nts::tls::server_config_from_pem_files(&nts.cert, &nts.key).map_err(|error| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("--nts-cert/--nts-key: {error}"),
            )
        })?;
    let ntp_port = serve_address.port();
    let storage = KeyStorage {
        file: nts.key_file.clone(),
    };
    let (listener, cookie_keys) =
        KeListener::start(nts.listen, config, ntp_port, storage, log, origin).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("--nts-ke-listen {}: {error}", nts.listen),
            )
        })?;
    // The nonces of answers and fresh cookies: never from --seed, which
    // makes the client's requests reproducible.
    let mut seed = [0; ntp_server::NTS_SEED_LEN];
    ChaCha20Rng::from_os_rng().fill_bytes(&mut seed);
    server.set_nts(cookie_keys, seed);
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
    Ok(Some(listener))
}

/// The precision of `clock`'s readings, the default precision of the
/// `--refclock`s ([`clock::reading_precision`]), logged. Measured only
/// when there are reference clocks: it takes a hundred readings.
pub(crate) fn refclock_precision(options: &Options, clock: &dyn Clock, log: Log) -> Option<i8> {
    if options.refclocks.is_empty() {
        return None;
    }
    let precision = clock::reading_precision(clock.reader().as_ref());
    let text = precision.map_or_else(
        || String::from("the clock's reading precision could not be measured"),
        |p| format!("the clock reads to 2^{p} s, the default precision of --refclock"),
    );
    log.note(0.0, &text);
    precision
}

/// The network card's clock for `--hwtimestamp`: the PTP clock named,
/// or the one sysfs lists for the interface; logged.
pub(crate) fn hwclock(options: &Options, log: Log) -> io::Result<Option<HwClock>> {
    let Some(hw) = &options.hwtimestamp else {
        return Ok(None);
    };
    let path = match &hw.phc {
        Some(path) => path.clone(),
        None => crate::hwclock::interface_phc(&hw.interface)?,
    };
    let clock = HwClock::open(&path)?;
    log.line(
        0.0,
        "hwtimestamp",
        &format!(
            "hardware timestamps of {} through {}",
            hw.interface,
            clock.path().display()
        ),
        json!({ "interface": hw.interface, "phc": clock.path().display().to_string() }),
    );
    Ok(Some(clock))
}

/// The start line: the clock, the sources, the poll range, the drift
/// file's frequency, the kernel timestamps and the serving address.
pub(crate) fn log_start(
    log: Log,
    options: &Options,
    clock: &dyn Clock,
    sockets: &Sockets,
    initial_frequency: Option<f64>,
) {
    let received = sockets.iter().all(|(socket, _)| socket.kernel_timestamps());
    let timestamps = if received && sockets.transmit_timestamps() {
        "kernel (SO_TIMESTAMPING, software, receive and transmit)"
    } else if received {
        "kernel (SO_TIMESTAMPING, software, receive only)"
    } else {
        "clock read after wakeup (SO_TIMESTAMPING refused)"
    };
    let frequency =
        initial_frequency.map_or_else(|| "unknown".to_owned(), |f| format!("{:+.3} ppm", f * 1e6));
    let serving = sockets.serve_address.map_or_else(String::new, |address| {
        match sockets.serve_workers.len() {
            0 => format!(", serving on {address}"),
            threads => format!(", serving on {address} ({threads} threads)"),
        }
    });
    log.line(
        0.0,
        "start",
        &format!(
            "start: clock {}, {} server(s), {} NTS server(s), poll {}..{}, iburst {}, \
             initial frequency {frequency}, timestamps: {timestamps}{serving}",
            clock.name(),
            options.servers.len(),
            options.nts.len(),
            options.min_poll,
            options.max_poll,
            options.iburst,
        ),
        json!({
            "clock": clock.name(),
            "servers": options.servers.iter().map(|s| format!("{} ({})", s.name, s.address)).collect::<Vec<_>>(),
            "nts": options.nts.iter().map(|n| format!("{}:{}", n.host, n.port)).collect::<Vec<_>>(),
            "min_poll": options.min_poll,
            "max_poll": options.max_poll,
            "iburst": options.iburst,
            "initial_frequency_ppm": initial_frequency.map(|f| f * 1e6),
            "timestamps": timestamps,
            "serve": sockets.serve_address.map(|a| a.to_string()),
            "serve_threads": sockets.serve_workers.len(),
        }),
    );
}
