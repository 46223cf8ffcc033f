//! The feature table as an Apache Parquet file (one row group, uncompressed), for pandas,
//! Spark, DuckDB. Columns as in the CSV: `trace`, `vm`, `level` (UTF-8 strings), `pid`,
//! the optional `vcpu`, `tid`, `cr3` and the row's window `start`, `end` (INT64, trace ns),
//! then one DOUBLE column per feature.
//! Written with the `parquet` crate's column writers (no Arrow, no codecs: a small build).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use crate::table::FeatureTable;

fn schema(table: &FeatureTable) -> String {
    let mut s = String::from(
        "message virtflow_features {\n\
         REQUIRED BYTE_ARRAY trace (UTF8);\n\
         REQUIRED BYTE_ARRAY vm (UTF8);\n\
         REQUIRED INT64 pid;\n\
         OPTIONAL INT64 vcpu;\n\
         OPTIONAL INT64 tid;\n\
         OPTIONAL INT64 cr3;\n\
         REQUIRED BYTE_ARRAY level (UTF8);\n\
         OPTIONAL INT64 start;\n\
         OPTIONAL INT64 end;\n",
    );
    for f in &table.features {
        s.push_str(&format!("REQUIRED DOUBLE {};\n", f.name));
    }
    s.push('}');
    s
}

/// Writes `table` to `path`. Errors are phrased for the user and name the file.
pub fn write(table: &FeatureTable, path: &Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let schema = Arc::new(parse_message_type(&schema(table)).map_err(|e| err(&e))?);
    let props = Arc::new(WriterProperties::builder().build());
    let file = File::create(path).map_err(|e| err(&e))?;
    let mut writer = SerializedFileWriter::new(file, schema, props).map_err(|e| err(&e))?;
    let mut group = writer.next_row_group().map_err(|e| err(&e))?;
    let rows = &table.rows;
    let strings = |f: &dyn Fn(usize) -> String| -> Vec<ByteArray> {
        (0..rows.len())
            .map(|i| ByteArray::from(f(i).as_str()))
            .collect()
    };
    let optional = |f: &dyn Fn(usize) -> Option<i64>| -> (Vec<i64>, Vec<i16>) {
        let mut values = Vec::new();
        let mut defs = Vec::new();
        for i in 0..rows.len() {
            match f(i) {
                Some(v) => {
                    values.push(v);
                    defs.push(1);
                }
                None => defs.push(0),
            }
        }
        (values, defs)
    };
    let mut index = 0usize;
    while let Some(mut col) = group.next_column().map_err(|e| err(&e))? {
        let written = match index {
            0 => col.typed::<ByteArrayType>().write_batch(
                &strings(&|i| rows[i].key.trace.clone()),
                None,
                None,
            ),
            1 => col.typed::<ByteArrayType>().write_batch(
                &strings(&|i| rows[i].key.vm.clone()),
                None,
                None,
            ),
            2 => {
                let pids: Vec<i64> = rows.iter().map(|r| r.key.pid as i64).collect();
                col.typed::<Int64Type>().write_batch(&pids, None, None)
            }
            3..=5 => {
                let (values, defs) = optional(&|i| {
                    let k = &rows[i].key;
                    match index {
                        3 => k.vcpu.map(i64::from),
                        4 => k.tid.map(i64::from),
                        _ => k.cr3.map(|c| c as i64),
                    }
                });
                col.typed::<Int64Type>()
                    .write_batch(&values, Some(&defs), None)
            }
            6 => col.typed::<ByteArrayType>().write_batch(
                &strings(&|_| table.level.name().to_string()),
                None,
                None,
            ),
            7 | 8 => {
                let (values, defs) = optional(&|i| {
                    let k = &rows[i].key;
                    if index == 7 {
                        k.start
                    } else {
                        k.end
                    }
                });
                col.typed::<Int64Type>()
                    .write_batch(&values, Some(&defs), None)
            }
            j => {
                let values: Vec<f64> = rows.iter().map(|r| r.values[j - 9]).collect();
                col.typed::<DoubleType>().write_batch(&values, None, None)
            }
        };
        written.map_err(|e| err(&e))?;
        col.close().map_err(|e| err(&e))?;
        index += 1;
    }
    group.close().map_err(|e| err(&e))?;
    writer.close().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{FeatureDef, Level, Row, RowKey};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;

    #[test]
    fn parquet_round_trip() {
        let mut t = FeatureTable::new(
            Level::Vcpu,
            vec![
                FeatureDef {
                    name: "irq_timer_rate".into(),
                    unit: "1/s".into(),
                    description: String::new(),
                },
                FeatureDef {
                    name: "cpu_use".into(),
                    unit: "ratio".into(),
                    description: String::new(),
                },
            ],
        );
        for i in 0..3u32 {
            t.rows.push(Row {
                key: RowKey {
                    trace: format!("trace{i}"),
                    host: String::new(),
                    vm: "vm1".into(),
                    pid: 127,
                    vcpu: (i != 1).then_some(i),
                    tid: Some(139 + i),
                    cr3: None,
                    start: (i != 2).then_some(1_000 * i as i64),
                    end: (i != 2).then_some(1_000 * (i as i64 + 1)),
                },
                values: vec![i as f64 * 1.5, 0.25],
                truth: None,
            });
        }
        let path =
            std::env::temp_dir().join(format!("virtflow-cluster-{}.parquet", std::process::id()));
        write(&t, &path).unwrap();
        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 3);
        let rows: Vec<_> = reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        std::fs::remove_file(&path).ok();
        assert_eq!(rows[2].get_string(0).unwrap(), "trace2");
        assert_eq!(rows[2].get_long(2).unwrap(), 127);
        assert_eq!(rows[0].get_long(3).unwrap(), 0);
        assert!(rows[1].get_long(3).is_err(), "vcpu of row 1 is null");
        assert_eq!(rows[2].get_long(4).unwrap(), 141);
        assert_eq!(rows[1].get_string(6).unwrap(), "vcpu");
        assert_eq!(rows[1].get_long(7).unwrap(), 1_000);
        assert_eq!(rows[1].get_long(8).unwrap(), 2_000);
        assert!(rows[2].get_long(7).is_err(), "no window for row 2");
        assert_eq!(rows[2].get_double(9).unwrap(), 3.0);
        assert_eq!(rows[0].get_double(10).unwrap(), 0.25);
    }
}
