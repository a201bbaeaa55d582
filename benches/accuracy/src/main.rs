//! `accuracy`: runs chronyd and our daemon as the client of chronyd servers
//! under clknetsim, with the same noise for both, and prints one table of
//! true-offset, frequency, step and packet figures per scenario, seed and
//! client, with the ratios ours/chronyd and the verdict of each scenario's
//! thresholds on our daemon.
//!
//! See `benches/accuracy/README.md` and `../shared/ACCURACY.md`.

mod chrony;
mod daemon_log;
mod json;
mod network;
mod noise;
mod plot;
mod report;
mod scenario;
mod sim;
mod stats;
mod verdict;

use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Mutex;
use std::thread;
use std::time::Instant;

use noise::NoiseFiles;
use report::Row;
use scenario::Scenario;
use sim::{ClientKind, Programs, RunOutput, RunSpec};

const USAGE: &str = "\
usage: accuracy [OPTIONS] [SCENARIO.toml ...]

Runs chronyd and our daemon (ntp-daemon) as the client of chronyd servers
under clknetsim, the same noise for both, and prints one table.

options:
  --clknetsim DIR       folder with clknetsim and clknetsim.so (default: build
                        them from --clknetsim-src into OUT/clknetsim)
  --clknetsim-src DIR   pristine clknetsim source (default ../shared/clknetsim)
  --daemon PATH         our daemon (default target/release/ntp-daemon)
  --chronyd PATH        chronyd (default: chronyd on the PATH, else /usr/sbin/chronyd)
  --scenarios DIR       run every *.toml in DIR and its subfolders (repeatable;
                        default benches/accuracy/scenarios, which holds the
                        chrony ports in chrony/; ignored when scenario files
                        are given)
  --seeds LIST          comma-separated seeds (default 1,2,3)
  --ported-seeds LIST   seeds for the ported chrony cases (scenarios with a
                        [chrony] table; default: --seeds)
  --jobs N              runs in parallel (default 2)
  --out DIR             run folders, table.md, results.csv, SVGs
                        (default target/accuracy)
  --publish DIR         also copy table.md, results.csv and the SVGs to DIR
                        (e.g. benches/accuracy/results) when every run passed
  --only CLIENT         run only chronyd or ours
  --timeout SECS        wall-clock limit of one simulation (default 300)
  --check               exit 1 when a threshold or chrony check fails or cannot
                        be judged (listed on stderr); failures of ours marked
                        known_failure do not count, chronyd's always do
  -h, --help            this help

exit status: 0 all runs passed (and with --check every threshold holds),
1 a run broke (a client crashed or exited early, clknetsim failed, short
logs) or, with --check, a threshold failed or could not be judged, 2 bad
arguments";

/// Parsed command line.
#[derive(Debug)]
struct Options {
    clknetsim: Option<PathBuf>,
    clknetsim_src: PathBuf,
    daemon: PathBuf,
    chronyd: Option<PathBuf>,
    scenarios_dirs: Vec<PathBuf>,
    scenario_files: Vec<PathBuf>,
    seeds: Vec<u64>,
    ported_seeds: Option<Vec<u64>>,
    jobs: usize,
    out: PathBuf,
    publish: Option<PathBuf>,
    only: Option<ClientKind>,
    ours_is_chronyd: bool,
    timeout: Duration,
    check: bool,
}

/// A comma-separated list of seeds.
fn seed_list(option: &str, list: &String) -> Result<Vec<u64>, lexopt::Error> {
    let seeds: Vec<u64> = list
        .split(',')
        .map(|seed| seed.trim().parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{option} {list}: {e}"))?;
    if seeds.is_empty() {
        return Err(format!("{option}: empty list").into());
    }
    Ok(seeds)
}

/// The seeds a scenario runs with.
fn seeds_of<'a>(options: &'a Options, scenario: &Scenario) -> &'a [u64] {
    match (&options.ported_seeds, &scenario.chrony) {
        (Some(seeds), Some(_)) => seeds,
        _ => &options.seeds,
    }
}

/// Parses the arguments; `Ok(None)` after printing `--help`.
fn parse_args() -> Result<Option<Options>, lexopt::Error> {
    use lexopt::prelude::*;
    let mut options = Options {
        clknetsim: None,
        clknetsim_src: PathBuf::from("../shared/clknetsim"),
        daemon: PathBuf::from("target/release/ntp-daemon"),
        chronyd: None,
        scenarios_dirs: Vec::new(),
        scenario_files: Vec::new(),
        seeds: vec![1, 2, 3],
        ported_seeds: None,
        jobs: 2,
        out: PathBuf::from("target/accuracy"),
        publish: None,
        only: None,
        ours_is_chronyd: false,
        timeout: Duration::from_secs(300),
        check: false,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("clknetsim") => options.clknetsim = Some(parser.value()?.into()),
            Long("clknetsim-src") => options.clknetsim_src = parser.value()?.into(),
            Long("daemon") => options.daemon = parser.value()?.into(),
            Long("chronyd") => options.chronyd = Some(parser.value()?.into()),
            Long("scenarios") => options.scenarios_dirs.push(parser.value()?.into()),
            Long("seeds") => options.seeds = seed_list("--seeds", &parser.value()?.parse()?)?,
            Long("ported-seeds") => {
                let list = parser.value()?.parse()?;
                options.ported_seeds = Some(seed_list("--ported-seeds", &list)?);
            }
            Long("jobs") => {
                options.jobs = parser.value()?.parse()?;
                if options.jobs == 0 {
                    return Err("--jobs must be at least 1".into());
                }
            }
            Long("out") => options.out = parser.value()?.into(),
            Long("publish") => options.publish = Some(parser.value()?.into()),
            Long("only") => {
                let value: String = parser.value()?.parse()?;
                options.only = Some(match value.as_str() {
                    "chronyd" => ClientKind::Chronyd,
                    "ours" => ClientKind::Ours,
                    _ => return Err(format!("--only {value}: chronyd or ours").into()),
                });
            }
            // Development aid, not in --help: chronyd stands in for ours.
            Long("ours-is-chronyd") => options.ours_is_chronyd = true,
            Long("timeout") => options.timeout = Duration::from_secs(parser.value()?.parse()?),
            Long("check") => options.check = true,
            Short('h') | Long("help") => {
                println!("{USAGE}");
                return Ok(None);
            }
            Value(path) => options.scenario_files.push(path.into()),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(Some(options))
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(Some(options)) => options,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("accuracy: {e} (see --help)");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("accuracy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Copies the pristine clknetsim source into `build`, adds the one-line
/// patch that lets Rust programs open sockets (std passes `SOCK_CLOEXEC` in
/// the type), and runs make. Reuses an earlier build.
fn build_clknetsim(source: &Path, build: &Path) -> Result<PathBuf, String> {
    if build.join("clknetsim").is_file() && build.join("clknetsim.so").is_file() {
        return Ok(build.to_path_buf());
    }
    let io = |path: &Path, e: std::io::Error| format!("{}: {e}", path.display());
    fs::create_dir_all(build).map_err(|e| io(build, e))?;
    for entry in fs::read_dir(source).map_err(|e| io(source, e))? {
        let path = entry.map_err(|e| io(source, e))?.path();
        if let (true, Some(name)) = (path.is_file(), path.file_name()) {
            fs::copy(&path, build.join(name)).map_err(|e| io(&path, e))?;
        }
    }
    let client = build.join("client.c");
    let text = fs::read_to_string(&client).map_err(|e| io(&client, e))?;
    let anchor = "int socket(int domain, int type, int protocol) {\n\tint s;\n";
    if !text.contains(anchor) {
        return Err(format!("{}: socket() wrapper not found", client.display()));
    }
    let patched = text.replacen(
        anchor,
        &format!("{anchor}\ttype &= ~(SOCK_CLOEXEC | SOCK_NONBLOCK);\n"),
        1,
    );
    fs::write(&client, patched).map_err(|e| io(&client, e))?;
    eprintln!("accuracy: building clknetsim in {}", build.display());
    let status = Command::new("make")
        .arg("-j2")
        .current_dir(build)
        .status()
        .map_err(|e| format!("make: {e}"))?;
    if !status.success() {
        return Err(format!("building clknetsim failed: make {status}"));
    }
    Ok(build.to_path_buf())
}

/// chronyd from `--chronyd`, the PATH, or /usr/sbin.
fn find_chronyd(option: Option<&PathBuf>) -> PathBuf {
    if let Some(path) = option {
        return path.clone();
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chronyd"))
            .find(|path| path.is_file())
    });
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/chronyd"))
}

/// Absolute form of a path (children run in their run folders).
fn absolute(path: &Path) -> Result<PathBuf, String> {
    fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// One simulation to run.
struct Job<'a> {
    scenario: &'a Scenario,
    seed: u64,
    client: ClientKind,
    noise: &'a NoiseFiles,
    dir: PathBuf,
}

/// Runs everything; `Ok(false)` when a run broke or, with `--check`, a
/// threshold did not hold.
fn run(options: &Options) -> Result<bool, String> {
    let started = Instant::now();
    let scenarios = if options.scenario_files.is_empty() {
        let default = [PathBuf::from("benches/accuracy/scenarios")];
        let dirs = if options.scenarios_dirs.is_empty() {
            &default[..]
        } else {
            &options.scenarios_dirs[..]
        };
        let mut all = Vec::new();
        for dir in dirs {
            all.extend(scenario::load_dir(dir)?);
        }
        all
    } else {
        options
            .scenario_files
            .iter()
            .map(|path| Scenario::load(path))
            .collect::<Result<_, _>>()?
    };
    if scenarios.is_empty() {
        return Err(String::from("no scenarios"));
    }
    // Conflicting median limits are a scenario-file error: before running.
    verdict::median_groups(&scenarios)?;
    scenario::check_unique(&scenarios)?;
    fs::create_dir_all(&options.out).map_err(|e| format!("{}: {e}", options.out.display()))?;
    let out = absolute(&options.out)?;
    let clknetsim = match &options.clknetsim {
        Some(dir) => absolute(dir)?,
        None => build_clknetsim(&options.clknetsim_src, &out.join("clknetsim"))?,
    };
    let clients: Vec<ClientKind> = [ClientKind::Chronyd, ClientKind::Ours]
        .into_iter()
        .filter(|client| options.only.is_none_or(|only| only == *client))
        .collect();
    let needs_daemon = clients.contains(&ClientKind::Ours) && !options.ours_is_chronyd;
    let programs = Programs {
        clknetsim: absolute(&clknetsim.join("clknetsim"))?,
        preload: absolute(&clknetsim.join("clknetsim.so"))?,
        chronyd: find_chronyd(options.chronyd.as_ref()),
        daemon: if needs_daemon {
            absolute(&options.daemon).map_err(|e| format!("--daemon: {e}"))?
        } else {
            options.daemon.clone()
        },
        ours_is_chronyd: options.ours_is_chronyd,
        timeout: options.timeout,
    };
    if !programs.chronyd.is_file() {
        return Err(format!("{}: no chronyd", programs.chronyd.display()));
    }

    // Noise once per scenario and seed, shared by both clients.
    let mut noises = BTreeMap::new();
    for scenario in &scenarios {
        for &seed in seeds_of(options, scenario) {
            let dir = out
                .join("runs")
                .join(&scenario.name)
                .join(format!("seed-{seed}"));
            let files = noise::generate(scenario, seed, &dir.join("noise"))?;
            noises.insert((scenario.name.clone(), seed), (dir, files));
        }
    }
    let mut jobs = Vec::new();
    for scenario in &scenarios {
        for &seed in seeds_of(options, scenario) {
            let Some((dir, noise)) = noises.get(&(scenario.name.clone(), seed)) else {
                continue;
            };
            for &client in &clients {
                jobs.push(Job {
                    scenario,
                    seed,
                    client,
                    noise,
                    dir: dir.join(client.name()),
                });
            }
        }
    }

    let results = run_jobs(&jobs, &programs, options.jobs);
    let mut ok = true;
    let mut rows = Vec::new();
    let mut plots: BTreeMap<&str, Vec<(ClientKind, Vec<f64>)>> = BTreeMap::new();
    for (job, result) in jobs.iter().zip(results) {
        let first_seed = seeds_of(options, job.scenario).first().copied();
        match result {
            Ok(output) => {
                rows.push(Row {
                    scenario: job.scenario.name.clone(),
                    seed: job.seed,
                    client: String::from(job.client.name()),
                    figures: output.figures,
                    ratios: None,
                    verdict: None,
                    broken: None,
                });
                if Some(job.seed) == first_seed {
                    let entry = plots.entry(job.scenario.name.as_str()).or_default();
                    entry.push((job.client, output.offset));
                }
            }
            Err(e) => {
                // A broken run of ours is a failing row (known in a
                // known_failure scenario); chronyd's breaks the port.
                let known = job.client == ClientKind::Ours && job.scenario.known_failure.is_some();
                ok &= known;
                eprintln!(
                    "accuracy: {} {} seed {} {}: {e} (run folder {})",
                    if known { "FAILED (known)" } else { "FAILED" },
                    job.scenario.name,
                    job.seed,
                    job.client.name(),
                    job.dir.display()
                );
                if job.client == ClientKind::Ours {
                    rows.push(Row {
                        scenario: job.scenario.name.clone(),
                        seed: job.seed,
                        client: String::from(job.client.name()),
                        figures: stats::Figures::default(),
                        ratios: None,
                        verdict: None,
                        broken: Some(e),
                    });
                }
            }
        }
    }
    report::add_ratios(&mut rows);
    verdict::judge(&mut rows, &scenarios);
    let findings = verdict::summary(&rows, &scenarios)?;
    let surprises = verdict::unexpected_passes(&rows, &scenarios);
    print!("{}", report::text_table(&rows));
    print!("{}", report::summary_text(&findings));
    print!("{}", report::missing_options_text(&scenarios));
    for line in &surprises {
        println!("{line}");
        eprintln!("accuracy: {line}");
    }

    let outputs = vec![
        (
            String::from("table.md"),
            report::markdown(&rows, &scenarios, &findings),
        ),
        (String::from("results.csv"), report::csv(&rows)),
    ];
    for (name, contents) in &outputs {
        let path = out.join(name);
        fs::write(&path, contents).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let mut svgs = Vec::new();
    // The ported chrony cases are judged by their checks; the plots are
    // for the runner's own scenarios (a hundred SVGs would swamp them).
    for scenario in scenarios.iter().filter(|s| s.chrony.is_none()) {
        let Some(series) = plots.get(scenario.name.as_str()) else {
            continue;
        };
        let series: Vec<plot::Series<'_>> = series
            .iter()
            .map(|(client, offset)| plot::Series {
                label: client.name(),
                offset,
            })
            .collect();
        let name = format!("{}.svg", scenario.name);
        let title = format!(
            "{}: true offset, seed {}",
            scenario.name,
            seeds_of(options, scenario)
                .first()
                .copied()
                .unwrap_or_default()
        );
        plot::write_svg(&out.join(&name), &title, scenario.warmup, &series)?;
        svgs.push(name);
    }
    eprintln!(
        "accuracy: {} runs in {:.1} s; table.md, results.csv and {} SVGs in {}",
        jobs.len(),
        started.elapsed().as_secs_f64(),
        svgs.len(),
        out.display()
    );
    if let (Some(publish), true) = (&options.publish, ok) {
        fs::create_dir_all(publish).map_err(|e| format!("{}: {e}", publish.display()))?;
        for name in outputs.iter().map(|(name, _)| name).chain(&svgs) {
            let target = publish.join(name);
            fs::copy(out.join(name), &target).map_err(|e| format!("{}: {e}", target.display()))?;
        }
        eprintln!("accuracy: published to {}", publish.display());
    }
    if options.check {
        let unmet: Vec<&verdict::Finding> = findings
            .iter()
            .filter(|finding| {
                matches!(
                    finding.outcome,
                    verdict::Outcome::Fail | verdict::Outcome::Unknown
                )
            })
            .collect();
        for finding in &unmet {
            let what = match finding.outcome {
                verdict::Outcome::Fail => "FAILED",
                _ => "not judged",
            };
            eprintln!(
                "accuracy: threshold {what}: {}: {} ({})",
                finding.subject, finding.limit, finding.values
            );
        }
        if !unmet.is_empty() {
            eprintln!(
                "accuracy: --check: {} of {} thresholds not met",
                unmet.len(),
                findings.len()
            );
            ok = false;
        }
    }
    Ok(ok)
}

/// Runs the jobs on `parallel` threads; results in job order.
fn run_jobs(
    jobs: &[Job<'_>],
    programs: &Programs,
    parallel: usize,
) -> Vec<Result<RunOutput, String>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<RunOutput, String>>>> =
        Mutex::new(jobs.iter().map(|_| None).collect());
    thread::scope(|scope| {
        for _ in 0..parallel.min(jobs.len()) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(index) else {
                        break;
                    };
                    let started = Instant::now();
                    let spec = RunSpec {
                        scenario: job.scenario,
                        client: job.client,
                        noise: job.noise,
                        seed: job.seed,
                        dir: job.dir.clone(),
                    };
                    let result = sim::run(&spec, programs);
                    eprintln!(
                        "accuracy: {} seed {} {}: {} in {:.1} s",
                        job.scenario.name,
                        job.seed,
                        job.client.name(),
                        if result.is_ok() { "done" } else { "FAILED" },
                        started.elapsed().as_secs_f64()
                    );
                    if let Ok(mut results) = results.lock() {
                        if let Some(slot) = results.get_mut(index) {
                            *slot = Some(result);
                        }
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|result| result.unwrap_or_else(|| Err(String::from("not run"))))
        .collect()
}
