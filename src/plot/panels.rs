//! Rendering of x–y figures: facet grid layout, shared axes, lines, error bands and markers.

use plotters::prelude::DrawingBackend;

use super::axes::{draw_frame, draw_grid, draw_title, panel_margins, Axis, Mapper, Margins, Rect, LABEL_EM, PAD};
use super::draw::{Canvas, HAlign, Txt, VAlign};
use super::legend::{draw_legend, legend_width};
use super::xy::{Panel, Style, Styled, XyFigure};
use super::{PlotError, Series};

/// The finite points of `s` with their indices.
fn finite_points(s: &Series) -> impl Iterator<Item = (usize, (f64, f64))> + '_ {
    s.points.iter().copied().enumerate().filter(|(_, (x, y))| x.is_finite() && y.is_finite())
}

/// The ± error of point `i` (0 when absent or not finite).
fn err_at(s: &Series, i: usize) -> f64 {
    s.err.as_ref().map(|e| e[i]).filter(|e| e.is_finite()).unwrap_or(0.0)
}

impl XyFigure {
    fn x_values(&self, panels: &[&Panel]) -> Vec<f64> {
        panels.iter().flat_map(|p| &p.series).flat_map(|s| finite_points(&s.s).map(|(_, p)| p.0)).collect()
    }

    fn y_values(&self, panels: &[&Panel]) -> Vec<f64> {
        let mut v = Vec::new();
        for p in panels {
            for s in &p.series {
                for (i, (_, y)) in finite_points(&s.s) {
                    let e = err_at(&s.s, i);
                    v.push(y);
                    v.push(y + e);
                    if !p.log_y || y - e > 0.0 {
                        v.push(y - e);
                    }
                }
            }
        }
        v
    }

    /// Renders the figure into a `w`×`h` logical-pixel canvas.
    pub(crate) fn draw<DB: DrawingBackend>(&self, c: &Canvas<DB>, (w, h): (f64, f64)) -> Result<(), PlotError> {
        let top = draw_title(c, &self.title, w)?;
        let legend_w = legend_width(&self.legend, h - top - 2.0 * PAD);
        let n = self.panels.len();
        let cols = self.columns.clamp(1, n);
        let rows = n.div_ceil(cols);
        // A y label common to all panels and the x label are drawn once for the whole grid.
        let outer_y = self.panels.iter().all(|p| p.y_label == self.panels[0].y_label);
        let band = LABEL_EM * 1.25 + 6.0;
        let left = if outer_y && !self.panels[0].y_label.is_empty() { PAD + band } else { 0.0 };
        let bottom = if self.x_label.is_empty() { 0.0 } else { band };
        let (cw, ch) = ((w - legend_w - left) / cols as f64, (h - top - bottom) / rows as f64);
        let all: Vec<&Panel> = self.panels.iter().collect();
        let has_title = self.panels.iter().any(|p| !p.title.is_empty());
        let inner_y = !outer_y && self.panels.iter().any(|p| !p.y_label.is_empty());
        let m0 = panel_margins(0.0, has_title, false, inner_y);
        let y_axes: Vec<Axis> = self
            .panels
            .iter()
            .map(|p| {
                let vals = if self.share_y { self.y_values(&all) } else { self.y_values(&[p]) };
                Axis::new(&vals, p.log_y, self.y_range, ch - m0.top - m0.bottom, false)
            })
            .collect();
        let ytw = y_axes.iter().map(Axis::max_label_width).fold(0.0, f64::max);
        let m = panel_margins(ytw, has_title, false, inner_y);
        let m = if left > 0.0 { Margins { left: m.left - PAD, ..m } } else { m };
        let x_axes: Vec<Axis> = self
            .panels
            .iter()
            .map(|p| {
                let vals = if self.share_x { self.x_values(&all) } else { self.x_values(&[p]) };
                let mut a = Axis::new(&vals, self.log_x, self.x_range, cw - m.left - m.right, true);
                if self.integer_x && a.ticks.iter().filter(|t| t.0.fract() == 0.0).count() >= 2 {
                    a.ticks.retain(|t| t.0.fract() == 0.0);
                    for t in &mut a.ticks {
                        t.1 = super::axes::fmt_num(t.0, 1.0);
                    }
                }
                a
            })
            .collect();
        let mut span = Rect { x0: f64::INFINITY, y0: f64::INFINITY, x1: 0.0, y1: 0.0 };
        for (i, p) in self.panels.iter().enumerate() {
            let (col, row) = ((i % cols) as f64, (i / cols) as f64);
            let (cx, cy) = (left + col * cw, top + row * ch);
            let r = Rect { x0: cx + m.left, y0: cy + m.top, x1: cx + cw - m.right, y1: cy + ch - m.bottom };
            span = Rect { x0: span.x0.min(r.x0), y0: span.y0.min(r.y0), x1: span.x1.max(r.x1), y1: span.y1.max(r.y1) };
            let map = Mapper { r, x: &x_axes[i], y: &y_axes[i] };
            draw_grid(c, r, Some(map.x), Some(map.y))?;
            let clip = c.clip(r.x0, r.y0, r.x1, r.y1);
            for s in &p.series {
                self.draw_series(&clip, &map, s)?;
            }
            let yl = if outer_y { "" } else { p.y_label.as_str() };
            draw_frame(c, r, Some(map.x), map.y, (&p.title, "", yl))?;
        }
        let (mx, my) = ((span.x0 + span.x1) / 2.0, (span.y0 + span.y1) / 2.0);
        c.text(&self.x_label, mx, h - bottom, Txt::new(LABEL_EM, HAlign::Center, VAlign::Top))?;
        if outer_y {
            c.text(&self.panels[0].y_label, PAD, my, Txt::new(LABEL_EM, HAlign::Center, VAlign::Top).up())?;
        }
        draw_legend(c, &self.legend, w - legend_w, top + m.top, h - top - 2.0 * PAD)
    }

    fn draw_series<DB: DrawingBackend>(&self, c: &Canvas<DB>, m: &Mapper, st: &Styled) -> Result<(), PlotError> {
        let s = &st.s;
        let mut pts: Vec<(usize, (f64, f64))> = finite_points(s).collect();
        let y_floor = m.y.lo;
        let lower = |y: f64, e: f64| if m.y.log { (y - e).max(y_floor) } else { y - e };
        match self.style {
            Style::Lines { markers } => {
                pts.sort_by(|a, b| a.1 .0.total_cmp(&b.1 .0));
                if s.err.is_some() {
                    let mut band: Vec<(f64, f64)> = pts.iter().map(|&(i, (x, y))| m.map((x, y + err_at(s, i)))).collect();
                    band.extend(pts.iter().rev().map(|&(i, (x, y))| m.map((x, lower(y, err_at(s, i))))));
                    c.polygon(&band, st.color, 0.2)?;
                }
                let line: Vec<(f64, f64)> = pts.iter().map(|&(_, p)| m.map(p)).collect();
                c.line(&line, st.color, 2.0)?;
                if markers {
                    for p in &line {
                        c.marker(st.marker, *p, 3.6, st.color)?;
                    }
                }
            }
            Style::Points => {
                for &(i, (x, y)) in &pts {
                    let e = err_at(s, i);
                    if e > 0.0 {
                        let (px, top, bot) = (m.px(x), m.py(y + e), m.py(lower(y, e)));
                        c.line(&[(px, top), (px, bot)], st.color, 1.3)?;
                        c.line(&[(px - 3.0, top), (px + 3.0, top)], st.color, 1.3)?;
                        c.line(&[(px - 3.0, bot), (px + 3.0, bot)], st.color, 1.3)?;
                    }
                }
                for &(_, p) in &pts {
                    c.marker(st.marker, m.map(p), 4.2, st.color)?;
                }
            }
        }
        Ok(())
    }
}
