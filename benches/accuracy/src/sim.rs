//! One clknetsim run: configuration files, the node processes and the
//! simulator, and the logs they leave in the run folder.
//!
//! Every process runs in the run folder with the socket `clknetsim.sock`
//! given relative to it (a UNIX socket path is limited to 108 bytes). The
//! nodes are started first and retry connecting for up to ten seconds
//! while clknetsim binds the socket. At the end of the simulation
//! clknetsim answers the nodes' next `select()` with "terminate" and the
//! preloaded library sends each node SIGTERM; a node that talks to the
//! closed socket afterwards exits with status 1 after printing
//! "clknetsim: server connection closed.". A node that exits before the
//! end makes clknetsim print "client N failed." and exit with status 1,
//! except when it exits before its first request (the library connects
//! when it is loaded): then the simulation runs on without it.
//!
//! Every process gets `CLKNETSIM_RANDOM_SEED` (from the run's seed): the
//! preloaded library then seeds `srandom` and answers `/dev/urandom` from
//! it, so chronyd's random choices (poll randomisation, ports) repeat from
//! run to run like the noise does; without it they come from the host.

use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::Instant;

use crate::chrony::{self, ChronyFigures, Selection};
use crate::daemon_log;
use crate::network::clknetsim_config;
use crate::noise::NoiseFiles;
use crate::scenario::Scenario;
use crate::stats::{self, Figures};

/// The drift file of a scenario with `drift_file`, in the run folder.
const DRIFT_FILE: &str = "drift";

/// UNIX socket of the simulator, relative to the run folder.
const SOCKET: &str = "clknetsim.sock";

/// How long the nodes get to exit after the simulator has.
const EXIT_GRACE: Duration = Duration::from_secs(10);

/// SIGTERM, the signal the preloaded library ends a node with.
const SIGTERM: i32 = 15;

/// The client under test on the client node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientKind {
    /// chronyd, the reference.
    Chronyd,
    /// Our daemon (`ntp-daemon`).
    Ours,
}

impl ClientKind {
    /// Name used in tables and folder names.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ClientKind::Chronyd => "chronyd",
            ClientKind::Ours => "ours",
        }
    }
}

/// Where the programs are.
#[derive(Debug, Clone)]
pub(crate) struct Programs {
    /// The `clknetsim` binary.
    pub(crate) clknetsim: PathBuf,
    /// `clknetsim.so`, preloaded into every node.
    pub(crate) preload: PathBuf,
    /// chronyd (servers and the reference client).
    pub(crate) chronyd: PathBuf,
    /// Our daemon.
    pub(crate) daemon: PathBuf,
    /// Development aid: run chronyd as "ours" too.
    pub(crate) ours_is_chronyd: bool,
    /// Wall-clock limit for the simulator.
    pub(crate) timeout: Duration,
}

/// One run to do.
#[derive(Debug, Clone)]
pub(crate) struct RunSpec<'a> {
    /// The scenario.
    pub(crate) scenario: &'a Scenario,
    /// The client under test.
    pub(crate) client: ClientKind,
    /// The noise files of the scenario and seed.
    pub(crate) noise: &'a NoiseFiles,
    /// The seed, also handed to our daemon's nonce and poll-jitter
    /// generator so that a run repeats exactly.
    pub(crate) seed: u64,
    /// Run folder (emptied first).
    pub(crate) dir: PathBuf,
}

/// What a successful run leaves.
#[derive(Debug, Clone)]
pub(crate) struct RunOutput {
    /// True offset of the client clock, one value per second.
    pub(crate) offset: Vec<f64>,
    /// Figures of the run.
    pub(crate) figures: Figures,
}

/// Address of node `node` (clknetsim: node n is 192.168.123.n).
pub(crate) fn node_ip(node: usize) -> IpAddr {
    let last = u8::try_from(node).unwrap_or(u8::MAX);
    IpAddr::V4(Ipv4Addr::new(192, 168, 123, last))
}

/// Address of node `node` as text.
fn address(node: usize) -> String {
    node_ip(node).to_string()
}

/// Name of the key file in the run folder (scenario `key_file`).
const KEY_FILE: &str = "keys";

/// chronyd's `keyfile` line when the scenario has a key file.
fn keyfile_line(scenario: &Scenario, dir: &Path) -> String {
    scenario.key_file.as_ref().map_or_else(String::new, |_| {
        format!("keyfile {}\n", dir.join(KEY_FILE).display())
    })
}

/// chronyd's configuration as a server (`local stratum 1`).
fn chronyd_server_conf(scenario: &Scenario, dir: &Path, node: usize) -> String {
    let keyfile = if scenario.key_file_clients_only {
        String::new()
    } else {
        keyfile_line(scenario, dir)
    };
    let mut conf = format!(
        "local stratum 1\nallow\npidfile {}/chronyd-{node}.pid\ncmdport 0\nbindcmdaddress /\n{keyfile}",
        dir.display(),
    );
    for line in &scenario.chronyd_server_conf {
        conf.push_str(line);
        conf.push('\n');
    }
    conf
}

/// chronyd's configuration as the client under test (a driftfile only
/// when the scenario gives one).
fn chronyd_client_conf(scenario: &Scenario, dir: &Path) -> String {
    let mut conf = String::new();
    for line in &scenario.chronyd_sources {
        conf.push_str(line);
        conf.push('\n');
    }
    for server in (1..=scenario.servers).filter(|_| scenario.chronyd_sources.is_empty()) {
        conf.push_str(&format!(
            "server {} {}\n",
            address(server),
            scenario.chronyd_server_options
        ));
    }
    conf.push_str(&format!(
        "pidfile {}/chronyd-{}.pid\ncmdport 0\nbindcmdaddress /\n",
        dir.display(),
        scenario.client_node()
    ));
    if scenario.drift_file.is_some() {
        conf.push_str(&format!("driftfile {}\n", dir.join(DRIFT_FILE).display()));
    }
    conf.push_str(&keyfile_line(scenario, dir));
    for line in &scenario.chronyd_extra_conf {
        conf.push_str(line);
        conf.push('\n');
    }
    conf
}

/// Arguments of our daemon; `dir` is the run folder (for the drift file).
pub(crate) fn daemon_args(scenario: &Scenario, seed: u64, dir: &Path) -> Vec<String> {
    let mut args = vec![
        String::from("--clock"),
        String::from("kernel"),
        String::from("--json"),
        String::from("--seed"),
        seed.to_string(),
    ];
    args.extend(scenario.daemon_sources.iter().cloned());
    for server in (1..=scenario.servers).filter(|_| scenario.daemon_sources.is_empty()) {
        args.push(String::from("--server"));
        args.push(format!("{}:123", address(server)));
    }
    if scenario.drift_file.is_some() {
        args.push(String::from("--drift-file"));
        args.push(dir.join(DRIFT_FILE).display().to_string());
    }
    if scenario.key_file.is_some() {
        args.push(String::from("--keys"));
        args.push(dir.join(KEY_FILE).display().to_string());
    }
    args.extend(scenario.daemon_args.iter().cloned());
    args
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn create(path: &Path) -> Result<File, String> {
    File::create(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A started node process and where its output goes.
struct Node {
    /// 1-based node number.
    number: usize,
    /// What it is, for messages.
    label: String,
    child: Child,
    /// File with its standard error.
    stderr: PathBuf,
    /// Exit status once reaped.
    status: Option<ExitStatus>,
}

/// Children of one run; whatever is still running when this is dropped
/// (an error path) is killed and reaped, so no process outlives the run.
#[derive(Default)]
struct Children {
    nodes: Vec<Node>,
    simulator: Option<Child>,
}

impl Drop for Children {
    fn drop(&mut self) {
        let simulator = self.simulator.iter_mut();
        let nodes = self
            .nodes
            .iter_mut()
            .filter(|node| node.status.is_none())
            .map(|node| &mut node.child);
        for child in simulator.chain(nodes) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for a child until `deadline`; `None` when it is still running.
fn wait_until(child: &mut Child, deadline: Instant) -> Result<Option<ExitStatus>, String> {
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// The last lines of a log, for error messages.
fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(5);
    lines.get(from..).unwrap_or(&[]).join(" | ")
}

/// Whether a node ended the way the simulation's end ends it.
fn ended_normally(node: &Node) -> bool {
    let Some(status) = node.status else {
        return false;
    };
    if status.success() || status.signal() == Some(SIGTERM) {
        return true;
    }
    status.code() == Some(1)
        && fs::read_to_string(&node.stderr)
            .is_ok_and(|log| log.contains("clknetsim: server connection closed"))
}

/// clknetsim's random seed for a run seed (never 0, which means unset).
fn random_seed(seed: u64) -> String {
    seed.wrapping_add(1).max(1).to_string()
}

/// Starts one node under the simulator.
fn start_node(
    programs: &Programs,
    dir: &Path,
    number: usize,
    label: &str,
    program: &Path,
    args: &[String],
    (seed, env): (u64, &BTreeMap<String, String>),
) -> Result<Node, String> {
    let stdout = dir.join(format!("node{number}.stdout"));
    let stderr = dir.join(format!("node{number}.stderr"));
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("LD_PRELOAD", &programs.preload)
        .env("CLKNETSIM_NODE", number.to_string())
        .env("CLKNETSIM_SOCKET", SOCKET)
        .env("CLKNETSIM_RANDOM_SEED", random_seed(seed))
        .envs(env)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .stdin(Stdio::null())
        .stdout(create(&stdout)?)
        .stderr(create(&stderr)?)
        .spawn()
        .map_err(|e| format!("cannot start {} ({label}): {e}", program.display()))?;
    Ok(Node {
        number,
        label: String::from(label),
        child,
        stderr,
        status: None,
    })
}

/// Our daemon as a server in place of chronyd's `local stratum 1`,
/// `allow` configuration: a primary server of its node's clock, every
/// client allowed and none rate-limited (chronyd's default), on the
/// kernel clock it never steers (it has no sources).
pub(crate) const DAEMON_SERVER_ARGS: &[&str] = &[
    "--clock",
    "kernel",
    "--json",
    "--serve",
    "0.0.0.0:123",
    "--local",
    "1",
    "--default-action",
    "allow",
];

/// chronyd's command line for a configuration file.
fn chronyd_args(conf: &Path) -> Vec<String> {
    vec![
        String::from("-d"),
        String::from("-u"),
        String::from("root"),
        String::from("-f"),
        conf.display().to_string(),
    ]
}

/// Runs one client in one scenario and seed and reads its figures.
pub(crate) fn run(spec: &RunSpec<'_>, programs: &Programs) -> Result<RunOutput, String> {
    let scenario = spec.scenario;
    let dir = &spec.dir;
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dir = &fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    write(
        &dir.join("clknetsim.conf"),
        &clknetsim_config(scenario, spec.noise),
    )?;

    if let Some(drift) = &scenario.drift_file {
        write(&dir.join(DRIFT_FILE), &format!("{drift}\n"))?;
    }
    if let Some(keys) = &scenario.key_file {
        write(&dir.join(KEY_FILE), &format!("{keys}\n"))?;
    }

    let mut children = Children::default();
    for server in 1..=scenario.servers {
        let node = if let Some(extra) = &scenario.daemon_server_args {
            let mut args: Vec<String> =
                DAEMON_SERVER_ARGS.iter().map(|a| (*a).to_owned()).collect();
            args.extend(extra.iter().cloned());
            write(
                &dir.join(format!("daemon-{server}.cmdline")),
                &format!("{} {}\n", programs.daemon.display(), args.join(" ")),
            )?;
            start_node(
                programs,
                dir,
                server,
                "our server",
                &programs.daemon,
                &args,
                (spec.seed, &scenario.clknetsim_env),
            )?
        } else {
            let conf = dir.join(format!("chronyd-{server}.conf"));
            write(&conf, &chronyd_server_conf(scenario, dir, server))?;
            start_node(
                programs,
                dir,
                server,
                "chronyd server",
                &programs.chronyd,
                &chronyd_args(&conf),
                (spec.seed, &scenario.clknetsim_env),
            )?
        };
        children.nodes.push(node);
    }
    let client = scenario.client_node();
    let chronyd_client = spec.client == ClientKind::Chronyd || programs.ours_is_chronyd;
    let node = if chronyd_client {
        let conf = dir.join(format!("chronyd-{client}.conf"));
        write(&conf, &chronyd_client_conf(scenario, dir))?;
        start_node(
            programs,
            dir,
            client,
            spec.client.name(),
            &programs.chronyd,
            &chronyd_args(&conf),
            (spec.seed, &scenario.clknetsim_env),
        )?
    } else {
        let args = daemon_args(scenario, spec.seed, dir);
        write(
            &dir.join("daemon.cmdline"),
            &format!("{} {}\n", programs.daemon.display(), args.join(" ")),
        )?;
        start_node(
            programs,
            dir,
            client,
            spec.client.name(),
            &programs.daemon,
            &args,
            (spec.seed, &scenario.clknetsim_env),
        )?
    };
    children.nodes.push(node);

    let simulator = Command::new(&programs.clknetsim)
        .current_dir(dir)
        .env("CLKNETSIM_RANDOM_SEED", random_seed(spec.seed))
        .envs(&scenario.clknetsim_env)
        .args(["-s", SOCKET, "-o", "offset.log", "-f", "freq.log"])
        .args(["-p", "packets.log", "-l"])
        .arg(scenario.length.to_string())
        .arg("-r")
        .arg(scenario.warmup.to_string())
        .arg("clknetsim.conf")
        .arg(client.to_string())
        .stdin(Stdio::null())
        .stdout(create(&dir.join("clknetsim.stats"))?)
        .stderr(create(&dir.join("clknetsim.stderr"))?)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", programs.clknetsim.display()))?;
    let simulator = children.simulator.insert(simulator);

    let status = wait_until(simulator, Instant::now() + programs.timeout)?.ok_or_else(|| {
        format!(
            "clknetsim did not finish within {} s",
            programs.timeout.as_secs()
        )
    })?;
    children.simulator = None;
    let deadline = Instant::now() + EXIT_GRACE;
    for node in &mut children.nodes {
        node.status = wait_until(&mut node.child, deadline)?;
    }
    if !status.success() {
        return Err(format!(
            "clknetsim failed ({status}): {}",
            tail(&dir.join("clknetsim.stderr"))
        ));
    }
    let client_gave_up = check_exits(scenario, &children.nodes)?;
    let _ = fs::remove_file(dir.join(SOCKET));
    read_results(scenario, spec.client, dir, client_gave_up)
}

/// Whether every node ended the way the simulation's end ends it; the
/// client of a ported case that expects it to give up (chrony's
/// `check_chronyd_exit && test_fail`) may have exited early instead:
/// `Ok(true)` then.
///
/// # Errors
///
/// Any other node that did not end normally, with its exit and log tail.
fn check_exits(scenario: &Scenario, nodes: &[Node]) -> Result<bool, String> {
    let may_give_up = scenario
        .chrony
        .as_ref()
        .is_some_and(|test| test.exit == chrony::Expect::Fail);
    let client_node = scenario.client_node();
    let mut client_gave_up = false;
    for node in nodes {
        if may_give_up && node.number == client_node && !ended_normally(node) {
            client_gave_up = true;
            continue;
        }
        if !ended_normally(node) {
            let how = node
                .status
                .map_or_else(|| String::from("did not exit"), |s| s.to_string());
            return Err(format!(
                "node {} ({}) {how}: {}",
                node.number,
                node.label,
                tail(&node.stderr)
            ));
        }
    }
    Ok(client_gave_up)
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads the logs of a finished run: clknetsim's, and for our daemon its
/// JSON log on standard output.
fn read_results(
    scenario: &Scenario,
    client: ClientKind,
    dir: &Path,
    exited_early: bool,
) -> Result<RunOutput, String> {
    let column = scenario.client_node() - 1;
    let offset = stats::parse_column(&read(&dir.join("offset.log"))?, column)
        .map_err(|e| format!("offset.log: {e}"))?;
    let freq = stats::parse_column(&read(&dir.join("freq.log"))?, column)
        .map_err(|e| format!("freq.log: {e}"))?;
    let expected = usize::try_from(scenario.length).unwrap_or(usize::MAX);
    if offset.len() < expected || freq.len() < expected {
        return Err(format!(
            "short logs: {} offset and {} frequency lines, expected {}",
            offset.len(),
            freq.len(),
            expected + 1
        ));
    }
    let packets = stats::count_packets(&read(&dir.join("packets.log"))?, scenario.client_node())?;
    // A node that exits before its first request to the simulator does
    // not fail the simulation (clknetsim runs on without it), so a client
    // of servers that never sent a packet is taken as broken (a client of
    // a reference clock alone sends none).
    if packets == 0 && scenario.servers > 0 {
        return Err(String::from(
            "the client sent no packet (exited before the simulation started?)",
        ));
    }
    let mut figures = stats::figures(
        &offset,
        &freq,
        packets,
        scenario.warmup,
        scenario.event.as_ref(),
    );
    let node = scenario.client_node();
    let ours_log = if client == ClientKind::Ours {
        let log = read(&dir.join(format!("node{node}.stdout")))?;
        let peers = daemon_log::system_peers(&log);
        figures.system_peers = Some(peers.clone());
        Some(peers)
    } else {
        None
    };
    if let Some(test) = &scenario.chrony {
        let (selection, gave_up) = match ours_log {
            Some(peers) => (Selection::Ours(peers), exited_early),
            None => {
                let log = read(&dir.join(format!("node{node}.stderr")))?;
                (
                    chrony::chronyd_selection(&log),
                    exited_early || chrony::chronyd_gave_up(&log),
                )
            }
        };
        figures.chrony = Some(ChronyFigures {
            sync_time: chrony::find_sync(&offset, &freq, test.time_max_limit, test.freq_max_limit),
            stats: stats::node_stats(&read(&dir.join("clknetsim.stats"))?, node)?,
            selection,
            gave_up,
        });
    }
    Ok(RunOutput { offset, figures })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_and_chronyd_client_configuration() {
        let scenario = Scenario {
            servers: 3,
            drift_file: Some(String::from("100 1.0")),
            chronyd_extra_conf: vec![String::from("makestep 1e-2 1")],
            ..Scenario::default()
        };
        let dir = Path::new("/run");
        let args = daemon_args(&scenario, 9, dir);
        assert_eq!(
            args.get(3..5),
            Some(&[String::from("--seed"), String::from("9")][..])
        );
        assert_eq!(
            args.get(7..9),
            Some(&[String::from("--server"), String::from("192.168.123.2:123")][..])
        );
        assert_eq!(
            args.get(11..),
            Some(&[String::from("--drift-file"), String::from("/run/drift")][..])
        );
        let chrony = chronyd_client_conf(&scenario, dir);
        assert!(chrony.starts_with("server 192.168.123.1 iburst\nserver 192.168.123.2 iburst\n"));
        assert!(chrony.ends_with("driftfile /run/drift\nmakestep 1e-2 1\n"));
    }
}
