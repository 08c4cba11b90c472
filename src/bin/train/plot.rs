//! `train --plot`: the cost and the accuracy per epoch as an SVG, like the book's chapter-3
//! figures. Rendered into a string (plotters' SVG backend), which `train` then writes
//! atomically; the library never draws.

use plotters::prelude::*;

use simdnet::network::{EpochReport, Monitor, Network, SgdConfig};

/// The image: two panels of this size side by side (one if only one has series).
const PANEL: (u32, u32) = (640, 480);

const TRAINING: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const EVALUATION: RGBColor = RGBColor(0xd6, 0x27, 0x28);

/// One line: its legend label, colour and `(epoch, value)` points.
struct Series {
    label: &'static str,
    color: RGBColor,
    points: Vec<(usize, f64)>,
}

/// A series a panel may draw: whether it was monitored, its label, colour and value.
type Wanted = (
    bool,
    &'static str,
    RGBColor,
    fn(&EpochReport) -> Option<f64>,
);

/// The monitored series of one panel, from the reports.
fn series(epochs: &[EpochReport], wanted: [Wanted; 2]) -> Vec<Series> {
    wanted
        .into_iter()
        .filter(|w| w.0)
        .map(|(_, label, color, value)| Series {
            label,
            color,
            points: epochs
                .iter()
                .filter_map(|r| value(r).map(|v| (r.epoch, v)))
                .collect(),
        })
        .collect()
}

/// The plot's title: the network and the hyperparameters.
pub fn title(net: &Network, config: &SgdConfig) -> String {
    let sizes: Vec<String> = net.sizes().iter().map(usize::to_string).collect();
    let schedule = match config.halve_eta_after {
        Some(n) => format!(" (halved after {n} without improvement)"),
        None => String::new(),
    };
    format!(
        "{}, {}, mini-batch {}, eta {:?}{schedule}, lambda {:?}",
        sizes.join("-"),
        net.cost(),
        config.mini_batch_size,
        config.eta,
        config.lambda
    )
}

/// Draws the monitored series of `epochs` into an SVG document: a cost panel (training and
/// evaluation cost) and an accuracy panel (training and evaluation accuracy, in %), each
/// left out when none of its series was monitored, one line per series with a marker per
/// epoch, and a legend naming each line ("training cost", "evaluation accuracy", ...).
///
/// # Errors
///
/// plotters' error text, if drawing fails.
pub fn render(epochs: &[EpochReport], monitor: &Monitor, title: &str) -> Result<String, String> {
    let cost = series(
        epochs,
        [
            (monitor.training_cost, "training cost", TRAINING, |r| {
                r.training_cost
            }),
            (
                monitor.evaluation_cost,
                "evaluation cost",
                EVALUATION,
                |r| r.evaluation_cost,
            ),
        ],
    );
    let accuracy = series(
        epochs,
        [
            (
                monitor.training_accuracy,
                "training accuracy",
                TRAINING,
                |r| r.training_accuracy.map(|a| 100.0 * a.fraction()),
            ),
            (
                monitor.evaluation_accuracy,
                "evaluation accuracy",
                EVALUATION,
                |r| r.evaluation_accuracy.map(|a| 100.0 * a.fraction()),
            ),
        ],
    );
    let panels: Vec<(&str, Vec<Series>)> = [("cost", cost), ("accuracy (%)", accuracy)]
        .into_iter()
        .filter(|(_, s)| !s.is_empty())
        .collect();
    let last_epoch = epochs.iter().map(|r| r.epoch).max().unwrap_or(1);

    let mut svg = String::new();
    {
        let width = PANEL.0 * panels.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (width, PANEL.1 + 40)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(title, ("sans-serif", 24))
            .map_err(|e| e.to_string())?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for ((name, lines), area) in panels.iter().zip(&areas) {
            draw_panel(area, name, lines, last_epoch).map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// One panel: axes from epoch 0 to the last, values padded by 5% of their range below and
/// 30% above (where the legend goes).
fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    name: &str,
    lines: &[Series],
    last_epoch: usize,
) -> Result<(), DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>> {
    let values = lines
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite());
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = if lo > hi {
        (0.0, 1.0)
    } else {
        let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.5 };
        // Room at the top for the legend, above the lines.
        (lo - pad, hi + 6.0 * pad)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(name, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0..last_epoch.max(1), lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 16))
        .y_desc(name)
        .x_labels(last_epoch.clamp(2, 11))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for s in lines {
        let color = s.color;
        chart
            .draw_series(
                LineSeries::new(s.points.iter().copied(), color.stroke_width(2)).point_size(3),
            )?
            .label(s.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 17))
        .draw()?;
    Ok(())
}
