//! Workload characterisation: feature vectors of VMs, vCPUs and guest processes, clustered
//! with k-means into named groups (cpu-intensive, disk-intensive, network-intensive, idle,
//! mixed), each with the evidence behind its name.
//!
//! Principal types and how they connect:
//!
//! - [`features::build`] turns a [`virtflow_model::Model`] — what the one analysis pass
//!   wrote — into a [`FeatureTable`] at one [`Level`] (vm, vcpu, process);
//!   [`features::catalogue`] names every feature with its unit (`docs/features.md` documents
//!   them). Tables of several models are concatenated: one table, one clustering. The
//!   clustering never reads a trace.
//! - [`cluster`] normalises the table ([`Normalization`]), runs [`kmeans::KMeans`]
//!   (k-means++ seeding, restarts, seeded [`kmeans::SplitMix64`]) with a given k or the k
//!   of best silhouette among the admissible ones ([`kmeans::choose_k_named`]: every
//!   cluster's rows named alike, no two clusters named alike), and names each cluster
//!   ([`naming::name_cluster`]); clusters that still bear the same name (a fixed k, or no
//!   admissible k) are merged, so that no two clusters of a report share a name. The result
//!   is a [`ClusterReport`], serialisable as the `--json` of `virtflow cluster`.
//! - [`pipeline::rows`] gives a model's rows with its notes; [`pipeline::known_workloads`]
//!   finds the true workloads beside a trace.
//! - Sinks: [`lami`] (Trace Compass's LAMI 1.0 JSON), [`plot`] (2-D PCA projection as SVG),
//!   CSV ([`FeatureTable::to_csv`]) and Parquet ([`parquet_out`]).

#![forbid(unsafe_code)]

pub mod features;
pub mod kmeans;
pub mod lami;
pub mod naming;
pub mod parquet_out;
pub mod pipeline;
pub mod plot;
pub mod table;

use serde::Serialize;

pub use naming::{Evidence, WorkloadClass};
pub use table::{FeatureDef, FeatureTable, Level, Normalization, Row, RowKey};

/// How many clusters to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KSelection {
    Fixed(usize),
    /// The k in 2..=max with the best mean silhouette among the admissible ones — every
    /// cluster holds rows the naming rules name alike, and no two clusters bear the same
    /// name (see [`kmeans::choose_k_named`]); 1 when nothing stands out.
    Auto {
        max: usize,
    },
}

#[derive(Clone, Debug)]
pub struct ClusterOptions {
    pub k: KSelection,
    pub normalization: Normalization,
    pub seed: u64,
    pub restarts: usize,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            k: KSelection::Auto { max: 8 },
            normalization: Normalization::ZScore,
            seed: 1,
            restarts: 10,
        }
    }
}

/// A member of a cluster, as `--json` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Member {
    #[serde(flatten)]
    pub key: RowKey,
    pub silhouette: f64,
    /// The known workload (simulator truth, lab manifest), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cluster {
    pub id: usize,
    pub name: WorkloadClass,
    /// Centroid in raw feature units (the members' mean), keyed by feature name.
    pub centroid: serde_json::Map<String, serde_json::Value>,
    /// Mean silhouette of the members.
    pub silhouette: f64,
    pub evidence: Vec<Evidence>,
    pub members: Vec<Member>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterReport {
    pub level: Level,
    pub normalization: &'static str,
    pub seed: u64,
    pub k: usize,
    /// Mean silhouette of every row.
    pub silhouette: f64,
    /// For automatic k: each k tried with its mean silhouette and whether it was admissible.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub k_tried: Vec<kmeans::KTried>,
    /// For automatic k: how k was chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k_rule: Option<kmeans::KRule>,
    /// For automatic k: the k chosen, before clusters bearing the same name were merged
    /// (`k` unless the notes tell of a merge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k_chosen: Option<usize>,
    pub features: Vec<FeatureDef>,
    pub clusters: Vec<Cluster>,
    /// Cluster index of each row of the table.
    #[serde(skip)]
    pub labels: Vec<usize>,
    pub notes: Vec<String>,
}

/// The rows as k-means sees them: every column that is not a ratio (rates, durations, which
/// span orders of magnitude from one VM to another) compressed with `ln(1 + x)`, then
/// normalised. Without the logarithm, one busy device's rate would decide every distance.
pub fn clustering_input(table: &FeatureTable, normalization: Normalization) -> Vec<Vec<f64>> {
    let compressed: Vec<Vec<f64>> = table
        .rows
        .iter()
        .map(|r| {
            r.values
                .iter()
                .zip(&table.features)
                .map(|(v, f)| {
                    if f.unit == "ratio" {
                        *v
                    } else {
                        v.max(0.0).ln_1p()
                    }
                })
                .collect()
        })
        .collect();
    table::normalize(&compressed, normalization)
}

/// Clusters the rows of `table`. An empty table gives an empty report.
pub fn cluster(table: &FeatureTable, options: &ClusterOptions) -> ClusterReport {
    let data = clustering_input(table, options.normalization);
    let (clustering, k_tried, k_rule, k_chosen) = match options.k {
        KSelection::Fixed(k) => {
            let mut km = kmeans::KMeans::new(k, options.seed);
            km.restarts = options.restarts;
            (km.fit(&data), Vec::new(), None, None)
        }
        KSelection::Auto { max } => {
            let row_names: Vec<WorkloadClass> = (0..table.rows.len())
                .map(|i| naming::name_cluster(table, &[i]).class)
                .collect();
            let cluster_name = |members: &[usize]| naming::name_cluster(table, members).class;
            let names = kmeans::Names {
                rows: &row_names,
                cluster: &cluster_name,
            };
            let c = kmeans::choose_k_named(&data, max, options.seed, Some(names));
            (c.clustering, c.tried, Some(c.rule), Some(c.k))
        }
    };
    let (clustering, notes) = merge_same_names(table, &data, clustering);
    let sil = kmeans::silhouettes(&data, &clustering.labels);
    let k = clustering.centroids.len();
    let mut clusters = Vec::with_capacity(k);
    for c in 0..k {
        let members: Vec<usize> = (0..table.rows.len())
            .filter(|&i| clustering.labels[i] == c)
            .collect();
        let naming = naming::name_cluster(table, &members);
        let mut centroid = serde_json::Map::new();
        for (j, f) in table.features.iter().enumerate() {
            let mean = members
                .iter()
                .map(|&i| table.rows[i].values[j])
                .sum::<f64>()
                / members.len().max(1) as f64;
            centroid.insert(f.name.clone(), json_number(mean));
        }
        let member_sil: Vec<f64> = members.iter().map(|&i| sil[i]).collect();
        clusters.push(Cluster {
            id: c,
            name: naming.class,
            centroid,
            silhouette: kmeans::mean(&member_sil),
            evidence: naming.evidence,
            members: members
                .iter()
                .map(|&i| Member {
                    key: table.rows[i].key.clone(),
                    silhouette: sil[i],
                    truth: table.rows[i].truth.clone(),
                })
                .collect(),
        });
    }
    ClusterReport {
        level: table.level,
        normalization: match options.normalization {
            Normalization::L2 => "l2",
            Normalization::ZScore => "zscore",
        },
        seed: options.seed,
        k,
        silhouette: kmeans::mean(&sil),
        k_tried,
        k_rule,
        k_chosen,
        features: table.features.clone(),
        clusters,
        labels: clustering.labels,
        notes,
    }
}

/// Merges clusters that the naming rules give the same name, until every name is borne by
/// one cluster (a fixed k larger than the kinds of rows, or automatic k without an admissible
/// partition): the report never shows two clusters of one name. Returns the clustering, its
/// clusters numbered by their first member, and a note per merge.
fn merge_same_names(
    table: &FeatureTable,
    data: &[Vec<f64>],
    mut clustering: kmeans::Clustering,
) -> (kmeans::Clustering, Vec<String>) {
    let mut notes = Vec::new();
    loop {
        let k = clustering.centroids.len();
        let members = |c: usize| -> Vec<usize> {
            (0..clustering.labels.len())
                .filter(|&i| clustering.labels[i] == c)
                .collect()
        };
        let names: Vec<WorkloadClass> = (0..k)
            .map(|c| naming::name_cluster(table, &members(c)).class)
            .collect();
        let Some((a, b)) = (0..k)
            .flat_map(|a| (a + 1..k).map(move |b| (a, b)))
            .find(|&(a, b)| names[a] == names[b])
        else {
            return (clustering, notes);
        };
        notes.push(format!(
            "two clusters were both named {}: merged into one ({k} clusters → {})",
            names[a],
            k - 1
        ));
        for l in clustering.labels.iter_mut() {
            if *l == b {
                *l = a;
            } else if *l > b {
                *l -= 1;
            }
        }
        clustering = renumbered(data, &clustering.labels, k - 1);
    }
}

/// The clustering of `labels` (in `0..k`) over `rows`, its clusters numbered by their first
/// member, with their centroids and inertia.
fn renumbered(rows: &[Vec<f64>], labels: &[usize], k: usize) -> kmeans::Clustering {
    let mut order = vec![usize::MAX; k];
    let mut next = 0;
    for &l in labels {
        if order[l] == usize::MAX {
            order[l] = next;
            next += 1;
        }
    }
    let labels: Vec<usize> = labels.iter().map(|&l| order[l]).collect();
    let dim = rows.first().map_or(0, Vec::len);
    let mut centroids = vec![vec![0.0; dim]; next];
    let mut counts = vec![0usize; next];
    for (r, &l) in rows.iter().zip(&labels) {
        counts[l] += 1;
        for (c, x) in centroids[l].iter_mut().zip(r) {
            *c += x;
        }
    }
    for (c, n) in centroids.iter_mut().zip(&counts) {
        for x in c.iter_mut() {
            *x /= (*n).max(1) as f64;
        }
    }
    let inertia = rows
        .iter()
        .zip(&labels)
        .map(|(r, &l)| kmeans::squared_distance(r, &centroids[l]))
        .sum();
    kmeans::Clustering {
        labels,
        centroids,
        inertia,
    }
}

/// How automatic k decided, in the words of the terminal report.
fn rule_words(rule: kmeans::KRule) -> &'static str {
    match rule {
        kmeans::KRule::BestAdmissible => {
            "the k of best silhouette among the admissible partitions — each cluster holds \
             rows named alike, and no two clusters bear the same name"
        }
        kmeans::KRule::BestSilhouette => {
            "no partition was admissible (each cluster's rows named alike, no two clusters \
             named alike): the k of best silhouette, clusters bearing the same name merged"
        }
        kmeans::KRule::One => "nothing stands out: one cluster",
    }
}

/// A JSON number, or null for values JSON cannot hold (NaN, infinities).
pub fn json_number(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

impl ClusterReport {
    /// The terminal form: one block per cluster with its name, evidence, silhouette,
    /// members, and the centroid's most telling features.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} clusters of {} rows at {} level (normalisation {}, seed {}), mean silhouette {:.3}",
            self.k,
            self.labels.len(),
            self.level.name(),
            self.normalization,
            self.seed,
            self.silhouette
        );
        if let Some(rule) = self.k_rule {
            let _ = writeln!(s, "automatic k: {}", rule_words(rule));
            for t in &self.k_tried {
                let verdict = match &t.why_not {
                    None => "admissible".to_string(),
                    Some(why) => format!("not admissible: {why}"),
                };
                let chosen = if Some(t.k) == self.k_chosen {
                    "  ← chosen"
                } else {
                    ""
                };
                let _ = writeln!(
                    s,
                    "  k={:<2} silhouette {:.3}  {verdict}{chosen}",
                    t.k, t.silhouette
                );
            }
        }
        for c in &self.clusters {
            let _ = writeln!(
                s,
                "\ncluster {} — {} ({} members, silhouette {:.3})",
                c.id,
                c.name,
                c.members.len(),
                c.silhouette
            );
            for e in &c.evidence {
                let _ = writeln!(s, "  because: {}", e.text);
            }
            let _ = writeln!(s, "  members:");
            for m in &c.members {
                let truth = m
                    .truth
                    .as_ref()
                    .map(|t| format!("  [known: {t}]"))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "    {:<28} pid {:<7} {}  silhouette {:.3}{}",
                    m.key.label(),
                    m.key.pid,
                    m.key.trace,
                    m.silhouette,
                    truth
                );
            }
            let _ = writeln!(s, "  centroid:");
            for f in &self.features {
                let v = c
                    .centroid
                    .get(&f.name)
                    .and_then(|v| v.as_f64())
                    .unwrap_or(0.0);
                if v != 0.0 {
                    let _ = writeln!(s, "    {:<24} {:>14.4} {}", f.name, v, f.unit);
                }
            }
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        s
    }
}

/// Clusters the VMs of `model` as `virtflow cluster` does by default (each VM on its own when
/// there are fewer than three) and writes each cluster's name into its members' `workload`,
/// for the views that show a VM's workload. Reads the model only.
pub fn name_workloads(model: &mut virtflow_model::Model) {
    let label = model.traces.join(", ");
    let (table, _) = features::build(model, &label, Level::Vm);
    if table.rows.is_empty() {
        return;
    }
    let mut options = ClusterOptions::default();
    if table.rows.len() < 3 {
        // Too few rows for a silhouette: each VM is named on its own.
        options.k = KSelection::Fixed(table.rows.len());
    }
    let report = cluster(&table, &options);
    for c in &report.clusters {
        for member in &c.members {
            let of_member = |vm: &&mut virtflow_model::Vm| {
                vm.pid == member.key.pid && vm.host == member.key.host
            };
            for vm in model.vms.iter_mut().filter(of_member) {
                vm.workload = Some(c.name.name().to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four synthetic VM profiles (cpu, disk, network, idle), three noisy copies each.
    fn synthetic() -> FeatureTable {
        let mut t = FeatureTable::new(Level::Vm, features::vm_features());
        let mut rng = kmeans::SplitMix64::new(99);
        let profiles: [(&str, &[(&str, f64)]); 4] = [
            (
                "cpu",
                &[
                    ("irq_timer_rate", 500.0),
                    ("cpu_use", 0.97),
                    ("cpu_demand", 0.98),
                    ("guest_share", 0.95),
                ],
            ),
            (
                "disk",
                &[
                    ("irq_timer_rate", 60.0),
                    ("irq_disk_rate", 800.0),
                    ("irq_task_rate", 200.0),
                    ("cpu_use", 0.3),
                    ("cpu_demand", 0.3),
                    ("disk_rq_rate", 800.0),
                ],
            ),
            (
                "net",
                &[
                    ("irq_timer_rate", 80.0),
                    ("irq_network_rate", 1500.0),
                    ("cpu_use", 0.6),
                    ("cpu_demand", 0.6),
                    ("net_pkt_rate", 3000.0),
                ],
            ),
            (
                "idle",
                &[
                    ("irq_timer_rate", 5.0),
                    ("cpu_use", 0.01),
                    ("cpu_demand", 0.01),
                    ("wait_share", 0.99),
                ],
            ),
        ];
        for (p, (truth, values)) in profiles.iter().enumerate() {
            for copy in 0..3 {
                let mut row = vec![0.0; t.features.len()];
                for (name, v) in values.iter() {
                    let noise = 1.0 + 0.1 * (rng.next_f64() - 0.5);
                    row[t.column(name).unwrap()] = v * noise;
                }
                t.rows.push(Row {
                    key: RowKey {
                        trace: "synthetic".into(),
                        host: String::new(),
                        vm: format!("{truth}{copy}"),
                        pid: (100 * p + copy) as u32,
                        ..Default::default()
                    },
                    values: row,
                    truth: Some(truth.to_string()),
                });
            }
        }
        t
    }

    #[test]
    fn synthetic_profiles_cluster_and_are_named_after_their_truth() {
        let t = synthetic();
        for normalization in [Normalization::ZScore, Normalization::L2] {
            let r = cluster(
                &t,
                &ClusterOptions {
                    normalization,
                    ..Default::default()
                },
            );
            assert_eq!(r.k, 4, "{normalization:?}: {:?}", r.k_tried);
            for c in &r.clusters {
                for m in &c.members {
                    let truth = WorkloadClass::from_workload(m.truth.as_deref().unwrap());
                    assert_eq!(Some(c.name), truth, "{}", r.to_text());
                }
            }
        }
    }

    #[test]
    fn report_json_has_the_documented_shape() {
        let r = cluster(&synthetic(), &ClusterOptions::default());
        let v = serde_json::to_value(&r).unwrap();
        let c = &v["clusters"][0];
        assert!(c["name"].is_string());
        assert!(c["centroid"]["irq_timer_rate"].is_number());
        let m = &c["members"][0];
        assert_eq!(m["trace"], "synthetic");
        assert!(m["vm"].is_string() && m["pid"].is_number());
        assert!(m.get("vcpu").is_none());
    }

    #[test]
    fn same_seed_same_report() {
        let t = synthetic();
        let o = ClusterOptions {
            k: KSelection::Fixed(3),
            ..Default::default()
        };
        assert_eq!(cluster(&t, &o), cluster(&t, &o));
    }
}
