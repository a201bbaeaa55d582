//! The two server programs: started fresh for every round on
//! 127.0.0.1:PORT, pinned to CPU 0, stopped with SIGTERM after it.
//!
//! Both always serve NTS-KE on 127.0.0.1:PORT+1 as well, whatever the
//! kind of the round: a server is started the same way in every round, so
//! the rounds of one kind and another differ only in the requests. The
//! certificate is self-signed, made by [`Servers::prepare`], and trusted
//! by the generator alone.

use core::net::SocketAddr;
use core::time::Duration;
use std::io::Write as _;
use std::net::UdpSocket;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::generator::{KEY_FILE, Target};

/// Which program serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Program {
    Ours,
    Chronyd,
}

/// How long a server may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The names the NTS-KE certificate is good for; the generator names the
/// server by the second.
const CERT_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// The programs, their files and the ports.
pub(crate) struct Servers {
    daemon: PathBuf,
    chronyd: Option<PathBuf>,
    dir: PathBuf,
    /// NTP (UDP).
    port: u16,
    /// NTS-KE (TCP): `port + 1`.
    ke_port: u16,
    /// The NTS-KE certificate, PEM.
    cert_pem: String,
}

/// chronyd on the PATH or in /usr/sbin.
pub(crate) fn find_chronyd() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chronyd"))
            .find(|path| path.is_file())
    });
    on_path.or_else(|| {
        let sbin = PathBuf::from("/usr/sbin/chronyd");
        sbin.is_file().then_some(sbin)
    })
}

impl Servers {
    /// Checks the programs and writes the key file, the NTS-KE
    /// certificate and its key, and chronyd's configuration into a fresh
    /// folder.
    pub(crate) fn prepare(
        daemon: &Path,
        chronyd: Option<&Path>,
        port: u16,
    ) -> Result<Self, String> {
        if !daemon.is_file() {
            return Err(format!(
                "{}: no such program (cargo build --release -p ntp-daemon)",
                daemon.display()
            ));
        }
        let chronyd = chronyd.filter(|path| path.is_file()).map(Path::to_owned);
        if chronyd.is_none() {
            eprintln!("throughput: no chronyd; measuring ours alone");
        }
        let dir = std::env::temp_dir().join(format!("ntp-throughput-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let ke_port = port
            .checked_add(1)
            .ok_or_else(|| format!("--port {port}: NTS-KE needs the port after it"))?;
        let keys = dir.join("keys");
        std::fs::write(&keys, KEY_FILE).map_err(|e| format!("{}: {e}", keys.display()))?;
        let certified =
            rcgen::generate_simple_self_signed(Vec::from(CERT_NAMES.map(str::to_owned)))
                .map_err(|error| format!("self-signed certificate: {error}"))?;
        let cert_pem = certified.cert.pem();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &cert_pem).map_err(|e| format!("{}: {e}", cert.display()))?;
        write_private(&key, certified.key_pair.serialize_pem().as_bytes())?;
        // `ntsprocesses 0`: NTS-KE in chronyd's main process, as ours
        // serves it from its own.
        let conf = format!(
            "port {port}\nbindaddress 127.0.0.1\nlocal stratum 1\nallow 127.0.0.1\nkeyfile {}\n\
             cmdport 0\npidfile {}\n\
             ntsservercert {}\nntsserverkey {}\nntsport {ke_port}\nntsprocesses 0\n",
            keys.display(),
            dir.join("chronyd.pid").display(),
            cert.display(),
            key.display(),
        );
        std::fs::write(dir.join("chronyd.conf"), conf).map_err(|e| e.to_string())?;
        Ok(Self {
            daemon: daemon.to_owned(),
            chronyd,
            dir,
            port,
            ke_port,
            cert_pem,
        })
    }

    /// What the generator needs to reach either server.
    pub(crate) fn target(&self) -> Target<'_> {
        Target {
            ntp: SocketAddr::from(([127, 0, 0, 1], self.port)),
            ke: SocketAddr::from(([127, 0, 0, 1], self.ke_port)),
            ke_name: CERT_NAMES[1],
            cert_pem: &self.cert_pem,
        }
    }

    pub(crate) const fn has_chronyd(&self) -> bool {
        self.chronyd.is_some()
    }

    /// Starts `program` and waits until it answers.
    pub(crate) fn start(&self, program: Program) -> Result<Running, String> {
        let Target {
            ntp: address, ke, ..
        } = self.target();
        let mut command = match (program, &self.chronyd) {
            (Program::Ours, _) => {
                let mut command = Command::new(&self.daemon);
                command.args([
                    "--serve",
                    &address.to_string(),
                    "--local",
                    "1",
                    "--default-action",
                    "allow",
                    "--keys",
                    &self.dir.join("keys").display().to_string(),
                    "--nts-ke-listen",
                    &ke.to_string(),
                    "--nts-cert",
                    &self.dir.join("cert.pem").display().to_string(),
                    "--nts-key",
                    &self.dir.join("key.pem").display().to_string(),
                ]);
                command
            }
            (Program::Chronyd, Some(chronyd)) => {
                let mut command = Command::new(chronyd);
                command.args(["-d", "-x", "-u", "root", "-f"]);
                command.arg(self.dir.join("chronyd.conf"));
                command
            }
            (Program::Chronyd, None) => return Err("no chronyd".to_owned()),
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("cannot start {program:?}: {error}"))?;
        let running = Running { child, address };
        pin(Some(running.pid()), 0);
        pin(None, 1);
        running.wait_until_answering()?;
        Ok(running)
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server running for one round.
pub(crate) struct Running {
    child: Child,
    address: SocketAddr,
}

impl Running {
    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX))
    }

    fn wait_until_answering(&self) -> Result<(), String> {
        let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        let mut request = [0_u8; 48];
        request[0] = 0x23;
        request[47] = 1;
        let mut buf = [0_u8; 512];
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            let _ = socket.send_to(&request, self.address);
            if socket.recv(&mut buf).is_ok_and(|len| len >= 48) {
                return Ok(());
            }
        }
        Err(format!(
            "no answer on {} within {START_TIMEOUT:?}",
            self.address
        ))
    }

    /// The server's CPU time so far, seconds: the sum over its threads of
    /// the first field of `/proc/PID/task/TID/schedstat` (nanoseconds on a
    /// CPU).
    pub(crate) fn cpu_seconds(&self) -> Result<f64, String> {
        let tasks = PathBuf::from(format!("/proc/{}/task", self.child.id()));
        let mut nanos = 0_u64;
        for entry in std::fs::read_dir(&tasks).map_err(|e| format!("{}: {e}", tasks.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path().join("schedstat");
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            nanos += text
                .split_whitespace()
                .next()
                .and_then(|field| field.parse::<u64>().ok())
                .unwrap_or(0);
        }
        Ok(nanos as f64 * 1e-9)
    }

    /// SIGTERM, then waits (SIGKILL after 5 s).
    pub(crate) fn stop(&mut self) {
        let _ = kill(self.pid(), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// Writes `contents` to `path`, created readable by its owner alone (a
/// private key).
fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(contents))
        .map_err(|error| format!("{}: {error}", path.display()))
}

/// Pins `pid` (this process for `None`) to CPU `cpu`, when the machine
/// has it; best effort.
fn pin(pid: Option<Pid>, cpu: usize) {
    if cpus() < 2 {
        return;
    }
    let mut set = CpuSet::new();
    if set.set(cpu).is_ok() {
        let _ = sched_setaffinity(pid.unwrap_or_else(|| Pid::from_raw(0)), &set);
    }
}

/// CPUs online (not this process's affinity, which [`pin`] narrows).
pub(crate) fn cpus() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
        .ok()
        .flatten()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(1)
}

/// `/proc/loadavg`'s first three fields.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".to_owned())
}
