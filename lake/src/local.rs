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
//! Fault injection for tests (`IRTLAKE_FAULT`, read once per process; unset in
//! production):
//! - `pause-after-stage`: after staging (step 3) print `irtlake fault: staged <file>`
//!   to stderr and wait forever, so a test can `kill -9` the writer mid-write;
//! - `enospc-at-stage:N`: the N-th staging of the process (1-based) fails as a full
//!   disk would (`StorageFull`, after writing part of the file);
//! - `fail-commit:N`: the N-th commit of the process fails before its rename.

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

/// Creates `dir` if needed (durably) and locks it, waiting for other holders.
/// Blocking: call it from a blocking thread.
pub(crate) fn lock_dir(dir: &Path) -> io::Result<DirLock> {
    create_dir_durable(dir)?;
    let file = File::open(dir)?;
    file.lock()?;
    Ok(DirLock { _dir: file })
}

/// Creates `dir` and its missing parents, and `fsync`s the parent of each folder created.
fn create_dir_durable(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
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
fn remove_matching(dir: &Path, stale: impl Fn(&str) -> bool) -> io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let Some(entry_name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if stale(&entry_name) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    if removed > 0 {
        File::open(dir)?.sync_all()?;
    }
    Ok(removed)
}

/// Removes what crashed writers left for `dest` (its staging files under `staging`,
/// `name#N` beside it). Call with the folder lock held. Returns how many were removed.
pub(crate) fn sweep(dest: &Path, staging: &Path) -> io::Result<usize> {
    let name = file_name(dest)?;
    let prefix = format!("{}.", tag(dest));
    let removed = remove_matching(staging, |e| e.starts_with(&prefix) && e.ends_with(".tmp"))?
        + remove_matching(parent(dest)?, |e| is_leftover(e, &name))?;
    if removed > 0 {
        tracing::info!(object = %dest.display(), removed, "removed staging files of crashed writers");
    }
    Ok(removed)
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
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    create_dir_durable(parent(dest)?)?;
    create_dir_durable(staging)?;
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
    file.sync_all()?;
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
    pub(crate) fn commit(mut self) -> io::Result<()> {
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
        File::open(parent(&self.dest)?)?.sync_all()
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
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
