//! The work every shard of a run repeats, done once per process.
//!
//! A sharded stage (growth, segments) fits its model on a **fit sample** that is the same
//! for every shard of a run, then applies it to the shard's own students. Each shard
//! reads the sample and fits the same model bit for bit, so that a shard needs nothing
//! from the others. When one process serves several shards of a run (the local runner's
//! Map iterations; a warm Lambda container given the next shard), [`Memo`] lets the
//! second and later shards take the first one's result instead of repeating it. The
//! reports stage uses one the same way for what every shard reads of the cohort.
//!
//! A memo is only sound when its key names everything the result depends on. A key is
//! built by [`MemoKey`] from the lake, the stage's own inputs (run date, look-back,
//! configuration) and [`Lake::fingerprint`] of the tables it reads: every object's key,
//! size, modification time and e-tag. A table rewritten between two shards (a re-ingest,
//! a new calibration) changes the fingerprint, and the later shard computes afresh.
//! The value must be a deterministic function of what the key names, so a shard that
//! takes it writes the bytes it would have written alone.
//!
//! `IRTLAKE_MEMO=off` ([`MEMO_ENV`]) or [`set_enabled`]`(false)` turns every memo
//! off: each shard then computes its shared work itself, as separate processes do (to
//! measure what the memo saves, and for tests that shards agree without it).
//!
//! Memory: a memo keeps the entry of the latest key only, held until a new key pushes
//! it out or the last invocation using it ends; the values are bounded fit products (a
//! fit sample's rows, capped by the sample's size, and a model) or cohort aggregates,
//! not a shard's data.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use tokio::sync::OnceCell;

use crate::Lake;
use crate::error::Result;
use crate::shard::{fnv1a64, fnv1a64_from};

/// Environment variable that turns the memo off when `off`.
pub const MEMO_ENV: &str = "IRTLAKE_MEMO";

/// Whether memos keep results: unset (0), on (1), off (2).
static STATE: AtomicU8 = AtomicU8::new(0);

/// Turns every memo of the process on or off (overrides [`MEMO_ENV`]). Off, a call
/// computes its result and keeps nothing; kept results stay but are not used.
pub fn set_enabled(on: bool) {
    STATE.store(if on { 1 } else { 2 }, Ordering::Relaxed);
}

/// Whether memos keep results: [`set_enabled`]'s setting, else [`MEMO_ENV`] is not `off`.
pub fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let on = std::env::var(MEMO_ENV).map_or(true, |v| v.trim() != "off");
            // a concurrent set_enabled wins over the environment
            let _ = STATE.compare_exchange(
                0,
                if on { 1 } else { 2 },
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            STATE.load(Ordering::Relaxed) == 1
        }
    }
}

/// What a memoised result depends on, as one string (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoKey(String);

impl MemoKey {
    /// The key of `what` (a stage's name and the piece of work) on `lake`, given the
    /// stage's own inputs (`parts`: run date, configuration, …) and the fingerprint of
    /// the tables it reads (`tables`, [`Lake::fingerprint`]).
    pub async fn of(
        lake: &Lake,
        what: &str,
        parts: &[impl AsRef<str>],
        tables: &[&str],
    ) -> Result<Self> {
        let fingerprint = if enabled() {
            lake.fingerprint(tables).await?
        } else {
            0 // not used: a memo that is off keeps nothing
        };
        let mut key = format!("{what}|{}|{fingerprint:016x}", lake.uri());
        for p in parts {
            key.push('|');
            key.push_str(p.as_ref());
        }
        Ok(Self(key))
    }
}

/// A process-wide memo of the latest key's result ([`MemoKey`]): the first caller of a
/// key computes it, callers of the same key meanwhile wait for that result, later ones
/// take it; a new key pushes the old entry out. A failed computation is not kept (the
/// next caller tries again).
pub struct Memo<V> {
    latest: Mutex<Option<(MemoKey, Entry<V>)>>,
}

/// One key's result: set once, by the first caller that computes it.
type Entry<V> = Arc<OnceCell<Arc<V>>>;

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> Memo<V> {
    /// An empty memo.
    pub const fn new() -> Self {
        Self {
            latest: Mutex::new(None),
        }
    }

    /// The cell of `key`, made (and the previous key's pushed out) when new.
    fn cell(&self, key: &MemoKey) -> Entry<V> {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        match &*latest {
            Some((k, cell)) if k == key => Arc::clone(cell),
            _ => {
                let cell = Arc::new(OnceCell::new());
                *latest = Some((key.clone(), Arc::clone(&cell)));
                cell
            }
        }
    }

    /// The result of `key`: the kept one, or `compute()`'s, kept when it succeeds.
    /// Returns whether it was computed by this call, with the result.
    async fn get_or_try_compute<E, F, Fut>(
        &self,
        key: &MemoKey,
        compute: F,
    ) -> std::result::Result<(Arc<V>, bool), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<V, E>>,
    {
        if !enabled() {
            return Ok((Arc::new(compute().await?), true));
        }
        let cell = self.cell(key);
        let mut computed = false;
        let value = cell
            .get_or_try_init(|| {
                computed = true;
                async { compute().await.map(Arc::new) }
            })
            .await?;
        Ok((Arc::clone(value), computed))
    }

    /// The shared work of a run (a value of cells its pieces fill in, made empty by
    /// the first caller): the entry of [`MemoKey::of`]`(lake, what, parts, tables)`, and
    /// whether this call made it (else an earlier shard of the run did).
    pub async fn run_work(
        &self,
        lake: &Lake,
        what: &str,
        parts: &[impl AsRef<str>],
        tables: &[&str],
    ) -> Result<(Arc<V>, bool)>
    where
        V: Default,
    {
        let key = MemoKey::of(lake, what, parts, tables).await?;
        self.get_or_try_compute(&key, || async { Ok(V::default()) })
            .await
    }
}

impl Lake {
    /// A fingerprint of the objects of `tables` (catalog tables: their folders under
    /// the lake root, listed at once; not with [`Lake::list`], which keeps only key and
    /// size): every object's key, size, modification time and
    /// e-tag, each length-prefixed, hashed (FNV-1a) in key order. Any change to a
    /// table's objects changes the fingerprint with near certainty; it identifies the
    /// state of the tables within one process, it is not a content hash. A name that is
    /// not a catalog table is refused ([`crate::LakeError::UnknownTable`]): on S3 a
    /// function may list only its own tables.
    pub async fn fingerprint(&self, tables: &[&str]) -> Result<u64> {
        let listings = futures::future::try_join_all(tables.iter().map(|table| async move {
            crate::catalog::table(table)?;
            let prefix = self.path(table)?;
            let mut objects: Vec<_> = self.store().list(Some(&prefix)).try_collect().await?;
            objects.sort_by(|a, b| a.location.cmp(&b.location));
            Ok::<_, crate::LakeError>((*table, objects))
        }))
        .await?;
        let mut h = fnv1a64(b"irtlake-fingerprint");
        let mut feed = |bytes: &[u8]| {
            h = fnv1a64_from(h, &(bytes.len() as u64).to_le_bytes());
            h = fnv1a64_from(h, bytes);
        };
        for (table, objects) in &listings {
            feed(table.as_bytes());
            for o in objects {
                feed(o.location.as_ref().as_bytes());
                feed(&o.size.to_le_bytes());
                let modified = o.last_modified.timestamp_nanos_opt().unwrap_or_default();
                feed(&modified.to_le_bytes());
                feed(o.e_tag.as_deref().unwrap_or("").as_bytes());
            }
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn a_key_is_computed_once_and_a_failure_is_not_kept() {
        let memo: Memo<u32> = Memo::new();
        let k = MemoKey("a".into());
        let fail = memo
            .get_or_try_compute(&k, || async { Err::<u32, &str>("no") })
            .await;
        assert!(fail.is_err());
        let (v, computed) = memo
            .get_or_try_compute(&k, || async { Ok::<_, ()>(7) })
            .await
            .unwrap();
        assert_eq!((*v, computed), (7, true));
        let (v, computed) = memo
            .get_or_try_compute(&k, || async { Ok::<_, ()>(8) })
            .await
            .unwrap();
        assert_eq!((*v, computed), (7, false));
        // two newer keys push the oldest out
        for (i, name) in ["b", "c"].into_iter().enumerate() {
            let key = MemoKey(name.into());
            memo.get_or_try_compute(&key, || async move { Ok::<_, ()>(i as u32) })
                .await
                .unwrap();
        }
        let (v, computed) = memo
            .get_or_try_compute(&k, || async { Ok::<_, ()>(9) })
            .await
            .unwrap();
        assert_eq!((*v, computed), (9, true));
    }

    #[tokio::test]
    async fn the_fingerprint_changes_with_any_object_of_the_tables_only() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&format!("file://{}", dir.path().display())).unwrap();
        let lake = &lake;
        let put = |key: &'static str, bytes: &'static [u8]| async move {
            lake.put_object(key, Bytes::from_static(bytes))
                .await
                .unwrap();
            lake.fingerprint(&["attempts"]).await.unwrap()
        };
        let before = put("attempts/dt=2026-01-05/a.parquet", b"one").await;
        assert_eq!(before, lake.fingerprint(&["attempts"]).await.unwrap());
        assert_eq!(before, put("weekly_kpi/x.parquet", b"other table").await);
        // same key, different size; then a new object
        let rewritten = put("attempts/dt=2026-01-05/a.parquet", b"three").await;
        assert_ne!(before, rewritten);
        assert_ne!(
            rewritten,
            put("attempts/dt=2026-01-06/b.parquet", b"two").await
        );
        // a name that is not a catalog table is refused (on S3 it would be a denied list)
        assert!(
            lake.fingerprint(&["attempts", "topic_subject"])
                .await
                .is_err()
        );
        assert_ne!(
            MemoKey::of(lake, "growth", &["2026-03-05"], &["attempts"])
                .await
                .unwrap(),
            MemoKey::of(lake, "growth", &["2026-03-06"], &["attempts"])
                .await
                .unwrap()
        );
    }
}
