//! Whether a lake is there at all.
//!
//! **Rule:** a lake exists when at least one catalog table ([`crate::TABLES`]) holds at
//! least one object under its folder (`<root>/<table>/…`). `attempts` and `questions`
//! are looked at first, so on a real lake the answer costs one listing request.
//! A local folder that does not exist, an empty folder, a folder of unrelated files,
//! and an S3 prefix without table objects (a typo, a wrong bucket) are not lakes.
//!
//! Reading commands open a lake with [`Lake::open_existing`], which creates nothing;
//! only the commands that create a lake (`demo-data`, `ingest`, `export`, and `run` when
//! it starts with the export stage) use [`Lake::open`], which creates a local folder.

use futures::StreamExt;

use crate::catalog::{ATTEMPTS, QUESTIONS, TABLES};
use crate::error::Result;
use crate::store::Lake;
use crate::uri::LakeUri;

impl Lake {
    /// Opens the lake at `uri` only if it exists (see the module docs for the rule);
    /// `Ok(None)` if it does not. Nothing is created, locally or on S3.
    pub async fn open_existing(uri: &str) -> Result<Option<Self>> {
        let parsed = LakeUri::parse(uri)?;
        if let LakeUri::Local(dir) = &parsed
            && !dir.is_dir()
        {
            return Ok(None);
        }
        let lake = Self::from_uri(parsed)?;
        Ok(lake.has_tables().await?.then_some(lake))
    }

    /// True when at least one catalog table holds an object (the module's rule).
    pub async fn has_tables(&self) -> Result<bool> {
        let first = [ATTEMPTS, QUESTIONS];
        let rest = TABLES
            .iter()
            .map(|t| t.name)
            .filter(|name| !first.contains(name));
        for table in first.into_iter().chain(rest) {
            let prefix = self.path(table)?;
            if let Some(found) = self.store().list(Some(&prefix)).next().await {
                found?;
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use object_store::ObjectStoreExt;

    use super::*;

    #[tokio::test]
    async fn a_missing_or_empty_folder_is_no_lake_and_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let typo = dir.path().join("typo");
        let uri = format!("file://{}", typo.display());
        assert!(Lake::open_existing(&uri).await.unwrap().is_none());
        assert!(!typo.exists(), "a reading open created {}", typo.display());

        std::fs::create_dir_all(typo.join("notes")).unwrap();
        std::fs::write(typo.join("notes/readme.txt"), "x").unwrap();
        assert!(Lake::open_existing(&uri).await.unwrap().is_none());

        let lake = Lake::open(&uri).unwrap();
        lake.store()
            .put(
                &lake
                    .path("weekly_kpi/week_start=2026-03-02/part-0.parquet")
                    .unwrap(),
                "x".into(),
            )
            .await
            .unwrap();
        assert!(Lake::open_existing(&uri).await.unwrap().is_some());
    }
}
