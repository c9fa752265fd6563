//! Chart geometry: data → SVG coordinates, path strings and axis ticks.
//!
//! The plain structs built here are drawn as SVG markup by [`crate::svg`], which
//! escapes every piece of text (titles, tick labels, tooltips) as the templates do.
//! Coordinates are in the SVG `viewBox` (user units); the SVG scales to the width of
//! its container, so one unit is about one CSS pixel on a phone ([`WIDTH`] = 360).
//!
//! Numbers are rounded to 0.1 unit: enough for a crisp picture, few bytes, and the same
//! bytes when the same data is drawn again.

use crate::svg::push_coord;

/// Appends `x y` to SVG path data.
fn push_point(d: &mut String, x: f64, y: f64) {
    push_coord(d, x);
    d.push(' ');
    push_coord(d, y);
}

/// Width of a standard chart's viewBox (≈ CSS pixels on a 390 px phone).
pub const WIDTH: f64 = 360.0;
/// Height of a standard chart's viewBox.
pub const HEIGHT: f64 = 200.0;

/// Rounds to one decimal (SVG coordinates).
fn r1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// A linear scale from a data domain to a pixel range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    d0: f64,
    d1: f64,
    r0: f64,
    r1: f64,
}

impl Scale {
    /// Maps `[d0, d1]` onto `[r0, r1]`. A degenerate domain is widened by ±0.5 (±10%
    /// of the value when it is large) so a single value sits in the middle.
    pub fn new(d0: f64, d1: f64, r0: f64, r1: f64) -> Self {
        let (mut d0, mut d1) = if d0 <= d1 { (d0, d1) } else { (d1, d0) };
        if !d0.is_finite() || !d1.is_finite() {
            (d0, d1) = (0.0, 1.0);
        }
        if d1 - d0 < 1e-12 {
            let pad = (d0.abs() * 0.1).max(0.5);
            (d0, d1) = (d0 - pad, d1 + pad);
        }
        Scale { d0, d1, r0, r1 }
    }

    /// The pixel position of `x` (clamped to the range, so nothing is drawn outside).
    pub fn map(&self, x: f64) -> f64 {
        let t = ((x - self.d0) / (self.d1 - self.d0)).clamp(0.0, 1.0);
        r1(self.r0 + t * (self.r1 - self.r0))
    }

    /// The domain.
    pub fn domain(&self) -> (f64, f64) {
        (self.d0, self.d1)
    }
}

/// A "nice" step (1, 2 or 5 × 10ᵏ) giving about `n` intervals over `span`.
pub fn nice_step(span: f64, n: usize) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    // As d3's tickStep: round to the nearest of 1, 2, 5, 10 on a log scale.
    let nice = if f >= 50f64.sqrt() {
        10.0
    } else if f >= 10f64.sqrt() {
        5.0
    } else if f >= 2f64.sqrt() {
        2.0
    } else {
        1.0
    };
    nice * mag
}

/// The domain `[lo, hi]` widened to multiples of a nice step, and the ticks in it.
pub fn nice_domain(lo: f64, hi: f64, n: usize) -> (f64, f64, Vec<f64>) {
    let s = Scale::new(lo, hi, 0.0, 1.0);
    let (lo, hi) = s.domain();
    let step = nice_step(hi - lo, n);
    let lo = (lo / step).floor() * step;
    let hi = (hi / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut k = 0;
    loop {
        let t = lo + step * k as f64;
        if t > hi + step * 1e-9 || k > 50 {
            break;
        }
        // Snap -0.0 and float noise so labels read "0", "0.5".
        let t = (t / step).round() * step;
        ticks.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        k += 1;
    }
    (lo, hi, ticks)
}

/// Formats a tick value with as many decimals as its step needs.
pub fn tick_label(x: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    let s = format!("{x:.decimals$}");
    if s.starts_with('-') && s.trim_start_matches(['-', '0', '.']).is_empty() {
        s.trim_start_matches('-').to_string()
    } else {
        s.replace('-', "\u{2212}")
    }
}

/// The plot area inside a chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
    /// Right edge.
    pub x2: f64,
    /// Bottom edge.
    pub y2: f64,
}

impl Rect {
    fn new(x: f64, y: f64, w: f64, h: f64) -> Self {
        Rect {
            x,
            y,
            w,
            h,
            x2: r1(x + w),
            y2: r1(y + h),
        }
    }
}

/// An axis tick: its position along the axis and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Pixel position (x for the x axis, y for the y axis).
    pub pos: f64,
    /// Position of the label across the axis (y for the x axis, x for the y axis).
    pub label_at: f64,
    /// Position of the label along the axis (baseline-adjusted).
    pub label_pos: f64,
    /// Label text.
    pub label: String,
}

/// A path (line or filled area) with a CSS class.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// SVG path data.
    pub d: String,
    /// CSS class (colour, dash).
    pub class: &'static str,
}

/// A bar (rectangle) with a tooltip.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Left.
    pub x: f64,
    /// Top.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
    /// CSS class.
    pub class: &'static str,
    /// Tooltip (`<title>`).
    pub tip: String,
}

/// A reference line across the plot (horizontal or vertical) with a label.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Start x.
    pub x1: f64,
    /// Start y.
    pub y1: f64,
    /// End x.
    pub x2: f64,
    /// End y.
    pub y2: f64,
    /// CSS class.
    pub class: &'static str,
    /// Label drawn at the end of the line (may be empty).
    pub label: String,
    /// Label position.
    pub lx: f64,
    /// Label position.
    pub ly: f64,
    /// Text anchor of the label (`start`, `middle`, `end`).
    pub anchor: &'static str,
}

/// A marked point with a tooltip.
#[derive(Debug, Clone, PartialEq)]
pub struct Dot {
    /// Centre x.
    pub x: f64,
    /// Centre y.
    pub y: f64,
    /// Radius.
    pub r: f64,
    /// CSS class.
    pub class: &'static str,
    /// Tooltip (`<title>`).
    pub tip: String,
}

/// A legend entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Legend {
    /// CSS class of the swatch.
    pub class: &'static str,
    /// Text.
    pub label: String,
}

/// A chart: everything its markup ([`crate::svg::Markup`]) draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// viewBox left edge: 0, or negative when a y-axis title widens the chart leftwards
    /// ([`Frame::y_label`]).
    pub x0: f64,
    /// viewBox width.
    pub w: f64,
    /// viewBox height.
    pub h: f64,
    /// Accessible name (`<title>`).
    pub title: String,
    /// Accessible description (`<desc>`): what the chart shows in words.
    pub desc: String,
    /// Plot area.
    pub plot: Rect,
    /// Ticks of the x axis.
    pub x_ticks: Vec<Tick>,
    /// Ticks of the y axis.
    pub y_ticks: Vec<Tick>,
    /// Filled areas (drawn first).
    pub areas: Vec<Shape>,
    /// Bars.
    pub bars: Vec<Bar>,
    /// Lines.
    pub lines: Vec<Shape>,
    /// Reference lines.
    pub rules: Vec<Rule>,
    /// Points (drawn last).
    pub dots: Vec<Dot>,
    /// Legend entries (HTML, below the chart).
    pub legend: Vec<Legend>,
    /// Title of the x axis (unit), drawn centred below the tick labels.
    pub x_label: Option<Tick>,
    /// Title of the y axis (what the values are), drawn turned, left of the tick labels:
    /// `label_pos` is its x, `label_at` its y.
    pub y_label: Option<Tick>,
    /// Shown instead of the plot when there is nothing to draw.
    pub empty: Option<String>,
    /// Centre of the chart (where `empty` is written).
    pub cx: f64,
    /// Baseline of the `empty` message.
    pub cy: f64,
}

/// Room left of a chart for a y-axis title ([`Frame::y_label`]), viewBox units.
pub const Y_LABEL_WIDTH: f64 = 14.0;

/// Builds a [`Chart`] in data coordinates.
#[derive(Debug, Clone)]
pub struct Frame {
    /// x scale.
    pub x: Scale,
    /// y scale.
    pub y: Scale,
    chart: Chart,
}

impl Frame {
    /// A standard chart ([`WIDTH`] × `height`) with the plot area inside margins for
    /// axis labels, x over `[x0, x1]` and y over `[y0, y1]` widened to nice ticks.
    pub fn new(title: &str, height: f64, (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> Self {
        let plot = Rect::new(38.0, 10.0, WIDTH - 38.0 - 12.0, height - 10.0 - 24.0);
        let (ylo, yhi, yt) = nice_domain(y0, y1, 4);
        let x = Scale::new(x0, x1, plot.x, plot.x + plot.w);
        let y = Scale::new(ylo, yhi, plot.y + plot.h, plot.y);
        let step = if yt.len() > 1 { yt[1] - yt[0] } else { 1.0 };
        let y_ticks = yt
            .iter()
            .map(|&t| Tick {
                pos: y.map(t),
                label_at: plot.x - 4.0,
                label_pos: r1(y.map(t) + 3.5),
                label: tick_label(t, step),
            })
            .collect();
        Frame {
            x,
            y,
            chart: Chart {
                x0: 0.0,
                w: WIDTH,
                h: height,
                title: title.to_string(),
                desc: String::new(),
                plot,
                x_ticks: Vec::new(),
                y_ticks,
                areas: Vec::new(),
                bars: Vec::new(),
                lines: Vec::new(),
                rules: Vec::new(),
                dots: Vec::new(),
                legend: Vec::new(),
                x_label: None,
                y_label: None,
                empty: None,
                cx: r1(WIDTH / 2.0),
                cy: r1(height / 2.0 + 4.0),
            },
        }
    }

    /// x ticks at nice numeric positions.
    pub fn numeric_x_ticks(mut self, n: usize) -> Self {
        let (lo, hi) = self.x.domain();
        let step = nice_step(hi - lo, n);
        let mut t = (lo / step).ceil() * step;
        while t <= hi + step * 1e-9 {
            let v = if t.abs() < step * 1e-9 { 0.0 } else { t };
            self.chart.x_ticks.push(Tick {
                pos: self.x.map(v),
                label_at: r1(self.chart.plot.y2 + 14.0),
                label_pos: self.x.map(v),
                label: tick_label(v, step),
            });
            t += step;
        }
        self
    }

    /// x ticks at given data positions with given labels.
    pub fn x_ticks(mut self, ticks: impl IntoIterator<Item = (f64, String)>) -> Self {
        let (lo, hi) = self.x.domain();
        self.chart.x_ticks = ticks
            .into_iter()
            .filter(|(x, _)| *x >= lo - 1e-9 && *x <= hi + 1e-9)
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(x, label)| Tick {
                pos: self.x.map(x),
                label_at: r1(self.chart.plot.y2 + 14.0),
                label_pos: self.x.map(x),
                label,
            })
            .collect();
        self
    }

    /// A title of the x axis (e.g. its unit) centred below the tick labels; the chart
    /// grows by one line to hold it.
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        let p = self.chart.plot;
        self.chart.h = r1(self.chart.h + 13.0);
        self.chart.x_label = Some(Tick {
            pos: r1(p.x + p.w / 2.0),
            label_at: r1(p.y2 + 28.0),
            label_pos: r1(p.x + p.w / 2.0),
            label: label.into(),
        });
        self
    }

    /// A title of the y axis (what the values are), turned and centred left of the tick
    /// labels; the chart grows leftwards by [`Y_LABEL_WIDTH`] to hold it, so the plot keeps
    /// its place and size.
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        let p = self.chart.plot;
        self.chart.x0 = -Y_LABEL_WIDTH;
        self.chart.w = r1(self.chart.w + Y_LABEL_WIDTH);
        self.chart.y_label = Some(Tick {
            pos: r1(p.y + p.h / 2.0),
            label_at: r1(p.y + p.h / 2.0),
            label_pos: -4.0,
            label: label.into(),
        });
        self
    }

    /// The description of the chart in words.
    pub fn desc(mut self, desc: impl Into<String>) -> Self {
        self.chart.desc = desc.into();
        self
    }

    /// A legend entry.
    pub fn legend(mut self, class: &'static str, label: impl Into<String>) -> Self {
        self.chart.legend.push(Legend {
            class,
            label: label.into(),
        });
        self
    }

    fn path(&self, pts: impl IntoIterator<Item = (f64, f64)>) -> String {
        let mut d = String::new();
        for (i, (x, y)) in pts.into_iter().enumerate() {
            let cmd = if i == 0 { 'M' } else { 'L' };
            d.push(cmd);
            push_point(&mut d, self.x.map(x), self.y.map(y));
        }
        d
    }

    /// A polyline through the finite points, split where a value is missing.
    pub fn line(mut self, pts: &[(f64, Option<f64>)], class: &'static str) -> Self {
        let mut run: Vec<(f64, f64)> = Vec::new();
        let flush = |run: &mut Vec<(f64, f64)>, this: &mut Self| {
            if run.len() >= 2 {
                let d = this.path(run.iter().copied());
                this.chart.lines.push(Shape { d, class });
            }
            run.clear();
        };
        for &(x, y) in pts {
            match y.filter(|v| v.is_finite()) {
                Some(v) => run.push((x, v)),
                None => flush(&mut run, &mut self),
            }
        }
        flush(&mut run, &mut self);
        self
    }

    /// A step function (value holds until the next point), e.g. a Kaplan–Meier curve.
    pub fn steps(mut self, pts: &[(f64, f64)], x_end: f64, class: &'static str) -> Self {
        let mut d = String::new();
        for (i, &(x, y)) in pts.iter().enumerate() {
            let (px, py) = (self.x.map(x), self.y.map(y));
            if i == 0 {
                d.push('M');
                push_point(&mut d, px, py);
            } else {
                d.push('H');
                push_coord(&mut d, px);
                d.push('V');
                push_coord(&mut d, py);
            }
        }
        if !pts.is_empty() {
            d.push('H');
            push_coord(&mut d, self.x.map(x_end));
            self.chart.lines.push(Shape { d, class });
        }
        self
    }

    /// A band between `lo` and `hi` over x (points with a missing bound are skipped).
    pub fn band(mut self, pts: &[(f64, f64, f64)], class: &'static str) -> Self {
        let pts: Vec<_> = pts
            .iter()
            .copied()
            .filter(|(_, lo, hi)| lo.is_finite() && hi.is_finite())
            .collect();
        if pts.len() >= 2 {
            let upper = pts.iter().map(|&(x, _, hi)| (x, hi));
            let lower = pts.iter().rev().map(|&(x, lo, _)| (x, lo));
            let mut d = self.path(upper.chain(lower));
            d.push('Z');
            self.chart.areas.push(Shape { d, class });
        } else if let Some(&(x, lo, hi)) = pts.first() {
            // One point: a vertical whisker.
            let d = self.path([(x, lo), (x, hi)]);
            self.chart.lines.push(Shape {
                d,
                class: "whisker",
            });
        }
        self
    }

    /// Points with tooltips.
    pub fn dots(mut self, pts: &[(f64, f64, String)], r: f64, class: &'static str) -> Self {
        for (x, y, tip) in pts {
            if y.is_finite() {
                self.chart.dots.push(Dot {
                    x: self.x.map(*x),
                    y: self.y.map(*y),
                    r,
                    class,
                    tip: tip.clone(),
                });
            }
        }
        self
    }

    /// A horizontal reference line at `y` with a label at its right end.
    pub fn hrule(mut self, y: f64, class: &'static str, label: impl Into<String>) -> Self {
        if y.is_finite() {
            let p = self.chart.plot;
            let py = self.y.map(y);
            // Label above the line, or below it when the line is near the top.
            let ly = if py - 4.0 < p.y + 9.0 {
                py + 11.0
            } else {
                py - 4.0
            };
            self.chart.rules.push(Rule {
                x1: p.x,
                y1: py,
                x2: p.x2,
                y2: py,
                class,
                label: label.into(),
                lx: r1(p.x2 - 2.0),
                ly: r1(ly),
                anchor: "end",
            });
        }
        self
    }

    /// A vertical reference line at `x` with a label at its top.
    pub fn vrule(mut self, x: f64, class: &'static str, label: impl Into<String>) -> Self {
        if x.is_finite() {
            let p = self.chart.plot;
            let px = self.x.map(x);
            let anchor = if px > p.x + p.w * 0.7 {
                "end"
            } else if px < p.x + p.w * 0.3 {
                "start"
            } else {
                "middle"
            };
            let lx = r1(match anchor {
                "end" => px - 3.0,
                "start" => px + 3.0,
                _ => px,
            });
            self.chart.rules.push(Rule {
                x1: px,
                y1: p.y,
                x2: px,
                y2: p.y2,
                class,
                label: label.into(),
                lx,
                ly: r1(p.y + 9.0),
                anchor,
            });
        }
        self
    }

    /// Vertical bars from y = `base` to each value, centred on x with width `width`
    /// (data units); `stack` = values on top of earlier bars at the same x.
    pub fn bars(
        mut self,
        bars: &[(f64, f64, f64, String)],
        width: f64,
        class: &'static str,
    ) -> Self {
        for (x, base, top, tip) in bars {
            if !(top.is_finite() && base.is_finite()) || top == base {
                continue;
            }
            let x0 = self.x.map(x - width / 2.0);
            let x1 = self.x.map(x + width / 2.0);
            let (y0, y1) = (self.y.map(*base), self.y.map(*top));
            self.chart.bars.push(Bar {
                x: r1(x0 + 0.5),
                y: y0.min(y1),
                w: r1((x1 - x0 - 1.0).max(0.5)),
                h: r1((y0 - y1).abs()),
                class,
                tip: tip.clone(),
            });
        }
        self
    }

    /// The chart.
    pub fn build(self) -> Chart {
        self.chart
    }
}

/// A chart with nothing to draw: it shows `message` instead (still an SVG of
/// the standard size, so the layout does not jump).
pub fn empty_chart(title: &str, message: &str) -> Chart {
    let mut c = Frame::new(title, 80.0, (0.0, 1.0), (0.0, 1.0)).build();
    c.y_ticks.clear();
    c.empty = Some(message.to_string());
    c
}

/// A small trend line without axes (a KPI's weeks).
#[derive(Debug, Clone, PartialEq)]
pub struct Sparkline {
    /// viewBox width.
    pub w: f64,
    /// viewBox height.
    pub h: f64,
    /// Path of the line (empty with fewer than two values).
    pub d: String,
    /// Every point (so weeks without neighbours still show).
    pub points: Vec<(f64, f64)>,
    /// The last point, marked.
    pub last: Option<(f64, f64)>,
    /// Accessible text: the values.
    pub title: String,
}

/// A sparkline of `values` (one per week, `None` = no value that week) on the fixed
/// range `[lo, hi]` (so weeks compare across students), or on the values' own range
/// when `lo >= hi`.
pub fn sparkline(values: &[Option<f64>], lo: f64, hi: f64, title: String) -> Sparkline {
    let (w, h) = (96.0, 24.0);
    let finite: Vec<f64> = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let (lo, hi) = if lo < hi {
        (lo, hi)
    } else {
        let mn = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let mx = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (mn, mx)
    };
    let x = Scale::new(0.0, (values.len().max(2) - 1) as f64, 4.0, w - 4.0);
    let y = Scale::new(lo, hi, h - 4.0, 4.0);
    let mut d = String::new();
    let mut pen_down = false;
    let mut last = None;
    let mut points = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v.filter(|v| v.is_finite()) {
            Some(v) => {
                let (px, py) = (x.map(i as f64), y.map(v));
                d.push(if pen_down { 'L' } else { 'M' });
                push_point(&mut d, px, py);
                pen_down = true;
                last = Some((px, py));
                points.push((px, py));
            }
            None => pen_down = false,
        }
    }
    Sparkline {
        w,
        h,
        d,
        points,
        last,
        title,
    }
}

/// One segment of a [`LevelBand`].
#[derive(Debug, Clone, PartialEq)]
pub struct BandSegment {
    /// Left.
    pub x: f64,
    /// Width.
    pub w: f64,
    /// Centre of the label.
    pub cx: f64,
    /// CSS class (`lvl0` … `lvl4`).
    pub class: String,
    /// Level name.
    pub label: String,
    /// Whether the student is in this level.
    pub current: bool,
}

/// The level band: the θ scale cut into named levels, with the student's θ marked.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelBand {
    /// viewBox width.
    pub w: f64,
    /// viewBox height.
    pub h: f64,
    /// The levels, left to right.
    pub segments: Vec<BandSegment>,
    /// x of the student's θ.
    pub marker: f64,
    /// Accessible text.
    pub title: String,
}

/// A level band: `names.len()` levels cut at `cuts`, drawn as equal-width segments (so
/// every name fits on a phone); the marker sits at θ's place inside its level, the
/// outer levels spanning `[lo, cut₀]` and `[cut_last, hi]` (θ beyond is clamped).
pub fn level_band(
    cuts: &[f64],
    names: &[String],
    theta: f64,
    (lo, hi): (f64, f64),
    title: String,
) -> LevelBand {
    let w = WIDTH;
    let n = names.len().max(1);
    let seg_w = (w - 4.0) / n as f64;
    let mut edges = vec![lo];
    edges.extend(cuts.iter().copied());
    edges.push(hi);
    let level = cuts.partition_point(|c| *c <= theta).min(n - 1);
    let x0 = |i: usize| 2.0 + seg_w * i as f64;
    let segments = names
        .iter()
        .enumerate()
        .map(|(i, name)| BandSegment {
            x: r1(x0(i)),
            w: r1(seg_w),
            cx: r1(x0(i) + seg_w / 2.0),
            class: format!("lvl{i}"),
            label: name.clone(),
            current: i == level,
        })
        .collect();
    let (a, b) = (
        edges.get(level).copied().unwrap_or(lo),
        edges.get(level + 1).copied().unwrap_or(hi),
    );
    let frac = if b > a {
        ((theta - a) / (b - a)).clamp(0.0, 1.0)
    } else {
        0.5
    };
    LevelBand {
        w,
        h: 44.0,
        segments,
        marker: r1(x0(level) + frac * seg_w),
        title,
    }
}

/// A one-row "bullet": a point estimate with its ± SE whisker on a shared scale, and a
/// reference mark (the student's overall θ).
#[derive(Debug, Clone, PartialEq)]
pub struct Bullet {
    /// viewBox width.
    pub w: f64,
    /// viewBox height.
    pub h: f64,
    /// x of the estimate.
    pub x: f64,
    /// x of estimate − SE.
    pub lo: f64,
    /// x of estimate + SE.
    pub hi: f64,
    /// x of the reference mark.
    pub reference: Option<f64>,
    /// x of zero.
    pub zero: f64,
    /// CSS class of the point (e.g. weak or strong).
    pub class: &'static str,
    /// Accessible text.
    pub title: String,
}

/// A bullet on θ ∈ `[lo, hi]`.
pub fn bullet(
    value: f64,
    se: f64,
    reference: Option<f64>,
    (lo, hi): (f64, f64),
    class: &'static str,
    title: String,
) -> Bullet {
    let w = 140.0;
    let x = Scale::new(lo, hi, 4.0, w - 4.0);
    let se = if se.is_finite() { se } else { 0.0 };
    Bullet {
        w,
        h: 18.0,
        x: x.map(value),
        lo: x.map(value - se),
        hi: x.map(value + se),
        reference: reference.filter(|r| r.is_finite()).map(|r| x.map(r)),
        zero: x.map(0.0),
        class,
        title,
    }
}

/// One row of a horizontal bar chart.
#[derive(Debug, Clone, PartialEq)]
pub struct HBar {
    /// Label (left).
    pub label: String,
    /// Value text (right of the bar).
    pub value: String,
    /// Baseline of the row's text.
    pub ty: f64,
    /// Top of the bar.
    pub y: f64,
    /// Bar width.
    pub w: f64,
    /// x of the value text (after the bar).
    pub vx: f64,
    /// Tooltip.
    pub tip: String,
}

/// A horizontal bar chart (categories with long names, e.g. segments).
#[derive(Debug, Clone, PartialEq)]
pub struct HBars {
    /// viewBox width.
    pub w: f64,
    /// viewBox height.
    pub h: f64,
    /// Left of the bars.
    pub x: f64,
    /// Rows.
    pub rows: Vec<HBar>,
    /// Accessible name.
    pub title: String,
}

/// Horizontal bars of `(label, value, value text, tooltip)`, longest label cut to fit.
pub fn hbars(rows: &[(String, f64, String, String)], title: String) -> HBars {
    let (w, row_h) = (WIDTH, 24.0);
    // The same for the value written after the longest bar.
    let longest_value = rows.iter().map(|r| r.2.chars().count()).max().unwrap_or(0);
    let value_w = r1((longest_value as f64 * 6.6 + 8.0).clamp(40.0, 110.0));
    // Room for the longest label (≈ 6.6 px per character at the chart's font size),
    // between 60 and 170 px; only a label longer than that is shortened.
    let longest = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let label_w = r1((longest as f64 * 6.6 + 10.0).clamp(60.0, 170.0));
    let fits = ((label_w - 10.0) / 6.6).floor() as usize;
    let max = rows.iter().map(|r| r.1).fold(0.0, f64::max);
    let span = w - label_w - value_w;
    let out = rows
        .iter()
        .enumerate()
        .map(|(i, (label, v, text, tip))| {
            let top = 4.0 + row_h * i as f64;
            let mut l: String = label.chars().take(fits).collect();
            if label.chars().count() > fits {
                l.pop();
                l.push('\u{2026}');
            }
            let bw = r1(if max > 0.0 {
                (v / max * span).max(1.0)
            } else {
                1.0
            });
            HBar {
                label: l,
                value: text.clone(),
                ty: r1(top + 15.0),
                y: r1(top + 4.0),
                w: bw,
                vx: r1(label_w + bw + 4.0),
                tip: tip.clone(),
            }
        })
        .collect();
    HBars {
        w,
        h: r1(8.0 + row_h * rows.len().max(1) as f64),
        x: label_w,
        rows: out,
        title,
    }
}

/// Counts of `values` in equal bins of `width` starting at `lo` (the last bin closed),
/// values outside `[lo, hi]` clamped into the end bins. Returns bin centres and counts.
pub fn histogram(values: &[f64], lo: f64, hi: f64, width: f64) -> Vec<(f64, usize)> {
    let mut h = Histogram::new(lo, hi, width);
    for v in values {
        h.add(*v);
    }
    h.bins()
}

/// [`histogram`] one value at a time: the counts of a stream of values (a cohort read
/// from the lake in batches) in memory of one counter per bin.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    lo: f64,
    width: f64,
    counts: Vec<usize>,
}

impl Histogram {
    /// Empty bins of `width` from `lo` to `hi` (at least one bin).
    pub fn new(lo: f64, hi: f64, width: f64) -> Self {
        let n = (((hi - lo) / width).round() as usize).max(1);
        Histogram {
            lo,
            width,
            counts: vec![0; n],
        }
    }

    /// Counts `v` in its bin (clamped into the end bins); non-finite values are skipped.
    pub fn add(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        let last = self.counts.len() - 1;
        let k = (((v - self.lo) / self.width).floor().max(0.0) as usize).min(last);
        self.counts[k] += 1;
    }

    /// Bin centres and counts.
    pub fn bins(&self) -> Vec<(f64, usize)> {
        self.counts
            .iter()
            .enumerate()
            .map(|(k, &c)| (self.lo + self.width * (k as f64 + 0.5), c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels and value texts fit: nothing is shortened up to 24 characters, and the
    /// longest bar plus its value text ends inside the chart (6.6 px per character).
    #[test]
    fn hbars_keep_labels_and_values_inside_the_chart() {
        let row = |l: &str, v: f64, text: &str| (l.to_string(), v, text.to_string(), String::new());
        let b = hbars(
            &[
                row("Long gaps", 4580.0, "4580 (46%)"),
                row("Short and frequent", 455.0, "455 (5%)"),
                row("Twenty-four characters!!", 1.0, "1 (0%)"),
            ],
            "segments".into(),
        );
        assert_eq!(b.rows[1].label, "Short and frequent");
        assert_eq!(b.rows[2].label, "Twenty-four characters!!");
        let longest = &b.rows[0];
        assert!(longest.vx + 10.0 * 6.6 <= b.w, "{longest:?} in {}", b.w);
        let long = hbars(&[row(&"x".repeat(60), 1.0, "1")], "t".into());
        assert!(long.rows[0].label.ends_with('\u{2026}') && long.x <= 170.0);
    }

    #[test]
    fn scales_ticks_and_histograms() {
        let s = Scale::new(0.0, 10.0, 0.0, 100.0);
        assert_eq!(s.map(5.0), 50.0);
        assert_eq!(s.map(20.0), 100.0, "clamped");
        let single = Scale::new(2.0, 2.0, 0.0, 100.0);
        assert_eq!(single.map(2.0), 50.0);
        assert_eq!(nice_step(10.0, 5), 2.0);
        assert_eq!(nice_step(0.9, 4), 0.2);
        let (lo, hi, ticks) = nice_domain(-0.73, 1.2, 4);
        assert_eq!((lo, hi), (-1.0, 1.5));
        assert_eq!(ticks, vec![-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]);
        assert_eq!(tick_label(0.5, 0.5), "0.5");
        assert_eq!(tick_label(-0.0, 0.5), "0.0");
        assert_eq!(tick_label(20.0, 10.0), "20");
        assert_eq!(tick_label(-1.5, 0.5), "\u{2212}1.5");
        let h = histogram(&[-5.0, -0.1, 0.0, 0.2, 3.9, 9.0, f64::NAN], -4.0, 4.0, 2.0);
        assert_eq!(
            h,
            vec![(-3.0, 1), (-1.0, 1), (1.0, 2), (3.0, 2)],
            "out-of-range values land in the end bins, NaN is dropped"
        );
    }

    #[test]
    fn lines_split_at_missing_values_and_bands_need_two_points() {
        let f = Frame::new("t", HEIGHT, (0.0, 3.0), (0.0, 1.0))
            .line(
                &[
                    (0.0, Some(0.0)),
                    (1.0, Some(1.0)),
                    (2.0, None),
                    (3.0, Some(0.5)),
                ],
                "l",
            )
            .band(&[(0.0, 0.0, 1.0)], "b")
            .build();
        assert_eq!(f.lines.len(), 2, "one run of two points plus a whisker");
        assert!(f.lines[0].d.starts_with('M'));
        assert_eq!(f.lines[1].class, "whisker");
        assert!(f.areas.is_empty());
        let s = sparkline(
            &[Some(0.1), None, Some(0.3), Some(0.2)],
            0.0,
            1.0,
            "x".into(),
        );
        assert_eq!(s.d.matches('M').count(), 2);
        assert!(s.last.is_some());
        let empty = sparkline(&[None, None], 0.0, 1.0, "x".into());
        assert!(empty.d.is_empty() && empty.last.is_none());
    }

    #[test]
    fn level_band_marks_the_level_of_theta() {
        let names: Vec<String> = (0..5).map(|i| format!("L{i}")).collect();
        let b = level_band(
            &[-1.5, -0.5, 0.5, 1.5],
            &names,
            0.7,
            (-3.0, 3.0),
            "t".into(),
        );
        let current: Vec<_> = b.segments.iter().filter(|s| s.current).collect();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0].label, "L3");
        // 0.7 is 20% into [0.5, 1.5): the fourth of five equal segments.
        let seg = current[0];
        assert!(
            (b.marker - (seg.x + 0.2 * seg.w)).abs() < 0.2,
            "{}",
            b.marker
        );
        let low = level_band(
            &[-1.5, -0.5, 0.5, 1.5],
            &names,
            -9.0,
            (-3.0, 3.0),
            "t".into(),
        );
        assert_eq!(low.marker, 2.0, "clamped to the left edge");
    }
}
