//! Learning curves over epochs: loss and metric panels side by side, sharing a legend.

use super::xy::{assign_styles, Panel, Style, XyFigure};
use super::{check_series, Chart, Figure, PlotError, Series};

/// Options for [`learning_curves`].
#[derive(Clone, Debug)]
pub struct LearningCurveOptions {
    /// Figure title ("" for none).
    pub title: String,
    /// x axis label (default "epoch").
    pub x_label: String,
    /// y label of the loss panel (default "loss").
    pub loss_label: String,
    /// y label of the other panel (default "accuracy").
    pub metric_label: String,
    /// Output size in pixels (default 800×500).
    pub size: (u32, u32),
    /// Logarithmic y axis for the loss panel.
    pub log_loss: bool,
}

impl Default for LearningCurveOptions {
    fn default() -> Self {
        LearningCurveOptions { title: String::new(), x_label: "epoch".into(), loss_label: "loss".into(), metric_label: "accuracy".into(), size: (800, 500), log_loss: false }
    }
}

/// Draws training curves over epochs: a loss panel and a metric panel side by side.
///
/// Series whose name contains "loss" go to the loss panel, all others to the
/// metric panel; if only one kind is present there is one panel. Legend labels
/// drop the metric word, so "train_loss" and "train_acc" share the colour and
/// the legend entry "train".
pub fn learning_curves(series: &[Series], opts: &LearningCurveOptions) -> Result<Chart, PlotError> {
    if series.is_empty() {
        return Err(PlotError::InvalidInput("learning_curves: no series given".into()));
    }
    let is_loss = |s: &Series| s.name.to_lowercase().contains("loss");
    for s in series {
        check_series(s, false, opts.log_loss && is_loss(s))?;
    }
    let (loss, other): (Vec<&Series>, Vec<&Series>) = series.iter().partition(|s| is_loss(s));
    let groups: Vec<(Vec<&Series>, &String, bool)> = [(loss, &opts.loss_label, opts.log_loss), (other, &opts.metric_label, false)].into_iter().filter(|g| !g.0.is_empty()).collect();
    let keyed = groups.iter().map(|g| g.0.iter().map(|s| (legend_key(&s.name), (*s).clone())).collect()).collect();
    let long = series.iter().any(|s| s.points.len() > 30);
    let style = Style::Lines { markers: !long };
    let (styled, legend) = assign_styles(keyed, style);
    let panels: Vec<Panel> = groups.iter().zip(styled).map(|(g, series)| Panel { title: String::new(), y_label: g.1.clone(), log_y: g.2, series }).collect();
    let fig = XyFigure {
        title: opts.title.clone(),
        x_label: opts.x_label.clone(),
        columns: panels.len(),
        panels,
        log_x: false,
        x_range: None,
        y_range: None,
        share_x: true,
        share_y: false,
        integer_x: true,
        style,
        legend,
    };
    Chart::new(opts.size, Figure::Xy(fig))
}

/// Legend label of a series: "train_loss" → "train", "Test Accuracy" → "Test".
///
/// Names that are only a metric word stay as they are.
fn legend_key(name: &str) -> String {
    let words: Vec<&str> = name.split(['_', '-', ' ', '/', '.']).filter(|w| !w.is_empty() && !matches!(w.to_lowercase().as_str(), "loss" | "acc" | "accuracy")).collect();
    if words.is_empty() {
        name.to_string()
    } else {
        words.join(" ")
    }
}
