//! LAMI 1.0 output: the JSON protocol between Trace Compass's "External Analyses" and an
//! analysis program (the one lttng-analyses' `lttng-*-mi` commands speak).
//!
//! The protocol, as Trace Compass drives it:
//! - `PROGRAM --mi-version` prints the MI version, `MAJOR.MINOR` on one line (`1.0`).
//! - `PROGRAM --metadata` prints one object: `mi-version`, `version`, `title`,
//!   `description`, `authors`, `tags`, and `table-classes`, a map from class name to
//!   `{title, column-descriptions: [{title, class, unit?}]}`.
//! - `PROGRAM [--output-progress] [--begin NS --end NS] [extra args] TRACE` prints
//!   `{"results": [table…]}`, each table `{time-range, class, data}` where `class` names a
//!   table class of the metadata, `time-range` is a `time-range` object whose `begin` and
//!   `end` are `timestamp` objects, and `data` is an array of rows, each an array of cells.
//!   A cell is a typed object (`{"class": "number", "value": 3}`, `{"class": "process",
//!   "name": …, "pid": …, "tid": …}`, `duration` in ns, `ratio` in 0..1, `string`…).
//! - Progress lines (`0.5 reading events`) may precede the results; errors are
//!   `{"error-message": …}`.
//!
//! Every feature row carries its window as a `time-range` cell (a whole-trace row, its host's
//! span), so that Trace Compass can select the window a row describes; a clustering by windows
//! adds a `phases` table, one row per phase of each VM.

use serde_json::{json, Map, Value};

use crate::table::{FeatureDef, FeatureTable, Level};
use crate::{json_number, ClusterReport};

pub const MI_VERSION: (u32, u32) = (1, 0);

/// What `--mi-version` prints.
pub fn mi_version_string() -> String {
    format!("{}.{}", MI_VERSION.0, MI_VERSION.1)
}

/// The LAMI data class of a feature column, from its unit.
fn column_class(unit: &str) -> &'static str {
    match unit {
        "ratio" => "ratio",
        "us" | "ns" => "duration",
        _ => "number",
    }
}

fn column(title: &str, class: &str, unit: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert("title".into(), json!(title));
    m.insert("class".into(), json!(class));
    if let Some(u) = unit {
        m.insert("unit".into(), json!(u));
    }
    Value::Object(m)
}

fn feature_columns(features: &[FeatureDef]) -> Vec<Value> {
    features
        .iter()
        .map(|f| {
            let class = column_class(&f.unit);
            let unit = (class == "number").then_some(match f.unit.as_str() {
                "1/s" => "per second",
                other => other,
            });
            column(&f.name, class, unit)
        })
        .collect()
}

fn key_columns(level: Level) -> Vec<Value> {
    let mut c = vec![
        column("Trace", "string", None),
        column("VM", "process", None),
        column("Window", "time-range", None),
    ];
    match level {
        Level::Vm => {}
        Level::Vcpu => c.push(column("vCPU", "number", None)),
        Level::Process => c.push(column("Guest CR3", "string", None)),
    }
    c.push(column("Cluster", "number", None));
    c.push(column("Cluster name", "string", None));
    c.push(column("Silhouette", "number", None));
    c
}

pub fn table_class_name(level: Level) -> String {
    format!("features-{}", level.name())
}

/// The `--metadata` object. Table classes for every level are declared, since Trace
/// Compass reads the metadata once, before it knows the arguments of a run.
pub fn metadata(vm_features: &[FeatureDef], process_features: &[FeatureDef]) -> Value {
    let mut classes = Map::new();
    for level in [Level::Vm, Level::Vcpu, Level::Process] {
        let feats = if level == Level::Process {
            process_features
        } else {
            vm_features
        };
        let mut cols = key_columns(level);
        cols.extend(feature_columns(feats));
        classes.insert(
            table_class_name(level),
            json!({
                "title": format!("Workload features per {} and their cluster", level.name()),
                "column-descriptions": cols,
            }),
        );
    }
    classes.insert(
        "phases".into(),
        json!({
            "title": "Workload phases: runs of windows in one cluster",
            "column-descriptions": [
                column("Trace", "string", None),
                column("VM", "process", None),
                column("Phase", "time-range", None),
                column("Name", "string", None),
                column("Verdict", "string", None),
            ],
        }),
    );
    classes.insert(
        "clusters".into(),
        json!({
            "title": "Workload clusters",
            "column-descriptions": [
                column("Cluster", "number", None),
                column("Name", "string", None),
                column("Members", "number", None),
                column("Silhouette", "number", None),
                column("Evidence", "string", None),
            ],
        }),
    );
    json!({
        "mi-version": {"major": MI_VERSION.0, "minor": MI_VERSION.1},
        "version": {"major": 0, "minor": 1, "patch": 0, "extra": ""},
        "title": "virtflow VM workload clusters",
        "description": "Per-VM, per-vCPU or per-guest-process feature vectors from a KVM host \
                        trace (injected interrupts by class, state shares, waits, disk and \
                        network metrics), grouped with k-means and named after their dominant \
                        features.",
        "authors": ["virtflow developers"],
        "tags": ["kvm", "virtual-machines", "clustering", "linux-kernel"],
        "table-classes": Value::Object(classes),
    })
}

fn cell(class: &str, value: Value) -> Value {
    json!({"class": class, "value": value})
}

fn time_range(begin: i64, end: i64) -> Value {
    json!({
        "class": "time-range",
        "begin": cell("timestamp", json!(begin)),
        "end": cell("timestamp", json!(end)),
    })
}

fn process_cell(name: &str, pid: u32, tid: Option<u32>) -> Value {
    let mut process = Map::new();
    process.insert("class".into(), json!("process"));
    process.insert("name".into(), json!(name));
    process.insert("pid".into(), json!(pid));
    if let Some(tid) = tid {
        process.insert("tid".into(), json!(tid));
    }
    Value::Object(process)
}

/// The results object for one clustering of `table`, over the time range `[begin, end]`.
pub fn results(table: &FeatureTable, report: &ClusterReport, begin: i64, end: i64) -> Value {
    let mut rows = Vec::new();
    // A cluster's members are its rows in table order: the silhouette of a row is its
    // cluster's next member's.
    let mut next = vec![0usize; report.clusters.len()];
    for (i, row) in table.rows.iter().enumerate() {
        let c = report.labels.get(i).copied().unwrap_or(0);
        let cluster = &report.clusters[c];
        let k = &row.key;
        let silhouette = cluster.members.get(next[c]).map_or(0.0, |m| m.silhouette);
        next[c] += 1;
        let mut cells = vec![
            cell("string", json!(k.trace)),
            process_cell(&k.vm, k.pid, k.tid),
            time_range(k.start.unwrap_or(begin), k.end.unwrap_or(end)),
        ];
        match table.level {
            Level::Vm => {}
            Level::Vcpu => cells.push(cell("number", json!(k.vcpu.unwrap_or(0)))),
            Level::Process => cells.push(cell(
                "string",
                json!(k.cr3.map(|c| format!("{c:#x}")).unwrap_or_default()),
            )),
        }
        cells.push(cell("number", json!(c)));
        cells.push(cell("string", json!(cluster.name.name())));
        cells.push(cell("number", json_number(silhouette)));
        for (f, v) in table.features.iter().zip(&row.values) {
            let class = column_class(&f.unit);
            let v = match f.unit.as_str() {
                // LAMI durations are nanoseconds.
                "us" => v * 1e3,
                _ => *v,
            };
            let v = if class == "duration" {
                json!(v.round() as i64)
            } else {
                json_number(v)
            };
            cells.push(cell(class, v));
        }
        rows.push(Value::Array(cells));
    }
    let clusters: Vec<Value> = report
        .clusters
        .iter()
        .map(|c| {
            let evidence: Vec<&str> = c.evidence.iter().map(|e| e.text.as_str()).collect();
            json!([
                cell("number", json!(c.id)),
                cell("string", json!(c.name.name())),
                cell("number", json!(c.members.len())),
                cell("number", json_number(c.silhouette)),
                cell("string", json!(evidence.join("; "))),
            ])
        })
        .collect();
    let mut tables = vec![
        json!({
            "time-range": time_range(begin, end),
            "class": table_class_name(table.level),
            "data": rows,
        }),
        json!({
            "time-range": time_range(begin, end),
            "class": "clusters",
            "data": clusters,
        }),
    ];
    let phases: Vec<Value> = report
        .timelines()
        .iter()
        .flat_map(|t| {
            t.phases.iter().map(move |p| {
                json!([
                    cell("string", json!(t.trace)),
                    process_cell(&t.vm, t.pid, t.tid),
                    time_range(p.start, p.end),
                    cell("string", json!(p.name.name())),
                    cell("string", json!(t.verdict.name())),
                ])
            })
        })
        .collect();
    if !phases.is_empty() {
        tables.push(json!({
            "time-range": time_range(begin, end),
            "class": "phases",
            "data": phases,
        }));
    }
    json!({ "results": tables })
}

/// Checks a results object against a metadata object: every table's class is declared,
/// every row has one cell per declared column, and every typed cell's class is the
/// column's. Returns the first problem found. Used by the tests, and usable by anyone who
/// writes LAMI by hand.
pub fn validate(metadata: &Value, results: &Value) -> Result<(), String> {
    let classes = metadata["table-classes"]
        .as_object()
        .ok_or("metadata: no table-classes object")?;
    if metadata["title"].as_str().is_none() {
        return Err("metadata: no title".into());
    }
    for (name, class) in classes {
        if class["title"].as_str().is_none() || class["column-descriptions"].as_array().is_none() {
            return Err(format!(
                "table class {name}: title or column-descriptions missing"
            ));
        }
    }
    let tables = results["results"]
        .as_array()
        .ok_or("results: no results array")?;
    for (t, table) in tables.iter().enumerate() {
        let tr = &table["time-range"];
        if tr["class"] != "time-range"
            || tr["begin"]["class"] != "timestamp"
            || tr["end"]["class"] != "timestamp"
        {
            return Err(format!("results[{t}]: bad time-range {tr}"));
        }
        let class_name = table["class"]
            .as_str()
            .ok_or_else(|| format!("results[{t}]: class is not a name"))?;
        let cols = classes
            .get(class_name)
            .and_then(|c| c["column-descriptions"].as_array())
            .ok_or_else(|| format!("results[{t}]: class {class_name} not in the metadata"))?;
        let data = table["data"]
            .as_array()
            .ok_or_else(|| format!("results[{t}]: no data array"))?;
        for (r, row) in data.iter().enumerate() {
            let cells = row
                .as_array()
                .ok_or_else(|| format!("results[{t}].data[{r}]: not an array"))?;
            if cells.len() != cols.len() {
                return Err(format!(
                    "results[{t}].data[{r}]: {} cells for {} columns",
                    cells.len(),
                    cols.len()
                ));
            }
            for (c, (cell, col)) in cells.iter().zip(cols).enumerate() {
                if let Some(obj) = cell.as_object() {
                    if obj.get("class") != col.get("class") {
                        return Err(format!(
                            "results[{t}].data[{r}][{c}]: class {:?}, column says {:?}",
                            obj.get("class"),
                            col.get("class")
                        ));
                    }
                    let ok = match obj["class"].as_str() {
                        Some("process") => obj.contains_key("pid") || obj.contains_key("name"),
                        Some("number" | "ratio" | "duration" | "timestamp") => {
                            obj["value"].is_number() || obj["value"].is_null()
                        }
                        Some("string") => obj["value"].is_string(),
                        _ => true,
                    };
                    if !ok {
                        return Err(format!("results[{t}].data[{r}][{c}]: bad cell {cell}"));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{process_features, vm_features};
    use crate::table::{Row, RowKey};
    use crate::{cluster, ClusterOptions, KSelection};

    fn table(level: Level) -> FeatureTable {
        let feats = if level == Level::Process {
            process_features()
        } else {
            vm_features()
        };
        let mut t = FeatureTable::new(level, feats);
        for i in 0..4u32 {
            let mut values = vec![0.0; t.features.len()];
            values[0] = if i < 2 { 500.0 } else { 5.0 };
            // Two busy rows and two idle ones: two clusters of distinct names.
            for busy in ["cpu_use", "cpu_demand", "guest_share"] {
                if let Some(c) = t.column(busy) {
                    values[c] = if i < 2 { 0.9 } else { 0.01 };
                }
            }
            t.rows.push(Row {
                key: RowKey {
                    trace: "a trace".into(),
                    host: String::new(),
                    vm: format!("vm{i}"),
                    pid: 100 + i,
                    vcpu: (level == Level::Vcpu).then_some(0),
                    tid: (level == Level::Vcpu).then_some(200 + i),
                    cr3: (level == Level::Process).then_some(0x1000 * i as u64),
                    start: Some(10),
                    end: Some(20),
                },
                values,
                truth: None,
            });
        }
        t
    }

    #[test]
    fn mi_version_is_major_dot_minor() {
        let v = mi_version_string();
        let parts: Vec<&str> = v.split('.').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit())));
        assert_eq!(v, "1.0");
    }

    #[test]
    fn results_validate_against_metadata_at_every_level() {
        let meta = metadata(&vm_features(), &process_features());
        for level in [Level::Vm, Level::Vcpu, Level::Process] {
            let t = table(level);
            let r = cluster(
                &t,
                &ClusterOptions {
                    k: KSelection::Fixed(2),
                    ..Default::default()
                },
            );
            let res = results(&t, &r, 10, 20);
            validate(&meta, &res).unwrap_or_else(|e| panic!("{level:?}: {e}"));
            assert_eq!(res["results"][0]["data"].as_array().unwrap().len(), 4);
            assert_eq!(res["results"][1]["data"].as_array().unwrap().len(), 2);
            assert_eq!(res["results"][0]["time-range"]["begin"]["value"], 10);
        }
    }

    #[test]
    fn validate_catches_mismatches() {
        let meta = metadata(&vm_features(), &process_features());
        let t = table(Level::Vm);
        let r = cluster(&t, &ClusterOptions::default());
        let mut res = results(&t, &r, 0, 1);
        res["results"][0]["data"][0].as_array_mut().unwrap().pop();
        assert!(validate(&meta, &res).unwrap_err().contains("cells for"));
        let mut res = results(&t, &r, 0, 1);
        res["results"][0]["class"] = json!("nope");
        assert!(validate(&meta, &res)
            .unwrap_err()
            .contains("not in the metadata"));
        let mut res = results(&t, &r, 0, 1);
        res["results"][0]["data"][0][0] = json!({"class": "number", "value": 1});
        assert!(validate(&meta, &res).unwrap_err().contains("column says"));
    }
}
