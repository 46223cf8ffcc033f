//! Workload characterisation: feature vectors of VMs, vCPUs and guest processes — over time
//! windows or over the whole trace — clustered with k-means into named groups (cpu-intensive,
//! disk-intensive, network-intensive, idle, mixed), each with the evidence behind its name,
//! and each VM's phases over time.
//!
//! Principal types and how they connect:
//!
//! - [`windows::build`] turns a [`virtflow_model::Model`] — what the one analysis pass
//!   wrote, with its series per bucket of time — into a [`FeatureTable`] of time windows at one
//!   [`Level`] (vm, vcpu, process), a row per VM (vCPU, process) per window
//!   ([`windows::WindowSpec`]: automatic, a length, or the whole trace, which
//!   [`features::build`] gives from the model's totals); [`features::catalogue`] names every
//!   feature with its unit (`docs/features.md` documents them). Tables of several models are
//!   concatenated: one table, one clustering. The clustering never reads a trace.
//! - [`cluster`] normalises the table ([`Normalization`]), runs [`kmeans::KMeans`]
//!   (k-means++ seeding, restarts, seeded [`kmeans::SplitMix64`]; on a sample of large tables)
//!   with a given k or the k of best silhouette among the admissible ones
//!   ([`kmeans::choose_k_named_with`]: no two clusters named alike, and every cluster's rows
//!   named as the cluster — all of them for whole-trace rows, [`WINDOW_PURITY`] of them for
//!   windows, whose edges straddle two workloads), and names each cluster
//!   ([`naming::name_cluster`], [`naming::name_windows`]) with the features that set it apart;
//!   clusters that still bear the same name are merged, so that no two clusters of a report
//!   share a name. The result is a [`ClusterReport`], serialisable as the `--json` of
//!   `virtflow cluster`.
//! - For windows, [`phases::timelines`] gives each VM (vCPU, process) its phases — runs of
//!   windows of one cluster, runs of one window merged into a neighbour — and its verdict, the
//!   dominant non-idle phase; [`phases::name_phases`] writes them into the model for the views
//!   (`Vm::phases`, `Vm::workload`), as [`name_workloads`] does for whole-trace clusters.
//! - [`agreement`] compares a report with known workloads (a simulator `truth.json`, a lab
//!   `manifest.json`): per VM, and the adjusted Rand index.
//! - [`pipeline::rows`] gives a model's rows with its notes; [`pipeline::known_workloads`]
//!   finds the true workloads beside a trace.
//! - Sinks: [`lami`] (Trace Compass's LAMI 1.0 JSON), [`plot`] (2-D PCA projection as SVG),
//!   CSV ([`FeatureTable::to_csv`]) and Parquet ([`parquet_out`]), every row with its window.

#![forbid(unsafe_code)]

pub mod agreement;
pub mod features;
pub mod kmeans;
pub mod lami;
pub mod naming;
pub mod parquet_out;
pub mod phases;
pub mod pipeline;
pub mod plot;
pub mod silhouette;
pub mod table;
pub mod windows;

use serde::Serialize;

pub use naming::{Evidence, WorkloadClass};
pub use phases::{name_phases, PhaseOut, Timeline};
pub use table::{FeatureDef, FeatureTable, Level, Normalization, Row, RowKey};
pub use windows::WindowSpec;

/// In a table of windows, the share of a cluster's rows that must bear the cluster's own name
/// for a k to be admissible. Not all: a window at the edge of a phase straddles two workloads
/// and is named after neither.
pub const WINDOW_PURITY: f64 = 0.8;

/// Features that set a cluster apart listed with its evidence.
const DISTINCTIVE: usize = 3;

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
    /// The features whose mean sets this cluster furthest apart from all rows (in standard
    /// deviations of the compressed values), beside those its name rests on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub distinctive: Vec<Evidence>,
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
    /// When the rows are time windows: their length (ns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_ns: Option<i64>,
    pub clusters: Vec<Cluster>,
    /// Windows: each VM's phases and verdict (level vm).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vms: Vec<Timeline>,
    /// Windows: each vCPU's (level vcpu).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vcpus: Vec<Timeline>,
    /// Windows: each guest process's (level process).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<Timeline>,
    /// Agreement with known workloads, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth: Option<agreement::Agreement>,
    /// Cluster index of each row of the table.
    #[serde(skip)]
    pub labels: Vec<usize>,
    /// The rows as k-means saw them, and its centres (for the phases' smoothing).
    #[serde(skip)]
    pub centroids: Vec<Vec<f64>>,
    pub notes: Vec<String>,
}

impl ClusterReport {
    /// The phases of the table's VMs, vCPUs or processes, whichever level it has.
    pub fn timelines(&self) -> &[Timeline] {
        match self.level {
            Level::Vm => &self.vms,
            Level::Vcpu => &self.vcpus,
            Level::Process => &self.processes,
        }
    }
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

/// Clusters the rows of `table`. An empty table gives an empty report. A table of windows
/// also gives each VM's (vCPU's, process's) phases.
pub fn cluster(table: &FeatureTable, options: &ClusterOptions) -> ClusterReport {
    let data = clustering_input(table, options.normalization);
    let medians = naming::Medians::of(table);
    let row_names = naming::name_rows(table, &medians);
    let windowed = table.windowed();
    let name_of = |members: &[usize]| -> naming::Naming {
        if windowed {
            naming::name_windows(table, &medians, members, &row_names)
        } else {
            naming::name_cluster_with(table, &medians, members)
        }
    };
    let (clustering, k_tried, k_rule, k_chosen) = match options.k {
        KSelection::Fixed(k) => {
            let mut km = kmeans::KMeans::new(k, options.seed);
            km.restarts = options.restarts;
            (km.fit(&data), Vec::new(), None, None)
        }
        KSelection::Auto { max } => {
            let cluster_name = |members: &[usize]| name_of(members).class;
            let names = kmeans::Names {
                rows: &row_names,
                cluster: &cluster_name,
            };
            let purity = if windowed { WINDOW_PURITY } else { 1.0 };
            let c = kmeans::choose_k_named_with(&data, max, options.seed, Some(names), purity);
            (c.clustering, c.tried, Some(c.rule), Some(c.k))
        }
    };
    let (clustering, mut notes) = merge_same_names(&data, clustering, &|m| name_of(m).class);
    let n = table.rows.len();
    let sil = if n <= kmeans::SAMPLE_ROWS {
        kmeans::silhouettes(&data, &clustering.labels)
    } else {
        notes.push(format!(
            "{n} rows: each member's silhouette is the simplified one (distances to the \
             centres), and k was chosen on an even sample of {} rows",
            kmeans::SAMPLE_ROWS
        ));
        kmeans::simplified_silhouettes(&data, &clustering.labels, &clustering.centroids)
    };
    let k = clustering.centroids.len();
    let mut members_of: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &l) in clustering.labels.iter().enumerate() {
        members_of[l].push(i);
    }
    let mut clusters = Vec::with_capacity(k);
    for (c, members) in members_of.iter().enumerate() {
        let naming = name_of(members);
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
        let distinctive = distinctive(table, &medians, members, &naming.evidence);
        clusters.push(Cluster {
            id: c,
            name: naming.class,
            centroid,
            silhouette: kmeans::mean(&member_sil),
            evidence: naming.evidence,
            distinctive,
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
    let names: Vec<WorkloadClass> = clusters.iter().map(|c| c.name).collect();
    let timelines = if windowed {
        phases::timelines(
            table,
            &clustering.labels,
            &names,
            &data,
            &clustering.centroids,
        )
    } else {
        Vec::new()
    };
    let (mut vms, mut vcpus, mut processes) = (Vec::new(), Vec::new(), Vec::new());
    match table.level {
        Level::Vm => vms = timelines,
        Level::Vcpu => vcpus = timelines,
        Level::Process => processes = timelines,
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
        window_ns: table.window_ns,
        clusters,
        vms,
        vcpus,
        processes,
        truth: None,
        labels: clustering.labels,
        centroids: clustering.centroids,
        notes,
    }
}

/// The features that set the cluster of `members` furthest apart from every row: the largest
/// distances of its mean from the table's, in standard deviations, on the values k-means
/// compares (rates compressed with `ln(1 + x)`), beside the `shown` evidence.
fn distinctive(
    table: &FeatureTable,
    medians: &naming::Medians,
    members: &[usize],
    shown: &[Evidence],
) -> Vec<Evidence> {
    if members.is_empty() || members.len() == table.rows.len() {
        return Vec::new();
    }
    let compressed = |v: f64, unit: &str| {
        if unit == "ratio" {
            v
        } else {
            v.max(0.0).ln_1p()
        }
    };
    let n = table.rows.len() as f64;
    let mut scored: Vec<(f64, usize)> = Vec::new();
    for (j, f) in table.features.iter().enumerate() {
        if shown.iter().any(|e| e.feature == f.name) {
            continue;
        }
        let all: Vec<f64> = table
            .rows
            .iter()
            .map(|r| compressed(r.values[j], &f.unit))
            .collect();
        let mean = all.iter().sum::<f64>() / n;
        let sd = (all.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
        if sd <= 0.0 {
            continue;
        }
        let own = members.iter().map(|&i| all[i]).sum::<f64>() / members.len() as f64;
        scored.push(((own - mean).abs() / sd, j));
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored
        .into_iter()
        .take(DISTINCTIVE)
        .filter(|(z, _)| *z >= 0.5)
        .filter_map(|(_, j)| {
            naming::evidence_with(table, medians, members, &table.features[j].name)
        })
        .collect()
}

/// Merges clusters that the naming rules give the same name, until every name is borne by
/// one cluster (a fixed k larger than the kinds of rows, or automatic k without an admissible
/// partition): the report never shows two clusters of one name. Returns the clustering, its
/// clusters numbered by their first member, and a note per merge.
fn merge_same_names(
    data: &[Vec<f64>],
    mut clustering: kmeans::Clustering,
    name_of: &dyn Fn(&[usize]) -> WorkloadClass,
) -> (kmeans::Clustering, Vec<String>) {
    let mut notes = Vec::new();
    loop {
        let k = clustering.centroids.len();
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); k];
        for (i, &l) in clustering.labels.iter().enumerate() {
            members[l].push(i);
        }
        let names: Vec<WorkloadClass> = members.iter().map(|m| name_of(m)).collect();
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

/// How automatic k decided, in the words of the terminal report; `windowed`: over time
/// windows, where a cluster's rows need only mostly bear its name.
fn rule_words(rule: kmeans::KRule, windowed: bool) -> String {
    let alike = if windowed {
        format!(
            "at least {:.0}% of each cluster's windows bear its name",
            WINDOW_PURITY * 100.0
        )
    } else {
        "each cluster holds rows named alike".to_string()
    };
    match rule {
        kmeans::KRule::BestAdmissible => format!(
            "the k of best silhouette among the admissible partitions — {alike}, and no two \
             clusters bear the same name"
        ),
        kmeans::KRule::BestSilhouette => format!(
            "no partition was admissible ({alike}, no two clusters named alike): the k of \
             best silhouette, clusters bearing the same name merged"
        ),
        kmeans::KRule::One => "nothing stands out: one cluster".to_string(),
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
        let rows = match self.window_ns {
            Some(w) => format!("{} windows of {}", self.labels.len(), seconds(w)),
            None => format!("{} rows", self.labels.len()),
        };
        let _ = writeln!(
            s,
            "{} clusters of {rows} at {} level (normalisation {}, seed {}), mean silhouette {:.3}",
            self.k,
            self.level.name(),
            self.normalization,
            self.seed,
            self.silhouette
        );
        if let Some(rule) = self.k_rule {
            let _ = writeln!(
                s,
                "automatic k: {}",
                rule_words(rule, self.window_ns.is_some())
            );
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
            for e in &c.distinctive {
                let _ = writeln!(s, "  set apart by: {}", e.text);
            }
            if self.window_ns.is_some() {
                // Thousands of windows: who they belong to, not each one.
                let mut owners: Vec<String> = Vec::new();
                for m in &c.members {
                    let label = m.key.label();
                    if !owners.contains(&label) {
                        owners.push(label);
                    }
                }
                let shown = owners
                    .iter()
                    .take(6)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                let more = owners.len().saturating_sub(6);
                let _ = writeln!(
                    s,
                    "  members: {} windows of {}{}",
                    c.members.len(),
                    shown,
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                );
            } else {
                let _ = writeln!(s, "  members:");
            }
            for m in c.members.iter().filter(|_| self.window_ns.is_none()) {
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
        self.phases_text(&mut s);
        if let Some(t) = &self.truth {
            agreement_text(&mut s, t);
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        s
    }

    /// Each VM's (vCPU's, process's) verdict and phases, times in seconds from its trace's
    /// first window.
    fn phases_text(&self, s: &mut String) {
        use std::fmt::Write as _;
        let timelines = self.timelines();
        if timelines.is_empty() {
            return;
        }
        let _ = writeln!(
            s,
            "\nphases ({} each, in seconds from the trace's first window):",
            {
                match self.level {
                    Level::Vm => "per VM",
                    Level::Vcpu => "per vCPU",
                    Level::Process => "per guest process",
                }
            }
        );
        let origin = |trace: &str| {
            timelines
                .iter()
                .filter(|t| t.trace == trace)
                .filter_map(|t| t.phases.first().map(|p| p.start))
                .min()
                .unwrap_or(0)
        };
        for t in timelines {
            let o = origin(&t.trace);
            let _ = writeln!(
                s,
                "  {:<28} pid {:<7} verdict {}",
                t.key().label(),
                t.pid,
                t.verdict
            );
            let phases: Vec<String> = t
                .phases
                .iter()
                .map(|p| {
                    format!(
                        "{} {:.1}–{:.1} s",
                        p.name,
                        (p.start - o) as f64 / 1e9,
                        (p.end - o) as f64 / 1e9
                    )
                })
                .collect();
            let _ = writeln!(s, "    {}", phases.join(", "));
        }
    }
}

/// The agreement with known workloads, in words.
fn agreement_text(s: &mut String, t: &agreement::Agreement) {
    use std::fmt::Write as _;
    let _ = writeln!(s, "\nagainst the known workloads ({}):", t.source);
    for v in &t.vms {
        let time = v
            .time_agrees
            .map(|a| format!(", its phases agree {:.0}% of the time", a * 100.0))
            .unwrap_or_default();
        let judged = match v.known_verdict {
            Some(k) if v.verdict_agrees => format!("known {} ({k}): agrees{time}", v.known),
            Some(k) => format!("known {} ({k}): disagrees{time}", v.known),
            None => format!("known {}: no workload class, not compared{time}", v.known),
        };
        let _ = writeln!(
            s,
            "  {:<28} pid {:<7} verdict {} — {judged}",
            v.vm, v.pid, v.verdict
        );
    }
    let _ = match t.ari {
        Some(ari) => writeln!(
            s,
            "  adjusted Rand index {ari:.3} over {} {}",
            t.compared, t.ari_over
        ),
        None => writeln!(
            s,
            "  adjusted Rand index: not computed, {} {} of a known class to compare",
            t.compared, t.ari_over
        ),
    };
}

/// A duration in words: `448 ms`, `2.5 s`.
fn seconds(ns: i64) -> String {
    if ns < 1_000_000_000 {
        format!("{} ms", ns / 1_000_000)
    } else {
        format!("{:.1} s", ns as f64 / 1e9)
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
