//! A 2-D picture of a clustering: the normalised rows projected on their first two
//! principal components (power iteration on the covariance matrix), drawn as SVG, one
//! colour per cluster, each point labelled.

use std::fmt::Write as _;

use crate::table::FeatureTable;
use crate::ClusterReport;

/// The first `n` principal axes of `rows` (unit vectors, by decreasing variance) and the
/// variance along each. Deterministic: power iteration from a fixed start, with deflation.
pub fn principal_axes(rows: &[Vec<f64>], n: usize) -> Vec<(Vec<f64>, f64)> {
    let dim = rows.first().map_or(0, |r| r.len());
    if dim == 0 {
        return Vec::new();
    }
    let m = rows.len() as f64;
    let mut mean = vec![0.0; dim];
    for r in rows {
        for (a, x) in mean.iter_mut().zip(r) {
            *a += x / m;
        }
    }
    let mut cov = vec![vec![0.0; dim]; dim];
    for r in rows {
        for i in 0..dim {
            let di = r[i] - mean[i];
            for j in 0..dim {
                cov[i][j] += di * (r[j] - mean[j]) / m;
            }
        }
    }
    let mut axes = Vec::new();
    for axis in 0..n.min(dim) {
        // Start away from any earlier axis: a fixed, non-symmetric vector.
        let mut v: Vec<f64> = (0..dim)
            .map(|i| 1.0 + ((i + axis) % 7) as f64 * 0.1)
            .collect();
        let mut lambda = 0.0;
        for _ in 0..500 {
            let w: Vec<f64> = (0..dim)
                .map(|i| (0..dim).map(|j| cov[i][j] * v[j]).sum())
                .collect();
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm < 1e-300 {
                lambda = 0.0;
                break;
            }
            let next: Vec<f64> = w.iter().map(|x| x / norm).collect();
            let delta: f64 = next.iter().zip(&v).map(|(a, b)| (a - b).abs()).sum();
            v = next;
            lambda = norm;
            if delta < 1e-12 {
                break;
            }
        }
        // Deflate: remove this axis' variance so the next iteration finds the next axis.
        for i in 0..dim {
            for j in 0..dim {
                cov[i][j] -= lambda * v[i] * v[j];
            }
        }
        axes.push((v, lambda));
    }
    axes
}

fn project(rows: &[Vec<f64>]) -> Vec<(f64, f64)> {
    let axes = principal_axes(rows, 2);
    let dim = rows.first().map_or(0, |r| r.len());
    let m = rows.len().max(1) as f64;
    let mean: Vec<f64> = (0..dim)
        .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / m)
        .collect();
    rows.iter()
        .map(|r| {
            let coord = |k: usize| {
                axes.get(k).map_or(0.0, |(a, _)| {
                    a.iter()
                        .zip(r)
                        .zip(&mean)
                        .map(|((a, x), mu)| a * (x - mu))
                        .sum()
                })
            };
            (coord(0), coord(1))
        })
        .collect()
}

const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// SVG of the clustering. `normalised` are the rows as clustered (same order as the table).
pub fn svg(table: &FeatureTable, normalised: &[Vec<f64>], report: &ClusterReport) -> String {
    let (w, h, margin, legend_w) = (900.0, 600.0, 50.0, 260.0);
    let points = project(normalised);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in &points {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    let span = |a: f64, b: f64| if b - a > 1e-12 { b - a } else { 1.0 };
    let plot_w = w - legend_w - 2.0 * margin;
    let plot_h = h - 2.0 * margin;
    let sx = |x: f64| margin + (x - x0) / span(x0, x1) * plot_w;
    let sy = |y: f64| h - margin - (y - y0) / span(y0, y1) * plot_h;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{margin}" y="25" font-size="15">VM workload clusters ({} level, {} normalisation): first two principal components</text>"#,
        report.level.name(),
        report.normalization
    );
    let _ = writeln!(
        s,
        r##"<rect x="{margin}" y="{margin}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">PC1</text>"#,
        margin + plot_w / 2.0,
        h - 15.0
    );
    let _ = writeln!(
        s,
        r#"<text x="15" y="{}" transform="rotate(-90 15 {})" text-anchor="middle">PC2</text>"#,
        h / 2.0,
        h / 2.0
    );
    for (i, (x, y)) in points.iter().enumerate() {
        let c = report.labels.get(i).copied().unwrap_or(0);
        let colour = PALETTE[c % PALETTE.len()];
        let label = escape(&table.rows[i].key.label());
        let _ = writeln!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="6" fill="{colour}" fill-opacity="0.8"><title>{label} ({})</title></circle>"#,
            sx(*x),
            sy(*y),
            escape(&table.rows[i].key.trace)
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{label}</text>"#,
            sx(*x) + 8.0,
            sy(*y) - 6.0
        );
    }
    let lx = w - legend_w;
    for c in &report.clusters {
        let y = margin + 20.0 + 22.0 * c.id as f64;
        let colour = PALETTE[c.id % PALETTE.len()];
        let _ = writeln!(
            s,
            r#"<circle cx="{}" cy="{y}" r="6" fill="{colour}"/><text x="{}" y="{}">cluster {}: {} ({} members)</text>"#,
            lx + 10.0,
            lx + 22.0,
            y + 4.0,
            c.id,
            c.name,
            c.members.len()
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_axis_of_a_line_is_the_line() {
        // Points along (1, 1) with a little spread across: PC1 ≈ (1, 1)/√2.
        // Each t twice, once on each side, so the spread is uncorrelated with t.
        let rows: Vec<Vec<f64>> = (0..20)
            .flat_map(|i| {
                let t = i as f64;
                [vec![t + 0.1, t - 0.1], vec![t - 0.1, t + 0.1]]
            })
            .collect();
        let axes = principal_axes(&rows, 2);
        let (a, l1) = &axes[0];
        let r = std::f64::consts::FRAC_1_SQRT_2;
        assert!(
            (a[0].abs() - r).abs() < 1e-6 && (a[1].abs() - r).abs() < 1e-6,
            "{a:?}"
        );
        assert!(a[0] * a[1] > 0.0);
        // Variance along (1,1)/√2 of t√2 for t = 0..19: 2 · var(t) = 2 · 33.25.
        assert!((l1 - 66.5).abs() < 1e-6, "{l1}");
        let (b, l2) = &axes[1];
        assert!((a[0] * b[0] + a[1] * b[1]).abs() < 1e-6, "axes orthogonal");
        assert!((l2 - 0.02).abs() < 1e-6, "{l2}");
    }
}
