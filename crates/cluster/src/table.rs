//! The feature table: one row per VM, vCPU or guest process — over the whole trace or over
//! one time window — one column per feature, and its CSV form (written for pandas/Spark; the
//! tests read it back).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// What one row describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Vm,
    Vcpu,
    Process,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Vm => "vm",
            Level::Vcpu => "vcpu",
            Level::Process => "process",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "vm" => Some(Level::Vm),
            "vcpu" => Some(Level::Vcpu),
            "process" => Some(Level::Process),
            _ => None,
        }
    }
}

/// One column: its name (snake_case, stable: it is the CSV header and the JSON key), unit,
/// and a one-line description. `docs/features.md` lists them all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureDef {
    pub name: String,
    pub unit: String,
    pub description: String,
}

/// Who a row describes: the trace it came from, the VM, and at the finer levels the vCPU
/// (number and host thread) or the guest process (CR3); and when: the window `[start, end)`
/// (trace ns; a whole-trace row covers its host's span).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RowKey {
    pub trace: String,
    /// The host the VM ran on (an experiment of several hosts has one row per VM per host).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    pub vm: String,
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cr3: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
}

impl RowKey {
    /// The same VM, vCPU or process over any time: the key without its window.
    pub fn entity(&self) -> RowKey {
        RowKey {
            start: None,
            end: None,
            ..self.clone()
        }
    }

    /// A short label for tables and plots: `vm1 (pid 127)`, `vm1 vCPU 0`, `vm1 cr3 0x1234`.
    pub fn label(&self) -> String {
        let mut s = if self.vm.is_empty() {
            format!("pid {}", self.pid)
        } else {
            self.vm.clone()
        };
        if let Some(v) = self.vcpu {
            let _ = write!(s, " vCPU {v}");
        }
        if let Some(c) = self.cr3 {
            let _ = write!(s, " cr3 {c:#x}");
        }
        s
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub key: RowKey,
    /// One value per [`FeatureTable::features`] entry.
    pub values: Vec<f64>,
    /// The known workload class (simulator truth, manifest), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truth: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureTable {
    pub level: Level,
    pub features: Vec<FeatureDef>,
    pub rows: Vec<Row>,
    /// When the rows are time windows: their length (ns; a table joined from several
    /// experiments keeps the first's). `None`: one row per VM, vCPU or process over the whole
    /// trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_ns: Option<i64>,
}

/// The identity columns that precede the features in CSV and Parquet (`start`, `end`: the
/// row's window, trace ns).
pub const KEY_COLUMNS: [&str; 9] = [
    "trace", "vm", "pid", "vcpu", "tid", "cr3", "level", "start", "end",
];

impl FeatureTable {
    pub fn new(level: Level, features: Vec<FeatureDef>) -> Self {
        FeatureTable {
            level,
            features,
            rows: Vec::new(),
            window_ns: None,
        }
    }

    /// Whether the rows are time windows.
    pub fn windowed(&self) -> bool {
        self.window_ns.is_some()
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.features.iter().position(|f| f.name == name)
    }

    pub fn value(&self, row: usize, name: &str) -> Option<f64> {
        Some(self.rows[row].values[self.column(name)?])
    }

    /// Appends the rows of another table with the same columns (several traces → one table).
    /// Windows join windows (of any length: rates are per second), whole-trace rows join
    /// whole-trace rows.
    pub fn extend(&mut self, other: FeatureTable) -> Result<(), String> {
        if other.features != self.features || other.level != self.level {
            return Err("feature tables with different columns cannot be joined".into());
        }
        if other.windowed() != self.windowed() {
            return Err("a table of windows cannot be joined with whole-trace rows".into());
        }
        self.rows.extend(other.rows);
        Ok(())
    }

    /// The CSV form: a header of [`KEY_COLUMNS`] then the feature names; empty cells for
    /// absent keys; numbers in Rust's shortest round-trip form. RFC 4180 quoting.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let header: Vec<&str> = KEY_COLUMNS
            .iter()
            .copied()
            .chain(self.features.iter().map(|f| f.name.as_str()))
            .collect();
        out.push_str(
            &header
                .iter()
                .map(|h| csv_field(h))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
        for row in &self.rows {
            let k = &row.key;
            let mut cells = vec![
                csv_field(&k.trace),
                csv_field(&k.vm),
                k.pid.to_string(),
                k.vcpu.map(|v| v.to_string()).unwrap_or_default(),
                k.tid.map(|v| v.to_string()).unwrap_or_default(),
                k.cr3.map(|v| format!("{v:#x}")).unwrap_or_default(),
                self.level.name().to_string(),
                k.start.map(|v| v.to_string()).unwrap_or_default(),
                k.end.map(|v| v.to_string()).unwrap_or_default(),
            ];
            cells.extend(row.values.iter().map(|v| format!("{v:?}")));
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// How rows are scaled before clustering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Normalization {
    /// Each row divided by its Euclidean norm (the seed research's choice): compares the
    /// *profile* of a row, not its magnitude.
    L2,
    /// Each column centred on its mean and divided by its standard deviation; a constant
    /// column becomes 0.
    ZScore,
}

impl Normalization {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "l2" => Some(Normalization::L2),
            "zscore" => Some(Normalization::ZScore),
            _ => None,
        }
    }
}

pub fn normalize(rows: &[Vec<f64>], how: Normalization) -> Vec<Vec<f64>> {
    match how {
        Normalization::L2 => rows
            .iter()
            .map(|r| {
                let norm = r.iter().map(|x| x * x).sum::<f64>().sqrt();
                if norm > 0.0 {
                    r.iter().map(|x| x / norm).collect()
                } else {
                    r.clone()
                }
            })
            .collect(),
        Normalization::ZScore => {
            let n = rows.len() as f64;
            let dim = rows.first().map_or(0, |r| r.len());
            let mut means = vec![0.0; dim];
            for r in rows {
                for (m, x) in means.iter_mut().zip(r) {
                    *m += x / n;
                }
            }
            let mut sds = vec![0.0; dim];
            for r in rows {
                for ((s, x), m) in sds.iter_mut().zip(r).zip(&means) {
                    *s += (x - m) * (x - m) / n;
                }
            }
            rows.iter()
                .map(|r| {
                    r.iter()
                        .zip(&means)
                        .zip(&sds)
                        .map(|((x, m), s)| if *s > 0.0 { (x - m) / s.sqrt() } else { 0.0 })
                        .collect()
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the form [`FeatureTable::to_csv`] writes, so that the round trip shows it loses
    /// nothing. Units and descriptions are not in a CSV: they come back from the catalogue
    /// when the name is known, else empty.
    fn from_csv(text: &str, catalogue: &[FeatureDef]) -> Result<FeatureTable, String> {
        let mut records = parse_csv(text)?.into_iter();
        let header = records.next().ok_or("empty CSV")?;
        if header.len() < KEY_COLUMNS.len()
            || header[..KEY_COLUMNS.len()]
                .iter()
                .zip(KEY_COLUMNS)
                .any(|(a, b)| a != b)
        {
            return Err(format!(
                "CSV header must start with {}",
                KEY_COLUMNS.join(",")
            ));
        }
        let features: Vec<FeatureDef> = header[KEY_COLUMNS.len()..]
            .iter()
            .map(|n| {
                catalogue
                    .iter()
                    .find(|f| &f.name == n)
                    .cloned()
                    .unwrap_or(FeatureDef {
                        name: n.clone(),
                        unit: String::new(),
                        description: String::new(),
                    })
            })
            .collect();
        let mut level = None;
        let mut rows = Vec::new();
        for (line, rec) in records.enumerate() {
            let line = line + 2;
            if rec.len() != header.len() {
                return Err(format!(
                    "CSV record {line}: {} fields, header has {}",
                    rec.len(),
                    header.len()
                ));
            }
            let opt_u32 = |s: &str| -> Result<Option<u32>, String> {
                if s.is_empty() {
                    Ok(None)
                } else {
                    s.parse()
                        .map(Some)
                        .map_err(|_| format!("CSV record {line}: bad integer {s:?}"))
                }
            };
            let cr3 = if rec[5].is_empty() {
                None
            } else {
                let digits = rec[5].trim_start_matches("0x");
                Some(
                    u64::from_str_radix(digits, 16)
                        .map_err(|_| format!("CSV record {line}: bad cr3 {:?}", rec[5]))?,
                )
            };
            let row_level = Level::parse(&rec[6])
                .ok_or_else(|| format!("CSV record {line}: bad level {:?}", rec[6]))?;
            let opt_i64 = |s: &str| -> Result<Option<i64>, String> {
                if s.is_empty() {
                    Ok(None)
                } else {
                    s.parse()
                        .map(Some)
                        .map_err(|_| format!("CSV record {line}: bad time {s:?}"))
                }
            };
            if *level.get_or_insert(row_level) != row_level {
                return Err(format!("CSV record {line}: levels are mixed"));
            }
            let values = rec[KEY_COLUMNS.len()..]
                .iter()
                .map(|s| {
                    s.parse::<f64>()
                        .map_err(|_| format!("CSV record {line}: bad number {s:?}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            rows.push(Row {
                key: RowKey {
                    trace: rec[0].clone(),
                    host: String::new(),
                    vm: rec[1].clone(),
                    pid: opt_u32(&rec[2])?.unwrap_or(0),
                    vcpu: opt_u32(&rec[3])?,
                    tid: opt_u32(&rec[4])?,
                    cr3,
                    start: opt_i64(&rec[7])?,
                    end: opt_i64(&rec[8])?,
                },
                values,
                truth: None,
            });
        }
        Ok(FeatureTable {
            level: level.unwrap_or(Level::Vm),
            features,
            rows,
            window_ns: None,
        })
    }

    /// RFC 4180 records: quoted fields may hold commas, doubled quotes and line breaks.
    fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
        let mut records = Vec::new();
        let mut record = Vec::new();
        let mut field = String::new();
        let mut chars = text.chars().peekable();
        let mut quoted = false;
        let mut any = false;
        while let Some(c) = chars.next() {
            any = true;
            if quoted {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => quoted = false,
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                '"' if field.is_empty() => quoted = true,
                ',' => record.push(std::mem::take(&mut field)),
                '\r' => {}
                '\n' => {
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                    any = false;
                }
                _ => field.push(c),
            }
        }
        if quoted {
            return Err("CSV ends inside a quoted field".into());
        }
        if any {
            record.push(field);
            records.push(record);
        }
        Ok(records)
    }

    fn sample() -> FeatureTable {
        let feats = vec![
            FeatureDef {
                name: "a".into(),
                unit: "1/s".into(),
                description: "A".into(),
            },
            FeatureDef {
                name: "b".into(),
                unit: "ratio".into(),
                description: "B".into(),
            },
        ];
        let mut t = FeatureTable::new(Level::Process, feats);
        t.rows.push(Row {
            key: RowKey {
                trace: "dir, with \"comma\"/trace.dat".into(),
                host: String::new(),
                vm: "vm1".into(),
                pid: 127,
                vcpu: Some(0),
                tid: Some(139),
                cr3: Some(0x1_2345_6000),
                start: Some(-5),
                end: Some(1_000_000_007),
            },
            values: vec![0.1 + 0.2, 1e-300],
            truth: None,
        });
        t.rows.push(Row {
            key: RowKey {
                trace: "t2".into(),
                host: String::new(),
                vm: "line\nbreak".into(),
                pid: 5,
                ..Default::default()
            },
            values: vec![f64::MAX, -0.0],
            truth: None,
        });
        t
    }

    #[test]
    fn csv_round_trip_is_exact() {
        let t = sample();
        let csv = t.to_csv();
        let back = from_csv(&csv, &t.features).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn csv_errors_name_the_record() {
        let t = sample();
        let csv = t.to_csv().replace("0.30000000000000004", "x");
        let err = from_csv(&csv, &[]).unwrap_err();
        assert!(
            err.contains("record 2") && err.contains("bad number"),
            "{err}"
        );
        assert!(from_csv("a,b\n", &[]).is_err());
    }

    #[test]
    fn l2_rows_have_unit_norm() {
        let n = normalize(&[vec![3.0, 4.0], vec![0.0, 0.0]], Normalization::L2);
        assert_eq!(n[0], vec![0.6, 0.8]);
        assert_eq!(n[1], vec![0.0, 0.0]);
    }

    #[test]
    fn zscore_columns_are_standardised() {
        let n = normalize(
            &[vec![1.0, 5.0], vec![3.0, 5.0], vec![5.0, 5.0]],
            Normalization::ZScore,
        );
        let sd = (8.0f64 / 3.0).sqrt();
        assert!((n[0][0] + 2.0 / sd).abs() < 1e-12);
        assert_eq!(n[1][0], 0.0);
        assert!(n.iter().all(|r| r[1] == 0.0));
    }
}
