//! What the demo prints: plain text for people, or JSON lines (`--json`),
//! one object per line with a `"type"` of `start`, `event`, `peers` or
//! `summary`.

use core::net::SocketAddr;

use ntp_client::{ClockAdjustment, Event, PeerTable};
use serde_json::{Value, json};

/// Where the demo's lines go.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reporter {
    json: bool,
}

/// One server as the start line describes it.
#[derive(Clone, Debug)]
pub(crate) struct ServerLine {
    pub(crate) name: String,
    pub(crate) address: SocketAddr,
    /// Milliseconds ahead of true time, if known (the demo's own servers).
    pub(crate) offset_ms: Option<f64>,
    pub(crate) falseticker: bool,
}

/// The end-of-run figures.
#[derive(Clone, Debug)]
pub(crate) struct Summary {
    pub(crate) elapsed: f64,
    pub(crate) synchronized: bool,
    pub(crate) stratum: u8,
    pub(crate) reference_id: String,
    pub(crate) system_peer: Option<SocketAddr>,
    /// Model clock minus true time, seconds.
    pub(crate) clock_error: f64,
    /// Model clock minus the mean of the honest servers, seconds.
    pub(crate) error_vs_honest: Option<f64>,
    pub(crate) steps: u32,
    pub(crate) adjustments: u32,
    pub(crate) frequency_ppm: f64,
    /// The rate correction in force at the end, ppm.
    pub(crate) correction_ppm: f64,
    pub(crate) requests: u64,
    pub(crate) replies: u64,
    pub(crate) refused: u64,
    pub(crate) falsetickers: Vec<SocketAddr>,
    pub(crate) verdict: Result<(), String>,
}

impl Reporter {
    pub(crate) const fn new(json: bool) -> Self {
        Self { json }
    }

    fn line(value: &Value) {
        println!("{value}");
    }

    pub(crate) fn start(
        self,
        servers: &[ServerLine],
        initial_offset: f64,
        drift: f64,
        duration: f64,
    ) {
        if self.json {
            let servers: Vec<Value> = servers
                .iter()
                .map(|s| {
                    json!({
                        "name": s.name,
                        "address": s.address.to_string(),
                        "offset_ms": s.offset_ms,
                        "falseticker": s.falseticker,
                    })
                })
                .collect();
            Self::line(&json!({
                "type": "start",
                "servers": servers,
                "initial_offset_ms": initial_offset * 1e3,
                "drift_ppm": drift * 1e6,
                "duration_s": duration,
            }));
            return;
        }
        println!("demo: {} server(s) on 127.0.0.1:", servers.len());
        for s in servers {
            let offset = s
                .offset_ms
                .map_or_else(|| "clock unknown".to_owned(), |ms| format!("{ms:+8.3} ms"));
            let liar = if s.falseticker {
                "  <- falseticker"
            } else {
                ""
            };
            println!(
                "  {:<8} {:<21} {offset}{liar}",
                s.name,
                s.address.to_string()
            );
        }
        println!(
            "demo: model clock starts {:+.3} ms off true time, oscillator {:+.1} ppm; \
             running {duration:.0} s (the system clock is never touched)",
            initial_offset * 1e3,
            drift * 1e6
        );
    }

    /// Reports one event of the system; `name` resolves a source to its
    /// address.
    pub(crate) fn event(self, t: f64, event: &Event, name: impl Fn(u64) -> String) {
        let (kind, text, fields): (&str, String, Value) = match *event {
            Event::ClockStep(offset) => (
                "step",
                format!(
                    "discipline: step the clock by {:+.6} s",
                    offset.to_seconds_f64()
                ),
                json!({ "offset_s": offset.to_seconds_f64() }),
            ),
            Event::ClockAdjust(adjust) => (
                "adjust",
                format!("discipline: {}", adjust_text(&adjust)),
                json!({
                    "frequency_ppm": adjust.frequency * 1e6,
                    "phase_slew_ppm": adjust.phase_slew * 1e6,
                }),
            ),
            Event::Leap(leap) => (
                "leap",
                format!("discipline: leap second {leap}"),
                json!({ "leap": leap.to_string() }),
            ),
            Event::Panic { offset } => (
                "panic",
                format!("discipline: offset {offset:+.3} s beyond the panic threshold, ignored"),
                json!({ "offset_s": offset }),
            ),
            Event::Synchronized {
                system_peer,
                stratum,
            } => (
                "synchronized",
                format!(
                    "system: synchronized to {}, stratum {}",
                    name(system_peer.get()),
                    stratum.get()
                ),
                json!({ "system_peer": name(system_peer.get()), "stratum": stratum.get() }),
            ),
            Event::Unsynchronized => (
                "unsynchronized",
                "system: unsynchronized".to_owned(),
                json!({}),
            ),
            Event::SystemPeer(id) => (
                "system_peer",
                format!("system: system peer is now {}", name(id.get())),
                json!({ "system_peer": name(id.get()) }),
            ),
            Event::Source { id, event } => (
                "source",
                format!("source {}: {event}", name(id.get())),
                json!({ "source": name(id.get()), "what": event.to_string() }),
            ),
            Event::DisciplineUpdate(report) => (
                "update",
                format!(
                    "discipline: update offset {:+.3} ms -> {:?}, {:?}, frequency {:+.3} ppm, poll {}",
                    report.offset * 1e3,
                    report.outcome,
                    report.state,
                    report.frequency * 1e6,
                    report.poll
                ),
                json!({
                    "offset_s": report.offset,
                    "state": format!("{:?}", report.state),
                    "frequency_ppm": report.frequency * 1e6,
                    "poll": report.poll,
                }),
            ),
            _ => ("other", format!("{event:?}"), json!({})),
        };
        if self.json {
            let mut value = json!({ "type": "event", "t": round3(t), "event": kind });
            if let (Some(object), Value::Object(extra)) = (value.as_object_mut(), fields) {
                object.extend(extra);
            }
            Self::line(&value);
        } else {
            println!("[{t:6.1} s] {text}");
        }
    }

    pub(crate) fn table(self, t: f64, table: &PeerTable, clock_error: f64) {
        if self.json {
            let peers: Vec<Value> = table
                .rows
                .iter()
                .map(|row| {
                    json!({
                        "tally": row.tally.code().to_string(),
                        "remote": row.remote.to_string(),
                        "refid": row.refid,
                        "stratum": row.stratum,
                        "when": row.when,
                        "poll": row.poll,
                        "reach": format!("{:o}", row.reach),
                        "delay_ms": row.delay_ms,
                        "offset_ms": row.offset_ms,
                        "jitter_ms": row.jitter_ms,
                    })
                })
                .collect();
            Self::line(&json!({
                "type": "peers",
                "t": round3(t),
                "clock_error_ms": clock_error * 1e3,
                "peers": peers,
            }));
        } else {
            println!(
                "[{t:6.1} s] peers (model clock {:+.3} ms off true time):",
                clock_error * 1e3
            );
            print!("{table}");
        }
    }

    pub(crate) fn summary(self, s: &Summary) {
        if self.json {
            Self::line(&json!({
                "type": "summary",
                "elapsed_s": round3(s.elapsed),
                "synchronized": s.synchronized,
                "stratum": s.stratum,
                "reference_id": s.reference_id,
                "system_peer": s.system_peer.map(|a| a.to_string()),
                "clock_error_ms": s.clock_error * 1e3,
                "error_vs_honest_ms": s.error_vs_honest.map(|e| e * 1e3),
                "steps": s.steps,
                "adjustments": s.adjustments,
                "frequency_ppm": s.frequency_ppm,
                "correction_ppm": s.correction_ppm,
                "requests": s.requests,
                "replies": s.replies,
                "refused": s.refused,
                "falsetickers": s.falsetickers.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "ok": s.verdict.is_ok(),
                "problem": s.verdict.as_ref().err(),
            }));
            return;
        }
        println!("demo: summary after {:.1} s", s.elapsed);
        println!(
            "  system      {}, stratum {}, refid {}, system peer {}",
            if s.synchronized {
                "synchronized"
            } else {
                "NOT synchronized"
            },
            s.stratum,
            s.reference_id,
            s.system_peer
                .map_or_else(|| "none".to_owned(), |a| a.to_string())
        );
        let liars: Vec<String> = s.falsetickers.iter().map(ToString::to_string).collect();
        println!(
            "  selection   falsetickers: {}",
            if liars.is_empty() {
                "none".to_owned()
            } else {
                liars.join(", ")
            }
        );
        println!(
            "  discipline  {} step(s), {} rate adjustment(s), frequency {:+.3} ppm, \
             rate correction now {:+.3} ppm",
            s.steps, s.adjustments, s.frequency_ppm, s.correction_ppm
        );
        println!(
            "  packets     {} request(s) sent, {} reply(ies) used, {} datagram(s) refused",
            s.requests, s.replies, s.refused
        );
        println!("  model clock {:+.3} ms off true time", s.clock_error * 1e3);
        if let Some(error) = s.error_vs_honest {
            println!(
                "  final offset of the model clock vs the honest servers (their mean): {:+.3} ms",
                error * 1e3
            );
        }
        match &s.verdict {
            Ok(()) => println!("demo: ok"),
            Err(problem) => println!("demo: FAILED: {problem}"),
        }
    }
}

fn round3(t: f64) -> f64 {
    (t * 1e3).round() / 1e3
}

fn adjust_text(adjust: &ClockAdjustment) -> String {
    format!(
        "run the clock at {:+.3} ppm (frequency {:+.3} ppm, phase slew {:+.3} ppm)",
        adjust.rate() * 1e6,
        adjust.frequency * 1e6,
        adjust.phase_slew * 1e6
    )
}
