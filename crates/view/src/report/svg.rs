//! The report's charts, as inline SVG written by hand (the report has no script): values over
//! time as step lines on a time axis, bands of named spans (phases), and strips of coloured
//! pieces (a critical path). Each chart sits in a box that scrolls sideways rather than widen
//! the page, and keeps its labels inside itself.

use std::fmt::Write as _;

use super::{duration, escape};

/// Left margin (value labels), plot width and right margin, in SVG pixels.
const LEFT: f64 = 70.0;
const PLOT: f64 = 900.0;
const RIGHT: f64 = 12.0;

/// One series: a value per bucket, bucket `i` covering `[start + i × step, start + (i+1) × step)`.
pub struct Line<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub values: &'a [f64],
    pub start: i64,
    pub step: i64,
}

pub struct Chart<'a> {
    /// What the chart shows, for screen readers.
    pub label: &'a str,
    /// The time axis: `[from, to)`, on the lines' time base; labels count from `from`.
    pub span: (i64, i64),
    /// A value as the axis labels it.
    pub unit: &'a dyn Fn(f64) -> String,
    /// A horizontal line to compare with (`3 pCPUs`).
    pub reference: Option<(f64, String)>,
    pub lines: Vec<Line<'a>>,
}

fn x_of(t: i64, (from, to): (i64, i64)) -> f64 {
    LEFT + (t - from) as f64 / (to - from).max(1) as f64 * PLOT
}

/// Ticks along the time axis: five, labelled right of the tick but for the last, which ends at
/// it so that it stays inside the chart.
fn time_axis(h: &mut String, span: (i64, i64), top: f64, bottom: f64) {
    for k in 0..=5 {
        let t = span.0 + (span.1 - span.0) * k / 5;
        let x = x_of(t, span);
        let (at, anchor) = if k == 5 {
            (x - 2.0, "end")
        } else {
            (x + 2.0, "start")
        };
        let _ = writeln!(
            h,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top:.1}\" y2=\"{bottom:.1}\" stroke=\"#e4e4e4\"/><text x=\"{at:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            bottom + 13.0,
            escape(&duration((t - span.0) as u64))
        );
    }
}

/// A chart of step lines over time, with a legend of its lines below it.
pub fn line_chart(h: &mut String, c: &Chart) {
    let (top, plot_h) = (10.0, 150.0);
    let bottom = top + plot_h;
    let max = c
        .lines
        .iter()
        .flat_map(|l| l.values.iter().copied())
        .chain(c.reference.as_ref().map(|r| r.0))
        .fold(0.0f64, f64::max);
    let y_max = if max > 0.0 { max * 1.1 } else { 1.0 };
    let y_of = |v: f64| bottom - v / y_max * plot_h;
    let _ = writeln!(
        h,
        "<div class=\"scroll\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{}\">",
        LEFT + PLOT + RIGHT,
        bottom + 20.0,
        escape(c.label)
    );
    for k in 0..=4 {
        let v = y_max * k as f64 / 4.0;
        let y = y_of(v);
        let _ = writeln!(
            h,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT + PLOT,
            LEFT - 4.0,
            y + 4.0,
            escape(&(c.unit)(v))
        );
    }
    time_axis(h, c.span, top, bottom);
    if let Some((v, label)) = &c.reference {
        let y = y_of(*v);
        let _ = writeln!(
            h,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#222\" stroke-dasharray=\"5 3\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT + PLOT,
            LEFT + PLOT - 4.0,
            y - 4.0,
            escape(label)
        );
    }
    for line in &c.lines {
        let mut points = String::new();
        for (i, &v) in line.values.iter().enumerate() {
            let a = line.start + i as i64 * line.step;
            let b = a + line.step;
            if b <= c.span.0 || a >= c.span.1 {
                continue;
            }
            let (xa, xb) = (x_of(a.max(c.span.0), c.span), x_of(b.min(c.span.1), c.span));
            let _ = write!(points, "{xa:.1},{0:.1} {xb:.1},{0:.1} ", y_of(v));
        }
        let _ = writeln!(
            h,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"><title>{}</title></polyline>",
            line.color,
            points.trim_end(),
            escape(line.name)
        );
    }
    h.push_str("</svg></div>\n<p class=\"legend\">");
    for line in &c.lines {
        let _ = write!(
            h,
            "<span><i class=\"sw\" style=\"background:{}\"></i>{}</span>",
            line.color,
            escape(line.name)
        );
    }
    h.push_str("</p>\n");
}

/// One named span of a band.
pub struct Span<'a> {
    pub start: i64,
    pub end: i64,
    pub name: &'a str,
    pub color: &'a str,
}

/// Rows of bands on one time axis: each row a label and its spans, named inside when they
/// are wide enough, and on hover.
pub fn bands(h: &mut String, label: &str, span: (i64, i64), rows: &[(String, Vec<Span>)]) {
    let row_h = 22.0;
    let bottom = 6.0 + row_h * rows.len() as f64;
    let _ = writeln!(
        h,
        "<div class=\"scroll\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{}\">",
        LEFT + PLOT + RIGHT,
        bottom + 20.0,
        escape(label)
    );
    time_axis(h, span, 0.0, bottom);
    for (r, (name, spans)) in rows.iter().enumerate() {
        let y = 4.0 + row_h * r as f64;
        let _ = writeln!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 4.0,
            y + 14.0,
            escape(name)
        );
        for s in spans {
            let (a, b) = (
                x_of(s.start.max(span.0), span),
                x_of(s.end.min(span.1), span),
            );
            if b <= a {
                continue;
            }
            let _ = writeln!(
                h,
                "<rect class=\"phase\" x=\"{a:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {} to {}</title></rect>",
                b - a,
                row_h - 4.0,
                s.color,
                escape(s.name),
                duration((s.start - span.0).max(0) as u64),
                duration((s.end - span.0).max(0) as u64)
            );
            // Roughly 6.5 px per character of the 11 px font.
            if b - a > 6.5 * s.name.chars().count() as f64 + 8.0 {
                let _ = writeln!(
                    h,
                    "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                    a + 4.0,
                    y + 13.0,
                    escape(s.name)
                );
            }
        }
    }
    h.push_str("</svg></div>\n");
}

/// A strip of pieces over `span`: each a colour and what its hover says.
pub fn strip(h: &mut String, label: &str, span: (i64, i64), pieces: &[(i64, i64, &str, String)]) {
    let _ = write!(
        h,
        "<div class=\"scroll\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"18\" role=\"img\" aria-label=\"{}\">",
        LEFT + PLOT + RIGHT,
        escape(label)
    );
    for (s, e, color, title) in pieces {
        let (a, b) = (x_of(*s, span), x_of(*e, span));
        let _ = write!(
            h,
            "<rect x=\"{a:.2}\" y=\"2\" width=\"{:.2}\" height=\"14\" fill=\"{color}\"><title>{}</title></rect>",
            (b - a).max(0.5),
            escape(title)
        );
    }
    h.push_str("</svg></div>\n");
}
