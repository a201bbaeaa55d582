//! The two server programs: started fresh for every round on
//! 127.0.0.1:PORT, pinned to CPU 0, stopped with SIGTERM after it.

use core::net::SocketAddr;
use core::time::Duration;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::generator::KEY_FILE;

/// Which program serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Program {
    Ours,
    Chronyd,
}

/// How long a server may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The programs, their files and the port.
pub(crate) struct Servers {
    daemon: PathBuf,
    chronyd: Option<PathBuf>,
    dir: PathBuf,
    port: u16,
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
    /// Checks the programs and writes the key file and chronyd's
    /// configuration into a fresh folder.
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
        let keys = dir.join("keys");
        std::fs::write(&keys, KEY_FILE).map_err(|e| format!("{}: {e}", keys.display()))?;
        let conf = format!(
            "port {port}\nbindaddress 127.0.0.1\nlocal stratum 1\nallow 127.0.0.1\nkeyfile {}\n\
             cmdport 0\npidfile {}\n",
            keys.display(),
            dir.join("chronyd.pid").display()
        );
        std::fs::write(dir.join("chronyd.conf"), conf).map_err(|e| e.to_string())?;
        Ok(Self {
            daemon: daemon.to_owned(),
            chronyd,
            dir,
            port,
        })
    }

    pub(crate) const fn has_chronyd(&self) -> bool {
        self.chronyd.is_some()
    }

    /// Starts `program` and waits until it answers.
    pub(crate) fn start(&self, program: Program) -> Result<Running, String> {
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
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
    pub(crate) const fn address(&self) -> SocketAddr {
        self.address
    }

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
