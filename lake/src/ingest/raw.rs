//! Reading an input file (CSV or Parquet) into string columns ([`RawTable`]), and
//! collecting row errors into one message ([`Problems`]).

use std::fs::File;
use std::path::Path as FsPath;

use arrow::array::RecordBatchReader;
use arrow::array::{Array, ArrayRef, AsArray, StringArray, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{LakeError, Result};

/// How many row errors are listed before the message says "and N more".
const MAX_LISTED_ERRORS: usize = 10;

/// Every column of an input file as strings (Parquet columns are cast), with the
/// file name and how to name a row in messages.
pub(crate) struct RawTable {
    pub(crate) file: String,
    csv: bool,
    names: Vec<String>,
    columns: Vec<StringArray>,
    pub(crate) rows: usize,
}

impl RawTable {
    pub(crate) fn column(&self, name: &str) -> Option<&StringArray> {
        self.names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
            .map(|i| &self.columns[i])
    }

    /// Row `i` (0-based data row) as users see it.
    pub(crate) fn row_name(&self, i: usize) -> String {
        if self.csv {
            format!("row {} (line {})", i + 1, i + 2)
        } else {
            format!("row {}", i + 1)
        }
    }

    pub(crate) fn require(&self, cols: &[&str]) -> Result<()> {
        let missing: Vec<&str> = cols
            .iter()
            .copied()
            .filter(|c| self.column(c).is_none())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(LakeError::InvalidInput(format!(
                "{}: missing required column(s) {} (found: {})",
                self.file,
                missing.join(", "),
                self.names.join(", ")
            )))
        }
    }
}

/// Collects row errors and turns them into one message.
pub(crate) struct Problems {
    file: String,
    list: Vec<String>,
    count: usize,
}

impl Problems {
    pub(crate) fn new(file: &str) -> Self {
        Self {
            file: file.to_string(),
            list: Vec::new(),
            count: 0,
        }
    }
    pub(crate) fn push(&mut self, msg: String) {
        self.count += 1;
        if self.list.len() < MAX_LISTED_ERRORS {
            self.list.push(msg);
        }
    }
    pub(crate) fn finish(self) -> Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        let more = self.count - self.list.len();
        let mut msg = format!(
            "{}: {} invalid value(s); nothing was written:\n  {}",
            self.file,
            self.count,
            self.list.join("\n  ")
        );
        if more > 0 {
            msg.push_str(&format!("\n  … and {more} more"));
        }
        Err(LakeError::InvalidInput(msg))
    }
}

/// Reads a CSV (header row required) or Parquet file (by extension, else by magic bytes).
pub(crate) fn read_raw(path: &FsPath) -> Result<RawTable> {
    let file = path.display().to_string();
    let is_parquet = match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq") => true,
        Some(e) if e.eq_ignore_ascii_case("csv") => false,
        _ => {
            let mut magic = [0u8; 4];
            use std::io::Read;
            let n = File::open(path)
                .and_then(|mut f| f.read(&mut magic))
                .map_err(|e| LakeError::InvalidInput(format!("{file}: cannot read: {e}")))?;
            n == 4 && &magic == b"PAR1"
        }
    };
    if is_parquet {
        read_parquet(path, file)
    } else {
        read_csv(path, file)
    }
}

fn read_csv(path: &FsPath, file: String) -> Result<RawTable> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_path(path)
        .map_err(|e| LakeError::InvalidInput(format!("{file}: cannot read CSV: {e}")))?;
    let names: Vec<String> = reader
        .headers()
        .map_err(|e| LakeError::InvalidInput(format!("{file}: cannot read the header: {e}")))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let mut builders: Vec<StringBuilder> = names.iter().map(|_| StringBuilder::new()).collect();
    let mut rows = 0;
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| {
            LakeError::InvalidInput(format!("{file}: row {} (line {}): {e}", i + 1, i + 2))
        })?;
        for (b, v) in builders.iter_mut().zip(rec.iter()) {
            let v = v.trim();
            if v.is_empty() {
                b.append_null();
            } else {
                b.append_value(v);
            }
        }
        rows += 1;
    }
    Ok(RawTable {
        file,
        csv: true,
        names,
        columns: builders.into_iter().map(|mut b| b.finish()).collect(),
        rows,
    })
}

fn read_parquet(path: &FsPath, file: String) -> Result<RawTable> {
    let corrupt =
        |e: String| LakeError::InvalidInput(format!("{file}: not a readable Parquet file: {e}"));
    let f = File::open(path).map_err(|e| corrupt(e.to_string()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| corrupt(e.to_string()))?
        .build()
        .map_err(|e| corrupt(e.to_string()))?;
    let schema = reader.schema();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut parts: Vec<Vec<StringArray>> = names.iter().map(|_| Vec::new()).collect();
    let mut rows = 0;
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(e.to_string()))?;
        rows += batch.num_rows();
        for (i, col) in batch.columns().iter().enumerate() {
            parts[i].push(to_strings(col).map_err(|e| {
                LakeError::InvalidInput(format!("{file}: column '{}': {e}", names[i]))
            })?);
        }
    }
    let columns = parts
        .into_iter()
        .map(|p| {
            let refs: Vec<&dyn Array> = p.iter().map(|a| a as &dyn Array).collect();
            if refs.is_empty() {
                Ok(StringArray::from(Vec::<Option<&str>>::new()))
            } else {
                Ok(arrow::compute::concat(&refs)?.as_string::<i32>().clone())
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RawTable {
        file,
        csv: false,
        names,
        columns,
        rows,
    })
}

/// Casts any column to strings; lists become JSON arrays of their string values.
fn to_strings(col: &ArrayRef) -> std::result::Result<StringArray, String> {
    match col.data_type() {
        DataType::List(_) | DataType::LargeList(_) => {
            let mut b = StringBuilder::new();
            for i in 0..col.len() {
                if col.is_null(i) {
                    b.append_null();
                    continue;
                }
                let inner = match col.data_type() {
                    DataType::List(_) => col.as_list::<i32>().value(i),
                    _ => col.as_list::<i64>().value(i),
                };
                let inner = cast(&inner, &DataType::Utf8).map_err(|e| e.to_string())?;
                let s = inner.as_string::<i32>();
                let vals: Vec<&str> = (0..s.len())
                    .filter(|&j| !s.is_null(j))
                    .map(|j| s.value(j))
                    .collect();
                b.append_value(serde_json::to_string(&vals).map_err(|e| e.to_string())?);
            }
            Ok(b.finish())
        }
        _ => cast(col, &DataType::Utf8)
            .map(|a| a.as_string::<i32>().clone())
            .map_err(|e| format!("cannot read as text: {e}")),
    }
}

/// The cell `cell` of column `name` parsed by `parse` (whose error says what was expected
/// and what was found); a missing value when `required`, or a value that does not parse,
/// is pushed to `problems` naming the row (`row()`, built only then) and column.
pub(crate) fn parsed<T>(
    problems: &mut Problems,
    row: &dyn Fn() -> String,
    name: &str,
    cell: Option<&str>,
    required: bool,
    parse: impl FnOnce(&str) -> std::result::Result<T, String>,
) -> Option<T> {
    let Some(s) = cell else {
        if required {
            problems.push(format!("{}, column '{name}': value is missing", row()));
        }
        return None;
    };
    parse(s)
        .map_err(|why| problems.push(format!("{}, column '{name}': {why}", row())))
        .ok()
}

/// The cell of row `i` of a column (`None` when the column is absent or the cell null).
pub(crate) fn value(col: Option<&StringArray>, i: usize) -> Option<&str> {
    col.and_then(|c| if c.is_null(i) { None } else { Some(c.value(i)) })
}
