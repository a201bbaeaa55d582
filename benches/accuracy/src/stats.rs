//! Parsing clknetsim's logs and the figures of one run.
//!
//! Formats (clknetsim `network.cc`): the offset log (`-o`) has one line per
//! simulated second, line `i` for second `i` starting with second 0, one
//! tab-separated column per node holding the true offset of its clock in
//! seconds (`%.9f`). The frequency log (`-f`) has the same shape and holds
//! the total frequency error of each clock (its own drift and every
//! correction the client applies, e.g. `1e-6` = 1 ppm fast). The packet
//! log (`-p`) has one line per sent packet: time, from node, to node,
//! delay (negative: dropped), source port, destination port, subnet,
//! length, type (1 = UDP data). Its standard output holds a block of
//! statistics per node (`---- Node N ----`, then `Name:\tvalue` lines):
//! clock figures from the reset (`-r`) on, packet intervals over the whole
//! run.

use crate::chrony::ChronyFigures;
use crate::daemon_log::SystemPeers;
use crate::scenario::EventWindow;

/// Offset bound for the synchronisation times, seconds.
pub(crate) const SYNC_BOUND: f64 = 100e-6;

/// A one-second offset change not explained by the frequency log by more
/// than this many seconds counts as a clock step.
///
/// clknetsim does not count steps itself, so they are derived from the
/// logs. Over one second a clock moves by its frequency error times one
/// second; when the client changes the frequency within the second, the
/// change lies between the frequencies logged at the start and the end of
/// the second, and a step moves the time without touching the frequency.
/// But a slew that starts and ends within one second (chronyd slews with
/// the kernel's tick at up to 83 333 ppm and switches within a second when
/// it reselects sources) is invisible in the once-a-second frequency log.
/// The kernel cannot slew faster than its tick range (+-10 %) plus the
/// 500 ppm frequency range, so only a jump beyond that, 0.1005 s in one
/// second, is surely a step. Smaller steps do not count here (they still
/// show in the offset figures).
pub(crate) const STEP_THRESHOLD: f64 = 0.11;

/// UDP data packets in the packet log's type column.
const PACKET_TYPE_UDP: u32 = 1;

/// Figures of one client in one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Figures {
    /// RMS true offset after the warm-up, seconds.
    pub(crate) rms_offset: f64,
    /// Maximum |true offset| after the warm-up, seconds.
    pub(crate) max_offset: f64,
    /// RMS frequency error after the warm-up (1e-6 = 1 ppm).
    pub(crate) rms_freq: f64,
    /// Maximum |frequency error| after the warm-up.
    pub(crate) max_freq: f64,
    /// Clock steps over the whole run (see [`STEP_THRESHOLD`]).
    pub(crate) steps: u32,
    /// UDP packets the client sent (including those the network dropped).
    pub(crate) packets: u64,
    /// First second with |offset| < [`SYNC_BOUND`], if any.
    pub(crate) first_sync: Option<u32>,
    /// Second from which |offset| stays under [`SYNC_BOUND`] to the end.
    pub(crate) stays_sync: Option<u32>,
    /// RMS and maximum |offset| in the scenario's event window, seconds.
    pub(crate) event: Option<(f64, f64)>,
    /// Who was the system peer, from our daemon's log (`None` for
    /// chronyd, whose log is not read).
    pub(crate) system_peers: Option<SystemPeers>,
    /// What the checks of a ported chrony case need (scenarios with a
    /// `[chrony]` table).
    pub(crate) chrony: Option<ChronyFigures>,
}

/// A node's figures from clknetsim's statistics (its standard output).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct NodeStats {
    /// "RMS offset", seconds, from the reset on.
    pub(crate) rms_offset: f64,
    /// "Maximum absolute offset", seconds, from the reset on.
    pub(crate) max_offset: f64,
    /// "RMS frequency", from the reset on.
    pub(crate) rms_freq: f64,
    /// "Maximum absolute frequency", from the reset on.
    pub(crate) max_freq: f64,
    /// "Mean incoming packet interval", seconds (infinite with fewer than
    /// two packets).
    pub(crate) mean_in_interval: f64,
    /// "Mean outgoing packet interval", seconds.
    pub(crate) mean_out_interval: f64,
    /// "Minimum outgoing packet interval", seconds.
    pub(crate) min_out_interval: f64,
}

/// The statistics block of `node` (1-based) in clknetsim's output.
pub(crate) fn node_stats(text: &str, node: usize) -> Result<NodeStats, String> {
    let header = format!(" Node {node} ");
    let block: Vec<&str> = text
        .lines()
        .skip_while(|line| !line.contains(&header))
        .skip(1)
        .take_while(|line| !line.starts_with("----"))
        .collect();
    let value = |name: &str| -> Result<f64, String> {
        let line = block
            .iter()
            .find(|line| {
                line.starts_with(name)
                    && line
                        .get(name.len()..)
                        .is_some_and(|rest| rest.starts_with(':'))
            })
            .ok_or_else(|| format!("clknetsim statistics: no {name:?} for node {node}"))?;
        let field = line.rsplit('\t').next().unwrap_or_default().trim();
        field
            .parse::<f64>()
            .map_err(|e| format!("clknetsim statistics: {name}: {field:?}: {e}"))
    };
    Ok(NodeStats {
        rms_offset: value("RMS offset")?,
        max_offset: value("Maximum absolute offset")?,
        rms_freq: value("RMS frequency")?,
        max_freq: value("Maximum absolute frequency")?,
        mean_in_interval: value("Mean incoming packet interval")?,
        mean_out_interval: value("Mean outgoing packet interval")?,
        min_out_interval: value("Minimum outgoing packet interval")?,
    })
}

/// `ours / reference`; infinite when the reference is zero or less (a
/// limit on it then fails rather than passes).
pub(crate) fn ratio(ours: f64, reference: f64) -> f64 {
    if reference > 0.0 {
        ours / reference
    } else {
        f64::INFINITY
    }
}

/// One column (0-based) of a tab-separated numeric log.
pub(crate) fn parse_column(text: &str, column: usize) -> Result<Vec<f64>, String> {
    text.lines()
        .enumerate()
        .map(|(line, row)| {
            row.split('\t')
                .nth(column)
                .ok_or_else(|| format!("line {}: no column {}", line + 1, column + 1))?
                .trim()
                .parse::<f64>()
                .map_err(|e| format!("line {}: {e}", line + 1))
        })
        .collect()
}

/// UDP packets sent by `node` (1-based) in a packet log.
pub(crate) fn count_packets(text: &str, node: usize) -> Result<u64, String> {
    let mut count = 0;
    for (line, row) in text.lines().enumerate() {
        let fields: Vec<&str> = row.split('\t').collect();
        let (Some(from), Some(kind)) = (fields.get(1), fields.get(8)) else {
            return Err(format!("packet log line {}: too few columns", line + 1));
        };
        let from: usize = from
            .parse()
            .map_err(|e| format!("packet log line {}: {e}", line + 1))?;
        let kind: u32 = kind
            .parse()
            .map_err(|e| format!("packet log line {}: {e}", line + 1))?;
        if from == node && kind == PACKET_TYPE_UDP {
            count += 1;
        }
    }
    Ok(count)
}

/// RMS and maximum absolute value.
fn rms_max(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let sum2: f64 = values.iter().map(|v| v * v).sum();
    let max = values.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    ((sum2 / values.len() as f64).sqrt(), max)
}

/// Steps: seconds whose offset change lies more than [`STEP_THRESHOLD`]
/// outside the range the logged frequencies explain.
pub(crate) fn count_steps(offset: &[f64], freq: &[f64]) -> u32 {
    let mut steps = 0;
    for (pair, freqs) in offset.windows(2).zip(freq.windows(2)) {
        let (&[before, after], &[f_before, f_after]) = (pair, freqs) else {
            continue;
        };
        let change = after - before;
        let low = f_before.min(f_after);
        let high = f_before.max(f_after);
        let unexplained = if change < low {
            low - change
        } else if change > high {
            change - high
        } else {
            0.0
        };
        if unexplained > STEP_THRESHOLD {
            steps += 1;
        }
    }
    steps
}

/// Second index as u32 (logs never exceed u32 seconds).
fn second(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// Figures from the client's offset and frequency columns (line `i` =
/// second `i`) and its packet count.
pub(crate) fn figures(
    offset: &[f64],
    freq: &[f64],
    packets: u64,
    warmup: u32,
    event: Option<&EventWindow>,
) -> Figures {
    let start = usize::try_from(warmup).unwrap_or(usize::MAX);
    let after_offset = offset.get(start..).unwrap_or(&[]);
    let after_freq = freq.get(start..).unwrap_or(&[]);
    let (rms_offset, max_offset) = rms_max(after_offset);
    let (rms_freq, max_freq) = rms_max(after_freq);
    let first_sync = offset.iter().position(|o| o.abs() < SYNC_BOUND).map(second);
    let stays_sync = match offset.iter().rposition(|o| o.abs() >= SYNC_BOUND) {
        None if offset.is_empty() => None,
        None => Some(0),
        Some(last) if last + 1 < offset.len() => Some(second(last + 1)),
        Some(_) => None,
    };
    let event = event.map(|window| {
        let from = usize::try_from(window.start).unwrap_or(usize::MAX);
        let to = from.saturating_add(usize::try_from(window.length).unwrap_or(usize::MAX));
        let slice = offset.get(from..to.min(offset.len())).unwrap_or(&[]);
        rms_max(slice)
    });
    Figures {
        rms_offset,
        max_offset,
        rms_freq,
        max_freq,
        steps: count_steps(offset, freq),
        packets,
        first_sync,
        stays_sync,
        event,
        system_peers: None,
        chrony: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_and_packets() {
        let log = "0.000000000\t0.010000000\n0.000000000\t0.009000000\n";
        assert_eq!(parse_column(log, 1).unwrap(), [0.01, 0.009]);
        assert!(parse_column(log, 2).is_err());
        let packets = "2.03e-01\t2\t1\t5.3e-04\t60000\t123\t1\t48\t1\n\
                       2.04e-01\t1\t2\t5.2e-04\t123\t60000\t1\t48\t1\n\
                       9.00e+03\t2\t1\t-9.9e-01\t60000\t123\t1\t48\t1\n\
                       9.10e+03\t2\t1\t1.0e-03\t60000\t123\t1\t0\t2\n";
        assert_eq!(count_packets(packets, 2).unwrap(), 2);
        assert_eq!(count_packets(packets, 1).unwrap(), 1);
        assert!(count_packets("1\t2\n", 2).is_err());
    }

    #[test]
    fn statistics_of_a_node() {
        let text = "\n---- Node 1 ----\n\nRMS offset:     \t0.000000e+00\n\
            \n---- Node 2 ----\n\nRMS offset:          \t8.6e-05\n\
            Maximum absolute offset:     \t1.8e-04\n\
            RMS frequency:     \t4.8e-08\n\
            Maximum absolute frequency:    \t2.0e-07\n\
            RMS raw frequency:     \t9.0e-05\n\
            Mean incoming packet interval:   \t4.3e+02\n\
            Minimum incoming packet interval:   \t2.0e+00\n\
            Mean outgoing packet interval:   \tinf\n\
            Minimum outgoing packet interval:   \t2.1e+00\n";
        let stats = node_stats(text, 2).unwrap();
        assert!((stats.rms_offset - 8.6e-5).abs() < 1e-12);
        assert!((stats.rms_freq - 4.8e-8).abs() < 1e-15);
        assert!((stats.min_out_interval - 2.1).abs() < 1e-12);
        assert!(stats.mean_out_interval.is_infinite());
        assert!(node_stats(text, 1).is_err());
        assert!(node_stats(text, 3).is_err());
    }

    /// A synthetic run: 10 ms initial offset slewed away at 1 ms/s, then a
    /// +-50 us square wave, a 0.5 s step at second 30 corrected at once by
    /// a step back at 31 and a 200 us excursion at second 40.
    fn synthetic() -> (Vec<f64>, Vec<f64>) {
        let mut offset = Vec::new();
        let mut freq = Vec::new();
        for t in 0..60 {
            let (o, f) = match t {
                0..=9 => (0.01 - 0.001 * f64::from(t), -0.001),
                30 => (0.5, 0.0),
                40 => (200e-6, 0.0),
                _ if t % 2 == 0 => (50e-6, 0.0),
                _ => (-50e-6, 0.0),
            };
            offset.push(o);
            freq.push(f);
        }
        (offset, freq)
    }

    #[test]
    fn figures_of_a_synthetic_log() {
        let (offset, freq) = synthetic();
        let figures = figures(&offset, &freq, 12, 20, None);
        // After warm-up: 38 samples of 50 us, one 0.5 s, one 200 us.
        let expected_rms = ((38.0 * 50e-6 * 50e-6 + 0.25 + 200e-6 * 200e-6) / 40.0_f64).sqrt();
        assert!((figures.rms_offset - expected_rms).abs() < 1e-12);
        assert!((figures.max_offset - 0.5).abs() < 1e-12);
        assert!(figures.rms_freq.abs() < 1e-12);
        // Second 10 is the first under 100 us; 41 the first of the tail.
        assert_eq!(figures.first_sync, Some(10));
        assert_eq!(figures.stays_sync, Some(41));
        // The jump to 0.5 and back; the slew and the 250 us jumps are not steps.
        assert_eq!(figures.steps, 2);
        assert_eq!(figures.packets, 12);
        assert_eq!(figures.event, None);
    }

    #[test]
    fn event_window_and_never_synchronised() {
        let (offset, freq) = synthetic();
        let window = EventWindow {
            label: String::from("w"),
            start: 40,
            length: 1,
        };
        let figures = figures(&offset, &freq, 0, 0, Some(&window));
        let (rms, max) = figures.event.unwrap();
        assert!((rms - 200e-6).abs() < 1e-12 && (max - 200e-6).abs() < 1e-12);

        let drifting: Vec<f64> = (0..10).map(|t| 1e-3 * f64::from(t)).collect();
        let figures = super::figures(&drifting, &[1e-3; 10], 0, 0, None);
        assert_eq!(figures.first_sync, Some(0));
        assert_eq!(figures.stays_sync, None);
        assert_eq!(figures.steps, 0);
    }
}
