//! SVG markup of the charts built in [`crate::charts`], written straight into a
//! `String`.
//!
//! A chart reaches the templates as two values: its `title` (text, escaped by the
//! template like every other value) and its `svg`, markup the template prints with
//! `|safe`. Every piece of text inside the markup (titles, descriptions, tick labels,
//! tooltips, classes) is escaped here with the template engine's own HTML escaping
//! ([`minijinja::HtmlEscape`]), so an id or topic named `<script>…` reads as text in
//! the SVG exactly as it does in the HTML around it. Numbers are written as the
//! template engine prints a float (`12.0`, `-3.5`), so the markup is byte for byte
//! what the former template macros produced.
//!
//! Charts were drawn by template macros, which walk a chart's geometry as dynamic
//! values, one lookup per attribute; writing the markup from the structs took the
//! demo's render phase from ~600 to ~350 ms (2,359 reports, same bytes).

use std::fmt::{self, Write};

// Text HTML-escaped (`<`, `>`, `&`, `"`, `'`, `/`) as the templates escape it.
use minijinja::HtmlEscape as Esc;
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::charts::{Bullet, Chart, HBars, LevelBand, Sparkline};

/// Appends `x` as Rust's `Display` writes an `f64` (`12`, `-3.5`): SVG path data.
pub fn push_coord(out: &mut String, x: f64) {
    let _ = write_float(out, x, false);
}

/// An `f64` displayed as the template engine prints a float: `Display`, with `.0` added
/// to a whole number (`12.0`), `NaN`, `inf`, `-inf`.
struct Num(f64);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_float(f, self.0, true)
    }
}

/// Writes `x` as `Display` does, with `.0` after a whole number when `whole_gets_point`
/// (`Display` never uses an exponent, so a finite whole number is the only output without
/// a point).
fn write_float(out: &mut impl fmt::Write, x: f64, whole_gets_point: bool) -> fmt::Result {
    write!(out, "{x}")?;
    if whole_gets_point && x.is_finite() && x.fract() == 0.0 {
        out.write_str(".0")?;
    }
    Ok(())
}

/// A chart that writes its own SVG markup (a `<figure>` for the full-size charts).
pub trait Markup {
    /// Appends the markup to `o`.
    fn write_svg(&self, o: &mut String) -> fmt::Result;

    /// The markup.
    fn svg(&self) -> String {
        let mut o = String::with_capacity(2048);
        let _ = self.write_svg(&mut o);
        o
    }
}

const SVG_NS: &str = r#"role="img" xmlns="http://www.w3.org/2000/svg""#;

impl Markup for Chart {
    fn write_svg(&self, o: &mut String) -> fmt::Result {
        write!(
            o,
            r#"<figure class="fig">
<svg class="chart" viewBox="{} 0 {} {}" {SVG_NS}><title>{}</title><desc>{}</desc>"#,
            Num(self.x0),
            Num(self.w),
            Num(self.h),
            Esc(&self.title),
            Esc(&self.desc)
        )?;
        if let Some(message) = self.empty.as_deref().filter(|e| !e.is_empty()) {
            write!(
                o,
                r#"<rect class="emptybg" x="0" y="0" width="{}" height="{}" rx="6"/><text class="emptytxt" x="{}" y="{}" text-anchor="middle">{}</text>"#,
                Num(self.w),
                Num(self.h),
                Num(self.cx),
                Num(self.cy),
                Esc(message)
            )?;
        } else {
            self.write_plot(o)?;
        }
        o.push_str("</svg>\n");
        if !self.legend.is_empty() {
            o.push_str(r#"<ul class="legend">"#);
            for l in &self.legend {
                write!(
                    o,
                    r#"<li><span class="sw sw-{}"></span>{}</li>"#,
                    Esc(l.class),
                    Esc(&l.label)
                )?;
            }
            o.push_str("</ul>");
        }
        o.push_str("\n</figure>");
        Ok(())
    }
}

impl Chart {
    /// Grid, axes, their labels, then areas, bars, lines, rules and dots (in that order,
    /// so the points are on top).
    fn write_plot(&self, o: &mut String) -> fmt::Result {
        let p = &self.plot;
        let (x, x2, y2) = (Num(p.x), Num(p.x2), Num(p.y2));
        for t in &self.y_ticks {
            write!(
                o,
                r#"<line class="grid" x1="{x}" x2="{x2}" y1="{pos}" y2="{pos}"/><text x="{}" y="{}" text-anchor="end">{}</text>"#,
                Num(t.label_at),
                Num(t.label_pos),
                Esc(&t.label),
                pos = Num(t.pos),
            )?;
        }
        write!(
            o,
            r#"<line class="axis" x1="{x}" x2="{x2}" y1="{y2}" y2="{y2}"/>"#
        )?;
        for t in &self.x_ticks {
            write!(
                o,
                r#"<line class="axis" x1="{pos}" x2="{pos}" y1="{y2}" y2="{}"/><text x="{}" y="{}" text-anchor="middle">{}</text>"#,
                Num(p.y2 + 3.0),
                Num(t.label_pos),
                Num(t.label_at),
                Esc(&t.label),
                pos = Num(t.pos),
            )?;
        }
        if let Some(l) = &self.x_label {
            write!(
                o,
                r#"<text class="axislabel" x="{}" y="{}" text-anchor="middle">{}</text>"#,
                Num(l.label_pos),
                Num(l.label_at),
                Esc(&l.label)
            )?;
        }
        if let Some(l) = &self.y_label {
            write!(
                o,
                r#"<text class="axislabel" x="{lx}" y="{ly}" transform="rotate(-90 {lx} {ly})" text-anchor="middle">{}</text>"#,
                Esc(&l.label),
                lx = Num(l.label_pos),
                ly = Num(l.label_at),
            )?;
        }
        for a in &self.areas {
            write!(o, r#"<path class="{}" d="{}"/>"#, Esc(a.class), Esc(&a.d))?;
        }
        for b in &self.bars {
            write!(
                o,
                r#"<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>"#,
                Esc(b.class),
                Num(b.x),
                Num(b.y),
                Num(b.w),
                Num(b.h),
                Esc(&b.tip)
            )?;
        }
        for l in &self.lines {
            write!(o, r#"<path class="{}" d="{}"/>"#, Esc(l.class), Esc(&l.d))?;
        }
        for r in &self.rules {
            write!(
                o,
                r#"<line class="{}" x1="{}" y1="{}" x2="{}" y2="{}"/>"#,
                Esc(r.class),
                Num(r.x1),
                Num(r.y1),
                Num(r.x2),
                Num(r.y2)
            )?;
            if !r.label.is_empty() {
                write!(
                    o,
                    r#"<text class="{}" x="{}" y="{}" text-anchor="{}">{}</text>"#,
                    Esc(r.class),
                    Num(r.lx),
                    Num(r.ly),
                    Esc(r.anchor),
                    Esc(&r.label)
                )?;
            }
        }
        for d in &self.dots {
            write!(
                o,
                r#"<circle class="{}" cx="{}" cy="{}" r="{}"><title>{}</title></circle>"#,
                Esc(d.class),
                Num(d.x),
                Num(d.y),
                Num(d.r),
                Esc(&d.tip)
            )?;
        }
        Ok(())
    }
}

impl Markup for Sparkline {
    fn write_svg(&self, o: &mut String) -> fmt::Result {
        write!(
            o,
            r#"<svg class="spark" viewBox="0 0 {w} {}" {SVG_NS}><title>{}</title><line class="base" x1="0" x2="{w}" y1="{base}" y2="{base}"/>"#,
            Num(self.h),
            Esc(&self.title),
            w = Num(self.w),
            base = Num(self.h - 0.5),
        )?;
        if !self.d.is_empty() {
            write!(o, r#"<path d="{}"/>"#, Esc(&self.d))?;
        }
        for &(x, y) in &self.points {
            write!(o, r#"<circle cx="{}" cy="{}" r="2"/>"#, Num(x), Num(y))?;
        }
        if let Some((x, y)) = self.last {
            write!(o, r#"<circle cx="{}" cy="{}" r="3.2"/>"#, Num(x), Num(y))?;
        }
        o.push_str("</svg>");
        Ok(())
    }
}

impl Markup for LevelBand {
    fn write_svg(&self, o: &mut String) -> fmt::Result {
        write!(
            o,
            r#"<svg class="band" viewBox="0 0 {} {}" {SVG_NS}><title>{}</title>"#,
            Num(self.w),
            Num(self.h),
            Esc(&self.title)
        )?;
        for g in &self.segments {
            write!(
                o,
                r#"<rect class="{}" x="{}" y="14" width="{}" height="16"/><text x="{}" y="42" text-anchor="middle"{}>{}</text>"#,
                Esc(&g.class),
                Num(g.x),
                Num(g.w),
                Num(g.cx),
                if g.current { r#" class="cur""# } else { "" },
                Esc(&g.label)
            )?;
        }
        write!(
            o,
            r##"<path class="marker" d="M{m} 13l-5-9h10z"/><line class="marker" x1="{m}" x2="{m}" y1="13" y2="31" stroke="#111" stroke-width="2"/>
</svg>"##,
            m = Num(self.marker)
        )
    }
}

impl Markup for Bullet {
    fn write_svg(&self, o: &mut String) -> fmt::Result {
        write!(
            o,
            r#"<svg class="bullet" viewBox="0 0 {} {}" {SVG_NS}><title>{}</title><line class="track" x1="4" x2="{}" y1="9" y2="9"/><line class="zero" x1="{zero}" x2="{zero}" y1="3" y2="15"/><line class="se" x1="{}" x2="{}" y1="9" y2="9"/>"#,
            Num(self.w),
            Num(self.h),
            Esc(&self.title),
            Num(self.w - 4.0),
            Num(self.lo),
            Num(self.hi),
            zero = Num(self.zero),
        )?;
        if let Some(r) = self.reference {
            write!(
                o,
                r#"<line class="ref" x1="{r}" x2="{r}" y1="2" y2="16"/>"#,
                r = Num(r)
            )?;
        }
        write!(
            o,
            r#"<circle class="{}" cx="{}" cy="9" r="4"/></svg>"#,
            Esc(self.class),
            Num(self.x)
        )
    }
}

impl Markup for HBars {
    fn write_svg(&self, o: &mut String) -> fmt::Result {
        write!(
            o,
            r#"<figure class="fig">
<svg class="chart" viewBox="0 0 {} {}" {SVG_NS}><title>{}</title>"#,
            Num(self.w),
            Num(self.h),
            Esc(&self.title)
        )?;
        for r in &self.rows {
            write!(
                o,
                r#"<text x="{}" y="{ty}" text-anchor="end">{}</text><rect class="bar" x="{}" y="{}" width="{}" height="14"><title>{}</title></rect><text x="{}" y="{ty}">{}</text>"#,
                Num(self.x - 6.0),
                Esc(&r.label),
                Num(self.x),
                Num(r.y),
                Num(r.w),
                Esc(&r.tip),
                Num(r.vx),
                Esc(&r.value),
                ty = Num(r.ty),
            )?;
        }
        o.push_str("</svg>\n</figure>");
        Ok(())
    }
}

/// Serializes a chart for the templates as `{title, svg}`.
fn serialize_chart<S: Serializer>(title: &str, svg: String, s: S) -> Result<S::Ok, S::Error> {
    let mut st = s.serialize_struct("Chart", 2)?;
    st.serialize_field("title", title)?;
    st.serialize_field("svg", &svg)?;
    st.end()
}

macro_rules! serialize_as_svg {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serialize_chart(&self.title, self.svg(), s)
            }
        }
    )*};
}

serialize_as_svg!(Chart, Sparkline, LevelBand, Bullet, HBars);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_the_template_engine_prints_them() {
        // Every tenth over the chart range, both signs, and values off the tenths grid.
        let mut xs: Vec<f64> = (-20_000..=20_000).map(|k| k as f64 / 10.0).collect();
        xs.extend([
            -0.0,
            0.05,
            1.25,
            1e-7,
            -2.5e-9,
            123456.789,
            1e15,
            3.2e20,
            1e300,
            f64::MIN_POSITIVE,
        ]);
        xs.extend((0..2000).map(|k| (k as f64 * 0.37).sin() * 400.0));
        for x in xs {
            let display = format!("{x}");
            let mut coord = String::new();
            push_coord(&mut coord, x);
            assert_eq!(coord, display, "{x:e}");
            assert_eq!(
                Num(x).to_string(),
                minijinja::Value::from(x).to_string(),
                "{x:e}"
            );
        }
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(Num(x).to_string(), minijinja::Value::from(x).to_string());
        }
    }

    #[test]
    fn text_in_the_markup_is_escaped() {
        let b = crate::charts::bullet(
            0.2,
            0.3,
            None,
            (-3.0, 3.0),
            "weak",
            "<a href='/x'>&\"".into(),
        );
        let svg = b.svg();
        assert!(
            svg.contains("<title>&lt;a href=&#x27;&#x2f;x&#x27;&gt;&amp;&quot;</title>"),
            "{svg}"
        );
        assert!(!svg.contains("<a"));
    }
}
