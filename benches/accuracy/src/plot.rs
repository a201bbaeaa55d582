//! One SVG per scenario: the true offset of each client against time.
//!
//! The y axis is logarithmic in |offset| (microseconds), so a client
//! within 10 us and one off by milliseconds, and a 0.5 s start, all stay
//! readable on the same axes. 20 000 points per client would make a large
//! file, so each series is reduced to the maximum |offset| of every
//! 10-second bucket, which keeps every peak.

use std::path::Path;

use plotters::prelude::*;

/// Seconds per bucket.
const BUCKET: usize = 10;

/// Bottom of the y axis, microseconds; smaller offsets are drawn on it.
const FLOOR_US: f64 = 1.0;

/// A client's offset series for the plot.
pub(crate) struct Series<'a> {
    /// Legend label.
    pub(crate) label: &'a str,
    /// True offset in seconds, one value per second.
    pub(crate) offset: &'a [f64],
}

/// Maximum |offset| of every bucket, in (seconds, microseconds), at least
/// [`FLOOR_US`].
fn envelope(offset: &[f64]) -> Vec<(f64, f64)> {
    offset
        .chunks(BUCKET)
        .enumerate()
        .map(|(bucket, chunk)| {
            let max = chunk.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            ((bucket * BUCKET) as f64, (max * 1e6).max(FLOOR_US))
        })
        .collect()
}

/// Axis label of an offset in microseconds.
fn label_us(value: f64) -> String {
    if value >= 1e6 {
        format!("{} s", value / 1e6)
    } else if value >= 1e3 {
        format!("{} ms", value / 1e3)
    } else {
        format!("{value} us")
    }
}

/// Writes the plot of one scenario.
pub(crate) fn write_svg(
    path: &Path,
    title: &str,
    warmup: u32,
    series: &[Series<'_>],
) -> Result<(), String> {
    let worst = series
        .iter()
        .flat_map(|s| s.offset)
        .fold(0.0_f64, |m, v| m.max(v.abs()));
    let top = (worst * 1e6 * 2.0).max(FLOOR_US * 100.0);
    let length = series.iter().map(|s| s.offset.len()).max().unwrap_or(1) as f64;

    let root = SVGBackend::new(path, (1000, 500)).into_drawing_area();
    let error = |e: &dyn core::fmt::Display| format!("{}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| error(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..length, (FLOOR_US..top).log_scale())
        .map_err(|e| error(&e))?;
    chart
        .configure_mesh()
        .x_desc("simulated time (s)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_desc("max |true offset| per 10 s")
        .y_label_formatter(&|v| label_us(*v))
        .max_light_lines(0)
        .draw()
        .map_err(|e| error(&e))?;
    let warmup_line = [(f64::from(warmup), FLOOR_US), (f64::from(warmup), top)];
    chart
        .draw_series(LineSeries::new(warmup_line, BLACK.mix(0.3)))
        .map_err(|e| error(&e))?
        .label("end of warm-up")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.3)));
    let colors = [RED, BLUE, GREEN, MAGENTA];
    for (s, color) in series.iter().zip(colors.iter().cycle()) {
        let color = *color;
        chart
            .draw_series(LineSeries::new(envelope(s.offset), color))
            .map_err(|e| error(&e))?
            .label(s.label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| error(&e))?;
    root.present().map_err(|e| error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_keeps_peaks_and_floor() {
        let mut offset = vec![0.0; 25];
        offset[3] = 5e-6;
        offset[7] = -20e-6;
        offset[12] = 1.0;
        let points = envelope(&offset);
        assert_eq!(points, [(0.0, 20.0), (10.0, 1e6), (20.0, FLOOR_US)]);
        assert_eq!(label_us(100.0), "100 us");
        assert_eq!(label_us(10000.0), "10 ms");
    }
}
