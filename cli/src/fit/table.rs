//! The input of `irtlake fit …`: a CSV file with a header, read whole, with typed
//! column accessors whose errors name the file, the column and the row.
//!
//! Rows are counted as data rows: row N is the Nth record after the header (line N + 1
//! of a file without quoted line breaks; the error gives the actual line too).
//! Fields are trimmed; an empty field is an error for every typed column.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;

/// A CSV file read into memory.
pub struct Table {
    path: PathBuf,
    headers: Vec<String>,
    records: Vec<csv::StringRecord>,
}

impl Table {
    /// Reads `path` (header required; every record must have the header's field count).
    pub fn read(path: &Path) -> Result<Self> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(path)
            .with_context(|| format!("reading {}", path.display()))?;
        let headers: Vec<String> = reader
            .headers()
            .with_context(|| format!("{}: reading the header", path.display()))?
            .iter()
            .map(str::to_string)
            .collect();
        if headers.iter().all(String::is_empty) {
            bail!(
                "{}: no header (the first line must name the columns)",
                path.display()
            );
        }
        let mut records = Vec::new();
        for (i, rec) in reader.records().enumerate() {
            let rec = rec.map_err(|e| match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    pos,
                    expected_len,
                    len,
                } => anyhow::anyhow!(
                    "{}: row {}{}: {len} field{} but the header has {expected_len}",
                    path.display(),
                    i + 1,
                    pos.as_ref()
                        .map(|p| format!(" (line {})", p.line()))
                        .unwrap_or_default(),
                    if *len == 1 { "" } else { "s" }
                ),
                _ => anyhow::anyhow!("{}: row {}: {e}", path.display(), i + 1),
            })?;
            records.push(rec);
        }
        Ok(Self {
            path: path.to_path_buf(),
            headers,
            records,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Fails unless the file has at least `min` data rows; `what` says who needs them
    /// (e.g. "the Cox model with 2 covariates").
    pub fn require_rows(&self, min: usize, what: &str) -> Result<()> {
        if self.len() < min {
            bail!(
                "{}: {} data row{}; {what} needs at least {min}",
                self.path.display(),
                self.len(),
                if self.len() == 1 { "" } else { "s" }
            );
        }
        Ok(())
    }

    /// Index of column `name`; the error lists the available columns.
    pub fn column(&self, name: &str) -> Result<usize> {
        self.headers
            .iter()
            .position(|h| h == name)
            .with_context(|| {
                format!(
                    "{}: no column '{name}' (available: {})",
                    self.path.display(),
                    self.headers.join(", ")
                )
            })
    }

    /// Error for the value of column `name` in data row `i` (0-based): "FILE: column
    /// 'NAME', row N (line L): MSG".
    pub fn bad(&self, name: &str, i: usize, msg: impl std::fmt::Display) -> anyhow::Error {
        let line = self.records[i]
            .position()
            .map_or(i as u64 + 2, csv::Position::line);
        anyhow::anyhow!(
            "{}: column '{name}', row {} (line {line}): {msg}",
            self.path.display(),
            i + 1
        )
    }

    /// The trimmed fields of column `name`, each non-empty.
    fn fields(&self, name: &str) -> Result<Vec<&str>> {
        let c = self.column(name)?;
        self.records
            .iter()
            .enumerate()
            .map(|(i, r)| match r.get(c) {
                Some(v) if !v.is_empty() => Ok(v),
                _ => Err(self.bad(name, i, "empty value")),
            })
            .collect()
    }

    /// Column `name` as strings (e.g. group ids).
    pub fn strings(&self, name: &str) -> Result<Vec<String>> {
        Ok(self.fields(name)?.into_iter().map(str::to_string).collect())
    }

    /// Column `name` as finite numbers.
    pub fn numeric(&self, name: &str) -> Result<Vec<f64>> {
        self.fields(name)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(x),
                Ok(_) => Err(self.bad(name, i, format!("'{v}' is not a finite number"))),
                Err(_) => Err(self.bad(name, i, format!("'{v}' is not a number"))),
            })
            .collect()
    }

    /// Several numeric columns, as one row of values per data row.
    pub fn numeric_rows(&self, names: &[String]) -> Result<Vec<Vec<f64>>> {
        let cols: Vec<Vec<f64>> = names
            .iter()
            .map(|n| self.numeric(n))
            .collect::<Result<_>>()?;
        Ok((0..self.len())
            .map(|i| cols.iter().map(|c| c[i]).collect())
            .collect())
    }

    /// Column `name` as whole numbers ≥ `min` (counts: successes, trials); `what` names
    /// the quantity in the error ("successes", "trials").
    pub fn counts(&self, name: &str, min: f64, what: &str) -> Result<Vec<f64>> {
        let v = self.numeric(name)?;
        if let Some(i) = v.iter().position(|&x| x.fract() != 0.0 || x < min) {
            return Err(self.bad(
                name,
                i,
                format!(
                    "{} is not a valid number of {what} (a whole number >= {min})",
                    v[i]
                ),
            ));
        }
        Ok(v)
    }

    /// Column `name` as 0/1 outcomes (1/0 or true/false, any case) as 1.0/0.0; `hint`
    /// is appended to the error.
    pub fn binary(&self, name: &str, hint: &str) -> Result<Vec<f64>> {
        self.fields(name)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v.to_ascii_lowercase().as_str() {
                "1" | "true" => Ok(1.0),
                "0" | "false" => Ok(0.0),
                _ => Err(self.bad(name, i, format!("'{v}' is not 0 or 1{hint}"))),
            })
            .collect()
    }

    /// Column `name` as non-negative numbers (survival times).
    pub fn times(&self, name: &str) -> Result<Vec<f64>> {
        let v = self.numeric(name)?;
        if let Some(i) = v.iter().position(|&t| t < 0.0) {
            return Err(self.bad(name, i, format!("negative time {}", v[i])));
        }
        Ok(v)
    }

    /// Column `name` as event indicators: 1/0 or true/false (any case).
    pub fn events(&self, name: &str) -> Result<Vec<bool>> {
        self.fields(name)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v.to_ascii_lowercase().as_str() {
                "1" | "true" => Ok(true),
                "0" | "false" => Ok(false),
                _ => Err(self.bad(
                    name,
                    i,
                    format!("'{v}' is not an event indicator (0, 1, true or false)"),
                )),
            })
            .collect()
    }

    /// Column `name` as `YYYY-MM-DD` dates, unique (one value per day): day numbers
    /// since 1970-01-01.
    pub fn days(&self, name: &str) -> Result<Vec<i64>> {
        let mut seen: HashMap<i64, usize> = HashMap::new();
        self.fields(name)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let d = NaiveDate::parse_from_str(v, "%Y-%m-%d")
                    .map_err(|_| self.bad(name, i, format!("'{v}' is not a date (YYYY-MM-DD)")))?;
                let day = day_number(d);
                if let Some(first) = seen.insert(day, i) {
                    return Err(self.bad(
                        name,
                        i,
                        format!("{v} repeats row {} (one value per day)", first + 1),
                    ));
                }
                Ok(day)
            })
            .collect()
    }
}

/// 1970-01-01, day 0 (the origin that gives the forecast model Prophet's weekly phase).
fn epoch() -> NaiveDate {
    chrono::DateTime::UNIX_EPOCH.date_naive()
}

/// Days since 1970-01-01.
pub fn day_number(d: NaiveDate) -> i64 {
    (d - epoch()).num_days()
}

/// The date of a day number (days since 1970-01-01).
pub fn date_of(day: i64) -> NaiveDate {
    epoch() + chrono::TimeDelta::days(day)
}
