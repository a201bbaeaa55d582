//! The clknetsim configuration of a scenario: the clocks of the nodes and
//! the delay of every packet on every link.
//!
//! The random parts (frequency walk, jitter, random loss) come from the
//! noise files ([`crate::noise`]), read with clknetsim's `(file "...")`
//! generator, so that both clients see the same noise. The rest is
//! deterministic and written as clknetsim expressions: a constant delay
//! added to a link, outages (a large negative delay: the packet is lost),
//! only every n-th request passing, and steps of the client clock. A link
//! expression is evaluated once per packet on that link, a step expression
//! once per simulated second; `(sum 1)` counts those evaluations.

use core::fmt::Write as _;
use std::path::Path;

use crate::noise::NoiseFiles;
use crate::scenario::{ClockStep, Outage, Scenario};

/// Delay subtracted from a packet to lose it, seconds: more than any delay
/// a scenario adds, so the sum is negative.
const LOST: f64 = 1e3;

/// Terms of a link in one direction, added to its noise file.
fn link_expression(file: &Path, terms: &[String]) -> String {
    let file = format!("(file \"{}\")", file.display());
    if terms.is_empty() {
        file
    } else {
        format!("(+ {file} {})", terms.join(" "))
    }
}

/// The term losing packets during an outage of a link.
fn outage_term(outage: &Outage, length: u32) -> String {
    let end = outage.end_within(length);
    let half = f64::from(end - outage.start) / 2.0;
    let middle = f64::from(outage.start) + half;
    let time = outage
        .every
        .map_or_else(|| String::from("time"), |every| format!("(% time {every})"));
    format!("(* -{LOST} (equal {half} {time} {middle}))")
}

/// The term passing only every `n`-th packet of a link (the others lost).
fn pass_every_term(n: u32) -> String {
    format!("(* -{LOST} (min 1 (% (sum 1) {n})))")
}

/// The step expression of the client clock.
fn step_expression(steps: &[ClockStep]) -> Option<String> {
    let terms: Vec<String> = steps
        .iter()
        .map(|step| match (step.time, step.every) {
            (Some(time), _) => format!("(* {:e} (equal 0.5 (sum 1) {time}))", step.step),
            (None, Some(every)) => {
                format!("(* {:e} (equal 0.5 (% (sum 1) {every}) 0))", step.step)
            }
            (None, None) => String::from("0"),
        })
        .collect();
    match terms.len() {
        0 => None,
        1 => terms.into_iter().next(),
        _ => Some(format!("(+ {})", terms.join(" "))),
    }
}

/// The clknetsim configuration of a scenario.
pub(crate) fn clknetsim_config(scenario: &Scenario, noise: &NoiseFiles) -> String {
    let client = scenario.client_node();
    let mut conf = String::new();
    let _ = writeln!(conf, "node{client}_offset = {:e}", scenario.client_offset);
    let _ = writeln!(
        conf,
        "node{client}_freq = (file \"{}\")",
        noise.freq.display()
    );
    if let Some(step) = step_expression(&scenario.client_steps) {
        let _ = writeln!(conf, "node{client}_step = {step}");
    }
    if let Some(refclock) = &noise.refclock {
        let _ = writeln!(
            conf,
            "node{client}_refclock = (+ {:e} (file \"{}\"))",
            scenario.refclock_offset,
            refclock.display()
        );
    }
    for (index, (up, down)) in noise.up.iter().zip(&noise.down).enumerate() {
        let server = index + 1;
        let _ = writeln!(
            conf,
            "node{server}_offset = {:e}",
            scenario.server_offset(index)
        );
        let _ = writeln!(conf, "node{server}_freq = 0");
        if let Some(step) = &scenario.server_step {
            let _ = writeln!(conf, "node{server}_step = {step}");
        }
        let mut up_terms = Vec::new();
        let mut down_terms = Vec::new();
        for link in scenario.link_delays.iter().filter(|l| l.server == server) {
            if link.up != 0.0 {
                up_terms.push(format!("{:e}", link.up));
            }
            if link.down != 0.0 {
                down_terms.push(format!("{:e}", link.down));
            }
        }
        for outage in &scenario.outages {
            if outage.servers.is_empty() || outage.servers.contains(&server) {
                let term = outage_term(outage, scenario.length);
                up_terms.push(term.clone());
                down_terms.push(term);
            }
        }
        if scenario.requests_pass_every > 1 {
            up_terms.push(pass_every_term(scenario.requests_pass_every));
        }
        let _ = writeln!(
            conf,
            "node{client}_delay{server} = {}",
            link_expression(up, &up_terms)
        );
        let _ = writeln!(
            conf,
            "node{server}_delay{client} = {}",
            link_expression(down, &down_terms)
        );
    }
    conf
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::scenario::LinkDelay;

    fn noise(servers: usize) -> NoiseFiles {
        NoiseFiles {
            freq: PathBuf::from("/n/freq"),
            up: (1..=servers)
                .map(|i| PathBuf::from(format!("/n/up.{i}")))
                .collect(),
            down: (1..=servers)
                .map(|i| PathBuf::from(format!("/n/down.{i}")))
                .collect(),
            refclock: None,
        }
    }

    #[test]
    fn server_steps_go_to_every_server_and_only_to_them() {
        let scenario = Scenario {
            servers: 2,
            server_step: Some(String::from("(pulse 64 64)")),
            ..Scenario::default()
        };
        let conf = clknetsim_config(&scenario, &noise(2));
        assert!(conf.contains("node1_step = (pulse 64 64)\n"));
        assert!(conf.contains("node2_step = (pulse 64 64)\n"));
        assert!(!conf.contains("node3_step"));
    }

    #[test]
    fn config_of_three_servers_with_an_outage() {
        let scenario = Scenario {
            servers: 3,
            server_offsets: vec![0.0, 0.0, 0.05],
            outages: vec![Outage {
                start: 9000,
                end: Some(16200),
                every: None,
                servers: Vec::new(),
            }],
            ..Scenario::default()
        };
        let conf = clknetsim_config(&scenario, &noise(3));
        assert!(conf.contains("node4_offset = 1e-2\n"));
        assert!(conf.contains("node4_freq = (file \"/n/freq\")\n"));
        assert!(conf.contains("node3_offset = 5e-2\n"));
        assert!(!conf.contains("_step"));
        assert!(
            conf.contains(
                "node4_delay2 = (+ (file \"/n/up.2\") (* -1000 (equal 3600 time 12600)))\n"
            )
        );
        assert!(conf.contains(
            "node1_delay4 = (+ (file \"/n/down.1\") (* -1000 (equal 3600 time 12600)))\n"
        ));
    }

    #[test]
    fn links_losses_and_steps() {
        let scenario = Scenario {
            servers: 2,
            length: 100_000,
            link_delays: vec![LinkDelay {
                server: 2,
                up: 1.0,
                down: 0.0,
            }],
            outages: vec![Outage {
                start: 1200,
                end: None,
                every: Some(10_000),
                servers: vec![1],
            }],
            requests_pass_every: 20,
            client_steps: vec![
                ClockStep {
                    time: Some(150),
                    every: None,
                    step: -100.0,
                },
                ClockStep {
                    time: None,
                    every: Some(500),
                    step: 1e4,
                },
            ],
            ..Scenario::default()
        };
        let conf = clknetsim_config(&scenario, &noise(2));
        let line = |prefix: &str| {
            conf.lines()
                .find(|line| line.starts_with(prefix))
                .unwrap()
                .to_string()
        };
        assert_eq!(
            line("node3_step"),
            "node3_step = (+ (* -1e2 (equal 0.5 (sum 1) 150)) \
             (* 1e4 (equal 0.5 (% (sum 1) 500) 0)))"
        );
        // Server 1: the periodic outage (to the end of each period of
        // 10000 s) both ways.
        assert_eq!(
            line("node3_delay1"),
            "node3_delay1 = (+ (file \"/n/up.1\") (* -1000 (equal 4400 (% time 10000) 5600)) \
             (* -1000 (min 1 (% (sum 1) 20))))"
        );
        assert_eq!(
            line("node1_delay3"),
            "node1_delay3 = (+ (file \"/n/down.1\") (* -1000 (equal 4400 (% time 10000) 5600)))"
        );
        assert_eq!(
            line("node3_delay2"),
            "node3_delay2 = (+ (file \"/n/up.2\") 1e0 (* -1000 (min 1 (% (sum 1) 20))))"
        );
        assert_eq!(line("node2_delay3"), "node2_delay3 = (file \"/n/down.2\")");
    }
}
