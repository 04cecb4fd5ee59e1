//! Clipping of polylines and polygons to a rectangle, so backends only see small coordinates.
//!
//! Data far outside the plot (e.g. 1e300 on a linear axis) would otherwise map
//! to saturated `i32` pixels, which plotters rasterizes pixel by pixel.

/// A point in backend pixels.
pub(crate) type Pt = (f64, f64);

/// An axis-aligned clipping rectangle in backend pixels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl Bounds {
    /// Clamps a point into the rectangle (exact for axis-aligned rectangles).
    pub(crate) fn clamp(&self, (x, y): Pt) -> Pt {
        (x.clamp(self.x0, self.x1), y.clamp(self.y0, self.y1))
    }

    /// Whether a disc of radius `r` around `p` can touch the rectangle.
    pub(crate) fn touches(&self, (x, y): Pt, r: f64) -> bool {
        x + r >= self.x0 && x - r <= self.x1 && y + r >= self.y0 && y - r <= self.y1
    }
}

/// Liang–Barsky clipping of segment `a`–`b`; `None` when it misses the rectangle.
fn clip_segment(a: Pt, b: Pt, r: &Bounds) -> Option<(Pt, Pt)> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [(-dx, a.0 - r.x0), (dx, r.x1 - a.0), (-dy, a.1 - r.y0), (dy, r.y1 - a.1)] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    if t0 > t1 || t0.is_nan() || t1.is_nan() {
        return None;
    }
    Some(((a.0 + t0 * dx, a.1 + t0 * dy), (a.0 + t1 * dx, a.1 + t1 * dy)))
}

/// Splits a polyline into the runs of it that lie inside the rectangle.
pub(crate) fn clip_polyline(pts: &[Pt], r: &Bounds) -> Vec<Vec<Pt>> {
    let mut runs = Vec::new();
    let mut cur: Vec<Pt> = Vec::new();
    for w in pts.windows(2) {
        match clip_segment(w[0], w[1], r) {
            Some((a, b)) => {
                if cur.last() != Some(&a) {
                    if cur.len() >= 2 {
                        runs.push(std::mem::take(&mut cur));
                    }
                    cur = vec![a];
                }
                cur.push(b);
            }
            None => {
                if cur.len() >= 2 {
                    runs.push(std::mem::take(&mut cur));
                }
                cur.clear();
            }
        }
    }
    if cur.len() >= 2 {
        runs.push(cur);
    }
    runs
}

/// Sutherland–Hodgman clipping of a polygon to the rectangle.
pub(crate) fn clip_polygon(pts: &[Pt], r: &Bounds) -> Vec<Pt> {
    let mut out = pts.to_vec();
    for edge in 0..4 {
        if out.is_empty() {
            break;
        }
        let inside = |p: Pt| match edge {
            0 => p.0 >= r.x0,
            1 => p.0 <= r.x1,
            2 => p.1 >= r.y0,
            _ => p.1 <= r.y1,
        };
        let cross = |a: Pt, b: Pt| -> Pt {
            let t = match edge {
                0 => (r.x0 - a.0) / (b.0 - a.0),
                1 => (r.x1 - a.0) / (b.0 - a.0),
                2 => (r.y0 - a.1) / (b.1 - a.1),
                _ => (r.y1 - a.1) / (b.1 - a.1),
            };
            (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1))
        };
        let input = std::mem::take(&mut out);
        for (i, &cur) in input.iter().enumerate() {
            let prev = input[(i + input.len() - 1) % input.len()];
            match (inside(prev), inside(cur)) {
                (true, true) => out.push(cur),
                (true, false) => out.push(cross(prev, cur)),
                (false, true) => {
                    out.push(cross(prev, cur));
                    out.push(cur);
                }
                (false, false) => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Bounds = Bounds { x0: 0.0, y0: 0.0, x1: 10.0, y1: 10.0 };

    #[test]
    fn polyline_is_cut_at_the_border() {
        let runs = clip_polyline(&[(-10.0, 5.0), (5.0, 5.0), (5.0, 1e300), (6.0, 5.0)], &R);
        assert_eq!(runs[0], vec![(0.0, 5.0), (5.0, 5.0), (5.0, 10.0)]);
        assert_eq!(runs.len(), 2);
        assert!(clip_polyline(&[(-5.0, -5.0), (-1.0, 20.0)], &R).is_empty());
    }

    #[test]
    fn polygon_is_clipped_to_the_rectangle() {
        let p = clip_polygon(&[(-5.0, -5.0), (15.0, -5.0), (15.0, 15.0), (-5.0, 15.0)], &R);
        assert_eq!(p.len(), 4);
        assert!(p.iter().all(|q| q.0 >= 0.0 && q.0 <= 10.0 && q.1 >= 0.0 && q.1 <= 10.0));
    }
}
