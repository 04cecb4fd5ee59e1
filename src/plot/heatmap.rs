//! Annotated heatmaps with a p-value scale (significant cells marked) or a sequential scale.
//!
//! The p-value scale runs green–yellow–red like the report's Table 3.3; the
//! sequential scale is viridis.

use plotters::prelude::DrawingBackend;

use super::axes::{draw_title, linear_ticks, minus_sign, Rect, LABEL_EM, PAD, TICK_EM, TICK_LEN};
use super::draw::{fit_text, text_width, Canvas, HAlign, Txt, VAlign};
use super::legend::{draw_colorbar, ColorBar};
use super::style::{luminance, pvalue_color, viridis, Rgb, TEXT, WHITE};
use super::{Chart, Figure, PlotError};

/// Colour scale of a [`heatmap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HeatScale {
    /// p-values in [0, 1]: green at 0, yellow at 0.5, red at 1 (see [`pvalue_color`]);
    /// cells below [`HeatmapOptions::significance`] get bold text, a '*' and a thick border.
    #[default]
    PValue,
    /// Viridis from the smallest (dark purple) to the largest value (yellow).
    Sequential,
}

/// Options for [`heatmap`].
#[derive(Clone, Debug)]
pub struct HeatmapOptions {
    /// Figure title ("" for none).
    pub title: String,
    /// Label under the column names.
    pub x_label: String,
    /// Label left of the row names.
    pub y_label: String,
    /// Output size in pixels (default 800×500).
    pub size: (u32, u32),
    /// Colour scale (default [`HeatScale::PValue`]).
    pub scale: HeatScale,
    /// Decimals printed in each cell (default 3).
    pub decimals: usize,
    /// p-value threshold below which cells are marked (default 0.05; PValue scale only).
    pub significance: f64,
    /// Value range of the Sequential scale (default: data min..max).
    pub range: Option<(f64, f64)>,
    /// Colour bar label (default: "p-value" for PValue, none for Sequential).
    pub colorbar_label: Option<String>,
}

impl Default for HeatmapOptions {
    fn default() -> Self {
        HeatmapOptions {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            size: (800, 500),
            scale: HeatScale::PValue,
            decimals: 3,
            significance: 0.05,
            range: None,
            colorbar_label: None,
        }
    }
}

/// A validated heatmap.
#[derive(Clone, Debug)]
pub(crate) struct HeatFigure {
    title: String,
    x_label: String,
    y_label: String,
    rows: Vec<String>,
    cols: Vec<String>,
    values: Vec<Vec<Option<f64>>>,
    scale: HeatScale,
    decimals: usize,
    significance: f64,
    range: (f64, f64),
    colorbar_label: String,
}

const MISSING: Rgb = (217, 217, 217);

/// Draws a table of values as coloured cells with the value printed in each.
///
/// `None` or NaN cells are grey and read "n/a".
///
/// `values[i][j]` belongs to row `rows[i]` and column `cols[j]`.
pub fn heatmap(rows: &[String], cols: &[String], values: &[Vec<Option<f64>>], opts: &HeatmapOptions) -> Result<Chart, PlotError> {
    let bad = |m: String| Err(PlotError::InvalidInput(format!("heatmap: {m}")));
    if rows.is_empty() || cols.is_empty() {
        return bad(format!("needs at least one row and one column, got {} rows and {} columns", rows.len(), cols.len()));
    }
    if values.len() != rows.len() {
        return bad(format!("{} rows of values but {} row names", values.len(), rows.len()));
    }
    for (name, row) in rows.iter().zip(values) {
        if row.len() != cols.len() {
            return bad(format!("row {name:?} has {} values but there are {} columns", row.len(), cols.len()));
        }
    }
    let values: Vec<Vec<Option<f64>>> = values.iter().map(|r| r.iter().map(|v| v.filter(|x| !x.is_nan())).collect()).collect();
    let finite: Vec<f64> = values.iter().flatten().flatten().copied().collect();
    // Every cell missing (e.g. a shard that has no complete pair yet) draws a grid of
    // missing cells: honest, and the script goes on.
    if let Some(v) = finite.iter().find(|v| v.is_infinite()) {
        return bad(format!("cell value {v} is not finite"));
    }
    let range = match opts.scale {
        HeatScale::PValue => {
            for (i, row) in values.iter().enumerate() {
                for (j, v) in row.iter().enumerate() {
                    if let Some(v) = v.filter(|v| !(0.0..=1.0).contains(v)) {
                        return bad(format!("p-value {v} in row {:?}, column {:?} is outside [0, 1]", rows[i], cols[j]));
                    }
                }
            }
            (0.0, 1.0)
        }
        HeatScale::Sequential => match opts.range {
            Some((a, b)) if a.is_finite() && b.is_finite() && a < b => (a, b),
            Some((a, b)) => return bad(format!("range ({a}, {b}) must be finite with low < high")),
            None if finite.is_empty() => (0.0, 1.0),
            None => {
                let (lo, hi) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
                if hi > lo {
                    (lo, hi)
                } else {
                    (lo - 0.5, hi + 0.5)
                }
            }
        },
    };
    let colorbar_label = opts.colorbar_label.clone().unwrap_or_else(|| match opts.scale {
        HeatScale::PValue => "p-value".into(),
        HeatScale::Sequential => String::new(),
    });
    let fig = HeatFigure {
        title: opts.title.clone(),
        x_label: opts.x_label.clone(),
        y_label: opts.y_label.clone(),
        rows: rows.to_vec(),
        cols: cols.to_vec(),
        values,
        scale: opts.scale,
        decimals: opts.decimals.min(8),
        significance: opts.significance,
        range,
        colorbar_label,
    };
    Chart::new(opts.size, Figure::Heat(fig))
}

impl HeatFigure {
    fn color(&self, v: f64) -> Rgb {
        match self.scale {
            HeatScale::PValue => pvalue_color(v),
            HeatScale::Sequential => viridis((v - self.range.0) / (self.range.1 - self.range.0)),
        }
    }

    fn significant(&self, v: f64) -> bool {
        self.scale == HeatScale::PValue && v < self.significance
    }

    /// Renders the figure into a `w`×`h` logical-pixel canvas.
    pub(crate) fn draw<DB: DrawingBackend>(&self, c: &Canvas<DB>, (w, h): (f64, f64)) -> Result<(), PlotError> {
        let top = draw_title(c, &self.title, w)?;
        let ticks: Vec<(f64, String)> = match self.scale {
            HeatScale::PValue => [0.0, 0.25, 0.5, 0.75, 1.0].iter().map(|&v| (v, format!("{v}"))).collect(),
            HeatScale::Sequential => linear_ticks(self.range.0, self.range.1, 5),
        };
        let tick_w = ticks.iter().map(|t| text_width(&t.1, TICK_EM, false)).fold(0.0, f64::max);
        let note = if self.scale == HeatScale::PValue { format!("* p < {}", self.significance) } else { String::new() };
        let cb_w = 16.0;
        let cb_text = (TICK_LEN + 4.0 + tick_w + if self.colorbar_label.is_empty() { 0.0 } else { LABEL_EM * 1.4 }).max(text_width(&note, TICK_EM, false) - cb_w);
        let cb_x0 = w - PAD - cb_text - cb_w;

        let row_w = (w * 0.3).max(40.0);
        let rows: Vec<String> = self.rows.iter().map(|s| fit_text(s, TICK_EM, false, row_w)).collect();
        let row_w = rows.iter().map(|s| text_width(s, TICK_EM, false)).fold(0.0, f64::max);
        let y_lab = if self.y_label.is_empty() { 0.0 } else { LABEL_EM * 1.25 + 6.0 };
        let x0 = PAD + y_lab + row_w + 8.0;
        let x1 = cb_x0 - 2.0 * PAD;
        let cw = (x1 - x0) / self.cols.len() as f64;
        let col_w = self.cols.iter().map(|s| text_width(s, TICK_EM, false)).fold(0.0, f64::max);
        let rotate = col_w > cw - 6.0;
        let cols: Vec<String> = if rotate { self.cols.iter().map(|s| fit_text(s, TICK_EM, false, (h * 0.3).max(40.0))).collect() } else { self.cols.clone() };
        let col_h = if rotate { cols.iter().map(|s| text_width(s, TICK_EM, false)).fold(0.0, f64::max) } else { TICK_EM * 1.2 };
        let x_lab = if self.x_label.is_empty() { 0.0 } else { LABEL_EM * 1.25 + 6.0 };
        let r = Rect { x0, y0: top + PAD, x1, y1: h - PAD * 0.6 - x_lab - col_h - 8.0 };
        let ch = r.h() / self.rows.len() as f64;

        let sample = format!("{:.*}*", self.decimals, 0.888);
        let em = (ch * 0.36).min((cw - 14.0) / text_width(&sample, 1.0, true)).clamp(5.0, 14.0);
        for (i, row) in self.values.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let (cx0, cy0) = (r.x0 + j as f64 * cw, r.y0 + i as f64 * ch);
                let (cx1, cy1) = (cx0 + cw, cy0 + ch);
                let fill = v.map_or(MISSING, |v| self.color(v));
                c.fill_rect((cx0 + 0.75, cy0 + 0.75), (cx1 - 0.75, cy1 - 0.75), fill)?;
                let fg = if luminance(fill) < 0.5 { WHITE } else { TEXT };
                let center = ((cx0 + cx1) / 2.0, (cy0 + cy1) / 2.0);
                let t = Txt::new(em, HAlign::Center, VAlign::Middle).color(fg);
                match v {
                    None => c.text("n/a", center.0, center.1, t.color((90, 90, 90)))?,
                    Some(v) if self.significant(*v) => {
                        c.stroke_rect((cx0 + 2.25, cy0 + 2.25), (cx1 - 2.25, cy1 - 2.25), (25, 25, 25), 2.5)?;
                        c.text(&minus_sign(format!("{v:.*}*", self.decimals)), center.0, center.1, t.bold())?;
                    }
                    Some(v) => c.text(&minus_sign(format!("{v:.*}", self.decimals)), center.0, center.1, t)?,
                }
            }
        }
        for (i, s) in rows.iter().enumerate() {
            let y = r.y0 + (i as f64 + 0.5) * ch;
            c.text(s, r.x0 - 8.0, y, Txt::new(TICK_EM, HAlign::Right, VAlign::Middle))?;
        }
        for (j, s) in cols.iter().enumerate() {
            let x = r.x0 + (j as f64 + 0.5) * cw;
            if rotate {
                c.text(s, x, r.y1 + 8.0, Txt::new(TICK_EM, HAlign::Right, VAlign::Middle).up())?;
            } else {
                c.text(s, x, r.y1 + 8.0, Txt::new(TICK_EM, HAlign::Center, VAlign::Top))?;
            }
        }
        let (mx, my) = ((r.x0 + r.x1) / 2.0, (r.y0 + r.y1) / 2.0);
        c.text(&self.x_label, mx, h - PAD * 0.6 - LABEL_EM * 1.25, Txt::new(LABEL_EM, HAlign::Center, VAlign::Top))?;
        c.text(&self.y_label, PAD, my, Txt::new(LABEL_EM, HAlign::Center, VAlign::Top).up())?;
        let bar = ColorBar { range: self.range, ticks: &ticks, label: &self.colorbar_label, note: &note };
        draw_colorbar(c, Rect { x0: cb_x0, y0: r.y0, x1: cb_x0 + cb_w, y1: r.y1 - if note.is_empty() { 0.0 } else { 28.0 } }, &bar, |v| self.color(v))
    }
}
