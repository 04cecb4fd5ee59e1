//! Drawing primitives in logical pixels on top of plotters, shared by every chart kind.
//!
//! All layout code works in *logical* pixels (the requested chart size); a
//! [`Canvas`] multiplies by its scale when it talks to the backend, which is
//! how PNG output is supersampled for anti-aliasing. Text placement is done
//! here rather than through plotters' anchors, because the ab_glyph and SVG
//! backends put the baseline at different offsets from the anchor.

use plotters::coord::Shift;
use plotters::element::{Circle, PathElement, Polygon, Rectangle};
use plotters::prelude::{DrawingArea, DrawingBackend};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, FontDesc, FontFamily, FontStyle, FontTransform, ShapeStyle, TextStyle};

use super::geom::{clip_polygon, clip_polyline, Bounds, Pt};
use super::style::{rgb, Marker, Rgb, TEXT, WHITE};
use super::PlotError;

/// Family name under which the embedded DejaVu fonts are registered.
pub(crate) const FONT: &str = "sans-serif";
/// DejaVu's (ascender - descender) / unitsPerEm; ab_glyph scales by this height.
const DEJAVU_HEIGHT_EM: f64 = (1901.0 + 483.0) / 2048.0;
/// DejaVu cap height in em.
const CAP_EM: f64 = 1493.0 / 2048.0;
/// DejaVu descender depth in em.
const DESC_EM: f64 = 483.0 / 2048.0;

/// Horizontal text alignment relative to the anchor point.
#[derive(Clone, Copy, Debug)]
pub(crate) enum HAlign {
    Left,
    Center,
    Right,
}

/// Vertical text alignment relative to the anchor point.
#[derive(Clone, Copy, Debug)]
pub(crate) enum VAlign {
    /// Anchor at the cap height (top of capitals and digits).
    Top,
    /// Anchor half-way up the cap height: visually centred digits and capitals.
    Middle,
    /// Anchor at the lowest descender.
    Bottom,
}

/// How a piece of text is drawn.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Txt {
    pub em: f64,
    pub h: HAlign,
    pub v: VAlign,
    /// Rotated 90° counter-clockwise (reads bottom to top).
    pub up: bool,
    pub bold: bool,
    pub color: Rgb,
}

impl Txt {
    /// Plain text of `em` logical pixels, anchored as given.
    pub(crate) fn new(em: f64, h: HAlign, v: VAlign) -> Self {
        Txt { em, h, v, up: false, bold: false, color: TEXT }
    }
    pub(crate) fn bold(mut self) -> Self {
        self.bold = true;
        self
    }
    pub(crate) fn up(mut self) -> Self {
        self.up = true;
        self
    }
    pub(crate) fn color(mut self, c: Rgb) -> Self {
        self.color = c;
        self
    }
}

/// Converts a plotters drawing error into a [`PlotError`].
pub(crate) fn render_err<E: std::fmt::Display>(e: E) -> PlotError {
    PlotError::Render(e.to_string())
}

/// Width of `text` in logical pixels at `em` size, measured with the embedded font.
pub(crate) fn text_width(text: &str, em: f64, bold: bool) -> f64 {
    const OVERSAMPLE: f64 = 16.0;
    let style = if bold { FontStyle::Bold } else { FontStyle::Normal };
    let font = FontDesc::new(FontFamily::Name(FONT), em * DEJAVU_HEIGHT_EM * OVERSAMPLE, style);
    match font.box_size(text) {
        Ok((w, _)) => f64::from(w) / OVERSAMPLE,
        Err(_) => 0.6 * em * text.chars().count() as f64,
    }
}

/// Shortens `text` with an ellipsis until it fits in `max_w` logical pixels.
pub(crate) fn fit_text(text: &str, em: f64, bold: bool, max_w: f64) -> String {
    if text_width(text, em, bold) <= max_w {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let s: String = chars.iter().collect::<String>() + "…";
        if text_width(&s, em, bold) <= max_w {
            return s;
        }
    }
    String::new()
}

/// A drawing surface addressed in logical pixels.
pub(crate) struct Canvas<DB: DrawingBackend> {
    area: DrawingArea<DB, Shift>,
    scale: f64,
    svg: bool,
    /// Absolute backend pixel of this area's top-left corner.
    off: (i32, i32),
}

impl<DB: DrawingBackend> Canvas<DB> {
    /// Wraps a root drawing area; `scale` backend pixels per logical pixel.
    pub(crate) fn new(area: DrawingArea<DB, Shift>, scale: f64, svg: bool) -> Self {
        Canvas { area, scale, svg, off: (0, 0) }
    }

    /// Backend pixel (relative to this area) of a logical point, unrounded.
    fn ptf(&self, (x, y): (f64, f64)) -> Pt {
        (x * self.scale - f64::from(self.off.0), y * self.scale - f64::from(self.off.1))
    }

    fn pt(&self, p: (f64, f64)) -> (i32, i32) {
        round(self.bounds().clamp(self.ptf(p)))
    }

    /// This area's pixel extent plus a margin; geometry is clipped to it.
    fn bounds(&self) -> Bounds {
        let (w, h) = self.area.dim_in_pixel();
        let m = 64.0;
        Bounds { x0: -m, y0: -m, x1: f64::from(w) + m, y1: f64::from(h) + m }
    }

    fn width(&self, w: f64) -> u32 {
        (w * self.scale).round().max(1.0) as u32
    }

    /// A canvas that clips everything to the given logical rectangle.
    pub(crate) fn clip(&self, x0: f64, y0: f64, x1: f64, y1: f64) -> Canvas<DB> {
        let (l, t) = self.pt((x0, y0));
        let (r, b) = self.pt((x1, y1));
        let area = self.area.clone().shrink((l.max(0), t.max(0)), ((r - l).max(1) as u32, (b - t).max(1) as u32));
        Canvas { area, scale: self.scale, svg: self.svg, off: (self.off.0 + l.max(0), self.off.1 + t.max(0)) }
    }

    /// Flushes the backend.
    pub(crate) fn present(&self) -> Result<(), PlotError> {
        self.area.present().map_err(render_err)
    }

    /// Fills the whole area.
    pub(crate) fn fill(&self, c: Rgb) -> Result<(), PlotError> {
        self.area.fill(&rgb(c)).map_err(render_err)
    }

    /// Draws `text` so that its (h, v) reference point lies at (x, y).
    pub(crate) fn text(&self, text: &str, x: f64, y: f64, t: Txt) -> Result<(), PlotError> {
        if text.is_empty() {
            return Ok(());
        }
        let em_px = t.em * self.scale;
        let size = if self.svg { em_px * 1.24 } else { em_px * DEJAVU_HEIGHT_EM };
        // Distance from the backend's anchor (VPos::Top) down to the baseline.
        let baseline = if self.svg { 0.76 * em_px } else { size / 2.0 };
        let reference = match t.v {
            VAlign::Top => -CAP_EM * em_px,
            VAlign::Middle => -CAP_EM * em_px / 2.0,
            VAlign::Bottom => DESC_EM * em_px,
        };
        let d = baseline + reference;
        let (px, py) = self.pt((x, y));
        let (px, py) = if t.up { (px - d.round() as i32, py) } else { (px, py - d.round() as i32) };
        let h = match t.h {
            HAlign::Left => HPos::Left,
            HAlign::Center => HPos::Center,
            HAlign::Right => HPos::Right,
        };
        let style = if t.bold { FontStyle::Bold } else { FontStyle::Normal };
        let mut font = FontDesc::new(FontFamily::Name(FONT), size, style);
        if t.up {
            font = font.transform(FontTransform::Rotate270);
        }
        let ts = TextStyle { font, color: rgb(t.color).to_backend_color(), pos: Pos::new(h, VPos::Top) };
        self.area.draw_text(text, &ts, (px, py)).map_err(render_err)
    }

    /// A polyline of the given logical stroke width.
    pub(crate) fn line(&self, pts: &[(f64, f64)], c: Rgb, w: f64) -> Result<(), PlotError> {
        self.line_alpha(pts, c, 1.0, w)
    }

    /// A polyline with opacity `alpha`.
    pub(crate) fn line_alpha(&self, pts: &[(f64, f64)], c: Rgb, alpha: f64, w: f64) -> Result<(), PlotError> {
        if pts.len() < 2 {
            return Ok(());
        }
        let style = ShapeStyle { color: rgb(c).mix(alpha), filled: false, stroke_width: self.width(w) };
        let pts: Vec<Pt> = pts.iter().map(|&q| self.ptf(q)).collect();
        for run in clip_polyline(&pts, &self.bounds()) {
            let mut p: Vec<(i32, i32)> = run.into_iter().map(round).collect();
            // plotters turns thick paths into polygons and breaks on zero-length segments.
            p.dedup();
            if p.len() >= 2 {
                self.area.draw(&PathElement::new(p, style)).map_err(render_err)?;
            }
        }
        Ok(())
    }

    /// A filled rectangle between two corners.
    pub(crate) fn fill_rect(&self, a: (f64, f64), b: (f64, f64), c: Rgb) -> Result<(), PlotError> {
        let style = ShapeStyle { color: rgb(c).to_rgba(), filled: true, stroke_width: 0 };
        self.area.draw(&Rectangle::new([self.pt(a), self.pt(b)], style)).map_err(render_err)
    }

    /// A rectangle outline whose stroke is centred on the given corners.
    pub(crate) fn stroke_rect(&self, a: (f64, f64), b: (f64, f64), c: Rgb, w: f64) -> Result<(), PlotError> {
        // Four separate segments (plotters' thick closed paths can drop edges), extended
        // by half the stroke so the corners are square.
        let (x0, x1, y0, y1) = (a.0.min(b.0), a.0.max(b.0), a.1.min(b.1), a.1.max(b.1));
        let e = w / 2.0;
        self.line(&[(x0 - e, y0), (x1 + e, y0)], c, w)?;
        self.line(&[(x0 - e, y1), (x1 + e, y1)], c, w)?;
        self.line(&[(x0, y0), (x0, y1)], c, w)?;
        self.line(&[(x1, y0), (x1, y1)], c, w)
    }

    /// A filled polygon with opacity `alpha`.
    pub(crate) fn polygon(&self, pts: &[(f64, f64)], c: Rgb, alpha: f64) -> Result<(), PlotError> {
        if pts.len() < 3 {
            return Ok(());
        }
        let pts: Vec<Pt> = pts.iter().map(|&q| self.ptf(q)).collect();
        let mut p: Vec<(i32, i32)> = clip_polygon(&pts, &self.bounds()).into_iter().map(round).collect();
        p.dedup();
        if p.len() < 3 {
            return Ok(());
        }
        self.area.draw(&Polygon::new(p, rgb(c).mix(alpha).filled())).map_err(render_err)
    }

    /// A filled circle of logical radius `r`.
    pub(crate) fn circle(&self, center: (f64, f64), r: f64, c: Rgb) -> Result<(), PlotError> {
        if !self.bounds().touches(self.ptf(center), r * self.scale) {
            return Ok(());
        }
        let style = rgb(c).filled();
        self.area.draw(&Circle::new(self.pt(center), self.width(r), style)).map_err(render_err)
    }

    /// A marker of the given shape, outlined in white so overlapping markers stay readable.
    pub(crate) fn marker(&self, shape: Marker, (x, y): (f64, f64), r: f64, c: Rgb) -> Result<(), PlotError> {
        let outline = (r * 0.25).max(0.6);
        let shape_pts = |r: f64| -> Vec<(f64, f64)> {
            match shape {
                Marker::Square => vec![(x - r * 0.85, y - r * 0.85), (x + r * 0.85, y - r * 0.85), (x + r * 0.85, y + r * 0.85), (x - r * 0.85, y + r * 0.85)],
                Marker::Triangle => vec![(x, y - r * 1.15), (x + r * 1.05, y + r * 0.7), (x - r * 1.05, y + r * 0.7)],
                Marker::Diamond => vec![(x, y - r * 1.2), (x + r * 0.95, y), (x, y + r * 1.2), (x - r * 0.95, y)],
                Marker::TriangleDown => vec![(x, y + r * 1.15), (x + r * 1.05, y - r * 0.7), (x - r * 1.05, y - r * 0.7)],
                Marker::Circle => Vec::new(),
            }
        };
        match shape {
            Marker::Circle => {
                self.circle((x, y), r + outline, WHITE)?;
                self.circle((x, y), r, c)
            }
            _ => {
                self.polygon(&shape_pts(r + outline * 1.6), WHITE, 1.0)?;
                self.polygon(&shape_pts(r), c, 1.0)
            }
        }
    }
}

fn round((x, y): Pt) -> (i32, i32) {
    (x.round() as i32, y.round() as i32)
}
