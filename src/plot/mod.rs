//! Publication-style charts for experiment results, rendered to PNG or SVG.
//!
//! Chart kinds: faceted line charts with error bands ([`line_chart`]), grouped
//! bars ([`bar_chart`]), scatter plots ([`scatter`]), annotated heatmaps with a
//! p-value scale ([`heatmap`]), per-layer density bars ([`density_bars`]) and
//! learning curves ([`learning_curves`]).
//!
//! Every chart function validates its input and returns a [`Chart`], a cheap
//! description that is rendered on demand with [`Chart::to_png`],
//! [`Chart::to_svg`] or [`Chart::save`]. Rendering uses plotters with an
//! embedded DejaVu Sans font, so text works on machines without system fonts.
//! PNGs are drawn at twice the requested resolution and downsampled, which
//! anti-aliases lines and markers.
//!
//! ```no_run
//! use sparselab::plot::{line_chart, LineOptions, Series};
//! let s = Series::new("sparse", vec![(8.0, 0.91), (16.0, 0.94), (32.0, 0.95)]);
//! let opts = LineOptions { title: "Accuracy vs width".into(), log_x: true, ..Default::default() };
//! line_chart(&[(String::new(), vec![s])], &opts)?.save(std::path::Path::new("acc.png"))?;
//! # Ok::<(), sparselab::plot::PlotError>(())
//! ```

mod axes;
mod bars;
mod draw;
mod geom;
mod heatmap;
mod learning;
mod legend;
mod panels;
mod png;
mod style;
mod xy;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::backend::{BitMapBackend, SVGBackend};
use plotters::prelude::IntoDrawingArea;
use plotters::style::FontStyle;

pub use bars::{bar_chart, density_bars, BarOptions, DensityOptions};
pub use heatmap::{heatmap, HeatScale, HeatmapOptions};
pub use learning::{learning_curves, LearningCurveOptions};
pub use style::pvalue_color;
pub use xy::{line_chart, scatter, LineOptions, ScatterOptions};

/// Errors from building, rendering or saving a chart.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The data given to a chart function cannot be plotted; the message says why.
    #[error("invalid chart input: {0}")]
    InvalidInput(String),
    /// plotters failed while drawing.
    #[error("chart rendering failed: {0}")]
    Render(String),
    /// [`Chart::save`] was given a path whose extension is not a supported format.
    #[error("cannot save chart to {path:?}: unsupported extension {ext:?}, use .png or .svg")]
    UnsupportedExtension {
        /// The path given to `save`.
        path: PathBuf,
        /// Its extension, lower-cased ("" when it has none).
        ext: String,
    },
    /// Writing the output file failed.
    #[error("cannot write chart to {path:?}: {source}")]
    Io {
        /// The file that could not be written.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
}

/// One named data series: `(x, y)` points and an optional ± error per point (e.g. std over seeds).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Legend label; an empty name gets no legend entry.
    pub name: String,
    /// Data points; non-finite points are skipped (lines break there).
    pub points: Vec<(f64, f64)>,
    /// Optional ± band half-width per point; same length as `points`.
    pub err: Option<Vec<f64>>,
}

impl Series {
    /// A series without error band.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series { name: name.into(), points, err: None }
    }

    /// Adds a ± error (one value per point).
    pub fn with_err(mut self, err: Vec<f64>) -> Self {
        self.err = Some(err);
        self
    }
}

/// A validated chart, rendered on demand to PNG or SVG.
#[derive(Clone, Debug)]
pub struct Chart {
    width: u32,
    height: u32,
    figure: Figure,
}

/// What a chart draws.
#[derive(Clone, Debug)]
enum Figure {
    Xy(xy::XyFigure),
    Bars(bars::BarFigure),
    Heat(heatmap::HeatFigure),
}

/// PNG output is rendered at this multiple of the requested size, then downsampled.
const SUPERSAMPLE: u32 = 2;

impl Chart {
    fn new(size: (u32, u32), figure: Figure) -> Result<Chart, PlotError> {
        let (width, height) = size;
        if !(64..=8192).contains(&width) || !(64..=8192).contains(&height) {
            return Err(PlotError::InvalidInput(format!("chart size {width}x{height} is out of range: each side must be 64..=8192 pixels")));
        }
        Ok(Chart { width, height, figure })
    }

    /// Width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn draw<DB: plotters::prelude::DrawingBackend>(&self, c: &draw::Canvas<DB>) -> Result<(), PlotError> {
        c.fill(style::WHITE)?;
        let size = (f64::from(self.width), f64::from(self.height));
        match &self.figure {
            Figure::Xy(f) => f.draw(c, size)?,
            Figure::Bars(f) => f.draw(c, size)?,
            Figure::Heat(f) => f.draw(c, size)?,
        }
        c.present()
    }

    /// Renders the chart as an SVG document (text stays as `<text>` elements).
    pub fn to_svg(&self) -> Result<String, PlotError> {
        register_fonts()?;
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, (self.width, self.height)).into_drawing_area();
            self.draw(&draw::Canvas::new(root, 1.0, true))?;
        }
        Ok(out)
    }

    /// Renders the chart as encoded PNG bytes of exactly [`Chart::size`] pixels.
    pub fn to_png(&self) -> Result<Vec<u8>, PlotError> {
        register_fonts()?;
        let ss = if u64::from(self.width) * u64::from(self.height) <= 16_000_000 { SUPERSAMPLE } else { 1 };
        let (w, h) = (self.width * ss, self.height * ss);
        let mut buf = vec![255u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            self.draw(&draw::Canvas::new(root, f64::from(ss), false))?;
        }
        let small = png::downsample(&buf, w as usize, h as usize, ss as usize);
        png::encode_rgb(&small, self.width, self.height)
    }

    /// Writes the chart to `path`, choosing PNG or SVG by the file extension.
    pub fn save(&self, path: &Path) -> Result<(), PlotError> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let bytes = match ext.as_str() {
            "png" => self.to_png()?,
            "svg" => self.to_svg()?.into_bytes(),
            _ => return Err(PlotError::UnsupportedExtension { path: path.to_path_buf(), ext }),
        };
        std::fs::write(path, bytes).map_err(|source| PlotError::Io { path: path.to_path_buf(), source })
    }
}

static FONT_REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static FONT_BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// Registers the embedded DejaVu Sans (regular and bold) as plotters' "sans-serif", once.
pub(crate) fn register_fonts() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(draw::FONT, FontStyle::Normal, FONT_REGULAR).is_ok() && plotters::style::register_font(draw::FONT, FontStyle::Bold, FONT_BOLD).is_ok());
    if ok {
        Ok(())
    } else {
        Err(PlotError::Render("embedded DejaVu Sans font could not be parsed".into()))
    }
}

/// A stand-in chart for one that has no data: `title` above a single missing ("n/a") cell.
///
/// # Errors
/// A size out of range.
pub fn placeholder(title: &str, size: (u32, u32)) -> Result<Chart, PlotError> {
    heatmap(&[String::new()], &[String::new()], &[vec![None]], &HeatmapOptions { title: title.to_string(), scale: HeatScale::Sequential, size, ..Default::default() })
}

/// Checks one series: non-empty, some finite point, matching `err`, positive values on log axes.
pub(crate) fn check_series(s: &Series, log_x: bool, log_y: bool) -> Result<(), PlotError> {
    let name = if s.name.is_empty() { "<unnamed>" } else { &s.name };
    let bad = |msg: String| Err(PlotError::InvalidInput(format!("series {name:?}: {msg}")));
    if s.points.is_empty() {
        return bad("has no points".into());
    }
    if !s.points.iter().any(|(x, y)| x.is_finite() && y.is_finite()) {
        return bad("has no finite points (all NaN or infinite)".into());
    }
    if let Some(err) = &s.err {
        if err.len() != s.points.len() {
            return bad(format!("err has {} values but there are {} points", err.len(), s.points.len()));
        }
        if let Some(e) = err.iter().find(|e| **e < 0.0) {
            return bad(format!("err must be non-negative, found {e}"));
        }
    }
    for &(x, y) in s.points.iter().filter(|(x, y)| x.is_finite() && y.is_finite()) {
        if log_x && x <= 0.0 {
            return bad(format!("log x axis needs positive x, found {x}"));
        }
        if log_y && y <= 0.0 {
            return bad(format!("log y axis needs positive y, found {y}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
