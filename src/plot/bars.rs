//! Grouped bar charts over categories, and per-layer density bars for SNAS density vectors.

use plotters::prelude::DrawingBackend;

use super::axes::{draw_frame, draw_grid, draw_title, min_max, minus_sign, panel_margins, Axis, Rect, LABEL_EM, PAD, TICK_EM, TICK_LEN};
use super::draw::{fit_text, text_width, Canvas, HAlign, Txt, VAlign};
use super::legend::{draw_legend, legend_width, Key, LegendEntry};
use super::style::{palette, Rgb, FRAME};
use super::{Chart, Figure, PlotError};

/// Options for [`bar_chart`].
#[derive(Clone, Debug)]
pub struct BarOptions {
    /// Figure title ("" for none).
    pub title: String,
    /// Label under the category axis.
    pub x_label: String,
    /// y axis label.
    pub y_label: String,
    /// Output size in pixels (default 800×500).
    pub size: (u32, u32),
    /// Fixed y range instead of [min(0, data), max(0, data)] plus margins.
    pub y_range: Option<(f64, f64)>,
    /// Print each bar's value above it (default false).
    pub show_values: bool,
    /// Decimals of printed values (default 2).
    pub decimals: usize,
}

impl Default for BarOptions {
    fn default() -> Self {
        BarOptions { title: String::new(), x_label: String::new(), y_label: String::new(), size: (800, 500), y_range: None, show_values: false, decimals: 2 }
    }
}

/// Options for [`density_bars`].
#[derive(Clone, Debug)]
pub struct DensityOptions {
    /// Figure title ("" for none).
    pub title: String,
    /// Label under the layer axis (default "layer").
    pub x_label: String,
    /// y axis label (default "density").
    pub y_label: String,
    /// Output size in pixels (default 800×500).
    pub size: (u32, u32),
    /// Print each density above its bar (default true).
    pub show_values: bool,
}

impl Default for DensityOptions {
    fn default() -> Self {
        DensityOptions { title: String::new(), x_label: "layer".into(), y_label: "density".into(), size: (800, 500), show_values: true }
    }
}

/// Bars over categories, one colour per group.
#[derive(Clone, Debug)]
pub(crate) struct BarFigure {
    title: String,
    x_label: String,
    y_label: String,
    categories: Vec<String>,
    groups: Vec<(Vec<f64>, Rgb)>,
    legend: Vec<LegendEntry>,
    range: (f64, f64),
    tick_max: f64,
    show_values: bool,
    decimals: usize,
}

/// Draws grouped bars: for each category one bar per group, with a legend of the groups.
///
/// Each group is `(name, values)` with one value per category; NaN values leave a gap.
pub fn bar_chart(categories: &[String], groups: &[(String, Vec<f64>)], opts: &BarOptions) -> Result<Chart, PlotError> {
    let bad = |m: String| Err(PlotError::InvalidInput(format!("bar_chart: {m}")));
    if categories.is_empty() {
        return bad("no categories given".into());
    }
    if groups.is_empty() {
        return bad("no groups given".into());
    }
    for (name, values) in groups {
        if values.len() != categories.len() {
            return bad(format!("group {name:?} has {} values but there are {} categories", values.len(), categories.len()));
        }
        if !values.iter().any(|v| v.is_finite()) {
            return bad(format!("group {name:?} has no finite values (all NaN or infinite)"));
        }
    }
    let range = match opts.y_range {
        Some((a, b)) if a.is_finite() && b.is_finite() && a < b => (a, b),
        Some((a, b)) => return bad(format!("y_range ({a}, {b}) must be finite with low < high")),
        None => {
            let all: Vec<f64> = groups.iter().flat_map(|g| g.1.iter().copied()).collect();
            let (lo, hi) = min_max(&all).unwrap_or((0.0, 1.0));
            let (lo, hi) = (lo.min(0.0), hi.max(0.0));
            let span = if hi > lo { hi - lo } else { 1.0 };
            let head = if opts.show_values { 0.12 } else { 0.05 };
            (if lo < 0.0 { lo - span * head } else { 0.0 }, if hi > 0.0 || lo == 0.0 { hi + span * head } else { 0.0 })
        }
    };
    let legend = if groups.len() > 1 { groups.iter().enumerate().map(|(j, g)| LegendEntry { label: g.0.clone(), color: palette(j), key: Key::Patch }).collect() } else { Vec::new() };
    let fig = BarFigure {
        title: opts.title.clone(),
        x_label: opts.x_label.clone(),
        y_label: opts.y_label.clone(),
        categories: categories.to_vec(),
        groups: groups.iter().enumerate().map(|(j, g)| (g.1.clone(), palette(j))).collect(),
        legend,
        range,
        tick_max: f64::INFINITY,
        show_values: opts.show_values,
        decimals: opts.decimals.min(8),
    };
    Chart::new(opts.size, Figure::Bars(fig))
}

/// Draws a per-layer density vector (values in [0, 1]) as bars on a fixed 0–1 axis.
pub fn density_bars(layer_names: &[String], densities: &[f64], opts: &DensityOptions) -> Result<Chart, PlotError> {
    let bad = |m: String| Err(PlotError::InvalidInput(format!("density_bars: {m}")));
    if layer_names.is_empty() {
        return bad("no layers given".into());
    }
    if layer_names.len() != densities.len() {
        return bad(format!("{} layer names but {} densities", layer_names.len(), densities.len()));
    }
    if let Some((name, d)) = layer_names.iter().zip(densities).find(|(_, d)| !(0.0..=1.0).contains(*d)) {
        return bad(format!("density of layer {name:?} is {d}, expected a value in [0, 1]"));
    }
    let fig = BarFigure {
        title: opts.title.clone(),
        x_label: opts.x_label.clone(),
        y_label: opts.y_label.clone(),
        categories: layer_names.to_vec(),
        groups: vec![(densities.to_vec(), palette(0))],
        legend: Vec::new(),
        range: (0.0, if opts.show_values { 1.1 } else { 1.04 }),
        tick_max: 1.0 + 1e-9,
        show_values: opts.show_values,
        decimals: 2,
    };
    Chart::new(opts.size, Figure::Bars(fig))
}

impl BarFigure {
    /// Renders the figure into a `w`×`h` logical-pixel canvas.
    pub(crate) fn draw<DB: DrawingBackend>(&self, c: &Canvas<DB>, (w, h): (f64, f64)) -> Result<(), PlotError> {
        let top = draw_title(c, &self.title, w)?;
        let legend_w = legend_width(&self.legend, h - top - 2.0 * PAD);
        let mut ya = Axis::new(&[], false, Some(self.range), h - top - 90.0, false);
        ya.ticks.retain(|t| t.0 <= self.tick_max);
        let mut m = panel_margins(ya.max_label_width(), false, !self.x_label.is_empty(), !self.y_label.is_empty());

        // Category labels: horizontal when they fit their slot, else rotated
        // (and shortened if needed).
        let n = self.categories.len();
        let slot = (w - legend_w - m.left - m.right) / n as f64;
        let label_w = self.categories.iter().map(|s| text_width(s, TICK_EM, false)).fold(0.0, f64::max);
        let rotate = label_w > slot - 6.0;
        let max_rot = (h * 0.3).max(40.0);
        let labels: Vec<String> = if rotate { self.categories.iter().map(|s| fit_text(s, TICK_EM, false, max_rot)).collect() } else { self.categories.clone() };
        if rotate {
            let lw = labels.iter().map(|s| text_width(s, TICK_EM, false)).fold(0.0, f64::max);
            m.bottom += lw - TICK_EM * 1.2;
        }
        let r = Rect { x0: m.left, y0: top + m.top, x1: w - legend_w - m.right, y1: h - m.bottom };
        let slot = r.w() / n as f64;
        let py = |v: f64| r.y1 - ya.frac(v) * r.h();

        draw_grid(c, r, None, Some(&ya))?;
        let clip = c.clip(r.x0, r.y0, r.x1, r.y1);
        let g = self.groups.len() as f64;
        let bw = 0.8 / g * slot;
        let value_em = (bw / text_width(&fmt_value(-0.888, self.decimals), 1.0, false)).min(11.0);
        for (j, (values, color)) in self.groups.iter().enumerate() {
            for (i, &v) in values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
                let x0 = r.x0 + slot * (i as f64 + 0.1) + bw * j as f64;
                clip.fill_rect((x0, py(0.0)), (x0 + bw, py(v)), *color)?;
                if self.show_values && value_em >= 7.0 {
                    let (y, va) = if v >= 0.0 { (py(v) - 3.0, VAlign::Bottom) } else { (py(v) + 3.0, VAlign::Top) };
                    clip.text(&fmt_value(v, self.decimals), x0 + bw / 2.0, y, Txt::new(value_em, HAlign::Center, va))?;
                }
            }
        }
        if self.range.0 < 0.0 {
            c.line(&[(r.x0, py(0.0)), (r.x1, py(0.0))], FRAME, 1.0)?;
        }
        draw_frame(c, r, None, &ya, ("", "", &self.y_label))?;
        for (i, label) in labels.iter().enumerate() {
            let cx = r.x0 + slot * (i as f64 + 0.5);
            c.line(&[(cx, r.y1), (cx, r.y1 + TICK_LEN)], FRAME, 1.0)?;
            let y = r.y1 + TICK_LEN + 5.0;
            if rotate {
                c.text(label, cx, y, Txt::new(TICK_EM, HAlign::Right, VAlign::Middle).up())?;
            } else {
                c.text(label, cx, y, Txt::new(TICK_EM, HAlign::Center, VAlign::Top))?;
            }
        }
        let xl_y = h - PAD * 0.6 - LABEL_EM * 1.25;
        c.text(&self.x_label, (r.x0 + r.x1) / 2.0, xl_y, Txt::new(LABEL_EM, HAlign::Center, VAlign::Top))?;
        draw_legend(c, &self.legend, w - legend_w, top + m.top, h - top - 2.0 * PAD)
    }
}

fn fmt_value(v: f64, decimals: usize) -> String {
    minus_sign(format!("{v:.decimals$}"))
}
