//! Command-line options (parsed with `lexopt`).

use core::net::SocketAddr;
use core::time::Duration;
use std::net::ToSocketAddrs;
use std::path::PathBuf;

use lexopt::ValueExt as _;

use crate::refclock_options::{self, RefclockOption};
use ntp_client::ntp_auth::{KeyFileFormat, KeyId};
use ntp_client::ntp_discipline::{FallbackDrift, MakeStep, MaxChange};
use ntp_client::{
    AuthSelectMode, DEFAULT_MAX_POLL, DEFAULT_MIN_POLL, DelayConfig, MAX_POLL, MIN_POLL,
    SelectOptions, SourceConfig,
};

/// The NTP port, used when `--server` names none.
const NTP_PORT: u16 = 123;

/// The NTS-KE port, used when `--nts` names none (RFC 8915 section 7.1).
const NTS_KE_PORT: u16 = ntp_nts::ke::NTS_KE_PORT;

/// Which clock the daemon steers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClockKind {
    /// A model of a clock, never the system's.
    Model,
    /// The kernel's CLOCK_REALTIME.
    Kernel,
}

/// `--hwtimestamp`: the interface whose card stamps datagrams, and its
/// PTP clock when named (found in sysfs otherwise; see `hwclock`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HwTimestamp {
    pub(crate) interface: String,
    pub(crate) phc: Option<PathBuf>,
}

/// Everything the command line says.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// Servers, resolved, each with the id of the key that authenticates
    /// it (`--key`) and the NTP version of its requests (`--ntp-version`),
    /// if given.
    pub(crate) servers: Vec<ServerOption>,
    /// The key file (`--keys`) and its format (`--keys-format`).
    pub(crate) keys: Option<(PathBuf, KeyFileFormat)>,
    /// Pools: names with a port, resolved when the system asks.
    pub(crate) pools: Vec<PoolOption>,
    /// NTS sources: the NTS-KE server's host (a name, an IPv4 address or
    /// a bracketed IPv6 address) and TCP port.
    pub(crate) nts: Vec<NtsOption>,
    /// `--refclock KIND:ARGS`: reference clocks, in order.
    pub(crate) refclocks: Vec<RefclockOption>,
    /// The kind of the last `--server`, `--pool` or `--nts`, which the
    /// selection flags that follow it (`--prefer`, ...) apply to.
    last_source: Option<SourceKind>,
    /// `--authselectmode`: chrony's, `mix` by default.
    pub(crate) auth_select: AuthSelectMode,
    /// `--maxdistance S`: chrony's `maxdistance`, RFC 5905's MAXDIST.
    pub(crate) max_distance: Option<f64>,
    /// `--hwtimestamp IFACE[,phc=PATH]`: hardware timestamps.
    pub(crate) hwtimestamp: Option<HwTimestamp>,
    /// `--clockprecision S`: the local clock's precision, log2 s (chrony's
    /// `clockprecision`); `None`: the discipline's default, 2^-18 s.
    pub(crate) clock_precision: Option<i8>,
    /// `--maxjitter S`: chrony's `maxjitter` (1 s); `None` after
    /// `--maxjitter 0`.
    pub(crate) max_jitter: Option<f64>,
    /// The PEM trust anchors for the NTS-KE servers' certificates.
    pub(crate) nts_ca: Option<PathBuf>,
    pub(crate) min_poll: i8,
    pub(crate) max_poll: i8,
    pub(crate) iburst: bool,
    pub(crate) drift_file: Option<PathBuf>,
    pub(crate) duration: Option<Duration>,
    pub(crate) serve: Option<SocketAddr>,
    /// How `--serve` treats its clients: the access list (`--rule`,
    /// `--default-action`), the rate limiter (`--rate`), the policies
    /// for symmetric-active requests (`--symmetric`) and bad MACs
    /// (`--mac-policy`).
    pub(crate) server_config: ntp_server::ServerConfig,
    /// `--local STRATUM`: serve the local clock at that stratum while the
    /// sources do not synchronize it (or with no sources at all).
    pub(crate) local: Option<u8>,
    /// `--serve-threads N`: answer on N worker threads (see `serving`);
    /// 0, the default, answers from the loop.
    pub(crate) serve_threads: usize,
    /// Whether any of the flags above (`--local`, `--serve-threads` and
    /// the access, rate and policy flags) was given.
    pub(crate) serving_flags: bool,
    /// NTS for `--serve`: the NTS-KE listening address, the certificate
    /// chain and the private key (PEM files); all three or none.
    pub(crate) nts_serve: Option<NtsServe>,
    pub(crate) clock: ClockKind,
    /// Model clock: initial error against the system clock, seconds.
    pub(crate) model_offset: f64,
    /// Model clock: oscillator frequency error, seconds per second.
    pub(crate) model_drift: f64,
    pub(crate) json: bool,
    pub(crate) verbose: bool,
    pub(crate) table_every: Duration,
    pub(crate) seed: Option<u64>,
    /// `--makestep THRESHOLD LIMIT`: chrony's `makestep`.
    pub(crate) make_step: Option<MakeStep>,
    /// `--maxchange OFFSET START IGNORE`: chrony's `maxchange`.
    pub(crate) max_change: Option<MaxChange>,
    /// `--fallbackdrift MIN MAX`: chrony's `fallbackdrift`.
    pub(crate) fallback_drift: Option<FallbackDrift>,
    /// `--corrtimeratio R`: chrony's `corrtimeratio`.
    pub(crate) correction_time_ratio: Option<f64>,
    /// `--minsources N`: the fewest sources that must agree.
    pub(crate) min_sources: Option<usize>,
    /// `--burst`: a burst of requests at every poll (RFC 5905 BURST).
    pub(crate) burst: bool,
    /// `--retry-burst`: up to four requests 2 s apart in a poll that got
    /// no sample (chrony's `burst`).
    pub(crate) retry_burst: bool,
    /// `--polltarget N`: chrony's `polltarget`, as the discipline's poll
    /// gate ([`ntp_discipline::Config::with_poll_target`]).
    pub(crate) poll_target: Option<u32>,
    /// `--maxdelay`, `--maxdelayratio`, `--maxdelaydevratio`,
    /// `--mindelay` and `--asymmetry`, for every server.
    pub(crate) delay: DelayConfig,
}

/// One `--server` and the flags that follow it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerOption {
    /// As given.
    pub(crate) name: String,
    /// Resolved.
    pub(crate) address: SocketAddr,
    /// `--key ID`.
    pub(crate) key: Option<KeyId>,
    /// `--ntp-version N`.
    pub(crate) version: Option<u8>,
    /// `--prefer`, `--trust`, `--require`, `--noselect`.
    pub(crate) selection: Selection,
}

/// One `--pool` and the flags that follow it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PoolOption {
    /// The name with a port.
    pub(crate) name: String,
    /// `--maxsources N`: members at most ([`POOL_SIZE`] by default).
    pub(crate) max_sources: usize,
    /// `--prefer`, `--trust`, `--require`, `--noselect`.
    pub(crate) selection: Selection,
}

/// One `--nts` and the flags that follow it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NtsOption {
    /// The NTS-KE server's host.
    pub(crate) host: String,
    /// Its TCP port.
    pub(crate) port: u16,
    /// `--prefer`, `--trust`, `--require`, `--noselect`.
    pub(crate) selection: Selection,
}

/// The selection flags of one source: chrony's `prefer`, `trust`,
/// `require` and `noselect`; and `xleave`, which follows a source the
/// same way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Selection {
    pub(crate) options: SelectOptions,
    pub(crate) noselect: bool,
    /// `--xleave`: the interleaved mode (not for reference clocks).
    pub(crate) xleave: bool,
}

impl Selection {
    /// `config` with these options.
    pub(crate) fn apply(self, config: &mut SourceConfig) {
        config.select = self.options;
        config.noselect = self.noselect;
        config.xleave = self.xleave;
    }
}

/// Which list the last source flag added to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SourceKind {
    Server,
    Pool,
    Nts,
    Refclock,
}

/// Members of each `--pool` unless `--maxsources` says otherwise: 4,
/// chrony's default `maxsources` and the number of addresses the NTP Pool
/// Project's names return.
pub(crate) const POOL_SIZE: usize = 4;

/// `--nts-ke-listen`, `--nts-cert` and `--nts-key`: NTS for `--serve`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NtsServe {
    pub(crate) listen: SocketAddr,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    /// `--nts-key-file`: where the cookie master keys are kept.
    pub(crate) key_file: Option<PathBuf>,
}

/// What went wrong on the command line.
#[derive(Debug)]
pub(crate) enum ArgsError {
    /// `--help`: print the help text, exit 0.
    Help,
    /// Anything else: one line, exit 2.
    Bad(String),
}

impl From<lexopt::Error> for ArgsError {
    fn from(error: lexopt::Error) -> Self {
        Self::Bad(error.to_string())
    }
}

pub(crate) const USAGE: &str = "usage: ntp-daemon ((--server HOST[:PORT] [--key ID] [--ntp-version N] | --pool NAME[:PORT] [--maxsources N] | --nts HOST[:PORT] | --refclock KIND:ARGS) \
[--prefer] [--trust] [--require] [--noselect] [--xleave])... [--authselectmode MODE] [--maxdistance S] [--maxjitter S] [--clockprecision S] [--hwtimestamp IFACE[,phc=PATH]] [--nts-ca FILE] [--keys FILE] [--keys-format chrony|ntpd] [--min-poll N] [--max-poll N] \
[--no-iburst] [--drift-file PATH] [--duration SECONDS] \
[--serve ADDR:PORT [--local STRATUM] [--serve-threads N] [--nts-ke-listen ADDR:PORT --nts-cert FILE --nts-key FILE [--nts-key-file FILE]]] [--clock model|kernel] [--model-offset MS] [--model-drift PPM] [--json] [--verbose] \
[--table-every SECONDS] [--seed N] [--makestep THRESHOLD LIMIT] [--maxchange OFFSET START IGNORE] [--fallbackdrift MIN MAX] [--corrtimeratio R] [--minsources N] [--burst] [--retry-burst] [--polltarget N] \
[--maxdelay S] [--maxdelayratio R] [--maxdelaydevratio R] [--mindelay S] [--asymmetry A]";

pub(crate) const HELP: &str = "\
ntp-daemon: a time daemon built from the NTP building blocks

Polls NTP servers with ntp-client's System (selection, clustering, the
RFC 5905 discipline) and steers a clock with what it decides.

Options:
  --server HOST[:PORT]   a server to poll (repeatable; port 123 by default)
  --key ID               authenticate the --server just before with symmetric
                         key ID of --keys (RFC 5905 section 7.3, RFC 8573):
                         requests carry its MAC, and replies (kiss-o'-death
                         packets included) without a valid MAC from it are
                         refused
  --ntp-version N        the NTP version of the requests to the --server just
                         before: 2, 3 or 4 (chrony's version option; default
                         4, or 3 with a key whose digest is longer than 20
                         octets, as chrony; 4 with a SHA-2 key truncates the
                         MAC to 20 octets, which NTPsec needs)
  --keys FILE            the key file for --key, and for the clients of
                         --serve (requests with a MAC are answered with one)
  --keys-format FORMAT   chrony (default: chrony.keys) or ntpd (ntp.keys,
                         also NTPsec's)
  --pool NAME[:PORT]     a name that stands for up to 4 servers, such as
                         pool.ntp.org (repeatable); resolved at start and
                         again to replace members that stop answering, lie
                         or send a kiss-o'-death
  --maxsources N         members of the --pool just before: 1 to 16
                         (default 4)
  --nts HOST[:PORT]      an NTS server (RFC 8915; repeatable): NTS-KE with
                         HOST on TCP port PORT (default 4460), then
                         NTS-protected NTP with the server it names; only
                         authenticated replies are used
  --nts-ca FILE          PEM certificates to trust for the NTS-KE servers
                         (required with --nts: no system root store is
                         bundled; a CA bundle such as
                         /etc/ssl/certs/ca-certificates.crt does for public
                         servers)
  --refclock KIND:ARGS   a reference clock (repeatable): SOCK:PATH, chrony's
                         socket protocol as gpsd writes it
                         (/run/chrony.ttyS0.sock); then ,refid=GPS ,poll=N
                         (default 4) ,filter=N (samples per poll, 64)
                         ,delay=S ,offset=S ,precision=N (log2 s; default:
                         the clock's reading precision, measured at start)
                         ,stratum=N, and ,pps ,lock=REFID for a pulse whose
                         second another --refclock names
  --prefer               the --server, --pool or --nts just before is chosen
                         and combined alone whenever it is not a falseticker
                         (chrony's prefer)
  --trust                its time is taken as true: only other trusted
                         sources can outvote it (chrony's trust)
  --require              the clock is steered only while at least one source
                         with --require is not a falseticker (chrony's
                         require)
  --noselect             polled and shown, never used (chrony's noselect)
  --xleave               the --server, --pool or --nts just before is asked
                         for the interleaved mode (RFC 9769, chrony's
                         xleave): its answers carry when the previous one
                         really left; a server without the mode answers as
                         ever
  --authselectmode MODE  how sources with a --key or NTS are selected beside
                         sources without: mix (default, as chrony: the
                         authenticated ones get --require and --trust),
                         prefer (the others are not used when one is
                         authenticated), require (the others are never
                         used) or ignore
  --maxdistance S        refuse and never select sources farther than S
                         seconds of root distance (default 1, RFC 5905's
                         MAXDIST; chrony's maxdistance, 3 there)
  --maxjitter S          never select a source whose last 8 samples (3 at
                         least) scatter more than S seconds about their
                         fitted line (default 1, chrony's maxjitter; 0
                         turns the test off)
  --hwtimestamp IFACE[,phc=PATH]
                         hardware timestamps of the network card IFACE
                         (chrony's hwtimestamp), turned into system time
                         through its PTP clock (/dev/ptpN from sysfs, or
                         PATH); the card's timestamping must be on
                         (hwstamp_ctl -i IFACE -r 1 -t 1, or ptp4l)
  --clockprecision S     the precision of the clock's readings, seconds
                         (chrony's clockprecision; default 2^-18, 3.8 us):
                         the least jitter and delay a measurement has; 1e-9
                         with hardware timestamps on a LAN
  --min-poll N           lowest poll exponent, log2 s (default 6 = 64 s;
                         0, 1 s, at least)
  --max-poll N           highest poll exponent, log2 s (default 10 = 1024 s)
  --no-iburst            no burst of requests at the first poll
  --drift-file PATH      frequency in ppm: read at start, written every hour
                         and at exit (as ntpd and chronyd do)
  --duration SECONDS     stop by itself after that long
  --serve ADDR:PORT      answer NTP clients there with the system variables
                         (NTP versions 1 to 4, each in its own version;
                         every client rate-limited unless a rule says
                         otherwise)
  --local STRATUM        with --serve, serve this machine's clock at STRATUM
                         (1 to 15, reference id LOCL) while no source
                         synchronizes it, as chrony's local stratum; with no
                         --server, --pool or --nts, always: a primary (1) or
                         fixed-stratum server
  --serve-threads N      answer --serve's clients on N worker threads, each
                         with its own socket on the port (SO_REUSEPORT; the
                         rate limit is per thread); 0 (default) answers from
                         the main loop, as chronyd does
  --default-action ACTION  what --serve does for clients no rule matches:
                         allow, ignore, deny, restrict or limited (default:
                         limited, by the rate limiter)
  --rule PREFIX=ACTION   an access rule for --serve, longest prefix wins
                         (repeatable): 192.0.2.0/24=deny, ::1/128=allow
  --rate INTERVAL,BURST,LEAK  the rate limiter: a mean interval of 2^INTERVAL
                         s between requests, BURST back to back, one RATE
                         kiss-o'-death per LEAK requests over the limit
  --symmetric POLICY     answer (default) or drop symmetric-active (mode 1)
                         requests, as Windows' W32Time sends
  --mac-policy POLICY    for a request whose MAC does not verify: nak
                         (default: a crypto-NAK), drop, or answer unsigned
  --nts-ke-listen ADDR:PORT  also serve NTS (RFC 8915) to the clients of
                         --serve: NTS-KE over TLS 1.3 on this TCP address
                         (4460 is the usual port), naming the --serve port
                         when it is not 123; clients then use the host they
                         reached NTS-KE at for NTP. The cookie master key is
                         random at start (or from --nts-key-file) and rotated
                         daily. At most 100 connections at a time, 8 per
                         address (IPv6: per /64), 1 s of silence or 3 s in
                         all each. Needs --serve, --nts-cert and --nts-key
  --nts-key-file FILE    keep the cookie master keys in FILE (mode 0600,
                         refused if others may read it), so that clients'
                         cookies survive a restart
  --nts-cert FILE        the NTS-KE certificate chain, PEM, leaf first
  --nts-key FILE         its private key, PEM
  --clock model|kernel   model (default): a model clock, the system clock is
                         never touched; kernel: steer CLOCK_REALTIME (needs
                         CAP_SYS_TIME)
  --model-offset MS      the model clock's error at start (default 0; at most
                         1e9, 11.6 days)
  --model-drift PPM      the model oscillator's frequency error (default 0)
  --json                 JSON lines instead of text
  --verbose              also log refused datagrams, every adjustment and
                         (as --json always does) every sample, with where
                         its timestamps were taken (D, K, H)
  --table-every SECONDS  print the peer table this often (default 64)
  --seed N               seed the client's nonce generator (default: from
                         the OS; NTS serving keys always come from the OS),
                         for reproducible runs; refused with --nts, whose
                         unique identifiers and nonces must be unpredictable
  --makestep THRESHOLD LIMIT  step, instead of slewing, an offset above
                         THRESHOLD seconds during the first LIMIT clock updates
                         (LIMIT -1: always), as chrony's makestep; also lifts
                         the 1000 s panic threshold (the step is wanted)
  --maxchange OFFSET START IGNORE  once START updates have changed the clock,
                         ignore updates of more than OFFSET seconds, IGNORE
                         times in all, then exit (chrony's maxchange; a
                         negative IGNORE never exits)
  --fallbackdrift MIN MAX  when no update came for 2^MIN to 2^MAX seconds,
                         run the clock at its average frequency over that
                         long (chrony's fallbackdrift; 0 for either: off)
  --corrtimeratio R      how many update intervals an offset at its noise
                         level is slewed over (chrony's corrtimeratio,
                         default 3)
  --minsources N         steer the clock only while at least N sources agree
                         (default: 2 with three or more sources that may be
                         selected and none trusted, else 1),
                         as chrony's minsources
  --burst                a burst of eight requests 2 s apart at every poll
                         while a server answers (RFC 5905 BURST; eight times
                         the load on the servers: for sparse or lossy paths)
  --retry-burst          retry a poll that got no sample: up to four requests
                         2 s apart, never more than the poll interval over
                         the minimum poll interval (chrony's burst)
  --polltarget N         poll as if N measurements should carry the estimate
                         (chrony's polltarget, 1-60, default 8): below 8 the
                         poll interval is longer, above it shorter
  --maxdelay S           ignore a measurement whose round-trip delay is over
                         S seconds (chrony's maxdelay; every source)
  --maxdelayratio R      ignore one whose delay is over R times the least
                         recent delay (chrony's maxdelayratio)
  --maxdelaydevratio R   ignore one whose delay exceeds the least recent delay
                         by over R times the source's jitter (chrony's
                         maxdelaydevratio)
  --mindelay S           the paths' true minimum round trip, S seconds, used
                         instead of the least delay measured (chrony's mindelay)
  --asymmetry A          share of the delay's variation on the way back minus
                         one half, -0.5..0.5: offsets are corrected by A times
                         the delay above the minimum (chrony's asymmetry;
                         default: estimated per source from its measurements,
                         used once it stands out of its noise)
  --help                 this text

Exit status: 0 after --duration or on SIGINT/SIGTERM, 1 on a runtime error
(either way the clock is first left running at the frequency estimate and
the drift file written, once the frequency is known to 1 ppm), 2 on bad
arguments, an unresolvable server, or --clock kernel without the privilege.
";

/// `--makestep THRESHOLD LIMIT`: a threshold in seconds (0 up to 2^31)
/// and a number of updates (a negative one: no limit, as in chrony).
fn make_step(threshold: f64, limit: i64) -> Result<MakeStep, ArgsError> {
    if !(threshold.is_finite() && (0.0..=2_147_483_648.0).contains(&threshold)) {
        return Err(ArgsError::Bad(format!(
            "--makestep {threshold}: the threshold must be 0 to 2^31 seconds"
        )));
    }
    let limit = if limit < 0 {
        None
    } else {
        Some(u32::try_from(limit).map_err(|_| {
            ArgsError::Bad(format!("--makestep {threshold} {limit}: too many updates"))
        })?)
    };
    Ok(MakeStep { threshold, limit })
}

/// `--fallbackdrift MIN MAX`, checked: 0 for either turns it off, as in
/// chrony.
fn fallback_drift(min: u8, max: u8) -> Result<Option<FallbackDrift>, ArgsError> {
    if min == 0 || max == 0 {
        return Ok(None);
    }
    if min > max || max > ntp_discipline::FALLBACK_DRIFT_MAX_EXPONENT {
        return Err(ArgsError::Bad(format!(
            "--fallbackdrift {min} {max}: need MIN <= MAX <= 30"
        )));
    }
    Ok(Some(FallbackDrift { min, max }))
}

/// `--maxchange OFFSET START IGNORE`, checked: a negative IGNORE never
/// gives up (chrony's).
fn max_change(offset: f64, start: u32, ignore: i64) -> Result<MaxChange, ArgsError> {
    if !(offset.is_finite() && offset > 0.0 && offset <= 2_147_483_648.0) {
        return Err(ArgsError::Bad(format!(
            "--maxchange {offset}: the offset must be above 0 and at most 2^31 seconds"
        )));
    }
    let ignore = if ignore < 0 {
        None
    } else {
        Some(u32::try_from(ignore).map_err(|_| {
            ArgsError::Bad(format!(
                "--maxchange {offset} {start} {ignore}: too many updates"
            ))
        })?)
    };
    Ok(MaxChange {
        offset,
        start,
        ignore,
    })
}

/// The options before any flag.
fn defaults() -> Options {
    Options {
        servers: Vec::new(),
        keys: None,
        pools: Vec::new(),
        nts: Vec::new(),
        refclocks: Vec::new(),
        last_source: None,
        auth_select: AuthSelectMode::Mix,
        max_distance: None,
        max_jitter: Some(ntp_client::MAX_JITTER),
        clock_precision: None,
        hwtimestamp: None,
        nts_ca: None,
        min_poll: DEFAULT_MIN_POLL,
        max_poll: DEFAULT_MAX_POLL,
        iburst: true,
        drift_file: None,
        duration: None,
        serve: None,
        server_config: ntp_server::ServerConfig::default(),
        local: None,
        serve_threads: 0,
        serving_flags: false,
        nts_serve: None,
        clock: ClockKind::Model,
        model_offset: 0.0,
        model_drift: 0.0,
        json: false,
        verbose: false,
        table_every: Duration::from_secs(64),
        seed: None,
        make_step: None,
        max_change: None,
        fallback_drift: None,
        correction_time_ratio: None,
        min_sources: None,
        burst: false,
        retry_burst: false,
        poll_target: None,
        delay: DelayConfig::default(),
    }
}

/// The three flags of NTS serving, checked together at the end.
#[derive(Default)]
struct PendingNts {
    listen: Option<SocketAddr>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

/// Parses the command line (without the program name).
pub(crate) fn parse(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<Options, ArgsError> {
    use lexopt::prelude::*;

    let mut options = defaults();
    let mut pending = PendingNts::default();
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        let name = match arg {
            Long("help") | Short('h') => return Err(ArgsError::Help),
            Short('v') => "verbose".to_owned(),
            Long(name) => name.to_owned(),
            _ => return Err(ArgsError::Bad(format!("{}; {USAGE}", arg.unexpected()))),
        };
        let known = source_flag(&mut options, &mut parser, &name)?
            || selection_flag(&mut options, &mut parser, &name)?
            || sync_flag(&mut options, &mut parser, &name)?
            || delay_flag(&mut options, &mut parser, &name)?
            || serve_flag(&mut options, &mut parser, &name)?
            || program_flag(&mut options, &mut pending, &mut parser, &name)?;
        if !known {
            return Err(ArgsError::Bad(format!(
                "invalid option '--{name}'; {USAGE}"
            )));
        }
    }
    options.nts_serve = nts_serve(&options, pending)?;
    check(&options)?;
    Ok(options)
}

/// The sources and their keys: `--server` and its `--key` and
/// `--ntp-version`, `--keys`, `--keys-format`, `--pool` and its
/// `--maxsources`, `--refclock`, `--nts`, `--nts-ca`. Whether `name` is
/// one.
fn source_flag(
    options: &mut Options,
    parser: &mut lexopt::Parser,
    name: &str,
) -> Result<bool, ArgsError> {
    match name {
        "server" | "key" | "ntp-version" => server_flag(options, parser, name)?,
        "keys" | "keys-format" => key_file_flag(options, parser, name)?,
        "pool" | "maxsources" => pool_flag(options, parser, name)?,
        "refclock" => {
            let text: String = parser.value()?.parse()?;
            options.refclocks.push(refclock_options::parse(&text)?);
            options.last_source = Some(SourceKind::Refclock);
        }
        "nts" => {
            let text: String = parser.value()?.parse()?;
            let (host, port) = nts_target(&text)?;
            options.nts.push(NtsOption {
                host,
                port,
                selection: Selection::default(),
            });
            options.last_source = Some(SourceKind::Nts);
        }
        "nts-ca" => options.nts_ca = Some(parser.value()?.into()),
        _ => return Ok(false),
    }
    Ok(true)
}

/// `--server`, and the `--key` and `--ntp-version` of the last one.
fn server_flag(
    options: &mut Options,
    parser: &mut lexopt::Parser,
    name: &str,
) -> Result<(), ArgsError> {
    match name {
        "server" => {
            let name: String = parser.value()?.parse()?;
            let address = resolve(&name)?;
            options.servers.push(ServerOption {
                name,
                address,
                key: None,
                version: None,
                selection: Selection::default(),
            });
            options.last_source = Some(SourceKind::Server);
        }
        "key" => {
            let text: String = parser.value()?.parse()?;
            let id = text
                .parse::<u32>()
                .ok()
                .and_then(KeyId::new)
                .ok_or_else(|| {
                    ArgsError::Bad(format!("--key {text:?}: not a key id from 1 to 4294967295"))
                })?;
            let Some(server) = options.servers.last_mut() else {
                return Err(ArgsError::Bad(format!(
                    "--key {id}: comes after the --server it authenticates"
                )));
            };
            server.key = Some(id);
        }
        _ => {
            let text: String = parser.value()?.parse()?;
            let version = text
                .parse::<u8>()
                .ok()
                .filter(|v| (ntp_client::sntp::MIN_REQUEST_VERSION..=4).contains(v))
                .ok_or_else(|| ArgsError::Bad(format!("--ntp-version {text:?}: 2, 3 or 4")))?;
            let Some(server) = options.servers.last_mut() else {
                return Err(ArgsError::Bad(format!(
                    "--ntp-version {version}: comes after its --server"
                )));
            };
            server.version = Some(version);
        }
    }
    Ok(())
}

/// `--keys FILE` and `--keys-format chrony|ntpd`, in either order.
fn key_file_flag(
    options: &mut Options,
    parser: &mut lexopt::Parser,
    name: &str,
) -> Result<(), ArgsError> {
    if name == "keys" {
        let path: PathBuf = parser.value()?.into();
        let format = options
            .keys
            .take()
            .map_or(KeyFileFormat::Chrony, |(_, f)| f);
        options.keys = Some((path, format));
    } else {
        let text: String = parser.value()?.parse()?;
        let format = match text.as_str() {
            "chrony" => KeyFileFormat::Chrony,
            "ntpd" => KeyFileFormat::Ntpd,
            _ => {
                return Err(ArgsError::Bad(format!(
                    "--keys-format {text:?}: must be chrony or ntpd"
                )));
            }
        };
        let path = options.keys.take().map_or_else(PathBuf::new, |(p, _)| p);
        options.keys = Some((path, format));
    }
    Ok(())
}

/// `--pool`, and the `--maxsources` of the last one.
fn pool_flag(
    options: &mut Options,
    parser: &mut lexopt::Parser,
    name: &str,
) -> Result<(), ArgsError> {
    if name == "pool" {
        let name: String = parser.value()?.parse()?;
        options.pools.push(PoolOption {
            name: with_port(&name),
            max_sources: POOL_SIZE,
            selection: Selection::default(),
        });
        options.last_source = Some(SourceKind::Pool);
    } else {
        let text: String = parser.value()?.parse()?;
        let bad = || ArgsError::Bad(format!("--maxsources {text:?}: 1 to 16, after its --pool"));
        let n = text.parse::<usize>().ok().filter(|n| (1..=16).contains(n));
        match (n, options.pools.last_mut(), options.last_source) {
            (Some(n), Some(pool), Some(SourceKind::Pool)) => pool.max_sources = n,
            _ => return Err(bad()),
        }
    }
    Ok(())
}

/// How the sources are selected: `--prefer`, `--trust`, `--require`,
/// `--noselect`, `--xleave` (after the source they apply to), `--authselectmode`,
/// `--maxdistance`, `--maxjitter`. Whether `name` is one.
fn selection_flag(
    options: &mut Options,
    parser: &mut lexopt::Parser,
    name: &str,
) -> Result<bool, ArgsError> {
    match name {
        "xleave" => {
            if options.last_source == Some(SourceKind::Refclock) {
                return Err(ArgsError::Bad(String::from(
                    "--xleave: for a --server, --pool or --nts, not a --refclock",
                )));
            }
            let selection = last_selection(options).ok_or_else(|| {
                ArgsError::Bad(String::from(
                    "--xleave: comes after the --server, --pool or --nts it applies to",
                ))
            })?;
            selection.xleave = true;
        }
        "prefer" | "trust" | "require" | "noselect" => {
            let selection = last_selection(options).ok_or_else(|| {
                ArgsError::Bad(format!(
                    "--{name}: comes after the --server, --pool or --nts it applies to"
                ))
            })?;
            match name {
                "prefer" => selection.options.prefer = true,
                "trust" => selection.options.trust = true,
                "require" => selection.options.require = true,
                _ => selection.noselect = true,
            }
        }
        "maxdistance" => {
            let seconds: f64 = parser.value()?.parse()?;
            if !(seconds > 0.0 && seconds <= 16.0) {
                return Err(ArgsError::Bad(format!(
                    "--maxdistance {seconds}: more than 0 and at most 16 seconds"
                )));
            }
            options.max_distance = Some(seconds);
        }
        "maxjitter" => {
            let seconds: f64 = parser.value()?.parse()?;
            if !(seconds >= 0.0 && seconds.is_finite()) {
                return Err(ArgsError::Bad(format!(
                    "--maxjitter {seconds}: seconds, 0 for no limit"
                )));
            }
            options.max_jitter = (seconds > 0.0).then_some(seconds);
        }
        "authselectmode" => {
            let text: String = parser.value()?.parse()?;
            options.auth_select = match text.as_str() {
                "require" => AuthSelectMode::Require,
                "prefer" => AuthSelectMode::Prefer,
                "mix" => AuthSelectMode::Mix,
                "ignore" => AuthSelectMode::Ignore,
                _ => {
                    return Err(ArgsError::Bad(format!(
                        "--authselectmode {text:?}: require, prefer, mix or ignore"
                    )));
                }
            };
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The selection flags of the last `--server`, `--pool` or `--nts`.
fn last_selection(options: &mut Options) -> Option<&mut Selection> {
    match options.last_source? {
        SourceKind::Server => options.servers.last_mut().map(|s| &mut s.selection),
        SourceKind::Pool => options.pools.last_mut().map(|p| &mut p.selection),
        SourceKind::Nts => options.nts.last_mut().map(|n| &mut n.selection),
        SourceKind::Refclock => options.refclocks.last_mut().map(|r| &mut r.selection),
    }
}

/// Polling and the discipline: `--min-poll`, `--max-poll`, `--iburst`,
/// `--no-iburst`, `--burst`, `--retry-burst`, `--polltarget`,
/// `--minsources`, `--makestep`, `--maxchange`, `--fallbackdrift`,
/// `--corrtimeratio`, `--clockprecision`. Whether `name` is one.
fn sync_flag(
    options: &mut Options,
    parser: &mut lexopt::Parser,
    name: &str,
) -> Result<bool, ArgsError> {
    match name {
        "min-poll" => options.min_poll = parser.value()?.parse()?,
        "max-poll" => options.max_poll = parser.value()?.parse()?,
        "iburst" => options.iburst = true,
        "no-iburst" => options.iburst = false,
        "burst" => options.burst = true,
        "retry-burst" => options.retry_burst = true,
        "polltarget" => {
            let n: u32 = parser.value()?.parse()?;
            if !ntp_discipline::POLL_TARGET_RANGE.contains(&n) {
                return Err(ArgsError::Bad(format!("--polltarget {n}: 1 to 60")));
            }
            options.poll_target = Some(n);
        }
        "minsources" => {
            let n: usize = parser.value()?.parse()?;
            if n == 0 {
                return Err(ArgsError::Bad("--minsources 0: at least 1".to_owned()));
            }
            options.min_sources = Some(n);
        }
        "makestep" => {
            let threshold: f64 = parser.value()?.parse()?;
            let limit: i64 = parser.value()?.parse()?;
            options.make_step = Some(make_step(threshold, limit)?);
        }
        "maxchange" => {
            let offset: f64 = parser.value()?.parse()?;
            let start: u32 = parser.value()?.parse()?;
            let ignore: i64 = parser.value()?.parse()?;
            options.max_change = Some(max_change(offset, start, ignore)?);
        }
        "fallbackdrift" => {
            let min: u8 = parser.value()?.parse()?;
            let max: u8 = parser.value()?.parse()?;
            options.fallback_drift = fallback_drift(min, max)?;
        }
        "clockprecision" => {
            let seconds: f64 = parser.value()?.parse()?;
            options.clock_precision = Some(clock_precision(seconds)?);
        }
        "corrtimeratio" => {
            let ratio: f64 = parser.value()?.parse()?;
            if !(ratio.is_finite()
                && (1.0..=ntp_discipline::MAX_CORRECTION_TIME_RATIO).contains(&ratio))
            {
                return Err(ArgsError::Bad(format!(
                    "--corrtimeratio {ratio}: 1 to 1e12"
                )));
            }
            options.correction_time_ratio = Some(ratio);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// `--hwtimestamp IFACE[,phc=PATH]`.
fn hwtimestamp(text: &str) -> Result<HwTimestamp, ArgsError> {
    let mut parts = text.split(',');
    let interface = parts.next().unwrap_or_default();
    if interface.is_empty() || interface.contains('/') {
        return Err(ArgsError::Bad(format!(
            "--hwtimestamp {text:?}: an interface name first"
        )));
    }
    let mut phc = None;
    for part in parts {
        match part.split_once('=') {
            Some(("phc", path)) if !path.is_empty() => phc = Some(PathBuf::from(path)),
            _ => {
                return Err(ArgsError::Bad(format!(
                    "--hwtimestamp {text:?}: {part:?} is not phc=PATH"
                )));
            }
        }
    }
    Ok(HwTimestamp {
        interface: interface.to_owned(),
        phc,
    })
}

/// `--clockprecision S` as a power of two: the nearest exponent of
/// `seconds`, which must lie between 1e-9 s and 1 s (chrony's range).
fn clock_precision(seconds: f64) -> Result<i8, ArgsError> {
    if !(1e-9..=1.0).contains(&seconds) {
        return Err(ArgsError::Bad(format!(
            "--clockprecision {seconds}: 1e-9 to 1 seconds"
        )));
    }
    #[allow(
        clippy::cast_possible_truncation,
        reason = "log2 of 1e-9..=1 is -29.9..=0"
    )]
    let exponent = seconds.log2().round() as i8;
    Ok(exponent.max(-30))
}

/// chrony's delay options: `--maxdelay`, `--maxdelayratio`,
/// `--maxdelaydevratio`, `--mindelay`, `--asymmetry`. Whether `name` is
/// one.
fn delay_flag(
    options: &mut Options,
    parser: &mut lexopt::Parser,
    name: &str,
) -> Result<bool, ArgsError> {
    let field = match name {
        "maxdelay" => &mut options.delay.max_delay,
        "maxdelayratio" => &mut options.delay.max_delay_ratio,
        "maxdelaydevratio" => &mut options.delay.max_delay_dev_ratio,
        "mindelay" => &mut options.delay.min_delay,
        "asymmetry" => &mut options.delay.asymmetry,
        _ => return Ok(false),
    };
    *field = Some(parser.value()?.parse()?);
    Ok(true)
}

/// How `--serve` treats clients: `--local`, `--serve-threads`, `--default-action`,
/// `--rule`, `--rate`, `--symmetric`, `--mac-policy`. Whether `name` is
/// one.
fn serve_flag(
    options: &mut Options,
    parser: &mut lexopt::Parser,
    name: &str,
) -> Result<bool, ArgsError> {
    let text =
        |parser: &mut lexopt::Parser| -> Result<String, ArgsError> { Ok(parser.value()?.parse()?) };
    let config = &mut options.server_config;
    match name {
        "local" => {
            let value = text(parser)?;
            options.local = Some(
                value
                    .parse::<u8>()
                    .ok()
                    .filter(|stratum| (1..=15).contains(stratum))
                    .ok_or_else(|| ArgsError::Bad(format!("--local {value:?}: 1 to 15")))?,
            );
        }
        "serve-threads" => {
            let value = text(parser)?;
            options.serve_threads = value
                .parse::<usize>()
                .ok()
                .filter(|threads| *threads <= crate::serving::MAX_SERVE_THREADS)
                .ok_or_else(|| {
                    ArgsError::Bad(format!(
                        "--serve-threads {value:?}: 0 to {}",
                        crate::serving::MAX_SERVE_THREADS
                    ))
                })?;
        }
        "default-action" => {
            let value = text(parser)?;
            config.acl_default = value
                .parse()
                .map_err(|_| ArgsError::Bad(format!("--default-action {value:?}: {ACTIONS}")))?;
        }
        "rule" => {
            let value = text(parser)?;
            config.acl_rules.push(rule(&value)?);
        }
        "rate" => {
            let value = text(parser)?;
            config.rate_limit = rate(&value, config.rate_limit)?;
        }
        "symmetric" => {
            config.symmetric = match text(parser)?.as_str() {
                "answer" => ntp_server::SymmetricPolicy::Answer,
                "drop" => ntp_server::SymmetricPolicy::Drop,
                other => {
                    return Err(ArgsError::Bad(format!(
                        "--symmetric {other:?}: answer or drop"
                    )));
                }
            };
        }
        "mac-policy" => {
            config.mac = match text(parser)?.as_str() {
                "nak" => ntp_server::MacPolicy::CryptoNak,
                "drop" => ntp_server::MacPolicy::Drop,
                "answer" => ntp_server::MacPolicy::AnswerUnauthenticated,
                other => {
                    return Err(ArgsError::Bad(format!(
                        "--mac-policy {other:?}: nak, drop or answer"
                    )));
                }
            };
        }
        _ => return Ok(false),
    }
    options.serving_flags = true;
    Ok(true)
}

/// The access actions, for messages.
const ACTIONS: &str = "allow, ignore, deny, restrict or limited";

/// `PREFIX=ACTION`.
fn rule(text: &str) -> Result<ntp_server::AclRule, ArgsError> {
    let bad = |why: String| ArgsError::Bad(format!("--rule {text:?}: {why}"));
    let (prefix, action) = text
        .split_once('=')
        .ok_or_else(|| bad("not PREFIX=ACTION".to_owned()))?;
    Ok(ntp_server::AclRule::new(
        prefix.parse().map_err(|error| bad(format!("{error}")))?,
        action.parse().map_err(|_| bad(ACTIONS.to_owned()))?,
    ))
}

/// `INTERVAL,BURST,LEAK` over `base` (the other settings kept).
fn rate(
    text: &str,
    base: ntp_server::ratelimit::RateLimitConfig,
) -> Result<ntp_server::ratelimit::RateLimitConfig, ArgsError> {
    let bad = || ArgsError::Bad(format!("--rate {text:?}: not INTERVAL,BURST,LEAK"));
    let mut parts = text.split(',');
    let (Some(interval), Some(burst), Some(leak), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let mut config = base;
    config.interval = interval.parse().map_err(|_| bad())?;
    config.burst = burst.parse().map_err(|_| bad())?;
    config.leak = leak.parse().map_err(|_| bad())?;
    Ok(config)
}

/// The program around the client: the clock, the drift file, the run's
/// length, serving, the log, the seed. Whether `name` is one.
fn program_flag(
    options: &mut Options,
    pending: &mut PendingNts,
    parser: &mut lexopt::Parser,
    name: &str,
) -> Result<bool, ArgsError> {
    let address = |flag: &str, text: String| {
        text.parse::<SocketAddr>()
            .map_err(|_| ArgsError::Bad(format!("--{flag} {text:?}: not ADDR:PORT")))
    };
    match name {
        "drift-file" => options.drift_file = Some(parser.value()?.into()),
        "hwtimestamp" => {
            options.hwtimestamp = Some(hwtimestamp(&parser.value()?.parse::<String>()?)?)
        }
        "duration" => {
            options.duration = Some(seconds("--duration", parser.value()?.parse()?)?);
        }
        "serve" => options.serve = Some(address(name, parser.value()?.parse()?)?),
        "nts-ke-listen" => pending.listen = Some(address(name, parser.value()?.parse()?)?),
        "nts-cert" => pending.cert = Some(parser.value()?.into()),
        "nts-key" => pending.key = Some(parser.value()?.into()),
        "nts-key-file" => pending.key_file = Some(parser.value()?.into()),
        "clock" => {
            let text: String = parser.value()?.parse()?;
            options.clock = match text.as_str() {
                "model" => ClockKind::Model,
                "kernel" => ClockKind::Kernel,
                _ => {
                    return Err(ArgsError::Bad(format!(
                        "--clock {text:?}: must be model or kernel"
                    )));
                }
            };
        }
        "model-offset" => {
            let ms: f64 = parser.value()?.parse()?;
            options.model_offset = finite("--model-offset", ms, 1e9)? * 1e-3;
        }
        "model-drift" => {
            let ppm: f64 = parser.value()?.parse()?;
            options.model_drift = finite("--model-drift", ppm, 1e4)? * 1e-6;
        }
        "json" => options.json = true,
        "verbose" => options.verbose = true,
        "table-every" => {
            options.table_every = seconds("--table-every", parser.value()?.parse()?)?;
        }
        "seed" => options.seed = Some(parser.value()?.parse()?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// NTS serving: all three flags with `--serve` (and maybe
/// `--nts-key-file`), or none.
fn nts_serve(options: &Options, pending: PendingNts) -> Result<Option<NtsServe>, ArgsError> {
    let key_file = pending.key_file;
    match (pending.listen, pending.cert, pending.key) {
        (None, None, None) if key_file.is_none() => Ok(None),
        (Some(listen), Some(cert), Some(key)) if options.serve.is_some() => Ok(Some(NtsServe {
            listen,
            cert,
            key,
            key_file,
        })),
        (Some(_), Some(_), Some(_)) => Err(ArgsError::Bad(format!(
            "--nts-ke-listen serves NTS to the clients of --serve, which is missing; {USAGE}"
        ))),
        _ => Err(ArgsError::Bad(format!(
            "--nts-ke-listen, --nts-cert and --nts-key go together; {USAGE}"
        ))),
    }
}

/// What the flags must satisfy together.
fn check(options: &Options) -> Result<(), ArgsError> {
    let no_sources = options.servers.is_empty()
        && options.pools.is_empty()
        && options.nts.is_empty()
        && options.refclocks.is_empty();
    if no_sources && (options.serve.is_none() || options.local.is_none()) {
        return Err(ArgsError::Bad(format!(
            "no --server, --pool, --nts or --refclock given (or --serve with --local); {USAGE}"
        )));
    }
    if options.serve.is_none() && options.serving_flags {
        return Err(ArgsError::Bad(format!(
            "--local, --rule, --default-action, --rate, --symmetric and --mac-policy are for --serve; {USAGE}"
        )));
    }
    let unsynchronized = ntp_server::SystemState::unsynchronized(-20);
    if let Err(error) = ntp_server::Server::new(&options.server_config, unsynchronized) {
        return Err(ArgsError::Bad(format!("--rule, --rate: {error}")));
    }
    if !options.nts.is_empty() && options.nts_ca.is_none() {
        return Err(ArgsError::Bad(
            "--nts needs --nts-ca FILE: no system root store is bundled, so give the \
             certificates to trust (a CA bundle such as /etc/ssl/certs/ca-certificates.crt \
             for public servers, or the server's own self-signed certificate)"
                .to_owned(),
        ));
    }
    if options
        .keys
        .as_ref()
        .is_some_and(|(path, _)| path.as_os_str().is_empty())
    {
        return Err(ArgsError::Bad(format!(
            "--keys-format without --keys; {USAGE}"
        )));
    }
    if options.keys.is_none() && options.servers.iter().any(|server| server.key.is_some()) {
        return Err(ArgsError::Bad(format!("--key without --keys; {USAGE}")));
    }
    if options.seed.is_some() && !options.nts.is_empty() {
        // RFC 8915 section 5.3: the Unique Identifier must be unpredictable,
        // and the AEAD nonces too; a seeded generator makes both public.
        return Err(ArgsError::Bad(
            "--seed makes the NTS unique identifiers and nonces predictable: \
             not with --nts"
                .to_owned(),
        ));
    }
    if let Err(error) = options.delay.validate() {
        return Err(ArgsError::Bad(format!(
            "--maxdelay, --maxdelayratio, --maxdelaydevratio, --mindelay, --asymmetry: {error}"
        )));
    }
    if options.min_poll < MIN_POLL
        || options.max_poll > MAX_POLL
        || options.min_poll > options.max_poll
    {
        return Err(ArgsError::Bad(format!(
            "poll exponents must satisfy {MIN_POLL} <= --min-poll <= --max-poll <= {MAX_POLL}"
        )));
    }
    Ok(())
}

/// `HOST[:PORT]` to the first address it resolves to.
fn resolve(name: &str) -> Result<SocketAddr, ArgsError> {
    let mut addresses = with_port(name)
        .to_socket_addrs()
        .map_err(|error| ArgsError::Bad(format!("--server {name}: cannot resolve: {error}")))?;
    addresses
        .next()
        .ok_or_else(|| ArgsError::Bad(format!("--server {name}: no address")))
}

/// `HOST[:PORT]` of `--nts`: the host (IPv6 addresses in brackets) and the
/// NTS-KE port, 4460 by default.
fn nts_target(text: &str) -> Result<(String, u16), ArgsError> {
    let bad = || ArgsError::Bad(format!("--nts {text:?}: not HOST[:PORT]"));
    let (host, port) = if has_port(text) {
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        (host, port.parse::<u16>().map_err(|_| bad())?)
    } else {
        (text, NTS_KE_PORT)
    };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host, port))
}

/// `name` with the NTP port added when it has none.
pub(crate) fn with_port(name: &str) -> String {
    if name.parse::<SocketAddr>().is_ok() || has_port(name) {
        name.to_owned()
    } else if name.contains(':') && !name.starts_with('[') {
        // A bare IPv6 address.
        format!("[{name}]:{NTP_PORT}")
    } else {
        format!("{name}:{NTP_PORT}")
    }
}

/// Whether `name` ends in `:PORT` (a host name or `[v6]` with a port).
fn has_port(name: &str) -> bool {
    let Some((host, port)) = name.rsplit_once(':') else {
        return false;
    };
    !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && (!host.contains(':') || (host.starts_with('[') && host.ends_with(']')))
}

fn seconds(flag: &str, value: f64) -> Result<Duration, ArgsError> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            ArgsError::Bad(format!(
                "{flag} {value}: must be a positive number of seconds"
            ))
        })
}

fn finite(flag: &str, value: f64, limit: f64) -> Result<f64, ArgsError> {
    if value.is_finite() && value.abs() <= limit {
        Ok(value)
    } else {
        Err(ArgsError::Bad(format!("{flag} {value}: out of range")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Options, ArgsError> {
        parse(list.iter().map(std::ffi::OsString::from))
    }

    #[test]
    fn servers_get_the_ntp_port_by_default() {
        let options = args(&[
            "--server",
            "127.0.0.1",
            "--server",
            "::1",
            "--server",
            "[::1]:11123",
        ])
        .map_err(|e| format!("{e:?}"));
        let options = options.unwrap_or_else(|e| unreachable!("{e}"));
        let ports: Vec<u16> = options.servers.iter().map(|s| s.address.port()).collect();
        assert_eq!(ports, [123, 123, 11123]);
        assert_eq!(options.clock, ClockKind::Model);
        assert!(options.iburst);
    }

    #[test]
    fn a_key_authenticates_the_server_before_it() {
        let options = args(&[
            "--keys",
            "/etc/chrony/chrony.keys",
            "--server",
            "127.0.0.1",
            "--key",
            "7",
            "--server",
            "127.0.0.2",
            "--keys-format",
            "ntpd",
        ])
        .unwrap_or_else(|e| unreachable!("{e:?}"));
        let keys: Vec<Option<u32>> = options
            .servers
            .iter()
            .map(|server| server.key.map(KeyId::get))
            .collect();
        assert_eq!(keys, [Some(7), None]);
        let versioned = args(&[
            "--server",
            "127.0.0.1",
            "--ntp-version",
            "4",
            "--server",
            "127.0.0.2",
        ])
        .unwrap_or_else(|e| unreachable!("{e:?}"));
        let versions: Vec<Option<u8>> = versioned.servers.iter().map(|s| s.version).collect();
        assert_eq!(versions, [Some(4), None]);
        for bad in [
            &["--ntp-version", "4", "--server", "127.0.0.1"][..],
            &["--server", "127.0.0.1", "--ntp-version", "1"],
            &["--server", "127.0.0.1", "--ntp-version", "5"],
        ] {
            assert!(matches!(args(bad), Err(ArgsError::Bad(_))), "{bad:?}");
        }
        assert_eq!(
            options.keys,
            Some((
                PathBuf::from("/etc/chrony/chrony.keys"),
                KeyFileFormat::Ntpd
            ))
        );
        for list in [
            &["--key", "1", "--server", "127.0.0.1", "--keys", "k"][..],
            &["--server", "127.0.0.1", "--key", "1"],
            &["--server", "127.0.0.1", "--key", "0", "--keys", "k"],
            &["--server", "127.0.0.1", "--keys-format", "ntpd"],
            &["--server", "127.0.0.1", "--keys", "k", "--keys-format", "x"],
        ] {
            assert!(
                matches!(args(list), Err(ArgsError::Bad(_))),
                "{list:?} accepted"
            );
        }
    }

    #[test]
    fn maxchange_and_corrtimeratio_are_chronys() {
        let options = args(&[
            "--server",
            "127.0.0.1",
            "--maxchange",
            "0.1",
            "1",
            "3",
            "--corrtimeratio",
            "1e10",
        ])
        .unwrap_or_else(|e| unreachable!("{e:?}"));
        assert_eq!(
            options.max_change,
            Some(MaxChange {
                offset: 0.1,
                start: 1,
                ignore: Some(3)
            })
        );
        assert_eq!(options.correction_time_ratio, Some(1e10));
        let forever = args(&["--server", "127.0.0.1", "--maxchange", "1000", "0", "-1"])
            .unwrap_or_else(|e| unreachable!("{e:?}"));
        assert_eq!(forever.max_change.and_then(|rule| rule.ignore), None);
        let fallback = args(&["--server", "127.0.0.1", "--fallbackdrift", "6", "10"])
            .unwrap_or_else(|e| unreachable!("{e:?}"));
        assert_eq!(
            fallback.fallback_drift,
            Some(FallbackDrift { min: 6, max: 10 })
        );
        let off = args(&["--server", "127.0.0.1", "--fallbackdrift", "0", "10"])
            .unwrap_or_else(|e| unreachable!("{e:?}"));
        assert_eq!(off.fallback_drift, None);
        for list in [
            &["--server", "127.0.0.1", "--maxchange", "0", "1", "3"][..],
            &["--server", "127.0.0.1", "--maxchange", "0.1", "-1", "3"],
            &["--server", "127.0.0.1", "--maxchange", "0.1", "1"],
            &["--server", "127.0.0.1", "--corrtimeratio", "0.5"],
            &["--server", "127.0.0.1", "--fallbackdrift", "10", "6"],
            &["--server", "127.0.0.1", "--fallbackdrift", "6", "31"],
            &["--server", "127.0.0.1", "--fallbackdrift", "6"],
            &["--server", "127.0.0.1", "--corrtimeratio", "inf"],
        ] {
            assert!(matches!(args(list), Err(ArgsError::Bad(_))), "{list:?}");
        }
    }

    #[test]
    fn hwtimestamp_takes_an_interface_and_maybe_its_clock() {
        let hw = |value: &str| args(&["--server", "127.0.0.1", "--hwtimestamp", value]);
        assert_eq!(
            hw("eth0").ok().and_then(|o| o.hwtimestamp),
            Some(HwTimestamp {
                interface: "eth0".to_owned(),
                phc: None
            })
        );
        assert_eq!(
            hw("eth0,phc=/dev/ptp1").ok().and_then(|o| o.hwtimestamp),
            Some(HwTimestamp {
                interface: "eth0".to_owned(),
                phc: Some(PathBuf::from("/dev/ptp1"))
            })
        );
        for bad in ["", ",phc=/dev/ptp0", "eth0,phc=", "eth0,rxcomp=1", "../x"] {
            assert!(matches!(hw(bad), Err(ArgsError::Bad(_))), "{bad:?}");
        }
    }

    #[test]
    fn clockprecision_is_the_nearest_power_of_two() {
        let precision = |list: &[&str]| args(list).map(|o| o.clock_precision).ok();
        assert_eq!(
            precision(&["--server", "127.0.0.1", "--clockprecision", "1e-9"]),
            Some(Some(-30))
        );
        assert_eq!(
            precision(&["--server", "127.0.0.1", "--clockprecision", "1e-6"]),
            Some(Some(-20))
        );
        assert_eq!(
            precision(&["--server", "127.0.0.1", "--clockprecision", "1"]),
            Some(Some(0))
        );
        assert_eq!(precision(&["--server", "127.0.0.1"]), Some(None));
        for bad in ["0", "1e-10", "2", "nan", "-1e-6"] {
            assert!(
                matches!(
                    args(&["--server", "127.0.0.1", "--clockprecision", bad]),
                    Err(ArgsError::Bad(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn makestep_takes_a_threshold_and_a_limit() {
        let options = args(&["--server", "127.0.0.1", "--makestep", "0.1", "3"])
            .map_err(|e| format!("{e:?}"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            options.make_step,
            Some(MakeStep {
                threshold: 0.1,
                limit: Some(3)
            })
        );
        let options = args(&["--server", "127.0.0.1", "--makestep", "1", "-1"])
            .map_err(|e| format!("{e:?}"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            options.make_step,
            Some(MakeStep {
                threshold: 1.0,
                limit: None
            })
        );
        let options = args(&["--server", "127.0.0.1", "--minsources", "3", "--burst"])
            .map_err(|e| format!("{e:?}"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(options.min_sources, Some(3));
        assert!(options.burst);
        assert!(!options.retry_burst);
        let options = args(&["--server", "127.0.0.1", "--retry-burst"])
            .map_err(|e| format!("{e:?}"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(options.retry_burst && !options.burst);
        let options = args(&["--server", "127.0.0.1", "--polltarget", "1"])
            .map_err(|e| format!("{e:?}"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(options.poll_target, Some(1));
        for bad in ["0", "61", "-1", "x"] {
            assert!(args(&["--server", "127.0.0.1", "--polltarget", bad]).is_err());
        }
        let options = args(&[
            "--server",
            "127.0.0.1",
            "--maxdelay",
            "3e-5",
            "--maxdelayratio",
            "2",
            "--maxdelaydevratio",
            "2.5",
            "--mindelay",
            "2e-4",
            "--asymmetry",
            "-0.25",
        ])
        .unwrap();
        assert_eq!(options.delay.max_delay, Some(3e-5));
        assert_eq!(options.delay.max_delay_ratio, Some(2.0));
        assert_eq!(options.delay.max_delay_dev_ratio, Some(2.5));
        assert_eq!(options.delay.min_delay, Some(2e-4));
        assert_eq!(options.delay.asymmetry, Some(-0.25));
        for bad in [
            ["--asymmetry", "0.7"],
            ["--maxdelayratio", "0.5"],
            ["--maxdelay", "-1"],
        ] {
            let mut list = vec!["--server", "127.0.0.1"];
            list.extend(bad);
            assert!(matches!(args(&list), Err(ArgsError::Bad(_))), "{bad:?}");
        }
        assert!(matches!(
            args(&["--server", "127.0.0.1", "--minsources", "0"]),
            Err(ArgsError::Bad(_))
        ));
        for bad in [
            &["-1", "3"][..],
            &["nan", "3"],
            &["1", "99999999999"],
            &["1"],
        ] {
            let mut list = vec!["--server", "127.0.0.1", "--makestep"];
            list.extend_from_slice(bad);
            assert!(matches!(args(&list), Err(ArgsError::Bad(_))), "{bad:?}");
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        for list in [
            &["--server"][..],
            &[][..],
            &["--server", "127.0.0.1", "--clock", "atomic"],
            &[
                "--server",
                "127.0.0.1",
                "--min-poll",
                "7",
                "--max-poll",
                "6",
            ],
            &["--server", "127.0.0.1", "--duration", "-1"],
            &["--server", "127.0.0.1", "--bogus"],
            &["--server", "name.invalid"],
        ] {
            assert!(matches!(args(list), Err(ArgsError::Bad(_))), "{list:?}");
        }
        assert!(matches!(args(&["--help"]), Err(ArgsError::Help)));
        let options = args(&["--pool", "pool.example", "--pool", "other.example:11123"])
            .map_err(|e| format!("{e:?}"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let names: Vec<&str> = options.pools.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["pool.example:123", "other.example:11123"]);
        assert!(options.pools.iter().all(|p| p.max_sources == POOL_SIZE));
        assert!(options.servers.is_empty());
    }

    #[test]
    fn selection_flags_apply_to_the_source_just_before() {
        let options = args(&[
            "--server",
            "127.0.0.1",
            "--prefer",
            "--trust",
            "--server",
            "127.0.0.2",
            "--pool",
            "pool.example",
            "--maxsources",
            "2",
            "--noselect",
            "--xleave",
            "--nts",
            "nts.example",
            "--require",
            "--nts-ca",
            "ca.pem",
            "--authselectmode",
            "require",
            "--maxdistance",
            "3",
            "--maxjitter",
            "0.5",
        ])
        .unwrap_or_else(|e| unreachable!("{e:?}"));
        let first = options.servers[0].selection;
        assert!(first.options.prefer && first.options.trust && !first.options.require);
        assert_eq!(options.servers[1].selection, Selection::default());
        assert_eq!(options.pools[0].max_sources, 2);
        assert!(options.pools[0].selection.noselect && options.pools[0].selection.xleave);
        assert!(!options.servers[0].selection.xleave);
        assert!(options.nts[0].selection.options.require);
        assert_eq!(options.auth_select, AuthSelectMode::Require);
        assert_eq!(options.max_distance, Some(3.0));
        assert_eq!(options.max_jitter, Some(0.5));
        assert_eq!(
            args(&["--server", "127.0.0.1"]).map(|o| o.max_jitter).ok(),
            Some(Some(ntp_client::MAX_JITTER))
        );
        assert_eq!(
            args(&["--server", "127.0.0.1", "--maxjitter", "0"])
                .map(|o| o.max_jitter)
                .ok(),
            Some(None)
        );
        assert_eq!(
            args(&["--server", "127.0.0.1"]).map(|o| o.auth_select).ok(),
            Some(AuthSelectMode::Mix)
        );
        for list in [
            &["--prefer", "--server", "127.0.0.1"][..],
            &["--server", "127.0.0.1", "--maxsources", "2"],
            &["--pool", "pool.example", "--maxsources", "0"],
            &["--pool", "pool.example", "--maxsources", "17"],
            &["--server", "127.0.0.1", "--authselectmode", "strict"],
            &["--server", "127.0.0.1", "--maxdistance", "0"],
            &["--server", "127.0.0.1", "--maxdistance", "NaN"],
            &["--server", "127.0.0.1", "--maxjitter", "-1"],
            &["--xleave", "--server", "127.0.0.1"],
            &["--server", "127.0.0.1", "--maxjitter", "inf"],
        ] {
            assert!(matches!(args(list), Err(ArgsError::Bad(_))), "{list:?}");
        }
    }

    #[test]
    fn a_local_server_needs_no_sources_and_takes_access_rules() {
        let options = args(&[
            "--serve",
            "127.0.0.1:11123",
            "--local",
            "1",
            "--default-action",
            "allow",
            "--rule",
            "192.0.2.0/24=deny",
            "--rate",
            "3,4,2",
            "--symmetric",
            "drop",
            "--mac-policy",
            "drop",
        ])
        .unwrap_or_else(|e| unreachable!("{e:?}"));
        assert!(options.servers.is_empty());
        assert_eq!(options.local, Some(1));
        let config = &options.server_config;
        assert_eq!(config.acl_default, ntp_server::AccessAction::Allow);
        assert_eq!(config.acl_rules.len(), 1);
        assert_eq!(
            (
                config.rate_limit.interval,
                config.rate_limit.burst,
                config.rate_limit.leak
            ),
            (3, 4, 2)
        );
        assert_eq!(config.symmetric, ntp_server::SymmetricPolicy::Drop);
        assert_eq!(config.mac, ntp_server::MacPolicy::Drop);
        for bad in [
            // No sources and no --local: nothing to serve.
            &["--serve", "127.0.0.1:11123"][..],
            // Serving flags without --serve.
            &["--server", "127.0.0.1", "--local", "1"],
            &["--server", "127.0.0.1", "--rule", "10.0.0.0/8=deny"],
            &["--serve", "127.0.0.1:1", "--local", "0"],
            &["--serve", "127.0.0.1:1", "--local", "16"],
            &[
                "--serve",
                "127.0.0.1:1",
                "--local",
                "1",
                "--rule",
                "10.0.0.0/8",
            ],
            &[
                "--serve",
                "127.0.0.1:1",
                "--local",
                "1",
                "--rule",
                "10.0.0.0/33=deny",
            ],
            &[
                "--serve",
                "127.0.0.1:1",
                "--local",
                "1",
                "--rule",
                "10.0.0.0/8=maybe",
            ],
            &["--serve", "127.0.0.1:1", "--local", "1", "--rate", "3,4"],
            &["--serve", "127.0.0.1:1", "--local", "1", "--rate", "99,4,2"],
            &[
                "--serve",
                "127.0.0.1:1",
                "--local",
                "1",
                "--symmetric",
                "maybe",
            ],
        ] {
            assert!(matches!(args(bad), Err(ArgsError::Bad(_))), "{bad:?}");
        }
    }

    #[test]
    fn a_seed_is_refused_with_nts_sources() {
        let nts = ["--nts", "time.example", "--nts-ca", "ca.pem"];
        assert!(args(&nts).is_ok());
        let seeded: Vec<&str> = nts.iter().copied().chain(["--seed", "7"]).collect();
        assert!(matches!(args(&seeded), Err(ArgsError::Bad(m)) if m.contains("--seed")));
        assert!(args(&["--server", "127.0.0.1", "--seed", "7"]).is_ok());
    }

    #[test]
    fn serving_nts_takes_the_three_flags_together_and_serve() {
        let options = args(&[
            "--server",
            "127.0.0.1",
            "--serve",
            "127.0.0.1:11123",
            "--nts-ke-listen",
            "127.0.0.1:4460",
            "--nts-cert",
            "chain.pem",
            "--nts-key",
            "key.pem",
        ])
        .unwrap_or_else(|e| unreachable!("{e:?}"));
        assert_eq!(
            options.nts_serve,
            Some(NtsServe {
                listen: "127.0.0.1:4460".parse().unwrap_or_else(|_| unreachable!()),
                cert: PathBuf::from("chain.pem"),
                key: PathBuf::from("key.pem"),
                key_file: None,
            })
        );
        let plain = args(&["--server", "127.0.0.1", "--serve", "127.0.0.1:11123"])
            .unwrap_or_else(|e| unreachable!("{e:?}"));
        assert_eq!(plain.nts_serve, None);
        let serve = ["--server", "127.0.0.1", "--serve", "127.0.0.1:11123"];
        let listen = ["--nts-ke-listen", "127.0.0.1:4460"];
        let cert = ["--nts-cert", "chain.pem"];
        let key = ["--nts-key", "key.pem"];
        for list in [
            [&serve[..], &listen, &cert].concat(),
            [&serve[..], &listen, &key].concat(),
            [&serve[..], &cert, &key].concat(),
            [&serve[..], &listen].concat(),
            [&serve[..], &cert].concat(),
            // Without --serve there is nothing to protect.
            [&serve[..2], &listen, &cert, &key].concat(),
            [&serve[..], &["--nts-ke-listen", "4460"], &cert, &key].concat(),
            [&serve[..], &listen, &cert, &["--nts-key"]].concat(),
            [&serve[..], &["--nts-key-file", "keys"]].concat(),
        ] {
            match args(&list) {
                Err(ArgsError::Bad(message)) => assert!(!message.contains('\n'), "{message}"),
                other => unreachable!("{list:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn nts_servers_take_the_nts_ke_port_by_default_and_need_a_ca() {
        let options = args(&[
            "--nts",
            "nts.example",
            "--nts",
            "127.0.0.1:11150",
            "--nts",
            "::1",
            "--nts",
            "[::1]:4461",
            "--nts-ca",
            "ca.pem",
        ])
        .unwrap_or_else(|e| unreachable!("{e:?}"));
        let expected = [
            ("nts.example", 4460),
            ("127.0.0.1", 11150),
            ("[::1]", 4460),
            ("[::1]", 4461),
        ]
        .map(|(h, p)| (h.to_owned(), p));
        let got: Vec<(String, u16)> = options
            .nts
            .iter()
            .map(|n| (n.host.clone(), n.port))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(options.nts_ca, Some(PathBuf::from("ca.pem")));
        for list in [
            &["--nts", "nts.example"][..],
            &["--nts", "nts.example:0", "--nts-ca", "ca.pem"],
            &["--nts", ":4460", "--nts-ca", "ca.pem"],
        ] {
            assert!(matches!(args(list), Err(ArgsError::Bad(_))), "{list:?}");
        }
    }
}
