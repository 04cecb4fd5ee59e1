//! Colours, palettes, colour scales and marker shapes shared by the chart kinds.

use plotters::style::RGBColor;

/// An sRGB colour.
pub(crate) type Rgb = (u8, u8, u8);

/// Near-black used for text.
pub(crate) const TEXT: Rgb = (34, 34, 34);
/// Light grey for grid lines.
pub(crate) const GRID: Rgb = (228, 228, 228);
/// Dark grey for axis frames and tick marks.
pub(crate) const FRAME: Rgb = (70, 70, 70);
/// White.
pub(crate) const WHITE: Rgb = (255, 255, 255);

/// Marker shapes, cycled per series so that series differ by more than colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
    TriangleDown,
}

impl Marker {
    /// The `i`-th marker of the cycle.
    pub(crate) fn nth(i: usize) -> Marker {
        [Marker::Circle, Marker::Square, Marker::Triangle, Marker::Diamond, Marker::TriangleDown][i % 5]
    }
}

/// Okabe–Ito colourblind-safe palette, ordered for contrast on white (yellow last).
pub(crate) const PALETTE: [Rgb; 8] = [
    (0, 114, 178),   // blue
    (230, 159, 0),   // orange
    (0, 158, 115),   // bluish green
    (213, 94, 0),    // vermillion
    (204, 121, 167), // reddish purple
    (86, 180, 233),  // sky blue
    (0, 0, 0),       // black
    (240, 228, 66),  // yellow
];

/// The `i`-th palette colour (cycling).
pub(crate) fn palette(i: usize) -> Rgb {
    PALETTE[i % PALETTE.len()]
}

/// Converts to a plotters colour.
pub(crate) fn rgb(c: Rgb) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

/// Relative luminance in [0, 1] (sRGB approximation), used to pick text colour on fills.
pub(crate) fn luminance(c: Rgb) -> f64 {
    (0.2126 * f64::from(c.0) + 0.7152 * f64::from(c.1) + 0.0722 * f64::from(c.2)) / 255.0
}

/// Linear interpolation between two colours.
pub(crate) fn lerp_rgb(a: Rgb, b: Rgb, t: f64) -> Rgb {
    let t = t.clamp(0.0, 1.0);
    let f = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * t).round() as u8;
    (f(a.0, b.0), f(a.1, b.1), f(a.2, b.2))
}

const GREEN: Rgb = (99, 190, 123);
const YELLOW: Rgb = (255, 235, 132);
const RED: Rgb = (248, 105, 107);

/// The p-value colour scale: green (99, 190, 123) at 0, yellow (255, 235, 132) at 0.5,
/// red (248, 105, 107) at 1, linear in between; inputs are clamped to [0, 1].
pub fn pvalue_color(p: f64) -> (u8, u8, u8) {
    let p = if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) };
    if p <= 0.5 {
        lerp_rgb(GREEN, YELLOW, p * 2.0)
    } else {
        lerp_rgb(YELLOW, RED, (p - 0.5) * 2.0)
    }
}

/// Viridis colour map at `t` in [0, 1].
pub(crate) fn viridis(t: f64) -> Rgb {
    const V: [Rgb; 9] = [(68, 1, 84), (71, 45, 123), (59, 82, 139), (44, 114, 142), (33, 145, 140), (40, 174, 128), (94, 201, 98), (173, 220, 48), (253, 231, 37)];
    let x = t.clamp(0.0, 1.0) * 8.0;
    let i = (x.floor() as usize).min(7);
    lerp_rgb(V[i], V[i + 1], x - i as f64)
}
