//! Durable, atomic object writes and cross-process locks on a local lake.
//!
//! A local write of object `dir/name` (in a lake whose root is `root`):
//! 1. locks `dir` (an exclusive advisory `flock` on the folder itself, so no lock file
//!    is left beside the data; the kernel releases it when the process dies, `kill -9`
//!    included). Every irtlake process writing the same partition folder takes the
//!    same lock, so read–modify–write cycles of several processes never interleave;
//! 2. sweeps what crashed writers of this object left: its staging files (see 3) and
//!    the `dir/name#N` files of older irtlake versions (object_store's own staging,
//!    which other engines read as a second, often empty, Parquet file). Safe because
//!    writers only stage under the lock;
//! 3. stages the bytes in `root/_staging/<tag>.<pid>-<n>.tmp` (`tag`: a hash of the
//!    object's path) and `fsync`s the file. Staging happens outside every table
//!    folder, because no name inside one is safe from every reader: DuckDB's
//!    `read_parquet('table/*/*')` reads hidden files too, while Hive-style readers
//!    (pyarrow, Spark) skip the `_`-prefixed folder;
//! 4. commits: `rename` onto `dir/name` (atomic within one file system), then `fsync`s
//!    `dir` so the rename survives a power loss. Folders created for the object are
//!    made durable the same way (their parents are `fsync`ed).
//!
//! A reader therefore sees the old object or the new one, never a partial or staging
//! file, whatever happens to the writer.
//!
//! Many objects at once ([`commit_batch`]: a shard's reports, an ingest's days) take
//! the same steps, all staged before any is renamed, made durable together: on Linux
//! one `syncfs` before the renames and one after, instead of `fsync`s per object.
//!
//! Fault injection for tests (`IRTLAKE_FAULT`, read once per process; unset in
//! production):
//! - `pause-after-stage`: after staging (step 3) print `irtlake fault: staged <file>`
//!   to stderr and wait forever, so a test can `kill -9` the writer mid-write;
//! - `enospc-at-stage:N`: the N-th staging of the process (1-based) fails as a full
//!   disk would (`StorageFull`, after writing part of the file);
//! - `fail-commit:N`: the N-th commit of the process fails before its rename.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Folder under the lake root where writes are staged (see the module docs).
pub const STAGING_DIR: &str = "_staging";

/// Environment variable of the test fault hook (see the module docs).
pub const FAULT_ENV: &str = "IRTLAKE_FAULT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    PauseAfterStage,
    EnospcAtStage(usize),
    FailCommit(usize),
}

fn fault() -> Fault {
    static FAULT: OnceLock<Fault> = OnceLock::new();
    *FAULT.get_or_init(|| {
        let Ok(v) = std::env::var(FAULT_ENV) else {
            return Fault::None;
        };
        let parsed = if v == "pause-after-stage" {
            Some(Fault::PauseAfterStage)
        } else {
            v.split_once(':').and_then(|(kind, n)| {
                let n = n.parse::<usize>().ok().filter(|n| *n >= 1)?;
                match kind {
                    "enospc-at-stage" => Some(Fault::EnospcAtStage(n)),
                    "fail-commit" => Some(Fault::FailCommit(n)),
                    _ => None,
                }
            })
        };
        parsed.unwrap_or_else(|| {
            tracing::warn!(value = %v, "{FAULT_ENV} not understood: ignored");
            Fault::None
        })
    })
}

static STAGED: AtomicUsize = AtomicUsize::new(0);
static COMMITS: AtomicUsize = AtomicUsize::new(0);

/// An exclusive lock on a folder, held until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _dir: File,
}

/// When a write's steps are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Each step: the staged file, the folder after the rename, each folder created.
    EachStep,
    /// Not here: [`commit_batch`] makes a batch's files and folders durable together.
    Deferred,
}

/// Creates `dir` if needed (durably) and locks it, waiting for other holders.
/// Blocking: call it from a blocking thread.
pub(crate) fn lock_dir(dir: &Path) -> io::Result<DirLock> {
    lock_dir_with(dir, Durability::EachStep)
}

fn lock_dir_with(dir: &Path, sync: Durability) -> io::Result<DirLock> {
    create_dirs(dir, sync)?;
    let file = File::open(dir)?;
    file.lock()?;
    Ok(DirLock { _dir: file })
}

/// Creates `dir` and its missing parents; with [`Durability::EachStep`] `fsync`s the parent of
/// each folder created.
fn create_dirs(dir: &Path, sync: Durability) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if sync == Durability::Deferred {
        return std::fs::create_dir_all(dir);
    }
    let mut missing = Vec::new();
    let mut d = dir;
    while !d.exists() {
        missing.push(d.to_path_buf());
        match d.parent() {
            Some(p) => d = p,
            None => break,
        }
    }
    std::fs::create_dir_all(dir)?;
    for m in missing.iter().rev() {
        if let Some(parent) = m.parent() {
            File::open(parent)?.sync_all()?;
        }
    }
    Ok(())
}

fn file_name(dest: &Path) -> io::Result<String> {
    dest.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no file name in {}", dest.display()),
            )
        })
}

fn parent(dest: &Path) -> io::Result<&Path> {
    dest.parent().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no folder in {}", dest.display()),
        )
    })
}

/// Whether `entry`, a file in the folder of object `name`, is object_store's staging
/// file `name#N` that a crashed writer of an older irtlake left.
fn is_leftover(entry: &str, name: &str) -> bool {
    entry
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('#'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The staging tag of an object file: 32 hex digits of the SHA-256 of its path.
fn tag(dest: &Path) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(dest.as_os_str().as_encoded_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Removes every file of `dir` that `stale` selects; `fsync`s `dir` if any was removed.
/// Returns the names removed.
fn remove_matching(dir: &Path, stale: impl Fn(&str) -> bool) -> io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(entry_name) = name.to_str() else {
            continue;
        };
        if stale(entry_name) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed.push(entry_name.to_string()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    if !removed.is_empty() {
        File::open(dir)?.sync_all()?;
    }
    Ok(removed)
}

/// Removes what crashed writers left for `dest` (its staging files under `staging`,
/// `name#N` beside it). Call with the folder lock held. Returns how many were removed.
pub(crate) fn sweep(dest: &Path, staging: &Path) -> io::Result<usize> {
    sweep_many(std::slice::from_ref(&dest), staging)
}

/// [`sweep`] of many objects (their folders' locks held) with one listing of `staging`
/// for all of them instead of one each: a batch of 256 reports listed the staging folder
/// 256 times, each time with whatever a concurrent writer had staged there.
fn sweep_many<P: AsRef<Path>>(dests: &[P], staging: &Path) -> io::Result<usize> {
    let tags: HashMap<String, usize> = dests
        .iter()
        .enumerate()
        .map(|(i, d)| (tag(d.as_ref()), i))
        .collect();
    // a staging file of `dest` is `<tag(dest)>.<anything>.tmp` (see `stage_with`)
    let owner = |e: &str| {
        e.ends_with(".tmp")
            .then(|| e.split_once('.'))
            .flatten()
            .and_then(|(t, _)| tags.get(t).copied())
    };
    let mut removed = vec![0usize; dests.len()];
    for name in remove_matching(staging, |e| owner(e).is_some())? {
        if let Some(i) = owner(&name) {
            removed[i] += 1;
        }
    }
    for (dest, n) in dests.iter().zip(&mut removed) {
        let dest = dest.as_ref();
        let name = file_name(dest)?;
        *n += remove_matching(parent(dest)?, |e| is_leftover(e, &name))?.len();
        if *n > 0 {
            tracing::info!(object = %dest.display(), removed = *n, "removed staging files of crashed writers");
        }
    }
    Ok(removed.iter().sum())
}

/// Bytes written to a staging file, not yet visible under their name. Dropping it
/// without [`Staged::commit`] removes the staging file.
#[derive(Debug)]
pub(crate) struct Staged {
    tmp: Option<PathBuf>,
    dest: PathBuf,
}

/// Writes `bytes` to a staging file for `dest` in the folder `staging` (on the same
/// file system) and `fsync`s it (see the module docs). Call with the folder lock held
/// (after [`sweep`]).
pub(crate) fn stage(dest: &Path, staging: &Path, bytes: &[u8]) -> io::Result<Staged> {
    stage_with(dest, staging, bytes, Durability::EachStep)
}

fn stage_with(dest: &Path, staging: &Path, bytes: &[u8], sync: Durability) -> io::Result<Staged> {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    create_dirs(parent(dest)?, sync)?;
    create_dirs(staging, sync)?;
    let tmp = staging.join(format!(
        "{}.{}-{}.tmp",
        tag(dest),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    let staged = Staged {
        tmp: Some(tmp.clone()),
        dest: dest.to_path_buf(),
    };
    let nth = STAGED.fetch_add(1, Ordering::Relaxed) + 1;
    if fault() == Fault::EnospcAtStage(nth) {
        file.write_all(&bytes[..bytes.len() / 2])?;
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!("No space left on device (injected by {FAULT_ENV}, staging {nth})"),
        ));
    }
    file.write_all(bytes)?;
    if sync == Durability::EachStep {
        file.sync_all()?;
    }
    drop(file);
    if fault() == Fault::PauseAfterStage {
        eprintln!("irtlake fault: staged {}", tmp.display());
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    Ok(staged)
}

impl Staged {
    /// Makes the staged bytes the object: `rename` over the destination, then `fsync`
    /// of the folder.
    pub(crate) fn commit(self) -> io::Result<()> {
        self.commit_with(Durability::EachStep)
    }

    fn commit_with(mut self, sync: Durability) -> io::Result<()> {
        let nth = COMMITS.fetch_add(1, Ordering::Relaxed) + 1;
        if fault() == Fault::FailCommit(nth) {
            return Err(io::Error::other(format!(
                "commit failed (injected by {FAULT_ENV}, commit {nth})"
            )));
        }
        let Some(tmp) = self.tmp.take() else {
            return Ok(());
        };
        if let Err(e) = std::fs::rename(&tmp, &self.dest) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        match sync {
            Durability::EachStep => File::open(parent(&self.dest)?)?.sync_all(),
            Durability::Deferred => Ok(()),
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Most objects [`put_batch`] writes under one set of locks (each holds a folder open).
pub(crate) const MAX_BATCH: usize = 256;

/// Threads that `fsync` a batch's files and folders at once where `syncfs` is missing.
#[cfg(not(target_os = "linux"))]
const SYNC_THREADS: usize = 16;

/// Creates and locks each of `dirs`, in path order and once each, so that writers of
/// several folders never wait for each other in a cycle. The folders created are made
/// durable by [`commit_batch`], which must follow under these locks.
pub(crate) fn lock_dirs(mut dirs: Vec<PathBuf>) -> io::Result<Vec<DirLock>> {
    dirs.sort_unstable();
    dirs.dedup();
    dirs.iter()
        .map(|d| lock_dir_with(d, Durability::Deferred))
        .collect()
}

/// Writes many objects (`(file, bytes)`, at most [`MAX_BATCH`], distinct files) under
/// their folders' locks, taken here: see [`commit_batch`].
pub(crate) fn put_batch(objects: &[(PathBuf, bytes::Bytes)], staging: &Path) -> io::Result<()> {
    let dirs = objects
        .iter()
        .map(|(file, _)| parent(file).map(Path::to_path_buf))
        .collect::<io::Result<Vec<PathBuf>>>()?;
    let _locks = lock_dirs(dirs)?;
    match commit_batch(objects, staging) {
        (_, Some(e)) => Err(e),
        (_, None) => Ok(()),
    }
}

/// Writes many objects (`(file, bytes)`, distinct files, under `staging`'s lake root)
/// with the guarantees of one-object writes (see the module docs); call with every
/// folder's lock held ([`lock_dirs`]). Sweeps what crashed writers left for each,
/// stages them all, makes the staged files and new folders durable, renames the objects
/// in order, then makes the renames durable ([`make_durable`]: one `syncfs` each time on
/// Linux). Returns how many objects were committed (the first ones, in order) and the
/// error that stopped the batch, if any; a failed staging commits none.
pub(crate) fn commit_batch(
    objects: &[(PathBuf, bytes::Bytes)],
    staging: &Path,
) -> (usize, Option<io::Error>) {
    let files: Vec<&PathBuf> = objects.iter().map(|(file, _)| file).collect();
    if let Err(e) = sweep_many(&files, staging) {
        return (0, Some(e));
    }
    let mut folders: Vec<PathBuf> = Vec::with_capacity(objects.len());
    for file in files {
        match parent(file) {
            Ok(dir) => folders.push(dir.to_path_buf()),
            Err(e) => return (0, Some(e)),
        }
    }
    folders.sort_unstable();
    folders.dedup();
    let staged = match objects
        .iter()
        .map(|(file, bytes)| stage_with(file, staging, bytes, Durability::Deferred))
        .collect::<io::Result<Vec<Staged>>>()
    {
        Ok(staged) => staged,
        Err(e) => return (0, Some(e)),
    };
    let mut before: Vec<PathBuf> = staged.iter().filter_map(|s| s.tmp.clone()).collect();
    before.extend(ancestors_to_root(&folders, staging));
    if let Err(e) = make_durable(&before, staging) {
        return (0, Some(e));
    }
    let mut committed = 0;
    let mut error = None;
    for s in staged {
        // after a failed rename the rest are dropped: their staging files are removed
        if error.is_none() {
            match s.commit_with(Durability::Deferred) {
                Ok(()) => committed += 1,
                Err(e) => error = Some(e),
            }
        }
    }
    // the renames done are made durable even when a later one failed
    if let Err(e) = make_durable(&folders, staging) {
        error.get_or_insert(e);
    }
    (committed, error)
}

/// The folders above `folders` up to the lake root (the parent of `staging`), and the
/// staging folder: every folder whose entries a batch may have added before its renames.
fn ancestors_to_root(folders: &[PathBuf], staging: &Path) -> Vec<PathBuf> {
    let root = staging.parent();
    let mut above: Vec<PathBuf> = vec![staging.to_path_buf()];
    for f in folders {
        let mut d = f.parent();
        while let Some(dir) = d.filter(|dir| root.is_some_and(|r| dir.starts_with(r))) {
            above.push(dir.to_path_buf());
            d = dir.parent();
        }
    }
    above.sort_unstable();
    above.dedup();
    above
}

/// Makes the files and folders of `paths` (on the file system of `staging`) durable.
/// On Linux with one `syncfs` of that file system: two calls per batch instead of two
/// `fsync`s per object. 2,000 report files of 29 KB in new folders took 0.12–0.18 s
/// this way on this project's build machine, against 0.56–0.68 s with the `fsync`s 16 at
/// a time and 1.7 s one after the other. The price: it also flushes other programs'
/// unwritten data on that file system. Elsewhere each path is `fsync`ed, on up to
/// [`SYNC_THREADS`] threads.
fn make_durable(paths: &[PathBuf], staging: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let _ = paths;
        rustix::fs::syncfs(File::open(staging)?).map_err(io::Error::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = staging;
        let per = paths.len().div_ceil(SYNC_THREADS).max(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = paths
                .chunks(per)
                .map(|chunk| {
                    scope.spawn(move || chunk.iter().try_for_each(|p| File::open(p)?.sync_all()))
                })
                .collect();
            handles.into_iter().try_for_each(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("an fsync thread panicked")))
            })
        })
    }
}

/// Runs blocking file-system work off the async runtime.
pub(crate) async fn blocking<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(format!("file-system task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_are_only_object_store_staging_files_of_that_object() {
        let name = "part-0.parquet";
        for left in ["part-0.parquet#1", "part-0.parquet#23"] {
            assert!(is_leftover(left, name), "{left}");
        }
        for kept in [
            "part-0.parquet",
            "part-1.parquet",
            "part-0.parquet#",
            "part-0.parquet#1a",
            "part-1.parquet#1",
        ] {
            assert!(!is_leftover(kept, name), "{kept}");
        }
    }

    #[test]
    fn a_batch_replaces_objects_sweeps_leftovers_and_leaves_no_staging_file() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join(STAGING_DIR);
        let a = dir.path().join("r/w=1/s=a/report.html");
        let b = dir.path().join("r/w=1/s=b/report.html");
        let c = dir.path().join("r/w=2/s=a/report.html");
        std::fs::create_dir_all(a.parent().unwrap()).unwrap();
        std::fs::write(&a, b"old").unwrap();
        std::fs::write(dir.path().join("r/w=1/s=a/report.html#3"), b"").unwrap();
        // crashed writers of a and c (one listing of the staging folder finds both), and
        // the staging file of an object outside the batch, which stays
        let outside = dir.path().join("r/w=2/s=b/report.html");
        for (f, n) in [(&a, 1), (&c, 2), (&outside, 1)] {
            let _lock = lock_dir(f.parent().unwrap()).unwrap();
            for _ in 0..n {
                std::mem::forget(stage(f, &staging, b"crashed").unwrap());
            }
        }
        assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 4);
        let objects: Vec<(PathBuf, bytes::Bytes)> = [(&a, "A"), (&b, "B"), (&c, "C")]
            .into_iter()
            .map(|(f, t)| (f.clone(), bytes::Bytes::from(t)))
            .collect();
        put_batch(&objects, &staging).unwrap();
        for (f, t) in [(&a, "A"), (&b, "B"), (&c, "C")] {
            assert_eq!(std::fs::read_to_string(f).unwrap(), t, "{}", f.display());
        }
        assert_eq!(std::fs::read_dir(a.parent().unwrap()).unwrap().count(), 1);
        let left: Vec<String> = std::fs::read_dir(&staging)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(
            left[0].starts_with(&format!("{}.", tag(&outside))),
            "{left:?}"
        );
        // the same folder twice is locked once (a second flock would wait forever)
        let twice = vec![a.parent().unwrap().to_path_buf(); 2];
        assert_eq!(lock_dirs(twice).unwrap().len(), 1);
    }

    #[test]
    fn stage_commit_sweep_and_drop() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join(STAGING_DIR);
        let dest = dir.path().join("t/a=1/part-0.parquet");
        let other = dir.path().join("t/a=2/part-0.parquet");
        let _lock = lock_dir(dest.parent().unwrap()).unwrap();
        // left by crashed writers: an object_store staging file, one of ours for
        // `dest`, one of ours for another object
        std::fs::write(dir.path().join("t/a=1/part-0.parquet#1"), b"").unwrap();
        std::mem::forget(stage(&dest, &staging, b"crashed").unwrap());
        std::mem::forget(stage(&other, &staging, b"other").unwrap());
        assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 2);
        assert_eq!(sweep(&dest, &staging).unwrap(), 2);
        assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 1);
        stage(&dest, &staging, b"one").unwrap().commit().unwrap();
        drop(stage(&dest, &staging, b"two").unwrap()); // dropped uncommitted: removed
        let names: Vec<_> = std::fs::read_dir(dest.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["part-0.parquet"]);
        assert_eq!(std::fs::read(&dest).unwrap(), b"one");
        assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 1);
    }
}
