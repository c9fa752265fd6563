//! Student buckets: a stable hash of `student_id` into [`STUDENT_BUCKETS`] buckets, the
//! unit of a seeded random sample of students and of a student shard (DESIGN.md §7).
//!
//! Every lake session registers it as the SQL function
//! `student_bucket(student_id, seed) -> BIGINT` (see [`student_bucket_udf`]), so a query
//! can restrict itself to a range of buckets in its `WHERE` clause, evaluated while the
//! Parquet files are scanned, before any sort, window or join:
//!
//! ```sql
//! SELECT count(*) FROM attempts WHERE student_bucket(student_id, 0) < 256
//! ```
//!
//! and `student_bucket_in(student_id, seed, lo, hi) -> BOOLEAN` ([`student_bucket_in_udf`]),
//! true where `lo <= student_bucket(student_id, seed) < hi`: a shard's predicate with
//! one hash per row instead of the two of `student_bucket(…) >= lo AND
//! student_bucket(…) < hi` (DataFusion evaluates each call), and no `BIGINT` column in
//! between. Every stage reads its shard this way:
//!
//! ```sql
//! SELECT count(*) FROM attempts WHERE student_bucket_in(student_id, 0, 512, 1024)
//! ```
//!
//! **Definition** (fixed: changing it changes every sample and shard, so it is written
//! here and pinned by unit tests on fixed values). All arithmetic is on unsigned 64-bit
//! integers, wrapping:
//!
//! ```text
//! mix(z)  = z ^= z >> 30; z *= 0xbf58476d1ce4e5b9;      (SplitMix64 finaliser)
//!           z ^= z >> 27; z *= 0x94d049bb133111eb; z ^ (z >> 31)
//! h       = 0xcbf29ce484222325 ^ mix(seed)                (FNV-1a offset basis, seeded)
//! for each byte x of the UTF-8 encoding of student_id:
//!           h = (h ^ x) * 0x100000001b3                   (FNV-1a 64)
//! bucket  = mix(h) >> 52                                  (top 12 bits: 0 ..= 4095)
//! ```
//!
//! `seed` is a 64-bit integer; in SQL it is a `BIGINT` read as its two's-complement bits
//! (so `-1` is seed `0xffff…ffff`). The result depends only on the bytes of the id and
//! the seed: not on the platform, the byte order, the Rust version or the order of rows.
//! For a fixed seed, ids fall into buckets independently and uniformly (up to the
//! hash's quality), so the students of buckets `0..k` are a random sample of `k / 4096`
//! of the students, of any sub-population, and of any day.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, StringArrayType};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::DataType;
use datafusion::common::{ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

/// Number of student buckets (`student_bucket` returns `0 ..= STUDENT_BUCKETS − 1`).
/// 4096 buckets sample a platform in steps of 1/4096 (≈ 0.024 %) of its students.
pub const STUDENT_BUCKETS: u64 = 4096;

/// Name of the SQL function.
pub const STUDENT_BUCKET_FN: &str = "student_bucket";

/// Name of the SQL range predicate on buckets ([`student_bucket_in_udf`]).
pub const STUDENT_BUCKET_IN_FN: &str = "student_bucket_in";

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijection of `u64` whose
/// output bits each depend on every input bit.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a 64 of `bytes` from the state `h` (Fowler–Noll–Vo; `h` = the offset basis
/// `0xcbf29ce484222325` for the plain hash): stable across builds and platforms.
pub fn fnv1a64_from(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &x| (h ^ u64::from(x)).wrapping_mul(FNV_PRIME))
}

/// Plain FNV-1a 64 of `bytes` (the report shards and forecast seeds use it).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_from(FNV_OFFSET, bytes)
}

/// The 64-bit seeded hash of a student id (see the module docs).
pub fn student_hash(student_id: &str, seed: u64) -> u64 {
    mix64(fnv1a64_from(
        FNV_OFFSET ^ mix64(seed),
        student_id.as_bytes(),
    ))
}

/// The bucket of a student id, `0 ..= STUDENT_BUCKETS − 1` (see the module docs).
pub fn student_bucket(student_id: &str, seed: u64) -> u64 {
    student_hash(student_id, seed) >> (64 - STUDENT_BUCKETS.trailing_zeros())
}

/// Seed of the student buckets that shard the stages (a shard is a range of buckets of
/// this seed). Fixed: changing it moves every student to another shard.
pub const SHARD_SEED: u64 = 0;

/// Most shards a stage run may be split into (a shard holds at least 4 buckets).
pub const MAX_SHARDS: u32 = 1024;

/// One shard of the students: shard `index` of `count` holds the students whose
/// [`student_bucket`] under [`SHARD_SEED`] lies in
/// `[index · 4096 / count, (index + 1) · 4096 / count)` (integer division), so the
/// shards of one count partition the students, each holds `1/count` of them up to
/// sampling, and a student's shard depends only on its id and the count.
///
/// A sharded stage reads only its shard's students (the SQL predicate
/// `student_bucket_in(student_id, 0, lo, hi)`,
/// [`Shard::bucket_range`]) and writes its rows as its own object of each partition,
/// [`Shard::object_name`], so the shards of a run never rewrite each other
/// (DESIGN.md §7, [`crate::Lake::write_partition_shard`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Shard {
    /// This shard, `0 .. count`.
    pub index: u32,
    /// Number of shards of the run, `1 ..= MAX_SHARDS`.
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Self::WHOLE
    }
}

impl Shard {
    /// The whole platform as one shard (an unsharded run).
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`; an error names what is out of range.
    pub fn new(index: u32, count: u32) -> Result<Self, String> {
        if !(1..=MAX_SHARDS).contains(&count) {
            return Err(format!("shards must be in 1..={MAX_SHARDS}, got {count}"));
        }
        if index >= count {
            return Err(format!(
                "shard must be in 0..shards, got shard {index} of {count}"
            ));
        }
        Ok(Self { index, count })
    }

    /// Whether this is the only shard of its run.
    pub fn is_whole(&self) -> bool {
        self.count == 1
    }

    /// The student buckets of this shard, `lo .. hi` (under [`SHARD_SEED`]).
    pub fn bucket_range(&self) -> std::ops::Range<u64> {
        let edge = |i: u32| u64::from(i) * STUDENT_BUCKETS / u64::from(self.count);
        edge(self.index)..edge(self.index + 1)
    }

    /// `[lo, hi)` of [`Shard::bucket_range`] as SQL parameters (`BIGINT`), for the
    /// predicate `student_bucket_in(student_id, 0, $lo, $hi)`.
    pub fn sql_params(&self) -> [ScalarValue; 2] {
        let r = self.bucket_range();
        [
            ScalarValue::Int64(Some(r.start as i64)),
            ScalarValue::Int64(Some(r.end as i64)),
        ]
    }

    /// Whether `student_id` belongs to this shard.
    pub fn contains(&self, student_id: &str) -> bool {
        self.bucket_range()
            .contains(&student_bucket(student_id, SHARD_SEED))
    }

    /// Name of this shard's object inside a partition: `part-0.parquet` for a whole run
    /// (the name every unsharded write uses), else `part-KKKK-of-NNNN.parquet`.
    pub fn object_name(&self) -> String {
        if self.is_whole() {
            crate::store::PARTITION_OBJECT.to_string()
        } else {
            format!("part-{:04}-of-{:04}.parquet", self.index, self.count)
        }
    }

    /// Whether an object named `name` (the last segment of its key) was written by a run
    /// with another shard count than this one's: what a write of this layout sweeps.
    pub fn is_other_layout(&self, name: &str) -> bool {
        if !name.ends_with(".parquet") {
            return false;
        }
        if self.is_whole() {
            return name != crate::store::PARTITION_OBJECT;
        }
        let suffix = format!("-of-{:04}.parquet", self.count);
        !(name.starts_with("part-") && name.ends_with(&suffix))
    }

    /// The fit sample of a cohort-level model as a shard: shard 0 of the smallest `m`
    /// whose first `⌊4096 / m⌋` buckets hold at most `max_students` students
    /// (`bucket_counts[b]`: students of bucket `b` under [`SHARD_SEED`]), so the sample
    /// is a simple random sample of `1/m` of the students that every shard-reading query
    /// can select. [`Shard::WHOLE`] when everyone fits; shard 0 of [`MAX_SHARDS`] when
    /// even that exceeds the cap (the caller says so). A larger cap never gives a
    /// smaller sample, and the sample for a larger cap contains the one for a smaller.
    pub fn fit_sample(bucket_counts: &[u64], max_students: u64) -> Shard {
        let m = prefix_parts(bucket_counts, max_students.max(1), MAX_SHARDS);
        Shard::new(0, m).unwrap_or(Shard::WHOLE)
    }

    /// The shard of `count` (clamped to `1..=MAX_SHARDS`) that holds `student_id`: the
    /// one whose [`Shard::bucket_range`] contains `student_bucket(student_id, 0)`.
    pub fn holding(student_id: &str, count: u32) -> Shard {
        let count = count.clamp(1, MAX_SHARDS);
        let n = u64::from(count);
        let b = student_bucket(student_id, SHARD_SEED);
        // Shard k holds [⌊k·B/n⌋, ⌊(k+1)·B/n⌋): the largest k with ⌊k·B/n⌋ ≤ b.
        let index = ((b + 1) * n - 1) / STUDENT_BUCKETS;
        Shard {
            index: index as u32,
            count,
        }
    }

    /// The shard count of the run that wrote an object named `name` (the last segment of
    /// its key): 1 for `part-0.parquet`, `N` for `part-KKKK-of-NNNN.parquet`; `None` for
    /// any other name.
    pub fn count_of_object(name: &str) -> Option<u32> {
        if name == crate::store::PARTITION_OBJECT {
            return Some(1);
        }
        let n = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
        let (_, count) = n.split_once("-of-")?;
        count.parse().ok().filter(|c| (1..=MAX_SHARDS).contains(c))
    }

    /// `"shard K of N"`, for logs and errors.
    pub fn label(&self) -> String {
        format!("shard {} of {}", self.index, self.count)
    }
}

/// The smallest `m` in `1..=max_parts` for which the first `⌊counts.len() / m⌋`
/// buckets hold at most `max` students (`counts[b]` = students of bucket `b`), or
/// `max_parts` when none does (then the sample exceeds `max`: the caller says so).
/// `m = 1` (every bucket, everyone) whenever the total is at most `max`. `max_parts`
/// below 1 counts as 1.
///
/// The prefix shrinks as `m` grows, so the result is the largest sample of this shape
/// within `max`; a larger `max` never gives a larger `m` (a sample for a larger cap
/// contains the sample for a smaller one).
fn prefix_parts(counts: &[u64], max: u64, max_parts: u32) -> u32 {
    let max_parts = max_parts.max(1);
    let b = counts.len();
    for m in 1..=max_parts {
        let k = b / m as usize;
        let n: u64 = counts[..k].iter().fold(0u64, |s, &c| s.saturating_add(c));
        if n <= max {
            return m;
        }
    }
    max_parts
}

/// Counts per student bucket from a query whose rows are `(bucket, n)` (integers; a
/// null bucket is skipped): index = bucket, [`STUDENT_BUCKETS`] entries, 0 where the
/// query has no row. What a fit sample is chosen from ([`Shard::fit_sample`],
/// `models::sample::fit_prefix`). A bucket outside `0..4096` is an error.
pub async fn bucket_counts(
    ctx: &datafusion::prelude::SessionContext,
    sql: &str,
    params: Vec<ScalarValue>,
) -> crate::Result<Vec<u64>> {
    let mut counts = vec![0u64; STUDENT_BUCKETS as usize];
    for b in crate::runs::query(ctx, sql, params).await? {
        let bucket = arrow::compute::cast(b.column(0), &DataType::Int64)?;
        let n = arrow::compute::cast(b.column(1), &DataType::Int64)?;
        let (bucket, n) = (
            bucket.as_primitive::<arrow::datatypes::Int64Type>(),
            n.as_primitive::<arrow::datatypes::Int64Type>(),
        );
        for r in (0..b.num_rows()).filter(|&r| bucket.is_valid(r)) {
            let slot = usize::try_from(bucket.value(r))
                .ok()
                .and_then(|i| counts.get_mut(i))
                .ok_or_else(|| {
                    crate::LakeError::InvalidInput(format!(
                        "student bucket {} outside 0..{STUDENT_BUCKETS}",
                        bucket.value(r)
                    ))
                })?;
            *slot = u64::try_from(n.value(r)).unwrap_or(0);
        }
    }
    Ok(counts)
}

/// The SQL function `student_bucket(student_id VARCHAR, seed BIGINT) -> BIGINT`
/// (immutable; `NULL` in, `NULL` out). Registered in every lake session.
pub fn student_bucket_udf() -> ScalarUDF {
    ScalarUDF::from(StudentBucket::new())
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct StudentBucket {
    signature: Signature,
}

impl StudentBucket {
    fn new() -> Self {
        Self {
            signature: id_signature(1),
        }
    }
}

/// The signature of a function of a student id (any string type) and `bigints` `BIGINT`s.
fn id_signature(bigints: usize) -> Signature {
    let sig = |t: DataType| {
        let mut args = vec![t];
        args.extend(std::iter::repeat_n(DataType::Int64, bigints));
        TypeSignature::Exact(args)
    };
    Signature::one_of(
        vec![
            sig(DataType::Utf8),
            sig(DataType::Utf8View),
            sig(DataType::LargeUtf8),
        ],
        Volatility::Immutable,
    )
}

/// A function's result: a scalar when every argument was one (a constant expression).
fn columnar(out: ArrayRef, args: &[ColumnarValue]) -> datafusion::error::Result<ColumnarValue> {
    if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
    }
    Ok(ColumnarValue::Array(out))
}

/// Evaluates `$body` with `$a` bound to the string array `$ids` as its concrete type
/// (`Utf8`, `LargeUtf8`, `Utf8View`); any other type returns function `$name`'s error.
macro_rules! on_ids {
    ($name:expr, $ids:expr, |$a:ident| $body:expr) => {
        match $ids.data_type() {
            DataType::Utf8 => {
                let $a = $ids.as_string::<i32>();
                $body
            }
            DataType::LargeUtf8 => {
                let $a = $ids.as_string::<i64>();
                $body
            }
            DataType::Utf8View => {
                let $a = $ids.as_string_view();
                $body
            }
            other => return exec_err!("{}: student_id must be a string, got {other}", $name),
        }
    };
}

/// `student_bucket(id, seed)` of every row, null where the id or the seed is: the SQL
/// function's values (and the lake's `shard_bucket` column, `crate::store`).
pub(crate) fn buckets<'a, S: StringArrayType<'a>>(ids: S, seeds: &Int64Array) -> Int64Array {
    (0..ids.len())
        .map(|r| {
            (ids.is_valid(r) && seeds.is_valid(r))
                .then(|| student_bucket(ids.value(r), seeds.value(r) as u64) as i64)
        })
        .collect()
}

impl ScalarUDFImpl for StudentBucket {
    fn name(&self) -> &str {
        STUDENT_BUCKET_FN
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [ids, seeds] = arrays.as_slice() else {
            return exec_err!("{STUDENT_BUCKET_FN} takes 2 arguments (student_id, seed)");
        };
        let Some(seeds) = seeds.as_primitive_opt::<arrow::datatypes::Int64Type>() else {
            return exec_err!("{STUDENT_BUCKET_FN}: seed must be BIGINT");
        };
        let out = on_ids!(STUDENT_BUCKET_FN, ids, |a| buckets(a, seeds));
        columnar(Arc::new(out), &args.args)
    }
}

/// The SQL function `student_bucket_in(student_id VARCHAR, seed BIGINT, lo BIGINT, hi
/// BIGINT) -> BOOLEAN`: whether `lo <= student_bucket(student_id, seed) < hi`
/// (immutable; `NULL` if any argument is). One hash per row, evaluated in the scan's
/// filter: the predicate of a shard's students ([`Shard::bucket_range`]) and of a fit
/// sample (`lo = 0`). Registered in every lake session.
pub fn student_bucket_in_udf() -> ScalarUDF {
    ScalarUDF::from(StudentBucketIn::new())
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct StudentBucketIn {
    signature: Signature,
}

impl StudentBucketIn {
    fn new() -> Self {
        Self {
            signature: id_signature(3),
        }
    }
}

/// Whether `lo <= student_bucket(id, seed) < hi`.
#[inline]
fn bucket_in(id: &str, seed: i64, lo: i64, hi: i64) -> bool {
    let b = student_bucket(id, seed as u64) as i64;
    lo <= b && b < hi
}

/// [`bucket_in`] of every id for one seed and range (the shard predicate's case: the
/// other arguments are constants): the ids' nulls are the result's.
fn ids_in<'a, S: StringArrayType<'a>>(ids: S, seed: i64, lo: i64, hi: i64) -> BooleanArray {
    let values = BooleanBuffer::collect_bool(ids.len(), |r| bucket_in(ids.value(r), seed, lo, hi));
    BooleanArray::new(values, ids.nulls().cloned())
}

/// [`bucket_in`] row by row, with per-row seeds and bounds.
fn rows_in<'a, S: StringArrayType<'a>>(ids: S, rest: [&Int64Array; 3]) -> BooleanArray {
    let [seeds, los, his] = rest;
    (0..ids.len())
        .map(|r| {
            (ids.is_valid(r) && rest.iter().all(|a| a.is_valid(r)))
                .then(|| bucket_in(ids.value(r), seeds.value(r), los.value(r), his.value(r)))
        })
        .collect()
}

/// The non-null `BIGINT` constant of a scalar argument, if it is one.
fn int_scalar(arg: &ColumnarValue) -> Option<i64> {
    match arg {
        ColumnarValue::Scalar(ScalarValue::Int64(Some(v))) => Some(*v),
        _ => None,
    }
}

impl ScalarUDFImpl for StudentBucketIn {
    fn name(&self) -> &str {
        STUDENT_BUCKET_IN_FN
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let [id_arg, seed, lo, hi] = args.args.as_slice() else {
            return exec_err!(
                "{STUDENT_BUCKET_IN_FN} takes 4 arguments (student_id, seed, lo, hi)"
            );
        };
        let constants = [seed, lo, hi].map(int_scalar);
        let out: BooleanArray = match (id_arg, constants) {
            (ColumnarValue::Array(ids), [Some(seed), Some(lo), Some(hi)]) => {
                on_ids!(STUDENT_BUCKET_IN_FN, ids, |a| ids_in(a, seed, lo, hi))
            }
            _ => {
                let arrays = ColumnarValue::values_to_arrays(&args.args)?;
                let ints: Option<Vec<&Int64Array>> = arrays[1..]
                    .iter()
                    .map(|a| a.as_primitive_opt::<arrow::datatypes::Int64Type>())
                    .collect();
                let Some([seeds, los, his]) = ints.as_deref() else {
                    return exec_err!("{STUDENT_BUCKET_IN_FN}: seed, lo and hi must be BIGINT");
                };
                let ids = &arrays[0];
                on_ids!(STUDENT_BUCKET_IN_FN, ids, |a| rows_in(
                    a,
                    [*seeds, *los, *his]
                ))
            }
        };
        columnar(Arc::new(out), &args.args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_name_gives_the_shard_count_that_wrote_it() {
        for count in [1u32, 2, 7, MAX_SHARDS] {
            for index in [0, count - 1] {
                let name = Shard::new(index, count).unwrap().object_name();
                assert_eq!(Shard::count_of_object(&name), Some(count), "{name}");
            }
        }
        for other in [
            "part-1.parquet",
            "part-0000-of-0000.parquet",
            "x.parquet",
            "part-0-of-2.csv",
        ] {
            assert_eq!(Shard::count_of_object(other), None, "{other}");
        }
    }

    #[test]
    fn the_prefix_is_the_largest_whole_part_within_the_cap() {
        // 8 buckets of 10 students: m parts keep the first 8/m buckets.
        let counts = [10u64; 8];
        assert_eq!(prefix_parts(&counts, 80, 64), 1, "everyone fits");
        assert_eq!(prefix_parts(&counts, 1000, 64), 1);
        assert_eq!(prefix_parts(&counts, 79, 64), 2, "4 buckets, 40 students");
        assert_eq!(prefix_parts(&counts, 40, 64), 2);
        assert_eq!(
            prefix_parts(&counts, 39, 64),
            3,
            "2 buckets (8/3), 20 students"
        );
        assert_eq!(prefix_parts(&counts, 10, 64), 5, "1 bucket (8/5)");
        assert_eq!(
            prefix_parts(&counts, 9, 64),
            9,
            "no bucket: an empty prefix"
        );
        assert_eq!(prefix_parts(&counts, 9, 4), 4, "capped at max_parts");
        assert_eq!(prefix_parts(&counts, 0, 0), 1, "max_parts 0 counts as 1");
        assert_eq!(prefix_parts(&[], 0, 3), 1, "no buckets: nothing to sample");
        // Monotone in the cap; the prefix sum is within the cap unless m = max_parts.
        let counts: Vec<u64> = (0..4096u64).map(|b| (b * 7919) % 13).collect();
        let mut last = u32::MAX;
        for max in (0..30_000).step_by(250) {
            let m = prefix_parts(&counts, max, 1024);
            assert!(m <= last, "cap {max}: {m} parts after {last}");
            last = m;
            let n: u64 = counts[..4096 / m as usize].iter().sum();
            assert!(
                n <= max || m == 1024,
                "cap {max}: {n} students in {m} parts"
            );
            if m > 1 {
                let bigger: u64 = counts[..4096 / (m as usize - 1)].iter().sum();
                assert!(bigger > max, "cap {max}: {} parts would fit", m - 1);
            }
        }
    }

    /// The definition is pinned: these values must never change (they decide which
    /// students every past sample held). Expected values from an independent Python
    /// implementation of the definition in the module docs.
    #[test]
    fn bucket_hash_is_pinned_to_fixed_values() {
        assert_eq!(mix64(0), 0);
        assert_eq!(mix64(1), 0x5692_161d_100b_05e5);
        for (id, seed, hash, bucket) in [
            ("", 0, 0xf52a_15e9_a9b5_e89b_u64, 3922),
            ("s00001", 0, 0x10fd_4083_738a_2ada, 271),
            ("s00001", 1, 0x9dfa_4066_327d_8496, 2527),
            ("student-42", 7, 0xcd27_db1f_5c86_6068, 3282),
            ("\u{e9}l\u{e8}ve-\u{fc}", 0, 0x9568_5556_1fc0_77e4, 2390),
            ("s00001", u64::MAX, 0x2f35_8405_c44f_fd28, 755),
        ] {
            assert_eq!(student_hash(id, seed), hash, "{id:?} seed {seed}");
            assert_eq!(student_bucket(id, seed), bucket, "{id:?} seed {seed}");
        }
    }

    #[test]
    fn shards_partition_the_buckets_and_name_their_objects() {
        for count in [1u32, 2, 3, 7, 8, 32, MAX_SHARDS] {
            let mut next = 0;
            for index in 0..count {
                let r = Shard::new(index, count).unwrap().bucket_range();
                assert_eq!(r.start, next, "{index} of {count}");
                assert!(r.end > r.start, "{index} of {count} is empty");
                next = r.end;
            }
            assert_eq!(next, STUDENT_BUCKETS);
        }
        assert!(Shard::new(0, 0).is_err());
        assert!(Shard::new(3, 3).is_err());
        assert!(Shard::new(0, MAX_SHARDS + 1).is_err());
        let s = Shard::new(2, 8).unwrap();
        assert_eq!(s.object_name(), "part-0002-of-0008.parquet");
        assert_eq!(Shard::WHOLE.object_name(), "part-0.parquet");
        assert!(s.is_other_layout("part-0.parquet"));
        assert!(s.is_other_layout("part-0001-of-0004.parquet"));
        assert!(!s.is_other_layout("part-0005-of-0008.parquet"));
        assert!(!s.is_other_layout("notes.txt"));
        assert!(Shard::WHOLE.is_other_layout("part-0001-of-0004.parquet"));
        assert!(!Shard::WHOLE.is_other_layout("part-0.parquet"));
        // Every student is in exactly one shard of a count.
        for id in ["s00001", "", "student-42", "\u{e9}l\u{e8}ve"] {
            let n = (0..8)
                .filter(|&k| Shard::new(k, 8).unwrap().contains(id))
                .count();
            assert_eq!(n, 1, "{id:?}");
            assert!(Shard::WHOLE.contains(id));
        }
    }

    #[test]
    fn buckets_are_uniform_enough_to_sample_students() {
        let n = 200_000;
        let mut counts = vec![0u32; STUDENT_BUCKETS as usize];
        for s in 0..n {
            counts[student_bucket(&format!("s{s:06}"), 0) as usize] += 1;
        }
        // A quarter of the buckets holds a quarter of the students: binomial SD of the
        // share is sqrt(0.25 * 0.75 / 200000) ≈ 0.001, so 0.01 is ten SDs.
        let first_quarter: u32 = counts[..1024].iter().sum();
        let share = f64::from(first_quarter) / f64::from(n);
        assert!((share - 0.25).abs() < 0.01, "share {share}");
        // Every bucket is used; none holds more than twice the mean (48.8).
        assert!(counts.iter().all(|&c| c > 0 && c < 100), "{counts:?}");
        // Another seed draws another sample.
        let same = (0..1000)
            .filter(|s| {
                let id = format!("s{s:06}");
                (student_bucket(&id, 0) < 1024) == (student_bucket(&id, 1) < 1024)
            })
            .count();
        assert!(same < 800, "{same} of 1000 agree across seeds");
    }

    /// `student_bucket_in` is `student_bucket`'s range test row by row: with constant
    /// seed and bounds (the shard predicate's fast path), with per-row ones, on `Utf8`
    /// and `Utf8View` ids, and `NULL` where an argument is.
    #[tokio::test]
    async fn bucket_in_is_the_range_test_of_student_bucket() {
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.register_udf(student_bucket_udf());
        ctx.register_udf(student_bucket_in_udf());
        let ids: Vec<String> = (0..2000).map(|i| format!("s{i:05}")).collect();
        let values = ids
            .iter()
            .enumerate()
            .map(|(i, id)| format!("('{id}', {}, {}, {})", i % 3, i % 97, 1000 + i))
            .chain([
                "(NULL, 0, 0, 4096)".to_string(),
                "('s1', NULL, 0, 4096)".to_string(),
            ])
            .collect::<Vec<_>>()
            .join(", ");
        let table = format!("(VALUES {values}) AS t(id, seed, lo, hi)");
        let check = |sql: String| {
            let ctx = ctx.clone();
            async move {
                let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
                let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                assert_eq!(rows, 0, "{sql}: rows where the two disagree");
            }
        };
        for id in ["id", "arrow_cast(id, 'Utf8View')"] {
            check(format!(
                "SELECT * FROM {table} WHERE student_bucket_in({id}, 0, 512, 1024) IS DISTINCT FROM \
                 (student_bucket({id}, 0) >= 512 AND student_bucket({id}, 0) < 1024)"
            ))
            .await;
            check(format!(
                "SELECT * FROM {table} WHERE student_bucket_in({id}, seed, lo, hi) IS DISTINCT FROM \
                 (student_bucket({id}, seed) >= lo AND student_bucket({id}, seed) < hi)"
            ))
            .await;
        }
        // the constant path selects a shard's share, and NULL in gives NULL out
        let counted = ctx
            .sql(&format!(
                "SELECT count(*) FILTER (WHERE student_bucket_in(id, 0, 0, 2048)), \
                 count(*) FILTER (WHERE student_bucket_in(id, 0, 0, 2048) IS NULL), \
                 count(*) FILTER (WHERE student_bucket_in(id, seed, 0, 4096) IS NULL) FROM {table}"
            ))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let col = |i: usize| {
            counted[0]
                .column(i)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .value(0)
        };
        let half = ids.iter().filter(|id| student_bucket(id, 0) < 2048).count() as i64
            + i64::from(student_bucket("s1", 0) < 2048);
        assert_eq!(col(0), half);
        assert!((800..1200).contains(&half), "{half}");
        assert_eq!((col(1), col(2)), (1, 2));
    }
}
