//! Automatic k says the rule it applies, and no report names two clusters alike: a table of
//! VMs where the plain best silhouette splits the CPU-bound VMs in two (two clusters both
//! cpu-intensive) gets the best admissible k instead, every k tried listed with its silhouette
//! and whether it was admissible; a fixed k that would repeat a name merges the clusters.

use virtflow_cluster::kmeans::{choose_k, KRule};
use virtflow_cluster::{
    cluster, clustering_input, features, ClusterOptions, FeatureTable, KSelection, Level, Row,
    RowKey, WorkloadClass,
};

/// Four CPU-bound VMs at full load, four at 60 %, four idle ones: three tight groups, two of
/// them cpu-intensive.
fn table() -> FeatureTable {
    let mut t = FeatureTable::new(Level::Vm, features::vm_features());
    let groups: [(&str, f64, f64); 3] = [
        ("busy", 1000.0, 0.98),
        ("half", 120.0, 0.6),
        ("idle", 4.0, 0.01),
    ];
    for (g, (name, timer, cpu)) in groups.iter().enumerate() {
        for i in 0..4 {
            let mut values = vec![0.0; t.features.len()];
            let jitter = 1.0 + 0.01 * i as f64;
            values[t.column("irq_timer_rate").unwrap()] = timer * jitter;
            values[t.column("cpu_use").unwrap()] = cpu * jitter;
            values[t.column("cpu_demand").unwrap()] = cpu * jitter;
            values[t.column("wait_share").unwrap()] = 1.0 - cpu;
            t.rows.push(Row {
                key: RowKey {
                    trace: "table".into(),
                    vm: format!("{name}{i}"),
                    pid: (100 * g + i) as u32,
                    ..Default::default()
                },
                values,
                truth: None,
            });
        }
    }
    t
}

fn names(r: &virtflow_cluster::ClusterReport) -> Vec<WorkloadClass> {
    r.clusters.iter().map(|c| c.name).collect()
}

#[test]
fn the_plain_best_silhouette_would_name_two_clusters_alike() {
    let t = table();
    // The plain rule: three clusters, the best silhouette.
    let data = clustering_input(&t, ClusterOptions::default().normalization);
    let plain = choose_k(&data, 8, 1);
    assert_eq!(plain.k, 3, "{:?}", plain.tried);
    let three = cluster(
        &t,
        &ClusterOptions {
            k: KSelection::Fixed(3),
            ..Default::default()
        },
    );
    // Asked for three, the two cpu-intensive clusters are merged, and the note says so.
    assert_eq!(
        names(&three),
        [WorkloadClass::CpuIntensive, WorkloadClass::Idle]
    );
    assert_eq!(
        three.notes,
        ["two clusters were both named cpu-intensive: merged into one (3 clusters → 2)"]
    );

    // Automatic k: the best admissible k, two clusters of distinct names.
    let auto = cluster(&t, &ClusterOptions::default());
    assert_eq!(auto.k_rule, Some(KRule::BestAdmissible));
    assert_eq!(
        names(&auto),
        [WorkloadClass::CpuIntensive, WorkloadClass::Idle]
    );
    assert_eq!((auto.k, auto.k_chosen), (2, Some(2)));
    assert!(auto.notes.is_empty(), "{:?}", auto.notes);
    let k3 = auto.k_tried.iter().find(|t| t.k == 3).unwrap();
    let k2 = auto.k_tried.iter().find(|t| t.k == 2).unwrap();
    assert!(k3.silhouette > k2.silhouette, "{:?}", auto.k_tried);
    assert!(!k3.admissible && k2.admissible);
    assert_eq!(
        k3.why_not.as_deref(),
        Some("two clusters are named cpu-intensive")
    );
    // The terminal report says the rule and each k's verdict.
    let text = auto.to_text();
    assert!(
        text.contains(
            "automatic k: the k of best silhouette among the admissible partitions — each \
             cluster holds rows named alike, and no two clusters bear the same name"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "k=3  silhouette {:.3}  not admissible: two clusters are named cpu-intensive\n",
            k3.silhouette
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "k=2  silhouette {:.3}  admissible  ← chosen\n",
            k2.silhouette
        )),
        "{text}"
    );
    // And the JSON.
    let json = serde_json::to_value(&auto).unwrap();
    assert_eq!(json["k_rule"], "best-admissible");
    assert_eq!(json["k_tried"][1]["k"], 3);
    assert_eq!(json["k_tried"][1]["admissible"], false);
}

/// No report, whatever k, names two clusters alike.
#[test]
fn no_two_clusters_share_a_name() {
    let t = table();
    for k in 1..=8 {
        let r = cluster(
            &t,
            &ClusterOptions {
                k: KSelection::Fixed(k),
                ..Default::default()
            },
        );
        let mut n = names(&r);
        n.sort_by_key(|c| c.name());
        n.dedup();
        assert_eq!(n.len(), r.clusters.len(), "k={k}: {}", r.to_text());
        assert_eq!(r.k, r.clusters.len());
    }
}
