//! Where tests find the public reference data with published values (LSAT7, LSAT6,
//! SAT12, Science, Kolen & Brennan's linking example).
//!
//! The data is not part of the repository: it sits in `shared/reference` beside the
//! clone, or wherever `IRTLAKE_REFERENCE_DIR` points. Every test that reads it finds it
//! through [`reference_dir`] (this file is included with `#[path]` by each test crate,
//! so the rule lives in one place). When the folder is absent the test is skipped with
//! one line saying so; with `IRTLAKE_REQUIRE_REFERENCE=1` (set by `.ci/run`) a missing
//! folder fails the test instead, so CI never skips silently.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Environment variable naming the reference folder (the one holding `lsat7/`, `kb04/` …).
pub const REFERENCE_DIR_ENV: &str = "IRTLAKE_REFERENCE_DIR";
/// Environment variable that turns a missing reference folder into a test failure.
pub const REQUIRE_REFERENCE_ENV: &str = "IRTLAKE_REQUIRE_REFERENCE";

/// The reference root: `$IRTLAKE_REFERENCE_DIR`, else `../shared/reference` relative
/// to the workspace root (every test crate's manifest sits one level below it).
pub fn reference_root() -> PathBuf {
    match std::env::var_os(REFERENCE_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            manifest
                .parent()
                .unwrap_or(manifest)
                .join("../shared/reference")
        }
    }
}

/// Whether a missing reference folder must fail the test (`IRTLAKE_REQUIRE_REFERENCE`
/// set to anything but empty, `0` or `false`).
pub fn reference_required() -> bool {
    std::env::var(REQUIRE_REFERENCE_ENV)
        .map(|v| !matches!(v.trim(), "" | "0" | "false"))
        .unwrap_or(false)
}

/// The reference sub-folder `name` (e.g. `"lsat7"`) when it exists. When it does not,
/// prints one line ("reference data not found: …; set IRTLAKE_REFERENCE_DIR") and
/// returns `None` so the caller returns early, or panics when [`reference_required`].
pub fn reference_dir(name: &str) -> Option<PathBuf> {
    let dir = reference_root().join(name);
    if dir.is_dir() {
        return Some(dir);
    }
    let message = format!(
        "reference data not found: {}; set {REFERENCE_DIR_ENV}",
        dir.display()
    );
    if reference_required() {
        panic!("{message} ({REQUIRE_REFERENCE_ENV} is set, so this is a failure)");
    }
    eprintln!("skipped: {message}");
    None
}
