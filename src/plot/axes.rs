//! Numeric axes (nice ranges, ticks, labels) and panel frames shared by the chart kinds.

use plotters::prelude::DrawingBackend;

use super::draw::{text_width, Canvas, HAlign, Txt, VAlign};
use super::style::{FRAME, GRID};
use super::PlotError;

/// Font sizes (em, logical pixels) and spacing, matching matplotlib's defaults at 100 dpi.
pub(crate) const TITLE_EM: f64 = 16.0;
pub(crate) const LABEL_EM: f64 = 14.0;
pub(crate) const TICK_EM: f64 = 12.0;
pub(crate) const TICK_LEN: f64 = 4.0;
pub(crate) const PAD: f64 = 10.0;

/// A logical-pixel rectangle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rect {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl Rect {
    pub(crate) fn w(&self) -> f64 {
        self.x1 - self.x0
    }
    pub(crate) fn h(&self) -> f64 {
        self.y1 - self.y0
    }
}

/// A numeric axis: visible range, scale, and labelled tick positions (data units).
#[derive(Clone, Debug)]
pub(crate) struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
    pub ticks: Vec<(f64, String)>,
}

impl Axis {
    /// Builds an axis covering `values` (finite, and positive for log axes).
    ///
    /// `fixed` overrides the range; otherwise 5% margins are added like matplotlib.
    /// `len` is the axis length in logical pixels; tick density follows from it and,
    /// on horizontal axes, from the label widths so that labels never overlap.
    pub(crate) fn new(values: &[f64], log: bool, fixed: Option<(f64, f64)>, len: f64, horizontal: bool) -> Axis {
        let (mut lo, mut hi) = min_max(values).unwrap_or((0.0, 1.0));
        if let Some((a, b)) = fixed {
            lo = a;
            hi = b;
        } else if log {
            let (l, h) = (lo.log10(), hi.log10());
            let m = if h > l { (h - l) * 0.05 } else { 0.5 };
            lo = 10f64.powf(l - m).max(f64::MIN_POSITIVE);
            hi = 10f64.powf(h + m).min(f64::MAX);
        } else {
            let m = if hi > lo {
                (hi - lo) * 0.05
            } else if lo != 0.0 {
                lo.abs() * 0.1
            } else {
                1.0
            };
            lo -= m;
            hi += m;
        }
        let mut target = if horizontal { (len / 70.0).round() } else { (len / 55.0).round() }.clamp(2.0, 10.0) as usize;
        loop {
            let ticks = if log { log_ticks(lo, hi, values, target) } else { linear_ticks(lo, hi, target) };
            let axis = Axis { lo, hi, log, ticks };
            if target <= 2 || !axis.crowded(len, horizontal) {
                return axis;
            }
            target -= 1;
        }
    }

    /// Whether neighbouring tick labels would touch at this axis length.
    fn crowded(&self, len: f64, horizontal: bool) -> bool {
        let need = if horizontal { self.max_label_width() + 10.0 } else { TICK_EM * 1.8 };
        self.ticks.windows(2).any(|w| ((self.frac(w[1].0) - self.frac(w[0].0)) * len).abs() < need)
    }

    /// Position of `v` along the axis as a fraction of its length (0 at `lo`).
    pub(crate) fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    /// Widest tick label in logical pixels.
    pub(crate) fn max_label_width(&self) -> f64 {
        self.ticks.iter().map(|(_, s)| text_width(s, TICK_EM, false)).fold(0.0, f64::max)
    }
}

/// Minimum and maximum of the finite values.
pub(crate) fn min_max(values: &[f64]) -> Option<(f64, f64)> {
    values.iter().filter(|v| v.is_finite()).fold(None, |acc, &v| match acc {
        None => Some((v, v)),
        Some((a, b)) => Some((a.min(v), b.max(v))),
    })
}

/// "Nice" linear ticks (steps of 1, 2, 2.5 or 5 × 10^k) inside [lo, hi].
pub(crate) fn linear_ticks(lo: f64, hi: f64, target: usize) -> Vec<(f64, String)> {
    let span = hi - lo;
    if span <= 0.0 || !span.is_finite() {
        return vec![(lo, fmt_num(lo, 1.0))];
    }
    let raw = span / target.max(2) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    if !(step > 0.0 && step.is_finite()) || last.saturating_sub(first) > 1000 {
        return vec![(lo, fmt_num(lo, 1.0))];
    }
    (first..=last).map(|i| i as f64 * step).map(|v| (v, fmt_num(v, step))).collect()
}

/// Ticks for a log axis: powers of two when the data are powers of two, else decades
/// (with 2× and 5× subdivisions when the range spans less than two decades).
fn log_ticks(lo: f64, hi: f64, values: &[f64], target: usize) -> Vec<(f64, String)> {
    let pow2 = values.len() > 1 && values.iter().all(|v| v.log2().fract() == 0.0);
    let base: f64 = if pow2 { 2.0 } else { 10.0 };
    // f64 spans at most 2^±1075, so the clamp only guards against degenerate input.
    let a = (lo.log(base).ceil() as i32).max(-1100);
    let b = (hi.log(base).floor() as i32).min(1100);
    let mut exps: Vec<i32> = (a..=b).collect();
    if exps.len() > target.max(2) {
        let k = exps.len().div_ceil(target.max(2));
        exps.retain(|e| e.rem_euclid(k as i32) == 0);
    }
    let mut ticks: Vec<f64> = exps.iter().map(|&e| base.powi(e)).collect();
    if !pow2 && ticks.len() < 2 {
        ticks = (a - 1..=b).flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e))).filter(|v| *v >= lo && *v <= hi).collect();
    }
    if ticks.len() < 2 {
        return linear_ticks(lo, hi, target).into_iter().filter(|(v, _)| *v > 0.0).collect();
    }
    ticks.into_iter().map(|v| (v, fmt_num(v, v))).collect()
}

/// Formats a tick value with as many decimals as the tick `step` needs.
pub(crate) fn fmt_num(v: f64, step: f64) -> String {
    let v = if v.abs() < step.abs() * 1e-9 { 0.0 } else { v };
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e6).contains(&a) {
        let s = format!("{v:e}");
        return minus_sign(match s.split_once('e') {
            Some((m, e)) if m.len() > 4 => format!("{:.1}e{e}", m.parse::<f64>().unwrap_or(0.0)),
            _ => s,
        });
    }
    let decimals = (-(step.abs().log10().floor()) as i32).clamp(0, 8) as usize;
    let decimals = if (step / 10f64.powi(-(decimals as i32)) - 2.5).abs() < 1e-9 { decimals + 1 } else { decimals };
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s.trim_start_matches(['-', '0', '.']).is_empty() {
        s[1..].to_string()
    } else {
        minus_sign(s)
    }
}

/// Replaces ASCII hyphens by the typographic minus sign U+2212, as matplotlib does.
pub(crate) fn minus_sign(s: String) -> String {
    if s.contains('-') {
        s.replace('-', "\u{2212}")
    } else {
        s
    }
}

/// Space a panel needs around its plot area, in logical pixels.
pub(crate) struct Margins {
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
}

/// Margins for a panel with the given y tick label width and optional labels.
pub(crate) fn panel_margins(y_tick_w: f64, title: bool, x_label: bool, y_label: bool) -> Margins {
    let left = PAD + if y_label { LABEL_EM * 1.25 + 6.0 } else { 0.0 } + y_tick_w + TICK_LEN + 5.0;
    let bottom = TICK_LEN + 5.0 + TICK_EM * 1.2 + if x_label { LABEL_EM * 1.25 + 6.0 } else { 0.0 } + PAD * 0.6;
    let top = PAD + if title { LABEL_EM * 1.6 } else { 0.0 };
    Margins { left, right: PAD * 1.6, top, bottom }
}

/// Maps data coordinates into a plot rectangle.
pub(crate) struct Mapper<'a> {
    pub r: Rect,
    pub x: &'a Axis,
    pub y: &'a Axis,
}

impl Mapper<'_> {
    pub(crate) fn px(&self, x: f64) -> f64 {
        self.r.x0 + self.x.frac(x) * self.r.w()
    }
    pub(crate) fn py(&self, y: f64) -> f64 {
        self.r.y1 - self.y.frac(y) * self.r.h()
    }
    pub(crate) fn map(&self, (x, y): (f64, f64)) -> (f64, f64) {
        (self.px(x), self.py(y))
    }
}

/// Draws grid lines for the given axes (either may be absent) inside `r`.
pub(crate) fn draw_grid<DB: DrawingBackend>(c: &Canvas<DB>, r: Rect, x: Option<&Axis>, y: Option<&Axis>) -> Result<(), PlotError> {
    if let Some(x) = x {
        for (v, _) in &x.ticks {
            let px = r.x0 + x.frac(*v) * r.w();
            c.line(&[(px, r.y0), (px, r.y1)], GRID, 0.8)?;
        }
    }
    if let Some(y) = y {
        for (v, _) in &y.ticks {
            let py = r.y1 - y.frac(*v) * r.h();
            c.line(&[(r.x0, py), (r.x1, py)], GRID, 0.8)?;
        }
    }
    Ok(())
}

/// Draws the frame, ticks, tick labels and axis/panel labels of a plot rectangle.
///
/// `x` may be `None` for categorical x axes, which draw their own labels.
pub(crate) fn draw_frame<DB: DrawingBackend>(c: &Canvas<DB>, r: Rect, x: Option<&Axis>, y: &Axis, labels: (&str, &str, &str)) -> Result<(), PlotError> {
    let (title, x_label, y_label) = labels;
    c.stroke_rect((r.x0, r.y0), (r.x1, r.y1), FRAME, 1.0)?;
    let tick_txt = Txt::new(TICK_EM, HAlign::Right, VAlign::Middle);
    for (v, s) in &y.ticks {
        let py = r.y1 - y.frac(*v) * r.h();
        c.line(&[(r.x0 - TICK_LEN, py), (r.x0, py)], FRAME, 1.0)?;
        c.text(s, r.x0 - TICK_LEN - 4.0, py, tick_txt)?;
    }
    if let Some(x) = x {
        let t = Txt::new(TICK_EM, HAlign::Center, VAlign::Top);
        for (v, s) in &x.ticks {
            let px = r.x0 + x.frac(*v) * r.w();
            c.line(&[(px, r.y1), (px, r.y1 + TICK_LEN)], FRAME, 1.0)?;
            c.text(s, px, r.y1 + TICK_LEN + 5.0, t)?;
        }
    }
    let cx = (r.x0 + r.x1) / 2.0;
    let label_y = r.y1 + TICK_LEN + 5.0 + TICK_EM * 1.2 + 6.0;
    c.text(x_label, cx, label_y, Txt::new(LABEL_EM, HAlign::Center, VAlign::Top))?;
    let lx = r.x0 - TICK_LEN - 5.0 - y.max_label_width() - 6.0 - LABEL_EM * 0.3;
    c.text(y_label, lx, (r.y0 + r.y1) / 2.0, Txt::new(LABEL_EM, HAlign::Center, VAlign::Bottom).up())?;
    c.text(title, cx, r.y0 - 8.0, Txt::new(LABEL_EM, HAlign::Center, VAlign::Bottom))
}

/// Draws the figure title centred at the top; returns the height it used.
pub(crate) fn draw_title<DB: DrawingBackend>(c: &Canvas<DB>, title: &str, width: f64) -> Result<f64, PlotError> {
    if title.is_empty() {
        return Ok(0.0);
    }
    c.text(title, width / 2.0, PAD + 2.0, Txt::new(TITLE_EM, HAlign::Center, VAlign::Top))?;
    Ok(PAD + TITLE_EM * 1.5)
}
