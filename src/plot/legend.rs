//! Legends (boxed, right of the plots, wrapping into columns) and colour bars.

use plotters::prelude::DrawingBackend;

use super::axes::{Rect, LABEL_EM, PAD, TICK_EM, TICK_LEN};
use super::draw::{text_width, Canvas, HAlign, Txt, VAlign};
use super::style::{Marker, Rgb, FRAME, WHITE};
use super::PlotError;

/// How a legend entry's key is drawn.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Key {
    /// Line with a marker in the middle.
    Line(Marker),
    /// Line without marker.
    PlainLine,
    /// Marker only.
    Point(Marker),
    /// Filled square (bars).
    Patch,
}

/// One legend row.
#[derive(Clone, Debug)]
pub(crate) struct LegendEntry {
    pub label: String,
    pub color: Rgb,
    pub key: Key,
}

const LEGEND_EM: f64 = 12.0;
const KEY_W: f64 = 26.0;
const ROW_H: f64 = LEGEND_EM * 1.65;

/// Width of the legend strip for `entries` when `avail_h` logical pixels are available.
pub(crate) fn legend_width(entries: &[LegendEntry], avail_h: f64) -> f64 {
    if entries.is_empty() {
        return 0.0;
    }
    let (cols, _) = legend_grid(entries.len(), avail_h);
    let col_w = entries.iter().map(|e| text_width(&e.label, LEGEND_EM, false)).fold(0.0, f64::max) + KEY_W + 8.0;
    cols as f64 * col_w + 2.0 * 8.0 + PAD
}

fn legend_grid(n: usize, avail_h: f64) -> (usize, usize) {
    let rows_fit = (((avail_h - 16.0) / ROW_H).floor() as usize).max(1);
    let cols = n.div_ceil(rows_fit);
    (cols, n.div_ceil(cols))
}

/// Draws a boxed legend with its top-left corner at (x, y).
pub(crate) fn draw_legend<DB: DrawingBackend>(c: &Canvas<DB>, entries: &[LegendEntry], x: f64, y: f64, avail_h: f64) -> Result<(), PlotError> {
    if entries.is_empty() {
        return Ok(());
    }
    let (cols, rows) = legend_grid(entries.len(), avail_h);
    let col_w = entries.iter().map(|e| text_width(&e.label, LEGEND_EM, false)).fold(0.0, f64::max) + KEY_W + 8.0;
    let (w, h) = (cols as f64 * col_w + 10.0, rows as f64 * ROW_H + 8.0);
    c.fill_rect((x, y), (x + w, y + h), WHITE)?;
    c.stroke_rect((x, y), (x + w, y + h), (204, 204, 204), 1.0)?;
    for (i, e) in entries.iter().enumerate() {
        let ex = x + 6.0 + (i / rows) as f64 * col_w;
        let ey = y + 4.0 + (i % rows) as f64 * ROW_H + ROW_H / 2.0;
        let mid = (ex + KEY_W / 2.0, ey);
        match e.key {
            Key::Line(m) => {
                c.line(&[(ex, ey), (ex + KEY_W, ey)], e.color, 2.0)?;
                c.marker(m, mid, 3.5, e.color)?;
            }
            Key::PlainLine => c.line(&[(ex, ey), (ex + KEY_W, ey)], e.color, 2.0)?,
            Key::Point(m) => c.marker(m, mid, 4.0, e.color)?,
            Key::Patch => c.fill_rect((mid.0 - 7.0, ey - 6.0), (mid.0 + 7.0, ey + 6.0), e.color)?,
        }
        c.text(&e.label, ex + KEY_W + 6.0, ey, Txt::new(LEGEND_EM, HAlign::Left, VAlign::Middle))?;
    }
    Ok(())
}

/// Scale, ticks and captions of a vertical colour bar.
pub(crate) struct ColorBar<'a> {
    pub range: (f64, f64),
    pub ticks: &'a [(f64, String)],
    pub label: &'a str,
    /// Bold caption under the bar ("" for none).
    pub note: &'a str,
}

/// Draws a vertical colour bar in `r` (low values at the bottom) with ticks on its right.
pub(crate) fn draw_colorbar<DB: DrawingBackend>(c: &Canvas<DB>, r: Rect, bar: &ColorBar, color: impl Fn(f64) -> Rgb) -> Result<(), PlotError> {
    const STEPS: usize = 128;
    let (lo, hi) = bar.range;
    for k in 0..STEPS {
        let (t0, t1) = (k as f64 / STEPS as f64, (k + 1) as f64 / STEPS as f64);
        let fill = color(lo + (t0 + t1) / 2.0 * (hi - lo));
        c.fill_rect((r.x0, r.y1 - t1 * r.h() - 0.5), (r.x1, r.y1 - t0 * r.h()), fill)?;
    }
    c.stroke_rect((r.x0, r.y0), (r.x1, r.y1), FRAME, 1.0)?;
    let mut tw: f64 = 0.0;
    let tick = Txt::new(TICK_EM, HAlign::Left, VAlign::Middle);
    for (v, s) in bar.ticks {
        let y = r.y1 - (v - lo) / (hi - lo) * r.h();
        c.line(&[(r.x1, y), (r.x1 + TICK_LEN, y)], FRAME, 1.0)?;
        c.text(s, r.x1 + TICK_LEN + 4.0, y, tick)?;
        tw = tw.max(text_width(s, TICK_EM, false));
    }
    let lx = r.x1 + TICK_LEN + 4.0 + tw + 6.0;
    let label = Txt::new(LABEL_EM, HAlign::Center, VAlign::Top).up();
    c.text(bar.label, lx, (r.y0 + r.y1) / 2.0, label)?;
    let note = Txt::new(TICK_EM, HAlign::Left, VAlign::Top).bold();
    c.text(bar.note, r.x0, r.y1 + 12.0, note)
}
