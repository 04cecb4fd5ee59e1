//! Numeric x–y charts: faceted line charts with error bands, scatter plots and learning curves.

use super::legend::{Key, LegendEntry};
use super::style::{palette, Marker, Rgb};
use super::{check_series, Chart, Figure, PlotError, Series};

/// Options for [`line_chart`].
#[derive(Clone, Debug)]
pub struct LineOptions {
    /// Figure title ("" for none).
    pub title: String,
    /// x axis label, shown under the bottom row of facets.
    pub x_label: String,
    /// y axis label, shown left of the first column of facets.
    pub y_label: String,
    /// Output size in pixels (default 800×500).
    pub size: (u32, u32),
    /// Logarithmic x axis (ticks at powers of two when all x are powers of two).
    pub log_x: bool,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// Fixed x range instead of the data range plus 5% margins.
    pub x_range: Option<(f64, f64)>,
    /// Fixed y range instead of the data range plus 5% margins.
    pub y_range: Option<(f64, f64)>,
    /// Columns of the facet grid (default: all in one row up to 3 facets, then about square).
    pub columns: Option<usize>,
    /// Facets share one x range (default true).
    pub share_x: bool,
    /// Facets share one y range (default true).
    pub share_y: bool,
    /// Point markers on the lines (default true; dropped when a series has over 60 points).
    pub markers: bool,
}

impl Default for LineOptions {
    fn default() -> Self {
        LineOptions {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            size: (800, 500),
            log_x: false,
            log_y: false,
            x_range: None,
            y_range: None,
            columns: None,
            share_x: true,
            share_y: true,
            markers: true,
        }
    }
}

/// Options for [`scatter`].
#[derive(Clone, Debug)]
pub struct ScatterOptions {
    /// Figure title ("" for none).
    pub title: String,
    /// x axis label.
    pub x_label: String,
    /// y axis label.
    pub y_label: String,
    /// Output size in pixels (default 800×500).
    pub size: (u32, u32),
    /// Logarithmic x axis.
    pub log_x: bool,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// Fixed x range instead of the data range plus 5% margins.
    pub x_range: Option<(f64, f64)>,
    /// Fixed y range instead of the data range plus 5% margins.
    pub y_range: Option<(f64, f64)>,
}

impl Default for ScatterOptions {
    fn default() -> Self {
        ScatterOptions { title: String::new(), x_label: String::new(), y_label: String::new(), size: (800, 500), log_x: false, log_y: false, x_range: None, y_range: None }
    }
}

/// How series are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Style {
    /// Lines, optionally with point markers.
    Lines { markers: bool },
    /// Markers only (scatter).
    Points,
}

/// A series with its colour and marker.
#[derive(Clone, Debug)]
pub(super) struct Styled {
    pub(super) s: Series,
    pub(super) color: Rgb,
    pub(super) marker: Marker,
}

/// One subplot.
#[derive(Clone, Debug)]
pub(super) struct Panel {
    pub(super) title: String,
    pub(super) y_label: String,
    pub(super) log_y: bool,
    pub(super) series: Vec<Styled>,
}

/// A grid of x–y panels with a shared legend on the right.
#[derive(Clone, Debug)]
pub(crate) struct XyFigure {
    pub(super) title: String,
    pub(super) x_label: String,
    pub(super) panels: Vec<Panel>,
    pub(super) columns: usize,
    pub(super) log_x: bool,
    pub(super) x_range: Option<(f64, f64)>,
    pub(super) y_range: Option<(f64, f64)>,
    pub(super) share_x: bool,
    pub(super) share_y: bool,
    pub(super) integer_x: bool,
    pub(super) style: Style,
    pub(super) legend: Vec<LegendEntry>,
}

/// Draws one or more facets of line series with markers, ± error bands and a shared legend.
///
/// Each facet is `(title, series)`; use an empty title for none. Series with the
/// same name get the same colour and marker in every facet. Points are joined in
/// order of x; non-finite points are skipped.
pub fn line_chart(facets: &[(String, Vec<Series>)], opts: &LineOptions) -> Result<Chart, PlotError> {
    if facets.is_empty() {
        return Err(PlotError::InvalidInput("line_chart: no facets given".into()));
    }
    check_range("x_range", opts.x_range, opts.log_x)?;
    check_range("y_range", opts.y_range, opts.log_y)?;
    let mut keyed = Vec::new();
    for (title, series) in facets {
        if series.is_empty() {
            return Err(PlotError::InvalidInput(format!("line_chart: facet {title:?} has no series")));
        }
        for s in series {
            check_series(s, opts.log_x, opts.log_y)?;
        }
        keyed.push(series.iter().map(|s| (s.name.clone(), s.clone())).collect());
    }
    let long = facets.iter().flat_map(|f| &f.1).any(|s| s.points.len() > 60);
    let style = Style::Lines { markers: opts.markers && !long };
    let (styled, legend) = assign_styles(keyed, style);
    let panels = facets.iter().zip(styled).map(|((title, _), series)| Panel { title: title.clone(), y_label: opts.y_label.clone(), log_y: opts.log_y, series }).collect::<Vec<_>>();
    let n = panels.len();
    let columns = opts.columns.unwrap_or(if n <= 3 { n } else { (n as f64).sqrt().ceil() as usize }).clamp(1, n);
    // Epochs, widths, trial numbers: an axis of whole numbers gets whole-number ticks.
    let integer_x = !opts.log_x && facets.iter().flat_map(|f| &f.1).flat_map(|s| &s.points).all(|p| p.0.fract() == 0.0);
    let fig = XyFigure {
        title: opts.title.clone(),
        x_label: opts.x_label.clone(),
        panels,
        columns,
        log_x: opts.log_x,
        x_range: opts.x_range,
        y_range: opts.y_range,
        share_x: opts.share_x,
        share_y: opts.share_y,
        integer_x,
        style,
        legend,
    };
    Chart::new(opts.size, Figure::Xy(fig))
}

/// Draws series as markers (with vertical ± error bars when `err` is given).
pub fn scatter(series: &[Series], opts: &ScatterOptions) -> Result<Chart, PlotError> {
    if series.is_empty() {
        return Err(PlotError::InvalidInput("scatter: no series given".into()));
    }
    check_range("x_range", opts.x_range, opts.log_x)?;
    check_range("y_range", opts.y_range, opts.log_y)?;
    for s in series {
        check_series(s, opts.log_x, opts.log_y)?;
    }
    let keyed = vec![series.iter().map(|s| (s.name.clone(), s.clone())).collect()];
    let integer_x = !opts.log_x && series.iter().flat_map(|s| &s.points).all(|p| p.0.fract() == 0.0);
    let (mut styled, legend) = assign_styles(keyed, Style::Points);
    let panel = Panel { title: String::new(), y_label: opts.y_label.clone(), log_y: opts.log_y, series: styled.remove(0) };
    let fig = XyFigure {
        title: opts.title.clone(),
        x_label: opts.x_label.clone(),
        panels: vec![panel],
        columns: 1,
        log_x: opts.log_x,
        x_range: opts.x_range,
        y_range: opts.y_range,
        share_x: true,
        share_y: true,
        integer_x,
        style: Style::Points,
        legend,
    };
    Chart::new(opts.size, Figure::Xy(fig))
}

pub(super) fn check_range(what: &str, r: Option<(f64, f64)>, log: bool) -> Result<(), PlotError> {
    match r {
        Some((a, b)) if !(a.is_finite() && b.is_finite() && a < b) => Err(PlotError::InvalidInput(format!("{what} ({a}, {b}) must be finite with low < high"))),
        Some((a, _)) if log && a <= 0.0 => Err(PlotError::InvalidInput(format!("{what} starts at {a} but the axis is logarithmic"))),
        _ => Ok(()),
    }
}

/// Gives every distinct legend key a colour and marker.
///
/// Returns the styled series of each group and the legend rows.
pub(super) fn assign_styles(groups: Vec<Vec<(String, Series)>>, style: Style) -> (Vec<Vec<Styled>>, Vec<LegendEntry>) {
    let mut keys: Vec<Option<String>> = Vec::new();
    let mut legend = Vec::new();
    let styled = groups
        .into_iter()
        .map(|g| {
            g.into_iter()
                .map(|(key, s)| {
                    let idx = match keys.iter().position(|k| k.as_deref() == Some(key.as_str()) && !key.is_empty()) {
                        Some(i) => i,
                        None => {
                            keys.push((!key.is_empty()).then(|| key.clone()));
                            keys.len() - 1
                        }
                    };
                    let (color, marker) = (palette(idx), Marker::nth(idx));
                    if !key.is_empty() && !legend.iter().any(|e: &LegendEntry| e.label == key) {
                        let k = match style {
                            Style::Lines { markers: true } => Key::Line(marker),
                            Style::Lines { markers: false } => Key::PlainLine,
                            Style::Points => Key::Point(marker),
                        };
                        legend.push(LegendEntry { label: key, color, key: k });
                    }
                    Styled { s, color, marker }
                })
                .collect()
        })
        .collect();
    (styled, legend)
}
