//! The daemon's log: one line per discipline update, step, state change
//! and source event, an `ntpq -p` table every so often; text or JSON lines
//! (`--json`) on standard output.

use std::io::Write as _;

use ntp_client::{Event, Measurement, PeerTable, UpdateReport};
use serde_json::{Value, json};

use crate::hwclock::StampKind;

/// Writes log lines. `t` is seconds since the daemon started (its
/// monotonic clock).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Log {
    pub(crate) json: bool,
    pub(crate) verbose: bool,
}

impl Log {
    /// One line: `kind` and `fields` as JSON, or `text` as text.
    pub(crate) fn line(self, t: f64, kind: &str, text: &str, fields: Value) {
        let mut out = std::io::stdout().lock();
        if self.json {
            let mut value = json!({ "type": kind, "t": round(t, 3) });
            if let (Some(object), Value::Object(extra)) = (value.as_object_mut(), fields) {
                object.extend(extra);
            }
            let _ = writeln!(out, "{value}");
        } else {
            let _ = writeln!(out, "[{t:10.3}] {text}");
        }
        let _ = out.flush();
    }

    /// An informational line.
    pub(crate) fn note(self, t: f64, text: &str) {
        self.line(t, "note", text, json!({ "message": text }));
    }

    /// A line on standard error, in either form.
    pub(crate) fn warn(self, t: f64, text: &str) {
        if self.json {
            self.line(t, "warning", text, json!({ "message": text }));
        } else {
            eprintln!("[{t:10.3}] warning: {text}");
        }
    }

    /// A sample from `from` (`--json` or `--verbose`): its offset and
    /// delay, whether
    /// the answer was interleaved (RFC 9769), and where the local
    /// timestamps were taken, as chronyd's measurements log marks them:
    /// `D` by the daemon, `K` by the kernel, `H` by the network card (`tx`
    /// for T1, from the error queue; `rx` for T4).
    pub(crate) fn sample(
        self,
        t: f64,
        from: core::net::SocketAddr,
        measurement: &Measurement,
        tx: StampKind,
        rx: StampKind,
    ) {
        let (tx, rx) = (tx.letter(), rx.letter());
        let mode = if measurement.interleaved {
            "interleaved"
        } else {
            "basic"
        };
        self.line(
            t,
            "sample",
            &format!(
                "sample from {from}: offset {:+.9} s, delay {:.9} s, {mode}, tx {tx} rx {rx}",
                measurement.offset, measurement.delay
            ),
            json!({
                "from": from.to_string(),
                "offset_s": measurement.offset,
                "delay_s": measurement.delay,
                "interleaved": measurement.interleaved,
                "tx": tx,
                "rx": rx,
            }),
        );
    }

    /// Logs an event of the system; `name` resolves a source id.
    pub(crate) fn event(self, t: f64, event: &Event, name: impl Fn(u64) -> String) {
        let (kind, text, fields) = match *event {
            Event::DisciplineUpdate(report) => update(&report),
            Event::ClockStep(offset) => {
                let seconds = offset.to_seconds_f64();
                (
                    "step",
                    format!("clock: step {seconds:+.6} s"),
                    json!({ "offset_s": seconds }),
                )
            }
            Event::ClockAdjust(adjust) => {
                if !self.verbose {
                    return;
                }
                (
                    "adjust",
                    format!(
                        "clock: rate {:+.4} ppm (frequency {:+.4}, phase slew {:+.4})",
                        adjust.rate() * 1e6,
                        adjust.frequency * 1e6,
                        adjust.phase_slew * 1e6
                    ),
                    json!({
                        "frequency_ppm": adjust.frequency * 1e6,
                        "phase_slew_ppm": adjust.phase_slew * 1e6,
                    }),
                )
            }
            Event::Leap(leap) => (
                "leap",
                format!("leap second {leap}"),
                json!({ "leap": leap.to_string() }),
            ),
            Event::Panic { offset } => (
                "panic",
                format!(
                    "offset {offset:+.3} s beyond the panic threshold or --maxchange: operator needed"
                ),
                json!({ "offset_s": offset }),
            ),
            Event::Synchronized {
                system_peer,
                stratum,
            } => (
                "state",
                format!(
                    "system: synchronized to {}, stratum {}",
                    name(system_peer.get()),
                    stratum.get()
                ),
                json!({
                    "state": "synchronized",
                    "system_peer": name(system_peer.get()),
                    "stratum": stratum.get(),
                }),
            ),
            Event::Unsynchronized => (
                "state",
                "system: unsynchronized".to_owned(),
                json!({ "state": "unsynchronized" }),
            ),
            Event::SystemPeer(id) => (
                "system_peer",
                format!("system: system peer is {}", name(id.get())),
                json!({ "system_peer": name(id.get()) }),
            ),
            Event::Source { id, event } => (
                "source",
                format!("source {}: {event}", name(id.get())),
                json!({ "source": name(id.get()), "what": event.to_string() }),
            ),
            Event::PoolMemberAdded { pool, id, address } => (
                "pool",
                format!("{pool}: source #{} ({address}) added", id.get()),
                json!({ "pool": pool.get(), "added": format!("#{} ({address})", id.get()) }),
            ),
            Event::PoolMemberRemoved {
                pool,
                id,
                address,
                reason,
            } => (
                "pool",
                format!("{pool}: source {} removed: {reason}", name(id.get())),
                json!({
                    "pool": pool.get(),
                    "removed": format!("#{} ({address})", id.get()),
                    "reason": reason.to_string(),
                }),
            ),
            _ => (
                "event",
                format!("{event:?}"),
                json!({ "debug": format!("{event:?}") }),
            ),
        };
        self.line(t, kind, &text, fields);
    }

    /// The peer table.
    pub(crate) fn table(self, t: f64, table: &PeerTable) {
        if self.json {
            let rows = serde_json::to_value(table).unwrap_or(Value::Null);
            self.line(t, "peers", "", json!({ "peers": rows }));
        } else {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "[{t:10.3}] peers:\n{table}");
            let _ = out.flush();
        }
    }
}

fn update(report: &UpdateReport) -> (&'static str, String, Value) {
    let outcome = match report.outcome {
        Ok(outcome) => format!("{outcome:?}"),
        Err(error) => format!("refused: {error}"),
    };
    (
        "update",
        format!(
            "update: offset {:+.6} ms, frequency {:+.4} ppm, jitter {:.6} ms, poll {}, {:?}: {outcome}",
            report.offset * 1e3,
            report.frequency * 1e6,
            report.clock_jitter * 1e3,
            report.poll,
            report.state,
        ),
        json!({
            "offset_s": report.offset,
            "system_jitter_s": report.jitter,
            "age_s": report.age,
            "frequency_ppm": report.frequency * 1e6,
            "clock_jitter_s": report.clock_jitter,
            "poll": report.poll,
            "state": format!("{:?}", report.state),
            "outcome": outcome,
        }),
    )
}

/// `value` rounded to `digits` decimals, for compact JSON.
pub(crate) fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}
