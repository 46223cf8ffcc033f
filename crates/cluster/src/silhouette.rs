//! The silhouette coefficient (Rousseeuw 1987) of a clustering: exact from the rows, from a
//! distance matrix computed once for every k that automatic k tries, or simplified (distances
//! to the centres, linear in the rows) for tables of thousands of windows.

use crate::kmeans::distance;

/// Silhouette of every row (Rousseeuw 1987): `(b - a) / max(a, b)`, where `a` is the mean
/// distance to the other members of its cluster and `b` the lowest mean distance to the
/// members of another cluster. A row alone in its cluster scores 0, as does every row when
/// there is a single cluster.
pub fn silhouettes(rows: &[Vec<f64>], labels: &[usize]) -> Vec<f64> {
    silhouettes_by(rows.len(), labels, |i, j| distance(&rows[i], &rows[j]))
}

/// The distances between every pair of `rows` (the lower triangle, row by row): computed once,
/// they serve the silhouette of every k tried.
pub struct Distances {
    n: usize,
    lower: Vec<f64>,
}

impl Distances {
    pub fn new(rows: &[Vec<f64>]) -> Distances {
        let n = rows.len();
        let mut lower = Vec::with_capacity(n * n.saturating_sub(1) / 2);
        for i in 1..n {
            for j in 0..i {
                lower.push(distance(&rows[i], &rows[j]));
            }
        }
        Distances { n, lower }
    }

    pub fn get(&self, i: usize, j: usize) -> f64 {
        let (a, b) = if i > j { (i, j) } else { (j, i) };
        if a == b {
            0.0
        } else {
            self.lower[a * (a - 1) / 2 + b]
        }
    }

    /// [`silhouettes`] of `labels` over these rows.
    pub fn silhouettes(&self, labels: &[usize]) -> Vec<f64> {
        silhouettes_by(self.n, labels, |i, j| self.get(i, j))
    }
}

/// The simplified silhouette (Hruschka, Campello & de Castro 2004) of every row: `a` is the
/// distance to its own centre and `b` to the nearest other one. Linear in the rows, where the
/// silhouette is quadratic: what a report of thousands of windows shows per member.
pub fn simplified_silhouettes(
    rows: &[Vec<f64>],
    labels: &[usize],
    centroids: &[Vec<f64>],
) -> Vec<f64> {
    let k = centroids.len();
    let sizes = cluster_sizes(labels, k);
    rows.iter()
        .zip(labels)
        .map(|(r, &own)| {
            if k < 2 || sizes[own] < 2 {
                return 0.0;
            }
            let a = distance(r, &centroids[own]);
            let b = (0..k)
                .filter(|&c| c != own && sizes[c] > 0)
                .map(|c| distance(r, &centroids[c]))
                .fold(f64::INFINITY, f64::min);
            score(a, b)
        })
        .collect()
}

fn silhouettes_by(n: usize, labels: &[usize], dist: impl Fn(usize, usize) -> f64) -> Vec<f64> {
    let k = labels.iter().copied().max().map_or(0, |m| m + 1);
    let sizes = cluster_sizes(labels, k);
    (0..n)
        .map(|i| {
            let own = labels[i];
            if k < 2 || sizes[own] < 2 {
                return 0.0;
            }
            let mut sums = vec![0.0; k];
            for j in 0..n {
                if j != i {
                    sums[labels[j]] += dist(i, j);
                }
            }
            let a = sums[own] / (sizes[own] - 1) as f64;
            let b = (0..k)
                .filter(|&c| c != own && sizes[c] > 0)
                .map(|c| sums[c] / sizes[c] as f64)
                .fold(f64::INFINITY, f64::min);
            score(a, b)
        })
        .collect()
}

/// Members per cluster, for `k` clusters.
fn cluster_sizes(labels: &[usize], k: usize) -> Vec<usize> {
    let mut sizes = vec![0usize; k];
    for &l in labels {
        sizes[l] += 1;
    }
    sizes
}

/// A member's silhouette from `a`, its distance to its own cluster, and `b`, to the nearest
/// other (0 when there is none, or when both are 0).
fn score(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m <= 0.0 || !b.is_finite() {
        0.0
    } else {
        (b - a) / m
    }
}
