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

use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;
use std::fs::{self, File};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::Instant;

use crate::daemon_log;
use crate::noise::NoiseFiles;
use crate::scenario::Scenario;
use crate::stats::{self, Figures};

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

/// `(file "path")` with an outage term: during `[start, end]` the delay
/// drops by a second, so it is negative and the packet is lost.
fn delay_expression(file: &Path, scenario: &Scenario) -> String {
    let mut expression = format!("(file \"{}\")", file.display());
    for outage in &scenario.outages {
        let half = f64::from(outage.end - outage.start) / 2.0;
        let middle = f64::from(outage.start) + half;
        expression = format!("(+ {expression} (* -1 (equal {half} time {middle})))");
    }
    expression
}

/// The clknetsim configuration of a scenario.
pub(crate) fn clknetsim_config(scenario: &Scenario, noise: &NoiseFiles) -> String {
    let client = scenario.client_node();
    let mut conf = String::new();
    conf.push_str(&format!(
        "node{client}_offset = {:e}\n",
        scenario.client_offset
    ));
    conf.push_str(&format!(
        "node{client}_freq = (file \"{}\")\n",
        noise.freq.display()
    ));
    for (index, (up, down)) in noise.up.iter().zip(&noise.down).enumerate() {
        let server = index + 1;
        conf.push_str(&format!(
            "node{server}_offset = {:e}\n",
            scenario.server_offset(index)
        ));
        conf.push_str(&format!("node{server}_freq = 0\n"));
        conf.push_str(&format!(
            "node{client}_delay{server} = {}\n",
            delay_expression(up, scenario)
        ));
        conf.push_str(&format!(
            "node{server}_delay{client} = {}\n",
            delay_expression(down, scenario)
        ));
    }
    conf
}

/// chronyd's configuration as a server (`local stratum 1`).
fn chronyd_server_conf(dir: &Path, node: usize) -> String {
    format!(
        "local stratum 1\nallow\npidfile {}/chronyd-{node}.pid\ncmdport 0\nbindcmdaddress /\n",
        dir.display()
    )
}

/// chronyd's configuration as the client under test (no driftfile).
fn chronyd_client_conf(scenario: &Scenario, dir: &Path) -> String {
    let mut conf = String::new();
    for server in 1..=scenario.servers {
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
    for line in &scenario.chronyd_extra_conf {
        conf.push_str(line);
        conf.push('\n');
    }
    conf
}

/// Arguments of our daemon.
pub(crate) fn daemon_args(scenario: &Scenario, seed: u64) -> Vec<String> {
    let mut args = vec![
        String::from("--clock"),
        String::from("kernel"),
        String::from("--json"),
        String::from("--seed"),
        seed.to_string(),
    ];
    for server in 1..=scenario.servers {
        args.push(String::from("--server"));
        args.push(format!("{}:123", address(server)));
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

/// Starts one node under the simulator.
fn start_node(
    programs: &Programs,
    dir: &Path,
    number: usize,
    label: &str,
    program: &Path,
    args: &[String],
) -> Result<Node, String> {
    let stdout = dir.join(format!("node{number}.stdout"));
    let stderr = dir.join(format!("node{number}.stderr"));
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("LD_PRELOAD", &programs.preload)
        .env("CLKNETSIM_NODE", number.to_string())
        .env("CLKNETSIM_SOCKET", SOCKET)
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

    let mut children = Children::default();
    for server in 1..=scenario.servers {
        let conf = dir.join(format!("chronyd-{server}.conf"));
        write(&conf, &chronyd_server_conf(dir, server))?;
        let node = start_node(
            programs,
            dir,
            server,
            "chronyd server",
            &programs.chronyd,
            &chronyd_args(&conf),
        )?;
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
        )?
    } else {
        let args = daemon_args(scenario, spec.seed);
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
        )?
    };
    children.nodes.push(node);

    let simulator = Command::new(&programs.clknetsim)
        .current_dir(dir)
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
    for node in &children.nodes {
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
    let _ = fs::remove_file(dir.join(SOCKET));
    read_results(scenario, spec.client, dir)
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads the logs of a finished run: clknetsim's, and for our daemon its
/// JSON log on standard output.
fn read_results(scenario: &Scenario, client: ClientKind, dir: &Path) -> Result<RunOutput, String> {
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
    // that never sent a packet is taken as broken.
    if packets == 0 {
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
    if client == ClientKind::Ours {
        let log = read(&dir.join(format!("node{}.stdout", scenario.client_node())))?;
        figures.system_peers = Some(daemon_log::system_peers(&log));
    }
    Ok(RunOutput { offset, figures })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Outage;

    #[test]
    fn config_of_three_servers_with_an_outage() {
        let scenario = Scenario {
            servers: 3,
            server_offsets: vec![0.0, 0.0, 0.05],
            outages: vec![Outage {
                start: 9000,
                end: 16200,
            }],
            ..Scenario::default()
        };
        let noise = NoiseFiles {
            freq: PathBuf::from("/n/freq"),
            up: (1..=3)
                .map(|i| PathBuf::from(format!("/n/up.{i}")))
                .collect(),
            down: (1..=3)
                .map(|i| PathBuf::from(format!("/n/down.{i}")))
                .collect(),
        };
        let conf = clknetsim_config(&scenario, &noise);
        assert!(conf.contains("node4_offset = 1e-2\n"));
        assert!(conf.contains("node4_freq = (file \"/n/freq\")\n"));
        assert!(conf.contains("node3_offset = 5e-2\n"));
        assert!(
            conf.contains("node4_delay2 = (+ (file \"/n/up.2\") (* -1 (equal 3600 time 12600)))\n")
        );
        assert!(
            conf.contains(
                "node1_delay4 = (+ (file \"/n/down.1\") (* -1 (equal 3600 time 12600)))\n"
            )
        );
        let args = daemon_args(&scenario, 9);
        assert_eq!(
            args.get(3..5),
            Some(&[String::from("--seed"), String::from("9")][..])
        );
        assert_eq!(
            args.get(7..9),
            Some(&[String::from("--server"), String::from("192.168.123.2:123")][..])
        );
        let chrony = chronyd_client_conf(&scenario, Path::new("/run"));
        assert!(chrony.starts_with("server 192.168.123.1 iburst\nserver 192.168.123.2 iburst\n"));
    }
}
