//! k-means (Lloyd's iterations) with k-means++ seeding and restarts, and the choice of k by
//! silhouette ([`crate::silhouette`]).
//!
//! Tables of time windows reach tens of thousands of rows, where restarts and the silhouette's
//! all-pairs distances would cost seconds. Above [`SAMPLE_ROWS`] rows, the seedings, restarts
//! and the choice of k run on an evenly strided sample of the rows (deterministic, and spread
//! over every VM and all of the time, since the rows come grouped by VM in time order); the
//! chosen centres are then refined by Lloyd's iterations over every row. Below it, every row
//! takes part, as before.
//!
//! Hand-written rather than taken from `linfa-clustering`: the tables here have tens to
//! thousands of rows and a few dozen columns, the algorithm is ~150 lines, and the crate
//! would bring `ndarray` and `linfa` into the build for it. Determinism comes from
//! [`SplitMix64`], seeded by the caller: the same table and seed give the same clusters on
//! every platform.

/// A small, well-known PRNG (Steele, Lea & Flood's SplitMix64): deterministic, portable,
/// and good enough to draw k-means++ seeds.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, from the top 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

pub fn distance(a: &[f64], b: &[f64]) -> f64 {
    squared_distance(a, b).sqrt()
}

/// Rows above which k-means' restarts and automatic k work on a sample (see the module's
/// overview).
pub const SAMPLE_ROWS: usize = 1500;

pub use crate::silhouette::{silhouettes, simplified_silhouettes, Distances};

/// Indices of an evenly strided sample of `n` rows, at most `max` of them (every row when
/// `n <= max`).
pub fn sample_indices(n: usize, max: usize) -> Vec<usize> {
    if n <= max {
        return (0..n).collect();
    }
    (0..max).map(|i| i * n / max).collect()
}

/// Parameters of one k-means run.
#[derive(Clone, Debug)]
pub struct KMeans {
    pub k: usize,
    /// Independent k-means++ seedings; the run with the lowest inertia wins.
    pub restarts: usize,
    pub max_iterations: usize,
    pub seed: u64,
}

/// The result of [`KMeans::fit`].
#[derive(Clone, Debug, PartialEq)]
pub struct Clustering {
    /// Cluster index of each row, in `0..k`. Clusters are numbered by their first member, so
    /// equal partitions have equal labels.
    pub labels: Vec<usize>,
    pub centroids: Vec<Vec<f64>>,
    /// Sum of squared distances of the rows to their centroid.
    pub inertia: f64,
}

impl KMeans {
    pub fn new(k: usize, seed: u64) -> Self {
        KMeans {
            k,
            restarts: 10,
            max_iterations: 300,
            seed,
        }
    }

    /// Clusters `rows` (all of the same length). `k` is clamped to `1..=rows.len()`. Above
    /// [`SAMPLE_ROWS`] rows, the restarts run on a sample and the best centres are refined
    /// over every row.
    pub fn fit(&self, rows: &[Vec<f64>]) -> Clustering {
        if rows.is_empty() {
            return Clustering {
                labels: Vec::new(),
                centroids: Vec::new(),
                inertia: 0.0,
            };
        }
        if rows.len() > SAMPLE_ROWS {
            let sample: Vec<Vec<f64>> = sample_indices(rows.len(), SAMPLE_ROWS)
                .into_iter()
                .map(|i| rows[i].clone())
                .collect();
            let on_sample = self.fit(&sample);
            return refine(rows, on_sample.centroids, self.max_iterations);
        }
        let k = self.k.clamp(1, rows.len());
        let mut rng = SplitMix64::new(self.seed);
        let mut best: Option<Clustering> = None;
        for _ in 0..self.restarts.max(1) {
            let seeds = kmeans_plus_plus(rows, k, &mut rng);
            let run = lloyd(rows, seeds, self.max_iterations);
            // Strictly lower only: ties keep the earlier restart, for determinism.
            if best
                .as_ref()
                .is_none_or(|b| run.inertia < b.inertia - 1e-12)
            {
                best = Some(run);
            }
        }
        canonical(best.expect("at least one restart"))
    }
}

/// k-means++ (Arthur & Vassilvitskii 2007): the first centre uniformly, each next one with
/// probability proportional to its squared distance to the nearest centre chosen so far.
pub fn kmeans_plus_plus(rows: &[Vec<f64>], k: usize, rng: &mut SplitMix64) -> Vec<Vec<f64>> {
    let n = rows.len();
    let mut centres: Vec<Vec<f64>> = Vec::with_capacity(k);
    let first = (rng.next_u64() % n as u64) as usize;
    centres.push(rows[first].clone());
    let mut nearest: Vec<f64> = rows
        .iter()
        .map(|r| squared_distance(r, &centres[0]))
        .collect();
    while centres.len() < k {
        let total: f64 = nearest.iter().sum();
        let pick = if total <= 0.0 {
            // Every row coincides with a centre: any row will do; take the first unused.
            (0..n).find(|&i| nearest[i] == 0.0).unwrap_or(0)
        } else {
            let mut target = rng.next_f64() * total;
            let mut chosen = n - 1;
            for (i, d) in nearest.iter().enumerate() {
                if *d <= 0.0 {
                    continue;
                }
                if target < *d {
                    chosen = i;
                    break;
                }
                target -= d;
            }
            chosen
        };
        centres.push(rows[pick].clone());
        let c = centres.last().unwrap();
        for (i, r) in rows.iter().enumerate() {
            nearest[i] = nearest[i].min(squared_distance(r, c));
        }
    }
    centres
}

fn nearest_centre(row: &[f64], centres: &[Vec<f64>]) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (j, c) in centres.iter().enumerate() {
        let d = squared_distance(row, c);
        if d < best.1 {
            best = (j, d);
        }
    }
    best
}

/// Lloyd's iterations from given centres, until no row changes cluster.
fn lloyd(rows: &[Vec<f64>], mut centres: Vec<Vec<f64>>, max_iterations: usize) -> Clustering {
    let n = rows.len();
    let dim = rows[0].len();
    let k = centres.len();
    let mut labels = vec![usize::MAX; n];
    for _ in 0..max_iterations.max(1) {
        let mut changed = false;
        for (i, r) in rows.iter().enumerate() {
            let (j, _) = nearest_centre(r, &centres);
            if labels[i] != j {
                labels[i] = j;
                changed = true;
            }
        }
        // New centres: member means. An emptied cluster takes the row farthest from its
        // centre, so that k clusters stay k clusters.
        let mut sums = vec![vec![0.0; dim]; k];
        let mut counts = vec![0usize; k];
        for (i, r) in rows.iter().enumerate() {
            counts[labels[i]] += 1;
            for (s, x) in sums[labels[i]].iter_mut().zip(r) {
                *s += x;
            }
        }
        for j in 0..k {
            if counts[j] > 0 {
                centres[j] = sums[j].iter().map(|s| s / counts[j] as f64).collect();
            } else {
                let far = (0..n).filter(|&i| counts[labels[i]] > 1).max_by(|&a, &b| {
                    squared_distance(&rows[a], &centres[labels[a]])
                        .total_cmp(&squared_distance(&rows[b], &centres[labels[b]]))
                });
                if let Some(i) = far {
                    counts[labels[i]] -= 1;
                    labels[i] = j;
                    counts[j] = 1;
                    centres[j] = rows[i].clone();
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let inertia = rows
        .iter()
        .zip(&labels)
        .map(|(r, &l)| squared_distance(r, &centres[l]))
        .sum();
    Clustering {
        labels,
        centroids: centres,
        inertia,
    }
}

/// Lloyd's iterations over every row from given centres (those of a fit on a sample), the
/// clusters numbered by their first member.
pub fn refine(rows: &[Vec<f64>], centres: Vec<Vec<f64>>, max_iterations: usize) -> Clustering {
    if rows.is_empty() || centres.is_empty() {
        return Clustering {
            labels: vec![0; rows.len()],
            centroids: centres,
            inertia: 0.0,
        };
    }
    canonical(lloyd(rows, centres, max_iterations))
}

/// Renumbers clusters in order of their first member, and drops empty ones.
fn canonical(c: Clustering) -> Clustering {
    let mut map: Vec<Option<usize>> = vec![None; c.centroids.len()];
    let mut next = 0;
    let mut labels = Vec::with_capacity(c.labels.len());
    for &l in &c.labels {
        let m = *map[l].get_or_insert_with(|| {
            next += 1;
            next - 1
        });
        labels.push(m);
    }
    let mut centroids = vec![Vec::new(); next];
    for (old, new) in map.iter().enumerate() {
        if let Some(new) = new {
            centroids[*new] = c.centroids[old].clone();
        }
    }
    Clustering {
        labels,
        centroids,
        inertia: c.inertia,
    }
}

pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// A silhouette below this is "no substantial structure" (Kaufman & Rousseeuw's reading
/// of the coefficient): automatic k then answers a single cluster.
pub const MIN_STRUCTURE_SILHOUETTE: f64 = 0.25;

/// One k tried by automatic k: its mean silhouette, and whether its partition could be
/// chosen.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct KTried {
    pub k: usize,
    pub silhouette: f64,
    /// Every cluster holds rows named alike and no two clusters bear the same name (always
    /// true without names).
    pub admissible: bool,
    /// Why not, in words ("two clusters are named cpu-intensive").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
}

/// How automatic k decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KRule {
    /// The best silhouette among the admissible k.
    BestAdmissible,
    /// No k was admissible: the best silhouette, showing structure, whatever the names (the
    /// clustering then merges clusters that bear the same name).
    BestSilhouette,
    /// Nothing stands out (too few rows, no admissible k and no structure): one cluster.
    One,
}

/// What automatic k tried and chose.
#[derive(Clone, Debug, PartialEq)]
pub struct KChoice {
    pub k: usize,
    pub clustering: Clustering,
    pub tried: Vec<KTried>,
    pub rule: KRule,
}

/// Automatic k: fits k = 2..=`max_k` (and at most n − 1) and keeps the k with the highest
/// mean silhouette; ties keep the smaller k. One cluster when there are fewer than three
/// rows or when even the best silhouette shows no structure.
pub fn choose_k(rows: &[Vec<f64>], max_k: usize, seed: u64) -> KChoice {
    choose_k_named::<&str>(rows, max_k, seed, None)
}

/// Names for automatic k: what the naming rules call each row alone, and what they call a
/// cluster of rows (by their indices).
pub struct Names<'a, T> {
    pub rows: &'a [T],
    pub cluster: &'a dyn Fn(&[usize]) -> T,
}

/// [`choose_k`] with names: a k is admissible when every cluster holds rows named alike and
/// no two clusters bear the same name, and the admissible k of best silhouette wins. k may
/// then reach n, since a cluster of one row is admissible (a handful of VMs of different
/// kinds, one each, is a common case the silhouette alone cannot resolve: it scores
/// singletons 0). Without an admissible k, the best silhouette that shows structure
/// ([`KRule::BestSilhouette`]), else one cluster. Every k tried is listed with its
/// silhouette and, when it was not admissible, why.
pub fn choose_k_named<T: PartialEq + std::fmt::Display>(
    rows: &[Vec<f64>],
    max_k: usize,
    seed: u64,
    names: Option<Names<'_, T>>,
) -> KChoice {
    choose_k_named_with(rows, max_k, seed, names, 1.0)
}

/// [`choose_k_named`] where a cluster need only have `purity` (a share, 0 to 1) of its rows
/// bear the cluster's own name: time windows at the edge of a phase straddle two workloads
/// and are named after neither, and a table of windows always has some. With `purity` 1,
/// every row of a cluster must be named alike. Above [`SAMPLE_ROWS`] rows, k is chosen on a
/// sample and the chosen centres refined over every row.
pub fn choose_k_named_with<T: PartialEq + std::fmt::Display>(
    rows: &[Vec<f64>],
    max_k: usize,
    seed: u64,
    names: Option<Names<'_, T>>,
    purity: f64,
) -> KChoice {
    if rows.len() > SAMPLE_ROWS {
        let picked = sample_indices(rows.len(), SAMPLE_ROWS);
        let sample: Vec<Vec<f64>> = picked.iter().map(|&i| rows[i].clone()).collect();
        let mut choice = match &names {
            Some(m) => {
                let row_names: Vec<&T> = picked.iter().map(|&i| &m.rows[i]).collect();
                let cluster = |members: &[usize]| -> T {
                    let original: Vec<usize> = members.iter().map(|&j| picked[j]).collect();
                    (m.cluster)(&original)
                };
                let sampled = SampledNames {
                    rows: &row_names,
                    cluster: &cluster,
                };
                choose_k_on(&sample, max_k, seed, Some(&sampled), purity)
            }
            None => choose_k_on::<T>(&sample, max_k, seed, None, purity),
        };
        choice.clustering = refine(rows, choice.clustering.centroids, 300);
        choice.k = choice.clustering.centroids.len();
        return choice;
    }
    match &names {
        Some(m) => {
            let row_names: Vec<&T> = m.rows.iter().collect();
            let sampled = SampledNames {
                rows: &row_names,
                cluster: m.cluster,
            };
            choose_k_on(rows, max_k, seed, Some(&sampled), purity)
        }
        None => choose_k_on::<T>(rows, max_k, seed, None, purity),
    }
}

/// Names of the rows automatic k works on (all, or a sample), by reference.
struct SampledNames<'a, T> {
    rows: &'a [&'a T],
    cluster: &'a dyn Fn(&[usize]) -> T,
}

fn choose_k_on<T: PartialEq + std::fmt::Display>(
    rows: &[Vec<f64>],
    max_k: usize,
    seed: u64,
    names: Option<&SampledNames<'_, T>>,
    purity: f64,
) -> KChoice {
    let n = rows.len();
    let upper = match names {
        Some(_) => max_k.min(n),
        None => max_k.min(n.saturating_sub(1)),
    };
    let why_not = |c: &Clustering| -> Option<String> {
        let names = names?;
        let k = c.centroids.len();
        let members: Vec<Vec<usize>> = (0..k)
            .map(|j| (0..n).filter(|&i| c.labels[i] == j).collect())
            .collect();
        if purity >= 1.0 {
            for m in &members {
                if let Some(&other) = m.iter().find(|&&i| names.rows[i] != names.rows[m[0]]) {
                    return Some(format!(
                        "a cluster holds rows named {} and {}",
                        names.rows[m[0]], names.rows[other]
                    ));
                }
            }
        }
        let named: Vec<T> = members.iter().map(|m| (names.cluster)(m)).collect();
        if purity < 1.0 {
            for (m, name) in members.iter().zip(&named) {
                let alike = m.iter().filter(|&&i| names.rows[i] == name).count();
                if (alike as f64) < purity * m.len() as f64 {
                    return Some(format!(
                        "a cluster named {name} has {:.0}% of its rows named so (less than \
                         {:.0}%)",
                        100.0 * alike as f64 / m.len().max(1) as f64,
                        100.0 * purity
                    ));
                }
            }
        }
        for a in 0..k {
            if named[a + 1..].contains(&named[a]) {
                return Some(format!("two clusters are named {}", named[a]));
            }
        }
        None
    };
    let mut tried = Vec::new();
    let mut best: Option<(usize, f64, Clustering)> = None;
    let mut best_admissible: Option<(usize, f64, Clustering)> = None;
    let distances = (upper >= 2).then(|| Distances::new(rows));
    for k in 2..=upper {
        let c = KMeans::new(k, seed).fit(rows);
        let s = mean(&distances.as_ref().expect("k ≥ 2").silhouettes(&c.labels));
        let why = why_not(&c);
        if why.is_none() && best_admissible.as_ref().is_none_or(|b| s > b.1 + 1e-9) {
            best_admissible = Some((k, s, c.clone()));
        }
        tried.push(KTried {
            k,
            silhouette: s,
            admissible: why.is_none(),
            why_not: why,
        });
        if k < n && best.as_ref().is_none_or(|b| s > b.1 + 1e-9) {
            best = Some((k, s, c));
        }
    }
    let structured = best
        .as_ref()
        .is_some_and(|b| b.1 >= MIN_STRUCTURE_SILHOUETTE);
    // With names, an admissible k needs no structure (singletons score 0), unless every
    // row bears the same name.
    let one_name = names.is_some_and(|m| m.rows.iter().all(|x| *x == m.rows[0]));
    let (pick, rule) = if best_admissible.is_some() && (structured || names.is_some() && !one_name)
    {
        (best_admissible, KRule::BestAdmissible)
    } else if structured {
        (best, KRule::BestSilhouette)
    } else {
        (None, KRule::One)
    };
    match pick {
        Some((k, _, c)) => KChoice {
            k,
            clustering: c,
            tried,
            rule,
        },
        None => KChoice {
            k: 1.min(n),
            clustering: KMeans::new(1, seed).fit(rows),
            tried,
            rule: KRule::One,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three well-separated blobs of 10 points each, drawn with the crate's own PRNG.
    fn blobs(seed: u64) -> (Vec<Vec<f64>>, Vec<usize>) {
        let centres = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let mut rng = SplitMix64::new(seed);
        let mut rows = Vec::new();
        let mut truth = Vec::new();
        for (c, centre) in centres.iter().enumerate() {
            for _ in 0..10 {
                rows.push(vec![
                    centre[0] + rng.next_f64() - 0.5,
                    centre[1] + rng.next_f64() - 0.5,
                ]);
                truth.push(c);
            }
        }
        (rows, truth)
    }

    /// True when two labelings describe the same partition.
    fn same_partition(a: &[usize], b: &[usize]) -> bool {
        (0..a.len()).all(|i| (0..a.len()).all(|j| (a[i] == a[j]) == (b[i] == b[j])))
    }

    #[test]
    fn splitmix_reference_values() {
        // The widely published first outputs of SplitMix64 seeded with 0.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn finds_known_groups() {
        let (rows, truth) = blobs(7);
        let c = KMeans::new(3, 1).fit(&rows);
        assert!(same_partition(&c.labels, &truth), "{:?}", c.labels);
        assert_eq!(c.centroids.len(), 3);
    }

    #[test]
    fn same_seed_same_result_other_seed_same_partition() {
        let (rows, truth) = blobs(3);
        let a = KMeans::new(3, 42).fit(&rows);
        let b = KMeans::new(3, 42).fit(&rows);
        assert_eq!(a, b);
        let c = KMeans::new(3, 43).fit(&rows);
        assert!(same_partition(&a.labels, &c.labels));
        assert!(same_partition(&a.labels, &truth));
    }

    #[test]
    fn plus_plus_seeds_are_distinct_rows() {
        let (rows, _) = blobs(5);
        let mut rng = SplitMix64::new(9);
        let seeds = kmeans_plus_plus(&rows, 3, &mut rng);
        assert_eq!(seeds.len(), 3);
        for s in &seeds {
            assert!(rows.contains(s));
        }
        assert!(seeds[0] != seeds[1] && seeds[1] != seeds[2] && seeds[0] != seeds[2]);
    }

    #[test]
    fn k_larger_than_rows_is_clamped_and_duplicates_survive() {
        let rows = vec![vec![1.0], vec![1.0], vec![1.0]];
        let c = KMeans::new(5, 0).fit(&rows);
        assert_eq!(c.labels.len(), 3);
        assert!(c.inertia.abs() < 1e-12);
    }

    #[test]
    fn silhouette_hand_computed() {
        // Points on a line: 0, 1 | 4. For 0: a = 1, b = 4 → 0.75. For 1: a = 1, b = 3 →
        // 2/3. The singleton scores 0.
        let rows = vec![vec![0.0], vec![1.0], vec![4.0]];
        let s = silhouettes(&rows, &[0, 0, 1]);
        assert!((s[0] - 0.75).abs() < 1e-12, "{s:?}");
        assert!((s[1] - 2.0 / 3.0).abs() < 1e-12, "{s:?}");
        assert_eq!(s[2], 0.0);
        // Four points 0, 2 | 10, 13: for 10, a = 3, b = mean(10, 8) = 9 → 6/9.
        let rows = vec![vec![0.0], vec![2.0], vec![10.0], vec![13.0]];
        let s = silhouettes(&rows, &[0, 0, 1, 1]);
        assert!((s[2] - 6.0 / 9.0).abs() < 1e-12, "{s:?}");
        // 0: a = 2, b = 11.5 → 9.5/11.5.
        assert!((s[0] - 9.5 / 11.5).abs() < 1e-12, "{s:?}");
        // A bad assignment gives negative values.
        let s = silhouettes(&rows, &[0, 1, 0, 1]);
        assert!(s.iter().all(|v| *v < 0.0), "{s:?}");
    }

    #[test]
    fn auto_k_finds_the_true_k() {
        for seed in 0..5 {
            let (rows, truth) = blobs(seed);
            let choice = choose_k(&rows, 8, seed);
            assert_eq!(choice.k, 3, "seed {seed}: {:?}", choice.tried);
            assert!(same_partition(&choice.clustering.labels, &truth));
        }
        // Two groups.
        let (rows, _) = blobs(11);
        let two: Vec<Vec<f64>> = rows[..20].to_vec();
        assert_eq!(choose_k(&two, 8, 0).k, 2);
    }

    #[test]
    fn auto_k_answers_one_without_structure() {
        // Identical rows have no structure at all.
        let rows: Vec<Vec<f64>> = (0..12).map(|_| vec![3.0, 1.0]).collect();
        let c = choose_k(&rows, 6, 0);
        assert_eq!(c.k, 1, "{c:?}");
        assert!(c.clustering.labels.iter().all(|&l| l == 0));
        assert_eq!(choose_k(&[vec![1.0], vec![2.0]], 6, 0).k, 1);
    }

    #[test]
    fn consistent_k_separates_singletons_of_different_names() {
        // Three tight rows of one kind, and two lone rows of two other kinds: the silhouette
        // alone prefers putting the loners together; names keep them apart.
        let rows = vec![
            vec![0.0, 0.0],
            vec![0.1, 0.0],
            vec![0.0, 0.1],
            vec![10.0, 0.0],
            vec![12.0, 0.0],
        ];
        let names = ["a", "a", "a", "b", "c"];
        let plain = choose_k(&rows, 8, 0);
        assert_eq!(plain.k, 2, "{plain:?}");
        let cluster = alike(&names);
        let named = choose_k_named(
            &rows,
            8,
            0,
            Some(Names {
                rows: &names,
                cluster: &cluster,
            }),
        );
        assert_eq!(named.k, 3, "{named:?}");
        assert_eq!(named.rule, KRule::BestAdmissible);
        let l = &named.clustering.labels;
        assert!(l[0] == l[1] && l[1] == l[2] && l[3] != l[4] && l[3] != l[0]);
        // k = 2 put b and c together.
        assert_eq!(
            named.tried[0].why_not.as_deref(),
            Some("a cluster holds rows named b and c")
        );
        // One name everywhere and no structure: one cluster.
        let flat = vec![vec![1.0]; 4];
        let x = ["x"; 4];
        let cluster = alike(&x);
        let one = choose_k_named(
            &flat,
            8,
            0,
            Some(Names {
                rows: &x,
                cluster: &cluster,
            }),
        );
        assert_eq!((one.k, one.rule), (1, KRule::One));
    }

    /// Three blobs of 1,000 rows each: above the sample size, k is chosen on a sample and
    /// the centres refined over every row, which still finds the blobs.
    #[test]
    fn large_tables_are_clustered_through_a_sample() {
        let centres = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let mut rng = SplitMix64::new(3);
        let mut rows = Vec::new();
        let mut truth = Vec::new();
        for i in 0..3000 {
            let c = i % 3;
            rows.push(vec![
                centres[c][0] + rng.next_f64() - 0.5,
                centres[c][1] + rng.next_f64() - 0.5,
            ]);
            truth.push(c);
        }
        assert!(rows.len() > SAMPLE_ROWS);
        let choice = choose_k(&rows, 6, 1);
        assert_eq!(choice.k, 3, "{:?}", choice.tried);
        assert_eq!(choice.clustering.labels.len(), rows.len());
        // Same partition: every row with the rows of its blob (checked against the first row
        // of each blob, rather than all pairs).
        for (i, &t) in truth.iter().enumerate() {
            assert_eq!(
                choice.clustering.labels[i], choice.clustering.labels[t],
                "row {i}"
            );
        }
        let fixed = KMeans::new(3, 1).fit(&rows);
        assert_eq!(fixed.labels, choice.clustering.labels);
        // Tight blobs: the simplified silhouette is close to 1 for every row.
        let s = simplified_silhouettes(&rows, &fixed.labels, &fixed.centroids);
        assert!(
            s.iter().all(|x| *x > 0.8),
            "{:?}",
            s.iter().fold(1.0f64, |a, b| a.min(*b))
        );
    }

    #[test]
    fn silhouettes_from_the_distance_matrix_are_the_silhouettes() {
        let (rows, truth) = blobs(9);
        let d = Distances::new(&rows);
        assert_eq!(d.silhouettes(&truth), silhouettes(&rows, &truth));
        assert_eq!(d.get(3, 7), d.get(7, 3));
        assert_eq!(d.get(4, 4), 0.0);
        assert_eq!(sample_indices(10, 4), vec![0, 2, 5, 7]);
        assert_eq!(sample_indices(3, 4), vec![0, 1, 2]);
    }

    /// With purity, a cluster may hold a few rows named otherwise (windows at the edge of a
    /// phase); below it, not.
    #[test]
    fn purity_admits_clusters_mostly_named_alike() {
        // Two blobs of ten rows named a and b, one row of each named c.
        let mut rows = Vec::new();
        let mut names = Vec::new();
        for (centre, name) in [(0.0, "a"), (10.0, "b")] {
            for i in 0..10 {
                rows.push(vec![centre + 0.01 * i as f64]);
                names.push(if i == 0 { "c" } else { name });
            }
        }
        let majority = |m: &[usize]| -> &str {
            let a = m.iter().filter(|&&i| names[i] == "a").count();
            let b = m.iter().filter(|&&i| names[i] == "b").count();
            if a >= b {
                "a"
            } else {
                "b"
            }
        };
        let strict = choose_k_named(
            &rows,
            4,
            0,
            Some(Names {
                rows: &names,
                cluster: &majority,
            }),
        );
        // Every row alike: two clusters each holding a row named c are not admissible.
        let two = &strict.tried[0];
        assert_eq!(two.k, 2);
        assert!(!two.admissible, "{two:?}");
        let loose = choose_k_named_with(
            &rows,
            4,
            0,
            Some(Names {
                rows: &names,
                cluster: &majority,
            }),
            0.8,
        );
        assert_eq!(
            (loose.k, loose.rule),
            (2, KRule::BestAdmissible),
            "{loose:?}"
        );
        let three = loose.tried.iter().find(|t| t.k == 3).unwrap();
        assert!(!three.admissible, "{three:?}");
    }

    /// A cluster named as its rows when they agree, else `mixed`.
    fn alike<'a>(rows: &'a [&'a str]) -> impl Fn(&[usize]) -> &'a str + 'a {
        move |m: &[usize]| {
            if m.iter().all(|&i| rows[i] == rows[m[0]]) {
                rows[m[0]]
            } else {
                "mixed"
            }
        }
    }

    #[test]
    fn two_clusters_of_one_name_are_not_admissible() {
        // Two tight blobs of rows named a and one of rows named b: the silhouette prefers
        // three clusters, two of them named a; the admissible choice is two.
        let mut rows = Vec::new();
        let mut names = Vec::new();
        for (centre, name) in [(0.0, "a"), (3.0, "a"), (20.0, "b")] {
            for i in 0..4 {
                rows.push(vec![centre + 0.01 * i as f64]);
                names.push(name);
            }
        }
        assert_eq!(choose_k(&rows, 6, 0).k, 3);
        let cluster = alike(&names);
        let named = choose_k_named(
            &rows,
            6,
            0,
            Some(Names {
                rows: &names,
                cluster: &cluster,
            }),
        );
        assert_eq!(
            (named.k, named.rule),
            (2, KRule::BestAdmissible),
            "{named:?}"
        );
        let three = named.tried.iter().find(|t| t.k == 3).unwrap();
        assert!(!three.admissible);
        assert_eq!(three.why_not.as_deref(), Some("two clusters are named a"));
        assert!(three.silhouette > named.tried[0].silhouette);
    }
}
