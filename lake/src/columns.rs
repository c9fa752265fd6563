//! Arrow by name: building a catalog table's batch column by column
//! ([`TableBatch`]), and reading a query result's columns by their SQL names
//! ([`Columns`]), so that a schema change is an error that names the column, in one place,
//! instead of a silent shift of positions.
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{Float64Array, StringArray};
//! use lake::columns::{Columns, TableBatch};
//!
//! let batch = TableBatch::new(lake::catalog::ABILITIES, 2)?
//!     .text("run_id", "calibrate-2026-03-05-all")?
//!     .set("student_id", Arc::new(StringArray::from(vec!["s1", "s2"])))?
//!     .set("theta", Arc::new(Float64Array::from(vec![0.1, -0.4])))?
//!     .set("se", Arc::new(Float64Array::from(vec![0.3, 0.35])))?
//!     .set("n_responses", Arc::new(arrow::array::Int64Array::from(vec![12, 9])))?
//!     .text("method", "eap")?
//!     .timestamp("fitted_at", 0)?
//!     .finish()?;
//! let c = Columns::of(&batch);
//! assert_eq!(c.f64s("theta")?.value(1), -0.4);
//! assert!(c.f64s("nope").is_err());
//! # Ok::<(), lake::LakeError>(())
//! ```

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int64Array, PrimitiveArray,
    RecordBatch, StringArray, TimestampMicrosecondArray, new_null_array,
};
use arrow::datatypes::{ArrowPrimitiveType, Date32Type, Float64Type, Int64Type};

use chrono::NaiveDate;

use crate::catalog::{self, TableDef};
use crate::error::{LakeError, Result};

/// One record batch of a catalog table (its file schema), built by column name: each
/// column is checked against the catalog's type and the batch's row count, a nullable
/// column left unset is all nulls, and a non-null column left unset is an error.
#[derive(Debug)]
pub struct TableBatch {
    def: &'static TableDef,
    rows: usize,
    columns: Vec<Option<ArrayRef>>,
}

impl TableBatch {
    /// An empty builder of `rows` rows of `table`'s file schema.
    pub fn new(table: &str, rows: usize) -> Result<Self> {
        let def = catalog::table(table)?;
        Ok(Self {
            def,
            rows,
            columns: vec![None; def.file_schema.fields().len()],
        })
    }

    fn mismatch(&self, reason: String) -> LakeError {
        LakeError::SchemaMismatch {
            table: self.def.name.to_string(),
            reason,
        }
    }

    /// Sets column `name` to `values`, which must have the catalog's type and the
    /// batch's row count.
    pub fn set(mut self, name: &str, values: ArrayRef) -> Result<Self> {
        let (i, field) = self
            .def
            .file_schema
            .column_with_name(name)
            .ok_or_else(|| self.mismatch(format!("no column '{name}'")))?;
        if values.data_type() != field.data_type() {
            return Err(self.mismatch(format!(
                "column '{name}' is {}, given {}",
                field.data_type(),
                values.data_type()
            )));
        }
        if values.len() != self.rows {
            return Err(self.mismatch(format!(
                "column '{name}' has {} rows, the batch {}",
                values.len(),
                self.rows
            )));
        }
        if self.columns[i].is_some() {
            return Err(self.mismatch(format!("column '{name}' set twice")));
        }
        self.columns[i] = Some(values);
        Ok(self)
    }

    /// Sets the text column `name` to `value` in every row (a run id, a method).
    pub fn text(self, name: &str, value: &str) -> Result<Self> {
        let rows = self.rows;
        self.set(
            name,
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                value, rows,
            ))),
        )
    }

    /// Sets the text column `name` from optional values.
    pub fn texts<S: AsRef<str>>(self, name: &str, values: &[Option<S>]) -> Result<Self> {
        let a: StringArray = values
            .iter()
            .map(|v| v.as_ref().map(AsRef::as_ref))
            .collect();
        self.set(name, Arc::new(a))
    }

    /// Sets the Float64 column `name` from optional values.
    pub fn f64s(self, name: &str, values: Vec<Option<f64>>) -> Result<Self> {
        self.set(name, Arc::new(Float64Array::from(values)))
    }

    /// Sets the Int64 column `name` from optional values.
    pub fn i64s(self, name: &str, values: Vec<Option<i64>>) -> Result<Self> {
        self.set(name, Arc::new(Int64Array::from(values)))
    }

    /// Sets the Boolean column `name` from optional values.
    pub fn bools(self, name: &str, values: Vec<Option<bool>>) -> Result<Self> {
        self.set(name, Arc::new(BooleanArray::from(values)))
    }

    /// Sets the UTC timestamp column `name` to `micros` (µs since the epoch) in every
    /// row (the time a stage ran: [`catalog::ts_type`]).
    pub fn timestamp(self, name: &str, micros: i64) -> Result<Self> {
        let rows = self.rows;
        self.set(
            name,
            Arc::new(TimestampMicrosecondArray::from(vec![micros; rows]).with_timezone("UTC")),
        )
    }

    /// The batch: every column set, or all nulls for a nullable column left unset.
    pub fn finish(self) -> Result<RecordBatch> {
        let mut columns = Vec::with_capacity(self.columns.len());
        for (field, column) in self.def.file_schema.fields().iter().zip(&self.columns) {
            columns.push(match column {
                Some(c) => c.clone(),
                None if field.is_nullable() => new_null_array(field.data_type(), self.rows),
                None => {
                    return Err(self.mismatch(format!("column '{}' was not set", field.name())));
                }
            });
        }
        Ok(RecordBatch::try_new(self.def.file_schema.clone(), columns)?)
    }
}

/// The columns of a query result (or of a table's batch), by name: typed views that
/// fail with the column's name and type when the name is missing or the type differs.
#[derive(Debug, Clone, Copy)]
pub struct Columns<'a> {
    batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    /// The columns of `batch`.
    pub fn of(batch: &'a RecordBatch) -> Self {
        Self { batch }
    }

    /// Column `name`, whatever its type.
    pub fn column(&self, name: &str) -> Result<&'a ArrayRef> {
        let batch: &'a RecordBatch = self.batch;
        batch.column_by_name(name).ok_or_else(|| {
            let names: Vec<&str> = batch
                .schema_ref()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            LakeError::InvalidInput(format!("no column '{name}' in the result ({names:?})"))
        })
    }

    fn wrong_type(&self, name: &str, expected: &str) -> LakeError {
        let got = self
            .batch
            .column_by_name(name)
            .map_or_else(|| "nothing".to_string(), |c| c.data_type().to_string());
        LakeError::InvalidInput(format!("column '{name}': expected {expected}, got {got}"))
    }

    /// Column `name` as strings (`Utf8`).
    pub fn strings(&self, name: &str) -> Result<&'a StringArray> {
        self.column(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| self.wrong_type(name, "Utf8"))
    }

    /// Column `name` as booleans.
    pub fn bools(&self, name: &str) -> Result<&'a BooleanArray> {
        self.column(name)?
            .as_boolean_opt()
            .ok_or_else(|| self.wrong_type(name, "Boolean"))
    }

    /// Column `name` as primitives of type `T`.
    pub fn primitives<T: ArrowPrimitiveType>(&self, name: &str) -> Result<&'a PrimitiveArray<T>> {
        self.column(name)?
            .as_primitive_opt::<T>()
            .ok_or_else(|| self.wrong_type(name, &T::DATA_TYPE.to_string()))
    }

    /// Column `name` as Float64.
    pub fn f64s(&self, name: &str) -> Result<&'a Float64Array> {
        self.primitives::<Float64Type>(name)
    }

    /// Column `name` as Int64.
    pub fn i64s(&self, name: &str) -> Result<&'a Int64Array> {
        self.primitives::<Int64Type>(name)
    }

    /// Column `name` as days (`Date32`: the date partitions).
    pub fn days(&self, name: &str) -> Result<&'a Date32Array> {
        self.primitives::<Date32Type>(name)
    }
}

/// Row `r` of a `Date32` column as a date; `None` when null (or out of chrono's range).
pub fn opt_day(a: &Date32Array, r: usize) -> Option<NaiveDate> {
    if a.is_null(r) {
        None
    } else {
        a.value_as_date(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ABILITIES;

    fn abilities(rows: usize) -> TableBatch {
        TableBatch::new(ABILITIES, rows).unwrap()
    }

    #[test]
    fn a_batch_is_built_by_name_in_catalog_order() {
        let b = abilities(1)
            .timestamp("fitted_at", 7)
            .unwrap()
            .text("method", "eap")
            .unwrap()
            .i64s("n_responses", vec![Some(3)])
            .unwrap()
            .f64s("se", vec![Some(0.5)])
            .unwrap()
            .f64s("theta", vec![Some(1.5)])
            .unwrap()
            .texts("student_id", &[Some("s1")])
            .unwrap()
            .text("run_id", "r")
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(b.schema(), catalog::table(ABILITIES).unwrap().file_schema);
        let c = Columns::of(&b);
        assert_eq!(c.f64s("theta").unwrap().value(0), 1.5);
        assert_eq!(c.strings("student_id").unwrap().value(0), "s1");
        assert_eq!(c.i64s("n_responses").unwrap().value(0), 3);
    }

    #[test]
    fn mistakes_name_the_table_and_column() {
        let e = abilities(1).f64s("thetaa", vec![Some(1.0)]).unwrap_err();
        assert!(e.to_string().contains("no column 'thetaa'"), "{e}");
        let e = abilities(1).i64s("theta", vec![Some(1)]).unwrap_err();
        assert!(
            e.to_string()
                .contains("column 'theta' is Float64, given Int64"),
            "{e}"
        );
        let e = abilities(2).f64s("theta", vec![Some(1.0)]).unwrap_err();
        assert!(e.to_string().contains("1 rows, the batch 2"), "{e}");
        let e = abilities(1)
            .text("run_id", "r")
            .unwrap()
            .text("run_id", "r")
            .unwrap_err();
        assert!(e.to_string().contains("set twice"), "{e}");
        let e = abilities(1)
            .text("run_id", "r")
            .unwrap()
            .finish()
            .unwrap_err();
        assert!(
            e.to_string().contains("'abilities'") && e.to_string().contains("not set"),
            "{e}"
        );
    }

    #[test]
    fn unset_nullable_columns_are_null() {
        let b = TableBatch::new(crate::catalog::WEEKLY_KPI, 2)
            .unwrap()
            .text("run_id", "r")
            .unwrap()
            .texts("student_id", &[Some("a"), Some("b")])
            .unwrap()
            .f64s("i_t", vec![Some(0.1), None])
            .unwrap()
            .i64s("n_responses", vec![Some(4), Some(5)])
            .unwrap()
            .timestamp("updated_at", 0)
            .unwrap()
            .finish()
            .unwrap();
        let c = Columns::of(&b);
        assert_eq!(c.f64s("i_t").unwrap().null_count(), 1);
        for name in ["a_t", "s", "p", "sigma"] {
            assert_eq!(c.f64s(name).unwrap().null_count(), 2, "{name}");
        }
        assert_eq!(c.strings("p_model").unwrap().null_count(), 2);
    }

    #[test]
    fn reading_a_missing_or_mistyped_column_says_which() {
        let b = abilities(1)
            .text("run_id", "r")
            .unwrap()
            .texts("student_id", &[Some("s")])
            .unwrap()
            .f64s("theta", vec![Some(0.25)])
            .unwrap()
            .f64s("se", vec![Some(0.5)])
            .unwrap()
            .i64s("n_responses", vec![Some(1)])
            .unwrap()
            .text("method", "eap")
            .unwrap()
            .timestamp("fitted_at", 0)
            .unwrap()
            .finish()
            .unwrap();
        let c = Columns::of(&b);
        let e = c.f64s("student_id").unwrap_err().to_string();
        assert!(
            e.contains("column 'student_id': expected Float64, got Utf8"),
            "{e}"
        );
        let e = c.strings("nope").unwrap_err().to_string();
        assert!(e.contains("no column 'nope'") && e.contains("theta"), "{e}");
        assert_eq!(c.f64s("theta").unwrap().value(0), 0.25);
    }
}
