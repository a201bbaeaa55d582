//! Command-line options (parsed with `lexopt`).

use core::net::SocketAddr;
use core::time::Duration;
use std::net::ToSocketAddrs;
use std::path::PathBuf;

use ntp_client::ntp_auth::{KeyFileFormat, KeyId};
use ntp_client::ntp_discipline::MakeStep;
use ntp_client::{DEFAULT_MAX_POLL, DEFAULT_MIN_POLL, DelayConfig, MAX_POLL, MIN_POLL};

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

/// Everything the command line says.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// Servers, resolved, each with the id of the key that authenticates
    /// it (`--key`), if any.
    pub(crate) servers: Vec<(String, SocketAddr, Option<KeyId>)>,
    /// The key file (`--keys`) and its format (`--keys-format`).
    pub(crate) keys: Option<(PathBuf, KeyFileFormat)>,
    /// Pools: names with a port, resolved when the system asks.
    pub(crate) pools: Vec<String>,
    /// NTS sources: the NTS-KE server's host (a name, an IPv4 address or
    /// a bracketed IPv6 address) and TCP port.
    pub(crate) nts: Vec<(String, u16)>,
    /// The PEM trust anchors for the NTS-KE servers' certificates.
    pub(crate) nts_ca: Option<PathBuf>,
    pub(crate) min_poll: i8,
    pub(crate) max_poll: i8,
    pub(crate) iburst: bool,
    pub(crate) drift_file: Option<PathBuf>,
    pub(crate) duration: Option<Duration>,
    pub(crate) serve: Option<SocketAddr>,
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
    /// `--minsources N`: the fewest sources that must agree.
    pub(crate) min_sources: Option<usize>,
    /// `--burst`: a burst of requests at every poll (RFC 5905 BURST).
    pub(crate) burst: bool,
    /// `--maxdelay`, `--maxdelayratio`, `--maxdelaydevratio`,
    /// `--mindelay` and `--asymmetry`, for every server.
    pub(crate) delay: DelayConfig,
}

/// `--nts-ke-listen`, `--nts-cert` and `--nts-key`: NTS for `--serve`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NtsServe {
    pub(crate) listen: SocketAddr,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
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

pub(crate) const USAGE: &str = "usage: ntp-daemon (--server HOST[:PORT] [--key ID] | --pool NAME[:PORT] | --nts HOST[:PORT])... \
[--nts-ca FILE] [--keys FILE] [--keys-format chrony|ntpd] [--min-poll N] [--max-poll N] \
[--no-iburst] [--drift-file PATH] [--duration SECONDS] \
[--serve ADDR:PORT [--nts-ke-listen ADDR:PORT --nts-cert FILE --nts-key FILE]] [--clock model|kernel] [--model-offset MS] [--model-drift PPM] [--json] [--verbose] \
[--table-every SECONDS] [--seed N] [--makestep THRESHOLD LIMIT] [--minsources N] [--burst] \
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
  --keys FILE            the key file for --key, and for the clients of
                         --serve (requests with a MAC are answered with one)
  --keys-format FORMAT   chrony (default: chrony.keys) or ntpd (ntp.keys,
                         also NTPsec's)
  --pool NAME[:PORT]     a name that stands for up to 4 servers, such as
                         pool.ntp.org (repeatable); resolved at start and
                         again to replace members that stop answering, lie
                         or send a kiss-o'-death
  --nts HOST[:PORT]      an NTS server (RFC 8915; repeatable): NTS-KE with
                         HOST on TCP port PORT (default 4460), then
                         NTS-protected NTP with the server it names; only
                         authenticated replies are used
  --nts-ca FILE          PEM certificates to trust for the NTS-KE servers
                         (required with --nts: no system root store is
                         bundled; a CA bundle such as
                         /etc/ssl/certs/ca-certificates.crt does for public
                         servers)
  --min-poll N           lowest poll exponent, log2 s (default 6 = 64 s)
  --max-poll N           highest poll exponent, log2 s (default 10 = 1024 s)
  --no-iburst            no burst of requests at the first poll
  --drift-file PATH      frequency in ppm: read at start, written every hour
                         and at exit (as ntpd and chronyd do)
  --duration SECONDS     stop by itself after that long
  --serve ADDR:PORT      answer NTP clients there with the system variables
  --nts-ke-listen ADDR:PORT  also serve NTS (RFC 8915) to the clients of
                         --serve: NTS-KE over TLS 1.3 on this TCP address
                         (4460 is the usual port), naming the --serve port
                         when it is not 123; clients then use the host they
                         reached NTS-KE at for NTP. The cookie master key is
                         random at start and rotated daily. Needs --serve,
                         --nts-cert and --nts-key
  --nts-cert FILE        the NTS-KE certificate chain, PEM, leaf first
  --nts-key FILE         its private key, PEM
  --clock model|kernel   model (default): a model clock, the system clock is
                         never touched; kernel: steer CLOCK_REALTIME (needs
                         CAP_SYS_TIME)
  --model-offset MS      the model clock's error at start (default 0)
  --model-drift PPM      the model oscillator's frequency error (default 0)
  --json                 JSON lines instead of text
  --verbose              also log refused datagrams and every adjustment
  --table-every SECONDS  print the peer table this often (default 64)
  --seed N               seed the client's nonce generator (default: from
                         the OS; NTS serving keys always come from the OS)
  --makestep THRESHOLD LIMIT  step, instead of slewing, an offset above
                         THRESHOLD seconds during the first LIMIT clock updates
                         (LIMIT -1: always), as chrony's makestep; also lifts
                         the 1000 s panic threshold (the step is wanted)
  --minsources N         steer the clock only while at least N sources agree
                         (default: 2 with three or more sources, else 1),
                         as chrony's minsources
  --burst                a burst of eight requests 2 s apart at every poll
                         while a server answers (RFC 5905 BURST; eight times
                         the load on the servers: for sparse or lossy paths)
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

Exit status: 0 after --duration or on SIGINT/SIGTERM (the drift file is
written first), 1 on a runtime error, 2 on bad arguments, an unresolvable
server, or --clock kernel without the privilege.
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

/// Parses the command line (without the program name).
pub(crate) fn parse(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<Options, ArgsError> {
    use lexopt::prelude::*;

    let mut options = Options {
        servers: Vec::new(),
        keys: None,
        pools: Vec::new(),
        nts: Vec::new(),
        nts_ca: None,
        min_poll: DEFAULT_MIN_POLL,
        max_poll: DEFAULT_MAX_POLL,
        iburst: true,
        drift_file: None,
        duration: None,
        serve: None,
        nts_serve: None,
        clock: ClockKind::Model,
        model_offset: 0.0,
        model_drift: 0.0,
        json: false,
        verbose: false,
        table_every: Duration::from_secs(64),
        seed: None,
        make_step: None,
        min_sources: None,
        burst: false,
        delay: DelayConfig::default(),
    };
    let (mut nts_ke_listen, mut nts_cert, mut nts_key) = (None, None, None);
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("help") | Short('h') => return Err(ArgsError::Help),
            Long("server") => {
                let name: String = parser.value()?.parse()?;
                let address = resolve(&name)?;
                options.servers.push((name, address, None));
            }
            Long("key") => {
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
                server.2 = Some(id);
            }
            Long("keys") => {
                let path: PathBuf = parser.value()?.into();
                let format = options.keys.map_or(KeyFileFormat::Chrony, |(_, f)| f);
                options.keys = Some((path, format));
            }
            Long("keys-format") => {
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
            Long("pool") => {
                let name: String = parser.value()?.parse()?;
                options.pools.push(with_port(&name));
            }
            Long("nts") => {
                let text: String = parser.value()?.parse()?;
                options.nts.push(nts_target(&text)?);
            }
            Long("nts-ca") => options.nts_ca = Some(parser.value()?.into()),
            Long("min-poll") => options.min_poll = parser.value()?.parse()?,
            Long("max-poll") => options.max_poll = parser.value()?.parse()?,
            Long("iburst") => options.iburst = true,
            Long("no-iburst") => options.iburst = false,
            Long("drift-file") => options.drift_file = Some(parser.value()?.into()),
            Long("duration") => {
                options.duration = Some(seconds("--duration", parser.value()?.parse()?)?);
            }
            Long("serve") => {
                let text: String = parser.value()?.parse()?;
                options.serve = Some(
                    text.parse()
                        .map_err(|_| ArgsError::Bad(format!("--serve {text:?}: not ADDR:PORT")))?,
                );
            }
            Long("nts-ke-listen") => {
                let text: String = parser.value()?.parse()?;
                nts_ke_listen = Some(text.parse().map_err(|_| {
                    ArgsError::Bad(format!("--nts-ke-listen {text:?}: not ADDR:PORT"))
                })?);
            }
            Long("nts-cert") => nts_cert = Some(parser.value()?.into()),
            Long("nts-key") => nts_key = Some(parser.value()?.into()),
            Long("clock") => {
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
            Long("model-offset") => {
                let ms: f64 = parser.value()?.parse()?;
                options.model_offset = finite("--model-offset", ms, 1e6)? * 1e-3;
            }
            Long("model-drift") => {
                let ppm: f64 = parser.value()?.parse()?;
                options.model_drift = finite("--model-drift", ppm, 1e4)? * 1e-6;
            }
            Long("json") => options.json = true,
            Long("verbose") | Short('v') => options.verbose = true,
            Long("table-every") => {
                options.table_every = seconds("--table-every", parser.value()?.parse()?)?;
            }
            Long("seed") => options.seed = Some(parser.value()?.parse()?),
            Long("minsources") => {
                let n: usize = parser.value()?.parse()?;
                if n == 0 {
                    return Err(ArgsError::Bad("--minsources 0: at least 1".to_owned()));
                }
                options.min_sources = Some(n);
            }
            Long("burst") => options.burst = true,
            Long("maxdelay") => options.delay.max_delay = Some(parser.value()?.parse()?),
            Long("maxdelayratio") => {
                options.delay.max_delay_ratio = Some(parser.value()?.parse()?);
            }
            Long("maxdelaydevratio") => {
                options.delay.max_delay_dev_ratio = Some(parser.value()?.parse()?);
            }
            Long("mindelay") => options.delay.min_delay = Some(parser.value()?.parse()?),
            Long("asymmetry") => options.delay.asymmetry = Some(parser.value()?.parse()?),
            Long("makestep") => {
                let threshold: f64 = parser.value()?.parse()?;
                let limit: i64 = parser.value()?.parse()?;
                options.make_step = Some(make_step(threshold, limit)?);
            }
            _ => return Err(ArgsError::Bad(format!("{}; {USAGE}", arg.unexpected()))),
        }
    }
    if options.servers.is_empty() && options.pools.is_empty() && options.nts.is_empty() {
        return Err(ArgsError::Bad(format!(
            "no --server, --pool or --nts given; {USAGE}"
        )));
    }
    if !options.nts.is_empty() && options.nts_ca.is_none() {
        return Err(ArgsError::Bad(
            "--nts needs --nts-ca FILE: no system root store is bundled, so give the \
             certificates to trust (a CA bundle such as /etc/ssl/certs/ca-certificates.crt \
             for public servers, or the server's own self-signed certificate)"
                .to_owned(),
        ));
    }
    options.nts_serve = match (nts_ke_listen, nts_cert, nts_key) {
        (None, None, None) => None,
        (Some(listen), Some(cert), Some(key)) if options.serve.is_some() => {
            Some(NtsServe { listen, cert, key })
        }
        (Some(_), Some(_), Some(_)) => {
            return Err(ArgsError::Bad(format!(
                "--nts-ke-listen serves NTS to the clients of --serve, which is missing; {USAGE}"
            )));
        }
        _ => {
            return Err(ArgsError::Bad(format!(
                "--nts-ke-listen, --nts-cert and --nts-key go together; {USAGE}"
            )));
        }
    };
    if options
        .keys
        .as_ref()
        .is_some_and(|(path, _)| path.as_os_str().is_empty())
    {
        return Err(ArgsError::Bad(format!(
            "--keys-format without --keys; {USAGE}"
        )));
    }
    if options.keys.is_none() && options.servers.iter().any(|(_, _, key)| key.is_some()) {
        return Err(ArgsError::Bad(format!("--key without --keys; {USAGE}")));
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
    Ok(options)
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
        let ports: Vec<u16> = options.servers.iter().map(|(_, a, _)| a.port()).collect();
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
            .map(|(_, _, key)| key.map(KeyId::get))
            .collect();
        assert_eq!(keys, [Some(7), None]);
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
        assert_eq!(options.pools, ["pool.example:123", "other.example:11123"]);
        assert!(options.servers.is_empty());
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
        assert_eq!(options.nts, expected);
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
